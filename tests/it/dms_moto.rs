//! `dms` steps through the real ferry binary and the real SDK client, against
//! `moto_server` behind the DMS stand-in (`support::dms_standin`, whose doc comment
//! says exactly which calls it serves itself and why): the task lifecycle (create the
//! replication instance and endpoints, then create, start, wait for the full load and
//! stop the task from a runbook), and the failures DMS hides by default — a table in
//! "Table error" mid-load, a table suspended while the task keeps running, validation
//! that found failed records, a task stopped with a failure message. Each failure
//! must fail the step and name the table.

use crate::support::dms_standin::{stats, table, DmsStandin, Phase, Script};
use crate::support::headless::{entries, Dir};
use aws_sdk_databasemigration as dms;
use serde_json::Value;
use std::sync::OnceLock;

pub(crate) fn moto() -> String {
    std::env::var("FERRY_TEST_MOTO_URL").unwrap_or_else(|_| {
        panic!("FERRY_TEST_MOTO_URL is not set: run the tests through scripts/test, which starts moto_server")
    })
}

/// One stand-in for the whole test binary, in front of the rig's moto.
pub(crate) fn standin() -> &'static DmsStandin {
    static S: OnceLock<DmsStandin> = OnceLock::new();
    S.get_or_init(|| DmsStandin::start(&moto()))
}

pub(crate) fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_subsec_nanos()
    )
}

pub(crate) async fn client(endpoint: &str) -> dms::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_rds::config::Credentials::new(
            "testing", "testing", None, None, "dms-test",
        ))
        .load()
        .await;
    dms::Client::new(&conf)
}

/// A replication instance and two endpoints, made through the SDK: their ARNs.
pub(crate) async fn infrastructure(c: &dms::Client, tag: &str) -> (String, String, String) {
    let inst = c
        .create_replication_instance()
        .replication_instance_identifier(format!("{tag}-ri"))
        .replication_instance_class("dms.t3.medium")
        .allocated_storage(50)
        .send()
        .await
        .expect("CreateReplicationInstance");
    let inst = inst
        .replication_instance()
        .and_then(|i| i.replication_instance_arn())
        .expect("an instance ARN")
        .to_string();
    let mut eps = Vec::new();
    for (kind, name) in [
        (dms::types::ReplicationEndpointTypeValue::Source, "src"),
        (dms::types::ReplicationEndpointTypeValue::Target, "tgt"),
    ] {
        let ep = c
            .create_endpoint()
            .endpoint_identifier(format!("{tag}-{name}"))
            .endpoint_type(kind)
            .engine_name("postgres")
            .server_name("127.0.0.1")
            .port(5432)
            .database_name("app")
            .username("migrator")
            .password("not-a-real-password")
            .send()
            .await
            .expect("CreateEndpoint");
        eps.push(
            ep.endpoint()
                .and_then(|e| e.endpoint_arn())
                .expect("an endpoint ARN")
                .to_string(),
        );
    }
    (inst, eps[0].clone(), eps[1].clone())
}

pub(crate) fn aws_env(dir: &mut Dir) {
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("FERRY_DMS_POLL_SECS", "1"),
    ] {
        dir.env(k, v);
    }
}

pub(crate) fn header(endpoint: &str) -> String {
    format!(
        "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\n\n[[phase]]\nid = \"dms\"\n"
    )
}

/// The journaled results of the `dms` steps, by step id.
pub(crate) fn results(recs: &[Value]) -> Vec<(String, Value)> {
    recs.iter()
        .filter(|r| r["entry"]["kind"] == "result")
        .map(|r| {
            (
                r["entry"]["step"].as_str().unwrap_or("").to_string(),
                r["entry"]["data"].clone(),
            )
        })
        .collect()
}

pub(crate) fn result_of<'a>(rs: &'a [(String, Value)], step: &str) -> &'a Value {
    &rs.iter()
        .find(|(s, _)| s == step)
        .unwrap_or_else(|| panic!("no result for step `{step}`: {rs:?}"))
        .1
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_still_writes_dms_dates_the_sdk_cannot_read() {
    // Why the stand-in rewrites dates: straight to moto, the real SDK cannot read
    // moto's answer. When this fails, moto writes epoch dates and the rewriting can go.
    let c = client(&moto()).await;
    let r = c
        .create_replication_instance()
        .replication_instance_identifier(unique("iso-probe"))
        .replication_instance_class("dms.t3.micro")
        .send()
        .await;
    let e = r.expect_err("moto's ISO date strings are not AWS JSON 1.1 epoch numbers");
    let text = format!("{e:?}");
    assert!(
        text.contains("can represent a float as a string but found"),
        "the SDK refuses moto's ISO date string, not something else: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_task_lifecycle_runs_through_the_real_binary() {
    let s = standin();
    let c = client(&s.url).await;
    let tag = unique("life");
    let (inst, src, tgt) = infrastructure(&c, &tag).await;
    let task = format!("{tag}-task");
    s.script(
        &task,
        Script {
            phases: vec![
                Phase {
                    status: Some("running".into()),
                    stats: Some(stats(40, 1, 1, 0, 0)),
                    tables: vec![
                        table("app", "users", "Table completed", 120),
                        table("app", "orders", "Full load", 10),
                    ],
                    ..Phase::default()
                },
                Phase {
                    status: Some("running".into()),
                    stats: Some(stats(100, 2, 0, 0, 0)),
                    tables: vec![
                        table("app", "users", "Table completed", 120),
                        table("app", "orders", "Table completed", 300),
                    ],
                    ..Phase::default()
                },
            ],
        },
    );
    let mut dir = Dir::new();
    aws_env(&mut dir);
    dir.runbook(
        "dms-life",
        &format!(
            r#"{}
  [[phase.step]]
  id = "create"
  kind = "dms"
  action = "create"
  task = "{task}"
  instance = "{inst}"
  source_endpoint = "{src}"
  target_endpoint = "{tgt}"
  tables = ["app.*"]
  exclude = ["app.audit_*"]
  migration = "full-load-and-cdc"
  timeout = "40s"

  [[phase.step]]
  id = "start"
  kind = "dms"
  action = "start"
  task = "{task}"
  wait = "running"
  timeout = "40s"

  [[phase.step]]
  id = "loaded"
  kind = "dms"
  action = "wait"
  task = "{task}"
  wait = "full_load_done"
  timeout = "40s"

  [[phase.step]]
  id = "stop"
  kind = "dms"
  action = "stop"
  task = "{task}"
  timeout = "40s"
"#,
            header(&s.url)
        ),
    );
    let out = dir.run(&["--yes"]);
    out.assert_code(0, "the lifecycle runs");
    let recs = entries(&dir.journal());
    let rs = results(&recs);
    let create = result_of(&rs, "create");
    assert!(
        create["before"].is_null(),
        "no task before create: {create}"
    );
    assert_eq!(create["after"]["status"], "ready", "{create}");
    assert_eq!(
        create["settings"]["ErrorBehavior"]["TableErrorPolicy"], "STOP_TASK",
        "the settings used are journaled: {create}"
    );
    assert_eq!(
        create["table_mappings"]["rules"][1]["rule-action"],
        "exclude"
    );
    let start = result_of(&rs, "start");
    assert_eq!(start["before"]["status"], "ready", "{start}");
    assert_eq!(start["after"]["status"], "running", "{start}");
    let loaded = result_of(&rs, "loaded");
    let states: Vec<&str> = loaded["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| t["state"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(states, ["Table completed", "Table completed"], "{loaded}");
    let stop = result_of(&rs, "stop");
    assert_eq!(stop["before"]["status"], "running", "{stop}");
    assert_eq!(stop["after"]["status"], "stopped", "{stop}");

    // and moto itself holds the task as ferry created and stopped it
    let f = dms::types::Filter::builder()
        .name("replication-task-id")
        .values(&task)
        .build()
        .expect("filter");
    let d = c
        .describe_replication_tasks()
        .filters(f)
        .send()
        .await
        .expect("DescribeReplicationTasks");
    let t = &d.replication_tasks()[0];
    assert_eq!(t.status(), Some("stopped"));
    assert_eq!(t.replication_instance_arn(), Some(inst.as_str()));
    let settings: Value =
        serde_json::from_str(t.replication_task_settings().unwrap_or("{}")).expect("settings");
    assert_eq!(settings["ErrorBehavior"]["DataErrorPolicy"], "STOP_TASK");
    assert_eq!(settings["ValidationSettings"]["EnableValidation"], true);
    let mappings: Value =
        serde_json::from_str(t.table_mappings().unwrap_or("{}")).expect("mappings");
    assert_eq!(mappings["rules"][0]["object-locator"]["schema-name"], "app");
    assert_eq!(mappings["rules"][0]["object-locator"]["table-name"], "%");
    // only DescribeTableStatistics was served by the stand-in itself
    let served: Vec<String> = s
        .calls()
        .into_iter()
        .filter(|c| c.ends_with("(served here)"))
        .collect();
    assert!(
        served
            .iter()
            .all(|c| c == "DescribeTableStatistics (served here)"),
        "{served:?}"
    );

    // the report has a DMS section naming the tables
    let report = dir.file("report.md");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["report"])
        .arg(dir.journal())
        .args(["--format", "md", "--output"])
        .arg(&report)
        .output()
        .expect("ferry report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(&report).expect("report.md");
    assert!(
        md.contains("## AWS DMS") && md.contains("app.orders") && md.contains("PASSED"),
        "{md}"
    );
}

/// A started task whose tables go through `phases`; a runbook that starts it and
/// waits for `wait`. Returns the run's output and its journal.
async fn scenario(name: &str, wait: &str, phases: Vec<Phase>) -> (String, Vec<Value>, i32) {
    let s = standin();
    let c = client(&s.url).await;
    let tag = unique(name);
    let (inst, src, tgt) = infrastructure(&c, &tag).await;
    let task = format!("{tag}-task");
    c.create_replication_task()
        .replication_task_identifier(&task)
        .replication_instance_arn(&inst)
        .source_endpoint_arn(&src)
        .target_endpoint_arn(&tgt)
        .migration_type(dms::types::MigrationTypeValue::FullLoadAndCdc)
        .table_mappings(r#"{"rules":[]}"#)
        .send()
        .await
        .expect("CreateReplicationTask");
    s.script(&task, Script { phases });
    let mut dir = Dir::new();
    aws_env(&mut dir);
    dir.runbook(
        name,
        &format!(
            r#"{}
  [[phase.step]]
  id = "load"
  kind = "dms"
  action = "start"
  task = "{task}"
  wait = "{wait}"
  timeout = "40s"
"#,
            header(&s.url)
        ),
    );
    let out = dir.run(&["--yes"]);
    let text = format!("{}\n{}", out.stdout, out.stderr);
    let recs = entries(&dir.journal());
    (text, recs, out.code.unwrap_or(-1))
}

fn running(tables: Vec<Value>, errored: i32) -> Phase {
    Phase {
        status: Some("running".into()),
        stats: Some(stats(50, 1, 1, 0, errored)),
        tables,
        ..Phase::default()
    }
}

/// The step failed, its failure line names `table` and `message`, and the journaled
/// result lists the problem.
fn assert_named(text: &str, recs: &[Value], code: i32, table: &str, message: &str) {
    assert_eq!(code, 1, "the run fails:\n{text}");
    let fail = text
        .lines()
        .find(|l| l.contains("load: failed"))
        .unwrap_or_else(|| panic!("a failure line for the step:\n{text}"));
    assert!(
        fail.contains(table) && fail.contains(message),
        "the failure names `{table}` and `{message}`: {fail}"
    );
    let rs = results(recs);
    let problems = result_of(&rs, "load")["problems"].to_string();
    assert!(problems.contains(table), "{problems}");
    assert!(
        !recs.iter().any(|r| r["entry"]["type"] == "finished"
            && r["entry"]["step"] == "load"
            && r["entry"]["outcome"]["outcome"] == "succeeded"),
        "nothing reports success over it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_table_loaded_passes() {
    let (text, recs, code) = scenario(
        "dms-ok",
        "full_load_done",
        vec![
            running(
                vec![
                    table("app", "a", "Full load", 5),
                    table("app", "b", "Before load", 0),
                ],
                0,
            ),
            running(
                vec![
                    table("app", "a", "Table completed", 9),
                    table("app", "b", "Full load", 3),
                ],
                0,
            ),
            Phase {
                stats: Some(stats(100, 2, 0, 0, 0)),
                ..running(
                    vec![
                        table("app", "a", "Table completed", 9),
                        table("app", "b", "Table completed", 7),
                    ],
                    0,
                )
            },
        ],
    )
    .await;
    assert_eq!(code, 0, "{text}");
    let rs = results(&recs);
    assert_eq!(result_of(&rs, "load")["problems"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_error_mid_load_fails_the_step_and_names_the_table() {
    let (text, recs, code) = scenario(
        "dms-err",
        "full_load_done",
        vec![
            running(
                vec![
                    table("app", "users", "Full load", 5),
                    table("app", "orders", "Full load", 3),
                ],
                0,
            ),
            Phase {
                last_failure_message: Some("ERROR: invalid input syntax for type numeric".into()),
                ..running(
                    vec![
                        table("app", "users", "Table completed", 9),
                        table("app", "orders", "Table error", 3),
                    ],
                    1,
                )
            },
        ],
    )
    .await;
    assert_named(&text, &recs, code, "app.orders", "Table error");
    assert!(
        text.contains("invalid input syntax"),
        "the task's message too:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_suspended_while_the_task_keeps_running_fails_the_step() {
    let (text, recs, code) = scenario(
        "dms-susp",
        "running",
        vec![running(
            vec![
                table("app", "users", "Table completed", 9),
                table("app", "items", "Table suspended", 0),
            ],
            0,
        )],
    )
    .await;
    assert_named(&text, &recs, code, "app.items", "Table suspended");
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_failed_records_fail_the_step() {
    let mut bad = table("app", "payments", "Table completed", 50);
    bad["ValidationState"] = serde_json::json!("Mismatched records");
    bad["ValidationFailedRecords"] = serde_json::json!(7);
    let (text, recs, code) = scenario(
        "dms-val",
        "full_load_done",
        vec![Phase {
            stats: Some(stats(100, 2, 0, 0, 0)),
            ..running(vec![table("app", "users", "Table completed", 9), bad], 0)
        }],
    )
    .await;
    assert_named(&text, &recs, code, "app.payments", "7 failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_stopped_with_a_failure_message_fails_the_step() {
    let (text, recs, code) = scenario(
        "dms-stop",
        "full_load_done",
        vec![
            running(
                vec![
                    table("app", "users", "Full load", 5),
                    table("app", "ledger", "Full load", 3),
                ],
                0,
            ),
            Phase {
                status: Some("stopped".into()),
                stop_reason: Some("Stop Reason FATAL_ERROR".into()),
                last_failure_message: Some(
                    "Last Error Table 'app'.'ledger' terminated: LOB column value exceeded".into(),
                ),
                stats: Some(stats(60, 1, 0, 0, 1)),
                tables: vec![
                    table("app", "users", "Table completed", 9),
                    table("app", "ledger", "Table error", 3),
                ],
                ..Phase::default()
            },
        ],
    )
    .await;
    assert_named(&text, &recs, code, "app.ledger", "FATAL_ERROR");
    assert!(text.contains("LOB column value exceeded"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_aws_describes_every_task_the_runbook_names() {
    let s = standin();
    let c = client(&s.url).await;
    let tag = unique("dms-check");
    let (inst, src, tgt) = infrastructure(&c, &tag).await;
    let existing = format!("{tag}-old");
    c.create_replication_task()
        .replication_task_identifier(&existing)
        .replication_instance_arn(&inst)
        .source_endpoint_arn(&src)
        .target_endpoint_arn(&tgt)
        .migration_type(dms::types::MigrationTypeValue::FullLoad)
        .table_mappings(r#"{"rules":[]}"#)
        .send()
        .await
        .expect("CreateReplicationTask");
    let mut dir = Dir::new();
    aws_env(&mut dir);
    dir.runbook(
        "dms-check",
        &format!(
            r#"{}
  [[phase.step]]
  id = "create"
  kind = "dms"
  action = "create"
  task = "{existing}"
  instance = "{inst}"
  source_endpoint = "{src}"
  target_endpoint = "{tgt}"
  tables = ["app.*"]
  migration = "full-load"

  [[phase.step]]
  id = "start-missing"
  kind = "dms"
  action = "start"
  task = "{tag}-nope"
"#,
            header(&s.url)
        ),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(dir.path())
        .args(["check", "--aws", "runbook.toml"])
        .envs(dir.env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("ferry check --aws");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("EXISTS   DMS task {existing} already exists (status `ready`), but created by step `create`")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "MISSING  DMS task {tag}-nope does not exist (step `start-missing`)"
        )),
        "{text}"
    );
}
