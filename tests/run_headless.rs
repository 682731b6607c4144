//! End-to-end tests of `ferry run --headless` on the real binary, with no server:
//! confirm, shell, sql and wait steps on SQLite files in a fresh temporary directory
//! (the working directory of every ferry process, so `runs/` lands there too).
//!
//! They cover a full rehearsal (`--yes`), halting on a failed step, stopping for a
//! confirmation and resuming, `kill -9` and SIGTERM mid-step followed by `--resume`,
//! a tampered, truncated or torn journal, a changed runbook on resume, secrets never
//! reaching disk or screen, timeouts that leave no process behind, automatic retries,
//! `on_failure = "rollback"` and `on_failure = "continue"`; and two things the docs promise:
//! a second new run in the same second gets its own journal, and `${env:NAME}` expands in
//! SQL text (docs/runbook-format.md, "Templates").
//!
//! Every ferry process runs under a 60s watchdog: a hang kills it and fails the test
//! with whatever it printed so far.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest any single ferry process may run before the test gives up on it.
const WATCHDOG: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Running ferry
// ---------------------------------------------------------------------------------------------

/// What a finished ferry process left behind.
#[derive(Debug)]
struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Output {
    fn show(&self) -> String {
        format!(
            "exit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    #[track_caller]
    fn assert_code(&self, code: i32, what: &str) {
        assert_eq!(
            self.code,
            Some(code),
            "{what}: expected exit code {code}\n{}",
            self.show()
        );
    }
}

/// A ferry process started in the background.
struct Running {
    child: Child,
    what: String,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> Option<JoinHandle<Vec<u8>>> {
    pipe.map(|mut p| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = p.read_to_end(&mut buf);
            buf
        })
    })
}

impl Running {
    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits in i32")
    }

    /// Whether the process has exited (without reaping its output).
    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    fn collect(&mut self, code: Option<i32>) -> Output {
        let text = |h: Option<JoinHandle<Vec<u8>>>| {
            h.and_then(|h| h.join().ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        Output {
            code,
            stdout: text(self.stdout.take()),
            stderr: text(self.stderr.take()),
        }
    }

    /// Wait for the process to exit; kill it and panic if it runs past the watchdog.
    fn finish(mut self) -> Output {
        let deadline = Instant::now() + WATCHDOG;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return self.collect(status.code()),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let out = self.collect(None);
                    panic!(
                        "{}: ferry hung for more than {}s and was killed\n{}",
                        self.what,
                        WATCHDOG.as_secs(),
                        out.show()
                    );
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("{}: cannot wait for ferry: {e}", self.what),
            }
        }
    }

    /// Send `sig` to the process (not to its children).
    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with a pid of our own child has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "{}: cannot send signal {sig} to ferry", self.what);
    }

    /// `kill -9` the process and collect what it printed.
    fn kill9(mut self) -> Output {
        self.signal(libc::SIGKILL);
        let status = self.child.wait().expect("wait for the killed ferry");
        self.collect(status.code())
    }
}

/// A temporary working directory for one test, with the environment its ferry runs get.
struct Dir {
    tmp: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Dir {
    fn new() -> Self {
        Dir {
            tmp: tempfile::tempdir().expect("create a temporary directory"),
            env: Vec::new(),
        }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    fn env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Write `runbook.toml`: a `[runbook]` table named `name`, then `body`.
    fn runbook(&self, name: &str, body: &str) -> PathBuf {
        let text = format!("[runbook]\nname = \"{name}\"\nformat = 1\n\n{body}");
        let path = self.file("runbook.toml");
        std::fs::write(&path, text).expect("write the runbook");
        path
    }

    /// Start `ferry run runbook.toml --headless --operator tester ARGS...` in the background.
    fn start(&self, args: &[&str]) -> Running {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
        cmd.current_dir(self.path())
            .args(["run", "runbook.toml", "--headless", "--operator", "tester"])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let what = format!("ferry run runbook.toml --headless {}", args.join(" "));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start ferry: {e}"));
        let stdout = reader(child.stdout.take());
        let stderr = reader(child.stderr.take());
        Running {
            child,
            what,
            stdout,
            stderr,
        }
    }

    /// Run ferry to the end (under the watchdog).
    fn run(&self, args: &[&str]) -> Output {
        self.start(args).finish()
    }

    /// The journals under `runs/`.
    fn journals(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let Ok(names) = std::fs::read_dir(self.file("runs")) else {
            return out;
        };
        for d in names.filter_map(|e| e.ok()) {
            if let Ok(files) = std::fs::read_dir(d.path()) {
                out.extend(
                    files
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x == "jsonl")),
                );
            }
        }
        out.sort();
        out
    }

    /// The one journal of this test's run.
    #[track_caller]
    fn journal(&self) -> PathBuf {
        let js = self.journals();
        assert_eq!(
            js.len(),
            1,
            "expected exactly one journal under runs/, found {js:?}"
        );
        js.into_iter().next().unwrap_or_default()
    }

    /// Lines of a text file the steps append to (empty when it does not exist).
    fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.file(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn count(lines: &[String], want: &str) -> usize {
    lines.iter().filter(|l| l.as_str() == want).count()
}

// ---------------------------------------------------------------------------------------------
// Reading journals
// ---------------------------------------------------------------------------------------------

/// Every line of a journal, parsed (panics, naming the line, on one that is not JSON).
fn entries(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read journal {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                panic!(
                    "journal {} line {} is not JSON ({e}): {l}",
                    path.display(),
                    i + 1
                )
            })
        })
        .collect()
}

fn kind(rec: &Value) -> &str {
    rec["entry"]["kind"].as_str().unwrap_or("")
}

/// Events of type `ty` (for `step`, when given).
fn events<'a>(recs: &'a [Value], ty: &str, step: Option<&str>) -> Vec<&'a Value> {
    recs.iter()
        .filter(|r| kind(r) == "event" && r["entry"]["type"] == ty)
        .filter(|r| step.is_none_or(|s| r["entry"]["step"] == s))
        .collect()
}

fn outcome(rec: &Value) -> &str {
    rec["entry"]["outcome"]["outcome"].as_str().unwrap_or("")
}

/// The journal as text, one entry per line, for failure messages.
fn dump(recs: &[Value]) -> String {
    recs.iter()
        .map(|r| r["entry"].to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn closed(recs: &[Value]) -> Option<&Value> {
    recs.iter().find(|r| kind(r) == "closed")
}

/// Poll the journal(s) of `dir` until `pred` holds; panic after `limit`.
fn wait_for_journal(
    dir: &Dir,
    running: &mut Running,
    limit: Duration,
    what: &str,
    pred: impl Fn(&[Value]) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(j) = dir.journals().first() {
            // a line may be half-written right now: only look at complete lines
            let text = std::fs::read_to_string(j).unwrap_or_default();
            let recs: Vec<Value> = text
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if pred(&recs) {
                return;
            }
        }
        if running.exited() || Instant::now() >= deadline {
            let journal = dir
                .journals()
                .first()
                .map(|j| dump(&entries(j)))
                .unwrap_or_default();
            let _ = running.child.kill();
            let _ = running.child.wait();
            let out = running.collect(None);
            panic!(
                "gave up waiting for the journal to show {what} (ferry exited: {})\n{}\n--- journal ---\n{journal}",
                out.code.is_some(),
                out.show()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Check what the journal promises: each line ends in `\n`, `seq` counts from 0 and
/// each line's `prev` is the `hash` of the line before it.
fn assert_chain_intact(path: &Path) {
    let text = std::fs::read_to_string(path).expect("read journal");
    assert!(
        text.ends_with('\n'),
        "journal {} does not end with a newline",
        path.display()
    );
    let recs = entries(path);
    let mut prev = "0".repeat(64);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(
            r["seq"].as_u64(),
            Some(i as u64),
            "line {}: seq\n{}",
            i + 1,
            dump(&recs)
        );
        assert_eq!(
            r["prev"].as_str(),
            Some(prev.as_str()),
            "line {}: prev does not chain",
            i + 1
        );
        prev = r["hash"].as_str().unwrap_or_default().to_string();
    }
}

/// A step that appends `id` to `file` (a counter of how often it ran).
fn append_step(id: &str, file: &str, extra: &str) -> String {
    format!(
        "  [[phase.step]]\n  id = \"{id}\"\n  kind = \"shell\"\n  run = \"echo {id} >> {file}\"\n{extra}\n"
    )
}

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
// 8. Secrets stay out of every file and stream
// ---------------------------------------------------------------------------------------------

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.filter_map(|e| e.ok()) {
            let p = e.path();
            if p.is_dir() {
                files_under(&p, out);
            } else {
                out.push(p);
            }
        }
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

// ---------------------------------------------------------------------------------------------
// 9. A timeout kills the whole process group
// ---------------------------------------------------------------------------------------------

fn pgrep(marker: &str) -> Vec<i32> {
    let out = Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .expect("run pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn sleep_binary() -> PathBuf {
    ["/usr/bin/sleep", "/bin/sleep"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("a `sleep` binary in /usr/bin or /bin")
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
