//! The workers: a shared queue of chunks across and within tables, taken by
//! `parallel` workers that each keep one source and one target connection. Without
//! `session_replication_role = replica` a table's chunks wait until the tables its
//! foreign keys reference are complete. A chunk that fails because a connection
//! dropped is rolled back (its transaction is dropped) and retried on fresh
//! connections with capped backoff; any other error stops the copy.

use super::conn::{self, Conn, Role};
use super::prepare::TableSpec;
use super::progress::{Meter, Stats};
use super::queue::{Queue, Take};
use super::throttle::{Throttle, ThrottleFn};
use super::{generic, mysql, pg, CopyError, InfoFn};
use crate::db::sqltext::{error_text, is_retryable};
use crate::db::Db;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Attempts per chunk before the source or target counts as unreachable.
pub const MAX_ATTEMPTS: u32 = 10;
/// How often a paused copy looks at its throttle again.
pub const THROTTLE_POLL: Duration = Duration::from_millis(500);

/// The wait after failed attempt `n` (1-based): 0.5s doubling, capped at 10s.
pub fn backoff(n: u32) -> Duration {
    crate::backoff::capped(Duration::from_millis(500), n, Duration::from_secs(10))
}

/// A chunk that committed (or had been committed by an attempt whose
/// acknowledgement was lost: `resumed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkDone {
    pub rows: u64,
    pub bytes: u64,
    pub resumed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChunkError {
    /// The connection dropped or the server is restarting: retry on new connections.
    Retry(String),
    /// The data or the schema is wrong: stop.
    Fatal(String),
}

impl From<sqlx::Error> for ChunkError {
    fn from(e: sqlx::Error) -> Self {
        if is_retryable(&e) {
            ChunkError::Retry(error_text(&e))
        } else {
            ChunkError::Fatal(error_text(&e))
        }
    }
}

/// What all workers share.
pub(crate) struct Shared {
    pub step: String,
    pub source: Db,
    pub target: Db,
    pub specs: Vec<TableSpec>,
    pub stats: Arc<Stats>,
    pub queue: Mutex<Queue>,
    pub notify: Notify,
    /// Fires on cancellation or on the first failure.
    pub stop: CancellationToken,
    pub failure: Mutex<Option<CopyError>>,
    pub replica: bool,
    pub info: InfoFn,
    pub throttle: Option<ThrottleFn>,
    /// The last throttle state announced, so each change is said once.
    pub throttle_said: Mutex<Option<String>>,
    /// What a MySQL zero date becomes.
    pub zero_dates: crate::runbook::ZeroDates,
}

impl Shared {
    fn fail(&self, e: CopyError) {
        if e != CopyError::Cancelled {
            if let Ok(mut f) = self.failure.lock() {
                f.get_or_insert(e);
            }
        }
        self.stop.cancel();
        self.notify.notify_waiters();
    }

    async fn next_job(&self) -> Option<(usize, usize)> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let take = match self.queue.lock() {
                Ok(mut q) => q.take(),
                Err(_) => Take::Done,
            };
            match take {
                Take::Job(t, c) => return Some((t, c)),
                Take::Done => return None,
                Take::Wait => {}
            }
            tokio::select! {
                _ = self.stop.cancelled() => return None,
                _ = &mut notified => {}
            }
        }
    }

    /// Wait while the throttle holds. False when the copy was stopped meanwhile.
    async fn throttle_gate(&self) -> bool {
        let Some(check) = &self.throttle else {
            return true;
        };
        loop {
            if self.stop.is_cancelled() {
                return false;
            }
            let state = check();
            let (say, paused) = match &state {
                Throttle::Clear => (None, None),
                Throttle::Unknown(m) => (Some(format!("throttle: {m}; not pausing")), None),
                Throttle::Hold(why) => (
                    Some(format!("paused: {why}")),
                    Some(format!("paused: {why}")),
                ),
            };
            if let Ok(mut p) = self.stats.paused.lock() {
                *p = paused.clone();
            }
            if let Ok(mut said) = self.throttle_said.lock() {
                let was_paused = said.as_deref().is_some_and(|s| s.starts_with("paused"));
                match (&say, &state) {
                    (None, _) if was_paused => {
                        (self.info)("resumed: the throttle condition cleared".into())
                    }
                    (Some(s), Throttle::Hold(_)) if !was_paused => (self.info)(s.clone()),
                    (Some(s), Throttle::Unknown(_)) if said.as_deref() != Some(s.as_str()) => {
                        (self.info)(s.clone())
                    }
                    _ => {}
                }
                *said = say;
            }
            if paused.is_none() {
                return true;
            }
            tokio::select! {
                _ = self.stop.cancelled() => return false,
                _ = tokio::time::sleep(THROTTLE_POLL) => {}
            }
        }
    }
}

/// One worker: take chunks until none are left or the copy stops.
pub(crate) async fn worker(sh: Arc<Shared>) {
    let mut src: Option<Conn> = None;
    let mut tgt: Option<Conn> = None;
    loop {
        if !sh.throttle_gate().await {
            return;
        }
        let Some((t, c)) = sh.next_job().await else {
            return;
        };
        let stats = &sh.stats.tables[t];
        sh.stats.busy.fetch_add(1, Relaxed);
        stats.started();
        let result = run_job(&sh, t, c, &mut src, &mut tgt).await;
        sh.stats.busy.fetch_sub(1, Relaxed);
        match result {
            Ok(done) => {
                stats.finished(done.rows, done.bytes);
                if let Ok(mut q) = sh.queue.lock() {
                    q.finish(t);
                }
                sh.notify.notify_waiters();
            }
            Err(e) => {
                stats.running.fetch_sub(1, Relaxed);
                if e != CopyError::Cancelled {
                    stats.failed.store(true, Relaxed);
                }
                sh.fail(e);
                return;
            }
        }
    }
}

/// Copy chunk `c` of table `t`, retrying on connection loss.
async fn run_job(
    sh: &Shared,
    t: usize,
    c: usize,
    src: &mut Option<Conn>,
    tgt: &mut Option<Conn>,
) -> Result<ChunkDone, CopyError> {
    let spec = &sh.specs[t];
    let Some(chunk) = spec.plan.chunks.get(c) else {
        return Err(CopyError::Failed(format!(
            "table {}: no chunk {c}",
            spec.name
        )));
    };
    let what = || format!("table {} chunk {}", spec.name, chunk.label());
    for attempt in 1..=MAX_ATTEMPTS {
        let result = {
            let mut meter = Meter::new(&sh.stats.tables[t]);
            tokio::select! {
                biased;
                _ = sh.stop.cancelled() => return Err(CopyError::Cancelled),
                r = attempt_chunk(sh, spec, chunk, src, tgt, &mut meter) => r,
            }
        };
        match result {
            Ok(done) => return Ok(done),
            Err(ChunkError::Fatal(msg)) => {
                return Err(CopyError::Failed(format!(
                    "{}: {msg}{}{}{}",
                    what(),
                    type_hint(spec, &msg),
                    fk_hint(sh.replica, &msg),
                    rls_hint(&msg)
                )));
            }
            Err(ChunkError::Retry(msg)) => {
                // The transaction dies with its connection: nothing of the chunk stays.
                *src = None;
                *tgt = None;
                if attempt == MAX_ATTEMPTS {
                    return Err(CopyError::Unreachable(format!(
                        "{}: gave up after {MAX_ATTEMPTS} attempts: {msg}",
                        what()
                    )));
                }
                let wait = backoff(attempt);
                (sh.info)(format!(
                    "{}: {msg}; rolled back, retrying in {} (attempt {} of {MAX_ATTEMPTS})",
                    what(),
                    crate::units::short_secs(wait),
                    attempt + 1
                ));
                tokio::select! {
                    _ = sh.stop.cancelled() => return Err(CopyError::Cancelled),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
    Err(CopyError::Failed(format!("{}: no attempt made", what())))
}

/// What to do about a value the target rejected (SQLSTATE class 22, data
/// exception) when the table's column types differ between the sides.
fn type_hint(spec: &TableSpec, msg: &str) -> String {
    let changes = spec.type_changes();
    if changes.is_empty() || !msg.contains("[SQLSTATE 22") {
        return String::new();
    }
    format!(
        "; the target's column types differ from the source's ({}): change the target column \
         to a type that holds the source's values, then retry the step",
        changes.join(", ")
    )
}

/// What to do about a foreign key violation when the target enforces foreign keys
/// during the load (no `session_replication_role = replica`).
fn fk_hint(replica: bool, msg: &str) -> &'static str {
    if replica || !msg.contains("[SQLSTATE 23503]") {
        return "";
    }
    "; without the replica role (superuser, or rds_superuser on RDS) the target checks \
     foreign keys row by row as chunks load: copy with such a role, or drop the foreign key \
     for the copy and add it back afterwards (adding it checks every row)"
}

/// What to do when a row-level security policy would hide rows from the source role.
fn rls_hint(msg: &str) -> &'static str {
    if msg.contains("row-level security") {
        "; the source role must see every row: connect as the table's owner or a role \
         with BYPASSRLS"
    } else {
        ""
    }
}

async fn attempt_chunk(
    sh: &Shared,
    spec: &TableSpec,
    chunk: &crate::db::plan::Chunk,
    src: &mut Option<Conn>,
    tgt: &mut Option<Conn>,
    meter: &mut Meter<'_>,
) -> Result<ChunkDone, ChunkError> {
    if src.is_none() {
        *src = Some(conn::open(&sh.source, Role::Source).await?);
    }
    if tgt.is_none() {
        *tgt = Some(
            conn::open(
                &sh.target,
                Role::Target {
                    replica: sh.replica,
                },
            )
            .await?,
        );
    }
    match (src.as_mut(), tgt.as_mut()) {
        (Some(Conn::Pg(s)), Some(Conn::Pg(t))) => {
            pg::copy_chunk(s, t, &sh.step, spec, chunk, meter).await
        }
        (Some(Conn::MySql(s)), Some(Conn::Pg(t))) => {
            mysql::copy_chunk(s, t, &sh.step, spec, chunk, meter, sh.zero_dates).await
        }
        (Some(Conn::MySql(_)), _) | (_, Some(Conn::MySql(_))) => Err(ChunkError::Fatal(
            "ferry copies MySQL into PostgreSQL only".into(),
        )),
        (Some(s), Some(t)) => generic::copy_chunk(s, t, &sh.step, spec, chunk, meter).await,
        _ => Err(ChunkError::Retry("no connection".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_caps() {
        let w: Vec<u64> = (1..=7).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(w, vec![500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    }
}
