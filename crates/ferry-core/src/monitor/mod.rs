//! Live monitors: each lag, metric, row-count and DMS source is polled on its own
//! schedule in a background task, into bounded series (ring buffers). A source
//! that stops answering marks its series stale (with the error and the age of
//! the last good value) and is retried with a capped backoff. Samples are
//! downsampled for the journal (one per series every [`JOURNAL_EVERY`]).
//!
//! The hub is read through [`MonitorView`] by wait gates and copy throttles
//! (a stale or too-old value counts as no value: a gate never passes on a
//! number that is no longer true), and copied into the engine snapshot.

mod dms;
mod lag;
mod metric;
mod pending;
mod probe;
pub mod replication;
mod rowcount;
pub mod series;
pub mod subscription;

use crate::db::Db;
use crate::runbook::Runbook;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
pub use replication::WatchSpec;
pub use series::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
pub use subscription::{ErrorBaseline, ReplicationWatch};
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;

/// Samples kept per series.
pub const RING: usize = 720;
/// One sample per series goes to the journal this often.
pub const JOURNAL_EVERY: Duration = Duration::from_secs(10);
/// The longest wait between retries of a failing source.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Which kind of monitor a gate or throttle reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Lag,
    Metric,
}

/// What a gate or throttle sees of one monitor.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// A current value (seconds for lag).
    Value(f64),
    /// No value has come yet (the monitor is starting).
    Pending,
    /// The source stopped answering, or its last value is too old to be true:
    /// why, and how old the last good value is.
    Stale { why: String, age: Option<Duration> },
}

impl Reading {
    /// Why there is no current value, for a status line; `None` for a value.
    pub fn explain(&self, monitor: &str) -> Option<String> {
        match self {
            Reading::Value(_) => None,
            Reading::Pending => Some(format!("monitor `{monitor}` has no value yet")),
            Reading::Stale { why, age } => Some(match age {
                Some(a) => format!(
                    "monitor `{monitor}` is stale: {why} (last good value {} ago)",
                    crate::units::age(*a)
                ),
                None => format!("monitor `{monitor}` is stale: {why} (no good value yet)"),
            }),
        }
    }
}

/// Read-only view of live monitor values, for gates and throttles.
pub trait MonitorView: Send + Sync {
    /// Latest lag of lag monitor `monitor` in seconds, if fresh.
    fn lag(&self, monitor: &str) -> Option<Duration>;
    /// Latest value of metric monitor `monitor`, if fresh.
    fn metric(&self, monitor: &str) -> Option<f64>;
    /// The latest look at DMS monitor `monitor`, or why there is none (a look
    /// older than its freshness counts as stale).
    fn dms(&self, monitor: &str) -> Result<DmsTaskView, Reading> {
        let _ = monitor;
        Err(Reading::Pending)
    }
    /// The latest value, or why there is none (stale: the error and the age).
    fn reading(&self, kind: Kind, monitor: &str) -> Reading {
        let v = match kind {
            Kind::Lag => self.lag(monitor).map(|d| d.as_secs_f64()),
            Kind::Metric => self.metric(monitor),
        };
        v.map_or(Reading::Pending, Reading::Value)
    }
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

/// What the monitors hand the journal: downsampled samples, and notes when a
/// series goes stale or answers again (so a headless run and the report show it).
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Sample(SampleRecord),
    Note(String),
    /// A DMS monitor found new trouble (a table errored, suspended or failing
    /// validation, a task stopped by a failure): the run's running steps fail
    /// with these lines, each naming the table and the message.
    Alarm {
        monitor: String,
        problems: Vec<String>,
    },
}

/// The shared state of every monitor of a run.
pub struct Hub {
    state: Mutex<MonitorsSnapshot>,
    version: watch::Sender<u64>,
    exact: Notify,
    samples: mpsc::UnboundedSender<Record>,
    /// How old a value may be before it no longer counts (per monitor name).
    freshness: Mutex<std::collections::HashMap<String, Duration>>,
    /// What starts replication watches after the monitors began, and the ones running.
    watcher: Mutex<Option<Watcher>>,
}

/// The pools and the run's cancellation, kept to start replication watches later.
struct Watcher {
    db: DbGetter,
    cancel: CancellationToken,
    running: std::collections::HashMap<String, CancellationToken>,
}

impl Hub {
    fn new(samples: mpsc::UnboundedSender<Record>) -> Self {
        Hub {
            state: Mutex::new(MonitorsSnapshot::default()),
            version: watch::channel(0).0,
            exact: Notify::new(),
            samples,
            freshness: Mutex::new(Default::default()),
            watcher: Mutex::new(None),
        }
    }

    /// Start watching subscription `spec.name` (once: a watch already running
    /// goes on). Does nothing before [`spawn`] gave the hub its pools.
    pub fn watch_replication(self: &Arc<Self>, spec: WatchSpec) {
        let Ok(mut w) = self.watcher.lock() else {
            return;
        };
        let Some(w) = w.as_mut() else {
            return;
        };
        if w.running.contains_key(&spec.name) {
            return;
        }
        let token = w.cancel.child_token();
        w.running.insert(spec.name.clone(), token.clone());
        let db = w.db.clone();
        self.update(|s| {
            s.replication.retain(|r| r.name != spec.name);
            s.replication.push(replication::empty(&spec));
        });
        tokio::spawn(replication::run(self.clone(), spec, db, token));
    }

    /// Stop watching subscription `name` and drop it from the snapshot.
    pub fn unwatch_replication(&self, name: &str) {
        if let Ok(mut w) = self.watcher.lock() {
            if let Some(t) = w.as_mut().and_then(|w| w.running.remove(name)) {
                t.cancel();
            }
        }
        self.update(|s| s.replication.retain(|r| r.name != name));
    }

    /// The error counts of every watched subscription now.
    pub fn replication_baseline(&self) -> ErrorBaseline {
        self.state
            .lock()
            .map(|s| subscription::baseline(&s.replication))
            .unwrap_or_default()
    }

    /// Why a step that began at `baseline` must fail: a watched subscription
    /// disabled, or its errors rose since.
    pub fn replication_fault(&self, baseline: &ErrorBaseline) -> Option<String> {
        let s = self.state.lock().ok()?;
        s.replication.iter().find_map(|w| w.fault_since(baseline))
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
        // JSON has no NaN or infinity: serde writes `null`, and the journal
        // line would not read back (a resume would refuse the journal)
        if r.value.is_finite() {
            let _ = self.samples.send(Record::Sample(r));
        }
    }

    fn note(&self, text: String) {
        let _ = self.samples.send(Record::Note(text));
    }

    /// How old a value of `name` may be and still count.
    fn limit(&self, name: &str) -> Duration {
        self.freshness
            .lock()
            .ok()
            .and_then(|f| f.get(name).copied())
            .unwrap_or(Duration::from_secs(30))
    }

    /// Mark a series stale with `error`; journal a note when it just went stale.
    fn mark_stale(&self, kind: Kind, name: &str, error: &str) {
        let mut newly: Option<Option<DateTime<Utc>>> = None;
        self.update(|s| {
            let found = match kind {
                Kind::Lag => s
                    .lag
                    .iter_mut()
                    .find(|l| l.name == name)
                    .map(|l| (&mut l.stale, l.samples.last().map(|x| x.at))),
                Kind::Metric => s
                    .metrics
                    .iter_mut()
                    .find(|m| m.name == name)
                    .map(|m| (&mut m.stale, m.samples.last().map(|x| x.at))),
            };
            if let Some((stale, last_good)) = found {
                if stale.is_none() {
                    newly = Some(last_good);
                }
                *stale = Some(Stale {
                    error: error.to_string(),
                    last_good,
                });
            }
        });
        if let Some(last_good) = newly {
            let age = last_good.and_then(|t| (Utc::now() - t).to_std().ok());
            let reading = Reading::Stale {
                why: error.to_string(),
                age,
            };
            if let Some(text) = reading.explain(name) {
                self.note(text);
            }
        }
    }

    /// Clear a series' staleness; journal a note when it was stale.
    fn mark_fresh(&self, kind: Kind, name: &str, value: &str) {
        let mut was_stale = false;
        self.update(|s| {
            let stale = match kind {
                Kind::Lag => s
                    .lag
                    .iter_mut()
                    .find(|l| l.name == name)
                    .map(|l| &mut l.stale),
                Kind::Metric => s
                    .metrics
                    .iter_mut()
                    .find(|m| m.name == name)
                    .map(|m| &mut m.stale),
            };
            if let Some(stale) = stale {
                was_stale = stale.take().is_some();
            }
        });
        if was_stale {
            self.note(format!("monitor `{name}` answers again: {value}"));
        }
    }

    fn read(&self, kind: Kind, name: &str) -> Reading {
        let Ok(s) = self.state.lock() else {
            return Reading::Pending;
        };
        let (stale, last) = match kind {
            Kind::Lag => match s.lag.iter().find(|l| l.name == name) {
                Some(l) => (l.stale.clone(), l.samples.last().copied()),
                None => return Reading::Pending,
            },
            Kind::Metric => match s.metrics.iter().find(|m| m.name == name) {
                Some(m) => (m.stale.clone(), m.samples.last().copied()),
                None => return Reading::Pending,
            },
        };
        drop(s);
        let age = last.and_then(|l| (Utc::now() - l.at).to_std().ok());
        if let Some(st) = stale {
            return Reading::Stale {
                why: st.error,
                age: st
                    .last_good
                    .and_then(|t| (Utc::now() - t).to_std().ok())
                    .or(age),
            };
        }
        let Some(last) = last else {
            // a lag monitor that can never have a value (SQLite) says why
            if let Kind::Lag = kind {
                if let Some(note) = self
                    .state
                    .lock()
                    .ok()
                    .and_then(|s| s.lag.iter().find(|l| l.name == name)?.note.clone())
                {
                    return Reading::Stale {
                        why: note,
                        age: None,
                    };
                }
            }
            return Reading::Pending;
        };
        let limit = self.limit(name);
        match age {
            Some(a) if a > limit => Reading::Stale {
                why: format!("no new value for longer than {}", crate::units::age(limit)),
                age: Some(a),
            },
            _ => Reading::Value(last.value),
        }
    }
}

/// How old a value may be before it stops counting: three polling intervals,
/// plus a little room for a slow answer on short intervals.
pub fn freshness(every: Duration) -> Duration {
    (every * 3).max(every + Duration::from_secs(3))
}

/// How long one poll of a source may take before the series goes stale.
pub fn poll_timeout(every: Duration) -> Duration {
    every.clamp(Duration::from_secs(5), Duration::from_secs(30))
}

impl MonitorView for Hub {
    fn lag(&self, monitor: &str) -> Option<Duration> {
        match self.read(Kind::Lag, monitor) {
            Reading::Value(v) => {
                Some(Duration::try_from_secs_f64(v.max(0.0)).unwrap_or(Duration::MAX))
            }
            _ => None,
        }
    }

    fn metric(&self, monitor: &str) -> Option<f64> {
        match self.read(Kind::Metric, monitor) {
            Reading::Value(v) => Some(v),
            _ => None,
        }
    }

    fn reading(&self, kind: Kind, monitor: &str) -> Reading {
        self.read(kind, monitor)
    }

    fn dms(&self, monitor: &str) -> Result<DmsTaskView, Reading> {
        let view = self
            .state
            .lock()
            .ok()
            .and_then(|s| s.dms.iter().find(|d| d.name == monitor).cloned())
            .ok_or(Reading::Pending)?;
        let age = view.updated.and_then(|t| (Utc::now() - t).to_std().ok());
        if let Some(st) = &view.stale {
            return Err(Reading::Stale {
                why: st.error.clone(),
                age,
            });
        }
        match age {
            None if view.updated.is_none() => Err(Reading::Pending),
            Some(a) if a > self.limit(monitor) => Err(Reading::Stale {
                why: format!(
                    "no answer from DMS for longer than {}",
                    crate::units::age(self.limit(monitor))
                ),
                age: Some(a),
            }),
            _ => Ok(view),
        }
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
    crate::backoff::capped(every, failures.saturating_add(1), MAX_BACKOFF.max(every))
}

/// Start every monitor of the runbook. Tasks end when `cancel` fires.
/// Returns the hub and the downsampled samples to journal.
pub fn spawn(
    rb: &Runbook,
    db: DbGetter,
    aws: Option<crate::aws::Clients>,
    cancel: CancellationToken,
) -> (Arc<Hub>, mpsc::UnboundedReceiver<Record>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let hub = Arc::new(Hub::new(tx));
    if let Ok(mut w) = hub.watcher.lock() {
        *w = Some(Watcher {
            db: db.clone(),
            cancel: cancel.clone(),
            running: Default::default(),
        });
    }
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
        s.dms = m
            .dms
            .iter()
            .map(|d| DmsTaskView {
                name: d.name.clone(),
                task: d.task.clone(),
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
            f.insert(l.name.clone(), lag::freshness(l));
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
    dms::spawn_all(&hub, &m.dms, aws, &cancel);
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

    #[test]
    fn a_stale_series_says_why_and_how_old_and_journals_it_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let hub = Hub::new(tx);
        hub.update(|s| {
            s.lag.push(LagSeries {
                name: "r".into(),
                samples: vec![Sample {
                    at: Utc::now() - chrono::Duration::seconds(12),
                    value: 0.0,
                }],
                ..Default::default()
            })
        });
        hub.mark_stale(Kind::Lag, "r", "connection refused");
        hub.mark_stale(Kind::Lag, "r", "connection refused");
        let r = hub.reading(Kind::Lag, "r");
        let text = r.explain("r").expect("an explanation");
        assert!(
            text.contains("stale: connection refused") && text.contains("12s ago"),
            "{text}"
        );
        assert_eq!(hub.lag("r"), None, "a gate never passes on a stale value");
        let Ok(Record::Note(note)) = rx.try_recv() else {
            panic!("going stale is journaled")
        };
        assert!(note.contains("connection refused"), "{note}");
        assert!(rx.try_recv().is_err(), "said once, not at every failure");
        hub.mark_fresh(Kind::Lag, "r", "lag 0.0s");
        let Ok(Record::Note(back)) = rx.try_recv() else {
            panic!("recovery is journaled")
        };
        assert!(back.contains("answers again"), "{back}");
    }

    #[test]
    fn a_value_older_than_three_polls_is_stale() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let hub = Hub::new(tx);
        if let Ok(mut f) = hub.freshness.lock() {
            f.insert("m".into(), freshness(Duration::from_secs(1)));
        }
        hub.update(|s| {
            s.metrics.push(MetricSeries {
                name: "m".into(),
                samples: vec![Sample {
                    at: Utc::now() - chrono::Duration::seconds(8),
                    value: 1.0,
                }],
                ..Default::default()
            })
        });
        // polled every second: an 8-second-old value is no longer true (it was 15s before)
        assert_eq!(hub.metric("m"), None);
        assert!(
            matches!(hub.reading(Kind::Metric, "m"), Reading::Stale { age: Some(a), .. } if a >= Duration::from_secs(8))
        );
        assert_eq!(freshness(Duration::from_secs(5)), Duration::from_secs(15));
        assert_eq!(freshness(Duration::from_secs(1)), Duration::from_secs(4));
        assert_eq!(poll_timeout(Duration::from_secs(1)), Duration::from_secs(5));
    }

    #[test]
    fn an_infinite_lag_does_not_panic_and_a_lag_that_cannot_be_says_why() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let hub = Hub::new(tx);
        hub.update(|s| {
            s.lag.push(LagSeries {
                name: "inf".into(),
                samples: vec![Sample {
                    at: Utc::now(),
                    value: f64::INFINITY,
                }],
                ..Default::default()
            });
            s.lag.push(LagSeries {
                name: "lite".into(),
                note: Some("SQLite has no replication: there is no lag to measure".into()),
                ..Default::default()
            });
        });
        assert_eq!(hub.lag("inf"), Some(Duration::MAX));
        let why = hub
            .reading(Kind::Lag, "lite")
            .explain("lite")
            .unwrap_or_default();
        assert!(why.contains("SQLite has no replication"), "{why}");
    }
}
