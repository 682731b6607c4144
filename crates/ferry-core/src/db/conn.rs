//! Dedicated connections opened from a pool's connect options, for workers that need
//! connections of their own beside the engine's small shared pools (copy workers,
//! verify sessions). Each attempt is bounded by [`CONNECT_TIMEOUT`], so a server that
//! accepts the socket and never answers fails the step instead of hanging it.

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use std::time::Duration;

/// How long one connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The error of an attempt that took longer than [`CONNECT_TIMEOUT`].
fn timed_out() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "connecting took longer than 10s",
    ))
}

/// A new PostgreSQL connection with `opts`, within [`CONNECT_TIMEOUT`].
pub async fn connect_pg(opts: &PgConnectOptions) -> Result<PgConnection, sqlx::Error> {
    tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(opts))
        .await
        .map_err(|_| timed_out())?
}

/// A new MySQL connection with `opts`, within [`CONNECT_TIMEOUT`].
pub async fn connect_mysql(
    opts: &sqlx::mysql::MySqlConnectOptions,
) -> Result<sqlx::mysql::MySqlConnection, sqlx::Error> {
    tokio::time::timeout(CONNECT_TIMEOUT, opts.connect())
        .await
        .map_err(|_| timed_out())?
}

/// A new SQLite connection with `opts`, within [`CONNECT_TIMEOUT`].
pub async fn connect_sqlite(opts: &SqliteConnectOptions) -> Result<SqliteConnection, sqlx::Error> {
    tokio::time::timeout(CONNECT_TIMEOUT, opts.connect())
        .await
        .map_err(|_| timed_out())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_error_names_the_limit() {
        let e = timed_out();
        assert!(e
            .to_string()
            .contains(&format!("{}s", CONNECT_TIMEOUT.as_secs())));
    }
}
