//! `sql` steps and sql rollbacks: run (possibly multi-statement) SQL on a named
//! connection, report rows affected, and compare the first value returned with `expect`.
//!
//! The SQL is sent as-is (`sqlx::raw_sql`, the simple query protocol), so scripts with
//! several statements work and PostgreSQL returns every value as text, which keeps
//! decoding robust for types ferry has no Rust type for (numeric, uuid, ...).
//!
//! A PostgreSQL statement that is stopped (timeout, abort, Ctrl-C) is cancelled on
//! the server with `pg_cancel_backend`, a MySQL one with `KILL QUERY`: dropping the
//! client's future alone would leave it running there — holding its locks, and
//! beside any retry. MySQL's text protocol also returns every value as text.

use super::{conn_outcome, ExecCtx};
use crate::engine::connections::Db;
use crate::runbook::Expect;
use crate::vocab::Outcome;
use futures::stream::{BoxStream, StreamExt};
use sqlx::{Column, Connection, Either, Row, TypeInfo, ValueRef};
use std::fmt;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a server-side cancel may take before ferry gives up on it.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// At most this many "N rows affected" lines per step; the rest are summed up.
const MAX_AFFECTED_LINES: usize = 20;

/// A value decoded from the first column of the first row.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Text(s) => f.write_str(s),
        }
    }
}

impl Value {
    /// As a number, when it is one (or is text that reads as one).
    fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(x) => Some(*x),
            Value::Text(s) => s.trim().parse().ok(),
            Value::Null | Value::Bool(_) => None,
        }
    }

    fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Int(0) => Some(false),
            Value::Int(1) => Some(true),
            Value::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                "t" | "true" => Some(true),
                "f" | "false" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// True, or non-zero: what a `wait` condition query must return.
    pub(super) fn is_truthy(&self) -> bool {
        self.as_bool().unwrap_or(false) || self.as_f64().is_some_and(|x| x != 0.0)
    }

    /// Whether this value satisfies `expect`.
    fn matches(&self, expect: &Expect) -> bool {
        match expect {
            Expect::Integer(i) => match self {
                Value::Int(v) => v == i,
                // numeric and bigint text compare exactly: as f64, 2^53 + 1 == 2^53
                Value::Text(t) => exact_integer(t) == Some(i128::from(*i)),
                other => other
                    .as_f64()
                    .is_some_and(|x| x.fract() == 0.0 && x == *i as f64),
            },
            Expect::Float(f) => self.as_f64().is_some_and(|x| (x - f).abs() < 1e-9),
            Expect::Bool(b) => self.as_bool() == Some(*b),
            Expect::Text(t) => self.to_string() == *t,
        }
    }

    /// For "expected X, got Y": text quoted like [`Expect`]'s display.
    fn describe(&self) -> String {
        match self {
            Value::Text(s) => format!("{s:?}"),
            other => other.to_string(),
        }
    }
}

/// `"42"`, `"-7"`, `"1.000"` as an exact integer; `None` for anything else.
fn exact_integer(text: &str) -> Option<i128> {
    let t = text.trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if !frac.bytes().all(|b| b == b'0') {
        return None;
    }
    whole.parse().ok()
}

/// What running a script produced.
#[derive(Debug, Default)]
pub(super) struct Results {
    /// First column of the first row returned by any statement.
    pub first: Option<Value>,
    /// Rows affected, per statement.
    pub affected: Vec<u64>,
}

/// Run `sql` on `db`, collecting the first value and the per-statement row counts.
/// `None` when `cancel` fired first; a PostgreSQL statement is then cancelled on
/// the server too.
pub(super) async fn query(
    db: &Db,
    sql: &str,
    cancel: &CancellationToken,
) -> Option<Result<Results, sqlx::Error>> {
    match db {
        Db::Pg(pool) => {
            let conn = tokio::select! {
                biased;
                _ = cancel.cancelled() => return None,
                c = pool.acquire() => c,
            };
            let mut conn = match conn {
                Ok(c) => c,
                Err(e) => return Some(Err(e)),
            };
            let pid: i32 = match sqlx::query_scalar("select pg_backend_pid()")
                .fetch_one(&mut *conn)
                .await
            {
                Ok(p) => p,
                Err(e) => return Some(Err(e)),
            };
            let done = {
                let work = drain(
                    sqlx::raw_sql(sql).fetch_many(&mut *conn),
                    |r| r.rows_affected(),
                    decode_pg,
                );
                tokio::pin!(work);
                tokio::select! {
                    biased;
                    r = &mut work => Some(r),
                    _ = cancel.cancelled() => None,
                }
            };
            if done.is_none() {
                cancel_backend(pool, pid).await;
                // mid-statement: never hand this connection to anyone again
                let _ = tokio::time::timeout(CANCEL_WAIT, conn.close()).await;
            }
            done
        }
        Db::MySql(pool) => {
            let conn = tokio::select! {
                biased;
                _ = cancel.cancelled() => return None,
                c = pool.acquire() => c,
            };
            let mut conn = match conn {
                Ok(c) => c,
                Err(e) => return Some(Err(e)),
            };
            let id: u64 = match sqlx::query_scalar("select connection_id()")
                .fetch_one(&mut *conn)
                .await
            {
                Ok(p) => p,
                Err(e) => return Some(Err(e)),
            };
            let done = {
                let work = drain(
                    sqlx::raw_sql(sql).fetch_many(&mut *conn),
                    |r| r.rows_affected(),
                    decode_mysql,
                );
                tokio::pin!(work);
                tokio::select! {
                    biased;
                    r = &mut work => Some(r),
                    _ = cancel.cancelled() => None,
                }
            };
            if done.is_none() {
                crate::db::mysql::kill_query(&pool.connect_options(), id).await;
                // mid-statement: never hand this connection to anyone again
                let _ = tokio::time::timeout(CANCEL_WAIT, conn.close()).await;
            }
            done
        }
        Db::Sqlite(pool) => {
            let stream = sqlx::raw_sql(sql).fetch_many(pool);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => None,
                r = drain(stream, |r| r.rows_affected(), decode_sqlite) => Some(r),
            }
        }
    }
}

/// Ask the server to cancel what backend `pid` is running, over a connection of its own
/// (the pool may be full). Best effort: the statement may have ended meanwhile.
async fn cancel_backend(pool: &sqlx::PgPool, pid: i32) {
    let opts = pool.connect_options();
    let cancel = async {
        let mut c = sqlx::PgConnection::connect_with(&opts).await?;
        let r = sqlx::query("select pg_cancel_backend($1)")
            .bind(pid)
            .execute(&mut c)
            .await;
        let _ = c.close().await;
        r.map(|_| ())
    };
    match tokio::time::timeout(CANCEL_WAIT, cancel).await {
        Ok(Ok(())) => tracing::info!(pid, "cancelled the statement on the server"),
        Ok(Err(e)) => {
            tracing::warn!(pid, error = %e, "cannot cancel the statement on the server")
        }
        Err(_) => tracing::warn!(pid, "cancelling the statement on the server timed out"),
    }
}

async fn drain<Q, R>(
    mut stream: BoxStream<'_, Result<Either<Q, R>, sqlx::Error>>,
    affected: impl Fn(&Q) -> u64,
    decode: impl Fn(&R) -> Value,
) -> Result<Results, sqlx::Error> {
    let mut out = Results::default();
    while let Some(item) = stream.next().await {
        match item? {
            Either::Left(result) => out.affected.push(affected(&result)),
            Either::Right(row) => {
                if out.first.is_none() {
                    out.first = Some(decode(&row));
                }
            }
        }
    }
    Ok(out)
}

fn decode_pg(row: &sqlx::postgres::PgRow) -> Value {
    if row.columns().is_empty() || row.try_get_raw(0).map_or(true, |v| v.is_null()) {
        return Value::Null;
    }
    let ty = row.columns()[0].type_info().name().to_string();
    let typed = match ty.as_str() {
        "BOOL" => row.try_get::<bool, _>(0).ok().map(Value::Bool),
        "INT2" => row.try_get::<i16, _>(0).ok().map(|v| Value::Int(v.into())),
        "INT4" => row.try_get::<i32, _>(0).ok().map(|v| Value::Int(v.into())),
        "INT8" => row.try_get::<i64, _>(0).ok().map(Value::Int),
        "FLOAT4" => row
            .try_get::<f32, _>(0)
            .ok()
            .map(|v| Value::Float(v.into())),
        "FLOAT8" => row.try_get::<f64, _>(0).ok().map(Value::Float),
        _ => None,
    };
    // Anything else (numeric, text, uuid, timestamps...) arrives as text.
    typed
        .or_else(|| row.try_get_unchecked::<String, _>(0).ok().map(Value::Text))
        .unwrap_or_else(|| Value::Text(format!("<{ty} value>")))
}

fn decode_mysql(row: &sqlx::mysql::MySqlRow) -> Value {
    if row.columns().is_empty() || row.try_get_raw(0).map_or(true, |v| v.is_null()) {
        return Value::Null;
    }
    let ty = row.columns()[0].type_info().name().to_string();
    let typed = match ty.as_str() {
        "BOOLEAN" => row.try_get::<bool, _>(0).ok().map(Value::Bool),
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" => {
            row.try_get_unchecked::<i64, _>(0).ok().map(Value::Int)
        }
        "FLOAT" | "DOUBLE" => row.try_get_unchecked::<f64, _>(0).ok().map(Value::Float),
        // unsigned beyond i64, DECIMAL, dates, text...: as text, exactly as sent
        _ => None,
    };
    typed
        .or_else(|| row.try_get_unchecked::<String, _>(0).ok().map(Value::Text))
        .or_else(|| {
            row.try_get_unchecked::<Vec<u8>, _>(0)
                .ok()
                .map(|b| match String::from_utf8(b) {
                    Ok(s) => Value::Text(s),
                    Err(e) => Value::Text(format!("<{} bytes>", e.as_bytes().len())),
                })
        })
        .unwrap_or_else(|| Value::Text(format!("<{ty} value>")))
}

fn decode_sqlite(row: &sqlx::sqlite::SqliteRow) -> Value {
    let Ok(raw) = row.try_get_raw(0) else {
        return Value::Null;
    };
    if raw.is_null() {
        return Value::Null;
    }
    let ty = raw.type_info().name().to_string();
    let typed = match ty.as_str() {
        "BOOLEAN" => row.try_get::<bool, _>(0).ok().map(Value::Bool),
        "INTEGER" => row.try_get::<i64, _>(0).ok().map(Value::Int),
        "REAL" => row.try_get::<f64, _>(0).ok().map(Value::Float),
        "TEXT" => row.try_get::<String, _>(0).ok().map(Value::Text),
        "BLOB" => row
            .try_get::<Vec<u8>, _>(0)
            .ok()
            .map(|b| Value::Text(format!("<{} bytes>", b.len()))),
        _ => None,
    };
    typed
        .or_else(|| row.try_get_unchecked::<i64, _>(0).ok().map(Value::Int))
        .or_else(|| row.try_get_unchecked::<f64, _>(0).ok().map(Value::Float))
        .or_else(|| row.try_get_unchecked::<String, _>(0).ok().map(Value::Text))
        .unwrap_or_else(|| Value::Text(format!("<{ty} value>")))
}

/// A database error as text: the server's own message when there is one.
pub(super) fn error_text(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("{} (SQLSTATE {code})", db.message()),
            None => db.message().to_string(),
        },
        other => other.to_string(),
    }
}

/// Errors meaning the server went away mid-query, rather than that the SQL is wrong.
pub(super) fn is_connection_error(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
    )
}

/// Run a `sql` step (or rollback) on `connection`.
pub(super) async fn run(
    ctx: &ExecCtx,
    connection: &str,
    sql: &str,
    expect: Option<&Expect>,
) -> Outcome {
    let db = tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => return Outcome::Cancelled,
        db = ctx.conns.get(connection) => db,
    };
    let db = match db {
        Ok(db) => db,
        Err(e) => return conn_outcome(e),
    };
    match query(&db, sql, &ctx.cancel).await {
        None => Outcome::Cancelled,
        Some(Ok(results)) => judge(ctx, &results, expect),
        Some(Err(e)) if is_connection_error(&e) => Outcome::Unreachable {
            error: ctx
                .redactor
                .redact(&format!("connection `{connection}`: {}", error_text(&e))),
        },
        Some(Err(e)) => ctx.failed(error_text(&e)),
    }
}

/// Report what the script did and decide the outcome.
fn judge(ctx: &ExecCtx, results: &Results, expect: Option<&Expect>) -> Outcome {
    for n in results.affected.iter().take(MAX_AFFECTED_LINES) {
        ctx.info(rows_affected(*n));
    }
    if results.affected.len() > MAX_AFFECTED_LINES {
        let rest = &results.affected[MAX_AFFECTED_LINES..];
        ctx.info(format!(
            "{} more statements, {} in all",
            rest.len(),
            rows_affected(rest.iter().sum())
        ));
    }
    if let Some(v) = &results.first {
        ctx.info(format!("first value: {v}"));
    }
    match (expect, &results.first) {
        (Some(e), None) => ctx.failed(format!("expected {e}, got no rows")),
        (Some(e), Some(v)) if !v.matches(e) => {
            ctx.failed(format!("expected {e}, got {}", v.describe()))
        }
        (Some(e), Some(_)) => Outcome::Succeeded {
            summary: format!("got {e} as expected"),
        },
        (None, Some(v)) => Outcome::Succeeded {
            summary: ctx.redactor.redact(&format!("first value: {v}")),
        },
        (None, None) => Outcome::Succeeded {
            summary: format!(
                "{} statement{}, {}",
                results.affected.len(),
                if results.affected.len() == 1 { "" } else { "s" },
                rows_affected(results.affected.iter().sum())
            ),
        },
    }
}

fn rows_affected(n: u64) -> String {
    if n == 1 {
        "1 row affected".to_string()
    } else {
        format!("{n} rows affected")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations() {
        assert!(Value::Int(1).matches(&Expect::Integer(1)));
        assert!(Value::Text("1.000".into()).matches(&Expect::Integer(1)));
        assert!(!Value::Text("1.5".into()).matches(&Expect::Integer(1)));
        // exact, beyond what an f64 holds
        assert!(!Value::Text("9007199254740993".into()).matches(&Expect::Integer(9007199254740992)));
        assert!(
            Value::Text("9007199254740993.00".into()).matches(&Expect::Integer(9007199254740993))
        );
        assert!(Value::Text(" -12 ".into()).matches(&Expect::Integer(-12)));
        assert!(Value::Float(0.1 + 0.2).matches(&Expect::Float(0.3)));
        assert!(Value::Int(1).matches(&Expect::Bool(true)));
        assert!(Value::Text("f".into()).matches(&Expect::Bool(false)));
        assert!(!Value::Int(2).matches(&Expect::Bool(true)));
        assert!(Value::Text("on".into()).matches(&Expect::Text("on".into())));
        assert!(!Value::Null.matches(&Expect::Integer(0)));
    }

    #[test]
    fn truthiness() {
        assert!(Value::Bool(true).is_truthy());
        assert!(Value::Int(3).is_truthy());
        assert!(Value::Text("t".into()).is_truthy());
        assert!(!Value::Text("0".into()).is_truthy());
        assert!(!Value::Null.is_truthy());
        assert!(!Value::Bool(false).is_truthy());
    }
}
