//! State-machine transition tables. No IO, no async: events in, effects out.

use super::*;
use crate::engine::effect::Effect;
use crate::engine::machine::testkit::*;
use crate::vocab::{Event, Outcome, RunStatus, StepState};
use rstest::rstest;
use std::time::Duration;

/// a (operator) -> b (operator, retries 2, backoff 1s) -> c (confirm none) ; undo-a rolls back a.
fn three() -> Machine {
    Machine::new(&rb(r#"
  [[phase.step]]
  id = "a"
  kind = "shell"
  run = "true"
  rollback = ["undo-a"]
  [[phase.step]]
  id = "b"
  kind = "shell"
  run = "true"
  retries = { max = 2, backoff = "1s" }
  rollback = { run = "echo undo b" }
  [[phase.step]]
  id = "c"
  kind = "shell"
  run = "true"
  confirm = "none"
[[phase]]
id = "undo"
  [[phase.step]]
  id = "undo-a"
  kind = "shell"
  run = "true"
  depends_on = []
"#))
}

fn confirm(step: &str) -> Event {
    confirmation(step, false)
}

fn exec(step: &str, attempt: u32) -> Effect {
    Effect::Execute {
        step: step.into(),
        attempt,
        timeout: None,
    }
}

fn rejected(fx: &[Effect]) -> bool {
    fx.iter().any(|e| matches!(e, Effect::Rejected { .. }))
}

#[test]
fn first_step_awaits_the_operator_and_nothing_runs_by_itself() {
    let mut m = three();
    let fx = m.start();
    assert_eq!(m.state("a"), Some(StepState::AwaitingConfirmation));
    assert_eq!(m.state("b"), Some(StepState::Pending));
    assert!(!fx.iter().any(|e| matches!(e, Effect::Execute { .. })));
    assert_eq!(
        m.run_status(),
        RunStatus::Waiting {
            steps: vec!["a".into()]
        }
    );
}

#[test]
fn confirm_then_success_moves_down_the_list_and_automatic_steps_start_alone() {
    let mut m = three();
    m.start();
    assert_eq!(m.handle(&confirm("a")).first(), Some(&exec("a", 1)));
    assert_eq!(m.state("a"), Some(StepState::Running));
    m.handle(&ok("a", 1));
    assert_eq!(m.state("b"), Some(StepState::AwaitingConfirmation));
    m.handle(&confirm("b"));
    let fx = m.handle(&ok("b", 1));
    assert!(
        fx.contains(&exec("c", 1)),
        "confirm = none starts at once: {fx:?}"
    );
    m.handle(&ok("c", 1));
    assert_eq!(m.run_status(), RunStatus::Finished { ok: true });
    assert_eq!(
        m.step("a").and_then(|s| s.confirmed_by.clone()),
        Some(alice())
    );
    assert!(m.step("c").is_some_and(|s| s.automatic));
    // the rollback-only step never ran
    assert_eq!(m.state("undo-a"), Some(StepState::Pending));
}

/// Drive step `b` of `three()` into `state`.
fn b_in(state: StepState) -> Machine {
    let mut m = three();
    m.start();
    if state == StepState::Pending {
        return m;
    }
    m.handle(&confirm("a"));
    m.handle(&ok("a", 1));
    match state {
        StepState::AwaitingConfirmation => {}
        StepState::Running => {
            m.handle(&confirm("b"));
        }
        StepState::RetryWait => {
            m.handle(&confirm("b"));
            m.handle(&fail("b", 1));
        }
        StepState::Failed => {
            m.handle(&confirm("b"));
            m.handle(&fail("b", 1));
            m.handle(&Event::RetryDue { step: "b".into() });
            m.handle(&fail("b", 2));
            m.handle(&Event::RetryDue { step: "b".into() });
            m.handle(&fail("b", 3));
        }
        StepState::Succeeded => {
            m.handle(&confirm("b"));
            m.handle(&ok("b", 1));
        }
        StepState::Skipped => {
            m.handle(&Event::Decided {
                by: alice(),
                decision: Decision::Skip {
                    step: "b".into(),
                    reason: "done by hand".into(),
                },
            });
        }
        StepState::Interrupted => {
            m.handle(&confirm("b"));
            m.handle(&Event::Interrupted {
                steps: vec!["b".into()],
            });
        }
        StepState::RollingBack => {
            m.handle(&confirm("b"));
            m.handle(&ok("b", 1));
            m.handle(&Event::Decided {
                by: alice(),
                decision: Decision::Rollback {
                    step: "b".into(),
                    override_point_of_no_return: false,
                },
            });
        }
        StepState::RolledBack => {
            m.handle(&confirm("b"));
            m.handle(&ok("b", 1));
            m.handle(&Event::Decided {
                by: alice(),
                decision: Decision::Rollback {
                    step: "b".into(),
                    override_point_of_no_return: false,
                },
            });
            m.handle(&Event::RollbackFinished {
                step: "b".into(),
                outcome: Outcome::Succeeded {
                    summary: "exit 0".into(),
                },
            });
        }
        StepState::Ready => unreachable!("not used"),
        StepState::Pending => unreachable!(),
    }
    assert_eq!(m.state("b"), Some(state), "setup of {state:?}");
    m
}

#[derive(Debug, Clone, Copy)]
enum Cmd {
    Confirm,
    Skip,
    Retry,
    Rollback,
}

fn command(c: Cmd) -> Event {
    match c {
        Cmd::Confirm => confirm("b"),
        Cmd::Skip => Event::Decided {
            by: alice(),
            decision: Decision::Skip {
                step: "b".into(),
                reason: "not needed".into(),
            },
        },
        Cmd::Retry => Event::Decided {
            by: alice(),
            decision: Decision::Retry { step: "b".into() },
        },
        Cmd::Rollback => Event::Decided {
            by: alice(),
            decision: Decision::Rollback {
                step: "b".into(),
                override_point_of_no_return: false,
            },
        },
    }
}

/// Every operator command against every state of step `b`: the new state, or
/// `None` when the command must be refused (and the state must not change).
#[rstest]
#[case(StepState::Pending, Cmd::Confirm, None)]
#[case(StepState::Pending, Cmd::Skip, Some(StepState::Skipped))]
#[case(StepState::Pending, Cmd::Retry, None)]
#[case(StepState::Pending, Cmd::Rollback, None)]
#[case(
    StepState::AwaitingConfirmation,
    Cmd::Confirm,
    Some(StepState::Running)
)]
#[case(StepState::AwaitingConfirmation, Cmd::Skip, Some(StepState::Skipped))]
#[case(StepState::AwaitingConfirmation, Cmd::Retry, None)]
#[case(StepState::AwaitingConfirmation, Cmd::Rollback, None)]
#[case(StepState::Running, Cmd::Confirm, None)]
#[case(StepState::Running, Cmd::Skip, None)]
#[case(StepState::Running, Cmd::Retry, None)]
#[case(StepState::Running, Cmd::Rollback, None)]
#[case(StepState::RetryWait, Cmd::Confirm, None)]
#[case(StepState::RetryWait, Cmd::Skip, Some(StepState::Skipped))]
#[case(StepState::RetryWait, Cmd::Retry, Some(StepState::Running))]
#[case(StepState::RetryWait, Cmd::Rollback, None)]
#[case(StepState::Failed, Cmd::Confirm, None)]
#[case(StepState::Failed, Cmd::Skip, Some(StepState::Skipped))]
#[case(StepState::Failed, Cmd::Retry, Some(StepState::Running))]
#[case(StepState::Failed, Cmd::Rollback, Some(StepState::RollingBack))]
#[case(StepState::Succeeded, Cmd::Confirm, None)]
#[case(StepState::Succeeded, Cmd::Skip, None)]
#[case(StepState::Succeeded, Cmd::Retry, None)]
#[case(StepState::Succeeded, Cmd::Rollback, Some(StepState::RollingBack))]
#[case(StepState::Skipped, Cmd::Confirm, None)]
#[case(StepState::Skipped, Cmd::Skip, None)]
#[case(StepState::Skipped, Cmd::Retry, None)]
#[case(StepState::Skipped, Cmd::Rollback, None)]
#[case(StepState::Interrupted, Cmd::Confirm, None)]
#[case(StepState::Interrupted, Cmd::Skip, Some(StepState::Skipped))]
#[case(StepState::Interrupted, Cmd::Retry, Some(StepState::Running))]
#[case(StepState::Interrupted, Cmd::Rollback, Some(StepState::RollingBack))]
#[case(StepState::RollingBack, Cmd::Confirm, None)]
#[case(StepState::RollingBack, Cmd::Skip, None)]
#[case(StepState::RollingBack, Cmd::Retry, None)]
#[case(StepState::RollingBack, Cmd::Rollback, None)]
#[case(StepState::RolledBack, Cmd::Confirm, None)]
#[case(StepState::RolledBack, Cmd::Skip, Some(StepState::Skipped))]
#[case(StepState::RolledBack, Cmd::Retry, Some(StepState::Running))]
#[case(StepState::RolledBack, Cmd::Rollback, None)]
fn command_by_state(#[case] state: StepState, #[case] cmd: Cmd, #[case] expect: Option<StepState>) {
    let mut m = b_in(state);
    let fx = m.handle(&command(cmd));
    match expect {
        None => {
            assert!(
                rejected(&fx),
                "{cmd:?} in {state:?} must be refused: {fx:?}"
            );
            assert_eq!(
                m.state("b"),
                Some(state),
                "a refused command changes nothing"
            );
        }
        Some(new) => {
            assert!(
                !rejected(&fx),
                "{cmd:?} in {state:?} must be accepted: {fx:?}"
            );
            assert_eq!(m.state("b"), Some(new));
        }
    }
}

/// Engine-side events against the states they can meet.
#[rstest]
#[case(StepState::Running, ok("b", 1), StepState::Succeeded)]
#[case(StepState::Running, fail("b", 1), StepState::RetryWait)]
#[case(StepState::Running, Event::Finished { step: "b".into(), attempt: 1, outcome: Outcome::Cancelled }, StepState::Interrupted)]
#[case(StepState::Running, Event::Finished { step: "b".into(), attempt: 1, outcome: Outcome::TimedOut { after_secs: 5, after_ms: None } }, StepState::RetryWait)]
#[case(StepState::Running, ok("b", 7), StepState::Running)] // stale attempt: ignored
#[case(StepState::RetryWait, Event::RetryDue { step: "b".into() }, StepState::Running)]
#[case(StepState::AwaitingConfirmation, Event::RetryDue { step: "b".into() }, StepState::AwaitingConfirmation)]
#[case(StepState::Succeeded, fail("b", 1), StepState::Succeeded)]
#[case(StepState::RollingBack, Event::RollbackFinished { step: "b".into(), outcome: Outcome::Succeeded { summary: "ok".into() } }, StepState::RolledBack)]
#[case(StepState::RollingBack, Event::RollbackFinished { step: "b".into(), outcome: Outcome::Failed { error: "no".into() } }, StepState::Failed)]
#[case(StepState::Running, Event::Interrupted { steps: vec!["b".into()] }, StepState::Interrupted)]
fn engine_events_by_state(#[case] state: StepState, #[case] ev: Event, #[case] expect: StepState) {
    let mut m = b_in(state);
    m.handle(&ev);
    assert_eq!(m.state("b"), Some(expect));
}

#[test]
fn retries_back_off_doubling_then_fail_and_halt() {
    let mut m = b_in(StepState::Running);
    let fx = m.handle(&fail("b", 1));
    assert!(
        fx.contains(&Effect::ScheduleRetry {
            step: "b".into(),
            after: Duration::from_secs(1)
        }),
        "{fx:?}"
    );
    assert_eq!(
        m.handle(&Event::RetryDue { step: "b".into() }).first(),
        Some(&exec("b", 2))
    );
    let fx = m.handle(&fail("b", 2));
    assert!(
        fx.contains(&Effect::ScheduleRetry {
            step: "b".into(),
            after: Duration::from_secs(2)
        }),
        "{fx:?}"
    );
    m.handle(&Event::RetryDue { step: "b".into() });
    m.handle(&fail("b", 3));
    assert_eq!(m.state("b"), Some(StepState::Failed));
    assert_eq!(m.run_status(), RunStatus::Halted { step: "b".into() });
    assert_eq!(
        m.state("c"),
        Some(StepState::Pending),
        "nothing after a halted step runs"
    );
}

#[test]
fn backoff_is_capped() {
    assert_eq!(backoff(Duration::from_secs(1), 1), Duration::from_secs(1));
    assert_eq!(backoff(Duration::from_secs(1), 4), Duration::from_secs(8));
    assert_eq!(backoff(Duration::from_secs(60), 30), MAX_BACKOFF);
    assert_eq!(backoff(Duration::from_secs(1), 200), MAX_BACKOFF);
}

#[test]
fn skip_needs_a_reason_and_lets_dependents_go_on() {
    let mut m = b_in(StepState::AwaitingConfirmation);
    let fx = m.handle(&Event::Decided {
        by: alice(),
        decision: Decision::Skip {
            step: "b".into(),
            reason: "  ".into(),
        },
    });
    assert!(rejected(&fx));
    let fx = m.handle(&Event::Decided {
        by: alice(),
        decision: Decision::Skip {
            step: "b".into(),
            reason: "done by hand".into(),
        },
    });
    assert!(fx.contains(&exec("c", 1)));
    assert_eq!(
        m.step("b").and_then(|s| s.skip_reason.clone()).as_deref(),
        Some("done by hand")
    );
}

#[test]
fn continue_on_failure_finishes_with_failures() {
    let mut m = Machine::new(&rb(r#"
  [[phase.step]]
  id = "x"
  kind = "shell"
  run = "false"
  confirm = "none"
  on_failure = "continue"
  [[phase.step]]
  id = "y"
  kind = "shell"
  run = "true"
  confirm = "none"
"#));
    m.start();
    let fx = m.handle(&fail("x", 1));
    assert!(fx.contains(&exec("y", 1)));
    m.handle(&ok("y", 1));
    assert_eq!(m.run_status(), RunStatus::Finished { ok: false });
}

#[test]
fn continue_lets_the_next_step_go_on_but_not_one_that_names_the_failed_step() {
    let mut m = Machine::new(&rb(r#"
  [[phase.step]]
  id = "copy"
  kind = "shell"
  run = "false"
  confirm = "none"
  on_failure = "continue"
  [[phase.step]]
  id = "announce"
  kind = "shell"
  run = "true"
  confirm = "none"
  [[phase.step]]
  id = "verify"
  kind = "shell"
  run = "true"
  confirm = "none"
  depends_on = ["copy"]
"#));
    m.start();
    let fx = m.handle(&fail("copy", 1));
    assert!(
        fx.contains(&exec("announce", 1)),
        "the default next step goes on"
    );
    assert!(
        !fx.contains(&exec("verify", 1)),
        "verify needs copy to succeed"
    );
    let fx = m.handle(&ok("announce", 1));
    assert!(!fx.contains(&exec("verify", 1)));
    assert_eq!(m.step("verify").map(|s| s.state), Some(StepState::Pending));
    assert_eq!(
        m.run_status(),
        RunStatus::Waiting {
            steps: vec!["copy".into()]
        },
        "the run waits for a decision on the failed step"
    );
    // skipping the failed step (an operator's decision) releases its dependents
    let fx = m.handle(&Event::Decided {
        by: alice(),
        decision: Decision::Skip {
            step: "copy".into(),
            reason: "copied by hand".into(),
        },
    });
    assert!(fx.contains(&exec("verify", 1)), "{fx:?}");
}

#[test]
fn rollback_on_failure_runs_the_action_then_halts() {
    let mut m = Machine::new(&rb(r#"
  [[phase.step]]
  id = "x"
  kind = "shell"
  run = "false"
  confirm = "none"
  on_failure = "rollback"
  rollback = { run = "echo undo" }
  [[phase.step]]
  id = "y"
  kind = "confirm"
"#));
    m.start();
    let fx = m.handle(&fail("x", 1));
    assert!(
        fx.contains(&Effect::RunRollback { step: "x".into() }),
        "{fx:?}"
    );
    assert_eq!(m.run_status(), RunStatus::Active);
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

#[test]
fn rollback_with_steps_runs_the_rollback_only_steps_through_confirmation() {
    let mut m = three();
    m.start();
    m.handle(&confirm("a"));
    m.handle(&ok("a", 1));
    m.handle(&Event::Decided {
        by: alice(),
        decision: Decision::Rollback {
            step: "a".into(),
            override_point_of_no_return: false,
        },
    });
    assert_eq!(m.state("a"), Some(StepState::RollingBack));
    assert_eq!(m.state("undo-a"), Some(StepState::AwaitingConfirmation));
    assert_eq!(
        m.handle(&confirm("undo-a")).first(),
        Some(&exec("undo-a", 1))
    );
    m.handle(&ok("undo-a", 1));
    assert_eq!(m.state("a"), Some(StepState::RolledBack));
}

fn with_ponr() -> Machine {
    Machine::new(&rb(r#"
  [[phase.step]]
  id = "freeze"
  kind = "shell"
  run = "true"
  confirm = "none"
  rollback = { run = "echo unfreeze" }
  [[phase.step]]
  id = "promote"
  kind = "shell"
  run = "true"
  confirm = "two-person"
  point_of_no_return = true
"#))
}

#[test]
fn two_person_and_point_of_no_return_need_the_typed_id() {
    let mut m = with_ponr();
    m.start();
    m.handle(&ok("freeze", 1));
    assert!(rejected(&m.handle(&confirm("promote"))));
    let wrong = Event::Decided {
        by: alice(),
        decision: Decision::Confirm {
            step: "promote".into(),
            automatic: false,
            typed: Some("promot".into()),
            evidence: vec![],
        },
    };
    assert!(rejected(&m.handle(&wrong)));
    assert_eq!(m.state("promote"), Some(StepState::AwaitingConfirmation));
    let right = Event::Decided {
        by: alice(),
        decision: Decision::Confirm {
            step: "promote".into(),
            automatic: false,
            typed: Some("promote".into()),
            evidence: vec![],
        },
    };
    // typed right, alice only proposes: bob's approval runs it
    let fx = m.handle(&right);
    assert!(
        !fx.iter()
            .any(|e| matches!(e, Effect::Execute { .. } | Effect::Rejected(_))),
        "{fx:?}"
    );
    assert_eq!(m.state("promote"), Some(StepState::AwaitingConfirmation));
    let approve = Event::Decided {
        by: bob(),
        decision: Decision::Approve {
            step: "promote".into(),
            evidence_sha256: crate::vocab::evidence_sha256(&[]),
        },
    };
    assert_eq!(m.handle(&approve).first(), Some(&exec("promote", 1)));
}

#[test]
fn rollback_after_the_point_of_no_return_needs_the_override_and_says_why() {
    let mut m = with_ponr();
    m.start();
    m.handle(&ok("freeze", 1));
    let auto = Event::Decided {
        by: alice(),
        decision: Decision::Confirm {
            step: "promote".into(),
            automatic: true,
            typed: None,
            evidence: vec![],
        },
    };
    m.handle(&auto);
    m.handle(&ok("promote", 1));
    let fx = m.handle(&Event::Decided {
        by: alice(),
        decision: Decision::Rollback {
            step: "freeze".into(),
            override_point_of_no_return: false,
        },
    });
    let reason = fx.iter().find_map(|e| match e {
        Effect::Rejected(r) => Some(r.to_string()),
        _ => None,
    });
    let reason = reason.expect("refused");
    assert!(
        reason.contains("point of no return") && reason.contains("promote"),
        "{reason}"
    );
    assert_eq!(m.state("freeze"), Some(StepState::Succeeded));
    let fx = m.handle(&Event::Decided {
        by: alice(),
        decision: Decision::Rollback {
            step: "freeze".into(),
            override_point_of_no_return: true,
        },
    });
    assert!(fx.contains(&Effect::RunRollback {
        step: "freeze".into()
    }));
}

#[test]
fn rollback_before_the_point_of_no_return_is_plain() {
    let mut m = with_ponr();
    m.start();
    m.handle(&ok("freeze", 1));
    let fx = m.handle(&Event::Decided {
        by: alice(),
        decision: Decision::Rollback {
            step: "freeze".into(),
            override_point_of_no_return: false,
        },
    });
    assert!(
        fx.contains(&Effect::RunRollback {
            step: "freeze".into()
        }),
        "{fx:?}"
    );
}

#[test]
fn abort_cancels_running_steps_which_end_interrupted() {
    let mut m = b_in(StepState::Running);
    let fx = m.handle(&Event::Decided {
        by: alice(),
        decision: Decision::Abort {
            reason: "go/no-go said no".into(),
        },
    });
    assert!(fx.contains(&Effect::Cancel { step: "b".into() }));
    assert_eq!(
        m.run_status(),
        RunStatus::Active,
        "still active until the cancel lands"
    );
    m.handle(&Event::Finished {
        step: "b".into(),
        attempt: 1,
        outcome: Outcome::Cancelled,
    });
    assert_eq!(m.state("b"), Some(StepState::Interrupted));
    assert_eq!(m.run_status(), RunStatus::Aborted);
    assert!(rejected(&m.handle(&Event::Decided {
        by: alice(),
        decision: Decision::Retry { step: "b".into() }
    })));
}

#[test]
fn dependencies_not_file_order_decide_what_is_ready() {
    let mut m = Machine::new(&rb(r#"
  [[phase.step]]
  id = "a"
  kind = "confirm"
  [[phase.step]]
  id = "b"
  kind = "confirm"
  [[phase.step]]
  id = "c"
  kind = "confirm"
  depends_on = ["a"]
  [[phase.step]]
  id = "d"
  kind = "confirm"
  depends_on = ["b", "c"]
"#));
    m.start();
    m.handle(&confirm("a"));
    m.handle(&ok("a", 1));
    assert_eq!(m.state("b"), Some(StepState::AwaitingConfirmation));
    assert_eq!(m.state("c"), Some(StepState::AwaitingConfirmation));
    assert_eq!(m.state("d"), Some(StepState::Pending));
    m.handle(&confirm("c"));
    m.handle(&ok("c", 1));
    assert_eq!(m.state("d"), Some(StepState::Pending), "d still needs b");
    m.handle(&confirm("b"));
    m.handle(&ok("b", 1));
    assert_eq!(m.state("d"), Some(StepState::AwaitingConfirmation));
}

#[test]
fn replaying_the_same_events_rebuilds_the_same_state() {
    let events = vec![confirm("a"), ok("a", 1), confirm("b"), fail("b", 1)];
    let mut live = three();
    live.start();
    for e in &events {
        live.handle(e);
    }
    let mut replayed = three();
    replayed.start();
    for e in &events {
        replayed.handle(e);
    }
    let a: Vec<_> = live
        .steps()
        .map(|(id, s)| (id.to_string(), s.clone()))
        .collect();
    let b: Vec<_> = replayed
        .steps()
        .map(|(id, s)| (id.to_string(), s.clone()))
        .collect();
    assert_eq!(a, b);
    // a step waiting for its retry counts as running: its timer died with the process
    assert_eq!(live.running(), vec!["b".to_string()]);
    assert_eq!(live.state("b"), Some(StepState::RetryWait));
}

/// start (replicate) -> wait (confirm) [-> stop (replicate), when `with_stop`].
fn replication(with_stop: bool) -> Machine {
    let stop = if with_stop {
        "[[phase.step]]\nid = \"stop\"\nkind = \"replicate\"\naction = \"stop\"\nfrom = \"a\"\nto = \"b\"\nname = \"ferry_x\"\n"
    } else {
        ""
    };
    let text = format!(
        "[runbook]\nname = \"t\"\nformat = 1\n[connections.a]\nurl = \"postgres://h/a\"\n[connections.b]\nurl = \"postgres://h/b\"\n[[phase]]\nid = \"p\"\n[[phase.step]]\nid = \"start\"\nkind = \"replicate\"\naction = \"start\"\nfrom = \"a\"\nto = \"b\"\nname = \"ferry_x\"\n[[phase.step]]\nid = \"wait\"\nkind = \"confirm\"\n{stop}"
    );
    let rb = crate::runbook::load_str("t.toml", &text, std::path::Path::new("t.toml"))
        .unwrap_or_else(|e| panic!("{}", e.render()));
    Machine::new(&rb)
}

fn abort() -> Event {
    Event::Decided {
        by: alice(),
        decision: Decision::Abort {
            reason: "no-go".into(),
        },
    }
}

#[test]
fn abort_rolls_back_a_replication_start_so_no_slot_is_left() {
    let mut m = replication(false);
    m.start();
    m.handle(&confirmation("start", true));
    m.handle(&ok("start", 1));
    let fx = m.handle(&abort());
    assert!(
        fx.contains(&Effect::RunRollback {
            step: "start".into()
        }),
        "{fx:?}"
    );
    assert_eq!(
        m.run_status(),
        RunStatus::Active,
        "busy until the teardown ends"
    );
    m.handle(&Event::RollbackFinished {
        step: "start".into(),
        outcome: Outcome::Succeeded {
            summary: "dropped".into(),
        },
    });
    assert_eq!(m.state("start"), Some(StepState::RolledBack));
    assert_eq!(m.run_status(), RunStatus::Aborted);
}

#[test]
fn abort_after_the_stop_leaves_the_start_alone() {
    let mut m = replication(true);
    m.start();
    m.handle(&confirmation("start", true));
    m.handle(&ok("start", 1));
    m.handle(&confirmation("wait", true));
    m.handle(&ok("wait", 1));
    m.handle(&confirmation("stop", true));
    m.handle(&ok("stop", 1));
    assert_eq!(m.state("stop"), Some(StepState::Succeeded));
    let fx = m.handle(&abort());
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::RunRollback { .. })),
        "{fx:?}"
    );
}

#[test]
fn a_replication_start_rolls_back_without_a_rollback_key() {
    let mut m = replication(false);
    m.start();
    m.handle(&confirmation("start", true));
    m.handle(&ok("start", 1));
    let fx = m.handle(&Event::Decided {
        by: alice(),
        decision: Decision::Rollback {
            step: "start".into(),
            override_point_of_no_return: false,
        },
    });
    assert!(fx.contains(&Effect::RunRollback {
        step: "start".into()
    }));
}
