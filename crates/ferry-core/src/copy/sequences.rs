//! After the data: every sequence tied to a copied column on the target (owned by it:
//! serial and identity columns; or named by its default, `nextval('shared_id')`;
//! found through `pg_depend`) is set to the source sequence's state (`last_value`,
//! `is_called`), or, when the source has no sequence for that column (SQLite, a plain
//! column), to `max(column)` so that the next value is `max + 1` — never lower than
//! another copied table's maximum already set on the same (shared) sequence.
//! From a MySQL source, a table's `AUTO_INCREMENT` counter (the next value MySQL
//! would give) sets the sequence of its AUTO_INCREMENT column, so that the first
//! row inserted into PostgreSQL gets that same value (never less than max + 1).
//! On a SQLite target, an AUTOINCREMENT table's `sqlite_sequence` entry follows the
//! source's entry when the source is SQLite too (SQLite keeps it at least at the
//! largest key by itself).

use super::prepare::TableSpec;
use super::worker::{backoff, MAX_ATTEMPTS};
use super::{CopyError, InfoFn};
use crate::db::sqltext::{error_text, ident, is_retryable};
use crate::db::Db;
use crate::results::copy::SequenceReset;
use crate::units::short_secs;
use sqlx::PgPool;
use std::collections::HashMap;
use tokio_util::sync::CancellationToken;

/// Sequences tied to columns of table `$1`: owned by the column (serial, identity,
/// `OWNED BY`), or named by its default (`default nextval('shared_id')`: a sequence
/// created on its own, perhaps shared by several tables).
const OWNED: &str = "select a.attname::text, s.oid::int8, format('%I.%I', n.nspname, s.relname) \
      from pg_depend d \
      join pg_class s on s.oid = d.objid and s.relkind = 'S' \
      join pg_namespace n on n.oid = s.relnamespace \
      join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid \
     where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass \
       and d.refobjid = $1::int8::oid and d.deptype in ('a', 'i') \
    union \
    select a.attname::text, s.oid::int8, format('%I.%I', n.nspname, s.relname) \
      from pg_attrdef ad \
      join pg_depend d on d.classid = 'pg_attrdef'::regclass and d.objid = ad.oid \
       and d.refclassid = 'pg_class'::regclass \
      join pg_class s on s.oid = d.refobjid and s.relkind = 'S' \
      join pg_namespace n on n.oid = s.relnamespace \
      join pg_attribute a on a.attrelid = ad.adrelid and a.attnum = ad.adnum \
     where ad.adrelid = $1::int8::oid";

/// Sequences owned by columns of table `oid`: column -> (sequence oid, name).
async fn owned(pool: &PgPool, oid: u32) -> Result<HashMap<String, (i64, String)>, sqlx::Error> {
    let rows: Vec<(String, i64, String)> = sqlx::query_as(OWNED)
        .bind(oid as i64)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|(c, o, n)| (c, (o, n))).collect())
}

/// Reset the sequences of every copied table.
pub(crate) async fn reset(
    source: &Db,
    target: &Db,
    specs: &[TableSpec],
) -> Result<Vec<SequenceReset>, sqlx::Error> {
    let mut out = Vec::new();
    let mut from_max: HashMap<i64, i64> = HashMap::new();
    let autos = match source {
        Db::MySql(p) => crate::db::catalog_mysql::auto_increments(p).await?,
        _ => HashMap::new(),
    };
    for spec in specs {
        match target {
            Db::Pg(tp) => reset_pg(source, tp, spec, &mut out, &mut from_max, &autos).await?,
            Db::Sqlite(tp) => reset_sqlite(source, tp, spec, &mut out).await?,
            Db::MySql(_) => return Err(super::not_a_target()),
        }
    }
    Ok(out)
}

async fn reset_pg(
    source: &Db,
    tp: &PgPool,
    spec: &TableSpec,
    out: &mut Vec<SequenceReset>,
    from_max: &mut HashMap<i64, i64>,
    autos: &HashMap<String, (String, u64)>,
) -> Result<(), sqlx::Error> {
    let tseqs = owned(tp, spec.tgt.oid).await?;
    if tseqs.is_empty() {
        return Ok(());
    }
    let sseqs = match source {
        Db::Pg(sp) => owned(sp, spec.src.oid).await?,
        Db::Sqlite(_) | Db::MySql(_) => HashMap::new(),
    };
    for (i, tc) in spec.tgt_cols.iter().enumerate() {
        let Some((seq_oid, seq_name)) = tseqs.get(&tc.name) else {
            continue;
        };
        let src_col = &spec.cols[i].name;
        let from_source = match (source, sseqs.get(src_col)) {
            (Db::Pg(sp), Some((_, sname))) => {
                let state: (i64, bool) =
                    sqlx::query_as(&format!("select last_value, is_called from {sname}"))
                        .fetch_one(sp)
                        .await?;
                Some((state, format!("source sequence {sname}")))
            }
            (Db::MySql(_), _) => match autos.get(&spec.src.name) {
                Some((col, next)) if col == src_col => {
                    let max: Option<i64> = sqlx::query_scalar(&format!(
                        "select max({})::int8 from {}",
                        ident(&tc.name),
                        spec.tgt.sql_name()
                    ))
                    .fetch_one(tp)
                    .await?;
                    let last = ((*next).min(i64::MAX as u64) as i64 - 1).max(max.unwrap_or(0));
                    let state = if last >= 1 { (last, true) } else { (1, false) };
                    Some((state, format!("source AUTO_INCREMENT {next}")))
                }
                _ => None,
            },
            _ => None,
        };
        let (value, is_called, from) = match from_source {
            Some(((v, called), from)) => (Some(v), called, from),
            None => {
                let max: Option<i64> = sqlx::query_scalar(&format!(
                    "select max({})::int8 from {}",
                    ident(&tc.name),
                    spec.tgt.sql_name()
                ))
                .fetch_one(tp)
                .await?;
                // A sequence shared by several tables follows the largest of them.
                let max = match (max, from_max.get(seq_oid)) {
                    (Some(m), Some(&before)) if before > m => {
                        out.push(SequenceReset {
                            table: spec.tgt.qualified_name(),
                            column: tc.name.clone(),
                            sequence: seq_name.clone(),
                            value: Some(before),
                            is_called: true,
                            from: format!("left at {before}: another copied table's maximum"),
                        });
                        continue;
                    }
                    (m, _) => m,
                };
                if let Some(m) = max {
                    from_max.insert(*seq_oid, m);
                }
                (max, true, format!("max({}) on the target", tc.name))
            }
        };
        if let Some(v) = value {
            sqlx::query("select setval($1::int8::oid::regclass, $2, $3)")
                .bind(seq_oid)
                .bind(v)
                .bind(is_called)
                .execute(tp)
                .await?;
        }
        out.push(SequenceReset {
            table: spec.tgt.qualified_name(),
            column: tc.name.clone(),
            sequence: seq_name.clone(),
            value,
            is_called,
            from: if value.is_some() {
                from
            } else {
                "nothing: the table is empty; left as it was".into()
            },
        });
    }
    Ok(())
}

async fn reset_sqlite(
    source: &Db,
    tp: &sqlx::SqlitePool,
    spec: &TableSpec,
    out: &mut Vec<SequenceReset>,
) -> Result<(), sqlx::Error> {
    let Db::Sqlite(sp) = source else {
        return Ok(());
    };
    let has_seq = |p: &sqlx::SqlitePool| {
        let p = p.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from sqlite_master where type = 'table' and name = 'sqlite_sequence'",
            )
            .fetch_one(&p)
            .await
        }
    };
    if has_seq(sp).await? == 0 || has_seq(tp).await? == 0 {
        return Ok(());
    }
    let src: Option<i64> = sqlx::query_scalar("select seq from sqlite_sequence where name = ?")
        .bind(&spec.src.name)
        .fetch_optional(sp)
        .await?;
    let Some(v) = src else {
        return Ok(());
    };
    let autoinc: Option<String> =
        sqlx::query_scalar("select sql from sqlite_master where type = 'table' and name = ?")
            .bind(&spec.tgt.name)
            .fetch_optional(tp)
            .await?;
    if !autoinc.is_some_and(|s| s.to_ascii_uppercase().contains("AUTOINCREMENT")) {
        return Ok(());
    }
    let mut tx = tp.begin().await?;
    let n = sqlx::query("update sqlite_sequence set seq = max(seq, ?) where name = ?")
        .bind(v)
        .bind(&spec.tgt.name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        sqlx::query("insert into sqlite_sequence (name, seq) values (?, ?)")
            .bind(&spec.tgt.name)
            .bind(v)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let column = spec
        .tgt
        .key_columns()
        .first()
        .map(|c| c.name.clone())
        .unwrap_or_else(|| "rowid".into());
    out.push(SequenceReset {
        table: spec.tgt.qualified_name(),
        column,
        sequence: format!("sqlite_sequence[{}]", spec.tgt.name),
        value: Some(v),
        is_called: true,
        from: "the source's sqlite_sequence".into(),
    });
    Ok(())
}

/// Reset sequences, retrying when a connection drops (setval is idempotent).
pub(crate) async fn reset_all(
    source: &Db,
    target: &Db,
    specs: &[TableSpec],
    info: &InfoFn,
    cancel: &CancellationToken,
) -> Result<Vec<SequenceReset>, CopyError> {
    let mut attempt = 1;
    loop {
        match reset(source, target, specs).await {
            Ok(s) => {
                for r in &s {
                    info(match r.value {
                        Some(v) => format!(
                            "sequence {} of {}.{} set to {v}{} (from {})",
                            r.sequence,
                            r.table,
                            r.column,
                            if r.is_called { "" } else { " (not yet called)" },
                            r.from
                        ),
                        None => format!(
                            "sequence {} of {}.{}: {}",
                            r.sequence, r.table, r.column, r.from
                        ),
                    });
                }
                return Ok(s);
            }
            Err(e) if is_retryable(&e) && attempt < MAX_ATTEMPTS => {
                let wait = backoff(attempt);
                info(format!(
                    "resetting sequences: {}; retrying in {}",
                    error_text(&e),
                    short_secs(wait)
                ));
                attempt += 1;
                tokio::select! {
                    _ = cancel.cancelled() => return Err(CopyError::Cancelled),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Err(e) => return Err(CopyError::sql("resetting sequences", &e)),
        }
    }
}
