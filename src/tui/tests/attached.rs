//! The console in its attached role (`ferry attach`) and the run's own console
//! with operators attached: read-only keys refuse, leaving never sends a
//! shutdown, the status bar names everyone, the dialogs say who acts.

use super::*;
use crate::tui::app::Sel;
use crate::tui::overlay::Overlay;
use crate::tui::render;
use crate::tui::{Action, Role};
use ferry_core::engine::driver::{Command, Notice};
use ferry_core::engine::snapshot::Attendee;
use ferry_core::vocab::Refusal;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn attached(operate: bool) -> App {
    app_for(scenario("awaiting"), Theme::MONO).with_role(Role::Attached {
        operator: "bob".into(),
        operate,
        observer: false,
        socket: "/tmp/run.jsonl.sock".into(),
    })
}

fn with_guests(mut s: EngineSnapshot) -> EngineSnapshot {
    s.attached = vec![
        Attendee {
            operator: "bob".into(),
            host: "bastion".into(),
            uid: Some(1002),
            login: Some("bob".into()),
            operate: true,
        },
        Attendee {
            operator: "carol".into(),
            host: "bastion".into(),
            uid: None,
            login: None,
            operate: false,
        },
    ];
    s
}

fn draw(app: &mut App, w: u16, h: u16) -> String {
    let mut term = match Terminal::new(TestBackend::new(w, h)) {
        Ok(t) => t,
        Err(e) => panic!("test backend: {e}"),
    };
    if let Err(e) = term.draw(|f| render::draw(f, app)) {
        panic!("draw: {e}");
    }
    screen(term.backend().buffer())
}

#[test]
fn a_read_only_console_refuses_every_key_that_acts() {
    let mut app = attached(false);
    for k in ['c', 's', 'r', 'b'] {
        let cmds = app.update(Action::Key(key(k)));
        assert!(cmds.is_empty(), "{k}: {cmds:?}");
        assert_eq!(app.overlay(), None, "{k}");
        let msg = app.message().map(|m| m.text.clone()).unwrap_or_default();
        assert_eq!(msg, "read-only: attach with --operate to act", "{k}");
    }
    // watching still works
    app.update(Action::Key(key('?')));
    assert_eq!(app.overlay(), Some(&Overlay::Help));
}

#[test]
fn an_operating_console_confirms_as_its_operator() {
    let mut app = attached(true);
    app.update(Action::Resize(100, 30));
    app.update(Action::Key(key('c')));
    assert!(matches!(app.overlay(), Some(Overlay::Confirm { .. })));
    let screen = draw(&mut app, 100, 30);
    assert!(screen.contains("Confirm `copy` as bob"), "{screen}");
    app.update(Action::Key(code(KeyCode::Tab)));
    let cmds = app.update(Action::Key(key('y')));
    assert!(
        matches!(&cmds[..], [Command::Decide(Decision::Confirm { step, automatic: false, .. })] if step == "copy"),
        "{cmds:?}"
    );
}

#[test]
fn leaving_an_attached_console_never_stops_the_run() {
    let mut app = attached(true);
    assert!(app.update(Action::Key(key('q'))).is_empty());
    assert_eq!(app.overlay(), Some(&Overlay::Leave));
    let screen = draw(&mut app, 100, 30);
    assert!(
        screen.contains("leaving this one stops nothing"),
        "{screen}"
    );
    assert!(app.update(Action::Key(key('y'))).is_empty());
    assert!(app.should_exit());

    // a signal (the ssh session closed) leaves at once, sending nothing
    let mut app = attached(false);
    assert!(app.update(Action::Signal).is_empty());
    assert!(app.should_exit());
}

#[test]
fn when_the_link_ends_the_console_says_how() {
    let mut app = attached(false);
    app.update(Action::Notice(Notice::Detached(
        "lost the run: the run's process went away".into(),
    )));
    app.update(Action::EngineEnded);
    app.update(Action::Resize(100, 30));
    let screen = draw(&mut app, 100, 30);
    assert!(
        screen.contains("lost the run: the run's process went away · q leaves"),
        "{screen}"
    );
    app.update(Action::Key(key('q')));
    assert!(app.should_exit());
}

#[test]
fn both_status_bars_name_everyone_attached() {
    let mut own = app_for(with_guests(scenario("awaiting")), Theme::MONO);
    own.update(Action::Resize(120, 30));
    let screen = draw(&mut own, 120, 30);
    let bar = screen.lines().last().unwrap_or_default().to_string();
    assert!(
        bar.contains("alice (+bob operating, +carol observing)"),
        "{bar}"
    );
    assert!(bar.contains("q quit"), "{bar}");

    let mut bob =
        app_for(with_guests(scenario("awaiting")), Theme::MONO).with_role(Role::Attached {
            operator: "carol".into(),
            operate: false,
            observer: false,
            socket: "/tmp/s".into(),
        });
    bob.update(Action::Resize(120, 30));
    let screen = draw(&mut bob, 120, 30);
    let bar = screen.lines().last().unwrap_or_default().to_string();
    assert!(bar.contains("attached read-only"), "{bar}");
    assert!(
        bar.contains("alice (+bob operating, +carol observing)"),
        "{bar}"
    );
    assert!(bar.contains("q leave"), "{bar}");
}

#[test]
fn quitting_the_runs_own_console_asks_first_while_others_are_attached() {
    let mut s = with_guests(scenario("awaiting"));
    s.steps
        .iter_mut()
        .filter(|x| x.state == StepState::Running)
        .for_each(|x| x.state = StepState::Pending);
    let mut app = app_for(s, Theme::MONO);
    assert!(app.running().is_empty());
    assert!(app.update(Action::Key(key('q'))).is_empty(), "asks first");
    assert_eq!(app.overlay(), Some(&Overlay::Quit { running: vec![] }));
    app.update(Action::Resize(100, 30));
    let screen = draw(&mut app, 100, 30);
    assert!(screen.contains("Attached: bob, carol."), "{screen}");
    let cmds = app.update(Action::Key(key('y')));
    assert!(matches!(&cmds[..], [Command::Shutdown]), "{cmds:?}");
}

#[test]
fn the_help_tells_how_to_attach() {
    let mut app = app_for(scenario("awaiting"), Theme::MONO).with_role(Role::Owner {
        socket: Some("/srv/runs/x.jsonl.sock".into()),
    });
    app.update(Action::Resize(120, 40));
    app.update(Action::Key(key('?')));
    let screen = draw(&mut app, 120, 40);
    assert!(
        screen.contains("ferry attach --socket /srv/runs/x.jsonl.sock"),
        "{screen}"
    );
}

#[test]
fn another_consoles_refusal_is_not_this_ones_business() {
    let refused = |asked_by: Option<&str>| {
        Action::Notice(Notice::Journaled {
            ts: now(),
            entry: Box::new(ferry_core::journal::Entry::Refused {
                refusal: Refusal::NotAwaitingConfirmation {
                    step: "copy".into(),
                    state: StepState::Succeeded,
                },
                asked_by: asked_by.map(|who| ferry_core::vocab::Actor {
                    operator: who.into(),
                    host: "bastion".into(),
                    ..Default::default()
                }),
            }),
        })
    };
    // alice's console: bob's refusal goes to the log only
    let mut own = app_for(scenario("awaiting"), Theme::MONO);
    own.update(refused(Some("bob")));
    assert_eq!(own.message(), None);
    // bob's console: his own refusal, without the attribution
    let mut bob = attached(true);
    bob.update(refused(Some("bob")));
    let msg = bob.message().map(|m| m.text.clone()).unwrap_or_default();
    assert_eq!(
        msg,
        "refused: `copy` is succeeded, not awaiting confirmation"
    );
    // and alice's own refusals still show on hers, not on bob's
    own.update(refused(None));
    assert!(own.message().is_some());
}

#[test]
fn what_another_operator_decides_is_said_on_every_console() {
    let confirm = |who: &str| {
        Action::Notice(Notice::Journaled {
            ts: now(),
            entry: Box::new(ferry_core::journal::Entry::Event(
                ferry_core::vocab::Event::Decided {
                    by: ferry_core::vocab::Actor {
                        operator: who.into(),
                        host: "bastion".into(),
                        ..Default::default()
                    },
                    decision: Decision::Confirm {
                        step: "copy".into(),
                        automatic: false,
                        typed: None,
                        evidence: vec![],
                    },
                },
            )),
        })
    };
    let mut own = app_for(scenario("awaiting"), Theme::MONO);
    own.update(confirm("bob"));
    let msg = own.message().map(|m| m.text.clone()).unwrap_or_default();
    assert_eq!(msg, "bob confirmed `copy`");
    // one's own decision needs no echo
    let mut bob = attached(true);
    bob.update(confirm("bob"));
    assert_eq!(bob.message(), None);
    bob.update(confirm("alice"));
    let msg = bob.message().map(|m| m.text.clone()).unwrap_or_default();
    assert_eq!(msg, "alice confirmed `copy`");
}

#[test]
fn the_quit_dialog_says_how_the_run_resumes_or_why_it_cannot() {
    let quit_screen = |resume: Option<Result<String, String>>| {
        let mut app = app_for(scenario("running"), Theme::MONO).with_resume(resume);
        app.update(Action::Resize(120, 40));
        app.update(Action::Key(key('q')));
        assert!(matches!(app.overlay(), Some(Overlay::Quit { .. })));
        draw(&mut app, 120, 40)
    };
    let default = quit_screen(None);
    assert!(default.contains("Resume later with:"), "{default}");
    assert!(default.contains("--resume"), "{default}");
    let demo = quit_screen(Some(Ok("ferry demo --dir /d --resume".into())));
    assert!(demo.contains("ferry demo --dir /d --resume"), "{demo}");
    let never = quit_screen(Some(Err("this demo cannot be resumed".into())));
    assert!(never.contains("this demo cannot be resumed"), "{never}");
    assert!(!never.contains("Resume later with:"), "{never}");
}

/// `promote` (two-person) proposed by alice, uid 1001, with one evidence item.
fn proposed() -> EngineSnapshot {
    let mut s = scenario("awaiting");
    let evidence = vec![ferry_core::vocab::EvidenceItem {
        label: "lag replica".into(),
        value: "0.4s (warn 5s, max 30s)".into(),
        ..Default::default()
    }];
    let p = s
        .steps
        .iter_mut()
        .find(|x| x.id == "promote")
        .unwrap_or_else(|| panic!("no promote"));
    p.state = StepState::AwaitingConfirmation;
    p.proposal = Some(ferry_core::vocab::Proposal {
        by: ferry_core::vocab::Actor::named("alice", "bastion")
            .with_uid(1001, Some("alice".into())),
        evidence_sha256: ferry_core::vocab::evidence_sha256(&evidence),
        evidence,
    });
    s
}

fn attached_as(uid: u32) -> App {
    app_for(proposed(), Theme::MONO)
        .with_role(Role::Attached {
            operator: "bob".into(),
            operate: true,
            observer: false,
            socket: "/tmp/run.jsonl.sock".into(),
        })
        .with_uid(Some(uid))
}

/// bob (another uid) sees alice's evidence and its hash, and approves that hash.
#[test]
fn another_uid_approves_the_proposal_it_was_shown() {
    let mut app = attached_as(1002);
    app.update(Action::Resize(110, 34));
    app.select(Sel::Step("promote".into()));
    let sha = ferry_core::vocab::evidence_sha256(&[ferry_core::vocab::EvidenceItem {
        label: "lag replica".into(),
        value: "0.4s (warn 5s, max 30s)".into(),
        ..Default::default()
    }]);
    let screen = draw(&mut app, 110, 34);
    assert!(
        screen.contains(
            "proposed by alice (uid 1001): awaiting a second operator's approval · c approve"
        ),
        "{screen}"
    );
    app.update(Action::Key(key('c')));
    assert!(matches!(app.overlay(), Some(Overlay::Approve { step, .. }) if step == "promote"));
    let screen = draw(&mut app, 110, 34);
    assert!(screen.contains("Approve `promote` as bob"), "{screen}");
    assert!(
        screen.contains("proposed by alice@bastion (uid 1001)"),
        "{screen}"
    );
    assert!(screen.contains("lag replica: 0.4s"), "{screen}");
    assert!(
        screen.contains(&format!("evidence sha256 {sha}")),
        "{screen}"
    );
    let cmds = app.update(Action::Key(key('y')));
    assert!(
        matches!(&cmds[..], [Command::Decide(Decision::Approve { step, evidence_sha256 })] if step == "promote" && *evidence_sha256 == sha),
        "{cmds:?}"
    );
}

/// The proposer's own uid is offered to withdraw, never to approve.
#[test]
fn the_proposers_uid_withdraws_instead() {
    let mut app = attached_as(1001);
    app.select(Sel::Step("promote".into()));
    app.update(Action::Key(key('c')));
    assert!(matches!(app.overlay(), Some(Overlay::Withdraw { .. })));
    let screen = draw(&mut app, 110, 34);
    assert!(
        screen.contains("Withdraw your proposal of `promote`"),
        "{screen}"
    );
    let cmds = app.update(Action::Key(key('y')));
    assert!(
        matches!(&cmds[..], [Command::Decide(Decision::Withdraw { step })] if step == "promote"),
        "{cmds:?}"
    );
}

/// A proposal withdrawn while the approve dialog is open closes it.
#[test]
fn an_approve_dialog_closes_when_its_proposal_goes() {
    let mut app = attached_as(1002);
    app.select(Sel::Step("promote".into()));
    app.update(Action::Key(key('c')));
    let mut s = proposed();
    if let Some(p) = s.steps.iter_mut().find(|x| x.id == "promote") {
        p.proposal = None;
    }
    app.update(Action::Snapshot(Arc::new(s)));
    assert_eq!(app.overlay(), None);
    let msg = app.message().map(|m| m.text.clone()).unwrap_or_default();
    assert!(
        msg.contains("the proposal of `promote` is gone or changed"),
        "{msg}"
    );
}

/// carol's user is in the group but not in `[operators] operate`: her console
/// shows the pending proposal as awaiting a second operator, says she observes,
/// and never offers (or opens) the approve dialog.
#[test]
fn an_observer_sees_the_proposal_and_is_offered_no_key() {
    let mut app = app_for(proposed(), Theme::MONO)
        .with_role(Role::Attached {
            operator: "carol".into(),
            operate: true,
            observer: true,
            socket: "/tmp/run.jsonl.sock".into(),
        })
        .with_uid(Some(1003));
    app.update(Action::Resize(140, 34));
    app.select(Sel::Step("promote".into()));
    let screen = draw(&mut app, 140, 34);
    assert!(
        screen.contains("proposed by alice (uid 1001): awaiting a second operator's approval"),
        "{screen}"
    );
    assert!(screen.contains("· you observe"), "{screen}");
    assert!(!screen.contains("c approve"), "{screen}");
    assert!(!screen.contains("confirmed"), "{screen}");
    assert!(screen.contains("attached observing"), "{screen}");
    let cmds = app.update(Action::Key(key('c')));
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(app.overlay(), None);
    let msg = app.message().map(|m| m.text.clone()).unwrap_or_default();
    assert_eq!(msg, crate::tui::app::OBSERVING);
}

/// The approver sees which of the proposal's items were stale, and that the
/// proposer acknowledged confirming over them.
#[test]
fn the_approve_dialog_marks_the_proposals_stale_evidence() {
    let mut s = proposed();
    let evidence = vec![
        ferry_core::vocab::EvidenceItem {
            label: "lag replica".into(),
            value: "0.4s (warn 5s, max 30s)".into(),
            age_secs: Some(1),
            ..Default::default()
        },
        ferry_core::vocab::EvidenceItem {
            label: "row counts src → tgt".into(),
            value: "1 tables · 0 differ · stale: connection refused".into(),
            age_secs: Some(40),
            stale: true,
            acknowledged: true,
        },
    ];
    if let Some(p) = s
        .steps
        .iter_mut()
        .find(|x| x.id == "promote")
        .and_then(|x| x.proposal.as_mut())
    {
        p.evidence_sha256 = ferry_core::vocab::evidence_sha256(&evidence);
        p.evidence = evidence;
    }
    let mut app = app_for(s, Theme::MONO)
        .with_role(Role::Attached {
            operator: "bob".into(),
            operate: true,
            observer: false,
            socket: "/tmp/run.jsonl.sock".into(),
        })
        .with_uid(Some(1002));
    app.select(Sel::Step("promote".into()));
    app.update(Action::Key(key('c')));
    let screen = draw(&mut app, 120, 40);
    assert!(
        screen.contains("⚠ STALE (acknowledged by the proposer) row counts src → tgt"),
        "{screen}"
    );
    assert!(screen.contains("  lag replica: 0.4s"), "{screen}");
    assert!(
        !screen.contains("⚠ STALE (acknowledged by the proposer) lag"),
        "{screen}"
    );
}
