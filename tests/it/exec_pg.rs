//! The sql and wait executors against the rig's real PostgreSQL (and a SQLite file):
//! expectations, multi-statement scripts, server errors, redaction of the URL
//! password, waiting on a query (with and without a hold), and an unreachable server.
//! Tests that need the rig fail, never skip, when `FERRY_TEST_PG_PRIMARY` is unset.

use ferry_core::engine::connections::{Connections, RetryPolicy};
use ferry_core::engine::exec::{self, ExecCtx, MonitorView, NoMonitors};
use ferry_core::engine::redact::{url_password, Redactor};
use ferry_core::runbook::{load_str, Runbook, Step};
use ferry_core::vocab::Outcome;
use ferry_core::vocab::OutputLine;
use sqlx::{Connection, PgConnection};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_util::sync::CancellationToken;

use crate::support;
use support::pg::rig_var;

/// A runbook with connection `db` (URL from `${env:DB_URL}`) and one step `s`.
fn runbook(step_toml: &str) -> Runbook {
    let text = format!(
        "[runbook]\nname = \"t\"\ntitle = \"t\"\nformat = 1\n\n\
         [connections.db]\nurl = \"${{env:DB_URL}}\"\n\n[[phase]]\nid = \"p\"\n\n\
         [[phase.step]]\nid = \"s\"\n{step_toml}\n"
    );
    load_str("x.toml", &text, Path::new("x.toml"))
        .unwrap_or_else(|r| panic!("test runbook does not load: {r:?}\n{text}"))
}

struct Run {
    step: Step,
    ctx: ExecCtx,
    rx: UnboundedReceiver<OutputLine>,
}

impl Run {
    /// Step `s` of `rb`, with `DB_URL` set to `url`.
    fn new(rb: &Runbook, url: &str, policy: RetryPolicy, monitors: Arc<dyn MonitorView>) -> Self {
        let env: HashMap<String, String> = [("DB_URL".to_string(), url.to_string())].into();
        let lookup = move |name: &str| env.get(name).cloned();
        let mut redactor = Redactor::new();
        let conns = Connections::new(rb, &lookup, &mut redactor, policy)
            .unwrap_or_else(|e| panic!("connections: {e:?}"));
        let (tx, rx) = unbounded_channel();
        let ctx = ExecCtx {
            step: "s".to_string(),
            output: tx,
            reports: tokio::sync::mpsc::unbounded_channel().0,
            cancel: CancellationToken::new(),
            run_id: "test-run".into(),
            redactor: Arc::new(redactor),
            conns: Arc::new(conns),
            monitors,
            env: Arc::new(lookup),
        };
        let step = rb.step("s").cloned().expect("step `s`");
        Run { step, ctx, rx }
    }

    fn pg(step_toml: &str) -> Self {
        let rb = runbook(step_toml);
        Self::new(
            &rb,
            &rig_var("FERRY_TEST_PG_PRIMARY"),
            RetryPolicy::default(),
            Arc::new(NoMonitors),
        )
    }

    async fn execute(&self) -> Outcome {
        exec::execute(&self.step, &self.ctx).await
    }

    fn lines(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(l) = self.rx.try_recv() {
            out.push(l.line);
        }
        out
    }
}

fn failure(outcome: Outcome) -> String {
    match outcome {
        Outcome::Failed { error } => error,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// A table name no other test run uses.
fn unique_table(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("ferry_exec_{tag}_{}_{nanos}", std::process::id())
}

async fn primary() -> PgConnection {
    let url = rig_var("FERRY_TEST_PG_PRIMARY");
    PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the rig's primary: {e}"))
}

#[tokio::test]
async fn sql_expect_one_passes() {
    let mut run = Run::pg("kind = \"sql\"\nconnection = \"db\"\nsql = \"select 1\"\nexpect = 1");
    let outcome = run.execute().await;
    assert!(outcome.is_success(), "{outcome:?}");
    assert!(run.lines().contains(&"first value: 1".to_string()));
}

#[tokio::test]
async fn sql_expect_mismatch_fails() {
    let run = Run::pg("kind = \"sql\"\nconnection = \"db\"\nsql = \"select 0\"\nexpect = 1");
    assert_eq!(failure(run.execute().await), "expected 1, got 0");

    let run =
        Run::pg("kind = \"sql\"\nconnection = \"db\"\nsql = \"select 1 where false\"\nexpect = 1");
    assert_eq!(failure(run.execute().await), "expected 1, got no rows");
}

#[tokio::test]
async fn sql_expect_decodes_numeric_bool_and_text() {
    for (sql, expect) in [
        ("select 2.50::numeric", "2.5"),
        ("select 4::numeric", "4"),
        ("select 1 = 1", "true"),
        ("select 'on'::text", "\"on\""),
        ("select 0.25::float8", "0.25"),
    ] {
        let run = Run::pg(&format!(
            "kind = \"sql\"\nconnection = \"db\"\nsql = \"{sql}\"\nexpect = {expect}"
        ));
        let outcome = run.execute().await;
        assert!(outcome.is_success(), "{sql} vs {expect}: {outcome:?}");
    }
}

#[tokio::test]
async fn multi_statement_sql_works() {
    let mut run = Run::pg(
        "kind = \"sql\"\nconnection = \"db\"\n\
         sql = \"create temp table t (v int); insert into t values (1), (2), (3); select count(*) from t\"\n\
         expect = 3",
    );
    let outcome = run.execute().await;
    assert!(outcome.is_success(), "{outcome:?}");
    let lines = run.lines();
    assert!(lines.contains(&"3 rows affected".to_string()), "{lines:?}");
}

#[tokio::test]
async fn sql_error_gives_the_server_message() {
    let run =
        Run::pg("kind = \"sql\"\nconnection = \"db\"\nsql = \"select * from ferry_no_such_table\"");
    let error = failure(run.execute().await);
    assert!(
        error.contains("relation \"ferry_no_such_table\" does not exist"),
        "{error}"
    );
}

#[tokio::test]
async fn the_url_password_never_appears_in_output_or_outcomes() {
    let url = rig_var("FERRY_TEST_PG_PRIMARY");
    let password = url_password(&url).expect("the rig's URL has a password");
    assert!(
        password.len() >= 4,
        "the rig's password is too short to test redaction"
    );
    let mut seen = Vec::new();
    // The password as a returned value, in an error message, and in a rollback.
    for sql in [
        format!("select 'pw is {password}'"),
        format!("select * from \\\"{password}\\\""),
        format!("select '{url}'"),
    ] {
        let mut run = Run::pg(&format!(
            "kind = \"sql\"\nconnection = \"db\"\nsql = \"{sql}\""
        ));
        seen.push(run.execute().await.describe());
        seen.extend(run.lines());
        seen.extend(run.ctx.conns.url_for_display("db"));
    }
    assert!(seen.iter().any(|s| s.contains("••••••")), "{seen:?}");
    for s in &seen {
        assert!(!s.contains(&password), "the password leaked: {s}");
    }
}

#[tokio::test]
async fn wait_for_a_query_succeeds_once_a_row_appears() {
    let table = unique_table("wait");
    let mut conn = primary().await;
    sqlx::raw_sql(&format!("create table {table} (v int)"))
        .execute(&mut conn)
        .await
        .expect("create table");
    let run = Run::pg(&format!(
        "kind = \"wait\"\nuntil = {{ sql = \"select count(*) > 0 from {table}\", connection = \"db\" }}\nevery = \"200ms\""
    ));
    let insert = format!("insert into {table} values (1)");
    let writer = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        sqlx::raw_sql(&insert).execute(&mut conn).await
    };
    let started = std::time::Instant::now();
    let (outcome, inserted) = tokio::time::timeout(Duration::from_secs(15), async {
        tokio::join!(run.execute(), writer)
    })
    .await
    .expect("the wait finishes within 15s");
    inserted.expect("insert");
    assert!(outcome.is_success(), "{outcome:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    sqlx::raw_sql(&format!("drop table {table}"))
        .execute(&mut conn)
        .await
        .expect("drop table");
}

#[tokio::test]
async fn wait_with_a_hold_waits_that_long() {
    let mut run = Run::pg(
        "kind = \"wait\"\nuntil = { sql = \"select true\", connection = \"db\", for = \"2s\" }\nevery = \"300ms\"",
    );
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(15), run.execute())
        .await
        .expect("the wait finishes within 15s");
    assert!(outcome.is_success(), "{outcome:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let lines = run.lines();
    assert!(
        lines.iter().any(|l| l.starts_with("condition met")),
        "{lines:?}"
    );
}

/// Lag that is high, then low for 2s, high again for 1s, then low for good.
struct ScriptedLag {
    start: tokio::time::Instant,
}

impl MonitorView for ScriptedLag {
    fn lag(&self, monitor: &str) -> Option<Duration> {
        if monitor != "replica" {
            return None;
        }
        let t = self.start.elapsed().as_secs();
        let secs = match t {
            0..=2 => 20,
            3..=4 => 1,
            5 => 20,
            _ => 1,
        };
        Some(Duration::from_secs(secs))
    }

    fn metric(&self, _monitor: &str) -> Option<f64> {
        None
    }
}

#[tokio::test(start_paused = true)]
async fn a_hold_restarts_when_the_condition_breaks() {
    let text = "[runbook]\nname = \"t\"\ntitle = \"t\"\nformat = 1\n\
                [connections.db]\nurl = \"${env:DB_URL}\"\n\
                [[monitor.lag]]\nname = \"replica\"\nconnection = \"db\"\n\
                [[phase]]\nid = \"p\"\n[[phase.step]]\nid = \"s\"\nkind = \"wait\"\n\
                until = { lag = \"replica\", below = \"10s\", for = \"3s\" }\nevery = \"1s\"\n";
    let rb = load_str("x.toml", text, Path::new("x.toml")).unwrap_or_else(|r| panic!("{r:?}"));
    let start = tokio::time::Instant::now();
    let mut run = Run::new(
        &rb,
        "postgres://nobody@127.0.0.1:1/x",
        RetryPolicy::default(),
        Arc::new(ScriptedLag { start }),
    );
    let outcome = run.execute().await;
    assert!(outcome.is_success(), "{outcome:?}");
    // True at 3s and 4s, broken at 5s, true again from 6s: held 3s at 9s.
    assert_eq!(start.elapsed(), Duration::from_secs(9));
    let lines = run.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("condition no longer met")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("waiting: lag replica 20.0s, need < 10s")),
        "{lines:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_monitor_without_values_is_reported_once_and_cancel_stops_the_wait() {
    let text = "[runbook]\nname = \"t\"\ntitle = \"t\"\nformat = 1\n\
                [connections.db]\nurl = \"${env:DB_URL}\"\n\
                [[monitor.metric]]\nname = \"cpu\"\nsql = { connection = \"db\", query = \"select 1\" }\n\
                [[phase]]\nid = \"p\"\n[[phase.step]]\nid = \"s\"\nkind = \"wait\"\n\
                until = { metric = \"cpu\", below = 80 }\nevery = \"1s\"\n";
    let rb = load_str("x.toml", text, Path::new("x.toml")).unwrap_or_else(|r| panic!("{r:?}"));
    let mut run = Run::new(
        &rb,
        "postgres://nobody@127.0.0.1:1/x",
        RetryPolicy::default(),
        Arc::new(NoMonitors),
    );
    let cancel = run.ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        cancel.cancel();
    });
    assert_eq!(run.execute().await, Outcome::Cancelled);
    let lines = run.lines();
    // reported once while waiting, then what it last saw when it was stopped (the evidence)
    assert_eq!(
        lines,
        vec![
            "monitor `cpu` has no value yet".to_string(),
            "stopped waiting; last seen: monitor `cpu` had no current value (needed < 80)"
                .to_string()
        ]
    );
}

#[tokio::test]
async fn a_closed_port_is_unreachable_and_the_error_hides_the_password() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("local addr").port()
    };
    let url = format!("postgres://ferry:closed-port-secret@127.0.0.1:{port}/app");
    let policy = RetryPolicy {
        attempts: 3,
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(50),
    };
    for step in [
        "kind = \"sql\"\nconnection = \"db\"\nsql = \"select 1\"",
        "kind = \"wait\"\nuntil = { sql = \"select 1\", connection = \"db\" }",
    ] {
        let rb = runbook(step);
        let run = Run::new(&rb, &url, policy, Arc::new(NoMonitors));
        let outcome = tokio::time::timeout(Duration::from_secs(10), run.execute())
            .await
            .expect("gives up within 10s");
        match outcome {
            Outcome::Unreachable { error } => {
                assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
                assert!(error.contains("3 attempts"), "{error}");
                assert!(!error.contains("closed-port-secret"), "{error}");
            }
            other => panic!("expected unreachable, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn sqlite_sql_step_with_expect() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sub-less.db");
    let url = format!("sqlite://{}", path.display());
    for (sql, expect) in [
        ("create table if not exists t (v integer); insert into t values (41); select v + 1 from t", "42"),
        ("select count(*) = 1 from t", "true"),
        ("select 'x' || v from t", "\"x41\""),
        ("select v / 2.0 from t", "20.5"),
    ] {
        let rb = runbook(&format!("kind = \"sql\"\nconnection = \"db\"\nsql = \"{sql}\"\nexpect = {expect}"));
        let run = Run::new(&rb, &url, RetryPolicy::default(), Arc::new(NoMonitors));
        let outcome = run.execute().await;
        assert!(outcome.is_success(), "{sql}: {outcome:?}");
        run.ctx.conns.close().await;
    }
    assert!(path.exists(), "the sqlite file was created");
    let rb = runbook("kind = \"sql\"\nconnection = \"db\"\nsql = \"select v from t\"\nexpect = 1");
    let run = Run::new(&rb, &url, RetryPolicy::default(), Arc::new(NoMonitors));
    assert_eq!(failure(run.execute().await), "expected 1, got 41");
}
