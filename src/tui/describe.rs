//! What a step runs, in words, for the detail pane and the dialogs: the shell
//! command, the SQL, the wait condition, a copy or verify summary. `${vars.X}`
//! were filled in by the loader; `${env:X}` stay as written and are never
//! expanded here, so secrets from the environment cannot reach the screen.

use ferry_core::runbook::{
    Check, Compare, Condition, CopyStep, DmsAction, DmsStep, RdsAction, RdsStep, Rollback,
    ShellStep, Step, StepKind, VerifyStep,
};
use std::time::Duration;

fn d(x: Duration) -> String {
    humantime::format_duration(x).to_string()
}

fn cmp(c: Compare) -> &'static str {
    match c {
        Compare::Above => "above",
        Compare::Below => "below",
    }
}

/// A wait or throttle condition in words.
pub fn condition(c: &Condition) -> String {
    match c {
        Condition::Lag {
            monitor,
            compare,
            threshold,
        } => format!("lag `{monitor}` {} {}", cmp(*compare), d(*threshold)),
        Condition::Metric {
            monitor,
            compare,
            threshold,
        } => format!("metric `{monitor}` {} {threshold}", cmp(*compare)),
        Condition::Sql { connection, query } => format!("sql on {connection}: {query}"),
        Condition::CaughtUp { primary, by } => caught_up(primary, by),
        Condition::Dms { monitor, gate } => match gate {
            ferry_core::runbook::DmsGate::FullLoadDone => {
                format!("dms `{monitor}`: every table's full load done")
            }
            ferry_core::runbook::DmsGate::LatencyBelow(l) => {
                format!("dms `{monitor}`: CDC latency below {}", d(*l))
            }
        },
    }
}

/// A caught-up proof in words: "`replica` applied past `old`'s position at the start".
pub fn caught_up(primary: &str, by: &ferry_core::runbook::CatchUpBy) -> String {
    match by {
        ferry_core::runbook::CatchUpBy::Replica(r) => format!(
            "caught up: standby `{r}` replayed past `{primary}`'s WAL position at the start of the wait"
        ),
        ferry_core::runbook::CatchUpBy::Slot(s) => format!(
            "caught up: slot `{s}` confirmed past `{primary}`'s WAL position at the start of the wait"
        ),
    }
}

fn tables(t: &[String], exclude: &[String]) -> String {
    let mut s = t.join(", ");
    if !exclude.is_empty() {
        s.push_str(&format!(" (except {})", exclude.join(", ")));
    }
    s
}

/// A literal value of a secret-named variable is masked; a `${env:X}` reference is shown as-is.
fn env_value(name: &str, value: &str) -> String {
    let is_ref = value.trim().starts_with("${env:") && value.trim().ends_with('}');
    if ferry_core::runbook::expand::is_secret_name(name) && !is_ref {
        ferry_core::engine::redact::MASK.to_string()
    } else {
        value.to_string()
    }
}

/// The lines saying what the step will run (unwrapped; the caller wraps them).
pub fn runs(step: &Step) -> Vec<String> {
    match &step.kind {
        StepKind::Confirm => {
            vec!["nothing runs: the confirmation itself is the step".to_string()]
        }
        StepKind::Shell(sh) => shell_runs(sh),
        StepKind::Sql(q) => {
            let mut out = vec![format!("sql on {}:", q.connection)];
            out.extend(q.sql.trim().lines().map(|l| format!("  {l}")));
            if let Some(e) = &q.expect {
                out.push(format!("expect {e}"));
            }
            out
        }
        StepKind::Wait(w) => {
            let mut s = format!("wait until {}", condition(&w.until));
            if let Some(h) = w.hold {
                s.push_str(&format!(" for {}", d(h)));
            }
            s.push_str(&format!(", checking every {}", d(w.every)));
            vec![s]
        }
        StepKind::Copy(c) => copy_runs(c),
        StepKind::Verify(v) => verify_runs(v),
        StepKind::Rds(r) => vec![rds_runs(r)],
        StepKind::Dms(d) => dms_runs(d),
        StepKind::Replicate(r) => replicate_runs(r),
    }
}

/// A replicate step: what it creates or drops, and between which connections.
fn replicate_runs(r: &ferry_core::runbook::ReplicateStep) -> Vec<String> {
    use ferry_core::runbook::ReplicateAction;
    let what = tables(&r.tables, &r.exclude);
    match r.action {
        ReplicateAction::Start => vec![
            format!("logical replication {what}  {} → {}", r.from, r.to),
            format!(
                "checks first, then creates publication, slot and subscription `{}`; done when every table is ready",
                r.name
            ),
            "rollback or abort drops them again".to_string(),
        ],
        ReplicateAction::Stop => vec![
            format!("stop logical replication `{}`  {} → {}", r.name, r.from, r.to),
            "copies the sequences, then drops the subscription, the slot and the publication"
                .to_string(),
        ],
    }
}

/// A DMS step: the action on its task, what it waits for, and for `create` the
/// table mappings and every task setting it sends (the settings that make
/// failures loud are what the operator confirms).
fn dms_runs(d: &DmsStep) -> Vec<String> {
    let mut out = vec![format!("dms {} task {}", d.action.name(), d.task)];
    match &d.action {
        DmsAction::Create(c) => {
            out.push(format!(
                "{} · instance {} · {} → {}",
                c.migration.api_name(),
                c.instance,
                c.source_endpoint,
                c.target_endpoint
            ));
            out.push(format!("tables {}", tables(&c.tables, &c.exclude)));
            out.push("then waits until the task is `ready`".into());
            out.push("task settings:".into());
            let settings = ferry_core::aws::dms::task_settings(c);
            if let Some(groups) = settings.as_object() {
                for (group, v) in groups {
                    let pairs: Vec<String> = v
                        .as_object()
                        .map(|o| o.iter().map(|(k, x)| format!("{k}={x}")).collect())
                        .unwrap_or_default();
                    out.push(format!("  {group}: {}", pairs.join(", ").replace('"', "")));
                }
            }
        }
        other => {
            if let Some(p) = other.cdc_stop_position() {
                out.push(format!("CDC stop position {p}"));
            }
            if let Some(w) = ferry_core::aws::dms::wait_target(d) {
                out.push(format!("then waits for `{}`", w.name()));
            }
        }
    }
    out.push("fails on any errored, suspended or validation-failing table, or a task stopped by a failure".into());
    out
}

/// A shell step: its command lines, its environment (secrets masked) and its directory.
fn shell_runs(sh: &ShellStep) -> Vec<String> {
    let mut out: Vec<String> = sh.run.lines().map(|l| format!("$ {l}")).collect();
    for (k, v) in &sh.env {
        out.push(format!("env {k}={}", env_value(k, v)));
    }
    if let Some(cwd) = &sh.cwd {
        out.push(format!("in {cwd}"));
    }
    out
}

/// A copy step: its tables and connections, chunking, throttle and filters.
fn copy_runs(c: &CopyStep) -> Vec<String> {
    let mut out = vec![format!(
        "copy {}  {} → {}",
        tables(&c.tables, &c.exclude),
        c.from,
        c.to
    )];
    let mut opts = vec![
        format!("chunks of {} rows", c.chunk_rows),
        format!("{} in parallel", c.parallel),
    ];
    if c.truncate {
        opts.push("truncates the target tables first".into());
    }
    out.push(opts.join(" · "));
    if let Some(t) = &c.throttle {
        out.push(format!("pauses while {}", condition(t)));
    }
    for (t, w) in &c.filters {
        out.push(format!("where {t}: {w}"));
    }
    out
}

/// A verify step: its tables and connections, checks and limits.
fn verify_runs(v: &VerifyStep) -> Vec<String> {
    let checks: Vec<&str> = v
        .checks
        .iter()
        .map(|c| match c {
            Check::Schema => "schema",
            Check::Counts => "counts",
            Check::Checksums => "checksums",
            Check::Sample => "sample",
        })
        .collect();
    let mut out = vec![format!(
        "verify {}  {} ↔ {}",
        tables(&v.tables, &v.exclude),
        v.source,
        v.target
    )];
    let mut opts = vec![format!("checks {}", checks.join(", "))];
    if v.checks.contains(&Check::Sample) {
        opts.push(format!("sample {} rows", v.sample));
    }
    opts.push(format!("names up to {} differences", v.max_diffs));
    if let Some(t) = v.time_limit {
        opts.push(format!("time limit {}", d(t)));
    }
    out.push(opts.join(" · "));
    out
}

/// An RDS step: the action on its instance, with what it needs, and what it waits for.
fn rds_runs(r: &RdsStep) -> String {
    let mut s = format!("rds {} instance {}", r.action.name(), r.action.instance());
    match &r.action {
        RdsAction::CreateReadReplica {
            source_instance,
            instance_class,
            ..
        } => {
            s.push_str(&format!(" from {source_instance}"));
            if let Some(c) = instance_class {
                s.push_str(&format!(" ({c})"));
            }
        }
        RdsAction::CreateSnapshot { snapshot, .. } => {
            s.push_str(&format!(" snapshot {snapshot}"));
        }
        RdsAction::WaitStatus { status, .. } => {
            s.push_str(&format!(" until {status}"));
        }
        _ => {}
    }
    if let Some(w) = &r.wait {
        s.push_str(&format!(", then wait for `{w}`"));
    }
    s
}

/// What rolling the step back runs, if it can be rolled back.
pub fn rollback(step: &Step) -> Option<Vec<String>> {
    Some(match step.rollback.as_ref()? {
        Rollback::Shell { run } => run.lines().map(|l| format!("$ {l}")).collect(),
        Rollback::Sql { sql, connection } => {
            let mut out = vec![format!("sql on {connection}:")];
            out.extend(sql.trim().lines().map(|l| format!("  {l}")));
            out
        }
        Rollback::Steps(ids) => vec![format!("runs the steps {}", ids.join(", "))],
    })
}

/// Step settings worth a glance: confirmation mode, timeout, retries, on failure.
pub fn settings(step: &Step) -> String {
    use ferry_core::runbook::{ConfirmMode, OnFailure};
    let mut parts = vec![match step.confirm {
        ConfirmMode::Operator => "operator confirms".to_string(),
        ConfirmMode::TwoPerson => "two-person".to_string(),
        ConfirmMode::None => "runs by itself".to_string(),
    }];
    if let Some(t) = step.timeout {
        parts.push(format!("timeout {}", d(t)));
    }
    if step.retries.max > 0 {
        parts.push(format!("{} retries", step.retries.max));
    }
    parts.push(
        match step.on_failure {
            OnFailure::Halt => "halts on failure",
            OnFailure::Continue => "continues on failure",
            OnFailure::Rollback => "rolls back on failure",
        }
        .to_string(),
    );
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rb() -> ferry_core::runbook::Runbook {
        let src = r#"
[runbook]
name = "t"
title = "T"
format = 1
[vars]
inst = "prod-v2"
[connections.source]
url = "${env:SOURCE_URL}"
[[phase]]
id = "p"
  [[phase.step]]
  id = "sh"
  kind = "shell"
  run = "deploy --to ${vars.inst} --token ${env:DEPLOY_TOKEN}"
  env = { API_TOKEN = "hunter22", REGION = "eu" }
  rollback = { run = "undeploy" }
  [[phase.step]]
  id = "q"
  kind = "sql"
  connection = "source"
  sql = "select 1"
  expect = 1
"#;
        ferry_core::runbook::load_str("t.toml", src, std::path::Path::new("t.toml"))
            .unwrap_or_else(|e| panic!("{}", e.render()))
    }

    #[test]
    fn shell_shows_vars_filled_env_as_written_and_masks_literal_secrets() {
        let rb = rb();
        let lines = runs(rb.step("sh").expect("step"));
        assert_eq!(
            lines[0],
            "$ deploy --to prod-v2 --token ${env:DEPLOY_TOKEN}"
        );
        assert!(
            lines.contains(&"env API_TOKEN=••••••".to_string()),
            "{lines:?}"
        );
        assert!(lines.contains(&"env REGION=eu".to_string()));
        assert!(!lines.join("\n").contains("hunter22"));
        assert_eq!(
            rollback(rb.step("sh").expect("step")),
            Some(vec!["$ undeploy".to_string()])
        );
    }

    #[test]
    fn sql_shows_connection_query_and_expectation() {
        let rb = rb();
        let lines = runs(rb.step("q").expect("step"));
        assert_eq!(lines, vec!["sql on source:", "  select 1", "expect 1"]);
        assert_eq!(rollback(rb.step("q").expect("step")), None);
    }
}
