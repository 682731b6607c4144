//! The named database connections of a runbook, connected lazily.
//!
//! [`Connections::new`] expands each URL's `${env:X}` once at the start of a run and
//! registers every secret it sees with the [`Redactor`]; [`Connections::get`] opens a
//! small pool on first use, retrying with capped exponential backoff, and caches it.

use super::redact::Redactor;
use crate::runbook::expand::{env_refs, expand_env, is_secret_name};
use crate::runbook::{Rollback, Runbook, StepKind};
use sqlx::mysql::{MySqlConnection, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePoolOptions};
use sqlx::Connection;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Pools stay small: a runbook runs a handful of statements, not a workload.
const MAX_POOL_CONNECTIONS: u32 = 4;
/// How long one connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub use crate::db::Db;

/// How hard [`Connections::get`] tries before a database counts as unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, waiting 500ms, 1s, 2s, 4s in between (capped at 8s).
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `n` (1-based).
    pub fn backoff(&self, n: u32) -> Duration {
        crate::backoff::capped(self.first_backoff, n, self.max_backoff)
    }
}

/// Why a connection could not be had. Messages are already redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnError {
    /// The runbook or environment is wrong (bad URL, unknown name, bad credentials):
    /// retrying will not help.
    Config(String),
    /// The server did not answer after every attempt.
    Unreachable(String),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Config(m) | ConnError::Unreachable(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ConnError {}

struct Entry {
    /// The URL with `${env:X}` expanded. Contains secrets: never show it unredacted.
    url: String,
    /// RDS IAM auth: (instance, user) — the password is a token signed at connect time.
    iam_auth: Option<(String, Option<String>)>,
    db: OnceCell<Db>,
}

/// The runbook's connections, by name.
pub struct Connections {
    entries: BTreeMap<String, Entry>,
    redactor: Redactor,
    policy: RetryPolicy,
    /// The run's AWS clients, when the runbook uses AWS (rds steps, IAM auth).
    aws: std::sync::OnceLock<crate::aws::Clients>,
}

impl fmt::Debug for Connections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&String> = self.entries.keys().collect();
        f.debug_struct("Connections")
            .field("names", &names)
            .finish()
    }
}

impl Connections {
    /// Give the run's AWS clients to the steps that need them (once).
    pub fn set_aws(&self, clients: crate::aws::Clients) {
        let _ = self.aws.set(clients);
    }

    pub fn aws(&self) -> Option<&crate::aws::Clients> {
        self.aws.get()
    }

    /// Expand `${env:X}` in each connection URL with `env`, and register the URL
    /// passwords and the values of secret-named environment variables (connection
    /// URLs, shell `run`/`env`) with `redactor`. Errors name each connection whose
    /// environment variable is unset.
    pub fn new(
        rb: &Runbook,
        env: &dyn Fn(&str) -> Option<String>,
        redactor: &mut Redactor,
        policy: RetryPolicy,
    ) -> Result<Self, Vec<String>> {
        let mut entries = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, conn) in &rb.connections {
            match expand_env(&conn.url, env) {
                Ok(url) => {
                    redactor.add_url(&url);
                    entries.insert(
                        name.clone(),
                        Entry {
                            url,
                            iam_auth: conn
                                .iam_auth
                                .as_ref()
                                .map(|a| (a.instance.clone(), a.user.clone())),
                            db: OnceCell::new(),
                        },
                    );
                }
                Err(missing) => {
                    for var in missing {
                        errors.push(format!("connection `{name}`: {var} is not set"));
                    }
                }
            }
        }
        for var in secret_env_refs(rb) {
            if let Some(value) = env(&var) {
                redactor.add(&value);
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Connections {
            entries,
            redactor: redactor.clone(),
            policy,
            aws: std::sync::OnceLock::new(),
        })
    }

    /// The pool for connection `name`, connecting on first use.
    pub async fn get(&self, name: &str) -> Result<Db, ConnError> {
        let entry = self.entries.get(name).ok_or_else(|| {
            ConnError::Config(format!(
                "unknown connection `{name}` (the runbook defines: {})",
                self.entries.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        if let Some((instance, user)) = &entry.iam_auth {
            return entry
                .db
                .get_or_try_init(|| self.connect_iam(name, &entry.url, instance, user.as_deref()))
                .await
                .cloned();
        }
        entry
            .db
            .get_or_try_init(|| self.connect(name, &entry.url))
            .await
            .cloned()
    }

    /// The expanded URL of `name` with its password masked.
    pub fn url_for_display(&self, name: &str) -> Option<String> {
        self.entries.get(name).map(|e| self.redactor.redact(&e.url))
    }

    /// Close every pool that was opened.
    pub async fn close(&self) {
        for entry in self.entries.values() {
            match entry.db.get() {
                Some(Db::Pg(pool)) => pool.close().await,
                Some(Db::Sqlite(pool)) => pool.close().await,
                Some(Db::MySql(pool)) => pool.close().await,
                None => {}
            }
        }
    }

    /// Connect with an RDS IAM auth token as the password (TLS required), and
    /// keep new pool connections working by re-signing the token every 10
    /// minutes (tokens live 15). The token is never logged or shown.
    async fn connect_iam(
        &self,
        name: &str,
        url: &str,
        instance: &str,
        user: Option<&str>,
    ) -> Result<Db, ConnError> {
        let redact = |s: String| self.redactor.redact(&s);
        let Some(aws) = self.aws().cloned() else {
            return Err(ConnError::Config(format!(
                "connection `{name}` uses iam_auth, but the run has no AWS configuration (add [aws] region)"
            )));
        };
        let base = PgConnectOptions::from_str(url).map_err(|e| {
            ConnError::Config(redact(format!("connection `{name}`: bad URL `{url}`: {e}")))
        })?;
        let user = user
            .map(str::to_string)
            .unwrap_or_else(|| base.get_username().to_string());
        let sign = |aws: crate::aws::Clients, instance: String, user: String| async move {
            crate::aws::iam::token(&aws, &instance, &user).await
        };
        let tok = sign(aws.clone(), instance.to_string(), user.clone())
            .await
            .map_err(|e| match e {
                crate::aws::AwsError::Unreachable(m) => {
                    ConnError::Unreachable(format!("connection `{name}`: AWS: {m}"))
                }
                other => ConnError::Config(format!(
                    "connection `{name}`: IAM auth for `{instance}`: {other}"
                )),
            })?;
        let opts = base
            .host(&tok.host)
            .port(tok.port)
            .username(&user)
            .password(&tok.token)
            .ssl_mode(sqlx::postgres::PgSslMode::Require);
        let at = format!("{}:{}", tok.host, tok.port);
        self.retry(name, &at, || probe::<PgConnection>(&opts))
            .await?;
        let pool = pg_pool_options().connect_lazy_with(opts.clone());
        let refresh = pool.clone();
        let instance = instance.to_string();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(600)).await;
                if refresh.is_closed() {
                    return;
                }
                match sign(aws.clone(), instance.clone(), user.clone()).await {
                    Ok(t) => refresh.set_connect_options(opts.clone().password(&t.token)),
                    Err(e) => {
                        tracing::warn!(%instance, error = %e, "cannot refresh the RDS IAM auth token")
                    }
                }
            }
        });
        Ok(Db::Pg(pool))
    }

    async fn connect(&self, name: &str, url: &str) -> Result<Db, ConnError> {
        let redact = |s: String| self.redactor.redact(&s);
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url).map_err(|e| {
                ConnError::Config(redact(format!("connection `{name}`: bad URL `{url}`: {e}")))
            })?;
            let at = format!("{}:{}", opts.get_host(), opts.get_port());
            self.retry(name, &at, || probe::<PgConnection>(&opts))
                .await?;
            Ok(Db::Pg(pg_pool_options().connect_lazy_with(opts)))
        } else if url.starts_with("sqlite:") {
            let opts = sqlite_options(url)
                .map_err(|e| ConnError::Config(redact(format!("connection `{name}`: {e}"))))?;
            let at = opts.get_filename().display().to_string();
            self.retry(name, &at, || probe::<SqliteConnection>(&opts))
                .await?;
            Ok(Db::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(MAX_POOL_CONNECTIONS)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_lazy_with(opts),
            ))
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            let opts = crate::db::mysql::options(url).map_err(|e| {
                ConnError::Config(redact(format!("connection `{name}`: bad URL `{url}`: {e}")))
            })?;
            let at = match opts.get_socket() {
                Some(s) => s.display().to_string(),
                None => format!("{}:{}", opts.get_host(), opts.get_port()),
            };
            self.retry(name, &at, || probe::<MySqlConnection>(&opts))
                .await?;
            Ok(Db::MySql(
                MySqlPoolOptions::new()
                    .max_connections(MAX_POOL_CONNECTIONS)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_lazy_with(opts),
            ))
        } else {
            Err(ConnError::Config(redact(format!(
                "connection `{name}`: unsupported URL `{url}` (expected postgres://, postgresql://, mysql://, mariadb:// or sqlite:)"
            ))))
        }
    }

    /// Run `attempt` up to `policy.attempts` times with capped exponential backoff.
    async fn retry<T, F, Fut>(&self, name: &str, at: &str, attempt: F) -> Result<T, ConnError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        let attempts = self.policy.attempts.max(1);
        let mut last = String::new();
        for n in 1..=attempts {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let msg = self.redactor.redact(&e.to_string());
                    if is_permanent(&e) {
                        return Err(ConnError::Config(format!(
                            "cannot connect to `{name}` at {at}: {msg}"
                        )));
                    }
                    tracing::warn!(
                        connection = name,
                        at,
                        attempt = n,
                        of = attempts,
                        error = %msg,
                        "connection attempt failed"
                    );
                    last = msg;
                    if n < attempts {
                        tokio::time::sleep(self.policy.backoff(n)).await;
                    }
                }
            }
        }
        Err(ConnError::Unreachable(format!(
            "cannot connect to `{name}` at {at} after {attempts} attempts: {last}"
        )))
    }
}

/// Pool settings for PostgreSQL. Each new connection asks the server (14 and
/// later; older ones refuse the setting, which is ignored) to check every second
/// that ferry is still there: when ferry is killed, what it was running stops
/// within a second instead of running on beside a resumed run's retry.
fn pg_pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(MAX_POOL_CONNECTIONS)
        .acquire_timeout(CONNECT_TIMEOUT)
        .after_connect(|conn, _| {
            Box::pin(async move {
                use sqlx::Executor;
                if let Err(e) = conn
                    .execute("set client_connection_check_interval = '1s'")
                    .await
                {
                    tracing::debug!(error = %e, "client_connection_check_interval not set");
                }
                Ok(())
            })
        })
}

/// One connection attempt, bounded by [`CONNECT_TIMEOUT`]. The pool built afterwards
/// is lazy: a pool's own `connect` keeps retrying until its acquire timeout, which
/// would hide each attempt from the retry policy (and from the log).
async fn probe<C: Connection>(opts: &C::Options) -> Result<(), sqlx::Error> {
    match tokio::time::timeout(CONNECT_TIMEOUT, C::connect_with(opts)).await {
        Ok(conn) => conn?.close().await,
        Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "no answer within {}",
                humantime::format_duration(CONNECT_TIMEOUT)
            ),
        ))),
    }
}

/// Errors that another attempt cannot fix: bad configuration, bad credentials,
/// a database that does not exist. (MySQL reports access denied as SQLSTATE 28000
/// and an unknown database as 42000 with error 1049.)
fn is_permanent(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Configuration(_) => true,
        sqlx::Error::Database(db) => {
            let mysql_unknown_db = db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|m| m.number() == 1049 || m.number() == 1045);
            mysql_unknown_db
                || db
                    .code()
                    .is_some_and(|c| c.starts_with("28") || c.starts_with("3D"))
        }
        _ => false,
    }
}

/// Names of secret-looking environment variables the runbook refers to in connection
/// URLs and in shell commands (`run`, `env`, shell rollbacks).
fn secret_env_refs(rb: &Runbook) -> Vec<String> {
    let mut texts: Vec<&str> = rb.connections.values().map(|c| c.url.as_str()).collect();
    for step in rb.steps() {
        if let StepKind::Shell(sh) = &step.kind {
            texts.push(&sh.run);
            texts.extend(sh.env.values().map(String::as_str));
        }
        if let Some(Rollback::Shell { run }) = &step.rollback {
            texts.push(run);
        }
    }
    let mut names: Vec<String> = texts
        .into_iter()
        .flat_map(env_refs)
        .filter(|n| is_secret_name(n))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `sqlite:///abs/path`, `sqlite://rel/path`, `sqlite:path` and `sqlite::memory:`;
/// the file is created when missing.
fn sqlite_options(url: &str) -> Result<SqliteConnectOptions, String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| format!("`{url}` is not a sqlite URL"))?;
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    if path.is_empty() {
        return Err(format!("`{url}` names no database file"));
    }
    if path == ":memory:" {
        return SqliteConnectOptions::from_str("sqlite::memory:").map_err(|e| e.to_string());
    }
    Ok(SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        let waits: Vec<u64> = (1..=6).map(|n| p.backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, vec![500, 1000, 2000, 4000, 8000, 8000]);
        assert_eq!(p.backoff(64), Duration::from_secs(8));
    }

    #[test]
    fn sqlite_url_forms() {
        let f = |u: &str| sqlite_options(u).map(|o| o.get_filename().display().to_string());
        assert_eq!(f("sqlite:///abs/x.db").as_deref(), Ok("/abs/x.db"));
        assert_eq!(f("sqlite://rel/x.db").as_deref(), Ok("rel/x.db"));
        assert_eq!(f("sqlite:x.db?mode=rwc").as_deref(), Ok("x.db"));
        assert!(f("sqlite://").is_err());
    }
}
