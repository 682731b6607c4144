//! The result of a copy step, as journaled and as reports read it: per-table rows,
//! bytes, chunks, time and speed, the sequences reset, and how the load ran (replica
//! role, truncation). Data only; the copy engine fills it in.

use crate::units::{bytes, count};
use serde::{Deserialize, Serialize};

/// How a table was cut into chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    IntRange,
    Sampled,
    Whole,
}

/// A sequence the copy set after loading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequenceReset {
    /// Target `schema.table` and column.
    pub table: String,
    pub column: String,
    pub sequence: String,
    /// What the sequence was set to (`setval(sequence, value, is_called)`).
    pub value: Option<i64>,
    pub is_called: bool,
    /// Where the value came from.
    pub from: String,
}

/// Values the runbook told the copy to change (a MySQL zero date carried as NULL),
/// counted per column: nothing is changed without being counted here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappedValues {
    /// Source `schema.table` and column.
    pub table: String,
    pub column: String,
    /// What was done, e.g. `zero date → NULL`.
    pub mapping: String,
    pub count: u64,
}

/// Figures of one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableReport {
    pub table: String,
    pub target: String,
    /// Rows in the target from this step (including chunks of earlier runs).
    pub rows: u64,
    pub bytes: u64,
    pub chunks: u64,
    /// Chunks an earlier run had copied.
    pub chunks_resumed: u64,
    pub duration_ms: u64,
    /// Rows copied by this run per second of this table's copying.
    pub rows_per_sec: f64,
    pub method: Method,
    /// "copy text", "copy binary" or "rows".
    pub format: String,
    /// How a chunk cleared its range on the target: "range", "table" or "none".
    pub clears: String,
}

/// The result of a copy step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CopyReport {
    pub step: String,
    pub source: String,
    pub target: String,
    pub tables: Vec<TableReport>,
    pub sequences: Vec<SequenceReset>,
    pub rows: u64,
    pub bytes: u64,
    pub chunks: u64,
    pub chunks_resumed: u64,
    pub duration_ms: u64,
    pub rows_per_sec: f64,
    pub workers: usize,
    /// Loaded with `session_replication_role = replica` (SQLite: foreign keys off).
    pub replica_role: bool,
    /// The target tables were emptied first (a first run with `truncate = true`).
    pub truncated: bool,
    /// Values changed as the runbook's mappings say (MySQL sources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mapped: Vec<MappedValues>,
}

impl CopyReport {
    /// One line for the step's outcome.
    pub fn summary(&self) -> String {
        let resumed = if self.chunks_resumed > 0 {
            format!(", {} chunks from an earlier run", self.chunks_resumed)
        } else {
            String::new()
        };
        let reset = self.sequences.iter().filter(|s| s.value.is_some()).count();
        // the same units as the report and the console: `420,000 rows`, `20.7 MiB`
        format!(
            "copied {} rows in {} table{} ({}) in {:.1}s, {} rows/s{resumed}; {} sequence{} reset",
            count(self.rows),
            self.tables.len(),
            if self.tables.len() == 1 { "" } else { "s" },
            bytes(self.bytes),
            self.duration_ms as f64 / 1000.0,
            count(self.rows_per_sec.max(0.0).round() as u64),
            reset,
            if reset == 1 { "" } else { "s" }
        )
    }
}
