//! `App::update` with injected keys: which commands each key sequence sends,
//! and which it must not. No terminal, no engine.

use super::*;
use crate::headless::Outcome;
use crate::tui::app::{Pane, Sel};
use crate::tui::overlay::Overlay;
use crate::tui::Action;
use ferry_core::engine::driver::{Command, Notice};
use ferry_core::journal::Entry;
use ferry_core::vocab::Refusal;

fn press(app: &mut App, keys: impl IntoIterator<Item = KeyEvent>) -> Vec<Command> {
    keys.into_iter()
        .flat_map(|k| app.update(Action::Key(k)))
        .collect()
}

fn refused(refusal: Refusal) -> Action {
    Action::Notice(Notice::Journaled {
        ts: now(),
        entry: Box::new(Entry::Refused {
            refusal,
            asked_by: None,
        }),
    })
}

fn awaiting(id: &str) -> EngineSnapshot {
    let mut s = scenario("finished");
    s.status = RunStatus::Waiting {
        steps: vec![id.into()],
    };
    let x = step(&mut s, id);
    x.state = StepState::AwaitingConfirmation;
    x.confirmed_by = None;
    x.started = None;
    x.finished = None;
    s
}

#[test]
fn c_then_y_confirms_with_the_evidence_on_screen() {
    let mut app = app_for(scenario("awaiting"), Theme::COLOR);
    assert!(press(&mut app, [key('c')]).is_empty());
    assert_eq!(
        app.overlay(),
        Some(&Overlay::Confirm {
            step: "copy".into(),
            typed: None
        })
    );
    // the rds-replica lag is stale: `y` alone confirms nothing and says why
    assert!(press(&mut app, [key('y')]).is_empty());
    assert!(app.message().is_some_and(|m| m.error
        && m.text
            .contains("some evidence is stale; Tab acknowledges it")));
    assert!(matches!(app.overlay(), Some(Overlay::Confirm { .. })));
    let cmds = press(&mut app, [code(KeyCode::Tab), key('y')]);
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    let Command::Decide(Decision::Confirm {
        step,
        typed,
        automatic,
        evidence,
    }) = &cmds[0]
    else {
        panic!("not a confirm: {cmds:?}")
    };
    assert_eq!(step, "copy");
    assert_eq!(typed, &None);
    assert!(!automatic);
    let ev: Vec<(String, String)> = evidence
        .iter()
        .map(|e| (e.label.clone(), e.value.clone()))
        .collect();
    assert_eq!(
        ev,
        vec![
            ("lag replica".into(), "1.4s (warn 5.0s, max 30.0s)".into()),
            (
                "lag rds-replica".into(),
                "stale for 1m35s: CloudWatch: throttled".into()
            ),
            (
                "row counts source → target".into(),
                "3 tables · 2 differ · source 208,000 · target 162,311 · 1 on one side only · 1 estimated · counted 4s ago".into()
            ),
            (
                "rows public.matches".into(),
                "source 88,000 · target 42,311 · Δ 45,689".into()
            ),
            (
                "rows public.messages".into(),
                "source 1,250,000 · target missing".into()
            ),
            ("verify".into(), "no verify step has finished yet".into()),
        ]
    );
    // each item's age; the stale one marked and acknowledged, the fresh ones not
    let flags: Vec<(Option<u64>, bool, bool)> = evidence
        .iter()
        .map(|e| (e.age_secs, e.stale, e.acknowledged))
        .collect();
    assert_eq!(flags[0], (Some(0), false, false), "{evidence:?}");
    assert_eq!(flags[1], (Some(0), true, true), "{evidence:?}");
    assert_eq!(flags[2], (Some(4), false, false), "{evidence:?}");
    assert_eq!(app.overlay(), None);
}

#[test]
fn evidence_says_when_there_is_no_monitor_and_names_the_last_verify() {
    let rb = bare_rb();
    let mut s = fresh(&rb);
    s.steps[0].state = StepState::AwaitingConfirmation;
    let mut app = App::new(rb, s, Arc::new(Redactor::new()), Theme::MONO, now());
    let cmds = press(&mut app, [key('c'), key('y')]);
    let Some(Command::Decide(Decision::Confirm { evidence, .. })) = cmds.first() else {
        panic!("no confirm: {cmds:?}")
    };
    let values: Vec<&str> = evidence.iter().map(|e| e.value.as_str()).collect();
    assert_eq!(
        values,
        vec![
            "no lag monitor in this runbook",
            "no row-count monitor in this runbook",
            "no verify step in this runbook"
        ]
    );
    let mut app = app_for(awaiting("promote"), Theme::MONO);
    let cmds = press(
        &mut app,
        [key('c'), code(KeyCode::Tab)]
            .into_iter()
            .chain(typed("promote"))
            .chain([code(KeyCode::Enter)]),
    );
    let Some(Command::Decide(Decision::Confirm { evidence, .. })) = cmds.first() else {
        panic!("no confirm: {cmds:?}")
    };
    let verify = evidence.iter().find(|e| e.label == "verify verify");
    assert_eq!(verify.map(|e| e.value.as_str()), Some("succeeded: ok"));
}

#[test]
fn two_person_and_point_of_no_return_steps_need_the_typed_id() {
    let mut app = app_for(awaiting("promote"), Theme::MONO);
    press(&mut app, [key('c')]);
    assert_eq!(
        app.overlay(),
        Some(&Overlay::Confirm {
            step: "promote".into(),
            typed: Some(String::new())
        })
    );
    // `y` is just a letter here, and a wrong id sends nothing
    assert!(press(&mut app, [key('y'), code(KeyCode::Enter)]).is_empty());
    assert!(press(
        &mut app,
        typed("promot").into_iter().chain([code(KeyCode::Enter)])
    )
    .is_empty());
    assert!(app
        .message()
        .is_some_and(|m| m.error && m.text.contains("is not `promote`")));
    assert!(matches!(app.overlay(), Some(Overlay::Confirm { typed: Some(t), .. }) if t.is_empty()));
    let cmds = press(
        &mut app,
        [code(KeyCode::Tab)]
            .into_iter()
            .chain(typed("promote"))
            .chain([code(KeyCode::Enter)]),
    );
    assert!(
        matches!(&cmds[..], [Command::Decide(Decision::Confirm { step, typed: Some(t), automatic: false, .. })] if step == "promote" && t == "promote"),
        "{cmds:?}"
    );
}

#[test]
fn n_and_esc_cancel_a_confirmation_without_sending_anything() {
    for cancel in [key('n'), code(KeyCode::Esc)] {
        let mut app = app_for(scenario("awaiting"), Theme::MONO);
        assert!(press(&mut app, [key('c'), cancel]).is_empty());
        assert_eq!(app.overlay(), None);
    }
    let mut app = app_for(awaiting("promote"), Theme::MONO);
    let keys = [key('c')]
        .into_iter()
        .chain(typed("prom"))
        .chain([code(KeyCode::Esc)]);
    assert!(press(&mut app, keys).is_empty());
    assert_eq!(app.overlay(), None);
}

#[test]
fn c_with_nothing_awaiting_says_so() {
    let mut app = app_for(scenario("running"), Theme::MONO);
    assert!(press(&mut app, [key('c'), key('y')]).is_empty());
    assert_eq!(app.overlay(), None);
    assert!(app
        .message()
        .is_some_and(|m| m.text == "no step is awaiting confirmation"));
}

#[test]
fn s_asks_a_reason_and_enter_skips_with_it() {
    let mut app = app_for(scenario("awaiting"), Theme::MONO);
    let keys = [key('/')]
        .into_iter()
        .chain(typed("verify"))
        .chain([code(KeyCode::Enter), key('s')]);
    assert!(press(&mut app, keys).is_empty());
    assert!(matches!(app.overlay(), Some(Overlay::Skip { step, .. }) if step == "verify"));
    // an empty reason is not enough
    assert!(press(&mut app, [code(KeyCode::Enter)]).is_empty());
    assert!(app.overlay().is_some());
    let cmds = press(
        &mut app,
        typed("checked by hand; q y n")
            .into_iter()
            .chain([code(KeyCode::Enter)]),
    );
    assert!(
        matches!(&cmds[..], [Command::Decide(Decision::Skip { step, reason })] if step == "verify" && reason == "checked by hand; q y n"),
        "{cmds:?}"
    );
    assert_eq!(app.overlay(), None);
    // Esc cancels
    let mut app = app_for(scenario("awaiting"), Theme::MONO);
    let keys = [key('s')]
        .into_iter()
        .chain(typed("why"))
        .chain([code(KeyCode::Esc)]);
    assert!(press(&mut app, keys).is_empty());
    assert_eq!(app.overlay(), None);
}

#[test]
fn q_while_steps_run_asks_first_and_explains() {
    let mut app = app_for(scenario("running"), Theme::MONO);
    assert!(press(&mut app, [key('q')]).is_empty());
    assert_eq!(
        app.overlay(),
        Some(&Overlay::Quit {
            running: vec!["copy".into()]
        })
    );
    assert!(press(&mut app, [key('n')]).is_empty());
    assert_eq!(app.overlay(), None);
    let cmds = press(&mut app, [key('q'), key('y')]);
    assert!(matches!(&cmds[..], [Command::Shutdown]), "{cmds:?}");
    assert!(!app.should_exit(), "must wait for the engine");
    // a second q does not send another shutdown
    assert!(press(&mut app, [key('q')]).is_empty());
    app.update(Action::EngineEnded);
    assert!(app.should_exit());
    assert_eq!(app.outcome(), Outcome::Interrupted);
}

#[test]
fn q_with_nothing_running_stops_at_once() {
    let mut app = app_for(scenario("awaiting"), Theme::MONO);
    let cmds = press(&mut app, [key('q')]);
    assert!(matches!(&cmds[..], [Command::Shutdown]), "{cmds:?}");
    app.update(Action::EngineEnded);
    assert!(app.should_exit());
    assert!(matches!(app.outcome(), Outcome::NeedsOperator(m) if m.contains("`copy`")));
    // after the run finished, the engine is gone and q just leaves
    let mut app = app_for(scenario("finished"), Theme::MONO);
    app.update(Action::EngineEnded);
    assert!(!app.should_exit());
    assert!(press(&mut app, [key('q')]).is_empty());
    assert!(app.should_exit());
    assert_eq!(app.outcome(), Outcome::Done);
}

#[test]
fn a_signal_stops_the_engine_and_the_run_counts_as_interrupted() {
    let mut app = app_for(scenario("running"), Theme::MONO);
    let cmds = app.update(Action::Signal);
    assert!(matches!(&cmds[..], [Command::Shutdown]), "{cmds:?}");
    assert!(app.update(Action::Signal).is_empty());
    app.update(Action::EngineEnded);
    assert!(app.should_exit());
    assert_eq!(app.outcome(), Outcome::Interrupted);
}

#[test]
fn refusals_show_on_the_message_line() {
    let mut app = app_for(scenario("awaiting"), Theme::MONO);
    app.update(refused(Refusal::NotAwaitingConfirmation {
        step: "copy".into(),
        state: StepState::Running,
    }));
    let m = app.message().cloned();
    assert!(
        m.as_ref().is_some_and(
            |m| m.error && m.text == "refused: `copy` is running, not awaiting confirmation"
        ),
        "{m:?}"
    );
    assert!(app
        .log
        .back()
        .is_some_and(|l| l.contains("refused: `copy` is running")));
    // transient: gone after its time
    app.update(Action::Tick(now() + chrono::Duration::seconds(30)));
    assert_eq!(app.message(), None);
}

#[test]
fn a_rollback_refused_by_a_point_of_no_return_offers_the_typed_override() {
    let mut app = app_for(scenario("finished"), Theme::MONO);
    let keys = [key('/')]
        .into_iter()
        .chain(typed("maintenance-on"))
        .chain([code(KeyCode::Enter), key('b')]);
    assert!(press(&mut app, keys).is_empty());
    assert_eq!(
        app.overlay(),
        Some(&Overlay::Rollback {
            step: "maintenance-on".into()
        })
    );
    let cmds = press(&mut app, [key('y')]);
    assert!(
        matches!(&cmds[..], [Command::Decide(Decision::Rollback { step, override_point_of_no_return: false })] if step == "maintenance-on"),
        "{cmds:?}"
    );
    app.update(refused(Refusal::PastPointOfNoReturn {
        step: "maintenance-on".into(),
        point: "promote".into(),
    }));
    assert!(
        matches!(app.overlay(), Some(Overlay::Override { step, refusal, .. }) if step == "maintenance-on" && refusal.starts_with("`promote` is a point of no return")),
        "{:?}",
        app.overlay()
    );
    assert!(press(
        &mut app,
        typed("maintenance")
            .into_iter()
            .chain([code(KeyCode::Enter)])
    )
    .is_empty());
    let cmds = press(
        &mut app,
        typed("maintenance-on")
            .into_iter()
            .chain([code(KeyCode::Enter)]),
    );
    assert!(
        matches!(&cmds[..], [Command::Decide(Decision::Rollback { step, override_point_of_no_return: true })] if step == "maintenance-on"),
        "{cmds:?}"
    );
}

#[test]
fn b_on_a_step_without_rollback_explains_and_n_cancels() {
    let mut app = app_for(scenario("finished"), Theme::MONO);
    let keys = [key('/')]
        .into_iter()
        .chain(typed("copy"))
        .chain([code(KeyCode::Enter), key('b')]);
    assert!(press(&mut app, keys).is_empty());
    assert_eq!(app.overlay(), None);
    assert!(app
        .message()
        .is_some_and(|m| m.text == "`copy` has no rollback in the runbook"));
    let keys = [key('/')]
        .into_iter()
        .chain(typed("maintenance-on"))
        .chain([code(KeyCode::Enter), key('b'), key('n')]);
    assert!(press(&mut app, keys).is_empty());
    assert_eq!(app.overlay(), None);
}

#[test]
fn r_retries_a_failed_step_only() {
    let mut app = app_for(scenario("failed"), Theme::MONO);
    assert_eq!(
        app.selected(),
        &Sel::Step("verify".into()),
        "follows the failure"
    );
    let cmds = press(&mut app, [key('r')]);
    assert!(
        matches!(&cmds[..], [Command::Decide(Decision::Retry { step })] if step == "verify"),
        "{cmds:?}"
    );
    assert!(press(&mut app, [key('k'), key('r')]).is_empty());
    assert!(app
        .message()
        .is_some_and(|m| m.text.contains("only failed, interrupted or rolled-back")));
}

#[test]
fn jump_navigation_folding_and_focus() {
    let mut app = app_for(scenario("awaiting"), Theme::MONO);
    press(
        &mut app,
        [key('/')]
            .into_iter()
            .chain(typed("prom"))
            .chain([code(KeyCode::Enter)]),
    );
    assert_eq!(app.selected(), &Sel::Step("promote".into()));
    press(
        &mut app,
        [key('/')]
            .into_iter()
            .chain(typed("nope"))
            .chain([code(KeyCode::Enter)]),
    );
    assert_eq!(app.selected(), &Sel::Step("promote".into()));
    assert!(app
        .message()
        .is_some_and(|m| m.text == "no step matches `nope`"));
    press(&mut app, [key('j')]);
    assert_eq!(app.selected(), &Sel::Phase(2));
    press(&mut app, [code(KeyCode::Up), code(KeyCode::Up)]);
    assert_eq!(app.selected(), &Sel::Step("verify".into()));
    press(&mut app, [code(KeyCode::Left), code(KeyCode::Enter)]);
    assert_eq!(app.selected(), &Sel::Phase(1));
    assert!(app.folded.contains(&1));
    press(&mut app, [key('j')]);
    assert_eq!(app.selected(), &Sel::Phase(2), "folded steps are skipped");
    // Enter on a step zooms the detail; Esc leaves
    press(&mut app, [key('G'), code(KeyCode::Enter)]);
    assert!(app.zoom);
    press(&mut app, [code(KeyCode::Esc)]);
    assert!(!app.zoom);
    // focus cycles through the panes on screen
    app.update(Action::Resize(80, 24));
    press(&mut app, [code(KeyCode::Tab)]);
    assert_eq!(app.focus, Pane::Detail);
    press(&mut app, [code(KeyCode::Tab), code(KeyCode::Tab)]);
    assert_eq!(
        app.focus,
        Pane::RowCounts,
        "runbook, detail, lag strip, row counts"
    );
    press(&mut app, [code(KeyCode::Tab)]);
    assert_eq!(app.focus, Pane::Runbook);
    app.update(Action::Resize(160, 48));
    let mut seen = Vec::new();
    for _ in 0..5 {
        press(&mut app, [code(KeyCode::Tab)]);
        seen.push(app.focus);
    }
    assert_eq!(
        seen,
        [
            Pane::Detail,
            Pane::Lag,
            Pane::RowCounts,
            Pane::Metrics,
            Pane::Runbook
        ]
    );
    press(&mut app, [code(KeyCode::BackTab)]);
    assert_eq!(app.focus, Pane::Metrics);
    app.update(Action::Resize(80, 24));
    assert_eq!(app.focus, Pane::Runbook, "a hidden pane loses the focus");
}

#[test]
fn the_selection_follows_the_step_that_needs_attention_until_moved() {
    let mut app = app_for(scenario("start"), Theme::MONO);
    assert_eq!(app.selected(), &Sel::Step("snapshot-restored".into()));
    app.update(Action::Snapshot(Arc::new(scenario("awaiting"))));
    assert_eq!(app.selected(), &Sel::Step("copy".into()));
    press(&mut app, [key('k')]);
    app.update(Action::Snapshot(Arc::new(scenario("failed"))));
    assert_eq!(app.selected(), &Sel::Step("maintenance-on".into()));
    press(&mut app, [key('f')]);
    assert_eq!(app.selected(), &Sel::Step("verify".into()));
}

#[test]
fn an_open_confirmation_closes_when_its_step_moves_on() {
    let mut app = app_for(scenario("awaiting"), Theme::MONO);
    press(&mut app, [key('c')]);
    assert!(app.overlay().is_some());
    app.update(Action::Snapshot(Arc::new(scenario("running"))));
    assert_eq!(app.overlay(), None);
    assert!(press(&mut app, [key('y')]).is_empty());
}

#[test]
fn help_and_log_view_toggle_and_esc_closes() {
    let mut app = app_for(scenario("awaiting"), Theme::MONO);
    press(&mut app, [key('?')]);
    assert_eq!(app.overlay(), Some(&Overlay::Help));
    assert!(
        press(&mut app, [key('c')]).is_empty(),
        "help takes the keys"
    );
    press(&mut app, [code(KeyCode::Esc)]);
    assert_eq!(app.overlay(), None);
    press(&mut app, [key('l')]);
    assert!(app.log_view);
    press(&mut app, [code(KeyCode::Esc)]);
    assert!(!app.log_view);
}

/// The replica's lag crosses its max while the dialog is open: `y` confirms
/// nothing, says what changed, and the dialog stays on the new values.
#[test]
fn evidence_that_changed_since_the_dialog_opened_is_not_confirmed() {
    let mut app = app_for(scenario("awaiting"), Theme::MONO);
    press(&mut app, [key('c'), code(KeyCode::Tab)]);
    let mut s = scenario("awaiting");
    let mut m = monitors();
    if let Some(last) = m.lag[0].samples.last_mut() {
        last.value = 42.0;
    }
    s.monitors = Arc::new(m);
    app.update(Action::Snapshot(Arc::new(s)));
    assert!(press(&mut app, [key('y')]).is_empty());
    let msg = app.message().map(|m| m.text.clone()).unwrap_or_default();
    assert!(
        msg.contains(
            "the evidence changed since the dialog opened (lag replica: over its max 30.0s)"
        ),
        "{msg}"
    );
    assert!(matches!(app.overlay(), Some(Overlay::Confirm { step, .. }) if step == "copy"));
    // looked at again (and the stale item acknowledged again): now it goes
    let cmds = press(&mut app, [code(KeyCode::Tab), key('y')]);
    assert!(
        matches!(&cmds[..], [Command::Decide(Decision::Confirm { evidence, .. })] if evidence[0].value.starts_with("42")),
        "{cmds:?}"
    );
}
