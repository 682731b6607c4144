//! The copy engine: chunked, parallel, COPY-streamed, exactly-once copies of tables
//! from one database to another (DESIGN.md, "Copy and verification engines").
//!
//! [`run`] takes the two open databases, a cancellation token and callbacks for
//! progress, info lines and the throttle; it knows nothing of the engine that calls it.
//!
//! How a step runs:
//! 1. [`prepare`]: select tables by glob, find each on the target, check the columns,
//!    refuse a copy of a database onto itself.
//! 2. [`checkpoint`]: load what this step already did on this target. The step id
//!    namespaces the checkpoints. The first run (nothing stored for the step) plans
//!    every table ([`plan::plan`]) and stores the plan; with `truncate = true` it
//!    empties the target tables in the same transaction. A later run (a resume) uses
//!    the stored plan, skips checkpointed chunks and **never truncates**: it would
//!    throw away chunks whose checkpoints say they are done. Checkpoints belong to
//!    the run (journal) that wrote them ([`owner`]): a new run of the same step on
//!    the same target starts over, as a first run.
//! 3. [`worker`]s take chunks from a shared queue. Each chunk runs in one target
//!    transaction: check its checkpoint, clear its key range, load its rows ([`pg`]
//!    streams COPY; [`generic`] moves rows when SQLite is involved), write its
//!    checkpoint, commit. A kill at any moment loses or doubles nothing.
//! 4. [`sequences`] are reset; the [`CopyReport`] is returned.
//!
//! From MySQL (into PostgreSQL only), [`mysql`] reads each chunk in a consistent
//! snapshot of its own and [`crate::db::mysql_values`] carries every value exactly or fails
//! the step; the checkpoints are the same.

pub mod checkpoint;
mod conn;
mod generic;
mod mysql;
pub mod owner;
mod pg;
pub mod preflight;
pub mod prepare;
pub mod progress;
mod queue;
mod report;
pub mod sequences;
pub mod throttle;
mod values;
mod worker;

pub use crate::results::copy::{CopyReport, MappedValues, Method, SequenceReset, TableReport};
pub use progress::{CopyProgress, ProgressFn, TableProgress};
pub use throttle::{Throttle, ThrottleFn};

use crate::db::plan::{self, TablePlan};
use crate::db::{catalog, sqltext, Db};
use crate::runbook::CopyStep;
use serde::Serialize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub type InfoFn = Arc<dyn Fn(String) + Send + Sync>;

/// How a copy talks back to whoever runs it.
#[derive(Clone)]
pub struct Hooks {
    pub cancel: CancellationToken,
    /// Progress, at most about four times a second.
    pub progress: ProgressFn,
    /// A line worth showing: a retry, a pause, a decision taken.
    pub info: InfoFn,
    /// Checked between chunks; the copy pauses while it returns [`Throttle::Hold`].
    pub throttle: Option<ThrottleFn>,
    /// The run this copy belongs to (the engine's run id). Checkpoints another run
    /// left on the target are then not resumed: the step starts over. `None` takes
    /// whatever is stored as this run's own.
    pub run: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyError {
    /// Wrong schema, wrong data, a constraint: the message names the table, the
    /// chunk and the server's words.
    #[error("{0}")]
    Failed(String),
    /// A database could not be reached (or kept dropping the connection).
    #[error("{0}")]
    Unreachable(String),
    #[error("cancelled")]
    Cancelled,
}

/// ` where c1 and c2 and (filter)`, or nothing: a query's own conditions and the step's
/// `where` filter, which every read of a copy applies.
pub(crate) fn where_clause(mut conds: Vec<String>, filter: Option<&str>) -> String {
    if let Some(f) = filter {
        conds.push(format!("({f})"));
    }
    if conds.is_empty() {
        String::new()
    } else {
        format!(" where {}", conds.join(" and "))
    }
}

/// The error of a copy asked to write into MySQL (refused before any work starts).
pub(crate) fn not_a_target() -> sqlx::Error {
    sqlx::Error::Configuration("ferry copies from MySQL into PostgreSQL, never into MySQL".into())
}

impl CopyError {
    fn sql(context: &str, e: &sqlx::Error) -> CopyError {
        let text = format!("{context}: {}", sqltext::error_text(e));
        if sqltext::is_retryable(e) {
            CopyError::Unreachable(text)
        } else {
            CopyError::Failed(text)
        }
    }
}

/// The COPY format of PostgreSQL → PostgreSQL copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyFormat {
    /// Text always.
    Text,
    /// Binary for each table whose columns all have the same built-in types on a
    /// server of the same major version; text for the others.
    BinaryWhereSafe,
}

impl CopyFormat {
    /// The built-in choice (see BENCHMARKS.md, "Copy"), unless `FERRY_COPY_FORMAT`
    /// says `text` or `binary` (for measurements).
    pub fn from_env() -> CopyFormat {
        match std::env::var("FERRY_COPY_FORMAT").as_deref() {
            Ok("text") => CopyFormat::Text,
            Ok("binary") => CopyFormat::BinaryWhereSafe,
            _ => DEFAULT_FORMAT,
        }
    }
}

/// Binary where safe: exact on every type the tests try (tests/it/copy_pg.rs) and faster
/// than text in 4 of 5 benchmark invocations (BENCHMARKS.md, "Copy").
const DEFAULT_FORMAT: CopyFormat = CopyFormat::BinaryWhereSafe;

/// Copy the tables of `step` from `source` to `target`. `step_id` namespaces the
/// checkpoints on the target.
pub async fn run(
    step_id: &str,
    step: &CopyStep,
    source: &Db,
    target: &Db,
    hooks: Hooks,
) -> Result<CopyReport, CopyError> {
    run_with(step_id, step, source, target, hooks, CopyFormat::from_env()).await
}

/// [`run`] with the COPY format chosen by the caller.
pub async fn run_with(
    step_id: &str,
    step: &CopyStep,
    source: &Db,
    target: &Db,
    hooks: Hooks,
    format: CopyFormat,
) -> Result<CopyReport, CopyError> {
    let cancel = hooks.cancel.clone();
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(CopyError::Cancelled),
        r = run_inner(step_id, step, source, target, hooks, format) => r,
    }
}

async fn run_inner(
    step_id: &str,
    step: &CopyStep,
    source: &Db,
    target: &Db,
    hooks: Hooks,
    format: CopyFormat,
) -> Result<CopyReport, CopyError> {
    let started = Instant::now();
    let info = hooks.info.clone();
    match (source, target) {
        (_, Db::MySql(_)) => {
            return Err(CopyError::Failed(
                "the target is MySQL: ferry copies from MySQL into PostgreSQL, not into MySQL"
                    .into(),
            ))
        }
        (Db::MySql(_), Db::Sqlite(_)) => {
            return Err(CopyError::Failed(
                "a MySQL source copies into PostgreSQL only, not into SQLite".into(),
            ))
        }
        _ => {}
    }
    let mut specs = match_tables(step, source, target, format).await?;
    if let Db::MySql(_) = source {
        let pre = preflight::run(&specs, step.zero_dates, source, target).await?;
        for w in &pre.warnings {
            info(format!("pre-flight: {w}"));
        }
        if !pre.problems.is_empty() {
            return Err(CopyError::Failed(format!(
                "pre-flight: {} problem(s), no row copied: {}",
                pre.problems.len(),
                pre.problems.join("; ")
            )));
        }
        info("reading MySQL: each chunk in a consistent snapshot of its own (START TRANSACTION WITH CONSISTENT SNAPSHOT); the step as a whole is consistent only while writes to these tables are stopped".into());
    }
    let stored = load_checkpoints(step_id, step, target, &hooks).await?;
    let truncated =
        plan_and_begin(step_id, step, source, target, &mut specs, &stored, &info).await?;
    let replica = conn::replica_permitted(target)
        .await
        .map_err(|e| CopyError::sql("connecting to the target", &e))?;
    let notes = announce(&specs, replica, &info);
    let mut workers = step.parallel.max(1) as usize;
    if matches!(target, Db::Sqlite(_)) && workers > 1 {
        info("SQLite target: one writer".into());
        workers = 1;
    }
    let queue = queue::Queue::new(&specs, !replica);
    let workers = workers.min(queue.pending()).max(1);
    let stats = Arc::new(progress::Stats {
        tables: table_stats(&specs),
        busy: Default::default(),
        workers,
        paused: Mutex::new(None),
        notes,
    });
    let shared = Arc::new(worker::Shared {
        step: step_id.to_string(),
        source: source.clone(),
        target: target.clone(),
        specs,
        stats: stats.clone(),
        queue: Mutex::new(queue),
        notify: Default::default(),
        stop: hooks.cancel.child_token(),
        failure: Mutex::new(None),
        replica,
        info: info.clone(),
        throttle: hooks.throttle.clone(),
        throttle_said: Mutex::new(None),
        zero_dates: step.zero_dates,
    });
    let copy_time = run_workers(&shared, &hooks, workers).await?;
    let sequences =
        sequences::reset_all(source, target, &shared.specs, &info, &hooks.cancel).await?;
    let mapped = match (source, target) {
        (Db::MySql(_), Db::Pg(tp)) => checkpoint::pg_mapped_totals(tp, step_id)
            .await
            .map_err(|e| CopyError::sql("reading the mapped-value counts", &e))?
            .into_iter()
            .map(|(table, column, mapping, count)| {
                info(format!(
                    "table {table} column {column}: {count} values mapped ({mapping})"
                ));
                MappedValues {
                    table,
                    column,
                    mapping,
                    count,
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut report = report::report(
        step_id,
        source,
        target,
        &shared.specs,
        &stats,
        sequences,
        started,
        copy_time,
        replica,
        truncated,
    );
    report.mapped = mapped;
    Ok(report)
}

/// Refuse a copy of a database onto itself, read both catalogs and match every
/// selected source table with its target.
async fn match_tables(
    step: &CopyStep,
    source: &Db,
    target: &Db,
    format: CopyFormat,
) -> Result<Vec<prepare::TableSpec>, CopyError> {
    if conn::same_database(source, target)
        .await
        .map_err(|e| CopyError::sql("comparing source and target", &e))?
    {
        return Err(CopyError::Failed(
            "source and target are the same database: refusing to copy it onto itself".into(),
        ));
    }
    let (src_cat, tgt_cat) = tokio::join!(catalog::read(source), catalog::read(target));
    let src_cat = src_cat.map_err(|e| CopyError::sql("reading the source catalog", &e))?;
    let tgt_cat = tgt_cat.map_err(|e| CopyError::sql("reading the target catalog", &e))?;
    prepare::match_tables(
        step,
        &src_cat,
        &tgt_cat,
        format == CopyFormat::BinaryWhereSafe,
    )
}

/// The checkpoints this step stored on the target, or none when another run owns
/// them (this run then starts the step over and claims it).
async fn load_checkpoints(
    step_id: &str,
    step: &CopyStep,
    target: &Db,
    hooks: &Hooks,
) -> Result<checkpoint::Stored, CopyError> {
    checkpoint::ensure(target)
        .await
        .map_err(|e| CopyError::sql("creating the checkpoint tables on the target", &e))?;
    let mut stored = checkpoint::load(target, step_id)
        .await
        .map_err(CopyError::Failed)?;
    let Some(run) = &hooks.run else {
        return Ok(stored);
    };
    let owner = owner::get(target, step_id)
        .await
        .map_err(|e| CopyError::sql("reading which run owns the checkpoints", &e))?;
    let other = owner.as_ref().is_some_and(|o| o != run);
    if other && !stored.is_first_run() {
        (hooks.info)(format!(
            "step `{step_id}` was copied onto this target by another run before; this run starts it over{}",
            if step.truncate {
                " (truncate = true empties the tables first)"
            } else {
                ": every chunk replaces its key range, and target rows outside the source's keys stay (truncate = true removes them)"
            }
        ));
        stored = checkpoint::Stored::default();
    }
    if owner.as_ref() != Some(run) {
        owner::claim(target, step_id, run, other)
            .await
            .map_err(|e| CopyError::sql("recording this run as the copy's owner", &e))?;
    }
    Ok(stored)
}

/// Give every table its plan (the stored one, or a new one), then store the new
/// plans and, on a first run with `truncate = true`, empty the target tables in the
/// same transaction. Returns whether tables were emptied.
async fn plan_and_begin(
    step_id: &str,
    step: &CopyStep,
    source: &Db,
    target: &Db,
    specs: &mut [prepare::TableSpec],
    stored: &checkpoint::Stored,
    info: &InfoFn,
) -> Result<bool, CopyError> {
    let first_run = stored.is_first_run();
    let new_plans = plan_missing(step, source, specs, stored, info).await?;
    let mut truncate: Vec<String> = Vec::new();
    if step.truncate && first_run {
        for s in specs.iter() {
            let n = s.tgt.sql_name();
            if !truncate.contains(&n) {
                truncate.push(n);
            }
        }
    }
    if !new_plans.is_empty() || !truncate.is_empty() {
        checkpoint::begin_step(target, step_id, &truncate, &new_plans)
            .await
            .map_err(|e| CopyError::sql("emptying the target tables and storing the plan", &e))?;
    }
    let total_chunks: usize = specs.iter().map(|s| s.plan.chunks.len()).sum();
    let resumed: usize = specs.iter().map(|s| s.done.iter().flatten().count()).sum();
    if !first_run {
        info(format!(
            "resuming step `{step_id}`: {resumed} of {total_chunks} chunks were copied by an earlier run{}",
            if step.truncate { "; not truncating (truncate applies to a first run only)" } else { "" }
        ));
    } else if !truncate.is_empty() {
        info(format!(
            "emptied {} target tables (first run, truncate = true)",
            truncate.len()
        ));
    }
    Ok(!truncate.is_empty())
}

/// Plan the tables the step has no stored plan for and attach every table's plan;
/// returns the new plans.
async fn plan_missing(
    step: &CopyStep,
    source: &Db,
    specs: &mut [prepare::TableSpec],
    stored: &checkpoint::Stored,
    info: &InfoFn,
) -> Result<Vec<TablePlan>, CopyError> {
    let planning = Instant::now();
    let todo: Vec<&prepare::TableSpec> = specs
        .iter()
        .filter(|s| !stored.plans.contains_key(&s.name))
        .collect();
    let mut fresh: Vec<TablePlan> = Vec::with_capacity(todo.len());
    // At most two at a time: planning runs on the engine's small shared pool.
    for group in todo.chunks(step.parallel.clamp(1, 2) as usize) {
        let planned =
            futures::future::join_all(group.iter().map(|s| plan_table(source, s, step.chunk_rows)))
                .await;
        for p in planned {
            fresh.push(p?);
        }
    }
    if !fresh.is_empty() {
        info(format!(
            "planned {} chunks over {} tables in {:.2}s",
            fresh.iter().map(|p| p.chunks.len()).sum::<usize>(),
            fresh.len(),
            planning.elapsed().as_secs_f64()
        ));
    }
    for spec in specs.iter_mut() {
        let plan = match stored.plans.get(&spec.name) {
            Some(p) => p.clone(),
            None => fresh
                .iter()
                .find(|p| p.table == spec.name)
                .cloned()
                .ok_or_else(|| CopyError::Failed(format!("table {}: no plan", spec.name)))?,
        };
        prepare::attach_plan(spec, plan, stored)?;
    }
    Ok(fresh)
}

/// Say how the load will behave where it differs from a plain copy: no replica
/// role, self-referencing tables, triggers, ranges not cleared, converted types.
/// Returns the notes the progress keeps.
fn announce(specs: &[prepare::TableSpec], replica: bool, info: &InfoFn) -> Vec<String> {
    let mut notes = Vec::new();
    if !replica {
        let note =
            "no replica role (needs superuser): target triggers and foreign keys are enforced; \
                    loading parent tables before their children"
                .to_string();
        info(note.clone());
        notes.push(note);
        for s in specs {
            if s.tgt.self_ref {
                info(format!(
                    "table {}: it references itself, so its chunks load one at a time in key order \
                     (a row whose parent has a larger key cannot load without the replica role)",
                    s.name
                ));
            }
            if s.tgt.has_triggers {
                info(format!(
                    "table {}: its triggers on the target fire for every copied row (they may change or reject rows)",
                    s.name
                ));
            }
        }
    }
    for s in specs {
        if s.clear == prepare::Clear::Nothing && s.filter.is_none() && !s.src.key.is_empty() {
            info(format!(
                "table {}: its key may sort differently on the target, so chunks do not clear their range first \
                 (checkpoints still make the copy exactly-once; rows the target already has fail as duplicates)",
                s.name
            ));
        }
    }
    for s in specs {
        let changes = s.type_changes();
        if !changes.is_empty() {
            info(format!(
                "table {}: column types differ on the target, which converts each value: {}",
                s.name,
                changes.join(", ")
            ));
        }
    }
    notes
}

/// Progress counters per table, starting from the chunks an earlier run copied.
fn table_stats(specs: &[prepare::TableSpec]) -> Vec<progress::TableStats> {
    specs
        .iter()
        .map(|s| {
            let planned: u64 = s.plan.chunks.iter().map(|c| c.est_rows).sum();
            let est = s.src.est_rows.unwrap_or(planned);
            let mut t = progress::TableStats::new(s.name.clone(), s.plan.chunks.len() as u64, est);
            for d in s.done.iter().flatten() {
                t.rows.fetch_add(d.rows, Relaxed);
                t.bytes.fetch_add(d.bytes, Relaxed);
                t.chunks_done.fetch_add(1, Relaxed);
                t.chunks_resumed += 1;
            }
            t
        })
        .collect()
}

/// Run `workers` workers and the progress reporter until the queue is empty or the
/// copy stops; returns the time the copying took. Never succeeds with a chunk missing.
async fn run_workers(
    shared: &Arc<worker::Shared>,
    hooks: &Hooks,
    workers: usize,
) -> Result<Duration, CopyError> {
    let stats = &shared.stats;
    let copy_started = Instant::now();
    let stop_reporting = CancellationToken::new();
    let reporter = tokio::spawn(progress::reporter(
        stats.clone(),
        hooks.progress.clone(),
        stop_reporting.clone(),
    ));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        set.spawn(worker::worker(shared.clone()));
    }
    while let Some(joined) = set.join_next().await {
        if let Err(e) = joined {
            shared.stop.cancel();
            if let Ok(mut f) = shared.failure.lock() {
                f.get_or_insert(CopyError::Failed(format!(
                    "a copy worker ended abnormally: {e}"
                )));
            }
        }
    }
    stop_reporting.cancel();
    let _ = reporter.await;
    (hooks.progress)(progress::with_rate(stats.snapshot(), None));
    if let Some(e) = shared.failure.lock().ok().and_then(|mut f| f.take()) {
        return Err(e);
    }
    if hooks.cancel.is_cancelled() {
        return Err(CopyError::Cancelled);
    }
    // Never report success for a copy with a chunk missing, whatever went wrong.
    if let Some(missing) = stats.incomplete() {
        return Err(CopyError::Failed(format!(
            "the workers stopped with chunks left to copy: {missing}"
        )));
    }
    Ok(copy_started.elapsed())
}

async fn plan_table(
    source: &Db,
    spec: &prepare::TableSpec,
    chunk_rows: u64,
) -> Result<TablePlan, CopyError> {
    plan::plan(source, &spec.src, chunk_rows)
        .await
        .map_err(|e| CopyError::sql(&format!("planning chunks of {}", spec.name), &e))
}
