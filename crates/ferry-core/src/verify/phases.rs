//! The phases of a verification, in order: schema, counts, checksums, sample. Each
//! phase is a queue of work items (a table, or a chunk of a table) that the workers
//! take one at a time, each worker with its own connection on both sides. Every item
//! runs under a savepoint on both sides: a query that fails (an odd type, a
//! permission) is reported as that table's failure and the rest goes on; a lost
//! connection stops the verification.

use super::bisect::{check_chunk, Worker};
use super::hashed;
use super::queue::Queue;
use super::report::{Findings, Kind};
use super::sample::sample_table;
use super::session::{Role, SideError};
use super::sql::SideSql;
use super::tables::{Strategy, TableJob};
use super::{ops, Hooks, VerifyError, VerifyProgress, VerifyTableProgress};
use crate::db::plan::Chunk;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One piece of work.
#[derive(Debug, Clone)]
pub enum Item {
    Count(usize),
    /// The whole of a key-range table.
    Root(usize),
    Chunk(usize, Chunk),
    Hashed(usize),
    Sample(usize),
}

impl Item {
    fn table(&self) -> usize {
        match self {
            Item::Count(t)
            | Item::Root(t)
            | Item::Chunk(t, _)
            | Item::Hashed(t)
            | Item::Sample(t) => *t,
        }
    }
}

/// Record both sides' exact row counts of table `t`.
fn record_counts(f: &mut Findings, t: usize, name: &str, (a, b): (i64, i64)) {
    if let Some(ts) = f.table(t) {
        if ts.counts.is_some() {
            return;
        }
        ts.counts = Some((a, b));
    }
    if a != b {
        let line = format!("{name}: {a} rows on source, {b} on target ({:+})", b - a);
        f.add(Some(t), Kind::Counts, line, 1);
    }
}

impl From<SideError> for VerifyError {
    fn from(e: SideError) -> Self {
        match e {
            SideError::Unreachable(t) => VerifyError::Unreachable(t),
            SideError::Query(t) => VerifyError::Failed(t),
        }
    }
}

/// What the workers share.
pub struct Shared<'a> {
    pub jobs: &'a [TableJob],
    /// The source pool, for the copy planner.
    pub source: &'a crate::db::Db,
    pub tuning: super::Tuning,
    /// The counts check takes its figures from the checksum queries (no time limit:
    /// one pass instead of two).
    pub derive_counts: bool,
    pub findings: &'a Mutex<Findings>,
    pub hooks: &'a Hooks,
    pub sample: u64,
    pub phase: Mutex<&'static str>,
    pub last_progress: Mutex<Option<Instant>>,
}

impl Shared<'_> {
    /// The end: one last progress report.
    pub fn set_done(&self) {
        self.set_phase("done");
    }

    pub fn set_phase(&self, p: &'static str) {
        if let Ok(mut ph) = self.phase.lock() {
            *ph = p;
        }
        self.progress(true);
    }

    /// Report progress, at most four times a second unless `force`.
    pub fn progress(&self, force: bool) {
        if let Ok(mut last) = self.last_progress.lock() {
            if !force && last.is_some_and(|l| l.elapsed() < Duration::from_millis(250)) {
                return;
            }
            *last = Some(Instant::now());
        }
        let phase = self.phase.lock().map(|p| *p).unwrap_or("");
        let Ok(f) = self.findings.lock() else { return };
        let tables: Vec<VerifyTableProgress> = f
            .tables
            .iter()
            .zip(self.jobs)
            .map(|(t, j)| VerifyTableProgress {
                name: t.name.clone(),
                state: if t.checksums_done || t.differences() > 0 {
                    t.state()
                } else {
                    "pending"
                }
                .to_string(),
                rows_done: t.rows_checked,
                rows_total: t.counts.map(|c| c.0.max(0) as u64).or(j.src.est_rows),
            })
            .collect();
        let p = VerifyProgress {
            phase: phase.to_string(),
            rows_done: tables.iter().map(|t| t.rows_done).sum(),
            rows_total: tables.iter().map(|t| t.rows_total.unwrap_or(0)).sum(),
            differences: f.total(),
            tables,
        };
        drop(f);
        (self.hooks.progress)(p);
    }
}

/// Run `items` on all workers.
pub async fn run_items(
    workers: &mut [Worker],
    items: Vec<Item>,
    sh: &Shared<'_>,
    phase: &'static str,
) -> Result<(), VerifyError> {
    sh.set_phase(phase);
    let queue = Queue::new(items);
    futures::future::try_join_all(workers.iter_mut().map(|w| worker_loop(w, &queue, sh))).await?;
    sh.progress(true);
    Ok(())
}

async fn worker_loop(w: &mut Worker, queue: &Queue, sh: &Shared<'_>) -> Result<(), VerifyError> {
    loop {
        let Some(item) = queue.next().await else {
            return Ok(());
        };
        let r = work_on(w, item, queue, sh).await;
        queue.done();
        r?;
    }
}

async fn work_on(
    w: &mut Worker,
    item: Item,
    queue: &Queue,
    sh: &Shared<'_>,
) -> Result<(), VerifyError> {
    let t = item.table();
    let failed = sh
        .findings
        .lock()
        .map(|f| f.tables.get(t).is_some_and(|ts| !ts.errors.is_empty()))
        .unwrap_or(false);
    if failed {
        return Ok(());
    }
    w.begin().await?;
    let r = do_item(w, item, sh, queue).await;
    w.end(r.is_ok()).await?;
    match r {
        Ok(()) => {}
        Err(SideError::Unreachable(e)) => return Err(VerifyError::Unreachable(e)),
        Err(SideError::Query(e)) => {
            if let Ok(mut f) = sh.findings.lock() {
                f.error(t, e);
            }
        }
    }
    sh.progress(false);
    Ok(())
}

/// Table `t`'s checksums are complete: `rows` on each side.
fn checksums_done(sh: &Shared<'_>, f: &mut Findings, t: usize, rows: (i64, i64)) {
    if let Some(ts) = f.table(t) {
        ts.checksums_done = true;
    }
    if sh.derive_counts {
        record_counts(f, t, &sh.jobs[t].name, rows);
    }
}

async fn do_item(
    w: &mut Worker,
    item: Item,
    sh: &Shared<'_>,
    queue: &Queue,
) -> Result<(), SideError> {
    let t = item.table();
    let job = &sh.jobs[t];
    let whole = Chunk {
        lo: None,
        hi: None,
        est_rows: 0,
    };
    match item {
        Item::Count(_) => {
            let (s, g) = (
                SideSql::new(job, Role::Source),
                SideSql::new(job, Role::Target),
            );
            let (a, b) = tokio::join!(ops::count(&mut w.src, s), ops::count(&mut w.tgt, g));
            let a = a.map_err(|e| {
                SideError::from_sql(Role::Source, &format!("counting {}", job.name), &e)
            })?;
            let b = b.map_err(|e| {
                SideError::from_sql(Role::Target, &format!("counting {}", job.name), &e)
            })?;
            if let Ok(mut f) = sh.findings.lock() {
                record_counts(&mut f, t, &job.name, (a, b));
            }
        }
        Item::Root(_) => {
            let (a, b) = w.sums(job, &whole).await?;
            let rows = (a.count, b.count);
            let chunks = if a == b {
                Vec::new()
            } else {
                crate::db::plan::plan(sh.source, &job.src, sh.tuning.chunk_rows)
                    .await
                    .map_err(|e| {
                        SideError::from_sql(
                            Role::Source,
                            &format!("planning chunks of {}", job.name),
                            &e,
                        )
                    })?
                    .chunks
            };
            if chunks.len() <= 1 {
                let differed = a != b;
                if differed {
                    check_chunk(w, job, t, whole, Some((a, b)), sh.findings).await?;
                }
                if let Ok(mut f) = sh.findings.lock() {
                    if let Some(ts) = f.table(t) {
                        ts.chunks_total = 1;
                        ts.chunks_done = 1;
                        ts.chunks_differ = differed as u64;
                        ts.rows_checked = rows.0.max(0) as u64;
                    }
                    checksums_done(sh, &mut f, t, rows);
                }
            } else {
                if let Ok(mut f) = sh.findings.lock() {
                    if let Some(ts) = f.table(t) {
                        ts.chunks_total = chunks.len() as u64;
                        ts.root_counts = Some(rows);
                    }
                }
                queue.push(chunks.into_iter().map(|c| Item::Chunk(t, c)));
            }
        }
        Item::Chunk(_, chunk) => {
            let r = check_chunk(w, job, t, chunk, None, sh.findings).await?;
            if let Ok(mut f) = sh.findings.lock() {
                let mut done = None;
                if let Some(ts) = f.table(t) {
                    ts.chunks_done += 1;
                    ts.rows_checked += r.rows.0.max(0) as u64;
                    ts.chunks_differ += r.differed as u64;
                    ts.sides = (ts.sides.0 + r.rows.0, ts.sides.1 + r.rows.1);
                    if ts.chunks_done >= ts.chunks_total {
                        done = Some(ts.root_counts.unwrap_or(ts.sides));
                    }
                }
                if let Some(rows) = done {
                    checksums_done(sh, &mut f, t, rows);
                }
            }
        }
        Item::Hashed(_) => {
            let rows = hashed::check_table(w, job, t, sh.findings).await?;
            if let Ok(mut f) = sh.findings.lock() {
                if let Some(ts) = f.table(t) {
                    ts.rows_checked = rows.0.max(0) as u64;
                }
                checksums_done(sh, &mut f, t, rows);
            }
        }
        Item::Sample(_) => {
            let of = sh
                .findings
                .lock()
                .ok()
                .and_then(|f| {
                    f.tables
                        .get(t)
                        .and_then(|ts| ts.counts.map(|c| c.0.max(0) as u64))
                })
                .unwrap_or_else(|| job.est_rows());
            sample_table(w, job, t, sh.sample, of, sh.findings).await?;
        }
    }
    Ok(())
}

/// Items of the checksum phase: the planned chunks of key-range tables (planned on
/// the source pool, a few tables at a time), one item per row-hash table.
pub async fn checksum_items(source: &crate::db::Db, sh: &Shared<'_>, parallel: usize) -> Vec<Item> {
    let mut items = Vec::new();
    let mut ranged: Vec<(usize, &crate::db::catalog::Table)> = Vec::new();
    for (i, j) in sh
        .jobs
        .iter()
        .enumerate()
        .filter(|(_, j)| j.strategy == Strategy::Ranges)
    {
        // Tables estimated small enough are checksummed whole first (one scan per
        // side, which the server may run in parallel) and planned only when they
        // differ; larger ones are planned up front, so progress and a time limit
        // have chunks to count.
        if j.src
            .est_rows
            .is_some_and(|n| n > sh.tuning.whole_table_rows)
        {
            ranged.push((i, &j.src));
        } else {
            items.push(Item::Root(i));
        }
    }
    let mut plans: Vec<(usize, Result<crate::db::plan::TablePlan, sqlx::Error>)> = Vec::new();
    for group in ranged.chunks(parallel.max(1)) {
        let mut futs = Vec::new();
        for &(i, t) in group {
            futs.push(async move {
                (
                    i,
                    crate::db::plan::plan(source, t, sh.tuning.chunk_rows).await,
                )
            });
        }
        plans.extend(futures::future::join_all(futs).await);
    }
    let Ok(mut f) = sh.findings.lock() else {
        return items;
    };
    for (i, p) in plans {
        match p {
            Ok(plan) => {
                if let Some(ts) = f.table(i) {
                    ts.chunks_total = plan.chunks.len() as u64;
                }
                items.extend(plan.chunks.into_iter().map(|c| Item::Chunk(i, c)));
            }
            Err(e) => f.error(
                i,
                format!("planning chunks: {}", crate::db::sqltext::error_text(&e)),
            ),
        }
    }
    for (i, j) in sh.jobs.iter().enumerate() {
        if j.strategy == Strategy::Hashed {
            if let Some(ts) = f.table(i) {
                ts.hashed = true;
                ts.chunks_total = 1;
            }
            items.push(Item::Hashed(i));
        }
    }
    items
}
