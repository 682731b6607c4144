//! The result of a `replicate` step, as journaled and as reports read it: what
//! existed and what was created, each table's sync state, the sequences copied,
//! and what a teardown dropped and could not drop (a slot left behind is named).
//! Data only; the replicate executor fills it in.

use serde::{Deserialize, Serialize};

/// One table of the subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSync {
    pub table: String,
    /// init, copying, copied, synchronized, ready
    pub state: String,
    /// Rows copied so far by the initial sync (while copying), when the server says.
    pub rows: Option<i64>,
}

/// One sequence copied from the source to the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceCopy {
    pub sequence: String,
    /// The value set, or None when nothing was set (see `note`).
    pub value: Option<i64>,
    pub note: Option<String>,
}

/// What a teardown dropped, and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Teardown {
    pub dropped: Vec<String>,
    /// Problems; a slot still present at the end is among them.
    pub errors: Vec<String>,
    /// The slot is still on the source, holding WAL.
    pub slot_left: bool,
}

/// The structured result journaled for a `replicate` step (start, stop or its rollback).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicateReport {
    /// "start", "stop" or "rollback".
    pub action: String,
    /// The publication's, slot's and subscription's name.
    pub name: String,
    /// What was there already (a resumed run re-attaches to it).
    pub reattached: Vec<String>,
    pub created: Vec<String>,
    pub tables: Vec<TableSync>,
    pub sequences: Vec<SequenceCopy>,
    pub teardown: Option<Teardown>,
}

impl ReplicateReport {
    /// The slot a teardown left on the source, if any: the report names it loudly.
    pub fn slot_left(&self) -> Option<&str> {
        self.teardown
            .as_ref()
            .filter(|t| t.slot_left)
            .map(|_| self.name.as_str())
    }
}
