//! AWS through the real SDK clients against `moto_server` on loopback (the rig
//! exports FERRY_TEST_MOTO_URL): CloudWatch series read back by the monitor
//! layer; rds steps (snapshot, read replica, promote, wait) run by `ferry run`
//! and checked through the API; a metric gate that holds while the metric is
//! high (timing out with the value journaled) and passes once it drops.

use aws_sdk_cloudwatch::types::MetricDatum;
use ferry_core::aws::{self, Clients};
use ferry_core::monitor::{self, DbGetter, MonitorView};
use ferry_core::runbook::{load_str, AwsSettings};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn moto() -> String {
    std::env::var("FERRY_TEST_MOTO_URL").unwrap_or_else(|_| panic!("FERRY_TEST_MOTO_URL is not set: run the tests through scripts/test, which starts moto_server"))
}

async fn clients() -> Clients {
    let settings = AwsSettings {
        region: Some("us-east-1".into()),
        profile: None,
        endpoint_url: Some(moto()),
    };
    Clients::new(aws::sdk_config(Some(&settings)).await)
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_subsec_nanos()
    )
}

async fn put(c: &Clients, ns: &str, value: f64) {
    c.cloudwatch
        .put_metric_data()
        .namespace(ns)
        .metric_data(
            MetricDatum::builder()
                .metric_name("QueueDepth")
                .value(value)
                .build(),
        )
        .send()
        .await
        .expect("PutMetricData");
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudwatch_series_are_read_back_by_the_monitors() {
    let c = clients().await;
    let ns = unique("Ferry/Test");
    for v in [10.0, 20.0, 30.0] {
        put(&c, &ns, v).await;
    }
    let rb = load_str(
        "cw.toml",
        &format!(
            r#"
[runbook]
name = "cw"
format = 1
[aws]
region = "us-east-1"
[[monitor.metric]]
name = "depth"
cloudwatch = {{ namespace = "{ns}", metric = "QueueDepth", stat = "Maximum", period = "60s" }}
[[phase]]
id = "p"
  [[phase.step]]
  id = "x"
  kind = "confirm"
"#
        ),
        Path::new("cw.toml"),
    )
    .unwrap_or_else(|e| panic!("{}", e.render()));
    let getter: DbGetter =
        Arc::new(|name: String| Box::pin(async move { Err(format!("no connection {name}")) }));
    let cancel = CancellationToken::new();
    let (hub, _samples) = monitor::spawn(&rb, getter, Some(c.clone()), cancel.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    let v = loop {
        if let Some(v) = hub.metric("depth") {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "no CloudWatch value: {:?}",
            hub.snapshot().metrics
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(v, 30.0, "the Maximum of the three datapoints in the period");
    cancel.cancel();

    // the batch fetch returns each series by name
    let q = |name: &str, metric: &str| aws::cloudwatch::Query {
        name: name.into(),
        namespace: ns.clone(),
        metric: metric.into(),
        dimensions: vec![],
        stat: "Average".into(),
        period: Duration::from_secs(60),
    };
    let end = chrono::Utc::now() + chrono::Duration::minutes(1);
    let got = aws::cloudwatch::fetch(
        &c.cloudwatch,
        &[q("a", "QueueDepth"), q("b", "Nothing")],
        end - chrono::Duration::hours(1),
        end,
    )
    .await
    .expect("GetMetricData");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, "a");
    assert_eq!(
        got[0].1.last().map(|p| p.1),
        Some(20.0),
        "Average of 10, 20, 30"
    );
    assert!(got[1].1.is_empty());
}

fn ferry(dir: &Path, runbook: &str, extra_env: &[(&str, String)]) -> std::process::Output {
    std::fs::write(dir.join("rb.toml"), runbook).expect("write runbook");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.current_dir(dir)
        .args(["run", "rb.toml", "--headless", "--yes"])
        .env("FERRY_RDS_POLL_SECS", "1");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ferry")
}

#[tokio::test(flavor = "multi_thread")]
async fn rds_steps_snapshot_replicate_promote_and_wait() {
    let c = clients().await;
    let source = unique("legacy");
    let replica = unique("prod-v2");
    let snapshot = unique("pre-cutover");
    c.rds
        .create_db_instance()
        .db_instance_identifier(&source)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .allocated_storage(20)
        .master_username("app")
        .master_user_password("app-password-1")
        .send()
        .await
        .expect("CreateDBInstance");
    let dir = tempfile::tempdir().expect("tempdir");
    let rb = format!(
        r#"
[runbook]
name = "rds"
format = 1
[vars]
source = "{source}"
replica = "{replica}"
[aws]
region = "us-east-1"
endpoint_url = "${{env:FERRY_TEST_MOTO_URL}}"
[[phase]]
id = "cutover"
  [[phase.step]]
  id = "snapshot"
  kind = "rds"
  action = "create_snapshot"
  instance = "${{vars.source}}"
  snapshot = "{snapshot}"
  wait = "available"
  timeout = "60s"
  [[phase.step]]
  id = "replica"
  kind = "rds"
  action = "create_read_replica"
  instance = "${{vars.replica}}"
  source_instance = "${{vars.source}}"
  wait = "available"
  timeout = "60s"
  [[phase.step]]
  id = "promote"
  kind = "rds"
  action = "promote_read_replica"
  instance = "${{vars.replica}}"
  wait = "available"
  confirm = "two-person"
  point_of_no_return = true
  timeout = "60s"
  [[phase.step]]
  id = "settled"
  kind = "rds"
  action = "wait_status"
  instance = "${{vars.replica}}"
  status = "available"
  timeout = "30s"
"#
    );
    let out = ferry(dir.path(), &rb, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // the state, through the API
    let snaps = c
        .rds
        .describe_db_snapshots()
        .db_snapshot_identifier(&snapshot)
        .send()
        .await
        .expect("DescribeDBSnapshots");
    assert_eq!(
        snaps.db_snapshots().first().and_then(|s| s.status()),
        Some("available")
    );
    let r = aws::rds::describe(&c.rds, &replica)
        .await
        .expect("replica exists");
    assert_eq!(r.status, "available");
    // (moto keeps ReadReplicaSourceDBInstanceIdentifier after PromoteReadReplica,
    // where RDS clears it, so the promotion itself is checked through the journal)
    assert!(
        stdout.contains(&format!("PromoteReadReplica `{replica}` accepted")),
        "{stdout}"
    );

    // before and after states are journaled as the steps' results
    let journal = std::fs::read_dir(dir.path().join("runs/rds"))
        .expect("runs")
        .next()
        .expect("journal")
        .expect("entry")
        .path();
    let text = std::fs::read_to_string(journal).expect("read journal");
    let promote_result = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["entry"]["kind"] == "result" && v["entry"]["step"] == "promote")
        .expect("a result for promote");
    let data = &promote_result["entry"]["data"];
    assert_eq!(
        data["before"]["replica_of"],
        serde_json::json!(source),
        "promoted while it was a replica"
    );
    assert_eq!(data["after"]["status"], "available");
    assert_eq!(data["waited_for"], "available");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_instance_fails_clearly_and_an_unreachable_endpoint_exits_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rb = |endpoint: &str| {
        format!(
            r#"
[runbook]
name = "rds-missing"
format = 1
[aws]
region = "us-east-1"
endpoint_url = "{endpoint}"
[[phase]]
id = "p"
  [[phase.step]]
  id = "reboot"
  kind = "rds"
  action = "reboot"
  instance = "no-such-instance-xyz"
  timeout = "30s"
"#
        )
    };
    let out = ferry(dir.path(), &rb(&moto()), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("no-such-instance-xyz") && stdout.contains("does not exist"),
        "{stdout}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let out = ferry(dir.path(), &rb(&format!("http://127.0.0.1:{port}")), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "an unreachable AWS endpoint is exit 3:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_metric_gate_holds_while_high_and_passes_when_it_drops() {
    let c = clients().await;
    let ns = unique("Ferry/Gate");
    put(&c, &ns, 95.0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let rb = format!(
        r#"
[runbook]
name = "gate"
format = 1
[aws]
region = "us-east-1"
endpoint_url = "${{env:FERRY_TEST_MOTO_URL}}"
[[monitor.metric]]
name = "depth"
cloudwatch = {{ namespace = "{ns}", metric = "QueueDepth", stat = "Maximum", period = "10s" }}
[[phase]]
id = "p"
  [[phase.step]]
  id = "drained"
  kind = "wait"
  until = {{ metric = "depth", below = 50 }}
  every = "1s"
  timeout = "4s"
"#
    );
    // high: the gate holds until its timeout, and the journal says what it saw
    let out = ferry(dir.path(), &rb, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("timed out"), "{stdout}");
    let journal = std::fs::read_dir(dir.path().join("runs/gate"))
        .expect("runs")
        .next()
        .expect("journal")
        .expect("entry")
        .path();
    let text = std::fs::read_to_string(&journal).expect("journal");
    assert!(
        text.contains("last seen: metric depth 95"),
        "the last value is journaled as evidence:\n{text}"
    );

    // low (a new namespace, so the old high point is not in the window): it passes
    let ns2 = unique("Ferry/Gate");
    put(&c, &ns2, 5.0).await;
    let out = ferry(
        dir.path(),
        &rb.replace(&ns, &ns2)
            .replace("timeout = \"4s\"", "timeout = \"30s\""),
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("metric depth 5"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn monitor_view_has_nothing_without_aws() {
    let rb = load_str(
        "x.toml",
        "[runbook]\nname = \"x\"\nformat = 1\n[[monitor.metric]]\nname = \"cpu\"\ncloudwatch = { namespace = \"AWS/RDS\", metric = \"CPUUtilization\" }\n[[phase]]\nid = \"p\"\n  [[phase.step]]\n  id = \"x\"\n  kind = \"confirm\"\n",
        Path::new("x.toml"),
    )
    .unwrap_or_else(|e| panic!("{}", e.render()));
    let getter: DbGetter =
        Arc::new(|name: String| Box::pin(async move { Err(format!("no connection {name}")) }));
    let cancel = CancellationToken::new();
    let (hub, _s) = monitor::spawn(&rb, getter, None, cancel.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let snap = hub.snapshot();
    let cpu = snap
        .metrics
        .iter()
        .find(|m| m.name == "cpu")
        .expect("series");
    assert!(
        cpu.stale
            .as_ref()
            .is_some_and(|s| s.error.contains("no AWS configuration")),
        "{cpu:?}"
    );
    assert_eq!(hub.metric("cpu"), None);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn check_aws_reports_missing_and_existing_instances() {
    let c = clients().await;
    let present = unique("present");
    c.rds
        .create_db_instance()
        .db_instance_identifier(&present)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .allocated_storage(20)
        .master_username("app")
        .master_user_password("app-password-1")
        .send()
        .await
        .expect("CreateDBInstance");
    let dir = tempfile::tempdir().expect("tempdir");
    let rb = |missing: &str| {
        format!(
            r#"
[runbook]
name = "pre"
format = 1
[aws]
region = "us-east-1"
endpoint_url = "${{env:FERRY_TEST_MOTO_URL}}"
[[phase]]
id = "p"
  [[phase.step]]
  id = "replica"
  kind = "rds"
  action = "create_read_replica"
  instance = "{missing}"
  source_instance = "{present}"
  [[phase.step]]
  id = "reboot"
  kind = "rds"
  action = "reboot"
  instance = "{missing}-other"
"#
        )
    };
    let path = dir.path().join("rb.toml");
    std::fs::write(&path, rb("brand-new")).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["check", "--aws"])
        .arg(&path)
        .output()
        .expect("ferry check --aws");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("aws: ok       {present} is `available`")),
        "{stdout}"
    );
    assert!(
        stdout.contains("aws: ok       brand-new does not exist yet"),
        "{stdout}"
    );
    assert!(
        stdout.contains("aws: MISSING  brand-new-other does not exist (step `reboot`)"),
        "{stdout}"
    );
    assert!(stdout.contains("1 problem(s)"), "{stdout}");
}

/// The whole story of the monitors issue in one headless run: wait on the real
/// standby's lag, gate on a CloudWatch metric, snapshot and promote on RDS.
#[tokio::test(flavor = "multi_thread")]
async fn a_cutover_waits_on_standby_lag_gates_on_cloudwatch_and_promotes() {
    let c = clients().await;
    let ns = unique("Ferry/Cutover");
    put(&c, &ns, 3.0).await;
    let source = unique("legacy");
    let replica = unique("prod");
    c.rds
        .create_db_instance()
        .db_instance_identifier(&source)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .allocated_storage(20)
        .master_username("app")
        .master_user_password("app-password-1")
        .send()
        .await
        .expect("CreateDBInstance");
    c.rds
        .create_db_instance_read_replica()
        .db_instance_identifier(&replica)
        .source_db_instance_identifier(&source)
        .send()
        .await
        .expect("CreateDBInstanceReadReplica");
    let dir = tempfile::tempdir().expect("tempdir");
    let rb = format!(
        r#"
[runbook]
name = "cutover"
format = 1
[aws]
region = "us-east-1"
endpoint_url = "${{env:FERRY_TEST_MOTO_URL}}"
[connections.standby]
url = "${{env:FERRY_TEST_PG_STANDBY}}"
[[monitor.lag]]
name = "replica"
connection = "standby"
every = "500ms"
[[monitor.metric]]
name = "errors"
cloudwatch = {{ namespace = "{ns}", metric = "QueueDepth", stat = "Maximum", period = "10s" }}
[[phase]]
id = "cutover"
  [[phase.step]]
  id = "lag-low"
  kind = "wait"
  until = {{ lag = "replica", below = "5s", for = "1s" }}
  every = "500ms"
  timeout = "60s"
  [[phase.step]]
  id = "quiet"
  kind = "wait"
  until = {{ metric = "errors", below = 10 }}
  every = "1s"
  timeout = "60s"
  [[phase.step]]
  id = "snapshot"
  kind = "rds"
  action = "create_snapshot"
  instance = "{replica}"
  snapshot = "{replica}-pre"
  wait = "available"
  timeout = "60s"
  [[phase.step]]
  id = "promote"
  kind = "rds"
  action = "promote_read_replica"
  instance = "{replica}"
  wait = "available"
  confirm = "two-person"
  point_of_no_return = true
  timeout = "60s"
"#
    );
    let out = ferry(dir.path(), &rb, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "✔ lag-low: succeeded",
        "✔ quiet: succeeded — metric errors 3",
        "✔ snapshot: succeeded",
        "✔ promote: succeeded",
    ] {
        assert!(stdout.contains(needle), "missing `{needle}`:\n{stdout}");
    }
    let journal = std::fs::read_dir(dir.path().join("runs/cutover"))
        .expect("runs")
        .next()
        .expect("journal")
        .expect("entry")
        .path();
    let text = std::fs::read_to_string(journal).expect("journal");
    assert!(
        text.contains("\"kind\":\"sample\",\"monitor\":\"replica\""),
        "lag samples are journaled"
    );
    // the automatic confirmation of promote carries the lag evidence
    assert!(
        text.contains("\"label\":\"lag replica\""),
        "confirmation evidence names the lag"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_auth_tokens_are_signed_for_the_instance_endpoint() {
    let c = clients().await;
    let id = unique("iam");
    c.rds
        .create_db_instance()
        .db_instance_identifier(&id)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .allocated_storage(20)
        .master_username("app")
        .master_user_password("app-password-1")
        .send()
        .await
        .expect("CreateDBInstance");
    let t = aws::iam::token(&c, &id, "migrator").await.expect("a token");
    let state = aws::rds::describe(&c.rds, &id).await.expect("describe");
    assert_eq!(
        Some(t.host.clone()),
        state.endpoint,
        "signed for the instance's endpoint"
    );
    for part in [
        "Action=connect",
        "DBUser=migrator",
        "X-Amz-Signature=",
        "X-Amz-Expires=900",
    ] {
        assert!(t.token.contains(part), "token lacks {part}: {}", t.token);
    }
    assert!(
        t.token.starts_with(&format!("{}:{}/", t.host, t.port)),
        "{}",
        t.token
    );
    // a missing instance is a clear error, not a token for nowhere
    let err = aws::iam::token(&c, "no-such-iam-instance", "migrator")
        .await
        .err()
        .expect("an error");
    assert!(err.to_string().contains("does not exist"), "{err}");
}
