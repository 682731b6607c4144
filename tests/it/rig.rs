//! The test rig is up: each service `scripts/test` starts answers, and the
//! standby really streams from the primary. These tests fail (never skip)
//! when a service is missing, so a broken rig cannot pass CI silently.

use sqlx::{Connection, PgConnection};
use std::time::{Duration, Instant};

use crate::support;
use support::pg::rig_var;

async fn connect(var: &str) -> PgConnection {
    let url = rig_var(var);
    PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {var}: {e}"))
}

#[tokio::test]
async fn a_write_on_the_primary_appears_on_the_standby() {
    let mut primary = connect("FERRY_TEST_PG_PRIMARY").await;
    let mut standby = connect("FERRY_TEST_PG_STANDBY").await;
    let in_recovery: bool = sqlx::query_scalar("select pg_is_in_recovery()")
        .fetch_one(&mut standby)
        .await
        .unwrap();
    assert!(in_recovery, "the standby must be in recovery (streaming)");

    let table = format!("rig_probe_{}", std::process::id());
    let marker = format!(
        "marker-{}",
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    );
    sqlx::query(&format!("create table {table} (v text)"))
        .execute(&mut primary)
        .await
        .unwrap();
    sqlx::query(&format!("insert into {table} values ($1)"))
        .bind(&marker)
        .execute(&mut primary)
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen: Option<String> = sqlx::query_scalar(&format!("select v from {table}"))
            .fetch_optional(&mut standby)
            .await
            .ok()
            .flatten();
        if seen.as_deref() == Some(marker.as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the standby did not replay the write within 20s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sqlx::query(&format!("drop table {table}"))
        .execute(&mut primary)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_primary_reports_a_streaming_standby() {
    let mut primary = connect("FERRY_TEST_PG_PRIMARY").await;
    let states: Vec<String> = sqlx::query_scalar("select state from pg_stat_replication")
        .fetch_all(&mut primary)
        .await
        .unwrap();
    assert!(
        states.iter().any(|s| s == "streaming"),
        "pg_stat_replication: {states:?}"
    );
}

/// The primary publishes: `replicate` steps and the caught-up proof on a slot need
/// logical decoding, and room for several subscriptions at once.
#[tokio::test]
async fn the_primary_runs_logical_wal_with_room_for_slots() {
    let mut primary = connect("FERRY_TEST_PG_PRIMARY").await;
    let level: String = sqlx::query_scalar("select current_setting('wal_level')")
        .fetch_one(&mut primary)
        .await
        .unwrap();
    assert_eq!(level, "logical");
    for setting in ["max_replication_slots", "max_wal_senders"] {
        let n: String = sqlx::query_scalar(&format!("select current_setting('{setting}')"))
            .fetch_one(&mut primary)
            .await
            .unwrap();
        let n: u32 = n.parse().unwrap();
        assert!(n >= 16, "{setting} = {n}");
    }
}

#[tokio::test]
async fn the_target_is_a_separate_writable_cluster() {
    let mut primary = connect("FERRY_TEST_PG_PRIMARY").await;
    let mut target = connect("FERRY_TEST_PG_TARGET").await;
    let in_recovery: bool = sqlx::query_scalar("select pg_is_in_recovery()")
        .fetch_one(&mut target)
        .await
        .unwrap();
    assert!(!in_recovery);
    let p: i64 = sqlx::query_scalar("select system_identifier::bigint from pg_control_system()")
        .fetch_one(&mut primary)
        .await
        .unwrap();
    let t: i64 = sqlx::query_scalar("select system_identifier::bigint from pg_control_system()")
        .fetch_one(&mut target)
        .await
        .unwrap();
    assert_ne!(p, t, "target must be its own cluster, not the primary");
}

#[tokio::test]
async fn moto_answers_rds_and_cloudwatch_through_the_sdk() {
    let endpoint = rig_var("FERRY_TEST_MOTO_URL");
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(aws_sdk_rds::config::Credentials::new(
            "testing", "testing", None, None, "rig",
        ))
        .load()
        .await;
    let rds = aws_sdk_rds::Client::new(&conf);
    let name = format!("rig-probe-{}", std::process::id());
    rds.create_db_instance()
        .db_instance_identifier(&name)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .allocated_storage(20)
        .master_username("probe")
        .master_user_password("probe-password-1")
        .send()
        .await
        .expect("CreateDBInstance on moto");
    let out = rds
        .describe_db_instances()
        .db_instance_identifier(&name)
        .send()
        .await
        .expect("DescribeDBInstances on moto");
    let ids: Vec<&str> = out
        .db_instances()
        .iter()
        .filter_map(|d| d.db_instance_identifier())
        .collect();
    assert_eq!(ids, vec![name.as_str()]);
    rds.delete_db_instance()
        .db_instance_identifier(&name)
        .skip_final_snapshot(true)
        .send()
        .await
        .expect("DeleteDBInstance on moto");

    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    let ns = format!("Ferry/RigProbe{}", std::process::id());
    cw.put_metric_data()
        .namespace(&ns)
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("Probe")
                .value(42.0)
                .build(),
        )
        .send()
        .await
        .expect("PutMetricData on moto");
    let metrics = cw
        .list_metrics()
        .namespace(&ns)
        .send()
        .await
        .expect("ListMetrics on moto");
    let names: Vec<&str> = metrics
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name())
        .collect();
    assert_eq!(names, vec!["Probe"]);
}
