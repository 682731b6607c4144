//! `ferry run --headless` on the real binary with runbooks written the way a
//! tester new to ferry would write them (DESIGN.md's format, none from the repo):
//! independent branches in a rehearsal, `on_failure = "rollback"` with a list of
//! undo steps, a crash in the middle of a rollback, a step inserted before
//! finished ones and `--accept-changes`, a reader of stdout that goes away,
//! secrets that look like JSON or arrive in another form, an edited last line.
//!
//! No server: shell steps and SQLite. Every ferry process runs under a 60s
//! watchdog: a hang kills it and fails the test with what it printed so far.

use crate::support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::headless::*;

fn shell(id: &str, run: &str, extra: &str) -> String {
    format!("  [[phase.step]]\n  id = \"{id}\"\n  kind = \"shell\"\n  run = \"{run}\"\n{extra}\n")
}

// ---------------------------------------------------------------------------------------------

/// a1 (slow) and b1 → b2 are independent: in a rehearsal b2 must not wait for a1.
#[test]
fn a_rehearsal_runs_independent_branches_side_by_side() {
    let dir = Dir::new();
    dir.runbook(
        "edge",
        &format!(
            "[[phase]]\nid = \"p\"\n\n{}{}{}{}",
            shell("a1", "sleep 3", "  depends_on = []"),
            shell("b1", "true", "  depends_on = []"),
            shell("b2", "true", "  depends_on = [\"b1\"]"),
            shell("join", "true", "  depends_on = [\"a1\", \"b2\"]"),
        ),
    );
    let out = dir.run(&["--yes", "--journal", "j.jsonl"]);
    out.assert_code(0, "the rehearsal succeeds");
    let recs = complete_entries(&dir.file("j.jsonl"));
    let done = |s: &str| {
        events(&recs, "finished", Some(s))
            .first()
            .map(|r| ts(r))
            .unwrap_or_else(|| panic!("`{s}` finished\n{}", dump(&recs)))
    };
    assert!(
        done("b2") < done("a1"),
        "b2 had to wait for the unrelated a1\n{}",
        dump(&recs)
    );
    assert!(done("join") >= done("a1"), "{}", dump(&recs));
}

/// `on_failure = "rollback"` with `rollback = [ids]`: the undo steps (which need a
/// confirmation like any step) run in a rehearsal, in order, then the run halts.
#[test]
fn a_rehearsal_runs_the_undo_steps_of_a_failed_step() {
    let dir = Dir::new();
    dir.runbook("edge", &format!(
        "[connections.db]\nurl = \"sqlite://state.db\"\n\n[[phase]]\nid = \"p\"\n\n{}{}{}  [[phase.step]]\n  id = \"undo-sql\"\n  kind = \"sql\"\n  connection = \"db\"\n  sql = \"select 1\"\n  expect = 1\n",
        shell(
            "risky",
            "echo risky >> log.txt; exit 3",
            "  on_failure = \"rollback\"\n  rollback = [\"undo-shell\", \"undo-sql\"]"
        ),
        shell("later", "echo later >> log.txt", ""),
        shell("undo-shell", "echo undo >> log.txt", ""),
    ));
    let out = dir.run(&["--yes", "--journal", "j.jsonl"]);
    out.assert_code(1, "a failed step halts the run");
    assert_eq!(dir.lines("log.txt"), ["risky", "undo"], "{}", out.show());
    let recs = complete_entries(&dir.file("j.jsonl"));
    for undo in ["undo-shell", "undo-sql"] {
        assert_eq!(
            events(&recs, "finished", Some(undo)).len(),
            1,
            "`{undo}` ran once\n{}",
            dump(&recs)
        );
    }
    assert!(
        out.stdout.contains("halted") && out.stdout.contains("exit status 3"),
        "the halt names the step's own failure\n{}",
        out.show()
    );
}

/// Killed while a shell rollback runs: the resume does not hang, the rollback's
/// leftover processes are stopped, and only `--yes` (or an operator) runs the
/// rollback again.
#[test]
fn kill_9_during_a_rollback_then_resume_does_not_hang() {
    let dir = Dir::new();
    dir.runbook("edge", &format!(
        "[[phase]]\nid = \"p\"\n\n{}{}",
        shell(
            "risky",
            "exit 1",
            "  on_failure = \"rollback\"\n  rollback = { run = \"echo start >> undo.txt; test -f fast || sleep 30; echo end >> undo.txt\" }"
        ),
        shell("later", "echo later >> log.txt", ""),
    ));
    let j = dir.file("j.jsonl");
    let mut first = dir.start(&["--yes", "--journal", "j.jsonl"]);
    let undo = dir.file("undo.txt");
    wait_for(&j, &mut first, "the rollback to start", |recs| {
        !events(recs, "finished", Some("risky")).is_empty()
            && recs
                .iter()
                .filter(|r| r["entry"]["kind"] == "process")
                .count()
                == 2
            && undo.exists()
    });
    first.kill9();

    let out = dir.run(&["--resume", "--journal", "j.jsonl"]);
    out.assert_code(
        1,
        "without --yes the interrupted rollback waits for an operator",
    );
    assert!(
        out.stdout.contains("rollback was interrupted"),
        "say what was interrupted\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("stopped (SIGTERM)"),
        "the dead run's rollback was stopped\n{}",
        out.show()
    );
    assert_eq!(dir.lines("undo.txt"), ["start"], "{}", out.show());

    // --yes reruns the rollback (quickly this time), then halts as the first run would have
    std::fs::write(dir.file("fast"), "").expect("write fast");
    let started = Instant::now();
    let mut second = dir.start(&["--resume", "--yes", "--journal", "j.jsonl"]);
    wait_for(&j, &mut second, "the rollback to run again", |recs| {
        recs.iter()
            .filter(|r| r["entry"]["kind"] == "process")
            .count()
            >= 3
    });
    let out = second.finish();
    out.assert_code(1, "the run halts after the rollback");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{}",
        out.show()
    );
    let recs = complete_entries(&j);
    let fin = events(&recs, "rollback_finished", Some("risky"));
    assert_eq!(fin.len(), 1, "{}", dump(&recs));
    assert_eq!(fin[0]["entry"]["outcome"]["outcome"], "succeeded");
    assert_eq!(dir.lines("undo.txt"), ["start", "start", "end"]);
    assert!(
        dir.lines("log.txt").is_empty(),
        "nothing after the halt ran"
    );
}

/// A step inserted before steps that already ran, resumed with --accept-changes:
/// nothing that finished runs again, and the new step runs once.
#[test]
fn accepting_an_inserted_step_does_not_rerun_finished_steps() {
    let dir = Dir::new();
    let none = "  confirm = \"none\"";
    let body = |with_new: bool| {
        format!(
            "[[phase]]\nid = \"p\"\n\n{}{}{}  [[phase.step]]\n  id = \"gate\"\n  kind = \"confirm\"\n\n{}",
            shell("a", "echo a >> runs.txt", none),
            if with_new {
                shell("new", "echo new >> runs.txt", none)
            } else {
                String::new()
            },
            shell("b", "echo b >> runs.txt", none),
            shell("c", "echo c >> runs.txt", none),
        )
    };
    dir.runbook("edge", &body(false));
    let out = dir.run(&["--journal", "j.jsonl"]);
    out.assert_code(1, "stops at the confirmation");
    assert_eq!(dir.lines("runs.txt"), ["a", "b"]);
    dir.runbook("edge", &body(true));
    let out = dir.run(&[
        "--resume",
        "--yes",
        "--accept-changes",
        "--journal",
        "j.jsonl",
    ]);
    out.assert_code(0, "the resumed run finishes");
    let mut ran = dir.lines("runs.txt");
    ran.sort();
    assert_eq!(ran, ["a", "b", "c", "new"], "{}", out.show());
    assert!(
        !out.stdout.contains("interrupted"),
        "the new step never ran, so it was not interrupted\n{}",
        out.show()
    );
}

/// `ferry run … | head -1`: the reader goes away; the run must not panic halfway.
#[test]
fn a_closed_stdout_does_not_kill_the_run() {
    let dir = Dir::new();
    dir.runbook(
        "edge",
        &format!(
            "[[phase]]\nid = \"p\"\n\n{}{}",
            shell("one", "sleep 0.5; echo one >> runs.txt", ""),
            shell("two", "echo two >> runs.txt", ""),
        ),
    );
    let (mut cmd, what) = dir.command(&["--yes", "--journal", "j.jsonl"]);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    drop(child.stdout.take()); // nobody reads stdout any more
    let stderr = reader(child.stderr.take());
    let mut running = Running {
        child,
        what,
        stdout: None,
        stderr,
    };
    let deadline = Instant::now() + WATCHDOG;
    let status = loop {
        if let Ok(Some(s)) = running.child.try_wait() {
            break s;
        }
        assert!(Instant::now() < deadline, "ferry hung");
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = running.collect(status.code());
    out.assert_code(0, "the run finishes although nobody reads its output");
    assert!(!out.stderr.contains("panicked"), "{}", out.show());
    assert_eq!(dir.lines("runs.txt"), ["one", "two"]);
    let recs = complete_entries(&dir.file("j.jsonl"));
    assert!(
        recs.iter().any(|r| r["entry"]["kind"] == "closed"),
        "{}",
        dump(&recs)
    );
}

/// Secrets as a tester sets them: one that is also a JSON word (`true`), one
/// that a program prints JSON-escaped or percent-encoded, and a multi-line key.
/// The journal stays readable (resume and report work) and no file, stdout or
/// stderr holds any of them in any of those forms.
#[test]
fn secrets_in_other_forms_never_leak_and_never_break_the_journal() {
    let mut dir = Dir::new();
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\nAASCBKcwggSjAgEAAoIBAQC7VJTU\n-----END PRIVATE KEY-----";
    dir.env.push(("FEATURE_KEY".into(), "true".into()));
    dir.env
        .push(("APP_PASSWORD".into(), "S3cr\"et\\pa ss@x".into()));
    dir.env.push(("TLS_KEY".into(), pem.into()));
    // the key line by line, the password JSON-escaped and percent-encoded
    std::fs::write(
        dir.file("leak.sh"),
        "printf '%s\\n' \"$TLS_KEY\"\n\
         python3 -c 'import json,os,urllib.parse as u; p=os.environ[\"APP_PASSWORD\"]; print(json.dumps(p)); print(u.quote(p, safe=\"\"))'\n",
    )
    .expect("write leak.sh");
    dir.runbook(
        "edge",
        &format!(
        "[[phase]]\nid = \"p\"\n\n{}{}  [[phase.step]]\n  id = \"gate\"\n  kind = \"confirm\"\n",
        shell("leak", "sh leak.sh", ""),
        shell("after", "echo true", ""),
    ),
    );
    let first = dir.run(&["--journal", "j.jsonl"]);
    first.assert_code(1, "stops at the first confirmation");
    let second = dir.run(&["--resume", "--yes", "--journal", "j.jsonl"]);
    second.assert_code(0, "a journal written with these secrets can be resumed");
    let report = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["report", "j.jsonl", "--format", "json"])
        .current_dir(dir.path())
        .output()
        .expect("run ferry report");
    let report_text = String::from_utf8_lossy(&report.stdout).into_owned();
    assert!(
        report_text.contains("\"chain_ok\": true") || report_text.contains("\"chain_ok\":true"),
        "the report verifies the chain\n{report_text}"
    );
    let forms = [
        "S3cr\"et\\pa ss@x",
        "S3cr\\\"et\\\\pa ss@x",
        "S3cr%22et%5Cpa%20ss%40x",
        "MIIEvQIBADANBgkqhkiG9w0BAQEF",
        "AASCBKcwggSjAgEAAoIBAQC7VJTU",
    ];
    let mut files = Vec::new();
    files_under(dir.path(), &mut files);
    let mut texts: Vec<(String, String)> = files
        .iter()
        .map(|p| {
            (
                p.display().to_string(),
                String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    for (name, o) in [("first", &first), ("second", &second)] {
        texts.push((format!("{name} stdout"), o.stdout.clone()));
        texts.push((format!("{name} stderr"), o.stderr.clone()));
    }
    for (name, text) in &texts {
        for f in forms {
            assert!(
                !text.contains(f),
                "{name} holds the secret as `{f}`:\n{text}"
            );
        }
    }
    assert!(
        texts
            .iter()
            .any(|(n, t)| n.ends_with("ferry.log") && !t.is_empty()),
        "the log was written and checked"
    );
    assert!(second.stdout.contains("•"), "{}", second.show());
}

/// A complete last line that was edited is refused; only a line cut short
/// (no newline) is taken for a crash's torn write.
#[test]
fn an_edited_last_line_is_refused_with_exit_2() {
    let dir = Dir::new();
    dir.runbook(
        "edge",
        &format!(
            "[[phase]]\nid = \"p\"\n\n{}  [[phase.step]]\n  id = \"gate\"\n  kind = \"confirm\"\n",
            shell("a", "echo a >> runs.txt", "  confirm = \"none\""),
        ),
    );
    dir.run(&["--journal", "j.jsonl"])
        .assert_code(1, "stops at the gate");
    let j = dir.file("j.jsonl");
    let text = std::fs::read_to_string(&j).unwrap_or_default();
    let n = text.lines().count();
    // the last line says `a` finished; make it unparseable but keep its newline
    let edited = text.replacen("\"outcome\":\"succeeded\"", "\"outcome\":\"succeeded", 1);
    assert_ne!(edited, text, "the test edits the last line");
    std::fs::write(&j, &edited).expect("edit the journal");
    let out = dir.run(&["--resume", "--yes", "--journal", "j.jsonl"]);
    out.assert_code(2, "an edited journal is refused");
    assert!(
        out.stderr.contains(&format!("line {n}")),
        "the error names the line\n{}",
        out.show()
    );
    assert_eq!(dir.lines("runs.txt"), ["a"], "nothing ran again");
}

/// Two operators resume the same run at once (or one resumes a run that is not
/// dead): the second is refused, and the live run is not disturbed.
#[test]
fn a_second_resume_of_a_live_run_is_refused() {
    let dir = Dir::new();
    dir.runbook(
        "edge",
        &format!(
        "[[phase]]\nid = \"p\"\n\n  [[phase.step]]\n  id = \"gate\"\n  kind = \"confirm\"\n\n{}{}",
        shell("long", "echo long >> runs.txt; sleep 2", ""),
        shell("after", "echo after >> runs.txt", ""),
    ),
    );
    dir.run(&[]).assert_code(1, "stops at the gate");
    let j = std::fs::read_dir(dir.file("runs/edge"))
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.path())
        .expect("the journal under runs/edge");
    let j_arg = j.display().to_string();
    let mut live = dir.start(&["--resume", "--yes"]);
    wait_for(&j, &mut live, "`long` to start", |recs| {
        !events(recs, "started", Some("long")).is_empty()
    });
    for args in [
        &["--resume", "--yes", "--journal", j_arg.as_str()][..],
        &["--resume", "--yes"][..], // the default choice: the newest unfinished journal
    ] {
        let second = dir.run(args);
        second.assert_code(2, "a second resume of a live run");
        assert!(
            second.stderr.contains("another ferry process"),
            "{}",
            second.show()
        );
    }
    let out = live.finish();
    out.assert_code(0, "the live run finishes undisturbed");
    assert_eq!(dir.lines("runs.txt"), ["long", "after"]);
    let report = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["report", j_arg.as_str(), "--format", "json"])
        .current_dir(dir.path())
        .output()
        .expect("run ferry report");
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        text.contains("\"chain_ok\": true") || text.contains("\"chain_ok\":true"),
        "{text}"
    );
}

/// A timeout under a second is said as it was written, not rounded down to "0s",
/// and the journal keeps it exactly (older journals keep whole seconds only).
#[test]
fn a_sub_second_timeout_is_said_exactly() {
    let dir = Dir::new();
    dir.runbook(
        "subsecond",
        &format!(
            "[[phase]]\nid = \"p\"\n\n{}",
            shell("naps", "sleep 5", "  timeout = \"1500ms\"")
        ),
    );
    let out = dir.run(&["--yes"]);
    out.assert_code(1, "a step that times out");
    assert!(
        out.stdout
            .contains("naps: failed — timed out after 1s 500ms"),
        "{}",
        out.show()
    );
    let recs = entries(&dir.journal());
    let fin = events(&recs, "finished", Some("naps"));
    assert_eq!(fin.len(), 1, "{}", dump(&recs));
    let o = &fin[0]["entry"]["outcome"];
    assert_eq!(
        (
            o["outcome"].as_str(),
            o["after_secs"].as_u64(),
            o["after_ms"].as_u64()
        ),
        (Some("timed_out"), Some(1), Some(1500)),
        "{}",
        dump(&recs)
    );
}
