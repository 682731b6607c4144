//! PostgreSQL logical replication from a source to a target, by name: find what
//! exists (so a resumed run re-attaches and creates nothing twice), create the
//! publication (source), the slot and the subscription (target), read each
//! table's sync state, copy the sequences, and tear everything down again,
//! checking afterwards that no slot is left holding WAL.

use super::checks::Problem;
use crate::db::sqltext::{error_text, ident, pg_literal, qualified};
pub use crate::results::replicate::{SequenceCopy, TableSync, Teardown};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// What of `name` exists now on each side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    pub publication: bool,
    pub slot: bool,
    pub subscription: bool,
}

/// Look for the publication and the slot on the source, the subscription on the target.
pub async fn find(src: &PgPool, tgt: &PgPool, name: &str) -> Result<Found, sqlx::Error> {
    let (publication, slot): (bool, bool) = sqlx::query_as(
        "select exists (select 1 from pg_publication where pubname = $1),
                exists (select 1 from pg_replication_slots where slot_name = $1)",
    )
    .bind(name)
    .fetch_one(src)
    .await?;
    let subscription: bool = sqlx::query_scalar(
        "select exists (select 1 from pg_subscription s join pg_database d on d.oid = s.subdbid
                         where s.subname = $1 and d.datname = current_database())",
    )
    .bind(name)
    .fetch_one(tgt)
    .await?;
    Ok(Found {
        publication,
        slot,
        subscription,
    })
}

/// `schema.table` as a quoted SQL name.
fn sql_table(t: &str) -> String {
    match t.split_once('.') {
        Some((s, n)) => qualified(s, n),
        None => ident(t),
    }
}

/// Create the publication for `tables` on the source.
pub async fn create_publication(
    src: &PgPool,
    name: &str,
    tables: &[String],
) -> Result<(), sqlx::Error> {
    let list: Vec<String> = tables.iter().map(|t| sql_table(t)).collect();
    sqlx::raw_sql(&format!(
        "create publication {} for table {}",
        ident(name),
        list.join(", ")
    ))
    .execute(src)
    .await?;
    Ok(())
}

/// The subscription's options for the target's version: binary and streaming
/// from 14, disable on error from 15.
pub fn subscription_options(target_version: i64, create_slot: bool, name: &str) -> String {
    let mut opts = vec![format!("slot_name = {}", pg_literal(name))];
    if !create_slot {
        opts.push("create_slot = false".into());
    }
    if target_version >= 140000 {
        opts.push("binary = true".into());
        opts.push("streaming = on".into());
    }
    if target_version >= 150000 {
        opts.push("disable_on_error = true".into());
    }
    opts.join(", ")
}

/// Create the subscription on the target (and, unless it exists already, the
/// slot on the source). `conninfo` holds a password: it goes into the SQL only,
/// never into a message.
pub async fn create_subscription(
    tgt: &PgPool,
    name: &str,
    conninfo: &str,
    create_slot: bool,
) -> Result<(), sqlx::Error> {
    let version: i64 = sqlx::query_scalar("select current_setting('server_version_num')::int8")
        .fetch_one(tgt)
        .await?;
    // CREATE SUBSCRIPTION with a slot cannot run in a transaction block: raw_sql sends
    // it alone, as a simple query
    sqlx::raw_sql(&format!(
        "create subscription {} connection {} publication {} with ({})",
        ident(name),
        pg_literal(conninfo),
        ident(name),
        subscription_options(version, create_slot, name)
    ))
    .execute(tgt)
    .await?;
    Ok(())
}

/// Enable a subscription found disabled (a resume after `disable_on_error`, or
/// after a crash between create and enable).
pub async fn enable(tgt: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    let enabled: Option<bool> = sqlx::query_scalar(
        "select s.subenabled from pg_subscription s join pg_database d on d.oid = s.subdbid
          where s.subname = $1 and d.datname = current_database()",
    )
    .bind(name)
    .fetch_optional(tgt)
    .await?;
    if enabled == Some(false) {
        sqlx::raw_sql(&format!("alter subscription {} enable", ident(name)))
            .execute(tgt)
            .await?;
        return Ok(true);
    }
    Ok(false)
}

/// The subscription's state: its tables, whether it is enabled, its error counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubState {
    pub enabled: bool,
    pub tables: Vec<TableSync>,
    pub apply_errors: i64,
    pub sync_errors: i64,
}

impl SubState {
    pub fn all_ready(&self) -> bool {
        !self.tables.is_empty() && self.tables.iter().all(|t| t.state == "ready")
    }
}

fn state_name(code: &str) -> &'static str {
    match code {
        "i" => "init",
        "d" => "copying",
        "f" => "copied",
        "s" => "synchronized",
        "r" => "ready",
        _ => "unknown",
    }
}

/// Read the subscription's state on the target.
pub async fn sub_state(tgt: &PgPool, name: &str) -> Result<Option<SubState>, sqlx::Error> {
    let head: Option<(i64, bool)> = sqlx::query_as(
        "select s.oid::int8, s.subenabled from pg_subscription s join pg_database d on d.oid = s.subdbid
          where s.subname = $1 and d.datname = current_database()",
    )
    .bind(name)
    .fetch_optional(tgt)
    .await?;
    let Some((oid, enabled)) = head else {
        return Ok(None);
    };
    let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "select format('%s.%s', n.nspname, c.relname), r.srsubstate::text,
                (select p.tuples_processed from pg_stat_progress_copy p where p.relid = r.srrelid)
           from pg_subscription_rel r
           join pg_class c on c.oid = r.srrelid
           join pg_namespace n on n.oid = c.relnamespace
          where r.srsubid = $1::int8::oid
          order by 1",
    )
    .bind(oid)
    .fetch_all(tgt)
    .await?;
    // pg_stat_subscription_stats is PostgreSQL 15 and later
    let errors: Option<(i64, i64)> = sqlx::query_as(
        "select apply_error_count, sync_error_count from pg_stat_subscription_stats where subid = $1::int8::oid",
    )
    .bind(oid)
    .fetch_optional(tgt)
    .await
    .unwrap_or(None);
    let (apply_errors, sync_errors) = errors.unwrap_or((0, 0));
    Ok(Some(SubState {
        enabled,
        tables: rows
            .into_iter()
            .map(|(table, code, rows)| TableSync {
                table,
                state: state_name(&code).to_string(),
                rows,
            })
            .collect(),
        apply_errors,
        sync_errors,
    }))
}

/// Copy the value of every sequence in the schemas of `tables` from the source
/// to the target (logical replication does not carry them). A sequence missing
/// on the target is named, not skipped silently.
pub async fn copy_sequences(
    src: &PgPool,
    tgt: &PgPool,
    tables: &[String],
) -> Result<Vec<SequenceCopy>, sqlx::Error> {
    let mut schemas: Vec<String> = tables
        .iter()
        .filter_map(|t| t.split_once('.').map(|(s, _)| s.to_string()))
        .collect();
    schemas.sort();
    schemas.dedup();
    let seqs: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "select schemaname::text, sequencename::text, last_value from pg_sequences
          where schemaname = any($1) order by 1, 2",
    )
    .bind(&schemas)
    .fetch_all(src)
    .await?;
    let mut out = Vec::new();
    for (schema, name, value) in seqs {
        let sql_name = qualified(&schema, &name);
        let there: bool = sqlx::query_scalar(
            "select exists (select 1 from pg_sequences where schemaname = $1 and sequencename = $2)",
        )
        .bind(&schema)
        .bind(&name)
        .fetch_one(tgt)
        .await?;
        let label = format!("{schema}.{name}");
        if !there {
            out.push(SequenceCopy {
                sequence: label,
                value: None,
                note: Some("missing on the target: not copied".into()),
            });
            continue;
        }
        match value {
            Some(v) => {
                sqlx::query("select setval($1::regclass, $2, true)")
                    .bind(&sql_name)
                    .bind(v)
                    .execute(tgt)
                    .await?;
                out.push(SequenceCopy {
                    sequence: label,
                    value: Some(v),
                    note: None,
                });
            }
            None => out.push(SequenceCopy {
                sequence: label,
                value: None,
                note: Some("never used on the source: left as it is".into()),
            }),
        }
    }
    Ok(out)
}

/// Run one statement in a read-write transaction, even when the database's
/// default is read-only; a failure rolls it back. The error as text.
async fn read_write(pool: &PgPool, sql: &str) -> Result<(), String> {
    let text = |e: sqlx::Error| error_text(&e);
    let mut tx = pool.begin().await.map_err(text)?;
    sqlx::query("set transaction read write")
        .execute(&mut *tx)
        .await
        .map_err(text)?;
    sqlx::query(sql).execute(&mut *tx).await.map_err(text)?;
    tx.commit().await.map_err(text)
}

/// Run one statement on its own; the error as text.
async fn run(pool: &PgPool, sql: &str) -> Result<(), String> {
    sqlx::raw_sql(sql)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(|e| error_text(&e))
}

/// Disable and drop the subscription (which drops its slot), drop the slot
/// directly when the subscription could not, then the publication; finally
/// look whether the slot is really gone.
pub async fn teardown(src: &PgPool, tgt: &PgPool, name: &str) -> Teardown {
    let mut t = Teardown::default();
    let found = find(src, tgt, name).await.unwrap_or(Found {
        publication: true,
        slot: true,
        subscription: true,
    });
    if found.subscription {
        // one statement at a time: DROP SUBSCRIPTION with a slot refuses a transaction block
        let n = ident(name);
        let _ = run(tgt, &format!("alter subscription {n} disable")).await;
        match run(tgt, &format!("drop subscription {n}")).await {
            Ok(()) => t.dropped.push(format!("subscription {name} (target)")),
            Err(e) => {
                // the source cannot be reached: detach the slot so the subscription can go
                let detached = match run(
                    tgt,
                    &format!("alter subscription {n} set (slot_name = none)"),
                )
                .await
                {
                    Ok(()) => run(tgt, &format!("drop subscription {n}")).await,
                    Err(e2) => Err(e2),
                };
                match detached {
                    Ok(()) => t.dropped.push(format!(
                        "subscription {name} (target; detached from its slot: {e})"
                    )),
                    Err(e2) => t.errors.push(format!(
                        "cannot drop subscription {name} on the target: {e2}"
                    )),
                }
            }
        }
    }
    // the subscription normally dropped the slot; an inactive one left behind goes here
    let slot: Result<Option<bool>, _> =
        sqlx::query_scalar("select active from pg_replication_slots where slot_name = $1")
            .bind(name)
            .fetch_optional(src)
            .await;
    match slot {
        Ok(Some(false)) => {
            match sqlx::query("select pg_drop_replication_slot($1)")
                .bind(name)
                .execute(src)
                .await
            {
                Ok(_) => t.dropped.push(format!("slot {name} (source)")),
                Err(e) => t.errors.push(format!(
                    "cannot drop slot {name} on the source: {}",
                    error_text(&e)
                )),
            }
        }
        Ok(Some(true)) => t.errors.push(format!(
            "slot {name} on the source is still in use by a WAL sender"
        )),
        Ok(None) => {
            if found.slot && !t.dropped.iter().any(|d| d.starts_with("slot")) {
                t.dropped
                    .push(format!("slot {name} (source, with the subscription)"));
            }
        }
        Err(e) => t.errors.push(format!(
            "cannot look for slot {name} on the source: {}",
            error_text(&e)
        )),
    }
    if found.publication {
        // read write even when the source was made read-only for the freeze
        // (`default_transaction_read_only`), which a cutover does before the stop
        let sql = format!("drop publication if exists {}", ident(name));
        match read_write(src, &sql).await {
            Ok(()) => t.dropped.push(format!("publication {name} (source)")),
            Err(e) => t
                .errors
                .push(format!("cannot drop publication {name} on the source: {e}")),
        }
    }
    // the proof: is the slot gone?
    let left: Result<bool, _> = sqlx::query_scalar(
        "select exists (select 1 from pg_replication_slots where slot_name = $1)",
    )
    .bind(name)
    .fetch_one(src)
    .await;
    t.slot_left = !matches!(left, Ok(false));
    if t.slot_left {
        t.errors.push(format!(
            "REPLICATION SLOT {name} IS STILL ON THE SOURCE, HOLDING WAL: drop it by hand with `select pg_drop_replication_slot('{name}')` once nothing uses it"
        ));
    }
    t
}

/// The pre-check problems as one message, each reason on its own line.
pub fn refusal(problems: &[Problem]) -> String {
    let mut s = format!(
        "replication cannot start ({} problem{}); nothing was created:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        s.push_str(&format!("\n  - {p}"));
    }
    s
}
