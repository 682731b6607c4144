//! CloudWatch as it really behaves, against `moto_server` through the real
//! SDK: a count metric is not published while it is zero (a gate on "errors
//! below 1" must be able to pass with `missing = "zero"`, and must not on a
//! half-hour-old datapoint without it), and a period's value is revised as
//! its data arrives (the gate must see the revised Sum, not the first one).

use aws_sdk_cloudwatch::primitives::DateTime as AwsTime;
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
    std::env::var("FERRY_TEST_MOTO_URL").unwrap_or_else(|_| {
        panic!("FERRY_TEST_MOTO_URL is not set: run the tests through scripts/test, which starts moto_server")
    })
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

async fn put_at(c: &Clients, ns: &str, value: f64, at: chrono::DateTime<chrono::Utc>) {
    c.cloudwatch
        .put_metric_data()
        .namespace(ns)
        .metric_data(
            MetricDatum::builder()
                .metric_name("Errors")
                .value(value)
                .timestamp(AwsTime::from_secs(at.timestamp()))
                .build(),
        )
        .send()
        .await
        .expect("PutMetricData");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_count_metric_not_published_while_zero_gates_only_with_missing_zero() {
    let c = clients().await;
    let ns = unique("Ferry/Errors");
    // errors half an hour ago, none since: CloudWatch has no datapoint since
    put_at(
        &c,
        &ns,
        50.0,
        chrono::Utc::now() - chrono::Duration::minutes(30),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let rb = format!(
        r#"
[runbook]
name = "errors"
format = 1
[aws]
region = "us-east-1"
endpoint_url = "${{env:FERRY_TEST_MOTO_URL}}"
[[monitor.metric]]
name = "errors"
cloudwatch = {{ namespace = "{ns}", metric = "Errors", stat = "Sum", period = "60s", missing = "zero" }}
[[monitor.metric]]
name = "errors-strict"
cloudwatch = {{ namespace = "{ns}", metric = "Errors", stat = "Sum", period = "60s" }}
[[phase]]
id = "p"
  [[phase.step]]
  id = "quiet"
  kind = "wait"
  until = {{ metric = "errors", below = 1 }}
  timeout = "30s"
  [[phase.step]]
  id = "quiet-strict"
  kind = "wait"
  until = {{ metric = "errors-strict", below = 1 }}
  timeout = "4s"
"#
    );
    std::fs::write(dir.path().join("rb.toml"), rb).expect("runbook");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(dir.path())
        .args(["run", "rb.toml", "--headless", "--yes"])
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .output()
        .expect("run ferry");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("✔ quiet: succeeded — metric errors 0 (< 1)"),
        "with missing = \"zero\", no datapoint since the errors is 0:\n{stdout}"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "without it, a 30-minute-old datapoint gates nothing:\n{stdout}"
    );
    // the datapoint is put 30 minutes ago and CloudWatch files it at the start of its
    // 60s period, so its age reads 30m or 31m, never less and never more
    let stale = "monitor `errors-strict` is stale: the newest datapoint is ";
    let age_min = stdout
        .split(stale)
        .nth(1)
        .and_then(|rest| rest.split_once('m'))
        .and_then(|(m, _)| m.parse::<u32>().ok());
    assert!(
        matches!(age_min, Some(30 | 31)) && stdout.contains("quiet-strict: failed"),
        "expected the strict gate to fail on a 30-31 minute old datapoint:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_period_revised_as_its_data_arrives_is_read_again() {
    let c = clients().await;
    let ns = unique("Ferry/Revised");
    // both datapoints must land in the same 5-minute period
    let into = chrono::Utc::now().timestamp() % 300;
    if into > 240 {
        tokio::time::sleep(Duration::from_secs((305 - into) as u64)).await;
    }
    put_at(&c, &ns, 2.0, chrono::Utc::now()).await;
    let rb = load_str(
        "rev.toml",
        &format!(
            r#"
[runbook]
name = "rev"
format = 1
[aws]
region = "us-east-1"
[[monitor.metric]]
name = "errors"
cloudwatch = {{ namespace = "{ns}", metric = "Errors", stat = "Sum", period = "300s" }}
[[monitor.metric]]
name = "fast"
cloudwatch = {{ namespace = "{ns}", metric = "Other", stat = "Sum", period = "10s" }}
[[phase]]
id = "p"
  [[phase.step]]
  id = "x"
  kind = "confirm"
"#
        ),
        Path::new("rev.toml"),
    )
    .unwrap_or_else(|e| panic!("{}", e.render()));
    let getter: DbGetter =
        Arc::new(|name: String| Box::pin(async move { Err(format!("no connection {name}")) }));
    let cancel = CancellationToken::new();
    let (hub, _records) = monitor::spawn(&rb, getter, Some(c.clone()), cancel.clone());
    let until = |want: f64, secs: u64| {
        let hub = hub.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(secs);
            loop {
                if hub.metric("errors") == Some(want) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "errors never read {want}: {:?}",
                    hub.snapshot().metrics
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    until(2.0, 20).await;
    // more errors in the same period: its Sum grows to 52, and a gate must see that
    put_at(&c, &ns, 50.0, chrono::Utc::now()).await;
    until(52.0, 25).await;
    cancel.cancel();
}
