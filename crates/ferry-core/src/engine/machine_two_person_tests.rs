//! The two-person rule as the machine keeps it: one operator proposes a
//! two-person step (confirming it, with the evidence on screen), a second one,
//! another uid, approves the proposal's evidence, and only then does it run.
//! Same uid, other evidence, or nothing proposed: typed refusals.

use super::testkit::*;
use super::*;
use crate::engine::effect::Effect;
use crate::vocab::{evidence_sha256, Actor, Event, EvidenceItem, Refusal, StepState};

fn machine() -> Machine {
    let mut m = Machine::new(&rb(r#"
  [[phase.step]]
  id = "switch"
  kind = "shell"
  run = "true"
  confirm = "two-person"
"#));
    m.start();
    m
}

fn evidence() -> Vec<EvidenceItem> {
    vec![EvidenceItem {
        label: "lag".into(),
        value: "0.4s (max 30s)".into(),
        ..Default::default()
    }]
}

fn propose(by: Actor) -> Event {
    Event::decided(
        by,
        Decision::Confirm {
            step: "switch".into(),
            automatic: false,
            typed: Some("switch".into()),
            evidence: evidence(),
        },
    )
}

fn approve(by: Actor, sha: &str) -> Event {
    Event::decided(
        by,
        Decision::Approve {
            step: "switch".into(),
            evidence_sha256: sha.into(),
        },
    )
}

fn withdraw(by: Actor) -> Event {
    Event::decided(
        by,
        Decision::Withdraw {
            step: "switch".into(),
        },
    )
}

fn refusal(fx: &[Effect]) -> Option<&Refusal> {
    fx.iter().find_map(|e| match e {
        Effect::Rejected(r) => Some(r),
        _ => None,
    })
}

fn runs(fx: &[Effect]) -> bool {
    fx.iter()
        .any(|e| matches!(e, Effect::Execute { step, .. } if step == "switch"))
}

#[test]
fn a_proposal_waits_and_a_second_uid_approves_it() {
    let mut m = machine();
    let fx = m.handle(&propose(alice()));
    assert!(!runs(&fx) && refusal(&fx).is_none(), "{fx:?}");
    let st = m.step("switch").expect("step");
    assert_eq!(st.state, StepState::AwaitingConfirmation);
    let p = st.proposal.as_ref().expect("a proposal");
    assert_eq!(p.by, alice());
    assert_eq!(p.evidence_sha256, evidence_sha256(&evidence()));

    let fx = m.handle(&approve(bob(), &evidence_sha256(&evidence())));
    assert!(runs(&fx), "{fx:?}");
    let st = m.step("switch").expect("step");
    assert_eq!(st.state, StepState::Running);
    assert_eq!(st.confirmed_by, Some(alice()));
    assert_eq!(st.approved_by, Some(bob()));
    assert!(st.proposal.is_none() && !st.automatic);
}

/// alice in a second terminal, under another display name: the uid decides.
#[test]
fn the_same_uid_cannot_approve_whatever_name_it_gives() {
    let mut m = machine();
    m.handle(&propose(alice()));
    let alice_again = Actor::named("not-alice", "other-host").with_uid(1001, Some("alice".into()));
    let fx = m.handle(&approve(alice_again, &evidence_sha256(&evidence())));
    assert_eq!(
        refusal(&fx),
        Some(&Refusal::SamePerson {
            step: "switch".into(),
            proposer: "alice".into(),
            uid: Some(1001),
        })
    );
    assert!(!runs(&fx));
    assert!(m.step("switch").and_then(|s| s.proposal.as_ref()).is_some());
}

/// A display name that matches the proposer's does not make another uid the same person.
#[test]
fn another_uid_under_the_proposers_name_is_another_person() {
    let mut m = machine();
    m.handle(&propose(alice()));
    let bob_as_alice = Actor::named("alice", "bastion").with_uid(1002, Some("bob".into()));
    assert!(runs(
        &m.handle(&approve(bob_as_alice, &evidence_sha256(&evidence())))
    ));
}

#[test]
fn an_approval_of_other_evidence_is_refused() {
    let mut m = machine();
    m.handle(&propose(alice()));
    let fx = m.handle(&approve(bob(), &evidence_sha256(&[])));
    assert!(matches!(
        refusal(&fx),
        Some(Refusal::EvidenceDiffers { proposed, .. }) if *proposed == evidence_sha256(&evidence())
    ));
    assert!(!runs(&fx));
}

#[test]
fn nothing_to_approve_and_a_second_proposal_are_refused() {
    let mut m = machine();
    let fx = m.handle(&approve(bob(), "x"));
    assert_eq!(
        refusal(&fx),
        Some(&Refusal::NothingProposed {
            step: "switch".into()
        })
    );
    m.handle(&propose(alice()));
    let fx = m.handle(&propose(bob()));
    assert!(matches!(
        refusal(&fx),
        Some(Refusal::AlreadyProposed { proposer, .. }) if proposer == "alice (uid 1001)"
    ));
}

#[test]
fn only_the_proposer_withdraws_and_then_nothing_is_pending() {
    let mut m = machine();
    m.handle(&propose(alice()));
    let fx = m.handle(&withdraw(bob()));
    assert!(matches!(refusal(&fx), Some(Refusal::NotTheProposer { .. })));
    assert!(refusal(&m.handle(&withdraw(alice()))).is_none());
    assert!(m.step("switch").and_then(|s| s.proposal.as_ref()).is_none());
    // bob may now propose, and alice approve
    m.handle(&propose(bob()));
    assert!(runs(
        &m.handle(&approve(alice(), &evidence_sha256(&evidence())))
    ));
}

/// `--yes` confirms a two-person step on its own, recorded as automatic.
#[test]
fn a_rehearsal_confirms_automatically_and_says_so() {
    let mut m = machine();
    let fx = m.handle(&confirmation("switch", true));
    assert!(runs(&fx));
    let st = m.step("switch").expect("step");
    assert!(st.automatic && st.approved_by.is_none());
}

/// Journals from before uids: the operator name tells people apart.
#[test]
fn without_uids_names_tell_people_apart() {
    let mut m = machine();
    m.handle(&propose(Actor::named("alice", "h")));
    let fx = m.handle(&approve(
        Actor::named("alice", "h2"),
        &evidence_sha256(&evidence()),
    ));
    assert!(matches!(
        refusal(&fx),
        Some(Refusal::SamePerson { uid: None, .. })
    ));
    assert!(runs(&m.handle(&approve(
        Actor::named("bob", "h"),
        &evidence_sha256(&evidence())
    ))));
}

/// A skipped step's proposal is gone; replaying the journal rebuilds a pending one.
#[test]
fn a_skip_drops_the_proposal_and_a_replay_keeps_a_pending_one() {
    let mut m = machine();
    m.handle(&propose(alice()));
    let mut replayed = machine();
    replayed.handle(&propose(alice()));
    assert_eq!(
        replayed.step("switch").and_then(|s| s.proposal.clone()),
        m.step("switch").and_then(|s| s.proposal.clone())
    );
    m.handle(&Event::decided(
        alice(),
        Decision::Skip {
            step: "switch".into(),
            reason: "done by hand".into(),
        },
    ));
    assert!(m.step("switch").and_then(|s| s.proposal.as_ref()).is_none());
}

fn stale_lag(acknowledged: bool) -> Vec<EvidenceItem> {
    vec![EvidenceItem {
        label: "lag replica".into(),
        value: "stale for 2m: connection refused".into(),
        age_secs: Some(120),
        stale: true,
        acknowledged,
    }]
}

/// Stale evidence needs its acknowledgement, which the journal keeps on the item.
#[test]
fn confirming_over_stale_evidence_needs_its_acknowledgement() {
    let mut m = machine();
    let over = |evidence| {
        Event::decided(
            alice(),
            Decision::Confirm {
                step: "switch".into(),
                automatic: false,
                typed: Some("switch".into()),
                evidence,
            },
        )
    };
    let fx = m.handle(&over(stale_lag(false)));
    assert_eq!(
        refusal(&fx),
        Some(&Refusal::StaleEvidence {
            step: "switch".into(),
            items: vec!["lag replica".into()],
        })
    );
    assert!(m.step("switch").and_then(|s| s.proposal.as_ref()).is_none());
    let fx = m.handle(&over(stale_lag(true)));
    assert!(refusal(&fx).is_none(), "{fx:?}");
    let p = m.step("switch").and_then(|s| s.proposal.clone());
    assert!(p.is_some_and(|p| p.evidence[0].acknowledged));
}

/// A rehearsal's automatic confirmation records stale evidence as it was.
#[test]
fn a_rehearsal_confirms_over_stale_evidence_and_records_it() {
    let mut m = machine();
    let fx = m.handle(&Event::decided(
        alice(),
        Decision::Confirm {
            step: "switch".into(),
            automatic: true,
            typed: None,
            evidence: stale_lag(false),
        },
    ));
    assert!(runs(&fx), "{fx:?}");
}
