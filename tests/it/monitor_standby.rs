//! Lag as a cutover reads it, on real standbys: the rig's standby with WAL
//! replay paused, through `ferry run` (the journal must show lag and bytes
//! growing, and the gate holding until its timeout with the last value), and
//! a standby of our own that cannot reach its primary (it must not read as
//! caught up). Test names carry "standby": nextest runs them one at a time
//! with the other tests that pause the shared standby (.config/nextest.toml).

use ferry_core::monitor::{self, DbGetter, Hub, MonitorView};
use ferry_core::runbook::load_str;
use sqlx::{Connection, PgConnection};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use crate::support;
use support::pg::{rig_var, ResumeReplay};

#[derive(Debug, serde::Deserialize)]
struct Line {
    entry: serde_json::Value,
}

fn journal(dir: &Path) -> Vec<serde_json::Value> {
    let runs = dir.join("runs/standby-lag");
    let file = std::fs::read_dir(&runs)
        .expect("runs dir")
        .flatten()
        .next()
        .expect("a journal")
        .path();
    std::fs::read_to_string(file)
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str::<Line>(l).expect("json line").entry)
        .collect()
}

fn samples(entries: &[serde_json::Value], series: &str) -> Vec<f64> {
    entries
        .iter()
        .filter(|e| e["kind"] == "sample" && e["monitor"] == "sb" && e["series"] == series)
        .filter_map(|e| e["value"].as_f64())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_standby_journals_growing_lag_and_bytes_and_holds_the_gate() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("rb.toml"),
        r#"
[runbook]
name = "standby-lag"
format = 1
[connections.standby]
url = "${env:FERRY_TEST_PG_STANDBY}"
[[monitor.lag]]
name = "sb"
connection = "standby"
every = "500ms"
[[phase]]
id = "p"
  [[phase.step]]
  id = "caught-up"
  kind = "wait"
  until = { lag = "sb", below = "1s", for = "60s" }
  every = "500ms"
  timeout = "13s"
"#,
    )
    .expect("runbook");
    let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(dir.path())
        .args(["run", "rb.toml", "--headless", "--yes"])
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferry");
    // the first journaled sample is the caught-up one
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let standby_url = rig_var("FERRY_TEST_PG_STANDBY");
    let _guard = ResumeReplay(standby_url.clone());
    let mut standby = PgConnection::connect(&standby_url).await.expect("standby");
    sqlx::query("select pg_wal_replay_pause()")
        .execute(&mut standby)
        .await
        .expect("pause replay");
    let mut primary = PgConnection::connect(&rig_var("FERRY_TEST_PG_PRIMARY"))
        .await
        .expect("primary");
    let table = format!("standby_probe_{}", std::process::id());
    sqlx::query(&format!("create table {table} (v text)"))
        .execute(&mut primary)
        .await
        .expect("create");
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        sqlx::query(&format!(
            "insert into {table} select repeat('x', 500) from generate_series(1, 200)"
        ))
        .execute(&mut primary)
        .await
        .expect("write on the primary");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("ferry ends");
    sqlx::query("select pg_wal_replay_resume()")
        .execute(&mut standby)
        .await
        .expect("resume replay");
    let _ = sqlx::query(&format!("drop table {table}"))
        .execute(&mut primary)
        .await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "the gate times out:\n{stdout}");

    let entries = journal(dir.path());
    let lag = samples(&entries, "lag");
    let bytes = samples(&entries, "lag_bytes");
    assert!(lag.len() >= 2 && bytes.len() >= 2, "{lag:?} {bytes:?}");
    assert!(lag[0] < 1.0, "caught up at first: {lag:?}");
    assert!(
        lag[lag.len() - 1] > 5.0,
        "lag grows while replay is paused: {lag:?}"
    );
    assert!(
        bytes[bytes.len() - 1] > bytes[0] && bytes[bytes.len() - 1] > 100_000.0,
        "bytes behind grow in the journal: {bytes:?}"
    );
    // the gate held until its timeout and journaled what it last saw
    let last_seen = entries
        .iter()
        .filter_map(|e| e["line"].as_str())
        .find(|l| l.starts_with("stopped waiting; last seen: lag sb"))
        .unwrap_or_else(|| panic!("the last value is journaled:\n{stdout}"));
    let secs: f64 = last_seen
        .trim_start_matches("stopped waiting; last seen: lag sb ")
        .split('s')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a number of seconds in `{last_seen}`"));
    assert!(secs > 5.0, "{last_seen}");

    // the report charts bytes behind too, and stays within its JSON schema
    let journal_path = std::fs::read_dir(dir.path().join("runs/standby-lag"))
        .expect("runs")
        .flatten()
        .next()
        .expect("journal")
        .path();
    let report = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "report",
            &journal_path.to_string_lossy(),
            "--format",
            "json",
        ])
        .output()
        .expect("ferry report");
    assert!(report.status.success(), "{report:?}");
    let v: serde_json::Value = serde_json::from_slice(&report.stdout).expect("report JSON");
    assert!(
        v["series"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x["series"] == "lag_bytes")),
        "{v}"
    );
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/report.schema.json"),
        )
        .expect("schema"),
    )
    .expect("schema json");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// Run a PostgreSQL tool as the owner of the rig's clusters.
fn pg_tool(tool: &str, args: &[&str]) -> std::process::Output {
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

/// Our own standby, stopped on drop.
struct Cluster(PathBuf);
impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.0.join("data");
        let _ = pg_tool(
            "pg_ctl",
            &["-D", &data.to_string_lossy(), "-m", "immediate", "stop"],
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_cut_off_from_its_primary_is_not_read_as_caught_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    if std::env::var("FERRY_TEST_RUN_AS").as_deref() == Ok("postgres") {
        let out = Command::new("chown")
            .args(["postgres", &root.to_string_lossy()])
            .output()
            .expect("chown");
        assert!(out.status.success(), "{out:?}");
    }
    let data = root.join("data");
    let data_s = data.to_string_lossy().to_string();
    let out = pg_tool(
        "initdb",
        &["-D", &data_s, "-U", "ferry", "--auth=trust", "--no-sync"],
    );
    assert!(out.status.success(), "initdb: {out:?}");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    // a standby whose primary does not exist: its WAL receiver never streams
    let conf = format!(
        "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nprimary_conninfo = 'host=127.0.0.1 port=1 connect_timeout=1'\n",
        root.to_string_lossy()
    );
    let conf_path = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf_path).expect("conf");
    text.push_str(&conf);
    std::fs::write(&conf_path, text).expect("conf");
    std::fs::write(data.join("standby.signal"), "").expect("signal");
    let log = root.join("log").to_string_lossy().to_string();
    let _cluster = Cluster(root.clone());
    let out = pg_tool("pg_ctl", &["-D", &data_s, "-l", &log, "-w", "start"]);
    assert!(
        out.status.success(),
        "pg_ctl start: {out:?}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let url = format!("postgres://ferry@127.0.0.1:{port}/postgres");
    let mut c = PgConnection::connect(&url).await.expect("our standby");
    let in_recovery: bool = sqlx::query_scalar("select pg_is_in_recovery()")
        .fetch_one(&mut c)
        .await
        .expect("query");
    assert!(in_recovery, "it is a standby");

    let rb = load_str(
        "cut.toml",
        r#"
[runbook]
name = "cut"
format = 1
[connections.standby]
url = "postgres://ferry@127.0.0.1:1/x"
[[monitor.lag]]
name = "sb"
connection = "standby"
every = "500ms"
[[phase]]
id = "p"
  [[phase.step]]
  id = "x"
  kind = "confirm"
"#,
        Path::new("cut.toml"),
    )
    .unwrap_or_else(|r| panic!("{r:?}"));
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .expect("pool");
    let getter: DbGetter = Arc::new(move |_name: String| {
        let pool = pool.clone();
        Box::pin(async move { Ok(ferry_core::db::Db::Pg(pool)) })
    });
    let cancel = CancellationToken::new();
    let (hub, _records): (Arc<Hub>, _) = monitor::spawn(&rb, getter, None, cancel.clone());
    let deadline = Instant::now() + Duration::from_secs(15);
    let stale = loop {
        let snap = hub.snapshot();
        let sb = snap.lag.iter().find(|l| l.name == "sb").expect("series");
        if let Some(s) = &sb.stale {
            break s.error.clone();
        }
        assert!(
            sb.samples.is_empty(),
            "a standby that receives nothing is not caught up, got {:?}",
            sb.samples
        );
        assert!(Instant::now() < deadline, "no reading within 15s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(stale.contains("not streaming"), "{stale}");
    assert_eq!(hub.lag("sb"), None, "a gate cannot pass on it");
    cancel.cancel();
}
