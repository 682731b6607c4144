//! The database layer shared by every worker that talks to a database (engine
//! executors, copy, verify, monitors): open pools ([`Db`]; the engine's `connections`
//! module decides how and when they are opened), dedicated connections ([`conn`]),
//! what a database holds ([`catalog`]), chunks of a table ([`plan`]) and their key
//! ranges as SQL ([`range`]), MySQL values as PostgreSQL text ([`mysql_values`], shared by
//! the copy and verify), and SQL text: quoting, error texts and classes
//! ([`sqltext`]).

pub mod catalog;
pub mod catalog_mysql;
mod catalog_sqlite;
pub mod conn;
pub mod mysql;
pub(crate) mod mysql_values;
pub mod plan;
pub mod range;
pub mod sqltext;

/// An open connection pool.
#[derive(Debug, Clone)]
pub enum Db {
    Pg(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
    /// MySQL 8 or MariaDB (`mysql://`, `mariadb://`).
    MySql(sqlx::MySqlPool),
}

impl Db {
    /// "postgres", "sqlite" or "mysql", for messages.
    pub fn engine(&self) -> &'static str {
        match self {
            Db::Pg(_) => "postgres",
            Db::Sqlite(_) => "sqlite",
            Db::MySql(_) => "mysql",
        }
    }
}
