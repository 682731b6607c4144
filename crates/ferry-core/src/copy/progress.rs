//! Live figures of a copy: per-table counters the workers update, and a reporter that
//! turns them into a [`CopyProgress`] at most four times a second (rows done against
//! the estimated total, bytes, rows/s over the last seconds, ETA, chunks, busy workers).

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often progress is reported.
pub const REPORT_EVERY: Duration = Duration::from_millis(250);
/// The window the rate is measured over.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// A snapshot of the whole copy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyProgress {
    pub rows_done: u64,
    /// Estimated until each table is done (then exact).
    pub rows_total: Option<u64>,
    pub bytes: u64,
    pub rows_per_sec: Option<f64>,
    pub eta_secs: Option<u64>,
    pub chunks_done: u64,
    pub chunks_total: u64,
    pub workers_busy: usize,
    pub workers: usize,
    pub tables: Vec<TableProgress>,
    /// "paused: lag 42s > 30s" while the throttle holds.
    pub paused: Option<String>,
    /// Standing remarks, e.g. that triggers and foreign keys are enforced.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableProgress {
    pub name: String,
    pub rows_done: u64,
    pub rows_total: Option<u64>,
    /// "pending", "running", "done" or "failed".
    pub state: &'static str,
}

pub type ProgressFn = Arc<dyn Fn(CopyProgress) + Send + Sync>;

/// Counters of one table.
pub(crate) struct TableStats {
    pub name: String,
    /// Rows committed (including chunks done by an earlier run).
    pub rows: AtomicU64,
    /// Rows streamed in chunks not committed yet.
    pub inflight: AtomicU64,
    pub bytes: AtomicU64,
    pub chunks_done: AtomicU64,
    pub chunks_total: u64,
    pub chunks_resumed: u64,
    pub est_rows: u64,
    pub running: AtomicUsize,
    pub failed: AtomicBool,
    /// First chunk started, last chunk finished (this run).
    pub times: Mutex<(Option<Instant>, Option<Instant>)>,
}

impl TableStats {
    pub fn new(name: String, chunks_total: u64, est_rows: u64) -> Self {
        TableStats {
            name,
            rows: AtomicU64::new(0),
            inflight: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            chunks_done: AtomicU64::new(0),
            chunks_total,
            chunks_resumed: 0,
            est_rows,
            running: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
            times: Mutex::new((None, None)),
        }
    }

    pub fn is_done(&self) -> bool {
        self.chunks_done.load(Relaxed) >= self.chunks_total
    }

    pub fn started(&self) {
        self.running.fetch_add(1, Relaxed);
        if let Ok(mut t) = self.times.lock() {
            t.0.get_or_insert_with(Instant::now);
        }
    }

    pub fn finished(&self, rows: u64, bytes: u64) {
        self.rows.fetch_add(rows, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        self.chunks_done.fetch_add(1, Relaxed);
        self.running.fetch_sub(1, Relaxed);
        if let Ok(mut t) = self.times.lock() {
            t.1 = Some(Instant::now());
        }
    }

    /// Time between this run's first chunk start and last chunk end.
    pub fn duration(&self) -> Duration {
        match self.times.lock().map(|t| *t) {
            Ok((Some(a), Some(b))) if b > a => b - a,
            _ => Duration::ZERO,
        }
    }
}

/// Streamed-but-uncommitted rows of one chunk; taken back out of the table's
/// in-flight count when dropped (committed or not).
pub(crate) struct Meter<'a> {
    stats: &'a TableStats,
    rows: u64,
    pub bytes: u64,
}

impl<'a> Meter<'a> {
    pub fn new(stats: &'a TableStats) -> Self {
        Meter {
            stats,
            rows: 0,
            bytes: 0,
        }
    }

    pub fn add(&mut self, rows: u64, bytes: u64) {
        self.rows += rows;
        self.bytes += bytes;
        self.stats.inflight.fetch_add(rows, Relaxed);
    }
}

impl Drop for Meter<'_> {
    fn drop(&mut self) {
        self.stats.inflight.fetch_sub(self.rows, Relaxed);
    }
}

/// Everything the reporter reads.
pub(crate) struct Stats {
    pub tables: Vec<TableStats>,
    pub busy: AtomicUsize,
    pub workers: usize,
    pub paused: Mutex<Option<String>>,
    pub notes: Vec<String>,
}

impl Stats {
    /// The tables with chunks not done, described, if any.
    pub fn incomplete(&self) -> Option<String> {
        let missing: Vec<String> = self
            .tables
            .iter()
            .filter(|t| !t.is_done())
            .map(|t| {
                format!(
                    "{} ({} of {} chunks done)",
                    t.name,
                    t.chunks_done.load(Relaxed),
                    t.chunks_total
                )
            })
            .collect();
        (!missing.is_empty()).then(|| missing.join(", "))
    }

    pub fn snapshot(&self) -> CopyProgress {
        let mut tables = Vec::with_capacity(self.tables.len());
        let (mut done, mut total, mut bytes, mut chunks, mut chunks_total) = (0, 0, 0, 0, 0);
        for t in &self.tables {
            let rows = t.rows.load(Relaxed) + t.inflight.load(Relaxed);
            let finished = t.is_done();
            let est = if finished { rows } else { t.est_rows.max(rows) };
            done += rows;
            total += est;
            bytes += t.bytes.load(Relaxed);
            chunks += t.chunks_done.load(Relaxed);
            chunks_total += t.chunks_total;
            let state = if t.failed.load(Relaxed) {
                "failed"
            } else if finished {
                "done"
            } else if t.running.load(Relaxed) > 0 || t.chunks_done.load(Relaxed) > 0 {
                "running"
            } else {
                "pending"
            };
            tables.push(TableProgress {
                name: t.name.clone(),
                rows_done: rows,
                rows_total: Some(est),
                state,
            });
        }
        CopyProgress {
            rows_done: done,
            rows_total: Some(total),
            bytes,
            rows_per_sec: None,
            eta_secs: None,
            chunks_done: chunks,
            chunks_total,
            workers_busy: self.busy.load(Relaxed),
            workers: self.workers,
            tables,
            paused: self.paused.lock().ok().and_then(|p| p.clone()),
            notes: self.notes.clone(),
        }
    }
}

/// Rows per second over the last [`RATE_WINDOW`].
#[derive(Default)]
pub(crate) struct Rate {
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    pub fn update(&mut self, now: Instant, rows: u64) -> Option<f64> {
        self.samples.push_back((now, rows));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
            && self.samples.len() > 2
        {
            self.samples.pop_front();
        }
        let (t0, r0) = *self.samples.front()?;
        let dt = now.duration_since(t0).as_secs_f64();
        (dt >= 0.2).then(|| rows.saturating_sub(r0) as f64 / dt)
    }
}

/// Fill in rate and ETA.
pub(crate) fn with_rate(mut p: CopyProgress, rate: Option<f64>) -> CopyProgress {
    p.rows_per_sec = rate;
    p.eta_secs = match (rate, p.rows_total) {
        (Some(r), Some(total)) if r > 0.0 => {
            Some((total.saturating_sub(p.rows_done) as f64 / r) as u64)
        }
        _ => None,
    };
    p
}

/// Report `stats` every [`REPORT_EVERY`] until `stop` fires, then once more.
pub(crate) async fn reporter(stats: Arc<Stats>, report: ProgressFn, stop: CancellationToken) {
    let mut rate = Rate::default();
    let mut tick = tokio::time::interval(REPORT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let snap = stats.snapshot();
        let r = rate.update(Instant::now(), snap.rows_done);
        report(with_rate(snap, r));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_eta() {
        let mut r = Rate::default();
        let t0 = Instant::now();
        assert_eq!(r.update(t0, 0), None);
        let rate = r.update(t0 + Duration::from_secs(2), 2000);
        assert_eq!(rate, Some(1000.0));
        let stats = Stats {
            tables: vec![TableStats::new("public.t".into(), 2, 10_000)],
            busy: AtomicUsize::new(1),
            workers: 2,
            paused: Mutex::new(None),
            notes: vec![],
        };
        stats.tables[0].started();
        stats.tables[0].finished(4000, 100);
        let p = with_rate(stats.snapshot(), rate);
        assert_eq!(p.rows_done, 4000);
        assert_eq!(p.rows_total, Some(10_000));
        assert_eq!(p.eta_secs, Some(6));
        assert_eq!(p.tables[0].state, "running");
        {
            let mut m = Meter::new(&stats.tables[0]);
            m.add(10, 5);
            assert_eq!(stats.snapshot().rows_done, 4010);
        }
        assert_eq!(stats.snapshot().rows_done, 4000);
    }
}
