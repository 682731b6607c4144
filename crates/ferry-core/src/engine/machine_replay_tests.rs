//! Replay, interrupted rollbacks and automatic rollbacks: more transition
//! tables for the state machine. No IO, no async: events in, effects out.

use super::*;
use crate::engine::effect::Effect;
use crate::engine::machine::testkit::*;
use crate::vocab::{Event, Outcome, RunStatus, StepState};

fn confirm(step: &str) -> Event {
    confirmation(step, true)
}

fn started(step: &str, attempt: u32) -> Event {
    Event::Started {
        step: step.into(),
        attempt,
    }
}

fn executes(fx: &[Effect]) -> Vec<String> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Execute { step, .. } => Some(step.clone()),
            _ => None,
        })
        .collect()
}

fn replay(m: &mut Machine, events: &[Event]) {
    m.start();
    for e in events {
        m.handle(e);
    }
}

const AB: &str = r#"
  [[phase.step]]
  id = "a"
  kind = "shell"
  run = "true"
  confirm = "none"
  [[phase.step]]
  id = "b"
  kind = "shell"
  run = "true"
  [[phase.step]]
  id = "c"
  kind = "confirm"
"#;

/// A step inserted before finished ones (resume with --accept-changes): the
/// journal says `b` ran and succeeded, so it stays succeeded although the new
/// runbook would have made it wait for the new step.
#[test]
fn a_replay_against_an_edited_runbook_keeps_what_the_journal_says_ran() {
    let journal = vec![
        started("a", 1),
        ok("a", 1),
        confirm("b"),
        started("b", 1),
        ok("b", 1),
    ];
    let edited = AB.replace(
        "  [[phase.step]]\n  id = \"b\"",
        "  [[phase.step]]\n  id = \"new\"\n  kind = \"shell\"\n  run = \"true\"\n  confirm = \"none\"\n  [[phase.step]]\n  id = \"b\"",
    );
    let mut m = Machine::new(&rb(&edited));
    replay(&mut m, &journal);
    assert_eq!(m.state("b"), Some(StepState::Succeeded));
    // the new step never ran: it is not "interrupted", it simply starts
    assert!(m.running().is_empty(), "{:?}", m.running());
    let fx = m.start();
    assert_eq!(executes(&fx), vec!["new".to_string()]);
    assert_eq!(m.state("c"), Some(StepState::AwaitingConfirmation));
}

/// The same when the edit made a finished step two-person: its journaled
/// confirmation no longer passes, but it did run.
#[test]
fn a_step_made_two_person_after_it_ran_is_not_run_again() {
    let journal = vec![
        started("a", 1),
        ok("a", 1),
        Event::Decided {
            by: alice(),
            decision: Decision::Confirm {
                step: "b".into(),
                automatic: false,
                typed: None,
                evidence: vec![],
            },
        },
        started("b", 1),
        ok("b", 1),
    ];
    let edited = AB.replace(
        "  id = \"b\"\n  kind = \"shell\"\n  run = \"true\"",
        "  id = \"b\"\n  kind = \"shell\"\n  run = \"true\"\n  confirm = \"two-person\"",
    );
    let mut m = Machine::new(&rb(&edited));
    replay(&mut m, &journal);
    assert_eq!(m.state("b"), Some(StepState::Succeeded));
    assert_eq!(m.state("c"), Some(StepState::AwaitingConfirmation));
}

/// Killed between journaling a step's confirmation and its `Started`: it never
/// ran, yet only an operator may start it again, so it comes back interrupted.
#[test]
fn a_confirmed_step_that_never_started_comes_back_interrupted() {
    let mut m = Machine::new(&rb(AB));
    replay(&mut m, &[started("a", 1), ok("a", 1), confirm("b")]);
    assert_eq!(m.running(), vec!["b".to_string()]);
}

const UNDO: &str = r#"
  [[phase.step]]
  id = "x"
  kind = "shell"
  run = "false"
  confirm = "none"
  on_failure = "rollback"
  rollback = { run = "sleep 5" }
  [[phase.step]]
  id = "y"
  kind = "confirm"
"#;

/// Killed while `x`'s rollback ran: the resume must not hang on a rollback
/// nobody runs. `x` comes back interrupted, and a retry runs the rollback again
/// (not the step), after which the run halts as it would have.
#[test]
fn a_rollback_killed_midway_comes_back_interrupted_and_a_retry_reruns_it() {
    let mut m = Machine::new(&rb(UNDO));
    replay(&mut m, &[started("x", 1), fail("x", 1)]);
    assert_eq!(m.state("x"), Some(StepState::RollingBack));
    assert_eq!(m.running(), vec!["x".to_string()]);
    m.handle(&Event::Interrupted {
        steps: vec!["x".into()],
    });
    assert_eq!(m.state("x"), Some(StepState::Interrupted));
    assert_eq!(
        m.run_status(),
        RunStatus::Waiting {
            steps: vec!["x".into()]
        }
    );
    let fx = m.handle(&Event::Decided {
        by: alice(),
        decision: Decision::Retry { step: "x".into() },
    });
    assert!(
        fx.contains(&Effect::RunRollback { step: "x".into() }),
        "{fx:?}"
    );
    assert!(executes(&fx).is_empty(), "{fx:?}");
    m.handle(&Event::RollbackFinished {
        step: "x".into(),
        outcome: Outcome::Succeeded {
            summary: "exit 0".into(),
        },
    });
    assert_eq!(m.state("x"), Some(StepState::RolledBack));
    assert_eq!(m.run_status(), RunStatus::Halted { step: "x".into() });
    assert_eq!(m.state("y"), Some(StepState::Pending));
}

/// Stopped (Ctrl-C) while its rollback ran: the same, not "rollback failed".
#[test]
fn a_cancelled_rollback_is_interrupted_not_failed() {
    let mut m = Machine::new(&rb(UNDO));
    replay(&mut m, &[started("x", 1), fail("x", 1)]);
    m.handle(&Event::RollbackFinished {
        step: "x".into(),
        outcome: Outcome::Cancelled,
    });
    assert_eq!(m.state("x"), Some(StepState::Interrupted));
    assert!(m.step("x").is_some_and(|s| s.rollback_interrupted));
}

/// The step's own failure stays its outcome; the rollback's is kept beside it.
#[test]
fn a_rolled_back_step_keeps_why_it_failed() {
    let mut m = Machine::new(&rb(UNDO));
    replay(&mut m, &[started("x", 1), fail("x", 1)]);
    m.handle(&Event::RollbackFinished {
        step: "x".into(),
        outcome: Outcome::Succeeded {
            summary: "exit 0".into(),
        },
    });
    let s = m.step("x").cloned();
    assert_eq!(
        s.as_ref().and_then(|s| s.last_outcome.clone()),
        Some(Outcome::Failed {
            error: "exit status 1".into()
        })
    );
    assert_eq!(
        s.and_then(|s| s.rollback_outcome),
        Some(Outcome::Succeeded {
            summary: "exit 0".into()
        })
    );
}

/// `on_failure = "rollback"` with a list of undo steps that need confirmation:
/// the run is waiting for those confirmations, not halted, until they ran.
#[test]
fn undo_steps_awaiting_confirmation_keep_the_run_waiting_not_halted() {
    let mut m = Machine::new(&rb(r#"
  [[phase.step]]
  id = "x"
  kind = "shell"
  run = "false"
  confirm = "none"
  on_failure = "rollback"
  rollback = ["undo"]
  [[phase.step]]
  id = "undo"
  kind = "shell"
  run = "true"
"#));
    replay(&mut m, &[started("x", 1), fail("x", 1)]);
    assert_eq!(m.state("undo"), Some(StepState::AwaitingConfirmation));
    assert_eq!(
        m.run_status(),
        RunStatus::Waiting {
            steps: vec!["undo".into()]
        }
    );
    m.handle(&confirm("undo"));
    m.handle(&started("undo", 1));
    m.handle(&ok("undo", 1));
    assert_eq!(m.state("x"), Some(StepState::RolledBack));
    assert_eq!(m.run_status(), RunStatus::Halted { step: "x".into() });
}

/// An automatic rollback is not an explicit one: past a succeeded point of no
/// return it is refused (saying why) and the run halts for the operator.
#[test]
fn an_automatic_rollback_past_the_point_of_no_return_is_refused() {
    let mut m = Machine::new(&rb(r#"
  [[phase.step]]
  id = "x"
  kind = "shell"
  run = "sleep 2; false"
  confirm = "none"
  depends_on = []
  on_failure = "rollback"
  rollback = { run = "echo undo" }
  [[phase.step]]
  id = "promote"
  kind = "shell"
  run = "true"
  depends_on = []
  confirm = "two-person"
  point_of_no_return = true
"#));
    replay(&mut m, &[started("x", 1), confirm("promote")]);
    m.handle(&started("promote", 1));
    m.handle(&ok("promote", 1));
    let fx = m.handle(&fail("x", 1));
    assert!(
        !fx.contains(&Effect::RunRollback { step: "x".into() }),
        "{fx:?}"
    );
    let reason = fx.iter().find_map(|e| match e {
        Effect::Rejected(r) => Some(r.to_string()),
        _ => None,
    });
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.contains("point of no return") && r.contains("promote")),
        "{fx:?}"
    );
    assert_eq!(m.state("x"), Some(StepState::Failed));
    assert_eq!(m.run_status(), RunStatus::Halted { step: "x".into() });
}

/// While the run is halted, an automatic confirmation (a rehearsal's) starts
/// nothing new; an operator may still confirm, and undo steps may go.
#[test]
fn a_halted_run_takes_no_automatic_confirmation() {
    let mut m = Machine::new(&rb(r#"
  [[phase.step]]
  id = "x"
  kind = "shell"
  run = "false"
  depends_on = []
  [[phase.step]]
  id = "slow"
  kind = "shell"
  run = "sleep 9"
  depends_on = []
  [[phase.step]]
  id = "y"
  kind = "shell"
  run = "true"
  depends_on = []
"#));
    replay(
        &mut m,
        &[
            confirm("x"),
            started("x", 1),
            confirm("slow"),
            started("slow", 1),
        ],
    );
    m.handle(&fail("x", 1));
    assert_eq!(m.state("y"), Some(StepState::AwaitingConfirmation));
    let fx = m.handle(&confirm("y"));
    assert!(executes(&fx).is_empty(), "{fx:?}");
    assert_eq!(m.state("y"), Some(StepState::AwaitingConfirmation));
    let by_hand = Event::Decided {
        by: alice(),
        decision: Decision::Confirm {
            step: "y".into(),
            automatic: false,
            typed: None,
            evidence: vec![],
        },
    };
    assert_eq!(executes(&m.handle(&by_hand)), vec!["y".to_string()]);
}
