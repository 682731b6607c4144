//! The harness of the end-to-end tests of `ferry run --headless`: the real binary in
//! a fresh temporary directory (its working directory, so `runs/` and the log land
//! there), under a 60s watchdog that kills a hung run and fails the test with what it
//! printed; and readers of the journal it wrote.

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest any single ferry process may run before the test gives up on it.
pub const WATCHDOG: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Running ferry
// ---------------------------------------------------------------------------------------------

/// What a finished ferry process left behind.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn show(&self) -> String {
        format!(
            "exit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32, what: &str) {
        assert_eq!(
            self.code,
            Some(code),
            "{what}: expected exit code {code}\n{}",
            self.show()
        );
    }
}

/// A ferry process started in the background.
pub struct Running {
    pub child: Child,
    pub what: String,
    pub stdout: Option<JoinHandle<Vec<u8>>>,
    pub stderr: Option<JoinHandle<Vec<u8>>>,
}

pub fn reader(pipe: Option<impl Read + Send + 'static>) -> Option<JoinHandle<Vec<u8>>> {
    pipe.map(|mut p| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = p.read_to_end(&mut buf);
            buf
        })
    })
}

impl Running {
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits in i32")
    }

    /// Whether the process has exited (without reaping its output).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    pub fn collect(&mut self, code: Option<i32>) -> Output {
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
    pub fn finish(mut self) -> Output {
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
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with a pid of our own child has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "{}: cannot send signal {sig} to ferry", self.what);
    }

    /// `kill -9` the process and collect what it printed.
    pub fn kill9(mut self) -> Output {
        self.signal(libc::SIGKILL);
        let status = self.child.wait().expect("wait for the killed ferry");
        self.collect(status.code())
    }
}

/// A temporary working directory for one test, with the environment its ferry runs get.
pub struct Dir {
    pub tmp: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Dir {
    /// A fresh directory; the log file (XDG_STATE_HOME) goes inside it too, so a test
    /// can read every file a run wrote.
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("create a temporary directory");
        let state = tmp.path().join("state").display().to_string();
        Dir {
            tmp,
            env: vec![("XDG_STATE_HOME".into(), state)],
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    pub fn env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Write `runbook.toml`: a `[runbook]` table named `name`, then `body`.
    pub fn runbook(&self, name: &str, body: &str) -> PathBuf {
        let text = format!("[runbook]\nname = \"{name}\"\nformat = 1\n\n{body}");
        let path = self.file("runbook.toml");
        std::fs::write(&path, text).expect("write the runbook");
        path
    }

    /// `ferry run runbook.toml --headless --operator tester ARGS...`, not started yet.
    pub fn command(&self, args: &[&str]) -> (Command, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
        cmd.current_dir(self.path())
            .args(["run", "runbook.toml", "--headless", "--operator", "tester"])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        let what = format!("ferry run runbook.toml --headless {}", args.join(" "));
        (cmd, what)
    }

    /// Start `ferry run runbook.toml --headless --operator tester ARGS...` in the background.
    pub fn start(&self, args: &[&str]) -> Running {
        let (mut cmd, what) = self.command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
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
    pub fn run(&self, args: &[&str]) -> Output {
        self.start(args).finish()
    }

    /// The journals under `runs/`.
    pub fn journals(&self) -> Vec<PathBuf> {
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
        // the order ferry names them in: "<stamp>.jsonl" before "<stamp>-2.jsonl"
        // (a plain sort puts "-2" first, since '-' sorts before '.')
        out.sort_by_key(|p| {
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            match stem.rsplit_once('-').map(|(s, n)| (s, n.parse::<u32>())) {
                Some((stamp, Ok(n))) => (p.parent().map(|d| d.to_path_buf()), stamp.to_string(), n),
                _ => (p.parent().map(|d| d.to_path_buf()), stem, 1),
            }
        });
        out
    }

    /// The one journal of this test's run.
    #[track_caller]
    pub fn journal(&self) -> PathBuf {
        let js = self.journals();
        assert_eq!(
            js.len(),
            1,
            "expected exactly one journal under runs/, found {js:?}"
        );
        js.into_iter().next().unwrap_or_default()
    }

    /// Lines of a text file the steps append to (empty when it does not exist).
    pub fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.file(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

pub fn count(lines: &[String], want: &str) -> usize {
    lines.iter().filter(|l| l.as_str() == want).count()
}

// ---------------------------------------------------------------------------------------------
// Reading journals
// ---------------------------------------------------------------------------------------------

/// Every line of a journal, parsed (panics, naming the line, on one that is not JSON).
pub fn entries(path: &Path) -> Vec<Value> {
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

pub fn kind(rec: &Value) -> &str {
    rec["entry"]["kind"].as_str().unwrap_or("")
}

/// Events of type `ty` (for `step`, when given).
pub fn events<'a>(recs: &'a [Value], ty: &str, step: Option<&str>) -> Vec<&'a Value> {
    recs.iter()
        .filter(|r| kind(r) == "event" && r["entry"]["type"] == ty)
        .filter(|r| step.is_none_or(|s| r["entry"]["step"] == s))
        .collect()
}

pub fn outcome(rec: &Value) -> &str {
    rec["entry"]["outcome"]["outcome"].as_str().unwrap_or("")
}

/// The journal as text, one entry per line, for failure messages.
pub fn dump(recs: &[Value]) -> String {
    recs.iter()
        .map(|r| r["entry"].to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn closed(recs: &[Value]) -> Option<&Value> {
    recs.iter().find(|r| kind(r) == "closed")
}

/// Poll the journal(s) of `dir` until `pred` holds; panic after `limit`.
pub fn wait_for_journal(
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
pub fn assert_chain_intact(path: &Path) {
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
pub fn append_step(id: &str, file: &str, extra: &str) -> String {
    format!(
        "  [[phase.step]]\n  id = \"{id}\"\n  kind = \"shell\"\n  run = \"echo {id} >> {file}\"\n{extra}\n"
    )
}

/// The complete lines of a journal that parse (a line may be half-written while ferry runs).
pub fn complete_entries(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The time stamp of a journal line.
pub fn ts(r: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(r["ts"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("bad ts in {r}: {e}"))
}

/// Wait until the journal at `path` satisfies `pred`; panic after 30s or when ferry exits.
pub fn wait_for(path: &Path, running: &mut Running, what: &str, pred: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if pred(&complete_entries(path)) {
            return;
        }
        if Instant::now() >= deadline || running.exited() {
            let _ = running.child.kill();
            let _ = running.child.wait();
            let out = running.collect(None);
            panic!(
                "gave up waiting for {what}\n{}\n--- journal ---\n{}",
                out.show(),
                dump(&complete_entries(path))
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
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

pub fn pgrep(marker: &str) -> Vec<i32> {
    let out = Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .expect("run pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

pub fn sleep_binary() -> PathBuf {
    ["/usr/bin/sleep", "/bin/sleep"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("a `sleep` binary in /usr/bin or /bin")
}
