//! Seed 002 rehearsed end to end: `runbooks/read-replica-promotion.toml` runs
//! `--headless --yes` with `runbooks/rig/read-replica-promotion.vars.toml` five times,
//! each time on fresh data, and `ferry stats` over the five journals gives finite
//! figures for every step.
//!
//! What plays what (the vars file says the same):
//! - prod-db is a fresh database on the rig's primary; prod-db-replica is a streaming
//!   standby of the primary that the test builds for each rehearsal with pg_basebackup
//!   (the rig's own standby is shared by other tests and must never be promoted);
//! - RDS, Route 53 and CloudWatch are moto. moto only records PromoteReadReplica, so
//!   the test plays RDS's control plane for it: once the journal shows `promote`
//!   succeeded, it runs `pg_ctl promote` on the standby. Nothing else promotes it: a
//!   runbook without the RDS call would fail at `new-is-primary`;
//! - web-api's load balancer is a probe thread: it reads `users` through the database
//!   URL the app's "secret" holds (a row of `app_config`), every 300 ms, and publishes
//!   the time it took as TargetResponseTime and each failure as a 5xx, to moto's
//!   CloudWatch, which the `errors-ok` and `latency-ok` gates read.

use crate::support;

use aws_sdk_cloudwatch::primitives::DateTime as AwsTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use ferry_core::aws::{self, Clients};
use ferry_core::runbook::AwsSettings;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::headless::{dump, entries, events, outcome, reader};
use support::pg::{fingerprint, pg_tool, pg_tool_ok, rig_var, scalar, unique, with_db, TestDb};

const REGION: &str = "us-east-2";
const ALB: &str = "app/rig-web-api/0000000000000000";
const SUBNET_GROUP: &str = "rig-new-vpc";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn moto() -> String {
    rig_var("FERRY_TEST_MOTO_URL")
}

/// The AWS CLI against moto, in the runbook's region; its text output.
fn aws(args: &[&str]) -> String {
    let out = Command::new("aws")
        .args(args)
        .args(["--output", "text"])
        .env("AWS_ENDPOINT_URL", moto())
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_REGION", REGION)
        .stdin(Stdio::null())
        .output()
        .expect("run the aws CLI");
    assert!(
        out.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The new VPC's DB subnet group (in production it exists before the change).
fn subnet_group() {
    let have = Command::new("aws")
        .args([
            "rds",
            "describe-db-subnet-groups",
            "--db-subnet-group-name",
            SUBNET_GROUP,
        ])
        .env("AWS_ENDPOINT_URL", moto())
        .env("AWS_DEFAULT_REGION", REGION)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run the aws CLI");
    if have.success() {
        return;
    }
    let vpc = aws(&[
        "ec2",
        "create-vpc",
        "--cidr-block",
        "10.9.0.0/16",
        "--query",
        "Vpc.VpcId",
    ]);
    let subnet = |cidr: &str, az: &str| {
        aws(&[
            "ec2",
            "create-subnet",
            "--vpc-id",
            &vpc,
            "--cidr-block",
            cidr,
            "--availability-zone",
            az,
            "--query",
            "Subnet.SubnetId",
        ])
    };
    let (a, b) = (
        subnet("10.9.1.0/24", "us-east-2a"),
        subnet("10.9.2.0/24", "us-east-2b"),
    );
    aws(&[
        "rds",
        "create-db-subnet-group",
        "--db-subnet-group-name",
        SUBNET_GROUP,
        "--db-subnet-group-description",
        "new VPC (rig)",
        "--subnet-ids",
        &a,
        &b,
    ]);
}

/// A shell script run as the owner of the rig's clusters.
fn as_pg_sh(script: &str) {
    let out = if std::env::var("FERRY_TEST_RUN_AS").as_deref() == Ok("postgres") {
        Command::new("runuser")
            .args(["-u", "postgres", "--", "sh", "-c", script])
            .current_dir("/")
            .output()
    } else {
        Command::new("sh").args(["-c", script]).output()
    }
    .expect("run sh");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A streaming standby of the rig's primary, of this rehearsal's own.
struct Standby {
    data: String,
    /// the rig's role and database, on the standby's port
    admin: String,
}

impl Standby {
    fn start() -> Standby {
        let primary = rig_var("FERRY_TEST_PG_PRIMARY");
        let port_of = |url: &str| -> String {
            let after = url.rsplit_once('@').map(|(_, h)| h).unwrap_or(url);
            let hostport = after.split('/').next().unwrap_or("");
            hostport
                .rsplit_once(':')
                .map(|(_, p)| p.to_string())
                .expect("a port")
        };
        let data = format!(
            "{}/{}",
            rig_var("FERRY_TEST_RIG_DIR"),
            unique("seed_standby")
        );
        let conn = format!(
            "host=127.0.0.1 port={} user=postgres application_name={}",
            port_of(&primary),
            data.rsplit('/').next().unwrap_or("seed_standby")
        );
        pg_tool_ok(
            "pg_basebackup",
            &[
                "-d",
                &conn,
                "-D",
                &data,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        as_pg_sh(&format!(
            "cat >> {data}/postgresql.auto.conf <<'EOF'\nport = {port}\nunix_socket_directories = ''\nfsync = off\nEOF\n"
        ));
        let log = format!("{data}.log");
        pg_tool_ok(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-w", "-t", "60", "start"],
        );
        let admin = primary.replacen(&format!(":{}/", port_of(&primary)), &format!(":{port}/"), 1);
        Standby { data, admin }
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        let _ = pg_tool(
            "pg_ctl",
            &["-D", &self.data, "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.data);
        let _ = std::fs::remove_file(format!("{}.log", self.data));
    }
}

/// The load balancer's view of web-api: a read through the URL the app's secret holds
/// (prod-db until `app-secret`), timed, published to moto's CloudWatch.
fn probe(
    config_url: String,
    old_url: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let settings = AwsSettings {
                region: Some(REGION.into()),
                profile: None,
                endpoint_url: Some(moto()),
            };
            let c = Clients::new(aws::sdk_config(Some(&settings)).await);
            let mut published = 0;
            while !stop.load(Ordering::Relaxed) {
                let url = {
                    let u = try_scalar(
                        &config_url,
                        "select value from app_config where name = 'database-url'",
                    )
                    .await;
                    u.filter(|u| !u.is_empty())
                        .unwrap_or_else(|| old_url.clone())
                };
                let t = Instant::now();
                let ok = try_scalar(&url, "select count(*)::text from public.users")
                    .await
                    .is_some();
                let (metric, value, unit) = if ok {
                    (
                        "TargetResponseTime",
                        t.elapsed().as_secs_f64(),
                        StandardUnit::Seconds,
                    )
                } else {
                    ("HTTPCode_Target_5XX_Count", 1.0, StandardUnit::Count)
                };
                let sent = c
                    .cloudwatch
                    .put_metric_data()
                    .namespace("AWS/ApplicationELB")
                    .metric_data(
                        MetricDatum::builder()
                            .metric_name(metric)
                            .dimensions(
                                Dimension::builder().name("LoadBalancer").value(ALB).build(),
                            )
                            .value(value)
                            .unit(unit)
                            .storage_resolution(1)
                            .timestamp(AwsTime::from_secs(chrono::Utc::now().timestamp()))
                            .build(),
                    )
                    .send()
                    .await;
                if sent.is_ok() {
                    published += 1;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            published
        })
    })
}

async fn try_scalar(url: &str, sql: &str) -> Option<String> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await.ok()?;
    let v = sqlx::query_scalar::<_, Option<String>>(sql)
        .fetch_one(&mut c)
        .await
        .ok()?;
    let _ = c.close().await;
    v
}

/// The journal under `runs`, once there is one.
fn journal_in(runs: &Path) -> Option<PathBuf> {
    let dir = runs.join("read-replica-promotion");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
}

/// RDS's control plane for PromoteReadReplica: promote the standby once the journal
/// shows that the runbook's `promote` step succeeded (moto only records the call).
fn control_plane(
    runs: PathBuf,
    standby_data: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<bool> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Some(j) = journal_in(&runs) {
                let text = std::fs::read_to_string(&j).unwrap_or_default();
                let done = text
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .any(|r| {
                        r["entry"]["kind"] == "event"
                            && r["entry"]["type"] == "finished"
                            && r["entry"]["step"] == "promote"
                            && r["entry"]["outcome"]["outcome"] == "succeeded"
                    });
                if done {
                    pg_tool_ok(
                        "pg_ctl",
                        &["-D", &standby_data, "-w", "-t", "60", "promote"],
                    );
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    })
}

/// One rehearsal on fresh data; returns its journal.
async fn rehearse(n: usize, runs: &Path, config: &TestDb, zone: &str) -> PathBuf {
    // prod-db: the app's tables, with data of this rehearsal
    let old = TestDb::new("FERRY_TEST_PG_PRIMARY", "seed_rrp").await;
    old.exec(&format!(
        "create table public.users (id bigint primary key, email text not null, created timestamptz not null);
         create table public.orders (id bigint primary key, user_id bigint not null references public.users, total numeric(12,2));
         insert into public.users select g, 'u' || g || '-{n}@example.com', timestamptz '2026-01-01' + g * interval '1 minute' from generate_series(1, {rows}) g;
         insert into public.orders select g, 1 + g % {rows}, (g * 7 % 1000) / 3.0 from generate_series(1, {orders}) g;",
        rows = 200 + 37 * n,
        orders = 500 + 11 * n,
    ))
    .await;
    config.exec("truncate app_config").await;
    let standby = Standby::start();
    let replica_url = with_db(&standby.admin, &old.name);
    // the replica has the database and is a standby
    let t0 = Instant::now();
    while scalar_opt(&replica_url, "select pg_is_in_recovery()::text")
        .await
        .as_deref()
        != Some("true")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the standby never served {}",
            old.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // prod-db as RDS knows it
    let tag = unique("r").replace('_', "-");
    let old_instance = format!("rig-old-{tag}");
    let replica_instance = format!("rig-replica-{tag}");
    aws(&[
        "rds",
        "create-db-instance",
        "--db-instance-identifier",
        &old_instance,
        "--engine",
        "postgres",
        "--db-instance-class",
        "db.t3.micro",
        "--master-username",
        "rig",
        "--master-user-password",
        "rig-not-used",
        "--allocated-storage",
        "20",
        "--query",
        "DBInstance.DBInstanceStatus",
    ]);

    let stop = Arc::new(AtomicBool::new(false));
    let lb = probe(config.url.clone(), old.url.clone(), stop.clone());
    let cp = control_plane(runs.to_path_buf(), standby.data.clone(), stop.clone());
    let change = format!("rehearsal-{n}-{tag}");
    let runbook = repo().join("runbooks/read-replica-promotion.toml");
    let vars = repo().join("runbooks/rig/read-replica-promotion.vars.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(repo())
        .arg("run")
        .arg(&runbook)
        .args([
            "--headless",
            "--yes",
            "--operator",
            "seed-rehearsal",
            "--vars",
        ])
        .arg(&vars)
        .arg("--runs-dir")
        .arg(runs)
        .args(["--var", &format!("change_id={change}")])
        .args(["--var", &format!("old_instance={old_instance}")])
        .args(["--var", &format!("replica_instance={replica_instance}")])
        .args(["--var", &format!("db_name={}", old.name)])
        .args(["--var", &format!("hosted_zone_id={zone}")])
        .env("OLD_DATABASE_URL", &old.url)
        .env("REPLICA_DATABASE_URL", &replica_url)
        .env("OLD_APP_DATABASE_URL", &old.url)
        .env("NEW_APP_DATABASE_URL", &replica_url)
        .env("APP_CONFIG_URL", &config.url)
        .env("AWS_ENDPOINT_URL", moto())
        .env("AWS_REGION", REGION)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("XDG_STATE_HOME", runs.join("state"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferry");
    let (o, e) = (reader(child.stdout.take()), reader(child.stderr.take()));
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for ferry") {
            break Some(s);
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        h.and_then(|h| h.join().ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let (stdout, stderr) = (text(o), text(e));
    stop.store(true, Ordering::Relaxed);
    let promoted = cp.join().expect("the control plane thread");
    let published = lb.join().expect("the probe thread");
    let journal = journal_in(runs).unwrap_or_else(|| panic!("no journal\n{stdout}\n{stderr}"));
    let recs = entries(&journal);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "rehearsal {n}:\n{stdout}\n{stderr}\n{}",
        dump(&recs)
    );
    assert!(
        stdout.contains("finished: every step succeeded"),
        "{stdout}"
    );
    assert!(
        promoted,
        "the promote step never succeeded, yet the run did"
    );
    assert!(published > 0, "the probe published nothing to CloudWatch");
    for step in [
        "replica-caught-up",
        "promote",
        "new-is-primary",
        "maintenance-off",
        "week-elapsed",
    ] {
        // `new-is-primary` may need a retry: the standby is promoted after `promote`
        let fin = events(&recs, "finished", Some(step));
        let last = fin.last().map(|r| outcome(r)).unwrap_or("never finished");
        assert_eq!(last, "succeeded", "{step}\n{}", dump(&recs));
    }

    // the data: the promoted replica holds exactly what prod-db held (independent SQL)
    for table in ["public.users", "public.orders"] {
        let (a, b) = (
            fingerprint(&old.url, table).await,
            fingerprint(&replica_url, table).await,
        );
        assert!(!a.starts_with("0 "), "{table} on prod-db is empty");
        assert_eq!(a, b, "{table}: prod-db and the promoted replica differ");
    }
    // the new primary: out of recovery, writable, its cutover log written
    assert_eq!(
        scalar(&replica_url, "select pg_is_in_recovery()::text").await,
        "false"
    );
    assert_eq!(
        scalar(
            &replica_url,
            "select string_agg(event, ',' order by event) from ops.cutover_log"
        )
        .await,
        format!("{change}-promoted,{change}-writes-open")
    );
    assert_eq!(
        scalar(
            &replica_url,
            "select current_setting('default_transaction_read_only')"
        )
        .await,
        "off"
    );
    // prod-db stays read-only (nothing was written after the freeze)
    assert_eq!(
        scalar(
            &old.url,
            "select current_setting('default_transaction_read_only')"
        )
        .await,
        "on"
    );
    // the app: out of maintenance, its secret on the new database
    assert_eq!(
        scalar(&config.url, "select string_agg(name || '=' || value, ',' order by name) from app_config where name <> 'database-url'").await,
        "BATCH_SUSPENDED=false,MAINTENANCE_MODE=false"
    );
    assert_eq!(
        scalar(
            &config.url,
            "select value from app_config where name = 'database-url'"
        )
        .await,
        replica_url
    );
    // RDS: the pre-cutover and final snapshots exist, prod-db is gone
    let snaps = aws(&[
        "rds",
        "describe-db-snapshots",
        "--db-instance-identifier",
        &old_instance,
        "--query",
        "DBSnapshots[].DBSnapshotIdentifier",
    ]);
    assert!(
        snaps.contains(&format!("{old_instance}-pre-{change}"))
            && snaps.contains(&format!("{old_instance}-final-snapshot")),
        "{snaps}"
    );
    let left = aws(&[
        "rds",
        "describe-db-instances",
        "--query",
        "DBInstances[].DBInstanceIdentifier",
    ]);
    assert!(
        !left.split_whitespace().any(|i| i == old_instance),
        "{left}"
    );
    assert!(
        left.split_whitespace().any(|i| i == replica_instance),
        "{left}"
    );
    drop(standby);
    drop(old);
    journal
}

async fn scalar_opt(url: &str, sql: &str) -> Option<String> {
    try_scalar(url, sql).await
}

#[tokio::test(flavor = "multi_thread")]
async fn read_replica_promotion_rehearses_five_times_with_finite_stats() {
    subnet_group();
    let zone = aws(&[
        "route53",
        "create-hosted-zone",
        "--name",
        "rig.example.com",
        "--caller-reference",
        &unique("seed-rrp"),
        "--query",
        "HostedZone.Id",
    ]);
    let zone = zone.trim_start_matches("/hostedzone/").to_string();
    let config = TestDb::new("FERRY_TEST_PG_TARGET", "seed_rrp_config").await;
    config
        .exec("create table app_config (name text primary key, value text not null)")
        .await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let runs = tmp.path().join("runs");
    let mut journals = Vec::new();
    for n in 0..5 {
        let j = rehearse(n, &runs, &config, &zone).await;
        // each rehearsal gets its own runs dir entry: move it aside so the next one is found
        let kept = tmp.path().join(format!("rehearsal-{n}.jsonl"));
        std::fs::rename(&j, &kept).expect("keep the journal");
        journals.push(kept);
    }
    // the DNS record the runbook lowered to 60 s is in the zone
    let ttl = aws(&[
        "route53",
        "list-resource-record-sets",
        "--hosted-zone-id",
        &zone,
        "--query",
        "ResourceRecordSets[?Name=='api.rig.example.com.'].TTL",
    ]);
    assert_eq!(ttl, "60");
    let stats = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("stats")
        .args(["--format", "json"])
        .args(&journals)
        .output()
        .expect("ferry stats");
    let text = String::from_utf8_lossy(&stats.stdout);
    assert_eq!(
        stats.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&stats.stderr)
    );
    let v: Value = serde_json::from_str(&text).expect("stats JSON");
    assert_eq!(v["journals"], 5, "{text}");
    let steps = v["steps"].as_array().expect("steps");
    assert!(steps.len() >= 28, "{text}");
    for s in steps {
        assert_eq!(s["n"], 5, "{s}");
        for k in ["median_secs", "p90_secs"] {
            let x = s[k].as_f64().unwrap_or(f64::NAN);
            assert!(x.is_finite() && x >= 0.0, "{k} of {s}");
        }
        let next = s["next95_secs"]
            .as_array()
            .unwrap_or_else(|| panic!("no interval in {s}"));
        assert!(
            next.iter().all(|x| x.as_f64().is_some_and(f64::is_finite)),
            "{s}"
        );
    }
}
