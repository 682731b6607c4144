//! What operators decide and why the engine may refuse it.
//!
//! [`Decision`] is the one shape of an operator's decision: the console sends it to
//! the driver, an attached console sends it over the socket, and the machine
//! receives it inside [`super::Event::Decided`] with who decided. [`Refusal`] is
//! the machine's typed answer when a decision cannot be carried out; front-ends
//! act on its variant (the point-of-no-return override dialog) and show its text.

use super::{EvidenceItem, StepState};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An operator's decision about a step, or about the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Confirm a step awaiting confirmation (`automatic`: `--yes` did). Two-person and
    /// point-of-no-return steps need `typed` equal to the step id.
    Confirm {
        step: String,
        #[serde(default)]
        automatic: bool,
        #[serde(default)]
        typed: Option<String>,
        #[serde(default)]
        evidence: Vec<EvidenceItem>,
    },
    Skip {
        step: String,
        reason: String,
    },
    /// Run a failed, interrupted or rolled-back step again.
    Retry {
        step: String,
    },
    /// Undo a step with its `rollback`. After a point of no return, rolling back an
    /// earlier step needs `override_point_of_no_return`.
    Rollback {
        step: String,
        #[serde(default)]
        override_point_of_no_return: bool,
    },
    /// Stop the run for good (it cannot be resumed).
    Abort {
        reason: String,
    },
    /// Approve the pending proposal of a two-person step: a second operator (another
    /// uid than the proposer's) who saw the proposal's evidence, whose SHA-256
    /// ([`super::evidence_sha256`]) is `evidence_sha256`.
    Approve {
        step: String,
        evidence_sha256: String,
    },
    /// The proposer of a two-person step takes the proposal back.
    Withdraw {
        step: String,
    },
}

impl Decision {
    /// The step decided about (`None` for an abort).
    pub fn step(&self) -> Option<&str> {
        match self {
            Decision::Confirm { step, .. }
            | Decision::Skip { step, .. }
            | Decision::Retry { step }
            | Decision::Rollback { step, .. }
            | Decision::Approve { step, .. }
            | Decision::Withdraw { step } => Some(step),
            Decision::Abort { .. } => None,
        }
    }

    /// Whether an operator attached from another terminal may take this decision:
    /// every decision about a step, never one that stops the run.
    pub fn open_to_attached(&self) -> bool {
        !matches!(self, Decision::Abort { .. })
    }
}

/// Why a two-person or point-of-no-return step wants its id typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypedReason {
    PointOfNoReturn,
    TwoPerson,
}

/// Why the machine did not carry out a decision. Journaled as its own entry; the
/// text (`Display`) is what every front-end shows after `refused: `.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    NoSuchStep {
        step: String,
    },
    RunAborted,
    NotAwaitingConfirmation {
        step: String,
        state: StepState,
    },
    /// `--yes` does not confirm an independent step while the run is halted.
    HaltedNoAutomatic {
        step: String,
        halted_at: String,
    },
    TypeTheId {
        step: String,
        why: TypedReason,
    },
    SkipNeedsReason {
        step: String,
    },
    CannotSkip {
        step: String,
        state: StepState,
    },
    CannotRetry {
        step: String,
        state: StepState,
    },
    NoRollback {
        step: String,
    },
    CannotRollBack {
        step: String,
        state: StepState,
    },
    /// An operator's rollback of `step` after `point` succeeded: allowed only with the
    /// override, which the console offers when it sees this refusal.
    PastPointOfNoReturn {
        step: String,
        point: String,
    },
    /// `on_failure = "rollback"` past a succeeded point of no return: the run halts.
    NoAutomaticRollbackPastPointOfNoReturn {
        step: String,
        point: String,
    },
    /// A two-person step's approval by the proposer's own uid (a second terminal
    /// of the same person): a second, different OS user must approve.
    SamePerson {
        step: String,
        proposer: String,
        #[serde(default)]
        uid: Option<u32>,
    },
    /// A second confirmation of a two-person step that already has a proposal:
    /// the second operator approves it instead.
    AlreadyProposed {
        step: String,
        proposer: String,
    },
    /// An approval or withdrawal of a step nobody proposed.
    NothingProposed {
        step: String,
    },
    /// The approver saw other evidence than the proposal's (it was withdrawn and
    /// proposed again meanwhile).
    EvidenceDiffers {
        step: String,
        proposed: String,
        seen: String,
    },
    /// A withdrawal by someone other than the proposer.
    NotTheProposer {
        step: String,
        proposer: String,
    },
    /// A confirmation over stale evidence that was not acknowledged.
    StaleEvidence {
        step: String,
        items: Vec<String>,
    },
    /// `[operators] operate` does not list this user: they may watch, not act.
    NotAnOperator {
        #[serde(default)]
        step: Option<String>,
        login: String,
    },
}

impl Refusal {
    /// The step the refused decision was about.
    pub fn step(&self) -> Option<&str> {
        match self {
            Refusal::RunAborted => None,
            Refusal::NotAnOperator { step, .. } => step.as_deref(),
            Refusal::NoSuchStep { step }
            | Refusal::NotAwaitingConfirmation { step, .. }
            | Refusal::HaltedNoAutomatic { step, .. }
            | Refusal::TypeTheId { step, .. }
            | Refusal::SkipNeedsReason { step }
            | Refusal::CannotSkip { step, .. }
            | Refusal::CannotRetry { step, .. }
            | Refusal::NoRollback { step }
            | Refusal::CannotRollBack { step, .. }
            | Refusal::PastPointOfNoReturn { step, .. }
            | Refusal::NoAutomaticRollbackPastPointOfNoReturn { step, .. }
            | Refusal::SamePerson { step, .. }
            | Refusal::AlreadyProposed { step, .. }
            | Refusal::NothingProposed { step }
            | Refusal::EvidenceDiffers { step, .. }
            | Refusal::NotTheProposer { step, .. }
            | Refusal::StaleEvidence { step, .. } => Some(step),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoSuchStep { step } => write!(f, "no step `{step}`"),
            Refusal::RunAborted => f.write_str("the run was aborted"),
            Refusal::NotAwaitingConfirmation { step, state } => {
                write!(f, "`{step}` is {}, not awaiting confirmation", state.name())
            }
            Refusal::HaltedNoAutomatic { step, halted_at } => write!(
                f,
                "not confirming `{step}` automatically: the run is halted at `{halted_at}`"
            ),
            Refusal::TypeTheId { step, why } => write!(
                f,
                "`{step}` is {}: type its id to confirm",
                match why {
                    TypedReason::PointOfNoReturn => "a point of no return",
                    TypedReason::TwoPerson => "a two-person step",
                }
            ),
            Refusal::SkipNeedsReason { step } => write!(f, "skipping `{step}` needs a reason"),
            Refusal::CannotSkip { step, state } => {
                write!(f, "`{step}` is {} and cannot be skipped", state.name())
            }
            Refusal::CannotRetry { step, state } => write!(
                f,
                "`{step}` is {}: only failed, interrupted or rolled-back steps can be retried",
                state.name()
            ),
            Refusal::NoRollback { step } => write!(f, "`{step}` has no rollback"),
            Refusal::CannotRollBack { step, state } => {
                write!(f, "`{step}` is {} and cannot be rolled back", state.name())
            }
            Refusal::PastPointOfNoReturn { step, point } => write!(
                f,
                "`{point}` is a point of no return and has succeeded: rolling back `{step}` now may leave the systems split (writes already went to the new side). Roll back with the override only if you are sure"
            ),
            Refusal::NoAutomaticRollbackPastPointOfNoReturn { step, point } => write!(
                f,
                "not rolling `{step}` back automatically: `{point}` is a point of no return and has succeeded, so undoing `{step}` now may leave the systems split. The run halts here; roll back with the override only if you are sure"
            ),
            Refusal::SamePerson {
                step,
                proposer,
                uid,
            } => {
                let uid = uid.map(|u| format!(" (uid {u})")).unwrap_or_default();
                write!(
                    f,
                    "`{step}` is a two-person step proposed by {proposer}{uid}: a second, different OS user must approve it"
                )
            }
            Refusal::AlreadyProposed { step, proposer } => write!(
                f,
                "`{step}` is already proposed by {proposer}: a second operator approves it (or {proposer} withdraws it)"
            ),
            Refusal::NothingProposed { step } => {
                write!(f, "nobody proposed `{step}`: there is nothing to approve or withdraw")
            }
            Refusal::EvidenceDiffers {
                step,
                proposed,
                seen,
            } => write!(
                f,
                "the evidence you approved for `{step}` (sha256 {}) is not the proposal's (sha256 {}): look again",
                short(seen),
                short(proposed)
            ),
            Refusal::NotTheProposer { step, proposer } => {
                write!(f, "only {proposer}, who proposed `{step}`, can withdraw it")
            }
            Refusal::StaleEvidence { step, items } => write!(
                f,
                "the evidence for `{step}` is stale ({}): acknowledge it to confirm over it",
                items.join(", ")
            ),
            Refusal::NotAnOperator { login, .. } => write!(
                f,
                "{login} observes this run: [operators] operate does not list them"
            ),
        }
    }
}

/// The first 12 hex digits of a hash, as the console shows it.
pub fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[rstest]
    #[case(Refusal::NoSuchStep { step: s("x") }, "no step `x`")]
    #[case(Refusal::RunAborted, "the run was aborted")]
    #[case(
        Refusal::NotAwaitingConfirmation { step: s("copy"), state: StepState::Running },
        "`copy` is running, not awaiting confirmation"
    )]
    #[case(
        Refusal::TypeTheId { step: s("copy"), why: TypedReason::TwoPerson },
        "`copy` is a two-person step: type its id to confirm"
    )]
    #[case(
        Refusal::TypeTheId { step: s("go"), why: TypedReason::PointOfNoReturn },
        "`go` is a point of no return: type its id to confirm"
    )]
    #[case(
        Refusal::CannotRetry { step: s("a"), state: StepState::Succeeded },
        "`a` is succeeded: only failed, interrupted or rolled-back steps can be retried"
    )]
    fn refusals_read_as_sentences(#[case] r: Refusal, #[case] text: &str) {
        assert_eq!(r.to_string(), text);
    }

    #[test]
    fn a_refusal_travels_as_tagged_json() {
        let r = Refusal::PastPointOfNoReturn {
            step: s("maint"),
            point: s("promote"),
        };
        let j = serde_json::to_string(&r).expect("serializes");
        assert_eq!(
            j,
            r#"{"refusal":"past_point_of_no_return","step":"maint","point":"promote"}"#
        );
        let back: Refusal = serde_json::from_str(&j).expect("parses");
        assert_eq!(back, r);
    }

    #[test]
    fn only_step_decisions_are_open_to_attached_operators() {
        assert!(Decision::Retry { step: s("a") }.open_to_attached());
        assert!(!Decision::Abort { reason: s("no") }.open_to_attached());
    }
}
