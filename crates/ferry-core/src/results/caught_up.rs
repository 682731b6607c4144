//! The result of a caught-up proof (`wait` with `until = { caught_up = ... }`), as
//! journaled and as reports and the confirmation evidence read it: both WAL
//! positions, whether the replica got past the primary's, and how long it took.
//! Data only; the wait executor fills it in.

use serde::{Deserialize, Serialize};

/// The structured result journaled for a caught-up proof.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaughtUpReport {
    /// Always "caught_up": tells this result from other `wait` results.
    pub proof: String,
    /// The primary's connection name.
    pub primary: String,
    /// The standby's connection name (physical proof).
    pub replica: Option<String>,
    /// The logical slot on the primary (logical proof).
    pub slot: Option<String>,
    /// The primary's WAL position when the wait began.
    pub primary_lsn: String,
    /// The position the replica (or the slot's subscriber) had applied at the end.
    pub applied_lsn: Option<String>,
    /// True when `applied_lsn` reached `primary_lsn`.
    pub caught_up: bool,
    /// Bytes still missing at the end (0 when caught up).
    pub bytes_behind: u64,
    /// Seconds from the start of the wait to its end.
    pub waited_secs: f64,
    /// The primary's system identifier (a physical standby shares it).
    pub system_identifier: Option<String>,
}

impl CaughtUpReport {
    /// The value of [`CaughtUpReport::proof`].
    pub const PROOF: &'static str = "caught_up";

    /// What was compared, as people read it: "replica `replica`" or "slot `ferry_cutover`".
    pub fn follower(&self) -> String {
        match (&self.replica, &self.slot) {
            (Some(r), _) => format!("replica `{r}`"),
            (None, Some(s)) => format!("slot `{s}`"),
            (None, None) => "the replica".to_string(),
        }
    }

    /// One line: "replica `replica` applied 0/3000148 ≥ primary `old` 0/3000060 after 1.2s".
    pub fn sentence(&self) -> String {
        let applied = self.applied_lsn.as_deref().unwrap_or("nothing");
        if self.caught_up {
            format!(
                "{} applied {applied} ≥ primary `{}` {} (waited {:.1}s)",
                self.follower(),
                self.primary,
                self.primary_lsn,
                self.waited_secs
            )
        } else {
            format!(
                "{} NOT caught up: applied {applied} < primary `{}` {} ({} bytes behind after {:.1}s)",
                self.follower(),
                self.primary,
                self.primary_lsn,
                self.bytes_behind,
                self.waited_secs
            )
        }
    }
}
