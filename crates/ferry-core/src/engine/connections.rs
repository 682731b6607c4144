//! The named database connections of a runbook, connected lazily.
//!
//! [`Connections::new`] expands each URL's `${env:X}` once at the start of a run and
//! registers every secret it sees with the [`Redactor`]; [`Connections::get`] opens a
//! small pool on first use, retrying with capped exponential backoff, and caches it.
//!
//! TLS: each PostgreSQL connection runs with the mode [`runbook::tls::resolve`] gives
//! (the runbook's `tls` and `ca`, the URL's `sslmode` and `sslrootcert`, IAM auth).
//! A connection that asked to verify and cannot is refused before any password or
//! token is sent (sqlx finishes the TLS handshake before the startup message). What
//! each connection got, read back from the server's `pg_stat_ssl`, is kept as a
//! [`ConnectionTls`] and handed to whoever listens ([`Connections::tls_evidence`]).

use super::redact::Redactor;
use crate::runbook::expand::{env_refs, expand_env, is_secret_name};
use crate::runbook::tls::Resolved;
use crate::runbook::{self, Rollback, Runbook, StepKind};
use crate::vocab::{ConnectionTls, TlsMode};
use sqlx::mysql::{MySqlConnection, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgSslMode};
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
    /// The TLS this connection runs with (PostgreSQL only).
    tls: Option<Resolved>,
    db: OnceCell<Db>,
}

/// The runbook's connections, by name.
pub struct Connections {
    entries: BTreeMap<String, Entry>,
    redactor: Redactor,
    policy: RetryPolicy,
    /// The run's AWS clients, when the runbook uses AWS (rds steps, IAM auth).
    aws: std::sync::OnceLock<crate::aws::Clients>,
    /// What each opened PostgreSQL connection got, in the order they opened.
    tls_seen: std::sync::Mutex<Vec<ConnectionTls>>,
    /// Where new evidence is also sent (the driver journals it).
    tls_tx: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedSender<ConnectionTls>>>,
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
        install_crypto_provider();
        let mut entries = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, conn) in &rb.connections {
            match expand_env(&conn.url, env) {
                Ok(url) => {
                    redactor.add_url(&url);
                    let is_pg = url.starts_with("postgres://") || url.starts_with("postgresql://");
                    let mut c = conn.clone();
                    if let Some(ca) = &conn.ca {
                        match expand_env(ca, env) {
                            Ok(ca) => c.ca = Some(ca),
                            Err(missing) => {
                                for var in missing {
                                    errors.push(format!(
                                        "connection `{name}`: {var} (in `ca`) is not set"
                                    ));
                                }
                            }
                        }
                    }
                    let tls = if is_pg {
                        match runbook::tls::resolve(&c, &url, env) {
                            Ok(r) => Some(r),
                            Err(e) => {
                                errors.push(redactor.redact(&e));
                                None
                            }
                        }
                    } else {
                        None
                    };
                    entries.insert(
                        name.clone(),
                        Entry {
                            url,
                            iam_auth: conn
                                .iam_auth
                                .as_ref()
                                .map(|a| (a.instance.clone(), a.user.clone())),
                            tls,
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
            tls_seen: std::sync::Mutex::new(Vec::new()),
            tls_tx: std::sync::Mutex::new(None),
        })
    }

    /// Evidence of every PostgreSQL connection opened so far, and a receiver for
    /// those opened from now on (one listener: a second call replaces the first).
    pub fn tls_evidence(
        &self,
    ) -> (
        Vec<ConnectionTls>,
        tokio::sync::mpsc::UnboundedReceiver<ConnectionTls>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut slot = self.tls_tx.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Some(tx);
        let seen = self
            .tls_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        (seen, rx)
    }

    /// The TLS mode connection `name` runs with (None for SQLite or an unknown name).
    pub fn tls_mode(&self, name: &str) -> Option<TlsMode> {
        self.entries.get(name)?.tls.as_ref().map(|t| t.mode)
    }

    fn record_tls(&self, ev: ConnectionTls) {
        tracing::info!(evidence = %ev.summary(), "connected");
        if let Some(w) = &ev.warning {
            tracing::warn!(connection = %ev.connection, "{w}");
        }
        self.tls_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ev.clone());
        if let Some(tx) = self
            .tls_tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let _ = tx.send(ev);
        }
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
                .get_or_try_init(|| {
                    self.connect_iam(
                        name,
                        &entry.url,
                        entry.tls.as_ref(),
                        instance,
                        user.as_deref(),
                    )
                })
                .await
                .cloned();
        }
        entry
            .db
            .get_or_try_init(|| self.connect(name, &entry.url, entry.tls.as_ref()))
            .await
            .cloned()
    }

    /// The expanded URL of `name`, password included, for a subscription's
    /// connection string (the target connects to the source itself); None for an
    /// unknown name or an IAM-auth connection, whose tokens expire. Never show it.
    pub fn url_with_secret(&self, name: &str) -> Option<&str> {
        self.entries
            .get(name)
            .filter(|e| e.iam_auth.is_none())
            .map(|e| e.url.as_str())
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
        tls: Option<&Resolved>,
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
        // IAM auth implies verify-full (runbook::tls::resolve); never less than require
        let tls = tls.cloned().unwrap_or(Resolved {
            mode: TlsMode::VerifyFull,
            ca: None,
            warning: None,
        });
        let opts = with_tls(
            name,
            base.host(&tok.host)
                .port(tok.port)
                .username(&user)
                .password(&tok.token),
            &tls,
        )?;
        let at = format!("{}:{}", tok.host, tok.port);
        let got = self.retry(name, &at, &tls, || probe_pg(&opts)).await?;
        self.record_tls(evidence(name, &at, &tls, got));
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

    async fn connect(
        &self,
        name: &str,
        url: &str,
        tls: Option<&Resolved>,
    ) -> Result<Db, ConnError> {
        let redact = |s: String| self.redactor.redact(&s);
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let tls = tls.cloned().unwrap_or(Resolved {
                mode: TlsMode::Prefer,
                ca: None,
                warning: None,
            });
            let opts = PgConnectOptions::from_str(url).map_err(|e| {
                ConnError::Config(redact(format!("connection `{name}`: bad URL `{url}`: {e}")))
            })?;
            let opts = with_tls(name, opts, &tls)?;
            let at = format!("{}:{}", opts.get_host(), opts.get_port());
            let got = self.retry(name, &at, &tls, || probe_pg(&opts)).await?;
            self.record_tls(evidence(name, &at, &tls, got));
            Ok(Db::Pg(pg_pool_options().connect_lazy_with(opts)))
        } else if url.starts_with("sqlite:") {
            let opts = sqlite_options(url)
                .map_err(|e| ConnError::Config(redact(format!("connection `{name}`: {e}"))))?;
            let at = opts.get_filename().display().to_string();
            let no_tls = Resolved {
                mode: TlsMode::Disable,
                ca: None,
                warning: None,
            };
            self.retry(name, &at, &no_tls, || probe::<SqliteConnection>(&opts))
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
            let tls = Resolved {
                mode: mysql_tls_mode(url),
                ca: None,
                warning: None,
            };
            let got = self.retry(name, &at, &tls, || probe_mysql(&opts)).await?;
            self.record_tls(evidence(name, &at, &tls, got));
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
    async fn retry<T, F, Fut>(
        &self,
        name: &str,
        at: &str,
        tls: &Resolved,
        attempt: F,
    ) -> Result<T, ConnError>
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
                    if let Some(mut why) = tls_refusal(&e) {
                        if tls.mode == TlsMode::VerifyCa && why.contains("(NotValidForName)") {
                            // sqlx 0.8's verify-ca misses rustls' newer error variant and
                            // checks the name anyway (transact-rs/sqlx#3793, fixed in 0.9)
                            why.push_str(
                                "; with this sqlx, verify-ca checks the host name too (sqlx#3793): connect by a name the certificate lists",
                            );
                        }
                        return Err(ConnError::Config(self.redactor.redact(&format!(
                            "cannot connect to `{name}` at {at}: TLS verification failed ({}{}): {why}; nothing was sent to this server",
                            tls.mode,
                            tls.ca
                                .as_deref()
                                .map(|c| format!(" against CA {c}"))
                                .unwrap_or_else(|| " against the bundled web roots (no `ca`)".into())
                        ))));
                    }
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

/// Install ring as the process's rustls crypto provider, once. sqlx's `verify-ca`
/// builds a rustls verifier through the process default, and with both ring (sqlx)
/// and aws-lc-rs (the AWS SDK) compiled in, rustls cannot pick one by itself and
/// panics. Harmless when a provider is already installed.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The sqlx options for `tls`: the mode, and the CA file (which must be readable:
/// sqlx would otherwise fail later with a less clear message).
fn with_tls(
    name: &str,
    opts: PgConnectOptions,
    tls: &Resolved,
) -> Result<PgConnectOptions, ConnError> {
    let mode = match tls.mode {
        TlsMode::Disable => PgSslMode::Disable,
        TlsMode::Prefer => PgSslMode::Prefer,
        TlsMode::Require => PgSslMode::Require,
        TlsMode::VerifyCa => PgSslMode::VerifyCa,
        TlsMode::VerifyFull => PgSslMode::VerifyFull,
    };
    let opts = opts.ssl_mode(mode);
    match &tls.ca {
        Some(ca) if tls.mode.verifies() => {
            let pem = std::fs::read(ca).map_err(|e| {
                ConnError::Config(format!(
                    "connection `{name}`: cannot read the CA file {ca} (`ca`/sslrootcert): {e}"
                ))
            })?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(ConnError::Config(format!(
                    "connection `{name}`: the CA file {ca} holds no PEM certificate"
                )));
            }
            Ok(opts.ssl_root_cert_from_pem(pem))
        }
        _ => Ok(opts),
    }
}

/// What the server says about this session's TLS: (encrypted, protocol, cipher).
type Seen = (bool, Option<String>, Option<String>);

/// The TLS mode a `mysql://` URL asks sqlx for (`ssl-mode`, as the `mysql` client
/// spells it); sqlx's default is `PREFERRED`.
fn mysql_tls_mode(url: &str) -> TlsMode {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let asked = query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        matches!(k, "ssl-mode" | "ssl_mode" | "sslmode").then(|| v.to_ascii_uppercase())
    });
    match asked.as_deref() {
        Some("DISABLED") => TlsMode::Disable,
        Some("REQUIRED") => TlsMode::Require,
        Some("VERIFY_CA") => TlsMode::VerifyCa,
        Some("VERIFY_IDENTITY") => TlsMode::VerifyFull,
        _ => TlsMode::Prefer,
    }
}

/// Connect once to MySQL/MariaDB and read the session's TLS (`Ssl_version`,
/// `Ssl_cipher`: empty when the session is not encrypted).
async fn probe_mysql(opts: &sqlx::mysql::MySqlConnectOptions) -> Result<Seen, sqlx::Error> {
    let attempt = async {
        let mut conn = MySqlConnection::connect_with(opts).await?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')",
        )
        .fetch_all(&mut conn)
        .await?;
        conn.close().await?;
        let get = |n: &str| {
            rows.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let cipher = get("Ssl_cipher");
        Ok((cipher.is_some(), get("Ssl_version"), cipher))
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(r) => r,
        Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "no answer within {}",
                humantime::format_duration(CONNECT_TIMEOUT)
            ),
        ))),
    }
}

/// One PostgreSQL connection attempt (see [`probe`]) that also reads the
/// session's row of `pg_stat_ssl`.
async fn probe_pg(opts: &PgConnectOptions) -> Result<Seen, sqlx::Error> {
    let attempt = async {
        let mut conn = PgConnection::connect_with(opts).await?;
        let row: Option<Seen> = sqlx::query_as(
            "select ssl, version, cipher from pg_stat_ssl where pid = pg_backend_pid()",
        )
        .fetch_optional(&mut conn)
        .await?;
        conn.close().await?;
        Ok(row.unwrap_or((false, None, None)))
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(r) => r,
        Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "no answer within {}",
                humantime::format_duration(CONNECT_TIMEOUT)
            ),
        ))),
    }
}

fn evidence(
    name: &str,
    at: &str,
    tls: &Resolved,
    (encrypted, protocol, cipher): Seen,
) -> ConnectionTls {
    ConnectionTls {
        connection: name.to_string(),
        at: at.to_string(),
        mode: tls.mode,
        encrypted,
        // sqlx refuses a verify-* connection whose certificate fails, so an
        // encrypted session in a verify mode is a verified one
        verified: encrypted && tls.mode.verifies(),
        ca: tls.ca.clone().filter(|_| tls.mode.verifies()),
        protocol,
        cipher,
        warning: tls.warning.clone(),
    }
}

/// The reason when `e` is a refused server certificate (rustls' own error, which
/// sqlx passes on inside an I/O or TLS error). Another attempt cannot fix it.
fn tls_refusal(e: &sqlx::Error) -> Option<String> {
    let inner: &(dyn std::error::Error + 'static) = match e {
        sqlx::Error::Io(io) => io.get_ref()?,
        sqlx::Error::Tls(t) => &**t,
        _ => return None,
    };
    let mut cur = Some(inner);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(match r {
                rustls::Error::InvalidCertificate(c) => certificate_problem(c),
                other => other.to_string(),
            });
        }
        cur = err.source();
    }
    None
}

/// A refused certificate in words, with rustls' name for the reason.
fn certificate_problem(c: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match c {
        C::UnknownIssuer => {
            "the server's certificate is not signed by a trusted CA (UnknownIssuer)".into()
        }
        C::NotValidForName => {
            "the server's certificate does not name the host connected to (NotValidForName)".into()
        }
        C::NotValidForNameContext { expected, presented } => format!(
            "the server's certificate does not name the host connected to, {expected:?}; it names {} (NotValidForName)",
            presented.join(", ")
        ),
        C::Expired | C::ExpiredContext { .. } => {
            "the server's certificate has expired (Expired)".into()
        }
        C::NotValidYet | C::NotValidYetContext { .. } => {
            "the server's certificate is not valid yet (NotValidYet)".into()
        }
        C::Revoked => "the server's certificate was revoked (Revoked)".into(),
        other => format!("the server's certificate was refused ({other:?})"),
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
