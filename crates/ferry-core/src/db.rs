//! Open database pools, shared by every layer that talks to a database
//! (engine executors, copy, verify, monitors). The engine's `connections`
//! module decides how and when they are opened.

/// An open connection pool.
#[derive(Debug, Clone)]
pub enum Db {
    Pg(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

impl Db {
    /// "postgres" or "sqlite", for messages.
    pub fn engine(&self) -> &'static str {
        match self {
            Db::Pg(_) => "postgres",
            Db::Sqlite(_) => "sqlite",
        }
    }
}
