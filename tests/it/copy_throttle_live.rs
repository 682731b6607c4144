//! A copy throttled by a live metric, through `ferry run` against the rig: it
//! pauses while the metric is above its threshold ("paused: load 90 > 50" in
//! its progress), stays paused while the metric's query fails (a stale value
//! cannot clear it), and resumes by itself once the metric drops.

use sqlx::{Connection, PgConnection};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support;
use support::pg::rig_var;

async fn exec(url: &str, sql: &str) {
    let mut c = PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    sqlx::raw_sql(sql)
        .execute(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_pauses_on_a_high_or_stale_metric_and_resumes_when_it_drops() {
    let schema = format!("throttle_{}", std::process::id());
    let (src, tgt) = (
        rig_var("FERRY_TEST_PG_PRIMARY"),
        rig_var("FERRY_TEST_PG_TARGET"),
    );
    exec(
        &src,
        &format!(
            "create schema {schema};
             create table {schema}.items (id bigint primary key, pad text);
             insert into {schema}.items select g, repeat('y', 100) from generate_series(1, 20000) g;
             create table {schema}.load (v float8); insert into {schema}.load values (90)"
        ),
    )
    .await;
    exec(
        &tgt,
        &format!(
            "create schema {schema}; create table {schema}.items (id bigint primary key, pad text)"
        ),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("rb.toml"),
        format!(
            r#"
[runbook]
name = "throttle"
format = 1
[connections.src]
url = "${{env:FERRY_TEST_PG_PRIMARY}}"
[connections.tgt]
url = "${{env:FERRY_TEST_PG_TARGET}}"
[[monitor.metric]]
name = "load"
sql = {{ connection = "src", query = "select v from {schema}.load", every = "500ms" }}
[[phase]]
id = "p"
  [[phase.step]]
  id = "copy"
  kind = "copy"
  from = "src"
  to = "tgt"
  tables = ["{schema}.items"]
  chunk_rows = 2000
  throttle = {{ metric = "load", above = 50 }}
  timeout = "60s"
"#
        ),
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
    // high for 4 s, then its query fails for 7 s, then it drops
    tokio::time::sleep(Duration::from_secs(4)).await;
    exec(&src, &format!("drop table {schema}.load")).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let mut tgt_conn = PgConnection::connect(&tgt).await.expect("target");
    let copied_while_held: i64 =
        sqlx::query_scalar(&format!("select count(*) from {schema}.items"))
            .fetch_one(&mut tgt_conn)
            .await
            .expect("count");
    exec(
        &src,
        &format!("create table {schema}.load (v float8); insert into {schema}.load values (10)"),
    )
    .await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("ferry ends");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let copied: i64 = sqlx::query_scalar(&format!("select count(*) from {schema}.items"))
        .fetch_one(&mut tgt_conn)
        .await
        .expect("count");
    for url in [&src, &tgt] {
        exec(url, &format!("drop schema {schema} cascade")).await;
    }
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(copied_while_held, 0, "nothing copied while held:\n{stdout}");
    assert_eq!(copied, 20000, "{stdout}");
    assert!(stdout.contains("paused: load 90 > 50"), "{stdout}");
    assert!(
        stdout.contains("paused: monitor `load` is stale"),
        "a failing metric keeps the copy paused, and says why:\n{stdout}"
    );
    assert!(stdout.contains("resumed"), "{stdout}");
}
