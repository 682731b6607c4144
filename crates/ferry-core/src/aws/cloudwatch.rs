//! CloudWatch series for the monitors: every series of a runbook fetched with
//! as few GetMetricData calls as the API allows (500 queries per call).

use super::{classify, AwsError};
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The most queries one GetMetricData call takes.
pub const MAX_QUERIES: usize = 500;

/// One series to fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Caller's name for the series (returned with its points).
    pub name: String,
    pub namespace: String,
    pub metric: String,
    pub dimensions: Vec<(String, String)>,
    pub stat: String,
    pub period: Duration,
}

/// A series' points, oldest first.
pub type Points = Vec<(DateTime<Utc>, f64)>;

fn query_id(i: usize) -> String {
    format!("q{i}")
}

/// Fetch every series between `start` and `end`; points oldest first.
pub async fn fetch(
    client: &aws_sdk_cloudwatch::Client,
    queries: &[Query],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<(String, Points)>, AwsError> {
    let mut out: Vec<(String, Points)> = queries
        .iter()
        .map(|q| (q.name.clone(), Vec::new()))
        .collect();
    for (batch_no, batch) in queries.chunks(MAX_QUERIES).enumerate() {
        let base = batch_no * MAX_QUERIES;
        let mut req = client
            .get_metric_data()
            .start_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                start.timestamp(),
            ))
            .end_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                end.timestamp(),
            ));
        for (i, q) in batch.iter().enumerate() {
            let mut metric = Metric::builder()
                .namespace(&q.namespace)
                .metric_name(&q.metric);
            for (k, v) in &q.dimensions {
                metric = metric.dimensions(Dimension::builder().name(k).value(v).build());
            }
            let stat = MetricStat::builder()
                .metric(metric.build())
                .period(q.period.as_secs().max(1) as i32)
                .stat(&q.stat)
                .build();
            req = req.metric_data_queries(
                MetricDataQuery::builder()
                    .id(query_id(base + i))
                    .metric_stat(stat)
                    .return_data(true)
                    .build(),
            );
        }
        let mut token: Option<String> = None;
        loop {
            let mut r = req.clone();
            if let Some(t) = &token {
                r = r.next_token(t);
            }
            let resp = r.send().await.map_err(|e| classify(&e))?;
            for res in resp.metric_data_results() {
                let Some(idx) = res
                    .id()
                    .and_then(|id| id.strip_prefix('q'))
                    .and_then(|n| n.parse::<usize>().ok())
                else {
                    continue;
                };
                if let Some((_, points)) = out.get_mut(idx) {
                    for (t, v) in res.timestamps().iter().zip(res.values()) {
                        if let Some(ts) =
                            DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())
                        {
                            points.push((ts, *v));
                        }
                    }
                }
            }
            token = resp.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    for (_, points) in &mut out {
        points.sort_by_key(|p| p.0);
        points.dedup_by_key(|p| p.0);
    }
    Ok(out)
}
