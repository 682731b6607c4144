//! End to end in tmux: the real console with `--rehearsals` over five
//! rehearsals made by real headless runs, while a slow step eats a short
//! window: the timeline row's projected end and rollback budget, the step's
//! rehearsed median/p90 and its overrun mark, the budget's warning, and the
//! budget in the confirm dialog of the point of no return.

use crate::support;
use std::process::Command;
use support::tmux::Tmux;

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");
const ONE: &str = "main";

fn runbook(window_secs: u64) -> String {
    format!(
        "[runbook]\nname = \"rehearse\"\nformat = 1\n{}",
        crate::rehearsal::body(window_secs)
    )
}

#[test]
fn the_console_shows_eta_overrun_and_the_budget_running_out() {
    let t = Tmux::start("rehearse", &[(ONE, 80, 24)]);
    t.write("rb.toml", &runbook(3600));
    for n in 0..5 {
        let fail = if n == 2 { "fail=1" } else { "fail=0" };
        let out = Command::new(FERRY)
            .current_dir(t.path())
            .args(["run", "rb.toml", "--headless", "--yes", "--var", fail])
            .env("XDG_STATE_HOME", t.path().join("state"))
            .output()
            .unwrap_or_else(|e| panic!("ferry: {e}"));
        assert_eq!(
            out.status.code(),
            Some(if n == 2 { 1 } else { 0 }),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // a 15 s window from now; copy takes 11 s where it took 0.2 s
    t.write("rb.toml", &runbook(15));
    t.line(
        ONE,
        &format!(
            "TERM=tmux-256color XDG_STATE_HOME=state {FERRY} run rb.toml --operator alice --rehearsals 'runs/rehearse/*.jsonl' --var copy_secs=11"
        ),
    );
    let screen = t.wait_for_secs(ONE, "the timeline row", 20, |s| {
        s.contains("rollback budget") && s.contains("end ~") && s.contains("▶ copy")
    });
    // copy's rehearsed median and p90 beside its live duration
    assert!(screen.contains("~0s/0s"), "{screen}");
    let screen = t.wait_for_secs(ONE, "copy past its p90", 10, |s| s.contains("⚠>p90"));
    assert!(screen.contains("▶ copy"), "{screen}");
    // 20% of the window is 3 s: about 11.5 s in, copy has eaten the budget
    let screen = t.wait_for_secs(ONE, "the budget's warning", 25, |s| {
        s.contains("⚠ rollback budget") || s.contains("✘ rollback no longer fits")
    });
    assert!(
        screen.lines().all(|l| l.chars().count() <= 80),
        "80 columns:\n{screen}"
    );
    // promote, the point of no return, waits for the operator: its dialog shows the budget
    t.wait_for_secs(ONE, "promote awaiting", 20, |s| s.contains("? promote"));
    t.keys(ONE, &["c"]);
    let screen = t.wait_for_secs(ONE, "the confirm dialog", 10, |s| {
        s.contains("Confirm `promote`")
    });
    assert!(screen.contains("window: "), "{screen}");
    assert!(
        screen.contains("rollback budget") || screen.contains("rollback no longer fits"),
        "{screen}"
    );
    t.keys(ONE, &["Escape"]);
    t.keys(ONE, &["q"]);
    if t.wait_for_secs(ONE, "the quit question or the shell", 10, |s| {
        s.contains("Quit") || s.contains("stopped:")
    })
    .contains("Quit")
    {
        t.keys(ONE, &["y"]);
    }
    t.wait_for_secs(ONE, "ferry to exit", 15, |s| s.contains("stopped:"));
}
