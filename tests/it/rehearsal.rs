//! Rehearsals steering a run, on the real binary: five rehearsals of a runbook
//! made by real `ferry run --headless --yes` runs (one of them rolls a step
//! back), then a run with `--rehearsals` whose slow step eats a short window:
//! headless mode says the projected end, the step running past its rehearsed
//! p90, and the rollback budget's warning. Journals of another runbook are
//! refused, fewer than five is a warning, and `ferry stats` gives the same
//! figures with rollback rows and the buffer it recommends.

use crate::support;

use support::headless::*;

/// A runbook whose window opens now and lasts `window_secs`.
pub fn body(window_secs: u64) -> String {
    let start = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    format!(
        r#"window = {{ start = "{start}", duration = "{window_secs}s" }}

[vars]
fail = "0"
copy_secs = "0.2"

[[phase]]
id = "p"

  [[phase.step]]
  id = "freeze"
  kind = "shell"
  confirm = "none"
  run = "sleep 0.2; test ${{vars.fail}} = 0"
  on_failure = "rollback"
  rollback = {{ run = "sleep 0.3" }}

  [[phase.step]]
  id = "copy"
  kind = "shell"
  confirm = "none"
  run = "sleep ${{vars.copy_secs}}"

  [[phase.step]]
  id = "promote"
  kind = "shell"
  point_of_no_return = true
  run = "true"
"#
    )
}

/// Five rehearsals in `dir`: four that succeed, one whose `freeze` fails and is
/// rolled back. Returns the glob that names their journals.
pub fn rehearse(dir: &Dir) -> &'static str {
    for n in 0..5 {
        let fail = if n == 2 { "fail=1" } else { "fail=0" };
        let out = dir.run(&["--yes", "--var", fail]);
        out.assert_code(if n == 2 { 1 } else { 0 }, "a rehearsal");
    }
    assert_eq!(dir.journals().len(), 5);
    "runs/rehearse/*.jsonl"
}

#[test]
fn a_slow_step_that_eats_the_window_is_called_out_and_the_budget_warns() {
    let dir = Dir::new();
    dir.runbook("rehearse", &body(3600));
    let glob = rehearse(&dir);
    // the stats over them: per step, the rollback row, the buffer
    let stats = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(dir.path())
        .arg("stats")
        .args(dir.journals())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&stats.stdout);
    assert_eq!(stats.status.code(), Some(0), "{text}");
    let row = |id: &str| {
        text.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no `{id}` row:\n{text}"))
            .to_string()
    };
    // freeze succeeded in four rehearsals, was rolled back in one
    assert!(row("freeze").contains("  4 "), "{text}");
    assert!(row("↶ freeze").contains("  1 "), "{text}");
    // the rollback sleeps 0.3 s: its p90 is that and the shell's start
    let path: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("rollback path (sum of the rehearsed rollbacks' p90): "))
        .and_then(|v| v.strip_suffix('s'))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no rollback path in\n{text}"));
    assert!((0.3..2.0).contains(&path), "{path}\n{text}");
    assert!(
        text.contains("buffer: ") && text.contains("a window of at least"),
        "{text}"
    );

    // the live run: a window of 10 s from now, and copy takes 8 s instead of 0.2 s
    dir.runbook("rehearse", &body(10));
    let out = dir.run(&["--yes", "--rehearsals", glob, "--var", "copy_secs=8"]);
    out.assert_code(0, "the run with rehearsals");
    let says = |needle: &str| {
        assert!(
            out.stdout.contains(needle),
            "no `{needle}` in\n{}",
            out.show()
        );
    };
    says("rehearsals: 5 journal(s) give the ETAs and the rollback budget");
    says("⏱ rehearsed ×5 · end ~");
    says("window ends");
    // the projection before anything ran holds the rollback path of freeze once it ran
    says("⚠ copy: running ");
    says("past its rehearsed p90");
    // 20% of 10 s is 2 s: copy passes it about 7.5 s in
    let warn = out
        .stdout
        .lines()
        .find(|l| l.contains("⚠ rollback budget") && !l.contains("⏱"))
        .unwrap_or_else(|| panic!("no budget warning in\n{}", out.show()));
    assert!(warn.contains("rollback p90 0s"), "{warn}");
    says("⏱ copy: took 8s · rehearsed ~0s/0s ⚠>p90");
    says("5 rehearsal(s) ran another version of the runbook");
    // once promote ran, there is no way back to pay for
    says("past the point of no return `promote`");
    // the warning came before copy finished: a lead would have had time to act
    let pos = |needle: &str| out.stdout.find(needle).unwrap_or(usize::MAX);
    assert!(
        pos("⚠ rollback budget") < pos("✔ copy: succeeded"),
        "{}",
        out.show()
    );
    // the confirmation of the point of no return journaled the budget as evidence
    let live = dir.journals().into_iter().last().unwrap();
    let text = std::fs::read_to_string(&live).unwrap();
    let confirm = text
        .lines()
        .find(|l| l.contains("\"evidence\"") && l.contains("\"promote\""))
        .unwrap_or_else(|| panic!("no confirmation of promote in\n{text}"));
    assert!(
        confirm.contains("\"label\":\"window\",\"value\":\"")
            && confirm.contains("rollback")
            && confirm.contains("\"label\":\"projected\""),
        "{confirm}"
    );
}

#[test]
fn other_runbooks_are_refused_and_few_rehearsals_are_a_warning() {
    let dir = Dir::new();
    dir.runbook("rehearse", &body(3600));
    for _ in 0..2 {
        dir.run(&["--yes"]).assert_code(0, "a rehearsal");
    }
    let out = dir.run(&["--yes", "--rehearsals", "runs/rehearse/*.jsonl"]);
    out.assert_code(0, "a run with two rehearsals");
    assert!(
        out.stdout
            .contains("warning: only 2 rehearsal journal(s); seeds/000 asks for at least 5"),
        "{}",
        out.show()
    );
    // its own journal is not one of its rehearsals
    assert!(
        out.stdout.contains("rehearsals: 2 journal(s)"),
        "{}",
        out.show()
    );
    // a journal of another runbook in the glob
    let other = Dir::new();
    other.runbook(
        "another",
        "[[phase]]\nid = \"p\"\n[[phase.step]]\nid = \"x\"\nkind = \"shell\"\nrun = \"true\"\n",
    );
    other
        .run(&["--yes"])
        .assert_code(0, "another runbook's run");
    let foreign = other.journal();
    std::fs::copy(&foreign, dir.file("runs/rehearse/zz-foreign.jsonl")).unwrap();
    let before = dir.journals().len();
    let out = dir.run(&["--yes", "--rehearsals", "runs/rehearse/*.jsonl"]);
    out.assert_code(2, "a rehearsal of another runbook");
    assert!(
        out.stderr
            .contains("is a journal of runbook `another`, not `rehearse`"),
        "{}",
        out.show()
    );
    assert_eq!(dir.journals().len(), before, "no journal is left behind");
    // a glob matching nothing
    let out = dir.run(&["--yes", "--rehearsals", "nothing/*.jsonl"]);
    out.assert_code(2, "rehearsals that match nothing");
    assert!(out.stderr.contains("match no journal"), "{}", out.show());
}
