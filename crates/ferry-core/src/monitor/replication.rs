//! The background watch of a subscription of the run, from the start of its
//! `replicate` step until its stop: each table's state (`pg_subscription_rel`)
//! with the rows its initial copy has reached (`pg_stat_progress_copy` of the
//! sync worker), the slot's lag in bytes (`pg_current_wal_insert_lsn() -
//! confirmed_flush_lsn`) and seconds, its WAL headroom (`safe_wal_size`,
//! `wal_status`) and the error counts (`pg_stat_subscription_stats`). Like the
//! other monitors: a poll that fails marks the watch stale (journaled once),
//! retries back off, and samples go to the journal every [`JOURNAL_EVERY`].
//!
//! A new error (a count that rose, or the subscription disabled by
//! `disable_on_error`) is described with the tables PostgreSQL lets be known
//! (see [`super::pending`] and docs/replication-watch.md) and journaled; the
//! waits of the run read it through [`ReplicationWatch::fault_since`].

use super::pending;
use super::subscription::{Headroom, ReplicationWatch, TableState, TableWatch};
use super::{backoff, pause, poll_timeout, DbGetter, Hub, SampleRecord, Stale, JOURNAL_EVERY};
use crate::db::sqltext::error_text;
use crate::db::Db;
use chrono::Utc;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a subscription is read.
pub const EVERY: Duration = Duration::from_secs(1);

/// What to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSpec {
    pub name: String,
    pub step: String,
    pub source: String,
    pub target: String,
}

/// One reading of both sides.
#[derive(Debug, Clone, Default, PartialEq)]
struct Reading {
    oid: i64,
    exists: bool,
    enabled: bool,
    tables: Vec<TableWatch>,
    lag_bytes: Option<u64>,
    lag_secs: Option<f64>,
    headroom: Option<Headroom>,
    apply_errors: Option<i64>,
    sync_errors: Option<i64>,
}

/// The subscription on the target: (oid, enabled), its tables, its error
/// counts, and how long ago the apply worker last reported a position.
async fn read_target(tgt: &PgPool, name: &str, r: &mut Reading) -> Result<Option<f64>, String> {
    let text = |e: sqlx::Error| error_text(&e);
    let head: Option<(i64, bool)> = sqlx::query_as(
        "select s.oid::int8, s.subenabled from pg_subscription s join pg_database d on d.oid = s.subdbid
          where s.subname = $1 and d.datname = current_database()",
    )
    .bind(name)
    .fetch_optional(tgt)
    .await
    .map_err(text)?;
    let Some((oid, enabled)) = head else {
        return Ok(None);
    };
    r.oid = oid;
    r.exists = true;
    r.enabled = enabled;
    let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "select format('%s.%s', n.nspname, c.relname), r.srsubstate::text,
                (select max(p.tuples_processed) from pg_stat_progress_copy p where p.relid = r.srrelid)
           from pg_subscription_rel r
           join pg_class c on c.oid = r.srrelid
           join pg_namespace n on n.oid = c.relnamespace
          where r.srsubid = $1::int8::oid
          order by 1",
    )
    .bind(oid)
    .fetch_all(tgt)
    .await
    .map_err(text)?;
    r.tables = rows
        .into_iter()
        .map(|(table, code, rows)| {
            let state = TableState::from_code(&code);
            TableWatch {
                table,
                state,
                rows: rows.filter(|_| state == TableState::Copying),
            }
        })
        .collect();
    // pg_stat_subscription_stats is PostgreSQL 15 and later: before, no counts
    let version: i64 = sqlx::query_scalar("select current_setting('server_version_num')::int8")
        .fetch_one(tgt)
        .await
        .map_err(text)?;
    if version >= 150000 {
        let counts: Option<(i64, i64)> = sqlx::query_as(
            "select apply_error_count, sync_error_count from pg_stat_subscription_stats where subid = $1::int8::oid",
        )
        .bind(oid)
        .fetch_optional(tgt)
        .await
        .map_err(text)?;
        let (a, s) = counts.unwrap_or((0, 0));
        r.apply_errors = Some(a);
        r.sync_errors = Some(s);
    }
    let since_report: Option<f64> = sqlx::query_scalar(
        "select extract(epoch from clock_timestamp() - max(latest_end_time))::float8
           from pg_stat_subscription where subid = $1::int8::oid and relid is null",
    )
    .bind(oid)
    .fetch_one(tgt)
    .await
    .map_err(text)?;
    Ok(since_report)
}

/// The slot on the source: bytes behind, headroom, and the WAL sender's
/// replay lag in seconds when it measures one.
async fn read_source(src: &PgPool, name: &str, r: &mut Reading) -> Result<Option<f64>, String> {
    let text = |e: sqlx::Error| error_text(&e);
    let slot: Option<(Option<f64>, Option<String>, Option<i64>)> = sqlx::query_as(
        "select pg_wal_lsn_diff(pg_current_wal_insert_lsn(), confirmed_flush_lsn)::float8,
                wal_status, safe_wal_size
           from pg_replication_slots where slot_name = $1",
    )
    .bind(name)
    .fetch_optional(src)
    .await
    .map_err(text)?;
    if let Some((bytes, wal_status, safe_bytes)) = slot {
        r.lag_bytes = bytes.map(|b| b.max(0.0) as u64);
        r.headroom = Some(Headroom {
            wal_status,
            safe_bytes,
        });
    }
    sqlx::query_scalar::<_, Option<f64>>(
        "select max(extract(epoch from replay_lag))::float8 from pg_stat_replication
          where application_name = $1",
    )
    .bind(name)
    .fetch_one(src)
    .await
    .map_err(text)
}

async fn pg(db: &DbGetter, name: &str) -> Result<PgPool, String> {
    match db(name.to_string()).await? {
        Db::Pg(p) => Ok(p),
        other => Err(format!(
            "logical replication is PostgreSQL to PostgreSQL; `{name}` is {}",
            other.engine()
        )),
    }
}

async fn read(db: &DbGetter, spec: &WatchSpec) -> Result<(Reading, PgPool, PgPool), String> {
    let src = pg(db, &spec.source).await?;
    let tgt = pg(db, &spec.target).await?;
    let mut r = Reading::default();
    let since_report = read_target(&tgt, &spec.name, &mut r).await?;
    let replay_lag = read_source(&src, &spec.name, &mut r).await?;
    // nothing behind is no lag; else the WAL sender's measured replay lag, or
    // (none measured: the subscription stopped) how long ago the target last
    // reported a position
    r.lag_secs = match r.lag_bytes {
        Some(0) => Some(0.0),
        Some(_) => replay_lag.or(since_report).map(|s| s.max(0.0)),
        None => None,
    };
    Ok((r, src, tgt))
}

/// The new error, in words, with the tables named where PostgreSQL tells.
async fn describe(
    spec: &WatchSpec,
    now: &Reading,
    sync_rose: bool,
    src: &PgPool,
    tgt: &PgPool,
    cancel: &CancellationToken,
) -> String {
    let name = &spec.name;
    let counts = format!(
        "apply errors {}, sync errors {}",
        now.apply_errors.map_or("?".into(), |n| n.to_string()),
        now.sync_errors.map_or("?".into(), |n| n.to_string())
    );
    let how = if now.enabled {
        "keeps retrying"
    } else {
        "disabled itself"
    };
    if sync_rose {
        let copying: Vec<&str> = now
            .tables
            .iter()
            .filter(|t| t.state == TableState::Copying)
            .map(|t| t.table.as_str())
            .collect();
        let not_ready: Vec<&str> = now
            .tables
            .iter()
            .filter(|t| t.state != TableState::Ready)
            .map(|t| t.table.as_str())
            .collect();
        let which = if !copying.is_empty() {
            format!("the initial copy of {} failed", copying.join(" or "))
        } else if !not_ready.is_empty() {
            format!("a table sync failed; not ready: {}", not_ready.join(", "))
        } else {
            "a table sync failed".into()
        };
        return format!("subscription `{name}`: {which}; it {how} ({counts})");
    }
    // an apply error: the slot still holds the change the target could not apply
    let applied = pending::applied(tgt, now.oid).await;
    let mut last = String::new();
    for attempt in 0..4 {
        if attempt > 0 && !pause(Duration::from_millis(500), cancel).await {
            break;
        }
        match pending::peek(src, name, name, applied).await {
            Ok(Some(p)) => {
                return format!(
                    "subscription `{name}` could not apply a change to {} (the transaction committing at {:X}/{:X} on the source) and {how} ({counts}); fix the target, then `alter subscription {name} enable`",
                    p.tables.join(", "),
                    p.commit_lsn >> 32,
                    p.commit_lsn & 0xffff_ffff
                );
            }
            Ok(None) => {
                last = "the slot holds no transaction past what the target applied".into();
                break;
            }
            Err(e) => last = e,
        }
    }
    format!(
        "subscription `{name}` could not apply a change and {how} ({counts}); PostgreSQL names its table only in the target's server log, and the slot could not be read ({last})"
    )
}

/// Notes for tables whose state changed since the last reading.
fn transitions(name: &str, before: &[TableWatch], now: &[TableWatch]) -> Vec<String> {
    now.iter()
        .filter_map(|t| {
            let old = before.iter().find(|b| b.table == t.table).map(|b| b.state);
            (old != Some(t.state)).then(|| match old {
                Some(o) => format!(
                    "replication `{name}`: {} {} → {}",
                    t.table,
                    o.word(),
                    t.state.word()
                ),
                None => format!("replication `{name}`: {} {}", t.table, t.state.word()),
            })
        })
        .collect()
}

/// Watch `spec` until `cancel` fires.
pub async fn run(hub: Arc<Hub>, spec: WatchSpec, db: DbGetter, cancel: CancellationToken) {
    let limit = poll_timeout(EVERY);
    let mut failures = 0u32;
    let mut last_journal: Option<tokio::time::Instant> = None;
    let mut prev = Reading::default();
    let mut seen = false;
    loop {
        let result = super::probe::bounded(
            limit,
            &db,
            &[spec.source.as_str(), spec.target.as_str()],
            read(&db, &spec),
        )
        .await;
        match result {
            Ok((now, src, tgt)) => {
                failures = 0;
                let mut notes = transitions(&spec.name, &prev.tables, &now.tables);
                if seen && prev.exists && !now.exists {
                    notes.push(format!("subscription `{}` no longer exists", spec.name));
                }
                let rose = |a: Option<i64>, b: Option<i64>| a.unwrap_or(0) > b.unwrap_or(0);
                let sync_rose = rose(now.sync_errors, prev.sync_errors);
                let new_error = now.exists
                    && (rose(now.apply_errors, prev.apply_errors)
                        || sync_rose
                        || (!now.enabled && (prev.enabled || !seen)));
                let error = if new_error {
                    let d = describe(&spec, &now, sync_rose, &src, &tgt, &cancel).await;
                    notes.push(d.clone());
                    Some(d)
                } else {
                    None
                };
                let mut was_stale = false;
                hub.update(|s| {
                    if let Some(w) = s.replication.iter_mut().find(|w| w.name == spec.name) {
                        w.exists = now.exists;
                        w.enabled = now.enabled;
                        w.tables = now.tables.clone();
                        w.lag_bytes = now.lag_bytes;
                        w.lag_secs = now.lag_secs;
                        w.headroom = now.headroom.clone();
                        w.apply_errors = now.apply_errors;
                        w.sync_errors = now.sync_errors;
                        if error.is_some() {
                            w.error = error.clone();
                        }
                        w.updated = Some(Utc::now());
                        was_stale = w.stale.take().is_some();
                    }
                });
                if was_stale {
                    hub.note(format!("replication `{}` answers again", spec.name));
                }
                for n in notes {
                    hub.note(n);
                }
                if now.exists && last_journal.is_none_or(|t| t.elapsed() >= JOURNAL_EVERY) {
                    last_journal = Some(tokio::time::Instant::now());
                    journal_samples(&hub, &spec.name, &now);
                }
                prev = now;
                seen = true;
            }
            Err(e) => {
                failures += 1;
                let mut newly = None;
                hub.update(|s| {
                    if let Some(w) = s.replication.iter_mut().find(|w| w.name == spec.name) {
                        if w.stale.is_none() {
                            newly = Some(w.updated);
                        }
                        w.stale = Some(Stale {
                            error: e.clone(),
                            last_good: w.updated,
                        });
                    }
                });
                if let Some(last) = newly {
                    let age = last
                        .and_then(|t| (Utc::now() - t).to_std().ok())
                        .map(|a| format!("last read {} ago", crate::units::age(a)))
                        .unwrap_or_else(|| "never read".into());
                    hub.note(format!("replication `{}` is stale: {e} ({age})", spec.name));
                }
                tracing::warn!(name = %spec.name, error = %e, "replication watch failed");
            }
        }
        let wait = if failures == 0 {
            EVERY
        } else {
            backoff(EVERY, failures)
        };
        if !pause(wait, &cancel).await {
            return;
        }
    }
}

fn journal_samples(hub: &Hub, name: &str, r: &Reading) {
    let put = |series: &str, value: f64, unit: &str| {
        hub.journal(SampleRecord {
            monitor: name.to_string(),
            series: series.into(),
            value,
            unit: Some(unit.into()),
            warn: None,
            max: None,
        })
    };
    if let Some(s) = r.lag_secs {
        put("replication_lag", s, "s");
    }
    if let Some(b) = r.lag_bytes {
        put("replication_lag_bytes", b as f64, "bytes");
    }
    if let Some(b) = r.headroom.as_ref().and_then(|h| h.safe_bytes) {
        put("replication_wal_headroom", b as f64, "bytes");
    }
}

/// A watch not read yet, for the snapshot.
pub fn empty(spec: &WatchSpec) -> ReplicationWatch {
    ReplicationWatch {
        name: spec.name.clone(),
        step: spec.step.clone(),
        source: spec.source.clone(),
        target: spec.target.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(table: &str, state: TableState) -> TableWatch {
        TableWatch {
            table: table.into(),
            state,
            rows: None,
        }
    }

    #[test]
    fn state_changes_are_told_once() {
        let before = vec![
            t("public.a", TableState::Copying),
            t("public.b", TableState::Ready),
        ];
        let now = vec![
            t("public.a", TableState::Ready),
            t("public.b", TableState::Ready),
            t("public.c", TableState::Init),
        ];
        assert_eq!(
            transitions("x", &before, &now),
            vec![
                "replication `x`: public.a copying → ready".to_string(),
                "replication `x`: public.c init".to_string()
            ]
        );
        assert!(transitions("x", &now, &now).is_empty());
    }

    #[tokio::test]
    async fn a_watch_that_cannot_read_is_stale_and_journaled_once() {
        use crate::monitor::Record;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let hub = Arc::new(Hub::new(tx));
        let spec = WatchSpec {
            name: "ferry_cutover".into(),
            step: "start".into(),
            source: "src".into(),
            target: "tgt".into(),
        };
        hub.update(|s| s.replication.push(empty(&spec)));
        let getter: DbGetter = Arc::new(|name: String| {
            Box::pin(async move { Err(format!("connection `{name}`: connection refused")) })
        });
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(hub.clone(), spec, getter, cancel.clone()));
        let Some(Record::Note(note)) = rx.recv().await else {
            panic!("a note")
        };
        assert!(
            note.contains("replication `ferry_cutover` is stale") && note.contains("refused"),
            "{note}"
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(rx.try_recv().is_err(), "said once");
        let w = hub.snapshot().replication.remove(0);
        assert!(w.stale.is_some_and(|s| s.error.contains("refused")));
        cancel.cancel();
        let _ = task.await;
    }
}
