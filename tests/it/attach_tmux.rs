//! End to end in tmux: alice's `ferry run` console in one session, bob's
//! `ferry attach --operate` in a second and carol's read-only `ferry attach`
//! in a third, each a real terminal of its own tmux server (`-L`, killed by a
//! guard). Carol's `c` is refused; bob confirms with `c` `y`; both bob's and
//! alice's screens show the step succeeded, confirmed by bob; bob leaves and
//! the run goes on; the journal names bob. Then alice quits while carol
//! watches, and carol's console says the run was stopped.

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

use crate::support;
use support::tmux::Tmux;

/// alice's, bob's and carol's terminals.
fn terminals() -> Tmux {
    Tmux::start(
        "attach",
        &[("alice", 100, 30), ("bob", 100, 30), ("carol", 100, 30)],
    )
}

const RB: &str = r#"
[runbook]
name = "attach-e2e"
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

  [[phase.step]]
  id = "final-check"
  kind = "confirm"
  title = "Everyone agrees we are done"
"#;

/// The row of the runbook pane (the left 30 columns) showing `step`.
fn row(screen: &str, step: &str) -> String {
    screen
        .lines()
        .map(|l| l.chars().take(30).collect::<String>())
        .find(|l| l.starts_with('┃') && l.contains(&format!(" {step} ")))
        .unwrap_or_default()
}

#[test]
fn a_second_operator_attaches_and_confirms_while_a_third_watches() {
    let t = terminals();
    std::fs::write(t.path().join("rb.toml"), RB).unwrap_or_else(|e| panic!("{e}"));
    let ferry = FERRY;
    t.line(
        "alice",
        &format!("{ferry} run rb.toml --operator alice; echo ALICE-EXIT=$?"),
    );
    t.wait_for("alice", "the console awaiting go-ahead", |s| {
        row(s, "go-ahead").contains("awaiting you")
    });

    // carol watches: `c` is refused, nothing opens
    t.line(
        "carol",
        &format!("{ferry} attach rb.toml --operator carol; echo CAROL-EXIT=$?"),
    );
    t.wait_for("carol", "carol's console", |s| {
        s.contains("attached read-only")
    });
    t.keys("carol", &["c"]);
    t.wait_for("carol", "the read-only refusal", |s| {
        s.contains("read-only: attach with --operate to act")
    });
    assert!(!t.capture("carol").contains("Confirm `go-ahead`"));

    // bob operates: the confirm dialog names him; c y runs the step
    t.line(
        "bob",
        &format!("{ferry} attach --operate --operator bob; echo BOB-EXIT=$?"),
    );
    t.wait_for("alice", "alice's status bar naming both", |s| {
        // everyone here is root: the name each gave, and the login the kernel vouches for
        s.contains("alice (+carol (root) observing, +bob (root) operating)")
    });
    t.keys("bob", &["c"]);
    t.wait_for("bob", "bob's confirm dialog", |s| {
        s.contains("Confirm `go-ahead` as bob")
    });
    t.keys("bob", &["y"]);
    for who in ["bob", "alice", "carol"] {
        let s = t.wait_for(who, "go-ahead succeeded, by bob", |s| {
            let r = row(s, "go-ahead");
            r.contains('✔') && r.contains("bob")
        });
        assert!(row(&s, "hello").contains('✔'), "{who}:\n{s}");
    }

    // bob leaves: the run goes on, alice's bar drops him
    t.keys("bob", &["q"]);
    t.wait_for("bob", "the leave prompt", |s| {
        s.contains("leaving this one stops nothing")
    });
    t.keys("bob", &["y"]);
    t.wait_for("bob", "bob's shell", |s| s.contains("BOB-EXIT=0"));
    let bob_out = t.capture("bob");
    assert!(
        bob_out.contains("left the console; the run goes on"),
        "{bob_out}"
    );
    t.wait_for("alice", "alice's bar without bob", |s| {
        s.contains("alice (+carol (root) observing)")
    });

    // alice quits with carol attached: asked first, then the run stops for carol too
    t.keys("alice", &["q"]);
    t.wait_for("alice", "the quit prompt", |s| {
        s.contains("Attached: carol.")
    });
    t.keys("alice", &["y"]);
    t.wait_for("alice", "alice's shell", |s| s.contains("ALICE-EXIT="));
    t.wait_for("carol", "carol told the run stopped", |s| {
        s.contains("the run was stopped from its own console")
    });
    t.keys("carol", &["q"]);
    t.wait_for("carol", "carol's shell", |s| s.contains("CAROL-EXIT=0"));

    // the journal names bob as the one who confirmed, and both visits
    let dir = t.path().join("runs/attach-e2e");
    let journal = std::fs::read_dir(&dir)
        .ok()
        .and_then(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        })
        .unwrap_or_else(|| panic!("no journal in {}", dir.display()));
    let text = std::fs::read_to_string(&journal).unwrap_or_default();
    let confirm = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["entry"]["type"] == "confirm")
        .unwrap_or_else(|| panic!("no confirmation in the journal"));
    assert_eq!(confirm["entry"]["by"]["operator"], "bob");
    assert!(text.contains("carol@") && text.contains("attached (read-only"));
    assert!(text.contains("bob@") && text.contains("detached: left"));
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "sock"))
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "the socket is gone: {leftovers:?}");
}
