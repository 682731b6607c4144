//! The `dms` step actions on an AWS DMS replication task: create (with settings that
//! make every failure loud), start, resume, reload, stop and wait, each followed by
//! polling DescribeReplicationTasks and DescribeTableStatistics until the wanted state.
//!
//! DMS's defaults hide failures: a failing table is suspended while the task keeps
//! running, data errors only reach the task log. So every look at the task also
//! judges it ([`problems`]): an errored or suspended table, validation that found
//! failed records, a task that failed or stopped with a failure message each fail
//! the step, naming the table and the message. Nothing here reports success over
//! an errored or suspended table.

use super::rds::{call, Pace};
use super::{classify, AwsError};
use crate::results::dms::{DmsReport, TableStat, TaskState};
use crate::runbook::{DmsAction, DmsMigration, DmsStep, DmsTaskSpec, DmsWait};
use aws_sdk_databasemigration as sdk;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Progress messages for the operator while an action runs or waits.
pub type Note<'a> = &'a (dyn Fn(String) + Send + Sync);

/// The DMS object locator of a table glob: `*` becomes DMS's `%`, and a glob
/// without a schema (`users`) means that table in any schema.
fn locator(glob: &str) -> (String, String) {
    let (schema, table) = glob.split_once('.').unwrap_or(("*", glob));
    (schema.replace('*', "%"), table.replace('*', "%"))
}

/// The TableMappings document of a `create`: one selection rule per glob,
/// includes first, then excludes.
pub fn table_mappings(spec: &DmsTaskSpec) -> Value {
    let mut rules = Vec::new();
    let all = spec
        .tables
        .iter()
        .map(|g| (g, "include"))
        .chain(spec.exclude.iter().map(|g| (g, "exclude")));
    for (i, (glob, action)) in all.enumerate() {
        let (schema, table) = locator(glob);
        rules.push(json!({
            "rule-type": "selection",
            "rule-id": (i + 1).to_string(),
            "rule-name": format!("ferry-{}-{}", action, i + 1),
            "object-locator": { "schema-name": schema, "table-name": table },
            "rule-action": action,
        }));
    }
    json!({ "rules": rules })
}

/// The ReplicationTaskSettings of a `create`: DMS's quiet defaults turned loud.
/// Table and data errors (truncation included) stop the task instead of suspending
/// the table or only logging; LOBs are migrated whole (full LOB mode), so none is
/// ever cut to a size limit; validation is on, so the step can see failed records.
pub fn task_settings(spec: &DmsTaskSpec) -> Value {
    let _ = spec; // the same settings for every task today; the spec is where options would go
    json!({
        "TargetMetadata": {
            "SupportLobs": true,
            "FullLobMode": true,
            "LimitedSizeLobMode": false,
            "LobChunkSize": 64
        },
        "ErrorBehavior": {
            "DataErrorPolicy": "STOP_TASK",
            "DataTruncationErrorPolicy": "STOP_TASK",
            "DataErrorEscalationPolicy": "STOP_TASK",
            "DataErrorEscalationCount": 0,
            "TableErrorPolicy": "STOP_TASK",
            "TableErrorEscalationPolicy": "STOP_TASK",
            "TableErrorEscalationCount": 0,
            "ApplyErrorDeletePolicy": "STOP_TASK",
            "ApplyErrorInsertPolicy": "STOP_TASK",
            "ApplyErrorUpdatePolicy": "STOP_TASK",
            "ApplyErrorEscalationPolicy": "STOP_TASK",
            "ApplyErrorEscalationCount": 0,
            "FailOnNoTablesCaptured": true
        },
        "ValidationSettings": {
            "EnableValidation": true,
            "ValidationMode": "ROW_LEVEL",
            "FailureMaxCount": 10000,
            "HandleCollationDiff": false,
            "ThreadCount": 5
        },
        "Logging": { "EnableLogging": true }
    })
}

/// The task's state, found by ARN or by identifier.
pub async fn describe(client: &sdk::Client, task: &str) -> Result<TaskState, AwsError> {
    let by = if task.starts_with("arn:") {
        "replication-task-arn"
    } else {
        "replication-task-id"
    };
    let filter = sdk::types::Filter::builder()
        .name(by)
        .values(task)
        .build()
        .map_err(|e| AwsError::Other(e.to_string()))?;
    let missing = || AwsError::NotFound(format!("DMS task `{task}` does not exist"));
    let out = client
        .describe_replication_tasks()
        .filters(filter)
        .without_settings(true)
        .send()
        .await
        .map_err(|e| match classify(&e) {
            AwsError::NotFound(_) => missing(),
            other => other,
        })?;
    let t = out.replication_tasks().first().ok_or_else(missing)?;
    Ok(task_state(t))
}

fn task_state(t: &sdk::types::ReplicationTask) -> TaskState {
    let stats = t.replication_task_stats();
    let text = |s: Option<&str>| s.filter(|s| !s.trim().is_empty()).map(str::to_string);
    TaskState {
        task: t
            .replication_task_identifier()
            .unwrap_or_default()
            .to_string(),
        arn: t.replication_task_arn().unwrap_or_default().to_string(),
        status: t.status().unwrap_or("unknown").to_string(),
        migration_type: t.migration_type().map(|m| m.as_str().to_string()),
        stop_reason: text(t.stop_reason()),
        last_failure_message: text(t.last_failure_message()),
        full_load_percent: stats.map(|s| s.full_load_progress_percent()),
        tables_loaded: stats.map(|s| s.tables_loaded()),
        tables_loading: stats.map(|s| s.tables_loading()),
        tables_queued: stats.map(|s| s.tables_queued()),
        tables_errored: stats.map(|s| s.tables_errored()),
        cdc_stop_position: text(t.cdc_stop_position()),
        instance_arn: text(t.replication_instance_arn()),
        recovery_checkpoint: text(t.recovery_checkpoint()),
    }
}

/// The identifier of the replication instance `arn` (CloudWatch's
/// `ReplicationInstanceIdentifier` dimension).
pub async fn instance_identifier(client: &sdk::Client, arn: &str) -> Result<String, AwsError> {
    let filter = sdk::types::Filter::builder()
        .name("replication-instance-arn")
        .values(arn)
        .build()
        .map_err(|e| AwsError::Other(e.to_string()))?;
    let out = client
        .describe_replication_instances()
        .filters(filter)
        .send()
        .await
        .map_err(|e| classify(&e))?;
    out.replication_instances()
        .first()
        .and_then(|i| i.replication_instance_identifier())
        .map(str::to_string)
        .ok_or_else(|| {
            AwsError::NotFound(format!("DMS replication instance `{arn}` does not exist"))
        })
}

/// Every table of the task (all pages). A task that never ran has no statistics:
/// DMS answers InvalidResourceStateFault, which is an empty list here.
pub async fn table_statistics(client: &sdk::Client, arn: &str) -> Result<Vec<TableStat>, AwsError> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = client
            .describe_table_statistics()
            .replication_task_arn(arn)
            .max_records(500)
            .set_marker(marker.clone())
            .send()
            .await;
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                let code = e.as_service_error().and_then(|s| {
                    use sdk::error::ProvideErrorMetadata;
                    s.code().map(str::to_string)
                });
                if code.as_deref() == Some("InvalidResourceStateFault") {
                    return Ok(out);
                }
                return Err(classify(&e));
            }
        };
        for t in page.table_statistics() {
            out.push(TableStat {
                schema: t.schema_name().unwrap_or_default().to_string(),
                table: t.table_name().unwrap_or_default().to_string(),
                state: t.table_state().unwrap_or("unknown").to_string(),
                full_load_rows: t.full_load_rows(),
                inserts: t.inserts(),
                updates: t.updates(),
                deletes: t.deletes(),
                validation_state: t.validation_state().map(str::to_string),
                validation_failed: t.validation_failed_records(),
                validation_suspended: t.validation_suspended_records(),
                validation_pending: t.validation_pending_records(),
            });
        }
        match page.marker().filter(|m| !m.is_empty()) {
            Some(m) if Some(m) != marker.as_deref() => marker = Some(m.to_string()),
            _ => return Ok(out),
        }
    }
}

/// Validation states that mean rows were not proven equal.
const BAD_VALIDATION: &[&str] = &[
    "mismatched records",
    "suspended records",
    "no primary key",
    "table error",
    "error",
    "failed",
];

/// Stop reasons that mean the task stopped by a failure, not by plan.
fn failed_stop(reason: &str) -> bool {
    let r = reason.to_ascii_uppercase();
    ["ERROR", "LOW_MEMORY", "LOW_DISK", "LICENSE"]
        .iter()
        .any(|w| r.contains(w))
}

/// Everything wrong with a task and its tables, one line each naming the table (or
/// the task) and the message. Empty when nothing is wrong.
pub fn problems(task: &TaskState, tables: &[TableStat]) -> Vec<String> {
    let mut out = Vec::new();
    let message = task
        .last_failure_message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    let stopped = matches!(task.status.as_str(), "stopped" | "failed");
    for t in tables {
        let state = t.state.to_lowercase();
        if state.contains("error") || state.contains("suspend") {
            out.push(format!(
                "table {} is `{}`{}",
                t.name(),
                t.state,
                if task.last_failure_message.is_some() {
                    format!(" (task's last failure{message})")
                } else {
                    String::new()
                }
            ));
        }
        if t.validation_failed > 0 || t.validation_suspended > 0 {
            out.push(format!(
                "table {}: validation found {} failed and {} suspended record(s){}",
                t.name(),
                t.validation_failed,
                t.validation_suspended,
                t.validation_state
                    .as_ref()
                    .map(|v| format!(" (`{v}`)"))
                    .unwrap_or_default()
            ));
        } else if let Some(v) = &t.validation_state {
            if BAD_VALIDATION.contains(&v.to_lowercase().as_str()) {
                out.push(format!("table {}: validation is `{v}`", t.name()));
            }
        }
    }
    let named = tables.iter().filter(|t| {
        let s = t.state.to_lowercase();
        s.contains("error") || s.contains("suspend")
    });
    let errored = task.tables_errored.unwrap_or(0);
    if errored > 0 && named.count() == 0 {
        out.push(format!(
            "task `{}` reports {errored} errored table(s){message}",
            task.task
        ));
    }
    if task.status == "failed" {
        out.push(format!("task `{}` failed{message}", task.task));
    } else if stopped {
        let bad_reason = task.stop_reason.as_deref().is_some_and(failed_stop);
        if bad_reason || task.last_failure_message.is_some() {
            out.push(format!(
                "task `{}` stopped{}{message}",
                task.task,
                task.stop_reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ));
        }
    }
    out
}

/// Whether the task has reached `want`.
pub fn reached(want: DmsWait, task: &TaskState, tables: &[TableStat]) -> bool {
    match want {
        DmsWait::Running => task.status == "running",
        DmsWait::Stopped => task.status == "stopped",
        DmsWait::FullLoadDone => full_load_done(task, tables),
    }
}

fn full_load_done(task: &TaskState, tables: &[TableStat]) -> bool {
    let only_full_load = task
        .stop_reason
        .as_deref()
        .is_some_and(|r| r.contains("FULL_LOAD_ONLY_FINISHED"));
    if task.status == "stopped" && only_full_load {
        return true;
    }
    task.status == "running"
        && !tables.is_empty()
        && tables.iter().all(|t| t.state == "Table completed")
        && task.full_load_percent.is_none_or(|p| p >= 100)
        && task.tables_loading.unwrap_or(0) == 0
        && task.tables_queued.unwrap_or(0) == 0
}

/// Why the task can no longer reach `want` (it stopped on the way), if it cannot.
fn dead_end(want: DmsWait, task: &TaskState) -> Option<String> {
    let reason = task
        .stop_reason
        .as_ref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    match (want, task.status.as_str()) {
        (DmsWait::Running, "stopped") => Some(format!(
            "task `{}` stopped{reason} before it was running",
            task.task
        )),
        (DmsWait::FullLoadDone, "stopped") => Some(format!(
            "task `{}` stopped{reason} before the full load finished",
            task.task
        )),
        _ => None,
    }
}

/// How many polls a status equal to the one before the action is disbelieved
/// (DMS is eventually consistent: right after StartReplicationTask the task may
/// still show `stopped`, with the old run's statistics).
pub const SETTLE_POLLS: u32 = 3;

/// What every call of one `dms` step shares.
struct Session<'a> {
    client: &'a sdk::Client,
    pace: Pace,
    cancel: &'a CancellationToken,
    note: Note<'a>,
}

impl Session<'_> {
    async fn look(&self, task: &str) -> Result<(TaskState, Vec<TableStat>), AwsError> {
        let state = call(
            "DescribeReplicationTasks",
            self.pace,
            self.cancel,
            self.note,
            || describe(self.client, task),
        )
        .await?;
        let tables = call(
            "DescribeTableStatistics",
            self.pace,
            self.cancel,
            self.note,
            || table_statistics(self.client, &state.arn),
        )
        .await?;
        Ok((state, tables))
    }

    async fn pause(&self, d: Duration) -> Result<(), AwsError> {
        tokio::select! {
            _ = self.cancel.cancelled() => Err(AwsError::Other("cancelled".into())),
            _ = tokio::time::sleep(d) => Ok(()),
        }
    }
}

/// A finished action: the report to journal, and `Err` with why the step failed.
pub struct Done {
    pub report: DmsReport,
    pub result: Result<(), AwsError>,
}

/// What the step waits for: `wait`, or by default what its action promises
/// (create: `ready`; start, resume, reload: `running`; stop: `stopped`).
pub fn wait_target(step: &DmsStep) -> Option<DmsWait> {
    step.wait.or(match step.action {
        DmsAction::Start { .. } | DmsAction::Resume { .. } | DmsAction::Reload { .. } => {
            Some(DmsWait::Running)
        }
        DmsAction::Stop { .. } => Some(DmsWait::Stopped),
        DmsAction::Create(_) | DmsAction::Wait => None,
    })
}

/// Perform the step's action, then poll until its wait is reached or a problem shows.
pub async fn perform(
    client: &sdk::Client,
    step: &DmsStep,
    every: Duration,
    cancel: &CancellationToken,
    note: Note<'_>,
) -> Done {
    let mut report = DmsReport {
        action: step.action.name().to_string(),
        task: step.task.clone(),
        ..DmsReport::default()
    };
    let s = Session {
        client,
        pace: Pace::jittered(every),
        cancel,
        note,
    };
    let result = run(&s, step, &mut report).await;
    Done { report, result }
}

async fn run(s: &Session<'_>, step: &DmsStep, report: &mut DmsReport) -> Result<(), AwsError> {
    let task = step.task.as_str();
    let before = match &step.action {
        DmsAction::Create(_) => match describe(s.client, task).await {
            Ok(t) => {
                return Err(AwsError::Refused(format!(
                    "DMS task `{task}` already exists (status `{}`); refusing to create it again",
                    t.status
                )))
            }
            Err(AwsError::NotFound(_)) => None,
            Err(e) => return Err(e),
        },
        _ => {
            let (t, tables) = s.look(task).await?;
            (s.note)(format!("before: task `{}` is `{}`", t.task, t.status));
            report.tables = tables;
            Some(t)
        }
    };
    report.before = before.clone();
    let arn = before.as_ref().map(|b| b.arn.clone()).unwrap_or_default();
    let acted = act(s, step, &arn, report).await?;
    let want = wait_target(step);
    report.waited_for = Some(match (&step.action, want) {
        (DmsAction::Create(_), _) => "ready".to_string(),
        (_, Some(w)) => w.name().to_string(),
        (_, None) => String::new(),
    });
    let started = tokio::time::Instant::now();
    // a status the action changed is disbelieved while it still shows the old one
    let mut settling = acted
        .then(|| before.as_ref().map(|b| b.status.clone()))
        .flatten();
    let mut polls = 0u32;
    let mut last = String::new();
    loop {
        polls += 1;
        if polls > SETTLE_POLLS {
            settling = None;
        }
        let (t, tables) = match s.look(task).await {
            Ok(x) => x,
            Err(AwsError::NotFound(_))
                if matches!(step.action, DmsAction::Create(_)) && polls <= SETTLE_POLLS =>
            {
                (s.note)(format!("DMS task `{task}` not visible yet, waiting"));
                s.pause(s.pace.every()).await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        report.tables = tables.clone();
        report.after = Some(t.clone());
        if settling.as_deref().is_some_and(|old| old != t.status) {
            settling = None;
        }
        if t.status != last {
            (s.note)(format!("task `{}` is `{}`", t.task, t.status));
            last = t.status.clone();
        }
        if settling.is_none() {
            let found = problems(&t, &tables);
            if !found.is_empty() {
                report.problems = found.clone();
                return Err(AwsError::Refused(found.join("; ")));
            }
            let done = match (&step.action, want) {
                (DmsAction::Create(_), _) => match t.status.as_str() {
                    "ready" => true,
                    "creating" => false,
                    other => {
                        let p = format!(
                            "task `{}` is `{other}` after CreateReplicationTask, not `ready`",
                            t.task
                        );
                        report.problems.push(p.clone());
                        return Err(AwsError::Refused(p));
                    }
                },
                (_, Some(w)) => {
                    if reached(w, &t, &tables) {
                        true
                    } else if let Some(why) = dead_end(w, &t) {
                        report.problems.push(why.clone());
                        return Err(AwsError::Refused(why));
                    } else {
                        false
                    }
                }
                (_, None) => true,
            };
            if done {
                report.waited_secs = Some(started.elapsed().as_secs());
                (s.note)(format!(
                    "after: task `{}` is `{}`, {} table(s), none errored, suspended or failing validation",
                    t.task,
                    t.status,
                    tables.len()
                ));
                return Ok(());
            }
        }
        s.pause(s.pace.every()).await?;
    }
}

/// Make the action's call; returns whether it asked DMS for a change of status.
async fn act(
    s: &Session<'_>,
    step: &DmsStep,
    arn: &str,
    report: &mut DmsReport,
) -> Result<bool, AwsError> {
    let task = step.task.as_str();
    match &step.action {
        DmsAction::Create(spec) => {
            let mappings = table_mappings(spec);
            let settings = task_settings(spec);
            report.table_mappings = Some(mappings.clone());
            report.settings = Some(settings.clone());
            let migration = match spec.migration {
                DmsMigration::FullLoad => sdk::types::MigrationTypeValue::FullLoad,
                DmsMigration::FullLoadAndCdc => sdk::types::MigrationTypeValue::FullLoadAndCdc,
            };
            let req = s
                .client
                .create_replication_task()
                .replication_task_identifier(task)
                .replication_instance_arn(&spec.instance)
                .source_endpoint_arn(&spec.source_endpoint)
                .target_endpoint_arn(&spec.target_endpoint)
                .migration_type(migration)
                .table_mappings(mappings.to_string())
                .replication_task_settings(settings.to_string());
            call(
                "CreateReplicationTask",
                s.pace,
                s.cancel,
                s.note,
                || async { req.clone().send().await.map_err(|e| classify(&e)) },
            )
            .await?;
            (s.note)(format!(
                "CreateReplicationTask `{task}` ({}) accepted",
                spec.migration.api_name()
            ));
            Ok(false)
        }
        DmsAction::Start { cdc_stop_position }
        | DmsAction::Resume { cdc_stop_position }
        | DmsAction::Reload { cdc_stop_position } => {
            let kind = step.action.start_type().unwrap_or("start-replication");
            let req = s
                .client
                .start_replication_task()
                .replication_task_arn(arn)
                .start_replication_task_type(sdk::types::StartReplicationTaskTypeValue::from(kind))
                .set_cdc_stop_position(cdc_stop_position.clone());
            call("StartReplicationTask", s.pace, s.cancel, s.note, || async {
                req.clone().send().await.map_err(|e| classify(&e))
            })
            .await?;
            (s.note)(format!(
                "StartReplicationTask `{task}` ({kind}){} accepted",
                cdc_stop_position
                    .as_ref()
                    .map(|p| format!(", stopping at {p}"))
                    .unwrap_or_default()
            ));
            Ok(true)
        }
        DmsAction::Stop {
            cdc_stop_position: Some(pos),
        } => {
            let set = report
                .before
                .as_ref()
                .and_then(|b| b.cdc_stop_position.clone());
            if set.as_deref() != Some(pos.as_str()) {
                return Err(AwsError::Refused(format!(
                    "task `{task}` has {} as its CDC stop position, not `{pos}`: set it when starting the task (`cdc_stop_position` on the start or resume step)",
                    set.map(|p| format!("`{p}`")).unwrap_or_else(|| "none".into())
                )));
            }
            (s.note)(format!(
                "task `{task}` stops itself at {pos}; waiting for it"
            ));
            Ok(false)
        }
        DmsAction::Stop {
            cdc_stop_position: None,
        } => {
            let req = s.client.stop_replication_task().replication_task_arn(arn);
            call("StopReplicationTask", s.pace, s.cancel, s.note, || async {
                req.clone().send().await.map_err(|e| classify(&e))
            })
            .await?;
            (s.note)(format!("StopReplicationTask `{task}` accepted"));
            Ok(true)
        }
        DmsAction::Wait => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(status: &str) -> TaskState {
        TaskState {
            task: "orders".into(),
            arn: "arn:aws:dms:us-east-1:123456789012:task:orders".into(),
            status: status.into(),
            ..TaskState::default()
        }
    }

    fn table(name: &str, state: &str) -> TableStat {
        TableStat {
            schema: "public".into(),
            table: name.into(),
            state: state.into(),
            ..TableStat::default()
        }
    }

    #[test]
    fn globs_become_selection_rules() {
        let spec = DmsTaskSpec {
            instance: "arn:aws:dms:r:1:rep:X".into(),
            source_endpoint: "arn:aws:dms:r:1:endpoint:S".into(),
            target_endpoint: "arn:aws:dms:r:1:endpoint:T".into(),
            tables: vec!["public.*".into(), "users".into()],
            exclude: vec!["public.audit_*".into()],
            migration: DmsMigration::FullLoadAndCdc,
        };
        let m = table_mappings(&spec);
        let rules = m["rules"].as_array().expect("rules");
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0]["object-locator"]["table-name"], "%");
        assert_eq!(rules[1]["object-locator"]["schema-name"], "%");
        assert_eq!(rules[1]["object-locator"]["table-name"], "users");
        assert_eq!(rules[2]["rule-action"], "exclude");
        assert_eq!(rules[2]["object-locator"]["table-name"], "audit_%");
        let s = task_settings(&spec);
        assert_eq!(s["ErrorBehavior"]["TableErrorPolicy"], "STOP_TASK");
        assert_eq!(s["ErrorBehavior"]["DataErrorPolicy"], "STOP_TASK");
        assert_eq!(s["ErrorBehavior"]["DataTruncationErrorPolicy"], "STOP_TASK");
        assert_eq!(s["TargetMetadata"]["FullLobMode"], true);
        assert_eq!(s["ValidationSettings"]["EnableValidation"], true);
    }

    #[test]
    fn every_silent_failure_is_a_problem_naming_the_table() {
        let ok = vec![table("a", "Table completed"), table("b", "Full load")];
        assert!(problems(&task("running"), &ok).is_empty());
        let mut t = task("running");
        t.last_failure_message = Some("ERROR: duplicate key value".into());
        let p = problems(
            &t,
            &[
                table("a", "Table completed"),
                table("orders", "Table error"),
            ],
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("public.orders")
                && p[0].contains("Table error")
                && p[0].contains("duplicate key"),
            "{p:?}"
        );
        let p = problems(&task("running"), &[table("items", "Table suspended")]);
        assert!(
            p[0].contains("public.items") && p[0].contains("suspended"),
            "{p:?}"
        );
        let mut v = table("users", "Table completed");
        v.validation_failed = 3;
        v.validation_state = Some("Mismatched records".into());
        let p = problems(&task("running"), &[v]);
        assert!(
            p[0].contains("public.users") && p[0].contains("3 failed"),
            "{p:?}"
        );
        let mut s = task("stopped");
        s.stop_reason = Some("Stop Reason FATAL_ERROR".into());
        s.last_failure_message =
            Some("Last Error Table 'public.orders' was errored/suspended".into());
        let p = problems(&s, &[]);
        assert!(
            p[0].contains("FATAL_ERROR") && p[0].contains("public.orders"),
            "{p:?}"
        );
        // a planned stop is not a problem
        let mut n = task("stopped");
        n.stop_reason = Some("Stop Reason NORMAL".into());
        assert!(problems(&n, &ok).is_empty());
        // the task counts an errored table the statistics do not show
        let mut e = task("running");
        e.tables_errored = Some(1);
        assert_eq!(problems(&e, &ok).len(), 1);
    }

    #[test]
    fn full_load_done_needs_every_table_completed() {
        let mut t = task("running");
        t.full_load_percent = Some(100);
        t.tables_loading = Some(0);
        t.tables_queued = Some(0);
        assert!(
            !reached(DmsWait::FullLoadDone, &t, &[]),
            "no tables is not done"
        );
        let some = [table("a", "Table completed"), table("b", "Full load")];
        assert!(!reached(DmsWait::FullLoadDone, &t, &some));
        let all = [table("a", "Table completed"), table("b", "Table completed")];
        assert!(reached(DmsWait::FullLoadDone, &t, &all));
        let mut f = task("stopped");
        f.stop_reason = Some("Stop Reason FULL_LOAD_ONLY_FINISHED".into());
        assert!(reached(DmsWait::FullLoadDone, &f, &[]));
        let mut n = task("stopped");
        n.stop_reason = Some("Stop Reason NORMAL".into());
        assert!(dead_end(DmsWait::FullLoadDone, &n).is_some());
    }
}
