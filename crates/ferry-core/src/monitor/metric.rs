//! Metric monitors: SQL-sampled series (with `rate = true`, a counter becomes
//! a per-second rate) and CloudWatch series, all of a runbook fetched together
//! by one poller with as few GetMetricData calls as the API allows.

use super::{backoff, pause, poll_timeout, push, DbGetter, Hub, Kind, SampleRecord, JOURNAL_EVERY};
use crate::aws::{cloudwatch, Clients};
use crate::db::Db;
use crate::runbook::{MetricMonitor, MetricSource, SqlMetric};
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub fn spawn_all(
    hub: &Arc<Hub>,
    metrics: &[MetricMonitor],
    db: DbGetter,
    aws: Option<Clients>,
    cancel: &CancellationToken,
) {
    let mut cw = Vec::new();
    for m in metrics {
        match &m.source {
            MetricSource::Sql(q) => {
                if let Ok(mut f) = hub.freshness.lock() {
                    f.insert(m.name.clone(), super::freshness(q.every));
                }
                tokio::spawn(run_sql(
                    hub.clone(),
                    m.clone(),
                    q.clone(),
                    db.clone(),
                    cancel.clone(),
                ));
            }
            MetricSource::Cloudwatch(c) => {
                if let Ok(mut f) = hub.freshness.lock() {
                    // CloudWatch publishes per period, often minutes late
                    f.insert(m.name.clone(), (c.period * 3).max(Duration::from_secs(600)));
                }
                cw.push(m.clone());
            }
        }
    }
    if !cw.is_empty() {
        tokio::spawn(run_cloudwatch(hub.clone(), cw, aws, cancel.clone()));
    }
}

/// Add the points newer than the series' last one, then journal the newest
/// (when a journal sample is due): the journal shows the value a gate saw.
fn record(
    hub: &Hub,
    m: &MetricMonitor,
    points: &[(DateTime<Utc>, f64)],
    last_journal: &mut Option<tokio::time::Instant>,
) {
    let Some(&(newest_at, newest)) = points.last() else {
        return;
    };
    // CloudWatch may answer with datapoints that are all old: history for the
    // chart, but no current value (the pane says stale, as the gates see it)
    let limit = hub.limit(&m.name);
    let age = (Utc::now() - newest_at).to_std();
    let current = !matches!(age, Ok(a) if a > limit);
    match age {
        Ok(age) if age > limit => hub.mark_stale(
            Kind::Metric,
            &m.name,
            &format!(
                "the newest datapoint is {} old (more than {})",
                crate::units::age(age),
                crate::units::age(limit)
            ),
        ),
        _ => hub.mark_fresh(Kind::Metric, &m.name, &format!("{} {}", m.name, newest)),
    }
    hub.update(|s| {
        if let Some(x) = s.metrics.iter_mut().find(|x| x.name == m.name) {
            for &(at, value) in points {
                if x.samples.last().is_none_or(|l| l.at < at) {
                    push(&mut x.samples, at, value);
                } else if let Some(same) = x.samples.iter_mut().rev().find(|l| l.at == at) {
                    // CloudWatch revises a period as its data arrives (a Sum grows):
                    // the newest answer for a period is the true one
                    same.value = value;
                }
            }
        }
    });
    if current && last_journal.is_none_or(|t| t.elapsed() >= JOURNAL_EVERY) {
        *last_journal = Some(tokio::time::Instant::now());
        hub.journal(SampleRecord {
            monitor: m.name.clone(),
            series: "metric".into(),
            value: newest,
            unit: m.unit.clone(),
            warn: m.warn,
            max: m.max,
        });
    }
}

/// A sampled value as a number: PostgreSQL sends it as text (the simple query
/// protocol), so `numeric` (what `sum(bigint)` returns), integers, reals and
/// booleans all work.
fn parse_number(text: &str) -> Result<f64, String> {
    let t = text.trim();
    match t {
        "t" | "true" => return Ok(1.0),
        "f" | "false" => return Ok(0.0),
        _ => {}
    }
    t.parse::<f64>()
        .ok()
        // NaN compares false both ways; an infinity cannot be journaled (JSON has none)
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            let shown: String = t.chars().take(40).collect();
            format!("the first column is `{shown}`, not a number (cast it, e.g. `::float8`)")
        })
}

async fn sample_sql(db: &DbGetter, q: &SqlMetric) -> Result<f64, String> {
    let value: Option<f64> = match db(q.connection.clone()).await? {
        Db::Pg(pool) => {
            // the simple query protocol: every value arrives as text, whatever its type
            let row = {
                use futures::StreamExt;
                let mut rows = sqlx::raw_sql(&q.query).fetch(&pool);
                rows.next()
                    .await
                    .transpose()
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| "the query returned no rows".to_string())?
            };
            if row.columns().is_empty() {
                return Err("the query returned no columns".into());
            }
            row.try_get_unchecked::<Option<String>, _>(0)
                .map_err(|e| format!("cannot read the first column: {e}"))?
                .map(|t: String| parse_number(&t))
                .transpose()?
        }
        Db::MySql(pool) => {
            // the text protocol: every value arrives as text, whatever its type
            let row = {
                use futures::StreamExt;
                let mut rows = sqlx::raw_sql(&q.query).fetch(&pool);
                rows.next()
                    .await
                    .transpose()
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| "the query returned no rows".to_string())?
            };
            if row.columns().is_empty() {
                return Err("the query returned no columns".into());
            }
            row.try_get_unchecked::<Option<String>, _>(0)
                .map_err(|e| format!("cannot read the first column: {e}"))?
                .map(|t: String| parse_number(&t))
                .transpose()?
        }
        Db::Sqlite(pool) => {
            let row = sqlx::query(&q.query)
                .fetch_optional(&pool)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "the query returned no rows".to_string())?;
            match row.try_get::<Option<f64>, _>(0).or_else(|_| {
                row.try_get::<Option<i64>, _>(0)
                    .map(|v| v.map(|x| x as f64))
            }) {
                Ok(v) => v,
                Err(_) => row
                    .try_get::<Option<String>, _>(0)
                    .map_err(|e| format!("the first column is not a number: {e}"))?
                    .map(|t: String| parse_number(&t))
                    .transpose()?,
            }
        }
    };
    match value {
        None => Err("the query returned NULL".to_string()),
        // SQLite reads 1e999 as an infinity
        Some(v) if !v.is_finite() => Err(format!("the first column is {v}, not a finite number")),
        Some(v) => Ok(v),
    }
}

async fn run_sql(
    hub: Arc<Hub>,
    m: MetricMonitor,
    q: SqlMetric,
    db: DbGetter,
    cancel: CancellationToken,
) {
    let mut failures = 0u32;
    let mut prev: Option<(tokio::time::Instant, f64)> = None;
    let mut last_journal = None;
    let limit = poll_timeout(q.every);
    loop {
        // a query that hangs is as stale as one that fails
        let sampled =
            super::probe::bounded(limit, &db, &[q.connection.as_str()], sample_sql(&db, &q)).await;
        match sampled {
            Ok(v) => {
                failures = 0;
                let now = tokio::time::Instant::now();
                if q.rate {
                    if let Some((t, pv)) = prev {
                        let dt = now.duration_since(t).as_secs_f64();
                        if dt > 0.0 {
                            // a counter that went down was reset: count from zero
                            let delta = if v >= pv { v - pv } else { v };
                            record(&hub, &m, &[(Utc::now(), delta / dt)], &mut last_journal);
                        }
                    }
                    prev = Some((now, v));
                } else {
                    record(&hub, &m, &[(Utc::now(), v)], &mut last_journal);
                }
            }
            Err(e) => {
                failures += 1;
                prev = None;
                hub.mark_stale(Kind::Metric, &m.name, &e);
                tracing::warn!(monitor = %m.name, error = %e, "sql metric failed");
            }
        }
        let wait = if failures == 0 {
            q.every
        } else {
            backoff(q.every, failures)
        };
        if !pause(wait, &cancel).await {
            return;
        }
    }
}

/// With `missing = "zero"`: each complete period between `start` and `now`
/// without a datapoint gets a 0 (CloudWatch publishes no datapoint for a count
/// that is zero). The current, incomplete period is left to CloudWatch.
fn fill_zero(
    points: &[(DateTime<Utc>, f64)],
    start: DateTime<Utc>,
    now: DateTime<Utc>,
    period: Duration,
) -> Vec<(DateTime<Utc>, f64)> {
    let p = i64::try_from(period.as_secs().max(1)).unwrap_or(60);
    let current = now.timestamp().div_euclid(p) * p;
    let mut bucket = start.timestamp().div_euclid(p) * p;
    let mut out = points.to_vec();
    while bucket < current {
        let has_data = points.iter().any(|(at, _)| {
            let t = at.timestamp();
            t >= bucket && t < bucket + p
        });
        if !has_data {
            if let Some(at) = DateTime::<Utc>::from_timestamp(bucket, 0) {
                out.push((at, 0.0));
            }
        }
        bucket += p;
    }
    out.sort_by_key(|x| x.0);
    out
}

async fn run_cloudwatch(
    hub: Arc<Hub>,
    ms: Vec<MetricMonitor>,
    aws: Option<Clients>,
    cancel: CancellationToken,
) {
    let queries: Vec<cloudwatch::Query> = ms
        .iter()
        .filter_map(|m| match &m.source {
            MetricSource::Cloudwatch(c) => Some(cloudwatch::Query {
                name: m.name.clone(),
                namespace: c.namespace.clone(),
                metric: c.metric.clone(),
                dimensions: c
                    .dimensions
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                stat: c.stat.clone(),
                period: c.period,
            }),
            _ => None,
        })
        .collect();
    let every = ms
        .iter()
        .filter_map(|m| match &m.source {
            MetricSource::Cloudwatch(c) => Some(c.period),
            _ => None,
        })
        .min()
        .unwrap_or(Duration::from_secs(60))
        .clamp(Duration::from_secs(10), Duration::from_secs(300));
    let Some(aws) = aws else {
        for m in &ms {
            hub.mark_stale(Kind::Metric, &m.name, "no AWS configuration: add [aws] region (and credentials) to the runbook's environment");
        }
        return;
    };
    let mut failures = 0u32;
    let mut journals: Vec<Option<tokio::time::Instant>> = vec![None; ms.len()];
    loop {
        // the end is a minute ahead: datapoints of this very second must not fall outside
        let now = Utc::now();
        let end = now + chrono::Duration::minutes(1);
        let start = end - chrono::Duration::hours(1);
        match cloudwatch::fetch(&aws.cloudwatch, &queries, start, end).await {
            Ok(series) => {
                failures = 0;
                for (i, (_, points)) in series.iter().enumerate() {
                    let m = &ms[i];
                    let filled;
                    let points = match &m.source {
                        MetricSource::Cloudwatch(c) if c.missing_zero => {
                            filled = fill_zero(points, start, now, c.period);
                            &filled
                        }
                        _ => points,
                    };
                    if points.is_empty() {
                        hub.mark_stale(
                            Kind::Metric,
                            &m.name,
                            "CloudWatch returned no datapoints in the last hour",
                        );
                        continue;
                    }
                    record(&hub, m, points, &mut journals[i]);
                }
            }
            Err(e) => {
                failures += 1;
                for m in &ms {
                    hub.mark_stale(Kind::Metric, &m.name, &e.to_string());
                }
                tracing::warn!(error = %e, "cloudwatch poll failed");
            }
        }
        let wait = if failures == 0 {
            every
        } else {
            backoff(every, failures)
        };
        if !pause(wait, &cancel).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sampled_text_becomes_a_number_or_says_what_it_was() {
        assert_eq!(
            super::parse_number("12345678901234567890"),
            Ok(12345678901234567890.0)
        );
        assert_eq!(super::parse_number(" 1.5 "), Ok(1.5));
        assert_eq!(super::parse_number("t"), Ok(1.0));
        assert!(
            super::parse_number("NaN").is_err(),
            "NaN compares false both ways"
        );
        // journaled as `null`, an infinity made the journal unreadable
        for inf in ["Infinity", "-Infinity", "inf", "1e999"] {
            assert!(super::parse_number(inf).is_err(), "{inf}");
        }
        let e = super::parse_number("abc").unwrap_err();
        assert!(e.contains("`abc`, not a number"), "{e}");
    }

    #[test]
    fn missing_periods_count_as_zero_up_to_the_current_one() {
        use chrono::{TimeZone, Utc};
        let t = |m: u32, s: u32| Utc.with_ymd_and_hms(2026, 1, 1, 10, m, s).unwrap();
        let minute = std::time::Duration::from_secs(60);
        // a datapoint at 10:02 only; now is 10:05:30
        let got = super::fill_zero(&[(t(2, 0), 7.0)], t(0, 30), t(5, 30), minute);
        let want = vec![
            (t(0, 0), 0.0),
            (t(1, 0), 0.0),
            (t(2, 0), 7.0),
            (t(3, 0), 0.0),
            (t(4, 0), 0.0),
        ];
        assert_eq!(
            got, want,
            "10:05 is incomplete: CloudWatch may still publish it"
        );
    }
}
