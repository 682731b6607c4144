//! Helpers of the tests that run against the rig's real MariaDB (`scripts/test` starts
//! it): its URL without and with the password, a throwaway database per test, SQL run
//! outside ferry's own code (sqlx's MySQL driver directly), and restarting the server.
//! A missing rig variable fails the test, it never skips it.

use super::pg::{rig_var, unique};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;

/// The rig's MySQL URL without a password (`mysql://ferry@127.0.0.1:PORT/ferry`).
pub fn url() -> String {
    rig_var("FERRY_TEST_MYSQL_URL")
}

pub fn password() -> String {
    rig_var("FERRY_TEST_MYSQL_PASSWORD")
}

/// `url` with database `db` and the password in it (for code outside the runbook).
pub fn url_with(db: &str) -> String {
    let u = url();
    let (scheme_user, rest) = u.split_once('@').expect("user@host in the rig URL");
    let (host, _) = rest.rsplit_once('/').expect("a database in the rig URL");
    format!("{scheme_user}:{}@{host}/{db}", password())
}

/// The same URL, without the password (what a runbook holds).
pub fn url_without_password(db: &str) -> String {
    let u = url();
    let (base, _) = u.rsplit_once('/').expect("a database in the rig URL");
    format!("{base}/{db}")
}

pub async fn connect(db: &str) -> MySqlConnection {
    MySqlConnectOptions::from_str(&url_with(db))
        .expect("rig URL")
        .timezone(None)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the rig's MariaDB: {e}"))
}

/// A new empty database, dropped by the returned guard.
pub async fn database(prefix: &str) -> Database {
    let name = unique(prefix);
    exec(
        "ferry",
        &format!("create database `{name}` character set utf8mb4"),
    )
    .await;
    Database { name }
}

pub struct Database {
    pub name: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let url = url_with("ferry");
        let sql = format!("drop database if exists `{}`", self.name);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut c = MySqlConnection::connect(&url).await.ok()?;
                sqlx::raw_sql(&sql).execute(&mut c).await.ok()
            })
        })
        .join();
    }
}

/// Run SQL (several statements allowed) on database `db`; a failure fails the test.
pub async fn exec(db: &str, sql: &str) {
    let mut c = connect(db).await;
    sqlx::raw_sql(sql)
        .execute(&mut c)
        .await
        .unwrap_or_else(|e| panic!("test SQL failed: {e}\n{sql}"));
    let _ = c.close().await;
}

/// The first column of the first row of `sql` as text ("" for NULL).
pub async fn scalar(db: &str, sql: &str) -> String {
    let mut c = connect(db).await;
    let v: Option<String> = sqlx::query_scalar(&format!("select cast(({sql}) as char)"))
        .fetch_one(&mut c)
        .await
        .unwrap_or_else(|e| panic!("test query failed: {e}\n{sql}"));
    let _ = c.close().await;
    v.unwrap_or_default()
}

/// Run the rig's MariaDB control script (`start`, `stop`, `restart`, `kill`).
pub fn ctl(action: &str) {
    let out = std::process::Command::new(rig_var("FERRY_TEST_MYSQL_CTL"))
        .arg(action)
        .output()
        .expect("run the MariaDB ctl script");
    assert!(
        out.status.success(),
        "mariadb ctl {action} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
