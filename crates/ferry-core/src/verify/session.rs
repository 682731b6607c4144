//! Read-only sessions on one side of a comparison.
//!
//! Each side gets a few dedicated connections, opened from its pool's connect options
//! (the engine's pools stay free for monitors and other steps), at most the pool's
//! size and never more than [`MAX_CONNS`]. Nothing is ever written:
//! - PostgreSQL: every connection runs one `REPEATABLE READ READ ONLY` transaction
//!   for the whole verification, and they all share one snapshot
//!   (`pg_export_snapshot()` on the first, `SET TRANSACTION SNAPSHOT` on the others),
//!   so counts, checksums and samples of a side all see the same data, on a primary,
//!   a standby or a restored snapshot alike. The session settings fix every text form
//!   that depends on the server rather than on the data: `TimeZone = 'UTC'`,
//!   `DateStyle = 'ISO, YMD'`, `IntervalStyle = 'postgres'`, `extra_float_digits = 3`,
//!   `bytea_output = 'hex'`, `lc_monetary = 'C'`; JIT is off (it costs more than it
//!   saves on chunk-sized queries); `row_security = off`, so a row-level security
//!   policy that would hide rows from the role is an error, never a partial (and
//!   falsely equal) comparison. A comparison whose work fails is rolled back to a
//!   savepoint so the transaction (and its snapshot) lives on.
//! - SQLite: `pragma query_only = on` and one deferred read transaction per
//!   connection (a WAL database gives each its snapshot at the first read).
//! - MySQL/MariaDB: one connection (MySQL cannot share a snapshot between
//!   sessions, and one snapshot for the whole side matters more than speed), set up
//!   as the copy's sessions are (`time_zone = '+00:00'`, `utf8mb4`, a plain
//!   `sql_mode`: the values read are the values the copy carries) and inside one
//!   `REPEATABLE READ` transaction started `WITH CONSISTENT SNAPSHOT, READ ONLY`. A
//!   failed query does not end a MySQL transaction, so no savepoint is needed.

use crate::db::conn::{connect_mysql, connect_pg, connect_sqlite};
use crate::db::sqltext::{error_text, is_retryable};
use crate::db::Db;
use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Executor};

/// Connections per side at most (the engine's pools hold 4).
pub const MAX_CONNS: u32 = 4;
/// SQLite reads are decoded and hashed by ferry itself: two readers are plenty.
const SQLITE_CONNS: u32 = 2;

const PG_SETTINGS: &str = "set application_name = 'ferry verify'; set DateStyle = 'ISO, YMD'; \
     set IntervalStyle = 'postgres'; set TimeZone = 'UTC'; set extra_float_digits = 3; \
     set bytea_output = 'hex'; set lc_monetary = 'C'; set jit = off; \
     set default_transaction_read_only = on; set row_security = off";

/// One open, read-only connection.
pub enum Conn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
    MySql(MySqlConnection),
}

/// Which side a session reads, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Source,
    Target,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Target => "target",
        }
    }
}

/// An error of a side, classified: the connection is gone (the verification stops),
/// or a query failed (the table's comparison is reported as failed, the rest goes on).
#[derive(Debug, Clone)]
pub enum SideError {
    Unreachable(String),
    Query(String),
}

impl SideError {
    pub fn from_sql(role: Role, context: &str, e: &sqlx::Error) -> SideError {
        let mut text = format!("{} {context}: {}", role.name(), error_text(e));
        if let sqlx::Error::Database(db) = e {
            if db.code().as_deref() == Some("40001") && db.message().contains("recovery") {
                text.push_str(
                    " (a standby cancels long reads that conflict with replay: set \
                     hot_standby_feedback = on or raise max_standby_streaming_delay)",
                );
            }
        }
        // a conflict or deadlock is this query's failure; a dropped connection, a
        // server shutting down or refusing connections is the database's
        let conflict = matches!(e, sqlx::Error::Database(db)
            if matches!(db.code().as_deref(), Some("40001" | "40P01")));
        if is_retryable(e) && !conflict {
            SideError::Unreachable(text)
        } else {
            SideError::Query(text)
        }
    }

    pub fn text(&self) -> &str {
        match self {
            SideError::Unreachable(t) | SideError::Query(t) => t,
        }
    }
}

/// How many connections to open on `db`.
pub fn conn_budget(db: &Db) -> u32 {
    match db {
        Db::Pg(p) => p.options().get_max_connections().clamp(1, MAX_CONNS),
        Db::Sqlite(p) => p.options().get_max_connections().clamp(1, SQLITE_CONNS),
        Db::MySql(_) => 1,
    }
}

/// Open `n` read-only connections on `db` sharing one snapshot where the engine
/// allows. Returns the connections and a note when the snapshot could not be shared.
pub async fn open(db: &Db, role: Role, n: u32) -> Result<(Vec<Conn>, Option<String>), SideError> {
    let ctx = |e: sqlx::Error| SideError::from_sql(role, "opening a read-only session", &e);
    let unreachable =
        |e: sqlx::Error| SideError::Unreachable(format!("{}: {}", role.name(), error_text(&e)));
    let mut conns = Vec::new();
    let mut note = None;
    match db {
        Db::Pg(pool) => {
            let opts = (*pool.connect_options()).clone();
            let mut snapshot: Option<String> = None;
            for i in 0..n.max(1) {
                let mut c = connect_pg(&opts).await.map_err(unreachable)?;
                c.execute(sqlx::raw_sql(PG_SETTINGS)).await.map_err(ctx)?;
                c.execute(sqlx::raw_sql(
                    "begin isolation level repeatable read read only",
                ))
                .await
                .map_err(ctx)?;
                if i == 0 {
                    match sqlx::query_scalar::<_, String>("select pg_export_snapshot()")
                        .fetch_one(&mut c)
                        .await
                    {
                        Ok(s) => snapshot = Some(s),
                        Err(e) => {
                            note = Some(format!(
                                "{}: connections do not share one snapshot ({})",
                                role.name(),
                                error_text(&e)
                            ));
                            c.execute(sqlx::raw_sql(
                                "rollback; begin isolation level repeatable read read only",
                            ))
                            .await
                            .map_err(ctx)?;
                        }
                    }
                } else if let Some(s) = &snapshot {
                    let sql = format!("set transaction snapshot '{}'", s.replace('\'', "''"));
                    c.execute(sqlx::raw_sql(&sql)).await.map_err(ctx)?;
                }
                conns.push(Conn::Pg(c));
            }
        }
        Db::Sqlite(pool) => {
            let opts = (*pool.connect_options()).clone();
            for _ in 0..n.max(1) {
                let mut c = connect_sqlite(&opts).await.map_err(unreachable)?;
                c.execute(sqlx::raw_sql("pragma query_only = on; begin"))
                    .await
                    .map_err(ctx)?;
                conns.push(Conn::Sqlite(c));
            }
        }
        Db::MySql(pool) => {
            let opts = (*pool.connect_options()).clone();
            for _ in 0..n.max(1) {
                let mut c = connect_mysql(&opts).await.map_err(unreachable)?;
                c.execute(crate::db::mysql::COPY_SESSION)
                    .await
                    .map_err(ctx)?;
                c.execute("set session transaction isolation level repeatable read")
                    .await
                    .map_err(ctx)?;
                c.execute("start transaction with consistent snapshot, read only")
                    .await
                    .map_err(ctx)?;
                conns.push(Conn::MySql(c));
            }
        }
    }
    Ok((conns, note))
}

impl Conn {
    /// Mark a point to return to when the next piece of work fails.
    pub async fn savepoint(&mut self, role: Role) -> Result<(), SideError> {
        if let Conn::Pg(c) = self {
            c.execute(sqlx::raw_sql("savepoint ferry_verify"))
                .await
                .map_err(|e| SideError::from_sql(role, "setting a savepoint", &e))?;
        }
        Ok(())
    }

    /// The work since [`Conn::savepoint`] succeeded (`ok`) or failed: keep or undo it.
    pub async fn settle(&mut self, role: Role, ok: bool) -> Result<(), SideError> {
        if let Conn::Pg(c) = self {
            let sql = if ok {
                "release savepoint ferry_verify"
            } else {
                "rollback to savepoint ferry_verify; release savepoint ferry_verify"
            };
            c.execute(sqlx::raw_sql(sql))
                .await
                .map_err(|e| SideError::from_sql(role, "ending a savepoint", &e))?;
        }
        Ok(())
    }

    /// End the read transaction and close the connection.
    pub async fn close(self) {
        match self {
            Conn::Pg(mut c) => {
                let _ = c.execute(sqlx::raw_sql("commit")).await;
                let _ = c.close().await;
            }
            Conn::Sqlite(mut c) => {
                let _ = c.execute(sqlx::raw_sql("commit")).await;
                let _ = c.close().await;
            }
            Conn::MySql(mut c) => {
                let _ = c.execute("commit").await;
                let _ = c.close().await;
            }
        }
    }
}
