//! What the state machine's transition tables share: a runbook from step
//! TOML, an operator, and the events a driver would feed the machine.

use super::*;
use crate::runbook::load_str;
use crate::vocab::{Actor, Event, Outcome};
use std::path::Path;

/// A one-phase runbook (connection `db`, SQLite) holding `steps`.
pub fn rb(steps: &str) -> Runbook {
    let text = format!(
        "[runbook]\nname = \"t\"\nformat = 1\n[connections.db]\nurl = \"sqlite://x.db\"\n[[phase]]\nid = \"p\"\n{steps}\n"
    );
    load_str("t.toml", &text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{}", e.render()))
}

/// alice, uid 1001 on the bastion.
pub fn alice() -> Actor {
    Actor::named("alice", "bastion").with_uid(1001, Some("alice".into()))
}

/// bob, uid 1002 on the same bastion.
pub fn bob() -> Actor {
    Actor::named("bob", "bastion").with_uid(1002, Some("bob".into()))
}

/// alice confirms `step` (by hand, or as `--yes` does).
pub fn confirmation(step: &str, automatic: bool) -> Event {
    Event::Decided {
        by: alice(),
        decision: Decision::Confirm {
            step: step.into(),
            automatic,
            typed: None,
            evidence: vec![],
        },
    }
}

pub fn ok(step: &str, attempt: u32) -> Event {
    Event::Finished {
        step: step.into(),
        attempt,
        outcome: Outcome::Succeeded {
            summary: "exit 0".into(),
        },
    }
}

pub fn fail(step: &str, attempt: u32) -> Event {
    Event::Finished {
        step: step.into(),
        attempt,
        outcome: Outcome::Failed {
            error: "exit status 1".into(),
        },
    }
}
