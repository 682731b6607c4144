//! The verification engine (DESIGN.md, "Copy and verification engines"): compares a
//! source and a target and names every difference — the column, the index, the
//! sequence, the row by its primary key — never a bare "mismatch".
//!
//! [`run`] takes the two open databases, the step and [`Hooks`] (a cancellation
//! token, a progress callback, an info callback); it knows nothing of the engine.
//!
//! How a step runs:
//! 1. Both catalogs are read ([`crate::db::catalog`]); the step's `tables` globs
//!    minus `exclude` select source tables, each paired with the target's table of the
//!    same name ([`tables`]). A selected table the target lacks is a difference.
//! 2. A few read-only connections are opened on each side, sharing one snapshot per
//!    side ([`session`]): plain reads only, so a standby or a restored snapshot works
//!    as well as a primary.
//! 3. The checks, in this order, each only if asked for: `schema` ([`schema`]);
//!    `counts` — exact `count(*)` on both sides at once; `checksums` — a table of up
//!    to [`Tuning::whole_table_rows`] rows is checksummed whole first (one scan per
//!    side), and a table that differs (or is larger) is cut into the copy planner's
//!    key ranges, checksummed on both sides at once and bisected down to the rows
//!    ([`bisect`]); tables that cannot be ranged compare row-hash multisets
//!    ([`hashed`]); `sample` ([`sample`]). Values are compared after the
//!    normalisation described in [`norm`] (server settings, types across engines).
//! 4. The [`VerifyReport`]: per table, per check, a summary, and the difference lines
//!    (at most `max_diffs`, with the count of the rest).
//!
//! Decisions:
//! - **Counts.** With `checksums` and no `time_limit`, the exact counts come from
//!   the checksum queries (`count(*)` of every range, in the same snapshot): one pass
//!   over the data instead of two. With a time limit, `count(*)` runs first for every
//!   table, so a stop still leaves every table counted.
//! - **Time limit.** When `time_limit` passes, work in flight is abandoned and the
//!   report says what was covered (`stopped_early`, `coverage`). A verification that
//!   stopped early is **not ok**, even when everything it did check was equal: data
//!   that was not compared was not verified, and zero data loss means an operator
//!   decides (skip with a reason, or retry with more time). The summary says so in
//!   plain words: "stopped at the time limit … no differences in what was checked".
//! - A column the target lacks is a difference even when the schema check is off:
//!   its data would be lost.
//! - Target tables the globs select that the source lacks are reported by the schema
//!   check only (they lose no data). Across engines they are not looked for.
//! - A table whose comparison fails (a query error) is reported as a difference and
//!   the others go on; a database that cannot be reached stops the verification.

mod bisect;
mod build;
pub mod canon;
pub mod canon_mysql;
mod hashed;
pub mod norm;
mod ops;
mod phases;
mod queue;
pub mod report;
pub mod rows;
mod sample;
pub mod schema;
mod schema_check;
mod schema_mysql;
mod schema_pg;
mod schema_sqlite;
pub mod session;
mod sql;
pub mod tables;
#[cfg(test)]
mod tests;

pub use crate::results::verify::{TableResult, VerifyReport};

use crate::db::catalog;
use crate::db::sqltext::{error_text, is_retryable};
use crate::db::Db;
use crate::runbook::{Check, VerifyStep};
use bisect::Worker;
use phases::{Item, Shared};
use report::Findings;
use serde::Serialize;
use session::Role;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Sizes of the work, for measurements and tests; [`run`] uses the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Rows per planned chunk (a differing chunk is then cut 16 ways).
    pub chunk_rows: u64,
    /// Tables estimated at no more rows than this are checksummed whole first, and
    /// planned into chunks only when they differ; larger ones are planned up front.
    pub whole_table_rows: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            chunk_rows: 50_000,
            whole_table_rows: 5_000_000,
        }
    }
}

/// Progress of a verification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyProgress {
    /// "schema", "counts", "checksums", "sample", "done".
    pub phase: String,
    /// Source rows covered by checksums so far, and in all.
    pub rows_done: u64,
    pub rows_total: u64,
    pub differences: u64,
    pub tables: Vec<VerifyTableProgress>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyTableProgress {
    pub name: String,
    /// "pending", "equal", "differs", "failed".
    pub state: String,
    pub rows_done: u64,
    pub rows_total: Option<u64>,
}

pub type ProgressFn = Arc<dyn Fn(VerifyProgress) + Send + Sync>;
pub type InfoFn = Arc<dyn Fn(String) + Send + Sync>;

/// How a verification talks back to whoever runs it.
#[derive(Clone)]
pub struct Hooks {
    pub cancel: CancellationToken,
    pub progress: ProgressFn,
    pub info: InfoFn,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Could not even start comparing (catalogs unreadable, ...).
    #[error("{0}")]
    Failed(String),
    /// A database could not be reached, or dropped the connection.
    #[error("{0}")]
    Unreachable(String),
    #[error("cancelled")]
    Cancelled,
}

fn sql_error(context: &str, e: &sqlx::Error) -> VerifyError {
    let text = format!("{context}: {}", error_text(e));
    if is_retryable(e) {
        VerifyError::Unreachable(text)
    } else {
        VerifyError::Failed(text)
    }
}

fn check_name(c: Check) -> &'static str {
    match c {
        Check::Schema => "schema",
        Check::Counts => "counts",
        Check::Checksums => "checksums",
        Check::Sample => "sample",
    }
}

/// Compare `target` against `source` as `step` says.
pub async fn run(
    step: &VerifyStep,
    source: &Db,
    target: &Db,
    hooks: Hooks,
) -> Result<VerifyReport, VerifyError> {
    run_with(step, source, target, hooks, Tuning::default()).await
}

/// [`run`] with the work sized by the caller.
pub async fn run_with(
    step: &VerifyStep,
    source: &Db,
    target: &Db,
    hooks: Hooks,
    tuning: Tuning,
) -> Result<VerifyReport, VerifyError> {
    if matches!(target, Db::MySql(_))
        || (matches!(source, Db::MySql(_)) && !matches!(target, Db::Pg(_)))
    {
        return Err(VerifyError::Failed(format!(
            "verify compares a MySQL source with a PostgreSQL target (what the copy carries); \
             a {} source with a {} target is not supported",
            source.engine(),
            target.engine()
        )));
    }
    let cancel = hooks.cancel.clone();
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(VerifyError::Cancelled),
        r = run_inner(step, source, target, &hooks, tuning) => r,
    }
}

async fn run_inner(
    step: &VerifyStep,
    source: &Db,
    target: &Db,
    hooks: &Hooks,
    tuning: Tuning,
) -> Result<VerifyReport, VerifyError> {
    let started = Instant::now();
    let deadline = step.time_limit.map(|d| tokio::time::Instant::now() + d);
    let checks: Vec<&str> = {
        let mut c: Vec<Check> = step.checks.clone();
        c.sort();
        c.dedup();
        c.into_iter().map(check_name).collect()
    };
    let (sc, tc) = tokio::join!(catalog::read(source), catalog::read(target));
    let sc = sc.map_err(|e| sql_error("reading the source catalog", &e))?;
    let tc = tc.map_err(|e| sql_error("reading the target catalog", &e))?;
    let (mut workers, mut notes) = open_workers(source, target).await?;
    let nondet = nondeterministic_columns(&mut workers, &sc, &tc).await?;
    let pairing = tables::pair(
        &step.tables,
        &step.exclude,
        &sc,
        &tc,
        &nondet,
        step.zero_dates,
    );
    let findings = Mutex::new(table_findings(step, &checks, &pairing));
    let jobs = pairing.jobs;
    (hooks.info)(format!(
        "comparing {} tables ({}) with {} connections per side",
        jobs.len(),
        checks.join(", "),
        workers.len()
    ));
    for n in &notes {
        (hooks.info)(n.clone());
    }
    for j in &jobs {
        if let Some(why) = &j.why_hashed {
            let note = format!("{}: compared by row hashes, not key ranges: {why}", j.name);
            (hooks.info)(note.clone());
            notes.push(note);
        }
    }
    let sh = Shared {
        jobs: &jobs,
        source,
        tuning,
        derive_counts: checks.contains(&"counts")
            && checks.contains(&"checksums")
            && step.time_limit.is_none(),
        findings: &findings,
        hooks,
        sample: step.sample,
        phase: Mutex::new("starting"),
        last_progress: Mutex::new(None),
    };
    let stopped = run_checks(
        &mut workers,
        &sh,
        &checks,
        source,
        (sc.major, tc.major),
        deadline,
    )
    .await;
    for w in workers {
        w.src.close().await;
        w.tgt.close().await;
    }
    let stopped = stopped?;
    sh.set_done();
    let f = findings.into_inner().unwrap_or_default();
    let report = build::report(
        step,
        &jobs,
        (source, target),
        &checks,
        f,
        notes,
        stopped,
        started,
    );
    for line in &report.differences {
        (hooks.info)(line.clone());
    }
    if report.more_differences > 0 {
        (hooks.info)(format!(
            "… and {} more differences",
            report.more_differences
        ));
    }
    Ok(report)
}

/// As many read-only session pairs as both sides allow, one per worker; and the
/// notes of a side whose connections could not share one snapshot.
async fn open_workers(source: &Db, target: &Db) -> Result<(Vec<Worker>, Vec<String>), VerifyError> {
    let n = session::conn_budget(source).min(session::conn_budget(target));
    let (a, b) = tokio::join!(
        session::open(source, Role::Source, n),
        session::open(target, Role::Target, n)
    );
    let (src_conns, note_a) = a?;
    let (tgt_conns, note_b) = b?;
    let notes: Vec<String> = [note_a, note_b].into_iter().flatten().collect();
    let workers: Vec<Worker> = src_conns
        .into_iter()
        .zip(tgt_conns)
        .map(|(src, tgt)| Worker { src, tgt })
        .collect();
    Ok((workers, notes))
}

/// Columns with a nondeterministic collation on a PostgreSQL side, as (side, table
/// oid, column): their text cannot be compared by hash.
async fn nondeterministic_columns(
    workers: &mut [Worker],
    sc: &catalog::Catalog,
    tc: &catalog::Catalog,
) -> Result<HashSet<(Role, u32, String)>, VerifyError> {
    let mut nondet = HashSet::new();
    let Some(w) = workers.first_mut() else {
        return Ok(nondet);
    };
    for (role, conn, cat) in [
        (Role::Source, &mut w.src, sc),
        (Role::Target, &mut w.tgt, tc),
    ] {
        if let session::Conn::Pg(c) = conn {
            let oids: Vec<u32> = cat.tables.iter().map(|t| t.oid).collect();
            let cols = schema_pg::nondeterministic(c, &oids, cat.major)
                .await
                .map_err(|e| sql_error(&format!("reading the {} collations", role.name()), &e))?;
            nondet.extend(cols.into_iter().map(|(o, n)| (role, o, n)));
        }
    }
    Ok(nondet)
}

/// The findings known before any data is read: no table selected, tables missing
/// or (with the schema check) extra on the target, and columns missing on the
/// target when the schema check does not report them.
fn table_findings(step: &VerifyStep, checks: &[&str], pairing: &tables::Pairing) -> Findings {
    let names: Vec<String> = pairing.jobs.iter().map(|j| j.name.clone()).collect();
    let mut f = Findings::new(step.max_diffs as usize, &names);
    if pairing.jobs.is_empty() && pairing.missing.is_empty() {
        f.add(
            None,
            report::Kind::Other,
            format!(
                "no tables to compare: `tables` {:?} (minus `exclude`) selects none on the source",
                step.tables
            ),
            1,
        );
    }
    for m in &pairing.missing {
        f.add(
            None,
            report::Kind::Other,
            format!("{m}: table missing on target"),
            1,
        );
    }
    if checks.contains(&"schema") {
        for x in &pairing.extra {
            f.add(
                None,
                report::Kind::Other,
                format!("{x}: table extra on target"),
                1,
            );
        }
    }
    for (i, j) in pairing.jobs.iter().enumerate() {
        for why in &j.uncarried {
            f.add(
                Some(i),
                report::Kind::Other,
                format!("{}: {why} (its values were not compared)", j.name),
                1,
            );
        }
        if !checks.contains(&"schema") {
            for c in &j.missing_cols {
                f.add(
                    Some(i),
                    report::Kind::Other,
                    format!(
                        "{}.{c}: column missing on target (its values were not compared)",
                        j.name
                    ),
                    1,
                );
            }
        }
    }
    f
}

/// Run the checks in order; `Ok(true)` when the time limit stopped them.
async fn run_checks(
    workers: &mut [Worker],
    sh: &Shared<'_>,
    checks: &[&str],
    source: &Db,
    majors: (u32, u32),
    deadline: Option<tokio::time::Instant>,
) -> Result<bool, VerifyError> {
    let n = sh.jobs.len();
    let until = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    let work = async {
        if checks.contains(&"schema") {
            if let Some(w) = workers.first_mut() {
                schema_check::schema(w, sh, majors).await?;
            }
        }
        if checks.contains(&"counts") && !sh.derive_counts {
            phases::run_items(workers, (0..n).map(Item::Count).collect(), sh, "counts").await?;
        }
        if checks.contains(&"checksums") {
            let items = phases::checksum_items(source, sh, workers.len()).await;
            phases::run_items(workers, items, sh, "checksums").await?;
        }
        if checks.contains(&"sample") && sh.sample > 0 {
            phases::run_items(workers, (0..n).map(Item::Sample).collect(), sh, "sample").await?;
        }
        Ok::<(), VerifyError>(())
    };
    tokio::select! {
        biased;
        r = work => r.map(|_| false),
        _ = until => Ok(true),
    }
}
