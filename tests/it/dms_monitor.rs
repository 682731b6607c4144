//! `[[monitor.dms]]` and its gates through the real ferry binary and the real SDK
//! clients, against `moto_server` behind the DMS stand-in (`support::dms_standin`:
//! moto 5.2.x does not implement DescribeTableStatistics and hard-codes a task's
//! statistics, so the stand-in serves those from the test's script and forwards the
//! rest, CloudWatch included, to moto; its doc comment says exactly what it does).
//! CloudWatch's CDC latency is real moto data, put by the test.
//!
//! - a table goes to "Table error" mid-load: the monitor sees it, the waiting gate
//!   fails naming the table and DMS's message, and the alarm is journaled;
//! - the same alarm fails a running step of another kind (a shell `sleep`);
//! - `full_load = "done"` passes when every table completes, and
//!   `latency_below` passes on the latency CloudWatch holds for the task.

use crate::dms_moto::{aws_env, client, header, infrastructure, moto, standin, unique};
use crate::support::dms_standin::{stats, table, Phase, Script};
use crate::support::headless::{dump, entries, events, kind, outcome, Dir};
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use aws_sdk_databasemigration as dms;
use serde_json::Value;

fn running(tables: Vec<Value>, percent: i32, errored: i32) -> Phase {
    Phase {
        status: Some("running".into()),
        stats: Some(stats(percent, 1, 1, 0, errored)),
        tables,
        ..Phase::default()
    }
}

/// A created task named `<tag>-task` with `phases` scripted; its ARN and the
/// replication instance's identifier.
async fn task(tag: &str, phases: Vec<Phase>) -> (String, String, String) {
    let s = standin();
    let c = client(&s.url).await;
    let (inst, src, tgt) = infrastructure(&c, tag).await;
    let id = format!("{tag}-task");
    let made = c
        .create_replication_task()
        .replication_task_identifier(&id)
        .replication_instance_arn(&inst)
        .source_endpoint_arn(&src)
        .target_endpoint_arn(&tgt)
        .migration_type(dms::types::MigrationTypeValue::FullLoadAndCdc)
        .table_mappings(r#"{"rules":[]}"#)
        .send()
        .await
        .expect("CreateReplicationTask");
    let arn = made
        .replication_task()
        .and_then(|t| t.replication_task_arn())
        .expect("a task ARN")
        .to_string();
    s.script(&id, Script { phases });
    (id, arn, format!("{tag}-ri"))
}

/// Run `steps` after a `[[monitor.dms]]` on `task` polled every second.
fn run(name: &str, task: &str, steps: &str) -> (String, Vec<Value>, i32) {
    let s = standin();
    let mut dir = Dir::new();
    aws_env(&mut dir);
    dir.runbook(
        name,
        &format!(
            "[[monitor.dms]]\nname = \"cdc\"\ntask = \"{task}\"\nevery = \"1s\"\n\n{}{steps}",
            header(&s.url)
        ),
    );
    let out = dir.run(&["--yes"]);
    let text = format!("{}\n{}", out.stdout, out.stderr);
    (text, entries(&dir.journal()), out.code.unwrap_or(-1))
}

fn start_step(task: &str) -> String {
    format!(
        r#"
  [[phase.step]]
  id = "start"
  kind = "dms"
  action = "start"
  task = "{task}"
  wait = "running"
  timeout = "40s"
"#
    )
}

fn notes(recs: &[Value]) -> Vec<String> {
    recs.iter()
        .filter(|r| kind(r) == "note")
        .map(|r| r["entry"]["text"].as_str().unwrap_or("").to_string())
        .collect()
}

fn failure_of<'a>(recs: &'a [Value], step: &str) -> &'a str {
    let fin = events(recs, "finished", Some(step));
    let last = fin
        .last()
        .unwrap_or_else(|| panic!("`{step}` never finished\n{}", dump(recs)));
    assert_eq!(outcome(last), "failed", "`{step}` fails\n{}", dump(recs));
    last["entry"]["outcome"]["error"].as_str().unwrap_or("")
}

/// Loading for a few looks, then `orders` in "Table error" with DMS's message.
fn error_mid_load() -> Vec<Phase> {
    let loading = running(
        vec![
            table("app", "users", "Full load", 5),
            table("app", "orders", "Full load", 3),
        ],
        40,
        0,
    );
    let mut phases = vec![loading; 6];
    phases.push(Phase {
        last_failure_message: Some("ERROR: duplicate key value violates unique constraint".into()),
        ..running(
            vec![
                table("app", "users", "Table completed", 9),
                table("app", "orders", "Table error", 3),
            ],
            60,
            1,
        )
    });
    phases
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_error_mid_load_fails_the_waiting_gate_and_names_it() {
    let tag = unique("mon-err");
    let (_, arn, _) = task(&tag, error_mid_load()).await;
    let steps = start_step(&arn)
        + r#"
  [[phase.step]]
  id = "loaded"
  kind = "wait"
  until = { dms = "cdc", full_load = "done" }
  every = "500ms"
  timeout = "40s"
"#;
    let (text, recs, code) = run("dms-mon-err", &arn, &steps);
    assert_eq!(code, 1, "the run fails:\n{text}");
    let error = failure_of(&recs, "loaded");
    assert!(
        error.contains("dms monitor `cdc`")
            && error.contains("app.orders")
            && error.contains("Table error")
            && error.contains("duplicate key value"),
        "the failure names the monitor, the table and DMS's message: {error}"
    );
    let notes = notes(&recs);
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("PROBLEM: dms monitor `cdc`: table app.orders is `Table error`")),
        "the alarm is journaled: {notes:#?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n == "dms monitor `cdc`: table app.orders is `Table error`"),
        "the table going wrong is journaled: {notes:#?}"
    );
    assert!(
        events(&recs, "finished", Some("start"))
            .iter()
            .any(|r| outcome(r) == "succeeded"),
        "the start itself saw no problem\n{}",
        dump(&recs)
    );
    let line = text
        .lines()
        .find(|l| l.contains("loaded: failed"))
        .unwrap_or_else(|| panic!("a failure line for the gate:\n{text}"));
    assert!(line.contains("app.orders"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_alarm_fails_a_running_step_of_any_kind() {
    let tag = unique("mon-alarm");
    let (_, arn, _) = task(&tag, error_mid_load()).await;
    let steps = start_step(&arn)
        + r#"
  [[phase.step]]
  id = "meanwhile"
  kind = "shell"
  run = "sleep 30"
  timeout = "40s"
"#;
    let started = std::time::Instant::now();
    let (text, recs, code) = run("dms-mon-alarm", &arn, &steps);
    assert_eq!(code, 1, "the run fails:\n{text}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(28),
        "the sleep was stopped by the alarm, not waited out"
    );
    let error = failure_of(&recs, "meanwhile");
    assert!(
        error.contains("app.orders") && error.contains("duplicate key value"),
        "{error}"
    );
    assert!(
        notes(&recs)
            .iter()
            .any(|n| n.starts_with("failing `meanwhile`: dms monitor `cdc`: table app.orders")),
        "{}",
        dump(&recs)
    );
}

async fn put_latency(instance: &str, task_resource: &str, metric: &str, value: f64) {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(moto())
        .credentials_provider(aws_sdk_rds::config::Credentials::new(
            "testing", "testing", None, None, "dms-test",
        ))
        .load()
        .await;
    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    cw.put_metric_data()
        .namespace("AWS/DMS")
        .metric_data(
            MetricDatum::builder()
                .metric_name(metric)
                .dimensions(
                    Dimension::builder()
                        .name("ReplicationInstanceIdentifier")
                        .value(instance)
                        .build(),
                )
                .dimensions(
                    Dimension::builder()
                        .name("ReplicationTaskIdentifier")
                        .value(task_resource)
                        .build(),
                )
                .value(value)
                .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                    chrono::Utc::now().timestamp(),
                ))
                .build(),
        )
        .send()
        .await
        .expect("PutMetricData");
}

#[tokio::test(flavor = "multi_thread")]
async fn full_load_done_passes_when_every_table_completes_then_the_latency_gate() {
    let tag = unique("mon-ok");
    let loading = running(
        vec![
            table("app", "users", "Full load", 5),
            table("app", "orders", "Before load", 0),
        ],
        30,
        0,
    );
    let done = Phase {
        stats: Some(stats(100, 2, 0, 0, 0)),
        ..running(
            vec![
                table("app", "users", "Table completed", 9),
                table("app", "orders", "Table completed", 7),
            ],
            100,
            0,
        )
    };
    let mut phases = vec![loading; 4];
    phases.push(done);
    let (_, arn, instance) = task(&tag, phases).await;
    let resource = arn.rsplit(':').next().unwrap_or_default().to_string();
    put_latency(&instance, &resource, "CDCLatencySource", 2.0).await;
    put_latency(&instance, &resource, "CDCLatencyTarget", 7.5).await;
    let steps = start_step(&arn)
        + r#"
  [[phase.step]]
  id = "loaded"
  kind = "wait"
  until = { dms = "cdc", full_load = "done" }
  every = "500ms"
  timeout = "40s"

  [[phase.step]]
  id = "latency-low"
  kind = "wait"
  until = { dms = "cdc", latency_below = "30s" }
  every = "500ms"
  timeout = "40s"
"#;
    let (text, recs, code) = run("dms-mon-ok", &arn, &steps);
    assert_eq!(code, 0, "the gates pass:\n{text}\n{}", dump(&recs));
    let summary = |step: &str| {
        events(&recs, "finished", Some(step))
            .last()
            .map(|r| {
                r["entry"]["outcome"]["summary"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default()
    };
    let loaded = summary("loaded");
    assert!(
        loaded.contains("full load 100%") && loaded.contains("2 of 2 table(s) completed"),
        "{loaded}"
    );
    let latency = summary("latency-low");
    assert!(
        latency.contains("CDC latency 7.5s"),
        "the larger of source and target: {latency}"
    );
    let samples: Vec<&Value> = recs
        .iter()
        .filter(|r| kind(r) == "sample" && r["entry"]["monitor"] == "cdc")
        .collect();
    assert!(
        samples
            .iter()
            .any(|r| r["entry"]["series"] == "dms_full_load"),
        "full-load percent samples are journaled\n{}",
        dump(&recs)
    );
    assert!(
        !notes(&recs).iter().any(|n| n.starts_with("PROBLEM")),
        "no alarm over healthy tables"
    );
}
