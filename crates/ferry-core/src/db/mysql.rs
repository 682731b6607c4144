//! MySQL and MariaDB (`mysql://`, `mariadb://`): connect options, identifier quoting,
//! and stopping a statement on the server (`KILL QUERY`).
//!
//! The engine's pools leave the session as the server configures it (its `sql_mode`,
//! its time zone), so a runbook's `sql` steps mean what they mean in the `mysql`
//! client; only the character set is fixed to `utf8mb4`, so every text arrives as
//! UTF-8. Sessions that move data (the copy) fix their own settings ([`copy_session`]).

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{Connection, Executor};
use std::str::FromStr;
use std::time::Duration;

/// How long a server-side `KILL QUERY` may take before ferry gives up on it.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Connect options for a `mysql://` or `mariadb://` URL, with server defaults kept.
pub fn options(url: &str) -> Result<MySqlConnectOptions, String> {
    let url = match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => url.to_string(),
    };
    let opts = MySqlConnectOptions::from_str(&url).map_err(|e| e.to_string())?;
    Ok(opts
        .pipes_as_concat(false)
        .no_engine_substitution(false)
        .timezone(None)
        .charset("utf8mb4"))
}

/// `name` quoted for MySQL (backticks; a backtick inside is doubled).
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `schema`.`table` quoted for MySQL.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", ident(schema), ident(table))
}

/// The settings of a session that reads data to carry elsewhere: UTC for TIMESTAMP
/// columns, `utf8mb4` text, no `sql_mode` that would rewrite what is read
/// (`PAD_CHAR_TO_FULL_LENGTH` pads CHAR values), and `ANSI_QUOTES` off.
pub const COPY_SESSION: &str = "SET time_zone = '+00:00', NAMES utf8mb4 COLLATE utf8mb4_bin, \
     sql_mode = 'NO_ENGINE_SUBSTITUTION', group_concat_max_len = 1048576";

/// A dedicated connection set up with [`COPY_SESSION`].
pub async fn copy_session(opts: &MySqlConnectOptions) -> Result<MySqlConnection, sqlx::Error> {
    let mut c = super::conn::connect_mysql(opts).await?;
    c.execute(COPY_SESSION).await?;
    Ok(c)
}

/// Stop what connection `id` is running (`KILL QUERY`), over a connection of its
/// own. Best effort: the statement may have ended meanwhile.
pub async fn kill_query(opts: &MySqlConnectOptions, id: u64) {
    let kill = async {
        let mut c = super::conn::connect_mysql(opts).await?;
        let r = c.execute(format!("KILL QUERY {id}").as_str()).await;
        let _ = c.close().await;
        r.map(|_| ())
    };
    match tokio::time::timeout(KILL_WAIT, kill).await {
        Ok(Ok(())) => tracing::info!(id, "stopped the statement on the server (KILL QUERY)"),
        Ok(Err(e)) => tracing::warn!(id, error = %e, "cannot stop the statement on the server"),
        Err(_) => tracing::warn!(id, "KILL QUERY on the server timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(qualified("db", "t"), "`db`.`t`");
    }

    #[test]
    fn mariadb_urls_are_mysql_urls() {
        let o = options("mariadb://u@127.0.0.1:3307/app").unwrap();
        assert_eq!(o.get_port(), 3307);
        assert_eq!(o.get_database(), Some("app"));
        assert_eq!(o.get_username(), "u");
        assert!(options("mysql://u@h/db").is_ok());
    }
}
