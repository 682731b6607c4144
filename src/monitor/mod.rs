//! Live monitors: each lag, metric and row-count source is polled on its own
//! schedule in a background task, into bounded series (ring buffers). A source
//! that stops answering marks its series stale (with the error and the age of
//! the last good value) and is retried with a capped backoff. Samples are
//! downsampled for the journal (one per series every [`JOURNAL_EVERY`]).
//!
//! The hub is read through [`MonitorView`] by wait gates and copy throttles
//! (a stale or too-old value counts as no value: a gate never passes on a
//! number that is no longer true), and copied into the engine snapshot.

mod lag;
mod metric;
mod rowcount;
pub mod series;

use crate::db::Db;
use crate::runbook::Runbook;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
pub use series::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;

/// Samples kept per series.
pub const RING: usize = 720;
/// One sample per series goes to the journal this often.
pub const JOURNAL_EVERY: Duration = Duration::from_secs(10);
/// The longest wait between retries of a failing source.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Read-only view of live monitor values, for gates and throttles.
pub trait MonitorView: Send + Sync {
    /// Latest lag of lag monitor `monitor` in seconds, if fresh.
    fn lag(&self, monitor: &str) -> Option<Duration>;
    /// Latest value of metric monitor `monitor`, if fresh.
    fn metric(&self, monitor: &str) -> Option<f64>;
}

/// A monitor view with no values at all (a runbook without monitors).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMonitors;

impl MonitorView for NoMonitors {
    fn lag(&self, _monitor: &str) -> Option<Duration> {
        None
    }

    fn metric(&self, _monitor: &str) -> Option<f64> {
        None
    }
}

/// Opens (or reuses) the pool of a named connection.
pub type DbGetter = Arc<dyn Fn(String) -> BoxFuture<'static, Result<Db, String>> + Send + Sync>;

/// A sample to journal.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRecord {
    pub monitor: String,
    /// "lag" or "metric"
    pub series: String,
    pub value: f64,
    pub unit: Option<String>,
    pub warn: Option<f64>,
    pub max: Option<f64>,
}

/// The shared state of every monitor of a run.
pub struct Hub {
    state: Mutex<MonitorsSnapshot>,
    version: watch::Sender<u64>,
    exact: Notify,
    samples: mpsc::UnboundedSender<SampleRecord>,
    /// How old a value may be before it no longer counts (per monitor name).
    freshness: Mutex<std::collections::HashMap<String, Duration>>,
}

impl Hub {
    fn new(samples: mpsc::UnboundedSender<SampleRecord>) -> Self {
        Hub {
            state: Mutex::new(MonitorsSnapshot::default()),
            version: watch::channel(0).0,
            exact: Notify::new(),
            samples,
            freshness: Mutex::new(Default::default()),
        }
    }

    /// A copy of everything, for a frame or a confirmation's evidence.
    pub fn snapshot(&self) -> MonitorsSnapshot {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Changes whenever a value or a staleness changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Ask for exact row counts now (the TUI key, step boundaries).
    pub fn request_exact_counts(&self) {
        self.exact.notify_one();
    }

    fn update(&self, f: impl FnOnce(&mut MonitorsSnapshot)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
        self.version.send_modify(|v| *v += 1);
    }

    fn journal(&self, r: SampleRecord) {
        let _ = self.samples.send(r);
    }

    fn fresh(&self, name: &str, at: DateTime<Utc>) -> bool {
        let limit = self
            .freshness
            .lock()
            .ok()
            .and_then(|f| f.get(name).copied())
            .unwrap_or(Duration::from_secs(30));
        (Utc::now() - at)
            .to_std()
            .map(|age| age <= limit)
            .unwrap_or(true)
    }
}

impl MonitorView for Hub {
    fn lag(&self, monitor: &str) -> Option<Duration> {
        let s = self.state.lock().ok()?;
        let l = s.lag.iter().find(|l| l.name == monitor)?;
        if l.stale.is_some() {
            return None;
        }
        let last = l.samples.last()?;
        self.fresh(monitor, last.at)
            .then(|| Duration::from_secs_f64(last.value.max(0.0)))
    }

    fn metric(&self, monitor: &str) -> Option<f64> {
        let s = self.state.lock().ok()?;
        let m = s.metrics.iter().find(|m| m.name == monitor)?;
        if m.stale.is_some() {
            return None;
        }
        let last = m.samples.last()?;
        self.fresh(monitor, last.at).then_some(last.value)
    }
}

/// Push a sample into a bounded series.
fn push(samples: &mut Vec<Sample>, at: DateTime<Utc>, value: f64) {
    if samples.len() >= RING {
        samples.remove(0);
    }
    samples.push(Sample { at, value });
}

/// Capped exponential backoff after `failures` consecutive failures.
fn backoff(every: Duration, failures: u32) -> Duration {
    let factor = 1u32.checked_shl(failures.min(16)).unwrap_or(u32::MAX);
    every.saturating_mul(factor).min(MAX_BACKOFF.max(every))
}

/// Start every monitor of the runbook. Tasks end when `cancel` fires.
/// Returns the hub and the downsampled samples to journal.
pub fn spawn(
    rb: &Runbook,
    db: DbGetter,
    aws: Option<crate::aws::Clients>,
    cancel: CancellationToken,
) -> (Arc<Hub>, mpsc::UnboundedReceiver<SampleRecord>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let hub = Arc::new(Hub::new(tx));
    let m = &rb.monitors;
    hub.update(|s| {
        s.lag = m
            .lag
            .iter()
            .map(|l| LagSeries {
                name: l.name.clone(),
                title: l.title.clone(),
                warn_secs: l.warn.map(|d| d.as_secs_f64()),
                max_secs: l.max.map(|d| d.as_secs_f64()),
                ..Default::default()
            })
            .collect();
        s.metrics = m
            .metric
            .iter()
            .map(|x| MetricSeries {
                name: x.name.clone(),
                title: x.title.clone(),
                unit: x.unit.clone(),
                warn: x.warn,
                max: x.max,
                ..Default::default()
            })
            .collect();
        s.rowcounts = m.rowcounts.as_ref().map(|r| RowCounts {
            source: r.source.clone(),
            target: r.target.clone(),
            ..Default::default()
        });
    });
    for l in &m.lag {
        if let Ok(mut f) = hub.freshness.lock() {
            f.insert(l.name.clone(), (l.every * 3).max(Duration::from_secs(15)));
        }
        tokio::spawn(lag::run(
            hub.clone(),
            l.clone(),
            db.clone(),
            aws.clone(),
            cancel.clone(),
        ));
    }
    metric::spawn_all(&hub, &m.metric, db.clone(), aws.clone(), &cancel);
    if let Some(r) = &m.rowcounts {
        tokio::spawn(rowcount::run(hub.clone(), r.clone(), db, cancel));
    }
    (hub, rx)
}

/// Sleep `d`, or return false when cancelled.
async fn pause(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let s = Duration::from_secs(5);
        assert_eq!(backoff(s, 0), s);
        assert_eq!(backoff(s, 2), Duration::from_secs(20));
        assert_eq!(backoff(s, 10), MAX_BACKOFF);
        assert_eq!(
            backoff(Duration::from_secs(120), 3),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn ring_is_bounded() {
        let mut v = Vec::new();
        for i in 0..(RING + 10) {
            push(&mut v, Utc::now(), i as f64);
        }
        assert_eq!(v.len(), RING);
        assert_eq!(v[0].value, 10.0);
    }

    #[test]
    fn stale_or_old_values_do_not_count() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let hub = Hub::new(tx);
        hub.update(|s| {
            s.lag.push(LagSeries {
                name: "r".into(),
                samples: vec![Sample {
                    at: Utc::now(),
                    value: 3.0,
                }],
                ..Default::default()
            });
            s.metrics.push(MetricSeries {
                name: "old".into(),
                samples: vec![Sample {
                    at: Utc::now() - chrono::Duration::seconds(600),
                    value: 1.0,
                }],
                ..Default::default()
            });
        });
        assert_eq!(hub.lag("r"), Some(Duration::from_secs(3)));
        assert_eq!(
            hub.metric("old"),
            None,
            "a 10-minute-old value is not current"
        );
        hub.update(|s| {
            s.lag[0].stale = Some(Stale {
                error: "down".into(),
                last_good: None,
            })
        });
        assert_eq!(hub.lag("r"), None, "a stale series gates nothing");
    }
}
