//! What the monitors see, as plain data: bounded time series of lag and
//! metrics, row counts, and staleness. Front-ends render it, the engine
//! copies it into its snapshot, gates and throttles read it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One point of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub at: DateTime<Utc>,
    /// JSON has no NaN: serde_json writes it as `null`, read back as NaN.
    #[serde(deserialize_with = "f64_or_nan")]
    pub value: f64,
}

fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// A series whose source stopped answering: the error and when the last good value came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stale {
    pub error: String,
    pub last_good: Option<DateTime<Utc>>,
}

/// A replication lag monitor: seconds behind over time.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LagSeries {
    pub name: String,
    pub title: Option<String>,
    pub warn_secs: Option<f64>,
    pub max_secs: Option<f64>,
    /// Lag in seconds, oldest first (bounded).
    pub samples: Vec<Sample>,
    /// Bytes behind, when the source tells.
    pub bytes_behind: Option<u64>,
    pub stale: Option<Stale>,
    /// Something to say instead of a value ("SQLite has no replication").
    pub note: Option<String>,
}

/// A CloudWatch or SQL-sampled metric over time.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricSeries {
    pub name: String,
    pub title: Option<String>,
    pub unit: Option<String>,
    pub warn: Option<f64>,
    pub max: Option<f64>,
    pub samples: Vec<Sample>,
    pub stale: Option<Stale>,
}

/// Source and target row counts of one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowCount {
    pub table: String,
    pub source: Option<i64>,
    pub target: Option<i64>,
    /// `count(*)` rather than a catalog estimate.
    pub exact: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RowCounts {
    pub source: String,
    pub target: String,
    pub tables: Vec<RowCount>,
    pub updated: Option<DateTime<Utc>>,
    pub stale: Option<Stale>,
}

/// An AWS DMS task as its `[[monitor.dms]]` last saw it: the task, its tables,
/// what is wrong with them, and the CDC latency.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DmsTaskView {
    /// The monitor's name.
    pub name: String,
    /// The task as the runbook names it (ARN or identifier).
    pub task: String,
    pub state: Option<crate::results::dms::TaskState>,
    pub tables: Vec<crate::results::dms::TableStat>,
    /// Every errored, suspended or validation-failing table and every failed
    /// stop, one line each naming the table (or the task) and the message.
    pub problems: Vec<String>,
    /// CDC latency in seconds (the larger of CloudWatch's CDCLatencySource and
    /// CDCLatencyTarget), at the datapoint's time.
    pub latency: Option<Sample>,
    /// Why there is no latency (no datapoints yet, a full-load-only task).
    pub latency_note: Option<String>,
    /// When DMS last answered.
    pub updated: Option<DateTime<Utc>>,
    pub stale: Option<Stale>,
}

impl DmsTaskView {
    /// Whether the task or a table is in trouble (the pane turns red).
    pub fn failing(&self) -> bool {
        !self.problems.is_empty()
    }
}

/// What the monitors see, for the panes, confirmations' evidence and gates.
/// Empty lists with `configured_*` false mean the runbook has no such monitor.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MonitorsSnapshot {
    pub lag: Vec<LagSeries>,
    pub metrics: Vec<MetricSeries>,
    pub rowcounts: Option<RowCounts>,
    /// The run's subscriptions, watched from their `replicate` start to their stop.
    #[serde(default)]
    pub replication: Vec<super::subscription::ReplicationWatch>,
    /// One per `[[monitor.dms]]`.
    #[serde(default)]
    pub dms: Vec<DmsTaskView>,
}
