//! End to end: the real `ferry` binary in tmux, driven with `send-keys` and read
//! with `capture-pane`. Each test has its own tmux server (`-L` socket, killed
//! by a guard) and its own temporary directory; `scripts/test` points
//! `TMUX_TMPDIR` into the rig so no developer's tmux is touched.
//!
//! - confirm with `c` `y`, watch the step change, resize to 200×50 and see the
//!   wide layout, quit with `q`, and find the terminal cooked again (`stty -a`);
//! - SIGTERM while a `sleep 30` step runs: the terminal is restored and the
//!   journal shows the step stopped (cancelled → interrupted on resume);
//! - `NO_COLOR`: no colour escape at all, while a normal run has some.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// A tmux server of our own, killed on drop.
struct Tmux {
    socket: String,
    /// The socket file, removed after the server is killed.
    socket_path: Option<PathBuf>,
    dir: tempfile::TempDir,
}

fn tmux_raw(socket: &str, args: &[&str]) -> Output {
    match Command::new("tmux")
        .arg("-L")
        .arg(socket)
        .arg("-f")
        .arg("/dev/null")
        .args(args)
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("cannot run tmux (scripts/test installs it): {e}"),
    }
}

impl Tmux {
    fn start(name: &str, w: u16, h: u16) -> Tmux {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let socket = format!("ferry-e2e-{}-{name}", std::process::id());
        let mut t = Tmux {
            socket,
            socket_path: None,
            dir,
        };
        let (w, h) = (w.to_string(), h.to_string());
        let cwd = t.path().display().to_string();
        let out = tmux_raw(
            &t.socket,
            &[
                "new-session",
                "-d",
                "-x",
                &w,
                "-y",
                &h,
                "-c",
                &cwd,
                "-e",
                "PS1=$ ",
                "bash",
                "--norc",
                "--noprofile",
            ],
        );
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = t.tmux(&["display-message", "-p", "#{socket_path}"]).stdout;
        let path = String::from_utf8_lossy(&path).trim().to_string();
        t.socket_path = (!path.is_empty()).then(|| PathBuf::from(path));
        t
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn tmux(&self, args: &[&str]) -> Output {
        tmux_raw(&self.socket, args)
    }

    /// Type `text` literally, then press Enter.
    fn line(&self, text: &str) {
        self.tmux(&["send-keys", "-l", text]);
        self.tmux(&["send-keys", "Enter"]);
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", k]);
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn capture(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p"]).stdout).into_owned()
    }

    /// The screen with its colour and attribute escapes.
    fn capture_escaped(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-e"]).stdout).into_owned()
    }

    /// Poll the screen until `pred` holds; fail with the last screen after `secs`.
    #[track_caller]
    fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let screen = self.capture();
            if pred(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Run `stty -a` in the pane (after ferry exited) and return its output.
    #[track_caller]
    fn stty(&self) -> String {
        self.line("stty -a > stty.txt; echo STTY-DONE");
        self.wait_for("stty to run", 10, |s| s.contains("\nSTTY-DONE"));
        std::fs::read_to_string(self.path().join("stty.txt")).unwrap_or_default()
    }

    fn write(&self, name: &str, text: &str) {
        if let Err(e) = std::fs::write(self.path().join(name), text) {
            panic!("write {name}: {e}");
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = tmux_raw(&self.socket, &["kill-server"]);
        if let Some(p) = &self.socket_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[track_caller]
fn assert_cooked(stty: &str) {
    let flags: Vec<&str> = stty
        .split(|c: char| c.is_whitespace() || c == ';')
        .collect();
    for f in ["icanon", "echo", "isig"] {
        assert!(
            flags.contains(&f),
            "the terminal is not cooked: `{f}` missing from stty -a:\n{stty}"
        );
    }
}

fn journal_in(dir: &Path, runbook: &str) -> PathBuf {
    let d = dir.join("runs").join(runbook);
    let found = std::fs::read_dir(&d)
        .ok()
        .and_then(|mut it| it.find_map(|e| e.ok().map(|e| e.path())));
    match found {
        Some(p) => p,
        None => panic!("no journal under {}", d.display()),
    }
}

const CONFIRM_SHELL: &str = r#"
[runbook]
name = "tmux-e2e"
title = "Console end to end"
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

#[test]
fn confirm_resize_and_quit_leave_a_cooked_terminal() {
    let t = Tmux::start("confirm", 80, 24);
    t.write("rb.toml", CONFIRM_SHELL);
    t.line(&format!(
        "TERM=tmux-256color {FERRY} run rb.toml --operator alice"
    ));
    t.wait_for("the console", 20, |s| {
        s.contains("? go-ahead") && s.contains("awaiting you")
    });
    let screen = t.capture();
    assert!(
        screen.contains(" UTC · alice · journal "),
        "the status bar names the operator:\n{screen}"
    );
    t.keys(&["c"]);
    t.wait_for("the confirm dialog", 10, |s| {
        s.contains("Confirm `go-ahead`") && s.contains("y confirm")
    });
    t.keys(&["y"]);
    let screen = t.wait_for("the step confirmed and the run done", 10, |s| {
        s.contains("✔ go-ahead") && s.contains("✔ hello")
    });
    assert!(
        screen.contains("alice"),
        "who confirmed is shown:\n{screen}"
    );
    assert!(
        screen.lines().all(|l| l.chars().count() <= 80),
        "80 columns:\n{screen}"
    );

    t.tmux(&["resize-window", "-x", "200", "-y", "50"]);
    let screen = t.wait_for("the wide layout", 10, |s| {
        s.contains("Replication lag") && s.contains("no lag monitor in this runbook")
    });
    assert!(
        screen.contains("no row-count monitor in this runbook"),
        "{screen}"
    );
    assert!(
        screen.contains("no metric monitor in this runbook"),
        "{screen}"
    );
    assert!(
        screen.lines().any(|l| l.chars().count() > 150),
        "200 columns:\n{screen}"
    );

    t.keys(&["q"]);
    if t.capture().contains("Quit while steps run?") {
        t.keys(&["y"]);
    }
    let screen = t.wait_for("ferry to exit", 15, |s| {
        s.contains("finished: every step succeeded")
    });
    assert!(
        !screen.contains("Runbook ·"),
        "the alternate screen is gone:\n{screen}"
    );
    assert_cooked(&t.stty());
    let journal = std::fs::read_to_string(journal_in(t.path(), "tmux-e2e")).unwrap_or_default();
    assert!(
        journal.contains(r#""type":"confirm","step":"go-ahead""#),
        "{journal}"
    );
    assert!(journal.contains(r#""operator":"alice""#), "{journal}");
    assert!(journal.contains(r#""automatic":false"#), "{journal}");
}

const NAP: &str = r#"
[runbook]
name = "tmux-nap"
title = "Interrupted by a signal"
format = 1

[[phase]]
id = "main"

  [[phase.step]]
  id = "nap"
  kind = "shell"
  run = "echo napping; sleep 30"
  confirm = "none"

  [[phase.step]]
  id = "after"
  kind = "shell"
  run = "echo after > after.txt"
  confirm = "none"
"#;

#[test]
fn sigterm_during_a_step_restores_the_terminal_and_journals_the_step_stopped() {
    let t = Tmux::start("sigterm", 80, 24);
    t.write("nap.toml", NAP);
    t.line(&format!(
        "sh -c 'echo $$ > ferry.pid; exec env TERM=screen-256color {FERRY} run nap.toml'"
    ));
    t.wait_for("the step running", 20, |s| {
        s.contains("▶ nap") && s.contains("napping")
    });
    let pid: i32 = std::fs::read_to_string(t.path().join("ferry.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ferry.pid"));
    // SAFETY: kill has no memory preconditions; the pid is the ferry we started.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill -TERM {pid}");
    let screen = t.wait_for("ferry to stop", 20, |s| {
        s.contains("interrupted: running steps were stopped")
    });
    assert!(screen.contains("--resume"), "says how to resume:\n{screen}");
    assert!(
        !screen.contains("Runbook ·"),
        "the alternate screen is gone:\n{screen}"
    );
    assert_cooked(&t.stty());

    let journal = std::fs::read_to_string(journal_in(t.path(), "tmux-nap")).unwrap_or_default();
    let entries: Vec<serde_json::Value> = journal
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let stopped = entries.iter().any(|r| {
        let e = &r["entry"];
        e["type"] == "finished" && e["step"] == "nap" && e["outcome"]["outcome"] == "cancelled"
    });
    assert!(stopped, "the journal shows `nap` stopped:\n{journal}");
    assert!(
        !entries.iter().any(|r| r["entry"]["kind"] == "closed"),
        "the run stays resumable:\n{journal}"
    );
    assert!(!t.path().join("after.txt").exists(), "`after` must not run");
}

/// Colour escapes (SGR 30–37, 38, 40–47, 48, 90–97, 100–107) in a captured screen.
fn colour_escapes(screen: &str) -> usize {
    let mut n = 0;
    for seq in screen.split("\u{1b}[").skip(1) {
        let params = seq.split('m').next().unwrap_or("");
        if params.len() > 24 {
            continue;
        }
        for p in params.split(';') {
            if let Ok(v) = p.parse::<u32>() {
                if matches!(v, 30..=37 | 38 | 40..=47 | 48 | 90..=97 | 100..=107) {
                    n += 1;
                }
            }
        }
    }
    n
}

#[test]
fn no_color_means_no_colour_escapes_and_glyphs_still_tell_states_apart() {
    let rb = r#"
[runbook]
name = "tmux-mono"
title = "No colour"
format = 1
[[phase]]
id = "main"
  [[phase.step]]
  id = "first"
  kind = "shell"
  run = "false"
  confirm = "none"
  [[phase.step]]
  id = "second"
  kind = "confirm"
  depends_on = []
"#;
    for (no_color, name) in [(true, "mono"), (false, "colour")] {
        let t = Tmux::start(name, 100, 30);
        t.write("rb.toml", rb);
        let env = if no_color { "NO_COLOR=1 " } else { "" };
        t.line(&format!("{env}TERM=tmux-256color {FERRY} run rb.toml"));
        t.wait_for("the failed and awaiting steps", 20, |s| {
            s.contains("✘ first") && s.contains("? second")
        });
        let escaped = t.capture_escaped();
        let n = colour_escapes(&escaped);
        if no_color {
            assert_eq!(n, 0, "NO_COLOR run has colour escapes:\n{escaped:?}");
        } else {
            assert!(
                n > 0,
                "a normal run should use colour (else this test proves nothing)"
            );
        }
        t.keys(&["q"]);
        t.wait_for("ferry to exit", 15, |s| {
            s.contains("stopped:") || s.contains("halted:")
        });
    }
}
