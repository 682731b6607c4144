//! Why a monitored database does not answer. A pool whose server went away keeps
//! retrying the connection until its own acquire timeout, so a poll only sees
//! "no answer" (or sqlx's "pool timed out"). One direct connection attempt, made
//! only then, names the real cause (`Connection refused`, a failed login) in the
//! stale reason the operator reads.

use super::DbGetter;
use crate::db::Db;
use sqlx::Connection;
use std::future::Future;
use std::time::Duration;

/// How long the direct attempt may take.
pub const PROBE_LIMIT: Duration = Duration::from_secs(3);

/// `poll`, bounded by `limit`. When it runs out of time, or fails with the pool's
/// own timeout, the error also says what a direct connection to each of `conns`
/// answers, when one of them fails.
pub async fn bounded<T>(
    limit: Duration,
    db: &DbGetter,
    conns: &[&str],
    poll: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    let err = match tokio::time::timeout(limit, poll).await {
        Ok(Ok(v)) => return Ok(v),
        Ok(Err(e)) if !e.contains("pool timed out") => return Err(e),
        Ok(Err(e)) => e,
        Err(_) => format!("no answer within {}", humantime::format_duration(limit)),
    };
    for c in conns {
        if let Some(why) = connect_error(db, c).await {
            return Err(format!("{err}; connection `{c}`: {why}"));
        }
    }
    Err(err)
}

/// What one fresh connection to `conn` says, when it fails.
async fn connect_error(db: &DbGetter, conn: &str) -> Option<String> {
    let limit = humantime::format_duration(PROBE_LIMIT);
    let db = match tokio::time::timeout(PROBE_LIMIT, db(conn.to_string())).await {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => return Some(e),
        Err(_) => return Some(format!("no connection within {limit}")),
    };
    let attempt = async {
        match &db {
            Db::Pg(p) => {
                sqlx::PgConnection::connect_with(&p.connect_options())
                    .await?
                    .close()
                    .await
            }
            Db::Sqlite(p) => {
                sqlx::SqliteConnection::connect_with(&p.connect_options())
                    .await?
                    .close()
                    .await
            }
            Db::MySql(p) => {
                sqlx::MySqlConnection::connect_with(&p.connect_options())
                    .await?
                    .close()
                    .await
            }
        }
    };
    match tokio::time::timeout(PROBE_LIMIT, attempt).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("a new connection got no answer within {limit}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn getter(db: Result<Db, String>) -> DbGetter {
        let db = Arc::new(db);
        Arc::new(move |_| {
            let db = db.clone();
            Box::pin(async move {
                match &*db {
                    Ok(Db::Pg(p)) => Ok(Db::Pg(p.clone())),
                    Ok(Db::Sqlite(p)) => Ok(Db::Sqlite(p.clone())),
                    Ok(Db::MySql(p)) => Ok(Db::MySql(p.clone())),
                    Err(e) => Err(e.clone()),
                }
            })
        })
    }

    #[tokio::test]
    async fn an_answer_or_an_ordinary_error_passes_through() {
        let db = getter(Err("unused".into()));
        let ok = bounded(Duration::from_secs(1), &db, &["a"], async {
            Ok::<_, String>(7)
        });
        assert_eq!(ok.await, Ok(7));
        let e = bounded(Duration::from_secs(1), &db, &["a"], async {
            Err::<u8, _>("syntax error at or near \"selec\"".to_string())
        });
        assert_eq!(e.await, Err("syntax error at or near \"selec\"".into()));
    }

    #[tokio::test]
    async fn a_hung_poll_on_a_dead_server_names_the_connect_error() {
        // a port nothing listens on: the lazy pool is made, connecting is refused
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://u@127.0.0.1:9/db")
            .expect("lazy pool");
        let db = getter(Ok(Db::Pg(pool)));
        let e = bounded(Duration::from_millis(50), &db, &["source"], async {
            std::future::pending::<Result<(), String>>().await
        })
        .await
        .expect_err("a poll that never answers fails");
        assert!(
            e.starts_with("no answer within 50ms; connection `source`: ")
                && e.to_lowercase().contains("refused"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_pool_timeout_with_a_failing_getter_says_what_the_getter_said() {
        let db = getter(Err("cannot connect to db.example:5432: timed out".into()));
        let e = bounded(Duration::from_secs(1), &db, &["target"], async {
            Err::<(), _>("pool timed out while waiting for an open connection".to_string())
        })
        .await
        .expect_err("fails");
        assert_eq!(
            e,
            "pool timed out while waiting for an open connection; connection `target`: \
             cannot connect to db.example:5432: timed out"
        );
    }
}
