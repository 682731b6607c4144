//! DMS monitors (`[[monitor.dms]]`): each polls its replication task
//! (DescribeReplicationTasks), the task's table statistics
//! (DescribeTableStatistics) and its CDC latency (CloudWatch `AWS/DMS`
//! `CDCLatencySource` and `CDCLatencyTarget`, through the same batching as the
//! metric monitors) every `every`, into a [`DmsTaskView`].
//!
//! Every look is judged by [`crate::aws::dms::problems`], the same judgement the
//! `dms` steps make: a problem not seen at the previous look is sent as a
//! [`Record::Alarm`], and the driver fails the running steps with it. Status
//! changes, tables going wrong and the count of completed tables are journaled
//! as notes; the full-load percent and the latency as samples. A DMS that stops
//! answering marks the view stale and is retried with a capped backoff.

use super::{backoff, pause, poll_timeout, DmsTaskView, Hub, Reading, Record, SampleRecord, Stale};
use super::{Sample, JOURNAL_EVERY};
use crate::aws::{cloudwatch, dms, AwsError, Clients};
use crate::results::dms::{TableStat, TaskState};
use crate::runbook::DmsMonitor;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The CloudWatch metrics of a task's CDC latency, in seconds.
pub const LATENCY_METRICS: [&str; 2] = ["CDCLatencySource", "CDCLatencyTarget"];

/// A latency datapoint older than this is not current (CloudWatch publishes per
/// minute, often minutes late: the metric monitors' rule).
pub const LATENCY_FRESH: Duration = Duration::from_secs(600);

pub fn spawn_all(
    hub: &Arc<Hub>,
    monitors: &[DmsMonitor],
    aws: Option<Clients>,
    cancel: &CancellationToken,
) {
    for m in monitors {
        if let Ok(mut f) = hub.freshness.lock() {
            f.insert(m.name.clone(), super::freshness(m.every));
        }
        tokio::spawn(run(hub.clone(), m.clone(), aws.clone(), cancel.clone()));
    }
}

/// One look at the task.
struct Look {
    state: TaskState,
    tables: Vec<TableStat>,
    latency: Result<Sample, String>,
}

/// What the poller remembers between looks, to journal changes only.
#[derive(Default)]
struct Memory {
    status: Option<String>,
    problems: BTreeSet<String>,
    /// table → state, for notes when a table goes wrong
    states: BTreeMap<String, String>,
    completed: Option<usize>,
    /// replication instance ARN → identifier (CloudWatch's dimension)
    instance: Option<(String, String)>,
    last_journal: Option<tokio::time::Instant>,
    stale: bool,
}

async fn run(hub: Arc<Hub>, m: DmsMonitor, aws: Option<Clients>, cancel: CancellationToken) {
    let Some(aws) = aws else {
        stale(
            &hub,
            &m.name,
            "no AWS configuration: add [aws] region (and credentials) to the runbook's environment",
            &mut Memory::default(),
        );
        return;
    };
    let mut mem = Memory::default();
    let mut failures = 0u32;
    let limit = poll_timeout(m.every);
    loop {
        match tokio::time::timeout(limit, look(&aws, &m.task, &mut mem)).await {
            Ok(Ok(l)) => {
                failures = 0;
                seen(&hub, &m, l, &mut mem);
            }
            Ok(Err(e)) => {
                failures += 1;
                tracing::warn!(monitor = %m.name, error = %e, "dms poll failed");
                stale(&hub, &m.name, &e.to_string(), &mut mem);
            }
            Err(_) => {
                failures += 1;
                let why = format!(
                    "no answer from DMS within {}",
                    humantime::format_duration(limit)
                );
                stale(&hub, &m.name, &why, &mut mem);
            }
        }
        let wait = if failures == 0 {
            m.every
        } else {
            backoff(m.every, failures)
        };
        if !pause(wait, &cancel).await {
            return;
        }
    }
}

async fn look(aws: &Clients, task: &str, mem: &mut Memory) -> Result<Look, AwsError> {
    let state = dms::describe(&aws.dms, task).await?;
    let tables = dms::table_statistics(&aws.dms, &state.arn).await?;
    let latency = latency(aws, &state, mem).await;
    Ok(Look {
        state,
        tables,
        latency,
    })
}

/// The task's CDC latency from CloudWatch: the larger of the newest source and
/// target datapoints of the last 15 minutes; why there is none otherwise.
async fn latency(aws: &Clients, t: &TaskState, mem: &mut Memory) -> Result<Sample, String> {
    if t.migration_type.as_deref() == Some("full-load") {
        return Err("a full-load task has no CDC".into());
    }
    let Some(arn) = t.instance_arn.as_deref() else {
        return Err("DMS did not name the task's replication instance".into());
    };
    let instance = match &mem.instance {
        Some((a, id)) if a == arn => id.clone(),
        _ => {
            let id = dms::instance_identifier(&aws.dms, arn)
                .await
                .map_err(|e| e.to_string())?;
            mem.instance = Some((arn.to_string(), id.clone()));
            id
        }
    };
    let dims = vec![
        ("ReplicationInstanceIdentifier".to_string(), instance),
        (
            "ReplicationTaskIdentifier".to_string(),
            t.resource_id().to_string(),
        ),
    ];
    let queries: Vec<cloudwatch::Query> = LATENCY_METRICS
        .iter()
        .map(|metric| cloudwatch::Query {
            name: metric.to_string(),
            namespace: "AWS/DMS".into(),
            metric: metric.to_string(),
            dimensions: dims.clone(),
            stat: "Maximum".into(),
            period: Duration::from_secs(60),
        })
        .collect();
    let end = Utc::now() + chrono::Duration::minutes(1);
    let got = cloudwatch::fetch(
        &aws.cloudwatch,
        &queries,
        end - chrono::Duration::minutes(16),
        end,
    )
    .await
    .map_err(|e| format!("CloudWatch: {e}"))?;
    newest_latency(&got, Utc::now())
}

/// The larger of the series' newest datapoints, at the older of their times;
/// none when there are none or the newest is too old to be true.
fn newest_latency(
    series: &[(String, cloudwatch::Points)],
    now: DateTime<Utc>,
) -> Result<Sample, String> {
    let newest: Vec<(DateTime<Utc>, f64)> = series
        .iter()
        .filter_map(|(_, p)| p.last().copied())
        .collect();
    let Some(at) = newest.iter().map(|x| x.0).min() else {
        return Err("CloudWatch has no CDCLatencySource/CDCLatencyTarget datapoints for the task in the last 15 minutes".into());
    };
    let age = (now - at).to_std().unwrap_or_default();
    if age > LATENCY_FRESH {
        return Err(format!(
            "the newest CDC latency datapoint is {} old",
            crate::units::age(age)
        ));
    }
    let value = newest.iter().map(|x| x.1).fold(f64::MIN, f64::max);
    Ok(Sample { at, value })
}

/// Record a look: the view, the notes of what changed, an alarm for new problems,
/// and the samples when due.
fn seen(hub: &Hub, m: &DmsMonitor, l: Look, mem: &mut Memory) {
    let name = &m.name;
    let problems = dms::problems(&l.state, &l.tables);
    if std::mem::take(&mut mem.stale) {
        hub.note(format!(
            "dms monitor `{name}` answers again: task `{}` is `{}`",
            l.state.task, l.state.status
        ));
    }
    if mem.status.as_deref() != Some(l.state.status.as_str()) {
        hub.note(format!(
            "dms monitor `{name}`: task `{}` is `{}`{}",
            l.state.task,
            l.state.status,
            l.state
                .stop_reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
        mem.status = Some(l.state.status.clone());
    }
    for t in &l.tables {
        let before = mem.states.insert(t.name(), t.state.clone());
        let bad = {
            let s = t.state.to_lowercase();
            s.contains("error") || s.contains("suspend")
        };
        if bad && before.as_deref() != Some(t.state.as_str()) {
            hub.note(format!(
                "dms monitor `{name}`: table {} is `{}`",
                t.name(),
                t.state
            ));
        }
    }
    let completed = l
        .tables
        .iter()
        .filter(|t| t.state == "Table completed")
        .count();
    if !l.tables.is_empty() && mem.completed != Some(completed) {
        hub.note(format!(
            "dms monitor `{name}`: {completed} of {} table(s) completed",
            l.tables.len()
        ));
        mem.completed = Some(completed);
    }
    let now: BTreeSet<String> = problems.iter().cloned().collect();
    let new: Vec<String> = problems
        .iter()
        .filter(|p| !mem.problems.contains(*p))
        .cloned()
        .collect();
    mem.problems = now;
    if !new.is_empty() {
        let _ = hub.samples.send(Record::Alarm {
            monitor: name.clone(),
            problems: new,
        });
    }
    let due = mem
        .last_journal
        .is_none_or(|t| t.elapsed() >= JOURNAL_EVERY);
    if due {
        mem.last_journal = Some(tokio::time::Instant::now());
        if let Some(p) = l.state.full_load_percent {
            hub.journal(SampleRecord {
                monitor: name.clone(),
                series: "dms_full_load".into(),
                value: f64::from(p),
                unit: Some("%".into()),
                warn: None,
                max: None,
            });
        }
        if let Ok(s) = &l.latency {
            hub.journal(SampleRecord {
                monitor: name.clone(),
                series: "dms_latency".into(),
                value: s.value,
                unit: Some("s".into()),
                warn: None,
                max: None,
            });
        }
    }
    let (latency, latency_note) = match l.latency {
        Ok(s) => (Some(s), None),
        Err(why) => (None, Some(why)),
    };
    hub.update(|s| {
        if let Some(v) = s.dms.iter_mut().find(|v| v.name == *name) {
            *v = DmsTaskView {
                name: name.clone(),
                task: m.task.clone(),
                state: Some(l.state),
                tables: l.tables,
                problems,
                latency,
                latency_note,
                updated: Some(Utc::now()),
                stale: None,
            };
        }
    });
}

/// DMS did not answer: the view goes stale (journaled once, when it does).
fn stale(hub: &Hub, name: &str, error: &str, mem: &mut Memory) {
    let mut last_good = None;
    hub.update(|s| {
        if let Some(v) = s.dms.iter_mut().find(|v| v.name == name) {
            last_good = v.updated;
            v.stale = Some(Stale {
                error: error.to_string(),
                last_good,
            });
        }
    });
    if !mem.stale {
        mem.stale = true;
        let reading = Reading::Stale {
            why: error.to_string(),
            age: last_good.and_then(|t| (Utc::now() - t).to_std().ok()),
        };
        if let Some(text) = reading.explain(name) {
            hub.note(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_the_larger_newest_datapoint_and_an_old_one_does_not_count() {
        let now = Utc::now();
        let ago = |s: i64| now - chrono::Duration::seconds(s);
        let series = vec![
            (
                "CDCLatencySource".to_string(),
                vec![(ago(200), 50.0), (ago(70), 3.0)],
            ),
            ("CDCLatencyTarget".to_string(), vec![(ago(65), 12.0)]),
        ];
        let s = newest_latency(&series, now).expect("a latency");
        assert_eq!(s.value, 12.0);
        assert_eq!(s.at, ago(70), "as old as the older of the two");
        let old = vec![("CDCLatencyTarget".to_string(), vec![(ago(900), 1.0)])];
        let e = newest_latency(&old, now).expect_err("15 minutes old is not current");
        assert!(e.contains("15m"), "{e}");
        let none = vec![("CDCLatencyTarget".to_string(), vec![])];
        assert!(newest_latency(&none, now).is_err());
    }
}
