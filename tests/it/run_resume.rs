//! End-to-end tests of crash safety and resume in `ferry run --headless`, on the real
//! binary with no server: `kill -9` during a step and at assorted moments, SIGTERM
//! mid-step, then `--resume` (a finished step never runs again); a tampered,
//! shortened or torn journal; a changed runbook on resume; processes a killed run
//! left behind. Every ferry process runs under the harness's 60s watchdog.

use crate::support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};
use support::headless::*;

// ---------------------------------------------------------------------------------------------
// 4. kill -9 mid-step, then resume
// ---------------------------------------------------------------------------------------------

#[test]
fn kill_9_during_a_step_then_resume_retries_only_the_interrupted_step() {
    let dir = Dir::new();
    dir.runbook(
        "crash",
        r#"
[[phase]]
id = "p"

  [[phase.step]]
  id = "a"
  kind = "shell"
  run = "echo A >> counter.txt"

  [[phase.step]]
  id = "b"
  kind = "shell"
  run = 'echo $$ > b.pid; n=$(grep -c B counter.txt); echo B >> counter.txt; if [ "$n" -eq 0 ]; then sleep 30; fi'

  [[phase.step]]
  id = "c"
  kind = "shell"
  run = "echo C >> counter.txt"
"#,
    );
    let mut running = dir.start(&["--yes"]);
    wait_for_journal(
        &dir,
        &mut running,
        Duration::from_secs(30),
        "step b started",
        |recs| !events(recs, "started", Some("b")).is_empty(),
    );
    // and its shell has got as far as counting itself
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(&dir.lines("counter.txt"), "B") == 0 {
        assert!(
            Instant::now() < deadline,
            "step b never wrote to the counter"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed = running.kill9();
    // the orphaned `sleep 30` of step b: its shell leads its own process group
    if let Ok(pid) = std::fs::read_to_string(dir.file("b.pid")) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            // SAFETY: kill(2) on the process group our own test started.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
    }
    let before = entries(&dir.journal());
    assert!(
        closed(&before).is_none(),
        "the killed run must not be closed\n{}",
        dump(&before)
    );

    let out = dir.run(&["--resume", "--yes"]);
    out.assert_code(
        0,
        &format!(
            "--resume --yes after kill -9\n(killed run printed:)\n{}",
            killed.show()
        ),
    );
    let lines = dir.lines("counter.txt");
    assert_eq!(count(&lines, "A"), 1, "A ran once: {lines:?}");
    assert_eq!(
        count(&lines, "B"),
        2,
        "B ran twice (interrupted, then retried): {lines:?}"
    );
    assert_eq!(count(&lines, "C"), 1, "C ran once: {lines:?}");
    let recs = entries(&dir.journal());
    let interrupted = events(&recs, "interrupted", None);
    assert!(
        interrupted.iter().any(|r| r["entry"]["steps"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x == "b"))),
        "the resumed journal must record that b was interrupted\n{}",
        dump(&recs)
    );
    assert!(
        closed(&recs).is_some(),
        "the resumed run must close the journal\n{}",
        dump(&recs)
    );
}

#[test]
fn kill_9_at_assorted_moments_never_reruns_a_finished_step() {
    let ids = ["s1", "s2", "s3", "s4", "s5", "s6"];
    let mut body = String::from("[[phase]]\nid = \"p\"\n\n");
    for id in ids {
        body.push_str(&format!(
            "  [[phase.step]]\n  id = \"{id}\"\n  kind = \"shell\"\n  run = \"echo {id} >> ids.txt; sleep 0.25\"\n\n"
        ));
    }
    // ms after the run's session line; the whole run takes at least 6 x 250ms
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = u64::from(nanos % 97);
    for (trial, base) in [0u64, 180, 420, 700, 1000].into_iter().enumerate() {
        let delay = Duration::from_millis(base + jitter);
        let dir = Dir::new();
        dir.runbook("crashes", &body);
        let mut running = dir.start(&["--yes"]);
        wait_for_journal(
            &dir,
            &mut running,
            Duration::from_secs(30),
            "the session line",
            |recs| recs.iter().any(|r| kind(r) == "session"),
        );
        std::thread::sleep(delay);
        assert!(
            !running.exited(),
            "trial {trial}: ferry finished before the kill at {delay:?}; the test's timing is wrong"
        );
        let killed = running.kill9();
        // a line being written at the kill would be torn; only complete lines count
        let journal = dir.journal();
        let prefix: Vec<Value> = std::fs::read_to_string(&journal)
            .unwrap_or_default()
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let out = dir.run(&["--resume", "--yes"]);
        out.assert_code(
            0,
            &format!(
                "trial {trial} (kill after {delay:?}): --resume --yes\n(killed run:)\n{}",
                killed.show()
            ),
        );
        let recs = entries(&journal);
        // what had finished before the kill: events before the resume's session line
        let resumed_at = recs
            .iter()
            .position(|r| kind(r) == "session" && r["entry"]["resumed"] == true)
            .unwrap_or_else(|| panic!("trial {trial}: no resumed session line\n{}", dump(&recs)));
        assert_eq!(
            resumed_at,
            prefix.len(),
            "trial {trial}: the resumed journal should keep every complete line of the killed run, then add the session\n{}",
            dump(&recs)
        );
        let finished_before: Vec<String> = events(&recs[..resumed_at], "finished", None)
            .iter()
            .filter(|r| outcome(r) == "succeeded")
            .filter_map(|r| r["entry"]["step"].as_str().map(str::to_string))
            .collect();
        let lines = dir.lines("ids.txt");
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for id in ids {
            counts.insert(id, count(&lines, id));
        }
        for id in ids {
            assert!(
                counts[id] >= 1,
                "trial {trial} (kill after {delay:?}): step {id} never ran: {lines:?}"
            );
            assert!(
                counts[id] <= 2,
                "trial {trial}: step {id} ran {} times: {lines:?}",
                counts[id]
            );
        }
        for id in &finished_before {
            assert_eq!(
                counts[id.as_str()],
                1,
                "trial {trial} (kill after {delay:?}): step {id} had finished before the kill but ran again: {lines:?}\n{}",
                dump(&recs)
            );
        }
        assert!(
            closed(&recs).is_some(),
            "trial {trial}: resumed run did not close the journal\n{}",
            dump(&recs)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5. A tampered journal is refused
// ---------------------------------------------------------------------------------------------

/// A runbook that stops (without --yes) at a confirmation after two shell steps with output.
fn stopping_runbook(dir: &Dir) {
    let body = format!(
        "[[phase]]\nid = \"p\"\n\n\
         {}  [[phase.step]]\n  id = \"talk\"\n  kind = \"shell\"\n  run = \"echo row-count-is-42; echo second-line\"\n  confirm = \"none\"\n\n\
         \x20 [[phase.step]]\n  id = \"gate\"\n  kind = \"confirm\"\n\n{}",
        append_step("a", "count.txt", "  confirm = \"none\""),
        append_step("c", "count.txt", "  confirm = \"none\""),
    );
    dir.runbook("tamper", &body);
}

#[test]
fn an_edited_or_shortened_journal_is_refused_with_its_line_number() {
    let dir = Dir::new();
    stopping_runbook(&dir);
    dir.run(&[]).assert_code(1, "the run stops at `gate`");
    let journal = dir.journal();
    let original = std::fs::read_to_string(&journal).expect("read journal");
    let lines: Vec<&str> = original.lines().collect();

    // one character of a step's output
    let at = lines
        .iter()
        .position(|l| l.contains("row-count-is-42"))
        .expect("the journal holds the output line");
    assert!(
        at > 0 && at + 1 < lines.len(),
        "the output line is a middle line"
    );
    let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    edited[at] = edited[at].replace("row-count-is-42", "row-count-is-43");
    let tampered = dir.file("edited.jsonl");
    std::fs::write(&tampered, edited.join("\n") + "\n").expect("write edited journal");
    let out = dir.run(&[
        "--resume",
        "--yes",
        "--journal",
        tampered.to_str().unwrap_or_default(),
    ]);
    out.assert_code(2, "resuming an edited journal");
    assert!(
        out.stderr.contains(&format!("line {}", at + 1)),
        "stderr should name line {} (the edited one)\n{}",
        at + 1,
        out.show()
    );
    assert_eq!(
        dir.lines("count.txt"),
        ["a"],
        "nothing may run from an edited journal"
    );

    // a middle line removed
    let gone = lines.len() / 2;
    let mut shortened: Vec<&str> = lines.clone();
    shortened.remove(gone);
    let tampered = dir.file("shortened.jsonl");
    std::fs::write(&tampered, shortened.join("\n") + "\n").expect("write shortened journal");
    let out = dir.run(&[
        "--resume",
        "--yes",
        "--journal",
        tampered.to_str().unwrap_or_default(),
    ]);
    out.assert_code(2, "resuming a journal with a line removed");
    assert!(
        out.stderr.contains(&format!("line {}", gone + 1)),
        "stderr should name line {} (where the chain breaks)\n{}",
        gone + 1,
        out.show()
    );
    assert_eq!(
        dir.lines("count.txt"),
        ["a"],
        "nothing may run from a shortened journal"
    );

    // control: the untouched journal resumes fine
    let out = dir.run(&[
        "--resume",
        "--yes",
        "--journal",
        journal.to_str().unwrap_or_default(),
    ]);
    out.assert_code(0, "resuming the untouched journal");
    assert_eq!(dir.lines("count.txt"), ["a", "c"]);
}

// ---------------------------------------------------------------------------------------------
// 6. A torn last line is dropped
// ---------------------------------------------------------------------------------------------

#[test]
fn a_torn_last_line_is_dropped_with_a_note_and_the_journal_stays_valid() {
    let dir = Dir::new();
    stopping_runbook(&dir);
    dir.run(&[]).assert_code(1, "the run stops at `gate`");
    let journal = dir.journal();
    let good = std::fs::read_to_string(&journal).expect("read journal");
    let n_lines = good.lines().count();
    let torn = format!(
        "{good}{{\"seq\":{n_lines},\"ts\":\"2026-01-01T00:00:00Z\",\"entry\":{{\"kind\":\"ev"
    );
    std::fs::write(&journal, torn).expect("append a torn line");

    let out = dir.run(&["--resume", "--yes"]);
    out.assert_code(0, "--resume --yes over a torn last line");
    assert!(
        out.stdout.contains("cut short") && out.stdout.contains(&format!("line {}", n_lines + 1)),
        "stdout should note the torn line {}\n{}",
        n_lines + 1,
        out.show()
    );
    assert_eq!(
        dir.lines("count.txt"),
        ["a", "c"],
        "the resumed run finished the runbook"
    );
    assert_chain_intact(&journal);
    let recs = entries(&journal);
    assert!(
        closed(&recs).is_some(),
        "the resumed run closed the journal\n{}",
        dump(&recs)
    );

    let out = dir.run(&[
        "--resume",
        "--yes",
        "--journal",
        journal.to_str().unwrap_or_default(),
    ]);
    out.assert_code(2, "resuming a run that already ended");
    assert!(
        out.stderr.contains("already ended"),
        "stderr should say the run already ended\n{}",
        out.show()
    );
}

// ---------------------------------------------------------------------------------------------
// 7. A changed runbook on resume
// ---------------------------------------------------------------------------------------------

#[test]
fn a_changed_step_blocks_resume_unless_accepted() {
    let dir = Dir::new();
    let rb = |c_run: &str| {
        format!(
            "[[phase]]\nid = \"p\"\n\n{}  [[phase.step]]\n  id = \"gate\"\n  kind = \"confirm\"\n\n\
             \x20 [[phase.step]]\n  id = \"tail\"\n  kind = \"shell\"\n  run = \"{c_run}\"\n",
            append_step("head", "count.txt", "  confirm = \"none\""),
        )
    };
    dir.runbook("changes", &rb("echo old >> out.txt"));
    dir.run(&[]).assert_code(1, "the run stops at `gate`");

    dir.runbook("changes", &rb("echo new >> out.txt"));
    let out = dir.run(&["--resume", "--yes"]);
    out.assert_code(2, "--resume after a step changed");
    assert!(
        out.stderr.contains("`tail`") && out.stderr.contains("changed"),
        "stderr should name the changed step `tail`\n{}",
        out.show()
    );
    assert!(
        !out.stderr.contains("`head`"),
        "only `tail` changed\n{}",
        out.show()
    );
    assert!(
        dir.lines("out.txt").is_empty(),
        "nothing may run when the change is refused"
    );

    let out = dir.run(&["--resume", "--yes", "--accept-changes"]);
    out.assert_code(0, "--resume --accept-changes");
    assert_eq!(
        dir.lines("out.txt"),
        ["new"],
        "the accepted, new definition ran"
    );
    assert_eq!(dir.lines("count.txt"), ["head"], "`head` ran once");
}

// ---------------------------------------------------------------------------------------------
// 10. SIGTERM mid-step
// ---------------------------------------------------------------------------------------------

#[test]
fn sigterm_stops_a_running_step_resumably_and_resume_yes_finishes_it() {
    let dir = Dir::new();
    dir.runbook(
        "sigterm",
        r#"
[[phase]]
id = "p"

  [[phase.step]]
  id = "slow"
  kind = "shell"
  run = 'n=$(cat tries.txt 2>/dev/null | wc -l); echo try >> tries.txt; if [ "$n" -eq 0 ]; then sleep 30; fi'

  [[phase.step]]
  id = "after"
  kind = "shell"
  run = "echo after >> after.txt"
"#,
    );
    let mut running = dir.start(&["--yes"]);
    wait_for_journal(
        &dir,
        &mut running,
        Duration::from_secs(30),
        "step slow started",
        |recs| !events(recs, "started", Some("slow")).is_empty(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while dir.lines("tries.txt").is_empty() {
        assert!(
            Instant::now() < deadline,
            "step slow never started its shell"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    running.signal(libc::SIGTERM);
    let out = running.finish();
    out.assert_code(1, "SIGTERM during a step");
    assert!(
        out.stdout.contains("--resume"),
        "stdout should say how to resume\n{}",
        out.show()
    );
    let recs = entries(&dir.journal());
    assert!(
        closed(&recs).is_none(),
        "a SIGTERMed run must stay resumable (no `closed`)\n{}",
        dump(&recs)
    );
    let fin = events(&recs, "finished", Some("slow"));
    assert!(
        fin.iter().any(|r| outcome(r) == "cancelled")
            || !events(&recs, "interrupted", None).is_empty(),
        "the journal should show `slow` cancelled or interrupted\n{}",
        dump(&recs)
    );
    assert!(
        dir.lines("after.txt").is_empty(),
        "`after` must not run after SIGTERM"
    );

    let out = dir.run(&["--resume", "--yes"]);
    out.assert_code(0, "--resume --yes after SIGTERM retries the stopped step");
    assert_eq!(
        dir.lines("tries.txt").len(),
        2,
        "`slow` ran again on resume"
    );
    assert_eq!(dir.lines("after.txt"), ["after"], "`after` ran once");
}

// ---------------------------------------------------------------------------------------------
// A crashed run's leftover processes are stopped before the resume retries anything
// ---------------------------------------------------------------------------------------------

#[test]
fn resume_stops_the_processes_a_killed_run_left_running() {
    let dir = Dir::new();
    let marker = format!("ferry-orphan-{}", std::process::id());
    dir.runbook(
        "orphans",
        &format!(
            r#"
[[phase]]
id = "p"

  [[phase.step]]
  id = "long"
  kind = "shell"
  run = "echo $$ > long.pid; sleep 300 # {marker}"
"#
        ),
    );
    let mut running = dir.start(&["--yes"]);
    wait_for_journal(
        &dir,
        &mut running,
        Duration::from_secs(30),
        "the group of `long` is journaled",
        |recs| recs.iter().any(|r| kind(r) == "process"),
    );
    let _ = running.kill9();
    let alive = || {
        Command::new("pgrep")
            .args(["-f", &marker])
            .output()
            .map(|o| !o.stdout.is_empty())
            .unwrap_or(false)
    };
    assert!(
        alive(),
        "the step's `sleep` outlives a kill -9 of ferry (that is the problem)"
    );

    // resume without --yes: it stops at the interrupted step, but first ends the orphans
    let out = dir.run(&["--resume"]);
    out.assert_code(1, "resume without --yes stops at the interrupted step");
    assert!(
        out.stdout
            .contains("was interrupted by the crash but its processes were still running"),
        "{}",
        out.show()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive() {
        assert!(
            Instant::now() < deadline,
            "the orphaned processes are still running after the resume"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let recs = entries(&dir.journal());
    assert!(
        recs.iter().any(|r| kind(r) == "note"
            && r["entry"]["text"]
                .as_str()
                .unwrap_or("")
                .contains("process group")),
        "the stop is journaled\n{}",
        dump(&recs)
    );
}
