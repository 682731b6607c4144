//! `mysql://` connections against the rig's real MariaDB: `sql` steps (expectations,
//! multi-statement scripts, server errors), the password taken from the environment
//! and never shown, a stopped statement killed on the server (`KILL QUERY`), `wait`
//! on a MySQL query. Verify with a MySQL source is in `mysql_verify`, which reuses
//! [`Run`].

use crate::support::mysql;
use ferry_core::engine::connections::{Connections, RetryPolicy};
use ferry_core::engine::exec::{self, ExecCtx, NoMonitors};
use ferry_core::engine::redact::Redactor;
use ferry_core::runbook::{load_str, Runbook, Step};
use ferry_core::vocab::{Outcome, OutputLine};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_util::sync::CancellationToken;

/// A runbook whose connection `db` is `url` (with `${env:…}` as a runbook holds it),
/// a PostgreSQL connection `pg`, and one step `s`.
fn runbook(url: &str, step_toml: &str) -> Runbook {
    let text = format!(
        "[runbook]\nname = \"t\"\ntitle = \"t\"\nformat = 1\n\n\
         [connections.db]\nurl = \"{url}\"\n\
         [connections.pg]\nurl = \"${{env:PG_URL}}\"\n\n[[phase]]\nid = \"p\"\n\n\
         [[phase.step]]\nid = \"s\"\n{step_toml}\n"
    );
    load_str("x.toml", &text, Path::new("x.toml"))
        .unwrap_or_else(|r| panic!("test runbook does not load: {r:?}\n{text}"))
}

pub(crate) struct Run {
    step: Step,
    ctx: ExecCtx,
    rx: UnboundedReceiver<OutputLine>,
}

impl Run {
    /// Step `s` on the rig's MariaDB database `db`: the URL in the runbook has no
    /// password; `${env:MYSQL_PASSWORD}` brings it.
    fn on(db: &str, step_toml: &str) -> Self {
        Self::on_pg(
            db,
            &crate::support::pg::rig_var("FERRY_TEST_PG_TARGET"),
            step_toml,
        )
    }

    /// [`Run::on`] with connection `pg` at `pg_url`.
    pub(crate) fn on_pg(db: &str, pg_url: &str, step_toml: &str) -> Self {
        let base = mysql::url_without_password(db);
        let url = base.replacen("@", ":${env:MYSQL_PASSWORD}@", 1);
        let rb = runbook(&url, step_toml);
        let env: HashMap<String, String> = [
            ("MYSQL_PASSWORD".to_string(), mysql::password()),
            ("PG_URL".to_string(), pg_url.to_string()),
        ]
        .into();
        let lookup = move |name: &str| env.get(name).cloned();
        let mut redactor = Redactor::new();
        let conns = Connections::new(&rb, &lookup, &mut redactor, RetryPolicy::default())
            .unwrap_or_else(|e| panic!("connections: {e:?}"));
        let (tx, rx) = unbounded_channel();
        let ctx = ExecCtx {
            step: "s".to_string(),
            output: tx,
            reports: unbounded_channel().0,
            cancel: CancellationToken::new(),
            run_id: "test-run".into(),
            redactor: Arc::new(redactor),
            conns: Arc::new(conns),
            monitors: Arc::new(NoMonitors),
            env: Arc::new(lookup),
        };
        let step = rb.step("s").cloned().expect("step `s`");
        Run { step, ctx, rx }
    }

    pub(crate) async fn execute(&self) -> Outcome {
        exec::execute(&self.step, &self.ctx).await
    }

    pub(crate) fn lines(&mut self) -> Vec<String> {
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

#[tokio::test]
async fn sql_steps_run_on_mysql_with_expectations() {
    for (sql, expect) in [
        ("select 1", "1"),
        ("select 2.50", "2.5"),
        ("select 18446744073709551615", "\"18446744073709551615\""),
        ("select 'on'", "\"on\""),
        ("select 0.25e0", "0.25"),
    ] {
        let run = Run::on(
            "ferry",
            &format!("kind = \"sql\"\nconnection = \"db\"\nsql = \"{sql}\"\nexpect = {expect}"),
        );
        let outcome = run.execute().await;
        assert!(outcome.is_success(), "{sql} vs {expect}: {outcome:?}");
    }
    let run = Run::on(
        "ferry",
        "kind = \"sql\"\nconnection = \"db\"\nsql = \"select 0\"\nexpect = 1",
    );
    assert_eq!(failure(run.execute().await), "expected 1, got 0");
}

#[tokio::test]
async fn multi_statement_scripts_report_rows_affected() {
    let db = mysql::database("ferry_exec").await;
    let mut run = Run::on(
        &db.name,
        "kind = \"sql\"\nconnection = \"db\"\n\
         sql = \"create table t (v int); insert into t values (1), (2), (3); update t set v = v + 1 where v > 1; select count(*) from t\"\n\
         expect = 3",
    );
    let outcome = run.execute().await;
    assert!(outcome.is_success(), "{outcome:?}");
    let lines = run.lines();
    assert!(lines.contains(&"3 rows affected".to_string()), "{lines:?}");
    assert!(lines.contains(&"2 rows affected".to_string()), "{lines:?}");
    assert_eq!(mysql::scalar(&db.name, "select sum(v) from t").await, "8");
}

#[tokio::test]
async fn a_server_error_is_the_servers_message() {
    let run = Run::on(
        "ferry",
        "kind = \"sql\"\nconnection = \"db\"\nsql = \"select * from ferry_no_such_table\"",
    );
    let error = failure(run.execute().await);
    assert!(
        error.contains("ferry_no_such_table' doesn't exist"),
        "{error}"
    );
}

#[tokio::test]
async fn the_password_comes_from_the_environment_and_never_shows() {
    let password = mysql::password();
    assert!(
        password.len() >= 8,
        "the rig's password is too short to test redaction"
    );
    let mut seen = Vec::new();
    for sql in [
        format!("select 'pw is {password}'"),
        format!("select * from `{password}`"),
    ] {
        let mut run = Run::on(
            "ferry",
            &format!("kind = \"sql\"\nconnection = \"db\"\nsql = \"{sql}\""),
        );
        seen.push(run.execute().await.describe());
        seen.extend(run.lines());
        seen.extend(run.ctx.conns.url_for_display("db"));
    }
    assert!(seen.iter().any(|s| s.contains("••••••")), "{seen:?}");
    for s in &seen {
        assert!(!s.contains(&password), "the password leaked: {s}");
    }
    // Without the password, the server refuses at once (not retried as unreachable).
    let rb = runbook(
        &mysql::url_without_password("ferry"),
        "kind = \"sql\"\nconnection = \"db\"\nsql = \"select 1\"",
    );
    let mut redactor = Redactor::new();
    let pg_url = crate::support::pg::rig_var("FERRY_TEST_PG_TARGET");
    let only_pg = move |name: &str| (name == "PG_URL").then(|| pg_url.clone());
    let conns = Connections::new(&rb, &only_pg, &mut redactor, RetryPolicy::default());
    let conns = conns.unwrap_or_else(|e| panic!("{e:?}"));
    let started = std::time::Instant::now();
    let err = conns.get("db").await.expect_err("no password, no login");
    assert!(err.to_string().contains("Access denied"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "not retried");
}

/// How many statements `needle` the server is running now.
async fn running(needle: &str) -> String {
    mysql::scalar(
        "ferry",
        &format!(
            "select count(*) from information_schema.processlist where info like '%{needle}%' \
             and info not like '%processlist%'"
        ),
    )
    .await
}

#[tokio::test]
async fn a_stopped_statement_is_killed_on_the_server() {
    let marker = crate::support::pg::unique("kill_me");
    let run = Run::on(
        "ferry",
        &format!("kind = \"sql\"\nconnection = \"db\"\nsql = \"select sleep(60), '{marker}'\""),
    );
    let cancel = run.ctx.cancel.clone();
    let stopper = async {
        for _ in 0..100 {
            if running(&marker).await == "1" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            running(&marker).await,
            "1",
            "the statement should be running"
        );
        cancel.cancel();
    };
    let (outcome, ()) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(run.execute(), stopper)
    })
    .await
    .expect("the step stops within 20s");
    assert_eq!(outcome, Outcome::Cancelled);
    // KILL QUERY, not a client that walked away: the server stops it at once.
    let mut left = String::new();
    for _ in 0..30 {
        left = running(&marker).await;
        if left == "0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, "0", "the statement still runs on the server");
}

#[tokio::test]
async fn wait_on_a_mysql_query_until_a_row_appears() {
    let db = mysql::database("ferry_wait").await;
    mysql::exec(&db.name, "create table t (v int)").await;
    let run = Run::on(
        &db.name,
        "kind = \"wait\"\nuntil = { sql = \"select count(*) > 0 from t\", connection = \"db\" }\nevery = \"200ms\"",
    );
    let name = db.name.clone();
    let writer = async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        mysql::exec(&name, "insert into t values (1)").await;
    };
    let started = std::time::Instant::now();
    let (outcome, ()) = tokio::time::timeout(Duration::from_secs(15), async {
        tokio::join!(run.execute(), writer)
    })
    .await
    .expect("the wait finishes within 15s");
    assert!(outcome.is_success(), "{outcome:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
}
