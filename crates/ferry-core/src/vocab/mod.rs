//! The vocabulary shared by the engine, the journal and every front-end: who acts
//! ([`Actor`]), what they decide ([`Decision`]), the machine's inputs ([`Event`]),
//! how executions end ([`Outcome`]), the step and run states, and a step's output
//! and progress. A leaf: it imports nothing of ferry's, so the journal can record
//! these without depending on the engine.

mod decision;
mod event;
pub mod rehearsal;
mod wire;

pub use decision::{Decision, Refusal, TypedReason};
pub use event::Event;

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Who did something: an operator at a host, or ferry itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub operator: String,
    pub host: String,
}

/// One item of evidence shown to the operator when confirming: a label and its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceItem {
    pub label: String,
    pub value: String,
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
    /// Bytes moved, when the step knows.
    pub bytes: Option<u64>,
    /// Per-table (or per-part) lines.
    pub items: Vec<ProgressItem>,
    /// A state worth showing on its own: "paused: lag 42s > 30s", "2 of 4 workers busy".
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressItem {
    pub name: String,
    pub done: u64,
    pub total: Option<u64>,
    /// "pending", "running", "done", "failed"…
    pub state: String,
}
