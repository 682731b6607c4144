//! The result of a copy step: per-table rows, bytes, chunks, time and speed, the
//! sequences reset, and how the load ran (replica role, truncation). Serialised into
//! the journal as the step's result.

use super::prepare::{Clear, TableSpec};
use super::progress::Stats;
use super::sequences::SequenceReset;
use crate::db::plan::Method;
use crate::db::Db;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

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
            crate::units::count(self.rows),
            self.tables.len(),
            if self.tables.len() == 1 { "" } else { "s" },
            crate::units::bytes(self.bytes),
            self.duration_ms as f64 / 1000.0,
            crate::units::count(self.rows_per_sec.max(0.0).round() as u64),
            reset,
            if reset == 1 { "" } else { "s" }
        )
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn report(
    step_id: &str,
    source: &Db,
    target: &Db,
    specs: &[TableSpec],
    stats: &Stats,
    sequences: Vec<SequenceReset>,
    started: Instant,
    copy_time: Duration,
    replica: bool,
    truncated: bool,
) -> CopyReport {
    let mut tables = Vec::new();
    let (mut rows, mut bytes, mut chunks, mut resumed, mut fresh) = (0, 0, 0, 0, 0);
    for (spec, st) in specs.iter().zip(&stats.tables) {
        let t_rows = st.rows.load(Relaxed);
        let resumed_rows: u64 = spec.done.iter().flatten().map(|d| d.rows).sum();
        let dur = st.duration();
        let this_run = t_rows.saturating_sub(resumed_rows);
        let per_sec = if dur.as_secs_f64() > 0.0 {
            this_run as f64 / dur.as_secs_f64()
        } else {
            0.0
        };
        rows += t_rows;
        fresh += this_run;
        bytes += st.bytes.load(Relaxed);
        chunks += st.chunks_total;
        resumed += st.chunks_resumed;
        tables.push(TableReport {
            table: spec.name.clone(),
            target: spec.tgt.qualified_name(),
            rows: t_rows,
            bytes: st.bytes.load(Relaxed),
            chunks: st.chunks_total,
            chunks_resumed: st.chunks_resumed,
            duration_ms: dur.as_millis() as u64,
            rows_per_sec: per_sec,
            method: spec.plan.method,
            format: match (source, target) {
                (Db::Pg(_), Db::Pg(_)) if spec.binary => "copy binary".into(),
                (Db::Pg(_), Db::Pg(_)) => "copy text".into(),
                _ => "rows".into(),
            },
            clears: match spec.clear {
                Clear::Range => "range",
                Clear::All => "table",
                Clear::Nothing => "none",
            }
            .into(),
        });
    }
    let secs = copy_time.as_secs_f64();
    CopyReport {
        step: step_id.to_string(),
        source: source.engine().to_string(),
        target: target.engine().to_string(),
        tables,
        sequences,
        rows,
        bytes,
        chunks,
        chunks_resumed: resumed,
        duration_ms: started.elapsed().as_millis() as u64,
        rows_per_sec: if secs > 0.0 { fresh as f64 / secs } else { 0.0 },
        workers: stats.workers,
        replica_role: replica,
        truncated,
    }
}
