//! The row-count monitor: per table, source and target counts and their
//! delta. Estimates from the catalog (`pg_class.reltuples`) are refreshed
//! often; exact `count(*)` runs on demand and at step boundaries. SQLite
//! counts are always exact (there is no cheap estimate).

use super::{backoff, pause, DbGetter, Hub, RowCount, Stale};
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

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// table -> (count, exact)
async fn counts(
    db: &Db,
    m: &RowCountMonitor,
    exact: bool,
) -> Result<BTreeMap<String, (i64, bool)>, String> {
    let mut out = BTreeMap::new();
    match db {
        Db::Pg(pool) => {
            let rows: Vec<(String, String, f64)> = sqlx::query_as(
                "select n.nspname, c.relname, c.reltuples::float8 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                  where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema', 'ferry') and n.nspname not like 'pg_toast%'",
            )
            .fetch_all(pool)
            .await
            .map_err(|e| e.to_string())?;
            for (schema, table, est) in rows {
                let name = format!("{schema}.{table}");
                if !wanted(m, &name) {
                    continue;
                }
                // never analysed (-1) or asked for: count exactly
                if exact || est < 0.0 {
                    let n: i64 = sqlx::query_scalar(&format!(
                        "select count(*) from {}.{}",
                        quote(&schema),
                        quote(&table)
                    ))
                    .fetch_one(pool)
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
                    out.insert(name, (n, true));
                } else {
                    out.insert(name, (est as i64, false));
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
                let n: i64 = sqlx::query_scalar(&format!("select count(*) from {}", quote(&t)))
                    .fetch_one(pool)
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
                out.insert(name, (n, true));
            }
        }
    }
    Ok(out)
}

pub async fn run(hub: Arc<Hub>, m: RowCountMonitor, db: DbGetter, cancel: CancellationToken) {
    let mut failures = 0u32;
    let mut exact = true; // the first reading is exact: it is the baseline people compare with
    loop {
        let poll = async {
            let src = db(m.source.clone()).await?;
            let tgt = db(m.target.clone()).await?;
            let (a, b) = tokio::join!(counts(&src, &m, exact), counts(&tgt, &m, exact));
            Ok::<_, String>((a?, b?))
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
                let mut names: Vec<&String> = src.keys().chain(tgt.keys()).collect();
                names.sort();
                names.dedup();
                let tables: Vec<RowCount> = names
                    .into_iter()
                    .map(|n| RowCount {
                        table: n.clone(),
                        source: src.get(n).map(|x| x.0),
                        target: tgt.get(n).map(|x| x.0),
                        exact: src.get(n).is_none_or(|x| x.1) && tgt.get(n).is_none_or(|x| x.1),
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
                        .map(|a| format!("last counted {} ago", super::age_text(a)))
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
