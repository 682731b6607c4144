//! The row-count monitor: per table, source and target counts and their
//! delta. Exact `count(*)` runs first, on demand and at step boundaries; in
//! between, PostgreSQL tables are estimated cheaply and often. SQLite counts are
//! always exact (there is no cheap estimate).
//!
//! The estimate is the planner's (`reltuples` per page × pages today), or on a
//! primary the statistics' live-row count (`n_live_tup`, current after every
//! insert and delete) when the two roughly agree; a table never analysed is
//! counted exactly. An exact count stays shown while the table's estimate has
//! not moved since it was taken: a stale `reltuples` must not turn the exact,
//! equal counts the verify just proved into a false difference on the pane and
//! in the evidence.

use super::{backoff, pause, DbGetter, Hub, RowCount, Stale};
use crate::db::sqltext::ident;
use crate::db::Db;
use crate::runbook::RowCountMonitor;
use chrono::Utc;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long exact counts (`count(*)` of every table, both sides) may take.
const EXACT_LIMIT: Duration = Duration::from_secs(600);

fn wanted(m: &RowCountMonitor, table: &str) -> bool {
    crate::runbook::globs::selected(&m.tables, &m.exclude, table)
}

/// One side's reading of one table.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Count {
    value: i64,
    exact: bool,
    /// The cheap estimate at the time of the reading (PostgreSQL), to tell later
    /// whether the table changed since an exact count.
    est: Option<i64>,
}

/// The estimates of every table of a PostgreSQL database. `None` for a table
/// never analysed: it is counted exactly. Otherwise the planner's estimate P
/// (`reltuples` per page × pages today), or, on a primary, the statistics'
/// live-row count when it agrees with P within a factor of two: it follows
/// every insert and delete at once, but a pooled connection's late report of
/// a TRUNCATE can zero it after the rows that followed were counted.
const PG_ESTIMATES: &str = "
select nspname, relname,
       (case
          when reltuples < 0 then null
          when not pg_is_in_recovery() and live between p / 2 and p * 2 then live
          else p
        end)::float8
  from (select n.nspname::text as nspname, c.relname::text as relname, c.reltuples,
               s.n_live_tup::float8 as live,
               (case when c.relpages > 0
                     then c.reltuples / c.relpages
                          * (pg_relation_size(c.oid) / current_setting('block_size')::float8)
                     else c.reltuples end)::float8 as p
          from pg_class c
          join pg_namespace n on n.oid = c.relnamespace
          left join pg_stat_all_tables s on s.relid = c.oid
         where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema', 'ferry')
           and n.nspname not like 'pg_toast%') t";

/// Every wanted table of one side.
async fn counts(
    db: &Db,
    m: &RowCountMonitor,
    exact: bool,
) -> Result<BTreeMap<String, Count>, String> {
    let mut out = BTreeMap::new();
    match db {
        Db::Pg(pool) => {
            let rows: Vec<(String, String, Option<f64>)> = sqlx::query_as(PG_ESTIMATES)
                .fetch_all(pool)
                .await
                .map_err(|e| e.to_string())?;
            for (schema, table, est) in rows {
                let name = format!("{schema}.{table}");
                if !wanted(m, &name) {
                    continue;
                }
                let est = est.map(|e| e.round() as i64);
                // asked for, or nothing to estimate from: count exactly
                if exact || est.is_none() {
                    let n: i64 = sqlx::query_scalar(&format!(
                        "select count(*) from {}.{}",
                        ident(&schema),
                        ident(&table)
                    ))
                    .fetch_one(pool)
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
                    out.insert(
                        name,
                        Count {
                            value: n,
                            exact: true,
                            est,
                        },
                    );
                } else {
                    out.insert(
                        name,
                        Count {
                            value: est.unwrap_or_default(),
                            exact: false,
                            est,
                        },
                    );
                }
            }
        }
        Db::MySql(pool) => {
            // InnoDB's TABLE_ROWS is a rough estimate (often off by tens of percent):
            // shown as an estimate between exact counts, never as one.
            let rows: Vec<(String, String, Option<u64>)> = sqlx::query_as(
                "select cast(table_schema as char), cast(table_name as char), cast(table_rows as unsigned) \
                   from information_schema.tables \
                  where table_schema = database() and table_type = 'BASE TABLE'",
            )
            .fetch_all(pool)
            .await
            .map_err(|e| e.to_string())?;
            for (schema, table, est) in rows {
                let name = format!("{schema}.{table}");
                if !wanted(m, &name) {
                    continue;
                }
                let est = est.map(|e| e.min(i64::MAX as u64) as i64);
                if exact || est.is_none() {
                    let n: i64 = sqlx::query_scalar(&format!(
                        "select cast(count(*) as signed) from {}",
                        crate::db::mysql::qualified(&schema, &table)
                    ))
                    .fetch_one(pool)
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
                    out.insert(
                        name,
                        Count {
                            value: n,
                            exact: true,
                            est,
                        },
                    );
                } else {
                    out.insert(
                        name,
                        Count {
                            value: est.unwrap_or_default(),
                            exact: false,
                            est,
                        },
                    );
                }
            }
        }
        Db::Sqlite(pool) => {
            let tables: Vec<String> = sqlx::query_scalar("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like 'ferry_%'")
                .fetch_all(pool)
                .await
                .map_err(|e| e.to_string())?;
            for t in tables {
                let name = format!("main.{t}");
                if !wanted(m, &name) {
                    continue;
                }
                let n: i64 = sqlx::query_scalar(&format!("select count(*) from {}", ident(&t)))
                    .fetch_one(pool)
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
                out.insert(
                    name,
                    Count {
                        value: n,
                        exact: true,
                        est: None,
                    },
                );
            }
        }
    }
    Ok(out)
}

/// An estimate reading keeps the last exact count of a table whose estimate has
/// not moved since that count; any other reading replaces what was kept.
fn keep_exact(
    kept: &mut BTreeMap<String, Count>,
    now: BTreeMap<String, Count>,
) -> BTreeMap<String, Count> {
    let mut out = BTreeMap::new();
    for (name, c) in now {
        let shown = if c.exact {
            kept.insert(name.clone(), c);
            c
        } else {
            match kept.get(&name) {
                Some(k) if k.est.is_some() && k.est == c.est => *k,
                _ => {
                    kept.remove(&name);
                    c
                }
            }
        };
        out.insert(name, shown);
    }
    kept.retain(|n, _| out.contains_key(n));
    out
}

/// MySQL names a table `database.table`, PostgreSQL `schema.table`: across the two,
/// a source table is shown under the name of the one target table with the same
/// name (case aside), so that the pane pairs them. A name with no such single
/// match keeps its own.
fn pair_across_engines(
    src: BTreeMap<String, Count>,
    tgt: &BTreeMap<String, Count>,
) -> BTreeMap<String, Count> {
    let bare = |n: &str| n.split_once('.').map_or(n, |(_, t)| t).to_lowercase();
    src.into_iter()
        .map(|(name, c)| {
            let b = bare(&name);
            let mut same = tgt.keys().filter(|t| bare(t) == b);
            match (same.next(), same.next()) {
                (Some(t), None) => (t.clone(), c),
                _ => (name, c),
            }
        })
        .collect()
}

pub async fn run(hub: Arc<Hub>, m: RowCountMonitor, db: DbGetter, cancel: CancellationToken) {
    let mut failures = 0u32;
    let mut exact = true; // the first reading is exact: it is the baseline people compare with
    let (mut kept_src, mut kept_tgt) = (BTreeMap::new(), BTreeMap::new());
    loop {
        let poll = async {
            let src = db(m.source.clone()).await?;
            let tgt = db(m.target.clone()).await?;
            let (a, b) = tokio::join!(counts(&src, &m, exact), counts(&tgt, &m, exact));
            let (mut a, b) = (a?, b?);
            if matches!(src, Db::MySql(_)) != matches!(tgt, Db::MySql(_)) {
                a = pair_across_engines(a, &b);
            }
            Ok::<_, String>((a, b))
        };
        // exact counts of big tables take a while: a generous bound, but a bound
        let limit = if exact {
            EXACT_LIMIT
        } else {
            super::poll_timeout(m.every)
        };
        let conns = [m.source.as_str(), m.target.as_str()];
        let result = super::probe::bounded(limit, &db, &conns, poll).await;
        match result {
            Ok((src, tgt)) => {
                failures = 0;
                let src = keep_exact(&mut kept_src, src);
                let tgt = keep_exact(&mut kept_tgt, tgt);
                let mut names: Vec<&String> = src.keys().chain(tgt.keys()).collect();
                names.sort();
                names.dedup();
                let tables: Vec<RowCount> = names
                    .into_iter()
                    .map(|n| RowCount {
                        table: n.clone(),
                        source: src.get(n).map(|x| x.value),
                        target: tgt.get(n).map(|x| x.value),
                        exact: src.get(n).is_none_or(|x| x.exact)
                            && tgt.get(n).is_none_or(|x| x.exact),
                    })
                    .collect();
                let mut was_stale = false;
                hub.update(|s| {
                    if let Some(r) = s.rowcounts.as_mut() {
                        r.tables = tables;
                        r.updated = Some(Utc::now());
                        was_stale = r.stale.take().is_some();
                    }
                });
                if was_stale {
                    hub.note("row counts answer again".into());
                }
            }
            Err(e) => {
                failures += 1;
                let mut newly: Option<Option<chrono::DateTime<Utc>>> = None;
                hub.update(|s| {
                    if let Some(r) = s.rowcounts.as_mut() {
                        if r.stale.is_none() {
                            newly = Some(r.updated);
                        }
                        r.stale = Some(Stale {
                            error: e.clone(),
                            last_good: r.updated,
                        });
                    }
                });
                if let Some(last) = newly {
                    let age = last
                        .and_then(|t| (Utc::now() - t).to_std().ok())
                        .map(|a| format!("last counted {} ago", crate::units::age(a)))
                        .unwrap_or_else(|| "never counted".into());
                    hub.note(format!("row counts are stale: {e} ({age})"));
                }
                tracing::warn!(error = %e, "row counts failed");
            }
        }
        let wait = if failures == 0 {
            m.every
        } else {
            backoff(m.every, failures)
        };
        exact = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = hub.exact.notified() => true,
            ok = pause(wait, &cancel) => { if !ok { return; } false }
        };
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn row_counts_that_cannot_be_had_are_stale_and_journaled_once() {
        use crate::monitor::{DbGetter, Hub, Record};
        use std::sync::Arc;
        use std::time::Duration;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let hub = Arc::new(Hub::new(tx));
        hub.update(|s| s.rowcounts = Some(Default::default()));
        let getter: DbGetter = Arc::new(|name: String| {
            Box::pin(async move { Err(format!("connection `{name}`: connection refused")) })
        });
        let m = crate::runbook::RowCountMonitor {
            source: "src".into(),
            target: "tgt".into(),
            tables: vec!["*.*".into()],
            exclude: vec![],
            every: Duration::from_millis(100),
        };
        let cancel = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(super::run(hub.clone(), m, getter, cancel.clone()));
        let Some(Record::Note(note)) = rx.recv().await else {
            panic!("a note")
        };
        assert!(
            note.contains("row counts are stale") && note.contains("connection refused"),
            "{note}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(rx.try_recv().is_err(), "said once, not at every failure");
        let stale = hub.snapshot().rowcounts.and_then(|r| r.stale);
        assert!(stale.is_some_and(|s| s.error.contains("connection refused")));
        cancel.cancel();
        let _ = task.await;
    }
}
