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

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

use crate::support;
use support::tmux::Tmux;

/// The one terminal of these tests.
const ONE: &str = "main";

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
    let t = Tmux::start("confirm", &[(ONE, 80, 24)]);
    t.write("rb.toml", CONFIRM_SHELL);
    t.line(
        ONE,
        &format!("TERM=tmux-256color {FERRY} run rb.toml --operator alice"),
    );
    t.wait_for_secs(ONE, "the console", 20, |s| {
        s.contains("? go-ahead") && s.contains("awaiting you")
    });
    let screen = t.capture(ONE);
    assert!(
        screen.contains(" UTC · alice · journal "),
        "the status bar names the operator:\n{screen}"
    );
    t.keys(ONE, &["c"]);
    t.wait_for_secs(ONE, "the confirm dialog", 10, |s| {
        s.contains("Confirm `go-ahead`") && s.contains("y confirm")
    });
    t.keys(ONE, &["y"]);
    let screen = t.wait_for_secs(ONE, "the step confirmed and the run done", 10, |s| {
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
    let screen = t.wait_for_secs(ONE, "the wide layout", 10, |s| {
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

    t.keys(ONE, &["q"]);
    if t.capture(ONE).contains("Quit while steps run?") {
        t.keys(ONE, &["y"]);
    }
    let screen = t.wait_for_secs(ONE, "ferry to exit", 15, |s| {
        s.contains("finished: every step succeeded")
    });
    assert!(
        !screen.contains("Runbook ·"),
        "the alternate screen is gone:\n{screen}"
    );
    assert_cooked(&t.stty(ONE));
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
    let t = Tmux::start("sigterm", &[(ONE, 80, 24)]);
    t.write("nap.toml", NAP);
    t.line(
        ONE,
        &format!("sh -c 'echo $$ > ferry.pid; exec env TERM=screen-256color {FERRY} run nap.toml'"),
    );
    t.wait_for_secs(ONE, "the step running", 20, |s| {
        s.contains("▶ nap") && s.contains("napping")
    });
    let pid: i32 = std::fs::read_to_string(t.path().join("ferry.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ferry.pid"));
    // SAFETY: kill has no memory preconditions; the pid is the ferry we started.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill -TERM {pid}");
    let screen = t.wait_for_secs(ONE, "ferry to stop", 20, |s| {
        s.contains("interrupted: running steps were stopped")
    });
    assert!(screen.contains("--resume"), "says how to resume:\n{screen}");
    assert!(
        !screen.contains("Runbook ·"),
        "the alternate screen is gone:\n{screen}"
    );
    assert_cooked(&t.stty(ONE));

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
        let t = Tmux::start(name, &[(ONE, 100, 30)]);
        t.write("rb.toml", rb);
        let env = if no_color { "NO_COLOR=1 " } else { "" };
        t.line(ONE, &format!("{env}TERM=tmux-256color {FERRY} run rb.toml"));
        t.wait_for_secs(ONE, "the failed and awaiting steps", 20, |s| {
            s.contains("✘ first") && s.contains("? second")
        });
        let escaped = t.capture_escaped(ONE);
        let n = colour_escapes(&escaped);
        if no_color {
            assert_eq!(n, 0, "NO_COLOR run has colour escapes:\n{escaped:?}");
        } else {
            assert!(
                n > 0,
                "a normal run should use colour (else this test proves nothing)"
            );
        }
        t.keys(ONE, &["q"]);
        t.wait_for_secs(ONE, "ferry to exit", 15, |s| {
            s.contains("stopped:") || s.contains("halted:")
        });
    }
}
