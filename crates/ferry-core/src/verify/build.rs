//! The final [`VerifyReport`], from what the workers found: per-table results, the
//! coverage, and a one-line summary that says plainly whether the data is verified.

use super::report::{table_result, Findings};
use super::tables::TableJob;
use crate::db::Db;
use crate::results::verify::VerifyReport;
use crate::runbook::VerifyStep;
use crate::units::count;
use std::time::Instant;

/// Longest first difference quoted in the summary.
const SUMMARY_QUOTE: usize = 240;

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

#[allow(clippy::too_many_arguments)]
pub fn report(
    step: &VerifyStep,
    jobs: &[TableJob],
    (source, target): (&Db, &Db),
    checks: &[&str],
    f: Findings,
    notes: Vec<String>,
    stopped: bool,
    started: Instant,
) -> VerifyReport {
    let tables: Vec<_> = f.tables.iter().map(|t| table_result(t, checks)).collect();
    let n = tables.len();
    let total_rows: u64 = f
        .tables
        .iter()
        .zip(jobs)
        .map(|(t, j)| {
            t.counts
                .map(|c| c.0.max(0) as u64)
                .unwrap_or_else(|| j.est_rows())
        })
        .sum();
    let checksummed: u64 = f.tables.iter().map(|t| t.rows_checked).sum();
    let tables_done = f.tables.iter().filter(|t| t.checksums_done).count();
    let coverage = if checks.contains(&"checksums") {
        if tables_done == n && !stopped {
            format!(
                "checksums covered all {} rows of {n} tables",
                count(checksummed)
            )
        } else {
            let pct = if total_rows > 0 {
                100.0 * checksummed as f64 / total_rows as f64
            } else {
                0.0
            };
            format!(
                "checksums covered {} of about {} source rows ({pct:.1}%), {tables_done} of {n} tables complete",
                count(checksummed),
                count(total_rows)
            )
        }
    } else if checks.contains(&"counts") {
        let counted = f.tables.iter().filter(|t| t.counts.is_some()).count();
        format!(
            "{counted} of {n} tables counted ({} source rows); rows were not compared",
            count(total_rows)
        )
    } else {
        format!("{n} tables; rows were not compared")
    };
    let total = f.total();
    let differing = tables.iter().filter(|t| t.differences > 0).count();
    let ok = total == 0 && !stopped && tables.iter().all(|t| t.ok);
    let limit = step
        .time_limit
        .map(|d| humantime::format_duration(d).to_string())
        .unwrap_or_default();
    let summary = if ok {
        format!(
            "no differences: {n} tables, {} rows ({})",
            count(if checks.contains(&"checksums") {
                checksummed
            } else {
                total_rows
            }),
            checks.join(", ")
        )
    } else if total == 0 {
        format!(
            "stopped at the time limit ({limit}) before everything was compared — {coverage}; \
             no differences in what was checked, the rest is NOT verified"
        )
    } else {
        let first = f
            .lines
            .first()
            .map(|l| cut(l, SUMMARY_QUOTE))
            .unwrap_or_default();
        let s = if total == 1 { "" } else { "s" };
        let in_tables = if differing > 0 {
            format!(" in {differing} of {n} tables")
        } else {
            String::new()
        };
        let stop = if stopped {
            format!(" (stopped at the time limit {limit}; {coverage})")
        } else {
            String::new()
        };
        let more = if total > 1 {
            format!(" (+{} more)", total - 1)
        } else {
            String::new()
        };
        format!("{total} difference{s}{in_tables}{stop}: {first}{more}")
    };
    VerifyReport {
        ok,
        summary,
        source: source.engine().to_string(),
        target: target.engine().to_string(),
        checks: checks.iter().map(|c| c.to_string()).collect(),
        tables,
        differences: f.lines,
        more_differences: f.more,
        stopped_early: stopped,
        coverage,
        rows_compared: checksummed,
        elapsed_secs: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        notes: notes.into_iter().chain(f.notes).collect(),
    }
}
