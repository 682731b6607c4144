//! Replication lag, measured where it is: on a physical standby, seconds
//! behind from `pg_last_xact_replay_timestamp()` — guarded so an idle,
//! caught-up standby (receive LSN = replay LSN) reads 0 — plus bytes behind;
//! — but only while its WAL receiver streams: a standby cut off from its
//! primary has received nothing new, so "receive = replay" proves nothing and
//! the lag is the time since the last replayed transaction —
//! on a primary, the worst standby's `replay_lag` and byte distance from
//! `pg_stat_replication`, and logical slots' retained WAL; or CloudWatch's
//! RDS `ReplicaLag`. SQLite has no replication, and the pane says so.

use super::{backoff, pause, poll_timeout, push, DbGetter, Hub, Kind, SampleRecord, JOURNAL_EVERY};
use crate::aws::{cloudwatch, Clients};
use crate::db::Db;
use crate::runbook::{LagMonitor, LagSource};
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// (seconds behind, bytes behind, what was measured, when it was true)
type Reading = (f64, Option<u64>, Option<String>, DateTime<Utc>);

/// A streaming standby that replayed all it received is caught up (0), even
/// when the primary is idle. Without a streaming WAL receiver (unprivileged
/// roles see the receiver's pid but not its status) nothing proves that, and
/// the lag is the time since the last replayed transaction (NULL: unknown).
const STANDBY: &str = "with r as (
         select exists (select 1 from pg_stat_wal_receiver
                         where coalesce(status, 'streaming') = 'streaming') as streaming)
select case when r.streaming and pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0::float8
            else extract(epoch from (clock_timestamp() - pg_last_xact_replay_timestamp()))::float8 end,
       coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::float8,
       pg_is_wal_replay_paused(),
       r.streaming
  from r";

const PRIMARY: &str = "select coalesce(max(extract(epoch from replay_lag)), 0)::float8,
       coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::float8,
       count(*)::int8,
       (select coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)), 0)::float8
          from pg_replication_slots where slot_type = 'logical'),
       (select count(*)::int8 from pg_replication_slots where slot_type = 'logical')
  from pg_stat_replication";

async fn read_pg(pool: &sqlx::PgPool) -> Result<Reading, String> {
    let standby: bool = sqlx::query_scalar("select pg_is_in_recovery()")
        .fetch_one(pool)
        .await
        .map_err(|e| e.to_string())?;
    if standby {
        let row = sqlx::query(STANDBY)
            .fetch_one(pool)
            .await
            .map_err(|e| e.to_string())?;
        let secs: Option<f64> = row.try_get(0).map_err(|e| e.to_string())?;
        let bytes: f64 = row.try_get(1).map_err(|e| e.to_string())?;
        let paused: bool = row.try_get(2).unwrap_or(false);
        let streaming: bool = row.try_get(3).unwrap_or(false);
        let Some(secs) = secs else {
            return Err("this standby is not streaming from a primary (no WAL receiver) and has replayed no transaction since it started: its lag is unknown".into());
        };
        let note = match (streaming, paused) {
            (false, _) => Some("not streaming from a primary (no WAL receiver): lag is the time since the last replayed transaction".to_string()),
            (true, true) => Some("WAL replay is paused on this standby".to_string()),
            (true, false) => None,
        };
        return Ok((secs.max(0.0), Some(bytes.max(0.0) as u64), note, Utc::now()));
    }
    let row = sqlx::query(PRIMARY)
        .fetch_one(pool)
        .await
        .map_err(|e| e.to_string())?;
    let secs: f64 = row.try_get(0).map_err(|e| e.to_string())?;
    let bytes: f64 = row.try_get(1).map_err(|e| e.to_string())?;
    let standbys: i64 = row.try_get(2).unwrap_or(0);
    let slot_bytes: f64 = row.try_get(3).unwrap_or(0.0);
    let slots: i64 = row.try_get(4).unwrap_or(0);
    if standbys == 0 && slots == 0 {
        return Err("this is a primary with no standby connected and no logical slot: nothing replicates from it".into());
    }
    let note =
        (slots > 0).then(|| format!("{slots} logical slot(s) retain {:.0} bytes", slot_bytes));
    Ok((
        secs.max(0.0),
        Some(bytes.max(slot_bytes).max(0.0) as u64),
        note,
        Utc::now(),
    ))
}

async fn read(
    m: &LagMonitor,
    db: &DbGetter,
    aws: Option<&Clients>,
) -> Result<Option<Reading>, String> {
    match &m.source {
        LagSource::Connection(c) => match db(c.clone()).await? {
            Db::Pg(pool) => read_pg(&pool).await.map(Some),
            Db::Sqlite(_) | Db::MySql(_) => Ok(None),
        },
        LagSource::Cloudwatch { instance } => {
            let Some(aws) = aws else {
                return Err("no AWS configuration for CloudWatch".into());
            };
            let q = cloudwatch::Query {
                name: m.name.clone(),
                namespace: "AWS/RDS".into(),
                metric: "ReplicaLag".into(),
                dimensions: vec![("DBInstanceIdentifier".into(), instance.clone())],
                stat: "Average".into(),
                period: Duration::from_secs(60),
            };
            let end = Utc::now() + chrono::Duration::minutes(1);
            let got = cloudwatch::fetch(
                &aws.cloudwatch,
                &[q],
                end - chrono::Duration::minutes(16),
                end,
            )
            .await
            .map_err(|e| e.to_string())?;
            let last = got.first().and_then(|(_, p)| p.last().copied());
            match last {
                // the datapoint's own time: how fresh it is decides whether it counts
                Some((at, v)) => Ok(Some((
                    v,
                    None,
                    Some(format!("CloudWatch ReplicaLag of {instance}")),
                    at,
                ))),
                None => Err(format!(
                    "CloudWatch has no ReplicaLag datapoints for {instance} in the last 15 minutes"
                )),
            }
        }
    }
}

/// How often a lag monitor polls: its `every`, but CloudWatch (one datapoint
/// a minute at best) no more often than every 30 s.
pub fn interval(m: &LagMonitor) -> Duration {
    match m.source {
        LagSource::Cloudwatch { .. } => m.every.max(Duration::from_secs(30)),
        LagSource::Connection(_) => m.every,
    }
}

/// How old a lag value may be and still count: three polls, and for
/// CloudWatch (which publishes minutes late) at least ten minutes.
pub fn freshness(m: &LagMonitor) -> Duration {
    let f = super::freshness(interval(m));
    match m.source {
        LagSource::Cloudwatch { .. } => f.max(Duration::from_secs(600)),
        LagSource::Connection(_) => f,
    }
}

pub async fn run(
    hub: Arc<Hub>,
    m: LagMonitor,
    db: DbGetter,
    aws: Option<Clients>,
    cancel: CancellationToken,
) {
    let every = interval(&m);
    let limit = poll_timeout(every);
    let mut failures = 0u32;
    let mut last_journal: Option<tokio::time::Instant> = None;
    loop {
        // a source that hangs is as stale as one that fails
        let conns: Vec<&str> = match &m.source {
            LagSource::Connection(c) => vec![c.as_str()],
            LagSource::Cloudwatch { .. } => vec![],
        };
        let result = super::probe::bounded(limit, &db, &conns, read(&m, &db, aws.as_ref())).await;
        match result {
            Ok(None) => {
                hub.update(|s| {
                    if let Some(l) = s.lag.iter_mut().find(|l| l.name == m.name) {
                        l.note = Some("SQLite has no replication: no lag to measure".into());
                        l.stale = None;
                    }
                });
                return; // nothing will ever change
            }
            Ok(Some((secs, bytes, note, at))) => {
                failures = 0;
                hub.mark_fresh(Kind::Lag, &m.name, &format!("lag {secs:.1}s"));
                hub.update(|s| {
                    if let Some(l) = s.lag.iter_mut().find(|l| l.name == m.name) {
                        if l.samples.last().is_none_or(|x| x.at < at) {
                            push(&mut l.samples, at, secs);
                        }
                        l.bytes_behind = bytes;
                        l.note = note;
                    }
                });
                if last_journal.is_none_or(|t| t.elapsed() >= JOURNAL_EVERY) {
                    last_journal = Some(tokio::time::Instant::now());
                    hub.journal(SampleRecord {
                        monitor: m.name.clone(),
                        series: "lag".into(),
                        value: secs,
                        unit: Some("s".into()),
                        warn: m.warn.map(|d| d.as_secs_f64()),
                        max: m.max.map(|d| d.as_secs_f64()),
                    });
                    if let Some(b) = bytes {
                        hub.journal(SampleRecord {
                            monitor: m.name.clone(),
                            series: "lag_bytes".into(),
                            value: b as f64,
                            unit: Some("bytes".into()),
                            warn: None,
                            max: None,
                        });
                    }
                }
            }
            Err(error) => {
                failures += 1;
                hub.mark_stale(Kind::Lag, &m.name, &error);
                tracing::warn!(monitor = %m.name, %error, "lag monitor failed");
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
