//! The shell executor against a real `sh`: output order, exit statuses, `${env:X}`
//! expansion and redaction, and that cancelling (or dropping) a step kills every
//! process it started, not just the shell.

use ferry_core::engine::connections::{Connections, RetryPolicy};
use ferry_core::engine::exec::{self, ExecCtx, NoMonitors};
use ferry_core::engine::redact::Redactor;
use ferry_core::runbook::{load_str, Runbook, Step};
use ferry_core::vocab::Outcome;
use ferry_core::vocab::{OutputLine, Stream};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_util::sync::CancellationToken;

/// A runbook with one shell step whose keys are `step_toml`.
fn runbook(step_toml: &str) -> Runbook {
    let text = format!(
        "[runbook]\nname = \"t\"\ntitle = \"t\"\nformat = 1\n\n[[phase]]\nid = \"p\"\n\n\
         [[phase.step]]\nid = \"s\"\nkind = \"shell\"\n{step_toml}\n"
    );
    load_str("x.toml", &text, Path::new("x.toml"))
        .unwrap_or_else(|r| panic!("test runbook does not load: {r:?}\n{text}"))
}

fn step(rb: &Runbook) -> Step {
    rb.step("s").cloned().expect("the runbook has step `s`")
}

/// An execution context whose `${env:X}` lookups read `env`.
fn make_ctx(rb: &Runbook, env: &[(&str, &str)]) -> (ExecCtx, UnboundedReceiver<OutputLine>) {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |name: &str| env.get(name).cloned();
    let mut redactor = Redactor::new();
    let conns = Connections::new(rb, &lookup, &mut redactor, RetryPolicy::default())
        .expect("no connections to fail");
    let (tx, rx) = unbounded_channel();
    let ctx = ExecCtx {
        step: "s".to_string(),
        output: tx,
        reports: tokio::sync::mpsc::unbounded_channel().0,
        cancel: CancellationToken::new(),
        run_id: "test-run".into(),
        redactor: Arc::new(redactor),
        conns: Arc::new(conns),
        monitors: Arc::new(NoMonitors),
        env: Arc::new(lookup),
    };
    (ctx, rx)
}

fn drain(rx: &mut UnboundedReceiver<OutputLine>) -> Vec<OutputLine> {
    let mut out = Vec::new();
    while let Ok(line) = rx.try_recv() {
        out.push(line);
    }
    out
}

fn lines_of(lines: &[OutputLine], stream: Stream) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.stream == stream)
        .map(|l| l.line.clone())
        .collect()
}

#[tokio::test]
async fn output_lines_arrive_in_order() {
    let rb = runbook(
        r#"run = "for i in 1 2 3 4 5; do echo line$i; done; echo problem >&2; printf 'no newline'""#,
    );
    let (ctx, mut rx) = make_ctx(&rb, &[]);
    let outcome = exec::execute(&step(&rb), &ctx).await;
    assert_eq!(
        outcome,
        Outcome::Succeeded {
            summary: "exit 0".into()
        }
    );
    let lines = drain(&mut rx);
    assert_eq!(
        lines_of(&lines, Stream::Stdout),
        vec!["line1", "line2", "line3", "line4", "line5", "no newline"]
    );
    assert_eq!(lines_of(&lines, Stream::Stderr), vec!["problem"]);
    assert!(lines.iter().all(|l| l.step == "s"));
}

#[tokio::test]
async fn non_zero_exit_fails_with_the_status_and_last_stderr_line() {
    let rb = runbook(r#"run = "echo first >&2; echo 'disk full' >&2; exit 3""#);
    let (ctx, _rx) = make_ctx(&rb, &[]);
    match exec::execute(&step(&rb), &ctx).await {
        Outcome::Failed { error } => {
            assert!(error.contains("exit status 3"), "{error}");
            assert!(error.contains("disk full"), "{error}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn killed_by_a_signal_names_it() {
    let rb = runbook(r#"run = "kill -9 $$""#);
    let (ctx, _rx) = make_ctx(&rb, &[]);
    match exec::execute(&step(&rb), &ctx).await {
        Outcome::Failed { error } => assert!(error.contains("SIGKILL"), "{error}"),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn env_references_expand_and_secrets_are_redacted() {
    let rb = runbook(
        r#"run = "echo user=${env:FERRY_T_USER} pw=$DB_PASSWORD; echo token ${env:FERRY_T_API_TOKEN} >&2"
env = { DB_PASSWORD = "${env:FERRY_T_PW}", REGION = "eu-west-1" }"#,
    );
    let (ctx, mut rx) = make_ctx(
        &rb,
        &[
            ("FERRY_T_USER", "alice"),
            ("FERRY_T_PW", "correct-horse-battery"),
            ("FERRY_T_API_TOKEN", "tok-123456"),
        ],
    );
    let outcome = exec::execute(&step(&rb), &ctx).await;
    assert!(outcome.is_success(), "{outcome:?}");
    let lines = drain(&mut rx);
    assert_eq!(
        lines_of(&lines, Stream::Stdout),
        vec!["user=alice pw=••••••"]
    );
    assert_eq!(lines_of(&lines, Stream::Stderr), vec!["token ••••••"]);
    for l in &lines {
        assert!(!l.line.contains("correct-horse"), "leaked: {l:?}");
        assert!(!l.line.contains("tok-123456"), "leaked: {l:?}");
    }
}

#[tokio::test]
async fn an_unset_env_reference_fails_naming_it() {
    let rb = runbook(r#"run = "echo ${env:FERRY_T_NOT_SET}""#);
    let (ctx, _rx) = make_ctx(&rb, &[]);
    match exec::execute(&step(&rb), &ctx).await {
        Outcome::Failed { error } => assert!(error.contains("FERRY_T_NOT_SET"), "{error}"),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn cwd_is_used() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cwd = dir.path().display().to_string();
    let rb = runbook(&format!("run = \"pwd\"\ncwd = \"{cwd}\""));
    let (ctx, mut rx) = make_ctx(&rb, &[]);
    assert!(exec::execute(&step(&rb), &ctx).await.is_success());
    let out = lines_of(&drain(&mut rx), Stream::Stdout);
    let real = std::fs::canonicalize(dir.path()).expect("canonical temp dir");
    assert_eq!(out, vec![real.display().to_string()]);
}

/// A unique marker and a shell step that starts two long sleepers carrying it.
fn sleepers() -> (String, Runbook) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let marker = format!("ferry-test-sleeper-{}-{nanos}", std::process::id());
    let rb = runbook(&format!(
        "run = \"sh -c 'sleep 300; true' {marker} & sh -c 'sleep 300; true' {marker} & wait\""
    ));
    (marker, rb)
}

fn pgrep(marker: &str) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Poll until `pred` holds, for at most `limit`.
async fn eventually(limit: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if pred() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pred()
}

#[tokio::test]
async fn cancel_kills_the_whole_process_group() {
    let (marker, rb) = sleepers();
    let (ctx, _rx) = make_ctx(&rb, &[]);
    let step = step(&rb);
    let cancel = ctx.cancel.clone();
    let run = tokio::spawn(async move { exec::execute(&step, &ctx).await });
    assert!(
        eventually(Duration::from_secs(5), || pgrep(&marker).len() >= 2).await,
        "the sleepers did not start"
    );
    let started = Instant::now();
    cancel.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("cancel returns within 5s")
        .expect("the task does not panic");
    assert_eq!(outcome, Outcome::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        eventually(Duration::from_secs(5), || pgrep(&marker).is_empty()).await,
        "still running after cancel: {:?}",
        pgrep(&marker)
    );
}

#[tokio::test]
async fn dropping_the_future_kills_the_process_group() {
    let (marker, rb) = sleepers();
    let (ctx, _rx) = make_ctx(&rb, &[]);
    let step = step(&rb);
    let mut fut = Box::pin(exec::execute(&step, &ctx));
    tokio::select! {
        outcome = &mut fut => panic!("the step ended on its own: {outcome:?}"),
        started = eventually(Duration::from_secs(5), || pgrep(&marker).len() >= 2) => {
            assert!(started, "the sleepers did not start");
        }
    }
    drop(fut);
    assert!(
        eventually(Duration::from_secs(5), || pgrep(&marker).is_empty()).await,
        "still running after drop: {:?}",
        pgrep(&marker)
    );
}

#[tokio::test]
async fn shell_rollback_runs_and_step_rollbacks_are_refused() {
    let rb = runbook(
        r#"run = "true"
rollback = { run = "echo undone" }"#,
    );
    let (ctx, mut rx) = make_ctx(&rb, &[]);
    assert!(exec::rollback(&step(&rb), &ctx).await.is_success());
    assert_eq!(lines_of(&drain(&mut rx), Stream::Stdout), vec!["undone"]);

    let rb = runbook("run = \"true\"\nrollback = [\"other\"]\n\n[[phase.step]]\nid = \"other\"\nkind = \"shell\"\nrun = \"true\"\ndepends_on = []");
    let (ctx, _rx) = make_ctx(&rb, &[]);
    assert!(matches!(
        exec::rollback(&step(&rb), &ctx).await,
        Outcome::Failed { .. }
    ));
}
