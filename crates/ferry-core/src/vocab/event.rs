//! The machine's inputs. Every one is journaled before its effects run, so replaying
//! the journal rebuilds the same state.

use super::{wire::EventWire, Actor, Decision, Outcome};
use serde::{Deserialize, Serialize};

/// An input of the state machine: an operator's decision, or what the driver saw
/// happen to an execution. On the wire (the journal, the attach socket) an event
/// keeps the flat form journals have always had (`{"type":"confirm","step":…,"by":…}`),
/// see [`super::wire`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "EventWire", into = "EventWire")]
pub enum Event {
    /// An operator (or `--yes`) decided.
    Decided {
        by: Actor,
        decision: Decision,
    },
    /// The driver started executing a step (attempt 1, 2, ...).
    Started {
        step: String,
        attempt: u32,
    },
    Finished {
        step: String,
        attempt: u32,
        outcome: Outcome,
    },
    /// An automatic retry's backoff elapsed.
    RetryDue {
        step: String,
    },
    RollbackFinished {
        step: String,
        outcome: Outcome,
    },
    /// On resume: these steps were running when the previous process died.
    Interrupted {
        steps: Vec<String>,
    },
}

impl Event {
    /// `by` decided `decision`.
    pub fn decided(by: Actor, decision: Decision) -> Event {
        Event::Decided { by, decision }
    }

    /// Who decided, for an operator's decision.
    pub fn by(&self) -> Option<&Actor> {
        match self {
            Event::Decided { by, .. } => Some(by),
            _ => None,
        }
    }

    /// The decision, for an operator's decision.
    pub fn decision(&self) -> Option<&Decision> {
        match self {
            Event::Decided { decision, .. } => Some(decision),
            _ => None,
        }
    }
}
