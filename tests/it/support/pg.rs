//! Helpers of the tests that run against the rig's real PostgreSQL (the primary, the
//! streaming standby and the separate target cluster that `scripts/test` starts):
//! the rig's URLs, throwaway databases, SQL run outside ferry's own code, and
//! independent fingerprints of a table. A missing rig variable fails the test, it
//! never skips it.

use ferry_core::db::Db;
use sqlx::{Connection, PgConnection, PgPool};
use std::process::{Command, Stdio};

/// A rig variable (`FERRY_TEST_PG_PRIMARY`, ...), or a panic saying how to get it.
pub fn rig_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test, which starts the PostgreSQL rig")
    })
}

/// A name no other test (or earlier run) uses: `prefix_pid_micros`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros() % 1_000_000_000
    )
}

/// `url` with its database replaced by `db`.
pub fn with_db(url: &str, db: &str) -> String {
    let (base, _) = url
        .rsplit_once('/')
        .expect("a postgres URL with a database");
    format!("{base}/{db}")
}

/// Run SQL on `url` (several statements allowed); a failure fails the test.
pub async fn exec(url: &str, sql: &str) {
    let mut c = PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect: {e}"));
    sqlx::raw_sql(sql)
        .execute(&mut c)
        .await
        .unwrap_or_else(|e| panic!("test SQL failed: {e}\n{sql}"));
    let _ = c.close().await;
}

/// The first column of the first row of `sql`, as text ("" for NULL).
pub async fn scalar(url: &str, sql: &str) -> String {
    let mut c = PgConnection::connect(url).await.expect("connect");
    let v = sqlx::query_scalar::<_, Option<String>>(sql)
        .fetch_one(&mut c)
        .await
        .unwrap_or_else(|e| panic!("test query failed: {e}\n{sql}"))
        .unwrap_or_default();
    let _ = c.close().await;
    v
}

/// Count and an order-independent digest of every row, by an independent query.
pub async fn fingerprint(url: &str, table: &str) -> String {
    scalar(
        url,
        &format!(
            "select count(*)::text || ' ' || coalesce(md5(string_agg(t::text, '|' order by t::text)), '-') from {table} t"
        ),
    )
    .await
}

/// Clean-up SQL for a `Drop`: each `(url, sql)` run on a thread of its own (a drop
/// may happen inside a runtime), errors ignored (the test already said what failed).
pub fn cleanup(statements: Vec<(String, String)>) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            for (url, sql) in statements {
                if let Ok(mut c) = PgConnection::connect(&url).await {
                    let _ = sqlx::raw_sql(&sql).execute(&mut c).await;
                    let _ = c.close().await;
                }
            }
        });
        Some(())
    })
    .join();
}

/// A database made for one test on the primary (source) and on the target cluster,
/// both named `name`; dropped (forcefully) when the test ends.
pub struct DbPair {
    pub src_url: String,
    pub tgt_url: String,
    pub name: String,
}

impl DbPair {
    pub async fn new(prefix: &str) -> DbPair {
        let name = unique(prefix);
        for var in ["FERRY_TEST_PG_PRIMARY", "FERRY_TEST_PG_TARGET"] {
            exec(&rig_var(var), &format!("create database {name}")).await;
        }
        DbPair {
            src_url: with_db(&rig_var("FERRY_TEST_PG_PRIMARY"), &name),
            tgt_url: with_db(&rig_var("FERRY_TEST_PG_TARGET"), &name),
            name,
        }
    }

    /// Pools on both databases, as ferry's engines take them.
    pub async fn pools(&self) -> (Db, Db) {
        let s = PgPool::connect(&self.src_url).await.expect("source pool");
        let t = PgPool::connect(&self.tgt_url).await.expect("target pool");
        (Db::Pg(s), Db::Pg(t))
    }
}

impl Drop for DbPair {
    fn drop(&mut self) {
        let sql = format!("drop database if exists {} with (force)", self.name);
        cleanup(
            ["FERRY_TEST_PG_PRIMARY", "FERRY_TEST_PG_TARGET"]
                .iter()
                .filter_map(|v| std::env::var(v).ok())
                .map(|url| (url, sql.clone()))
                .collect(),
        );
    }
}

/// A database made for one test on one rig cluster (`var`: `FERRY_TEST_PG_PRIMARY`,
/// `FERRY_TEST_PG_TARGET`); dropped (forcefully) when the test ends.
pub struct TestDb {
    pub url: String,
    pub name: String,
    admin: String,
}

impl TestDb {
    pub async fn new(var: &str, prefix: &str) -> TestDb {
        let admin = rig_var(var);
        let name = unique(prefix);
        exec(&admin, &format!("create database {name}")).await;
        TestDb {
            url: with_db(&admin, &name),
            name,
            admin,
        }
    }

    /// Run SQL in this database.
    pub async fn exec(&self, sql: &str) {
        exec(&self.url, sql).await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("drop database if exists {} with (force)", self.name);
        cleanup(vec![(self.admin.clone(), sql)]);
    }
}

/// Run a PostgreSQL tool as the user that owns the rig's clusters (`postgres` when the
/// tests run as root), from `/` so that it can read its working directory.
pub fn pg_tool(tool: &str, args: &[&str]) -> std::process::Output {
    let bin = format!("{}/{tool}", rig_var("FERRY_TEST_PG_BIN"));
    let mut cmd = if std::env::var("FERRY_TEST_RUN_AS").as_deref() == Ok("postgres") {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", bin.as_str()]);
        c
    } else {
        Command::new(&bin)
    };
    cmd.args(args)
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"))
}

pub fn pg_tool_ok(tool: &str, args: &[&str]) {
    let out = pg_tool(tool, args);
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PostgreSQL cluster of the test's own (trust auth, user `postgres`), in the rig
/// directory (the rig stops any cluster left there): for tests that restart or stop
/// a server. Restarting the rig's primary would cut off every other test using it at
/// that moment: they run in parallel.
pub struct OwnCluster {
    pub data: String,
    pub url: String,
}

impl OwnCluster {
    pub fn start() -> OwnCluster {
        let data = format!(
            "{}/{}",
            rig_var("FERRY_TEST_RIG_DIR"),
            unique("own_cluster")
        );
        pg_tool_ok(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        // Written by the cluster's owner, like the rest of its data directory.
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = ''\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nshared_buffers = 64MB\n"
        );
        let script = format!("cat >> {data}/postgresql.conf <<'EOF'\n{conf}EOF\n");
        let out = if std::env::var("FERRY_TEST_RUN_AS").as_deref() == Ok("postgres") {
            Command::new("runuser")
                .args(["-u", "postgres", "--", "sh", "-c", &script])
                .current_dir("/")
                .output()
        } else {
            Command::new("sh").args(["-c", &script]).output()
        }
        .expect("configure the cluster");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = format!("{data}.log");
        pg_tool_ok(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-w", "-t", "60", "start"],
        );
        OwnCluster {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            data,
        }
    }

    /// Stop the server now (`pg_ctl stop -m fast`); the data stays until drop.
    pub fn stop_fast(&self) {
        pg_tool_ok("pg_ctl", &["-D", &self.data, "-m", "fast", "-w", "stop"]);
    }

    pub fn restart_fast(&self) {
        let log = format!("{}/primary-restart.log", rig_var("FERRY_TEST_RIG_DIR"));
        pg_tool_ok(
            "pg_ctl",
            &[
                "-D", &self.data, "-l", &log, "-w", "-t", "60", "restart", "-m", "fast",
            ],
        );
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = pg_tool(
            "pg_ctl",
            &["-D", &self.data, "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Resumes WAL replay on the standby at its URL when dropped: a test that pauses
/// the rig's shared standby never leaves it paused, whatever happened.
pub struct ResumeReplay(pub String);

impl Drop for ResumeReplay {
    fn drop(&mut self) {
        cleanup(vec![(
            self.0.clone(),
            "select pg_wal_replay_resume()".to_string(),
        )]);
    }
}
