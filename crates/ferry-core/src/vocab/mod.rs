//! The vocabulary shared by the engine, the journal and every front-end: who acts
//! ([`Actor`]), what they decide ([`Decision`]), the machine's inputs ([`Event`]),
//! how executions end ([`Outcome`]), the step and run states, and a step's output
//! and progress. A leaf: it imports nothing of ferry's, so the journal can record
//! these without depending on the engine.

mod decision;
mod event;
pub mod rehearsal;
mod tls;
mod wire;

pub use decision::{short, Decision, Refusal, TypedReason};

#[cfg(test)]
mod identity_tests;
pub use event::Event;
pub use tls::{ConnectionTls, TlsMode};

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Who did something: an operator at a host, or ferry itself.
///
/// `uid` and `login` are the kernel's view: the effective uid of the process that
/// runs the console (the run's own console), or the peer's uid read from the attach
/// socket (`SO_PEERCRED`), with its login name from the user database. `operator`
/// is the name shown, which `--operator` may set; it never replaces the uid. Both
/// are absent in journals written before ferry recorded them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub operator: String,
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
}

impl Actor {
    /// An operator known only by name (an old journal's, or a test's).
    pub fn named(operator: impl Into<String>, host: impl Into<String>) -> Actor {
        Actor {
            operator: operator.into(),
            host: host.into(),
            uid: None,
            login: None,
        }
    }

    /// The same actor, identified by the kernel as `uid` (login `login`).
    pub fn with_uid(mut self, uid: u32, login: Option<String>) -> Actor {
        self.uid = Some(uid);
        self.login = login;
        self
    }

    /// Whether `self` and `other` are the same person for the two-person rule:
    /// the same uid when both have one (the kernel's view, whatever names they
    /// gave); otherwise (journals from before uids) the same operator name.
    pub fn same_person(&self, other: &Actor) -> bool {
        match (self.uid, other.uid) {
            (Some(a), Some(b)) => a == b,
            _ => self.operator == other.operator,
        }
    }

    /// `alice@bastion (uid 1001)`, `Alice Smith@bastion (alice, uid 1001)`, or
    /// `alice@bastion` when no uid is known: the name and host lead, as lines
    /// written before uids read.
    pub fn at(&self) -> String {
        match (self.uid, self.login.as_deref()) {
            (Some(uid), Some(login)) if login != self.operator => {
                format!("{}@{} ({login}, uid {uid})", self.operator, self.host)
            }
            (Some(uid), _) => format!("{}@{} (uid {uid})", self.operator, self.host),
            (None, _) => format!("{}@{}", self.operator, self.host),
        }
    }

    /// `alice (uid 1001)`, `Alice Smith (alice, uid 1001)`, or the bare name
    /// when no uid is known.
    pub fn who(&self) -> String {
        match (self.uid, self.login.as_deref()) {
            (Some(uid), Some(login)) if login == self.operator => {
                format!("{} (uid {uid})", self.operator)
            }
            (Some(uid), Some(login)) => format!("{} ({login}, uid {uid})", self.operator),
            (Some(uid), None) => format!("{} (uid {uid})", self.operator),
            (None, _) => self.operator.clone(),
        }
    }
}

/// One item of evidence shown to the operator when confirming: a label and its
/// value, how old the value was, and whether it was stale (older than twice its
/// source's interval, or its source failing). Confirming over a stale item needs
/// an explicit acknowledgement, journaled on the item. Older journals have none
/// of the three, and read and write back as they were.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvidenceItem {
    pub label: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub stale: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub acknowledged: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The SHA-256 (hex) of a confirmation's evidence: of its canonical JSON, the
/// items in order as `[{"label":…,"value":…},…]` with no spaces. A proposer and
/// an approver of a two-person step compare it to know they saw the same thing.
pub fn evidence_sha256(evidence: &[EvidenceItem]) -> String {
    use sha2::{Digest, Sha256};
    let canonical: Vec<serde_json::Value> = evidence
        .iter()
        .map(|e| serde_json::json!({ "label": e.label, "value": e.value }))
        .collect();
    let text = serde_json::to_string(&canonical).unwrap_or_default();
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A two-person step's pending proposal: who confirmed it first, with which
/// evidence on screen and that evidence's hash. It waits for a second operator's
/// approval, or for its proposer to withdraw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub by: Actor,
    pub evidence: Vec<EvidenceItem>,
    pub evidence_sha256: String,
}

/// The state of one step (DESIGN.md: pending → ready → awaiting confirmation →
/// running → succeeded / failed / skipped / rolled back; interrupted after a crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Ready,
    AwaitingConfirmation,
    Running,
    /// Failed, waiting for an automatic retry after its backoff.
    RetryWait,
    Succeeded,
    Failed,
    Skipped,
    Interrupted,
    RollingBack,
    RolledBack,
}

impl StepState {
    /// Finished for the purpose of dependencies: later steps may go on.
    pub fn is_done(self) -> bool {
        matches!(self, StepState::Succeeded | StepState::Skipped)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            StepState::Succeeded | StepState::Skipped | StepState::Failed | StepState::RolledBack
        )
    }

    pub fn glyph(self) -> &'static str {
        match self {
            StepState::Pending => "·",
            StepState::Ready => "○",
            StepState::AwaitingConfirmation => "?",
            StepState::Running => "▶",
            StepState::RetryWait => "↻",
            StepState::Succeeded => "✔",
            StepState::Failed => "✘",
            StepState::Skipped => "⤼",
            StepState::Interrupted => "!",
            StepState::RollingBack => "↶",
            StepState::RolledBack => "↩",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Ready => "ready",
            StepState::AwaitingConfirmation => "awaiting confirmation",
            StepState::Running => "running",
            StepState::RetryWait => "waiting to retry",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::Interrupted => "interrupted",
            StepState::RollingBack => "rolling back",
            StepState::RolledBack => "rolled back",
        }
    }
}

/// How an execution of a step (or of a rollback action) ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Succeeded {
        summary: String,
    },
    Failed {
        error: String,
    },
    /// A required service could not be reached (exit code 3 when it ends the run).
    Unreachable {
        error: String,
    },
    TimedOut {
        /// Whole seconds (what older journals have).
        after_secs: u64,
        /// The exact limit, for a timeout with a part under a second (`500ms`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_ms: Option<u64>,
    },
    /// Cancelled by abort or shutdown.
    Cancelled,
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Succeeded { .. })
    }

    pub fn describe(&self) -> String {
        match self {
            Outcome::Succeeded { summary } => summary.clone(),
            Outcome::Failed { error } => error.clone(),
            Outcome::Unreachable { error } => format!("unreachable: {error}"),
            Outcome::TimedOut {
                after_secs,
                after_ms,
            } => format!(
                "timed out after {}",
                humantime::format_duration(match after_ms {
                    Some(ms) => Duration::from_millis(*ms),
                    None => Duration::from_secs(*after_secs),
                })
            ),
            Outcome::Cancelled => "cancelled".to_string(),
        }
    }
}

/// The run as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RunStatus {
    /// Steps are running or can start.
    Active,
    /// Waiting for the operator: confirmations, or decisions about failed/interrupted steps.
    Waiting {
        steps: Vec<String>,
    },
    /// A step failed with `on_failure = halt`: nothing else starts until the operator acts.
    Halted {
        step: String,
    },
    /// Every step finished; `ok` is false when any failed.
    Finished {
        ok: bool,
    },
    Aborted,
}

/// Where an output line came from: the step's process, or ferry itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
    Info,
}

/// One line of a step's output, already redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputLine {
    pub step: String,
    pub stream: Stream,
    pub line: String,
}

/// Progress of a long step (copy, verify), for the screen and the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Units done so far and, when known or estimated, in total.
    pub done: u64,
    pub total: Option<u64>,
    /// What is counted: "rows", "chunks"…
    pub unit: String,
    /// Units per second over the recent past.
    pub rate: Option<f64>,
    pub eta_secs: Option<u64>,
    /// What `eta_secs` was worked out from (absent with no ETA, and in older journals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_basis: Option<EtaBasis>,
    /// Bytes moved, when the step knows.
    pub bytes: Option<u64>,
    /// Per-table (or per-part) lines.
    pub items: Vec<ProgressItem>,
    /// A state worth showing on its own: "paused: lag 42s > 30s", "2 of 4 workers busy".
    pub note: Option<String>,
    /// A caught-up proof's positions while it waits (absent for other steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<CatchUp>,
}

/// What an ETA was worked out from: the step's own recent rate, or what the
/// rehearsals measured (per table, or for the step as a whole), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EtaBasis {
    /// The rate over the last seconds of this run.
    LiveRate,
    /// Each table's rows per second as the rehearsals copied it.
    RehearsedRates,
    /// The step's units per second over its whole duration in the rehearsals.
    RehearsedStepRate,
    /// Rehearsed rates for some tables, the live rate for those no rehearsal copied.
    Mixed,
}

impl std::fmt::Display for EtaBasis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EtaBasis::LiveRate => "live rate",
            EtaBasis::RehearsedRates => "rehearsed rates",
            EtaBasis::RehearsedStepRate => "rehearsed step rate",
            EtaBasis::Mixed => "rehearsed + live rates",
        })
    }
}

/// Where a caught-up proof stands: the primary's position when the wait began,
/// what the replica (or the slot's subscriber) has applied, and how far behind it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatchUp {
    /// The primary's WAL position recorded when the wait began (`0/3000148`).
    pub primary_lsn: String,
    /// The position applied so far (replay LSN, or the slot's confirmed flush LSN).
    pub applied_lsn: Option<String>,
    /// Bytes of WAL still to apply before the proof passes.
    pub bytes_behind: u64,
    /// Seconds behind, as the server measures it (none when it cannot tell).
    pub seconds_behind: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressItem {
    pub name: String,
    pub done: u64,
    pub total: Option<u64>,
    /// "pending", "running", "done", "failed"…
    pub state: String,
}
