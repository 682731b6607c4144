//! What the replication watch sees of one subscription of the run, as plain
//! data: each table's sync state with the rows its initial copy has reached,
//! the slot's lag in bytes and seconds, its WAL headroom, and the error counts.
//! The engine publishes it in its snapshot, the console draws it, and the
//! waits of the run read [`ReplicationWatch::fault_since`] to fail when
//! replication broke while they waited.

use super::series::Stale;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A table's state in `pg_subscription_rel.srsubstate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableState {
    /// `i`: waiting for a sync worker.
    Init,
    /// `d`: the initial copy is running.
    Copying,
    /// `f`: copied, the sync worker catches up with the stream.
    Copied,
    /// `s`: synchronized, handing over to the apply worker.
    Synchronized,
    /// `r`: ready: changes arrive through the apply worker.
    Ready,
    /// A code this version of ferry does not know.
    Unknown,
}

impl TableState {
    /// From `srsubstate`.
    pub fn from_code(code: &str) -> TableState {
        match code {
            "i" => TableState::Init,
            "d" => TableState::Copying,
            "f" => TableState::Copied,
            "s" => TableState::Synchronized,
            "r" => TableState::Ready,
            _ => TableState::Unknown,
        }
    }

    /// The word the screen and the journal use.
    pub fn word(self) -> &'static str {
        match self {
            TableState::Init => "init",
            TableState::Copying => "copying",
            TableState::Copied => "copied",
            TableState::Synchronized => "synchronized",
            TableState::Ready => "ready",
            TableState::Unknown => "unknown",
        }
    }
}

/// One table of a watched subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableWatch {
    /// `schema.table`.
    pub table: String,
    pub state: TableState,
    /// Rows the running initial copy has processed (`pg_stat_progress_copy`
    /// of its sync worker); `None` when no copy of the table runs.
    pub rows: Option<i64>,
}

/// The slot's WAL headroom on the source (`pg_replication_slots`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headroom {
    /// `wal_status`: reserved, extended, unreserved or lost.
    pub wal_status: Option<String>,
    /// `safe_wal_size`: bytes of WAL that can still be written before the slot
    /// is in danger of losing what it needs; `None` when
    /// `max_slot_wal_keep_size` is -1 (no limit: the disk is the limit).
    pub safe_bytes: Option<i64>,
}

/// One subscription of the run, watched from the start of its `replicate`
/// step until its stop.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReplicationWatch {
    /// The publication's, slot's and subscription's name.
    pub name: String,
    /// The `replicate` step that started it.
    pub step: String,
    /// Connection names.
    pub source: String,
    pub target: String,
    /// The subscription exists on the target (the pane is shown only then).
    pub exists: bool,
    /// `subenabled`: false after `disable_on_error` stopped it.
    pub enabled: bool,
    pub tables: Vec<TableWatch>,
    /// `pg_current_wal_insert_lsn() - confirmed_flush_lsn` on the source.
    pub lag_bytes: Option<u64>,
    /// Seconds behind (0 when no byte is behind); see docs/replication-watch.md.
    pub lag_secs: Option<f64>,
    pub headroom: Option<Headroom>,
    /// `pg_stat_subscription_stats` (PostgreSQL 15 and later; `None` before).
    pub apply_errors: Option<i64>,
    pub sync_errors: Option<i64>,
    /// The latest error seen, in words, with the table named where PostgreSQL
    /// lets it be known.
    pub error: Option<String>,
    pub updated: Option<DateTime<Utc>>,
    pub stale: Option<Stale>,
}

/// The error counts of every watched subscription when a step began.
pub type ErrorBaseline = Vec<(String, i64, i64)>;

impl ReplicationWatch {
    /// Any error at all: the pane turns red.
    pub fn in_error(&self) -> bool {
        (self.exists && !self.enabled && self.updated.is_some())
            || self.apply_errors.unwrap_or(0) > 0
            || self.sync_errors.unwrap_or(0) > 0
    }

    /// Tables in `state`.
    pub fn count(&self, state: TableState) -> usize {
        self.tables.iter().filter(|t| t.state == state).count()
    }

    /// Why a step that began with `baseline` must fail now: the subscription
    /// is disabled, or an error count rose since the step began.
    pub fn fault_since(&self, baseline: &ErrorBaseline) -> Option<String> {
        if !self.exists || self.updated.is_none() {
            return None;
        }
        let (apply0, sync0) = baseline
            .iter()
            .find(|(n, _, _)| *n == self.name)
            .map_or((0, 0), |(_, a, s)| (*a, *s));
        let apply = self.apply_errors.unwrap_or(0);
        let sync = self.sync_errors.unwrap_or(0);
        let rose = apply > apply0 || sync > sync0;
        if self.enabled && !rose {
            return None;
        }
        Some(self.error.clone().unwrap_or_else(|| {
            format!(
                "subscription `{}` {} (apply errors {apply}, sync errors {sync})",
                self.name,
                if self.enabled {
                    "reports new errors"
                } else {
                    "is disabled"
                }
            )
        }))
    }
}

/// The counts of `watches` now, for [`ReplicationWatch::fault_since`].
pub fn baseline(watches: &[ReplicationWatch]) -> ErrorBaseline {
    watches
        .iter()
        .map(|w| {
            (
                w.name.clone(),
                w.apply_errors.unwrap_or(0),
                w.sync_errors.unwrap_or(0),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(enabled: bool, apply: i64, sync: i64) -> ReplicationWatch {
        ReplicationWatch {
            name: "ferry_cutover".into(),
            exists: true,
            enabled,
            apply_errors: Some(apply),
            sync_errors: Some(sync),
            updated: Some(Utc::now()),
            ..Default::default()
        }
    }

    #[test]
    fn a_rise_or_a_disabled_subscription_is_a_fault_and_old_errors_are_not() {
        let w = watch(true, 2, 1);
        let base = baseline(std::slice::from_ref(&w));
        assert_eq!(w.fault_since(&base), None, "errors from before the step");
        assert!(w.in_error(), "but the pane is red");
        let rose = watch(true, 3, 1);
        let f = rose.fault_since(&base).expect("a fault");
        assert!(
            f.contains("reports new errors") && f.contains("apply errors 3"),
            "{f}"
        );
        let off = ReplicationWatch {
            error: Some("apply error on public.items".into()),
            ..watch(false, 2, 1)
        };
        assert_eq!(
            off.fault_since(&base).as_deref(),
            Some("apply error on public.items")
        );
        let unseen = ReplicationWatch {
            updated: None,
            ..watch(false, 0, 0)
        };
        assert_eq!(unseen.fault_since(&vec![]), None, "not read yet");
        assert!(!watch(true, 0, 0).in_error());
    }

    #[test]
    fn states_read_from_their_codes() {
        let codes = ["i", "d", "f", "s", "r", "x"];
        let words: Vec<&str> = codes
            .iter()
            .map(|c| TableState::from_code(c).word())
            .collect();
        assert_eq!(
            words,
            [
                "init",
                "copying",
                "copied",
                "synchronized",
                "ready",
                "unknown"
            ]
        );
    }
}
