//! Builds the copy step's [`CopyReport`] (per-table rows, bytes, chunks, time and
//! speed, the sequences reset, and how the load ran) from what the workers counted.

use super::prepare::{Clear, TableSpec};
use super::progress::Stats;
use crate::db::Db;
use crate::results::copy::{CopyReport, SequenceReset, TableReport};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

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
                (Db::MySql(_), Db::Pg(_)) => "mysql → copy text".into(),
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
        mapped: Vec::new(),
    }
}
