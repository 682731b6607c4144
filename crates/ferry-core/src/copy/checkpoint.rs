//! Checkpoints and the stored plan, on the target: the truth about what a copy step
//! has done. A chunk's rows and its checkpoint row commit in one target transaction,
//! so a chunk is either wholly copied and checkpointed or not at all.
//!
//! PostgreSQL: schema `ferry`, tables `ferry.copy_checkpoint(step, tbl, chunk_lo,
//! chunk_hi, rows, bytes, done_at)` (primary key `(step, tbl, chunk_lo)`) and
//! `ferry.copy_plan` (the chunk boundaries chosen by the first run, so a resume cuts
//! the tables exactly as before even if the source changed). SQLite: tables
//! `ferry_copy_checkpoint` and `ferry_copy_plan` in the target file. Which run owns
//! them is in [`super::owner`].

use crate::db::plan::{Chunk, TablePlan};
use crate::db::Db;
use crate::results::copy::Method;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Executor, Row};
use std::collections::HashMap;

const PG_SETUP: &str = "create schema if not exists ferry; \
    create table if not exists ferry.copy_checkpoint (step text not null, tbl text not null, \
      chunk_lo text not null, chunk_hi text not null, rows bigint, bytes bigint, done_at timestamptz, \
      primary key (step, tbl, chunk_lo)); \
    create table if not exists ferry.copy_plan (step text not null, tbl text not null, ord int not null, \
      chunk_lo text not null, chunk_hi text not null, est_rows bigint, method text not null, \
      key_cols text not null, primary key (step, tbl, ord)); \
    create table if not exists ferry.copy_run (step text primary key, run text not null, \
      claimed_at timestamptz); \
    create table if not exists ferry.copy_mapped (step text not null, tbl text not null, \
      chunk_lo text not null, col text not null, what text not null, n bigint not null, \
      primary key (step, tbl, chunk_lo, col, what))";

const SQLITE_SETUP: &str = "create table if not exists ferry_copy_checkpoint (step text not null, \
      tbl text not null, chunk_lo text not null, chunk_hi text not null, rows integer, bytes integer, \
      done_at text, primary key (step, tbl, chunk_lo)); \
    create table if not exists ferry_copy_plan (step text not null, tbl text not null, ord integer not null, \
      chunk_lo text not null, chunk_hi text not null, est_rows integer, method text not null, \
      key_cols text not null, primary key (step, tbl, ord)); \
    create table if not exists ferry_copy_run (step text primary key, run text not null, \
      claimed_at text)";

/// A checkpointed chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub hi: String,
    pub rows: u64,
    pub bytes: u64,
}

/// What a step has stored on the target.
#[derive(Debug, Default)]
pub struct Stored {
    pub plans: HashMap<String, TablePlan>,
    /// By `(tbl, chunk_lo)`.
    pub done: HashMap<(String, String), Done>,
}

impl Stored {
    /// No plan and no checkpoint: the step has never started on this target.
    pub fn is_first_run(&self) -> bool {
        self.plans.is_empty() && self.done.is_empty()
    }

    /// The checkpoint of exactly this chunk (same lower and upper bound), if any.
    pub fn done_chunk(&self, tbl: &str, chunk: &Chunk) -> Option<&Done> {
        self.done
            .get(&(tbl.to_string(), chunk.lo_text()))
            .filter(|d| d.hi == chunk.hi_text())
    }
}

/// Create the checkpoint and plan tables on the target if they are missing.
pub async fn ensure(db: &Db) -> Result<(), sqlx::Error> {
    match db {
        Db::Pg(p) => p.execute(sqlx::raw_sql(PG_SETUP)).await.map(|_| ()),
        Db::Sqlite(p) => p.execute(sqlx::raw_sql(SQLITE_SETUP)).await.map(|_| ()),
        Db::MySql(_) => Err(super::not_a_target()),
    }
}

fn names(db: &Db) -> (&'static str, &'static str) {
    match db {
        Db::Pg(_) => ("ferry.copy_checkpoint", "ferry.copy_plan"),
        Db::Sqlite(_) | Db::MySql(_) => ("ferry_copy_checkpoint", "ferry_copy_plan"),
    }
}

/// Load the plan and checkpoints of `step`.
pub async fn load(db: &Db, step: &str) -> Result<Stored, String> {
    let (cp, pl) = names(db);
    let plan_sql = format!(
        "select tbl, chunk_lo, chunk_hi, coalesce(est_rows, 0), method, key_cols from {pl} \
          where step = {} order by tbl, ord",
        placeholder(db, 1)
    );
    let done_sql = format!(
        "select tbl, chunk_lo, chunk_hi, coalesce(rows, 0), coalesce(bytes, 0) from {cp} where step = {}",
        placeholder(db, 1)
    );
    let err = |e: sqlx::Error| crate::db::sqltext::error_text(&e);
    let (plan_rows, done_rows): (Vec<Vec<String>>, Vec<Vec<String>>) = match db {
        Db::Pg(p) => {
            let a = sqlx::query(&plan_sql)
                .bind(step)
                .fetch_all(p)
                .await
                .map_err(err)?;
            let b = sqlx::query(&done_sql)
                .bind(step)
                .fetch_all(p)
                .await
                .map_err(err)?;
            (texts(&a, 6)?, texts(&b, 5)?)
        }
        Db::Sqlite(p) => {
            let a = sqlx::query(&plan_sql)
                .bind(step)
                .fetch_all(p)
                .await
                .map_err(err)?;
            let b = sqlx::query(&done_sql)
                .bind(step)
                .fetch_all(p)
                .await
                .map_err(err)?;
            (texts(&a, 6)?, texts(&b, 5)?)
        }
        Db::MySql(_) => return Err(super::not_a_target().to_string()),
    };
    let mut stored = Stored::default();
    for r in plan_rows {
        let [tbl, lo, hi, est, method, key] = <[String; 6]>::try_from(r)
            .map_err(|_| "stored plan: wrong column count".to_string())?;
        let method: Method = serde_json::from_str(&format!("\"{method}\""))
            .map_err(|e| format!("stored plan of {tbl}: method {method:?}: {e}"))?;
        let key: Vec<String> = serde_json::from_str(&key)
            .map_err(|e| format!("stored plan of {tbl}: key {key:?}: {e}"))?;
        let entry = stored
            .plans
            .entry(tbl.clone())
            .or_insert_with(|| TablePlan {
                table: tbl.clone(),
                key,
                method,
                chunks: Vec::new(),
            });
        entry.chunks.push(Chunk {
            lo: crate::db::plan::parse_bound(&lo)
                .map_err(|e| format!("stored plan of {tbl}: {e}"))?,
            hi: crate::db::plan::parse_bound(&hi)
                .map_err(|e| format!("stored plan of {tbl}: {e}"))?,
            est_rows: est.parse().unwrap_or(0),
        });
    }
    for r in done_rows {
        let [tbl, lo, hi, rows, bytes] = <[String; 5]>::try_from(r)
            .map_err(|_| "checkpoints: wrong column count".to_string())?;
        stored.done.insert(
            (tbl, lo),
            Done {
                hi,
                rows: rows.parse().unwrap_or(0),
                bytes: bytes.parse().unwrap_or(0),
            },
        );
    }
    Ok(stored)
}

pub(super) fn placeholder(db: &Db, n: usize) -> String {
    match db {
        Db::Pg(_) => format!("${n}"),
        Db::Sqlite(_) | Db::MySql(_) => "?".into(),
    }
}

/// Every column of every row as text (integers formatted).
fn texts<R: Row>(rows: &[R], n: usize) -> Result<Vec<Vec<String>>, String>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    rows.iter()
        .map(|r| {
            (0..n)
                .map(|i| {
                    r.try_get::<String, _>(i)
                        .or_else(|_| r.try_get::<i64, _>(i).map(|v| v.to_string()))
                        .map_err(|e| format!("reading checkpoints: {e}"))
                })
                .collect()
        })
        .collect()
}

/// One row of the plan table.
struct PlanRow {
    tbl: String,
    ord: i32,
    lo: String,
    hi: String,
    est: i64,
    method: String,
    key: String,
}

/// The rows of `plans` for the plan table.
fn plan_rows(plans: &[TablePlan]) -> Vec<PlanRow> {
    let mut out = Vec::new();
    for p in plans {
        let method = serde_json::to_string(&p.method)
            .unwrap_or_default()
            .trim_matches('"')
            .to_string();
        let key = serde_json::to_string(&p.key).unwrap_or_default();
        for (i, c) in p.chunks.iter().enumerate() {
            out.push(PlanRow {
                tbl: p.table.clone(),
                ord: i as i32,
                lo: c.lo_text(),
                hi: c.hi_text(),
                est: c.est_rows.min(i64::MAX as u64) as i64,
                method: method.clone(),
                key: key.clone(),
            });
        }
    }
    out
}

/// Record the plans of newly planned tables, in one transaction with, on a first run
/// with `truncate`, emptying the target tables (`truncate` holds their quoted names)
/// and clearing whatever the step had stored.
pub async fn begin_step(
    db: &Db,
    step: &str,
    truncate: &[String],
    plans: &[TablePlan],
) -> Result<(), sqlx::Error> {
    let rows = plan_rows(plans);
    match db {
        Db::Pg(pool) => {
            let mut tx = pool.begin().await?;
            if !truncate.is_empty() {
                sqlx::query(&format!("truncate {}", truncate.join(", ")))
                    .execute(&mut *tx)
                    .await?;
                for t in [
                    "ferry.copy_checkpoint",
                    "ferry.copy_plan",
                    "ferry.copy_mapped",
                ] {
                    sqlx::query(&format!("delete from {t} where step = $1"))
                        .bind(step)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for batch in rows.chunks(5000) {
                let col =
                    |f: &dyn Fn(&PlanRow) -> String| batch.iter().map(f).collect::<Vec<String>>();
                sqlx::query(
                    "insert into ferry.copy_plan (step, tbl, ord, chunk_lo, chunk_hi, est_rows, method, key_cols) \
                     select $1, t, o, l, h, e, m, k from unnest($2::text[], $3::int[], $4::text[], $5::text[], \
                       $6::int8[], $7::text[], $8::text[]) as u(t, o, l, h, e, m, k)",
                )
                .bind(step)
                .bind(col(&|r| r.tbl.clone()))
                .bind(batch.iter().map(|r| r.ord).collect::<Vec<i32>>())
                .bind(col(&|r| r.lo.clone()))
                .bind(col(&|r| r.hi.clone()))
                .bind(batch.iter().map(|r| r.est).collect::<Vec<i64>>())
                .bind(col(&|r| r.method.clone()))
                .bind(col(&|r| r.key.clone()))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        }
        Db::Sqlite(_) => {
            let super::conn::Conn::Sqlite(mut c) =
                super::conn::open(db, super::conn::Role::Target { replica: true }).await?
            else {
                return Err(sqlx::Error::Protocol("expected a SQLite connection".into()));
            };
            let mut tx = sqlx::Connection::begin(&mut c).await?;
            if !truncate.is_empty() {
                for t in truncate {
                    sqlx::query(&format!("delete from {t}"))
                        .execute(&mut *tx)
                        .await?;
                }
                for t in ["ferry_copy_checkpoint", "ferry_copy_plan"] {
                    sqlx::query(&format!("delete from {t} where step = ?"))
                        .bind(step)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for r in rows {
                sqlx::query(
                    "insert into ferry_copy_plan (step, tbl, ord, chunk_lo, chunk_hi, est_rows, method, key_cols) \
                     values (?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(step)
                .bind(r.tbl)
                .bind(r.ord)
                .bind(r.lo)
                .bind(r.hi)
                .bind(r.est)
                .bind(r.method)
                .bind(r.key)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        }
        Db::MySql(_) => Err(super::not_a_target()),
    }
}

/// Record, inside the chunk's transaction, how many values of column `col` the
/// runbook's mapping changed (`what`: e.g. `zero date → NULL`), so that the report
/// counts them exactly once whatever restarts happen.
pub async fn pg_mapped(
    c: &mut PgConnection,
    step: &str,
    tbl: &str,
    chunk: &Chunk,
    col: &str,
    what: &str,
    n: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into ferry.copy_mapped (step, tbl, chunk_lo, col, what, n) values ($1, $2, $3, $4, $5, $6) \
         on conflict (step, tbl, chunk_lo, col, what) do update set n = excluded.n",
    )
    .bind(step)
    .bind(tbl)
    .bind(chunk.lo_text())
    .bind(col)
    .bind(what)
    .bind(n.min(i64::MAX as u64) as i64)
    .execute(c)
    .await
    .map(|_| ())
}

/// Every mapped-value count of `step`, summed per (table, column, what).
pub async fn pg_mapped_totals(
    pool: &sqlx::PgPool,
    step: &str,
) -> Result<Vec<(String, String, String, u64)>, sqlx::Error> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "select tbl, col, what, sum(n)::int8 from ferry.copy_mapped where step = $1 \
          group by tbl, col, what order by tbl, col, what",
    )
    .bind(step)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(t, c, w, n)| (t, c, w, n.max(0) as u64))
        .collect())
}

/// Rows and bytes of this chunk's checkpoint, read inside the chunk's transaction.
pub async fn pg_done(
    c: &mut PgConnection,
    step: &str,
    tbl: &str,
    chunk: &Chunk,
) -> Result<Option<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "select coalesce(rows, 0), coalesce(bytes, 0) from ferry.copy_checkpoint \
          where step = $1 and tbl = $2 and chunk_lo = $3 and chunk_hi = $4",
    )
    .bind(step)
    .bind(tbl)
    .bind(chunk.lo_text())
    .bind(chunk.hi_text())
    .fetch_optional(&mut *c)
    .await
}

/// Write this chunk's checkpoint inside the chunk's transaction. A checkpoint left
/// for the same lower bound by an older plan is replaced.
pub async fn pg_mark(
    c: &mut PgConnection,
    step: &str,
    tbl: &str,
    chunk: &Chunk,
    rows: u64,
    bytes: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into ferry.copy_checkpoint (step, tbl, chunk_lo, chunk_hi, rows, bytes, done_at) \
         values ($1, $2, $3, $4, $5, $6, now()) on conflict (step, tbl, chunk_lo) do update \
         set chunk_hi = excluded.chunk_hi, rows = excluded.rows, bytes = excluded.bytes, done_at = excluded.done_at",
    )
    .bind(step)
    .bind(tbl)
    .bind(chunk.lo_text())
    .bind(chunk.hi_text())
    .bind(rows as i64)
    .bind(bytes as i64)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

pub async fn sqlite_done(
    c: &mut SqliteConnection,
    step: &str,
    tbl: &str,
    chunk: &Chunk,
) -> Result<Option<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "select coalesce(rows, 0), coalesce(bytes, 0) from ferry_copy_checkpoint \
          where step = ? and tbl = ? and chunk_lo = ? and chunk_hi = ?",
    )
    .bind(step)
    .bind(tbl)
    .bind(chunk.lo_text())
    .bind(chunk.hi_text())
    .fetch_optional(&mut *c)
    .await
}

pub async fn sqlite_mark(
    c: &mut SqliteConnection,
    step: &str,
    tbl: &str,
    chunk: &Chunk,
    rows: u64,
    bytes: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert or replace into ferry_copy_checkpoint (step, tbl, chunk_lo, chunk_hi, rows, bytes, done_at) \
         values (?, ?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
    )
    .bind(step)
    .bind(tbl)
    .bind(chunk.lo_text())
    .bind(chunk.hi_text())
    .bind(rows as i64)
    .bind(bytes as i64)
    .execute(&mut *c)
    .await
    .map(|_| ())
}
