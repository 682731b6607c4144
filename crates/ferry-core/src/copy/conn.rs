//! Dedicated connections for the copy, opened from a pool's connect options (the
//! engine's pools are small and shared; a copy needs `parallel` connections per side
//! and must be able to throw a broken one away and open another).
//!
//! Every session is set up so that text crosses between servers exactly: ISO dates,
//! UTC, `postgres` interval style, the C monetary locale and float output that round
//! trips. The source session is read-only and reads with `row_security = off` (a
//! policy that would hide rows is an error, never a partial copy); the target session loads with
//! `session_replication_role = replica` when that is permitted and asked for, and on
//! SQLite with foreign keys off.

use crate::db::conn::{connect_pg, connect_sqlite};
use crate::db::Db;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Executor};
use std::time::Duration;

/// How long a SQLite writer waits for a lock held by someone else.
const SQLITE_BUSY: Duration = Duration::from_secs(30);

/// Settings that make text output of one server parse as the same value on another.
const PG_FORMAT: &str = "set DateStyle = 'ISO, YMD'; set IntervalStyle = 'postgres'; \
     set TimeZone = 'UTC'; set extra_float_digits = 3; set lc_monetary = 'C'; \
     set bytea_output = 'hex'";

pub(crate) enum Conn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
    /// A MySQL source session ([`crate::db::mysql::COPY_SESSION`]).
    MySql(sqlx::mysql::MySqlConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Source,
    Target { replica: bool },
}

/// Open a dedicated connection to `db` for `role`.
pub(crate) async fn open(db: &Db, role: Role) -> Result<Conn, sqlx::Error> {
    match db {
        Db::Pg(pool) => {
            let opts = (*pool.connect_options())
                .clone()
                .application_name("ferry copy");
            let mut c = connect_pg(&opts).await?;
            c.execute(sqlx::raw_sql(PG_FORMAT)).await?;
            match role {
                Role::Source => {
                    // row_security off: a table whose row-level security policy would
                    // hide rows from this role fails instead of being copied in part.
                    c.execute(sqlx::raw_sql(
                        "set default_transaction_read_only = on; set row_security = off",
                    ))
                    .await?;
                }
                Role::Target { replica: true } => {
                    c.execute(sqlx::raw_sql("set session_replication_role = replica"))
                        .await?;
                }
                Role::Target { replica: false } => {}
            }
            Ok(Conn::Pg(c))
        }
        Db::Sqlite(pool) => {
            let mut opts = (*pool.connect_options()).clone();
            if let Role::Target { .. } = role {
                opts = opts.foreign_keys(false).busy_timeout(SQLITE_BUSY);
            }
            let mut c = connect_sqlite(&opts).await?;
            if role == Role::Source {
                c.execute(sqlx::raw_sql("pragma query_only = on")).await?;
            }
            Ok(Conn::Sqlite(c))
        }
        Db::MySql(pool) => match role {
            Role::Source => Ok(Conn::MySql(
                crate::db::mysql::copy_session(&pool.connect_options()).await?,
            )),
            Role::Target { .. } => Err(super::not_a_target()),
        },
    }
}

/// Whether this session may load with `session_replication_role = replica`
/// (superuser, or granted the right to set it).
pub(crate) async fn replica_permitted(db: &Db) -> Result<bool, sqlx::Error> {
    let Db::Pg(pool) = db else {
        return Ok(true);
    };
    let opts = (*pool.connect_options()).clone();
    let mut c = connect_pg(&opts).await?;
    let ok = match c
        .execute(sqlx::raw_sql("set session_replication_role = replica"))
        .await
    {
        Ok(_) => true,
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => false,
        Err(e) => return Err(e),
    };
    let _ = c.close().await;
    Ok(ok)
}

/// Whether `a` and `b` are the same database (copying a database onto itself would
/// delete what it reads). PostgreSQL: a session opened on `b` is visible in
/// `pg_stat_activity` of `a` with the same start time and database. SQLite: the
/// same file.
pub(crate) async fn same_database(a: &Db, b: &Db) -> Result<bool, sqlx::Error> {
    match (a, b) {
        (Db::Pg(pa), Db::Pg(pb)) => {
            let mut cb = pb.acquire().await?;
            let (pid, start, db): (i32, String, String) = sqlx::query_as(
                "select pg_backend_pid(), backend_start::text, current_database()::text \
                   from pg_stat_activity where pid = pg_backend_pid()",
            )
            .fetch_one(&mut *cb)
            .await?;
            let seen: Option<String> = sqlx::query_scalar(
                "select datname::text from pg_stat_activity where pid = $1 and backend_start::text = $2",
            )
            .bind(pid)
            .bind(&start)
            .fetch_optional(pa)
            .await?;
            let here: String = sqlx::query_scalar("select current_database()::text")
                .fetch_one(pa)
                .await?;
            Ok(seen.is_some_and(|d| d == db && d == here))
        }
        (Db::Sqlite(pa), Db::Sqlite(pb)) => {
            let fa = sqlite_file(pa).await?;
            let fb = sqlite_file(pb).await?;
            Ok(!fa.is_empty() && fa == fb)
        }
        _ => Ok(false),
    }
}

async fn sqlite_file(pool: &sqlx::SqlitePool) -> Result<String, sqlx::Error> {
    let file: String =
        sqlx::query_scalar("select file from pragma_database_list where name = 'main'")
            .fetch_one(pool)
            .await?;
    Ok(std::fs::canonicalize(&file)
        .map(|p| p.display().to_string())
        .unwrap_or(file))
}
