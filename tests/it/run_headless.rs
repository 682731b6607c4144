//! End-to-end tests of `ferry run --headless` on the real binary, with no server:
//! confirm, shell, sql and wait steps on SQLite files in a fresh temporary directory
//! (the working directory of every ferry process, so `runs/` lands there too).
//!
//! They cover a full rehearsal (`--yes`), halting on a failed step, stopping for a
//! confirmation and resuming, secrets never reaching disk or screen, timeouts that leave
//! no process behind, automatic retries, `on_failure = "rollback"` and `"continue"`, logs
//! in the state directory; and two things the docs promise: a second new run in the same
//! second gets its own journal, and `${env:NAME}` expands in SQL text. Crashes and resume
//! are in `run_resume.rs`; the harness is `support/headless.rs`.

use crate::support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::headless::*;

// ---------------------------------------------------------------------------------------------
// 1. A full rehearsal
// ---------------------------------------------------------------------------------------------

#[test]
fn a_rehearsal_with_every_serverless_kind_succeeds_and_journals_everything() {
    let mut dir = Dir::new();
    let db = dir.file("app.db");
    dir.env("DB", db.to_str().expect("utf-8 path"));
    dir.runbook(
        "rehearsal",
        r#"
[connections.db]
url = "sqlite://${env:DB}"

[[phase]]
id = "pre"

  [[phase.step]]
  id = "team-ready"
  kind = "confirm"
  title = "Team on the bridge"

  [[phase.step]]
  id = "say-hello"
  kind = "shell"
  run = "echo hello-from-shell; echo shell-ran >> ran.txt"

[[phase]]
id = "cutover"

  [[phase.step]]
  id = "make-table"
  kind = "sql"
  connection = "db"
  sql = "create table users (id integer primary key); insert into users (id) values (1); select count(*) from users"
  expect = 1

  [[phase.step]]
  id = "users-there"
  kind = "wait"
  until = { sql = "select count(*) > 0 from users", connection = "db", for = "1s" }
  every = "100ms"
  timeout = "30s"
"#,
    );
    let out = dir.run(&["--yes"]);
    out.assert_code(0, "a rehearsal where every step succeeds");
    let steps = ["team-ready", "say-hello", "make-table", "users-there"];
    for s in steps {
        assert!(
            out.stdout.contains(s),
            "stdout never mentions step `{s}`\n{}",
            out.show()
        );
    }
    assert!(
        out.stdout.contains("hello-from-shell"),
        "the shell step's output is not on stdout\n{}",
        out.show()
    );
    assert_eq!(
        dir.lines("ran.txt"),
        ["shell-ran"],
        "the shell step should have run exactly once"
    );

    let recs = entries(&dir.journal());
    let last = recs.last().expect("journal is not empty");
    assert_eq!(
        kind(last),
        "closed",
        "the last journal entry must be `closed`\n{}",
        dump(&recs)
    );
    assert_eq!(
        last["entry"]["status"]["status"],
        "finished",
        "closed status\n{}",
        dump(&recs)
    );
    assert_eq!(
        last["entry"]["status"]["ok"],
        true,
        "closed status\n{}",
        dump(&recs)
    );
    assert_eq!(kind(&recs[0]), "header", "first entry\n{}", dump(&recs));
    for s in steps {
        let confirms = events(&recs, "confirm", Some(s));
        assert_eq!(
            confirms.len(),
            1,
            "step `{s}`: one confirmation\n{}",
            dump(&recs)
        );
        assert_eq!(
            confirms[0]["entry"]["automatic"], true,
            "step `{s}`: --yes confirmations are journaled as automatic"
        );
        assert_eq!(
            confirms[0]["entry"]["by"]["operator"], "tester",
            "step `{s}`: who confirmed"
        );
        assert_eq!(
            events(&recs, "started", Some(s)).len(),
            1,
            "step `{s}`: one start\n{}",
            dump(&recs)
        );
        let fin = events(&recs, "finished", Some(s));
        assert_eq!(fin.len(), 1, "step `{s}`: one finish\n{}", dump(&recs));
        assert_eq!(
            outcome(fin[0]),
            "succeeded",
            "step `{s}` should have succeeded\n{}",
            dump(&recs)
        );
    }
    // the wait step held its condition for the full `for = "1s"`
    let ts = |r: &Value| {
        chrono::DateTime::parse_from_rfc3339(r["ts"].as_str().unwrap_or_default())
            .expect("rfc3339 ts")
    };
    let held = ts(events(&recs, "finished", Some("users-there"))[0])
        - ts(events(&recs, "started", Some("users-there"))[0]);
    assert!(
        held >= chrono::Duration::milliseconds(990),
        "the wait step should take at least its `for = \"1s\"`, took {held}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. A failing step halts the run
// ---------------------------------------------------------------------------------------------

#[test]
fn a_failing_shell_step_halts_and_nothing_after_it_runs() {
    let dir = Dir::new();
    dir.runbook(
        "halts",
        r#"
[[phase]]
id = "p"

  [[phase.step]]
  id = "breaks"
  kind = "shell"
  run = "echo about to fail >&2; exit 3"

  [[phase.step]]
  id = "never"
  kind = "shell"
  run = "touch never-ran.marker"
"#,
    );
    let out = dir.run(&["--yes"]);
    out.assert_code(1, "a failed step halts the run");
    assert!(
        !dir.file("never-ran.marker").exists(),
        "the step after the failed one ran\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("breaks"),
        "stdout should name the failed step\n{}",
        out.show()
    );
    let recs = entries(&dir.journal());
    let fin = events(&recs, "finished", Some("breaks"));
    assert_eq!(fin.len(), 1, "one finish of `breaks`\n{}", dump(&recs));
    assert_eq!(
        outcome(fin[0]),
        "failed",
        "`breaks` must be journaled as failed\n{}",
        dump(&recs)
    );
    let error = fin[0]["entry"]["outcome"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.contains("exit status 3"),
        "the journaled failure should say `exit status 3`, got {error:?}"
    );
    assert!(
        events(&recs, "started", Some("never")).is_empty(),
        "`never` was started\n{}",
        dump(&recs)
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Without --yes: stop at the confirmation, then resume
// ---------------------------------------------------------------------------------------------

#[test]
fn without_yes_the_run_stops_at_a_confirmation_and_resume_finishes_it_once() {
    let dir = Dir::new();
    let body = format!(
        "[[phase]]\nid = \"p\"\n\n{}{}  [[phase.step]]\n  id = \"go-no-go\"\n  kind = \"confirm\"\n  title = \"Go / no-go call made\"\n\n{}",
        append_step("first", "count.txt", "  confirm = \"none\""),
        append_step("second", "count.txt", "  confirm = \"none\""),
        append_step("third", "count.txt", "  confirm = \"none\""),
    );
    dir.runbook("stops", &body);

    let out = dir.run(&[]);
    out.assert_code(
        1,
        "a run without --yes that reaches an operator confirmation",
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("go-no-go") && l.contains("confirm")),
        "stdout should say that step `go-no-go` awaits confirmation\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("--resume"),
        "stdout should say how to resume\n{}",
        out.show()
    );
    assert_eq!(
        dir.lines("count.txt"),
        ["first", "second"],
        "only the steps before the confirmation ran"
    );

    let out = dir.run(&["--resume", "--yes"]);
    out.assert_code(0, "--resume --yes after the stop");
    let lines = dir.lines("count.txt");
    assert_eq!(
        lines,
        ["first", "second", "third"],
        "every shell step ran exactly once over both runs\n{}",
        out.show()
    );
    let recs = entries(&dir.journal());
    assert_eq!(
        closed(&recs).map(|c| c["entry"]["status"]["ok"].clone()),
        Some(Value::Bool(true)),
        "closed ok\n{}",
        dump(&recs)
    );
    for s in ["first", "second", "third"] {
        assert_eq!(
            events(&recs, "started", Some(s)).len(),
            1,
            "step `{s}` started once\n{}",
            dump(&recs)
        );
    }
}

#[test]
fn secrets_from_the_environment_never_reach_the_journal_or_the_screen() {
    let mut dir = Dir::new();
    let tag = format!(
        "{}x{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let password = format!("pw-Zq{tag}-sEcReT");
    let token = format!("tok-Kv{tag}-AbC");
    dir.env("DB_PASSWORD", &password);
    dir.env("API_TOKEN", &token);
    dir.runbook(
        "secrets",
        r#"
[[phase]]
id = "p"

  [[phase.step]]
  id = "uses-password"
  kind = "shell"
  env = { X = "${env:DB_PASSWORD}" }
  run = 'echo "password is $X"; echo "token is $API_TOKEN" >&2; echo "inline ${env:DB_PASSWORD}"'

  [[phase.step]]
  id = "fails-loudly"
  kind = "shell"
  run = 'echo "bad token $API_TOKEN" >&2; exit 1'
  on_failure = "continue"
"#,
    );
    let out = dir.run(&["--yes"]);
    out.assert_code(1, "a run whose last step fails (on_failure = continue)");
    assert!(
        out.stdout.contains("password is"),
        "the step's output should be shown (masked)\n{}",
        out.show()
    );
    for (name, secret) in [("DB_PASSWORD", &password), ("API_TOKEN", &token)] {
        assert!(
            !out.stdout.contains(secret.as_str()),
            "{name} leaked to stdout\n{}",
            out.show()
        );
        assert!(
            !out.stderr.contains(secret.as_str()),
            "{name} leaked to stderr\n{}",
            out.show()
        );
    }
    let mut files = Vec::new();
    files_under(dir.path(), &mut files);
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|x| x == "jsonl")),
        "a journal was written: {files:?}"
    );
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for (name, secret) in [("DB_PASSWORD", &password), ("API_TOKEN", &token)] {
            assert!(
                !text.contains(secret.as_str()),
                "{name} leaked into {}:\n{text}",
                f.display()
            );
        }
    }
    let journal = std::fs::read_to_string(dir.journal()).unwrap_or_default();
    assert!(
        journal.contains("password is"),
        "the journal keeps the (masked) output line"
    );
}

#[test]
fn a_timed_out_step_fails_and_leaves_no_process_behind() {
    let dir = Dir::new();
    let marker = format!(
        "ferry-nap-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let nap = dir.file(&marker);
    std::os::unix::fs::symlink(sleep_binary(), &nap).expect("symlink sleep");
    dir.runbook(
        "timeouts",
        &format!(
            "[[phase]]\nid = \"p\"\n\n  [[phase.step]]\n  id = \"hangs\"\n  kind = \"shell\"\n  \
             run = \"./{marker} 30 & ./{marker} 30; echo done\"\n  timeout = \"1s\"\n"
        ),
    );
    let started = Instant::now();
    let out = dir.run(&["--yes"]);
    let took = started.elapsed();
    out.assert_code(1, "a step that times out");
    assert!(
        took < Duration::from_secs(15),
        "the 1s timeout took {took:?} to end the run"
    );
    assert!(
        out.stdout.contains("timed out"),
        "stdout should say the step timed out\n{}",
        out.show()
    );
    let recs = entries(&dir.journal());
    let fin = events(&recs, "finished", Some("hangs"));
    assert_eq!(fin.len(), 1, "one finish\n{}", dump(&recs));
    assert_eq!(
        outcome(fin[0]),
        "timed_out",
        "the journal records a timeout\n{}",
        dump(&recs)
    );

    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = pgrep(&marker);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        left = pgrep(&marker);
    }
    for pid in &left {
        // SAFETY: kill(2) on processes our own test started (found by their unique name).
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    assert!(
        left.is_empty(),
        "processes of the timed-out step survived the run: {left:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 11. Automatic retries
// ---------------------------------------------------------------------------------------------

#[test]
fn a_flaky_step_succeeds_on_its_third_attempt() {
    let dir = Dir::new();
    dir.runbook(
        "retries",
        r#"
[[phase]]
id = "p"

  [[phase.step]]
  id = "flaky"
  kind = "shell"
  run = 'n=$(cat tries.txt 2>/dev/null | wc -l); echo try >> tries.txt; echo "attempt $n"; [ "$n" -ge 2 ]'
  retries = { max = 3, backoff = "100ms" }
"#,
    );
    let out = dir.run(&["--yes"]);
    out.assert_code(0, "a step that fails twice, with 3 retries");
    assert_eq!(
        dir.lines("tries.txt").len(),
        3,
        "the step ran 3 times\n{}",
        out.show()
    );
    let recs = entries(&dir.journal());
    let starts = events(&recs, "started", Some("flaky"));
    assert_eq!(starts.len(), 3, "3 `started` events\n{}", dump(&recs));
    let attempts: Vec<u64> = starts
        .iter()
        .filter_map(|r| r["entry"]["attempt"].as_u64())
        .collect();
    assert_eq!(attempts, [1, 2, 3], "attempt numbers");
    let outcomes: Vec<&str> = events(&recs, "finished", Some("flaky"))
        .into_iter()
        .map(outcome)
        .collect();
    assert_eq!(
        outcomes,
        ["failed", "failed", "succeeded"],
        "outcomes\n{}",
        dump(&recs)
    );
    assert_eq!(
        events(&recs, "retry_due", Some("flaky")).len(),
        2,
        "two backoffs elapsed\n{}",
        dump(&recs)
    );
}

// ---------------------------------------------------------------------------------------------
// 12. on_failure = "rollback"
// ---------------------------------------------------------------------------------------------

#[test]
fn on_failure_rollback_runs_the_rollback_and_halts() {
    let dir = Dir::new();
    dir.runbook(
        "rollback",
        r#"
[[phase]]
id = "p"

  [[phase.step]]
  id = "risky"
  kind = "shell"
  run = "echo done >> state.txt; exit 1"
  on_failure = "rollback"
  rollback = { run = "echo undone >> state.txt" }

  [[phase.step]]
  id = "later"
  kind = "shell"
  run = "touch later.marker"
"#,
    );
    let out = dir.run(&["--yes"]);
    out.assert_code(1, "a failed step rolled back");
    assert_eq!(
        dir.lines("state.txt"),
        ["done", "undone"],
        "the rollback ran after the failure\n{}",
        out.show()
    );
    assert!(
        !dir.file("later.marker").exists(),
        "the run must halt after the rollback"
    );
    let recs = entries(&dir.journal());
    let rb = events(&recs, "rollback_finished", Some("risky"));
    assert_eq!(rb.len(), 1, "one rollback_finished\n{}", dump(&recs));
    assert_eq!(
        outcome(rb[0]),
        "succeeded",
        "the rollback succeeded\n{}",
        dump(&recs)
    );
}

// ---------------------------------------------------------------------------------------------
// 13. on_failure = "continue"
// ---------------------------------------------------------------------------------------------

#[test]
fn on_failure_continue_runs_later_steps_and_ends_with_failures() {
    let dir = Dir::new();
    let body = format!(
        "[[phase]]\nid = \"p\"\n\n  [[phase.step]]\n  id = \"status-page\"\n  kind = \"shell\"\n  run = \"exit 7\"\n  on_failure = \"continue\"\n\n{}{}",
        append_step("next", "count.txt", ""),
        append_step("last", "count.txt", ""),
    );
    dir.runbook("continues", &body);
    let out = dir.run(&["--yes"]);
    out.assert_code(1, "a run that finished with a failed (continue) step");
    assert_eq!(
        dir.lines("count.txt"),
        ["next", "last"],
        "later steps ran\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("finished with failures"),
        "stdout should say so\n{}",
        out.show()
    );
    let recs = entries(&dir.journal());
    let c = closed(&recs).unwrap_or_else(|| panic!("the run is closed\n{}", dump(&recs)));
    assert_eq!(
        c["entry"]["status"]["status"],
        "finished",
        "{}",
        dump(&recs)
    );
    assert_eq!(c["entry"]["status"]["ok"], false, "{}", dump(&recs));
    let fin = events(&recs, "finished", Some("status-page"));
    assert_eq!(
        fin.first().map(|r| outcome(r)),
        Some("failed"),
        "{}",
        dump(&recs)
    );
}

// ---------------------------------------------------------------------------------------------
// Extra: two new runs in the same second
// ---------------------------------------------------------------------------------------------

#[test]
fn two_new_runs_started_in_the_same_second_each_get_their_own_journal() {
    let dir = Dir::new();
    dir.runbook(
        "twice",
        "[[phase]]\nid = \"p\"\n\n  [[phase.step]]\n  id = \"quick\"\n  kind = \"shell\"\n  run = \"echo ran >> count.txt\"\n",
    );
    // start right after a second boundary, so both runs begin within the same second
    while chrono::Utc::now().timestamp_subsec_millis() > 100 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let first = dir.run(&["--yes"]);
    let second = dir.run(&["--yes"]);
    first.assert_code(0, "the first run");
    second.assert_code(
        0,
        "a second, new run of the same runbook right after the first",
    );
    assert_eq!(dir.lines("count.txt").len(), 2, "both runs ran the step");
    assert_eq!(
        dir.journals().len(),
        2,
        "each run has its own journal: {:?}",
        dir.journals()
    );
}

// ---------------------------------------------------------------------------------------------
// Extra: `${env:NAME}` in SQL (docs/runbook-format.md, "Templates": any string may contain it)
// ---------------------------------------------------------------------------------------------

#[test]
fn env_templates_in_sql_steps_and_wait_conditions_expand_at_run_time() {
    let mut dir = Dir::new();
    let db = dir.file("app.db");
    dir.env("DB", db.to_str().expect("utf-8 path"));
    dir.env("CHANGE_ID", "chg-4821");
    dir.runbook(
        "envsql",
        r#"
[connections.db]
url = "sqlite://${env:DB}"

[[phase]]
id = "p"

  [[phase.step]]
  id = "record-change"
  kind = "sql"
  connection = "db"
  sql = "create table log (change text); insert into log values ('${env:CHANGE_ID}'); select change from log"
  expect = "chg-4821"

  [[phase.step]]
  id = "change-recorded"
  kind = "wait"
  until = { sql = "select count(*) from log where change = '${env:CHANGE_ID}'", connection = "db" }
  every = "100ms"
  timeout = "5s"
"#,
    );
    let out = dir.run(&["--yes"]);
    out.assert_code(0, "sql and wait steps using ${env:CHANGE_ID}");
    assert!(
        !out.stdout.contains("${env:"),
        "a template reached the database unexpanded\n{}",
        out.show()
    );
}

// ---------------------------------------------------------------------------------------------
// Logs go to a file in the state directory, never to the screen, and never hold a secret
// ---------------------------------------------------------------------------------------------

#[test]
fn logs_go_to_the_state_directory_and_are_redacted() {
    let mut dir = Dir::new();
    let state = dir.path().join("state");
    let secret = format!("log-secret-{}-pw", std::process::id());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    dir.env("XDG_STATE_HOME", &state.display().to_string());
    dir.env("FERRY_LOG", "debug");
    dir.env(
        "DB_URL",
        &format!("postgres://app:{secret}@127.0.0.1:{port}/app"),
    );
    dir.runbook(
        "logged",
        r#"
[connections.db]
url = "${env:DB_URL}"

[[monitor.metric]]
name = "probe"
sql = { connection = "db", query = "select 1", every = "200ms" }

[[phase]]
id = "p"

  [[phase.step]]
  id = "quick"
  kind = "shell"
  run = "sleep 2; echo done"
"#,
    );
    let out = dir.run(&["--yes"]);
    out.assert_code(
        0,
        "the run itself succeeds; only the monitor's source is down",
    );
    let log = std::fs::read_to_string(state.join("ferry/ferry.log"))
        .expect("ferry.log in $XDG_STATE_HOME/ferry");
    assert!(
        log.contains("step finished"),
        "the log records the run:\n{log}"
    );
    assert!(
        log.contains("connection attempt failed"),
        "and the failing monitor source:\n{log}"
    );
    assert!(
        !log.contains(&secret),
        "the password never reaches the log:\n{log}"
    );
    assert!(
        !out.stdout.contains("connection attempt failed")
            && !out.stderr.contains("connection attempt failed"),
        "logs never go to the screen"
    );
}
