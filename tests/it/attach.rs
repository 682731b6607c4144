//! `ferry run` serves `ferry attach`: the real binary, headless with `--wait`
//! so it waits at a confirmation, and a client speaking the protocol over the
//! socket it prints. A read-only client is refused; an operating one confirms,
//! and the journal names him. A killed run's socket is stale: attach says so
//! (exit 3) and the resume replaces it. A `--socket` that is not a socket is
//! refused without touching it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

const RB: &str = r#"
[runbook]
name = "att"
title = "Attach end to end"
format = 1

[[phase]]
id = "main"
title = "Main"

  [[phase.step]]
  id = "go-ahead"
  kind = "confirm"
  title = "The team is ready"

  [[phase.step]]
  id = "hello"
  kind = "shell"
  run = "echo hello-from-ferry"
  confirm = "none"
"#;

/// `ferry run` in the background, its stdout read line by line.
struct Run {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Run {
    fn start(dir: &Path, args: &[&str]) -> Run {
        let mut child = Command::new(FERRY)
            .arg("run")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn ferry: {e}"));
        let out = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Run {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first stdout line holding `what` (fails after 20 s with what was seen).
    #[track_caller]
    fn wait_line(&mut self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(what) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "no line with {what:?}; stdout so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The socket the run printed.
    #[track_caller]
    fn socket(&mut self) -> PathBuf {
        let l = self.wait_line("ferry attach --socket ");
        let rest = l.split("--socket ").nth(1).unwrap_or_default();
        PathBuf::from(rest.trim_end_matches(" [--operate]"))
    }

    #[track_caller]
    fn exit_code(mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => {
                    while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                        self.seen.push(l);
                    }
                    return (st.code().unwrap_or(-1), self.seen.join("\n"));
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = self.child.kill();
                    panic!("ferry run did not end; stdout:\n{}", self.seen.join("\n"));
                }
            }
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client speaking the attach protocol.
struct Client {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Client {
    #[track_caller]
    fn hello(socket: &Path, operator: &str, operate: bool) -> Client {
        let s = UnixStream::connect(socket).unwrap_or_else(|e| panic!("connect: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap_or_default();
        let w = s.try_clone().unwrap_or_else(|e| panic!("{e}"));
        let mut c = Client {
            r: BufReader::new(s),
            w,
        };
        c.send(serde_json::json!({"type":"hello","protocol":ferry::attach::proto::PROTOCOL,"ferry_version":"test","operator":operator,"operate":operate}));
        let welcome = c.next().unwrap_or_default();
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        c
    }

    fn send(&mut self, v: serde_json::Value) {
        let _ = writeln!(self.w, "{v}");
    }

    fn next(&mut self) -> Option<serde_json::Value> {
        let mut l = String::new();
        match self.r.read_line(&mut l) {
            Ok(0) | Err(_) => None,
            Ok(_) => serde_json::from_str(&l).ok(),
        }
    }

    /// Read until `pred` holds; panics if the server closes first.
    #[track_caller]
    fn until(
        &mut self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        while let Some(m) = self.next() {
            if pred(&m) {
                return m;
            }
        }
        panic!("the server closed before {what}");
    }
}

fn state<'a>(m: &'a serde_json::Value, step: &str) -> &'a str {
    if m["type"] != "snapshot" {
        return "";
    }
    m["snapshot"]["steps"]
        .as_array()
        .and_then(|v| v.iter().find(|s| s["id"] == step))
        .and_then(|s| s["state"].as_str())
        .unwrap_or("")
}

fn journal_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn journal_of(socket: &Path) -> PathBuf {
    PathBuf::from(
        socket
            .to_string_lossy()
            .trim_end_matches(".sock")
            .to_string(),
    )
}

#[test]
fn an_attached_operator_confirms_a_headless_run_and_the_journal_names_him() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("rb.toml"), RB).unwrap_or_else(|e| panic!("{e}"));
    let mut run = Run::start(
        dir.path(),
        &["rb.toml", "--headless", "--wait", "--operator", "alice"],
    );
    let socket = run.socket();
    run.wait_line("go-ahead: awaits confirmation");
    let meta = std::fs::symlink_metadata(&socket).unwrap_or_else(|e| panic!("{e}"));
    assert!(meta.file_type().is_socket());
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "only the run's user may attach"
    );

    // read-only: the confirmation is refused and nothing happens
    let mut carol = Client::hello(&socket, "carol", false);
    carol.until("go-ahead awaiting", |m| {
        state(m, "go-ahead") == "awaiting_confirmation"
    });
    carol.send(serde_json::json!({"type":"decide","decision":{"decision":"confirm","step":"go-ahead","automatic":false,"typed":null,"evidence":[]}}));
    let denied = carol.until("a denial", |m| m["type"] == "denied");
    assert!(
        denied["reason"]
            .as_str()
            .unwrap_or("")
            .contains("--operate"),
        "{denied}"
    );

    // bob operates: his confirmation runs the step, and everyone sees it
    let mut bob = Client::hello(&socket, "bob", true);
    let snap = bob.until("both attendees", |m| {
        m["type"] == "snapshot" && m["snapshot"]["attached"].as_array().map_or(0, |a| a.len()) == 2
    });
    assert_eq!(snap["snapshot"]["operator"], "alice");
    bob.send(serde_json::json!({"type":"decide","decision":{"decision":"confirm","step":"go-ahead","automatic":false,"typed":null,"evidence":[{"label":"lag","value":"none"}]}}));
    let end = carol.until("the end", |m| m["type"] == "end");
    assert_eq!(end["status"]["status"], "finished", "{end}");
    assert_eq!(end["status"]["ok"], true, "{end}");

    let (code, out) = run.exit_code();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("go-ahead: confirmed by bob@"), "{out}");
    assert!(
        out.contains("bob@") && out.contains("attached (operating"),
        "{out}"
    );
    assert!(!socket.exists(), "the socket is removed when the run ends");

    let lines = journal_lines(&journal_of(&socket));
    let confirm = lines
        .iter()
        .find(|l| l["entry"]["kind"] == "event" && l["entry"]["type"] == "confirm")
        .unwrap_or_else(|| panic!("no confirmation journaled"));
    assert_eq!(confirm["entry"]["by"]["operator"], "bob");
    assert_eq!(confirm["entry"]["automatic"], false);
    assert_eq!(confirm["entry"]["evidence"][0]["label"], "lag");
    let session = lines
        .iter()
        .find(|l| l["entry"]["kind"] == "session")
        .unwrap_or_else(|| panic!("no session"));
    assert_eq!(session["entry"]["socket"], socket.display().to_string());
    // the report names bob as the one who confirmed
    let report = Command::new(FERRY)
        .args(["report"])
        .arg(journal_of(&socket))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let md = String::from_utf8_lossy(&report.stdout);
    assert!(md.contains("bob"), "{md}");
}

#[test]
fn a_killed_runs_socket_is_stale_attach_says_so_and_the_resume_replaces_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("rb.toml"), RB).unwrap_or_else(|e| panic!("{e}"));
    let mut run = Run::start(dir.path(), &["rb.toml", "--headless", "--wait"]);
    let socket = run.socket();
    run.wait_line("awaits confirmation");
    let _ = run.child.kill();
    let _ = run.child.wait();
    assert!(socket.exists(), "SIGKILL leaves the socket file behind");
    let journal = journal_of(&socket);

    // nothing answers: attach says so, exit 3, before asking for a terminal
    let out = Command::new(FERRY)
        .args(["attach", "--journal"])
        .arg(&journal)
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("nothing answers there"), "{err}");
    let out = Command::new(FERRY)
        .args(["attach", "rb.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("no live run of runbook `att`"), "{err}");

    // from another folder, the runbook's path finds runs/ beside it
    let elsewhere = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(FERRY)
        .arg("attach")
        .arg(dir.path().join("rb.toml"))
        .current_dir(elsewhere.path())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("or {}", dir.path().join("runs/att").display())),
        "{err}"
    );

    // the resume serves the same path again, and an operator finishes the run
    let mut resumed = Run::start(
        dir.path(),
        &[
            "rb.toml",
            "--resume",
            "--headless",
            "--wait",
            "--operator",
            "alice",
        ],
    );
    assert_eq!(resumed.socket(), socket);
    // and now, from that other folder, the runbook's path finds the live run
    let out = Command::new(FERRY)
        .arg("attach")
        .arg(dir.path().join("rb.toml"))
        .current_dir(elsewhere.path())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "found; only the terminal is missing: {err}"
    );
    assert!(err.contains("needs a terminal"), "{err}");
    let mut bob = Client::hello(&socket, "bob", true);
    bob.until("go-ahead awaiting", |m| {
        state(m, "go-ahead") == "awaiting_confirmation"
    });
    bob.send(serde_json::json!({"type":"decide","decision":{"decision":"confirm","step":"go-ahead","automatic":false,"typed":null,"evidence":[]}}));
    let (code, out) = resumed.exit_code();
    assert_eq!(code, 0, "{out}");
    assert!(!socket.exists());
}

#[test]
fn a_socket_path_that_is_not_a_socket_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("rb.toml"), RB).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("notes.txt"), "keep me").unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(FERRY)
        .args(["run", "rb.toml", "--headless", "--socket", "notes.txt"])
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt"))
            .ok()
            .as_deref(),
        Some("keep me")
    );
    // and no empty journal is left for a later --resume to trip on
    let journals: Vec<_> = std::fs::read_dir(dir.path().join("runs/att"))
        .map(|rd| rd.filter_map(|e| e.ok()).collect())
        .unwrap_or_default();
    assert!(journals.is_empty(), "{journals:?}");
}

#[test]
fn a_chosen_socket_is_found_through_the_journal() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("rb.toml"), RB).unwrap_or_else(|e| panic!("{e}"));
    let mut run = Run::start(
        dir.path(),
        &[
            "rb.toml",
            "--headless",
            "--wait",
            "--socket",
            "elsewhere.sock",
        ],
    );
    let socket = run.socket();
    assert_eq!(socket, dir.path().join("elsewhere.sock"));
    run.wait_line("awaits confirmation");
    let journal = std::fs::read_dir(dir.path().join("runs/att"))
        .ok()
        .and_then(|mut rd| rd.find_map(|e| e.ok().map(|e| e.path())))
        .unwrap_or_else(|| panic!("no journal"));
    // found and live: only the missing terminal stops it (exit 2, not 3)
    for args in [
        vec!["attach", "--journal", &journal.to_string_lossy()],
        vec!["attach"],
    ] {
        let out = Command::new(FERRY)
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("needs a terminal"), "{args:?}: {err}");
    }
    let mut bob = Client::hello(&socket, "bob", true);
    bob.until("go-ahead awaiting", |m| {
        state(m, "go-ahead") == "awaiting_confirmation"
    });
    bob.send(serde_json::json!({"type":"decide","decision":{"decision":"skip","step":"go-ahead","reason":"done by hand"}}));
    let (code, out) = run.exit_code();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("go-ahead: skipped by bob — done by hand"),
        "{out}"
    );
}
