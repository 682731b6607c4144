//! Seed 003 (self-hosted PostgreSQL + Redis -> RDS + ElastiCache) rehearsed end to end on
//! the rig: `runbooks/self-hosted-to-managed.toml` with
//! `runbooks/rig/self-hosted-to-managed.vars.toml`, `--headless --yes`, five times, each on
//! fresh data. Self-hosted PostgreSQL is a cluster of the rehearsal's own (its `ALTER SYSTEM`
//! must not touch the rig's shared clusters) with TLS from the rig's test CA; "RDS" is a
//! database on the rig's TLS target cluster, reached with a password over verify-full (the
//! vars file switches `iam_auth` off: PostgreSQL cannot check an IAM token); both Redis are
//! real redis-servers; the instance, its alarms and the archive bucket live in moto. The app
//! is a task of this test: it reads its Consul flags (files, through the rig's `consul`),
//! writes orders through the profile they name, holds its session, answers health and
//! publishes the target cluster's measured CPU to moto's CloudWatch.
//!
//! Each rehearsal asserts the outcome, an independent fingerprint of every copied table
//! (source against target), the Redis keys and their TTLs, the app's switch to RDS, that
//! each connection was journaled as TLS-verified, and the end state (self-hosted stopped
//! and read-only, archive in S3, snapshot in moto); `ferry stats` over the five journals
//! gives finite figures for every step.

use crate::support;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use ferry_core::aws::{self, Clients};
use ferry_core::runbook::AwsSettings;
use serde_json::Value;
use sqlx::{Connection, PgConnection};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::headless::{dump, entries, reader, Output, Running};
use support::pg::{
    cleanup, exec, fingerprint, pg_tool, pg_tool_ok, rig_var, scalar, unique, with_db,
};

const RUNBOOK: &str = "runbooks/self-hosted-to-managed.toml";
const RIG_VARS: &str = "runbooks/rig/self-hosted-to-managed.vars.toml";
/// The runbook's `[aws] region`: moto keeps each region apart.
const REGION: &str = "eu-central-1";
/// How long one rehearsal may take before the test kills it and fails.
const REHEARSAL_LIMIT: Duration = Duration::from_secs(180);
const SUPER_PASSWORD: &str = "rig-selfhosted-pw-3";
const APP_PASSWORD: &str = "rig-app-pw-3";
const REDIS_SOURCE_PASSWORD: &str = "rig-redis-src-pw";
const REDIS_TARGET_PASSWORD: &str = "rig-redis-tgt-token";

/// The app's schema on self-hosted (pg-backup dumps it, the schema steps load it on RDS).
const SCHEMA: &str = r#"
create table public.users (
  id bigserial primary key,
  email text not null unique,
  created_at timestamptz not null default now());
create table public.orders (
  id bigserial primary key,
  user_id bigint not null references public.users (id),
  total_cents bigint not null check (total_cents >= 0),
  note text,
  created_at timestamptz not null default now());
create index orders_user_id on public.orders (user_id);
create table public.order_items (
  order_id bigint not null references public.orders (id),
  line int not null,
  sku text not null,
  qty int not null,
  primary key (order_id, line));
create table public.django_session (
  session_key text primary key,
  session_data text not null,
  expire_date timestamptz not null);
"#;

fn data(n: usize) -> String {
    let users = 150 + 23 * n;
    format!(
        r#"
insert into public.users (email, created_at)
  select 'u' || g || '-r{n}@example.invalid', timestamptz '2026-01-01 00:00:00+00' + g * interval '9 minutes'
    from generate_series(1, {users}) g;
insert into public.orders (user_id, total_cents, note, created_at)
  select (g % {users}) + 1, g * 37 % 100000, case when g % 4 = 0 then null else 'note é ✓ ' || g || E'\t r{n}' end,
         timestamptz '2026-02-01 00:00:00+00' + g * interval '1 minute'
    from generate_series(1, {users} * 4) g;
insert into public.order_items select o.id, l, 'sku-' || (o.id * l) % 97, l from public.orders o, generate_series(1, 3) l;
insert into public.django_session select 'k' || g, 'data', now() + interval '1 day' from generate_series(1, 50) g;
"#
    )
}

/// The Redis data: queues, API sessions with TTLs and feature data are copied; cache:*
/// and ratelimit:* are not.
fn redis_data(n: usize) -> String {
    let mut s = String::new();
    for i in 0..(20 + n) {
        s += &format!("RPUSH queue:emails \"mail {i} r{n}\"\n");
        s += &format!("HSET session:api:{i} user {i} scope \"orders read\"\n");
        s += &format!("EXPIRE session:api:{i} 86400\n");
        s += &format!("SET feature:flag:{i} \"on r{n}\"\n");
        s += &format!("SET cache:page:{i} \"<html>{i}</html>\" EX 600\n");
        s += &format!("SET ratelimit:ip:{i} {i} EX 60\n");
    }
    s += &format!(
        "SADD feature:beta-users {}\n",
        (1..=n + 3)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    s
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn as_pg_owner() -> bool {
    std::env::var("FERRY_TEST_RUN_AS").as_deref() == Ok("postgres")
}

/// `?sslmode=verify-full&sslrootcert=<the rig's CA>`: what psql, pg_dump and ferry read.
fn verify_full() -> String {
    format!(
        "sslmode=verify-full&sslrootcert={}",
        rig_var("FERRY_TEST_TLS_CA")
    )
}

/// The self-hosted PostgreSQL: a cluster of the rehearsal's own, password auth over TCP,
/// TLS with the rig's certificate for localhost/127.0.0.1 (signed by the test CA).
struct SelfHosted {
    data: String,
    port: u16,
}

impl SelfHosted {
    fn start() -> SelfHosted {
        let rig = rig_var("FERRY_TEST_RIG_DIR");
        let data = format!("{rig}/{}", unique("seed003_selfhosted"));
        let pwfile = format!("{data}.pw");
        std::fs::write(&pwfile, SUPER_PASSWORD).expect("write the password file");
        std::fs::set_permissions(&pwfile, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("chmod");
        pg_tool_ok(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--pwfile",
                &pwfile,
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        let _ = std::fs::remove_file(&pwfile);
        let tls = rig_var("FERRY_TEST_TLS_DIR");
        for (from, to) in [("target.crt", "server.crt"), ("target.key", "server.key")] {
            let dst = format!("{data}/{to}");
            std::fs::copy(format!("{tls}/{from}"), &dst).expect("copy the rig's certificate");
            std::fs::set_permissions(&dst, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .expect("chmod");
            if as_pg_owner() {
                let ok = Command::new("chown")
                    .args(["postgres:", &dst])
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "chown {dst}");
            }
        }
        let port = free_port();
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = ''\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nshared_buffers = 32MB\n\
             ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(format!("{data}/postgresql.conf"))
            .expect("open postgresql.conf");
        std::io::Write::write_all(&mut f, conf.as_bytes()).expect("configure the cluster");
        let s = SelfHosted { data, port };
        s.pg_start();
        s
    }

    fn pg_start(&self) {
        let log = format!("{}.log", self.data);
        pg_tool_ok(
            "pg_ctl",
            &["-D", &self.data, "-l", &log, "-w", "-t", "60", "start"],
        );
    }

    fn url(&self, user: &str, password: &str, db: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/{db}?{}",
            self.port,
            verify_full()
        )
    }

    fn admin(&self, db: &str) -> String {
        self.url("postgres", SUPER_PASSWORD, db)
    }
}

impl Drop for SelfHosted {
    fn drop(&mut self) {
        let _ = pg_tool(
            "pg_ctl",
            &["-D", &self.data, "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.data);
        let _ = std::fs::remove_file(format!("{}.log", self.data));
    }
}

/// A redis-server of the rehearsal's own, in a process group of its own.
struct Redis {
    child: Child,
    url: String,
}

impl Redis {
    fn start(password: &str) -> Redis {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--requirepass",
                password,
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server (scripts/test installs it): {e}")
            });
        let r = Redis {
            child,
            url: format!("redis://default:{password}@127.0.0.1:{port}/0"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while r.cli(&["ping"]).trim() != "PONG" {
            assert!(
                Instant::now() < deadline,
                "redis-server on {port} never answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    /// `redis-cli -u URL ARGS`, its output ("" when it cannot run).
    fn cli(&self, args: &[&str]) -> String {
        redis_cli(&self.url, args, None)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_cli(url: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut c = Command::new("redis-cli")
        .args(["-u", url, "--no-auth-warning"])
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run redis-cli (scripts/test installs it): {e}"));
    if let Some(text) = stdin {
        use std::io::Write;
        c.stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("feed redis-cli");
    }
    let out = c.wait_with_output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The Redis keys a rehearsal copies (not cache:*, ratelimit:*), each with its value as
/// redis-cli shows it, sorted.
fn redis_fingerprint(url: &str) -> Vec<(String, String)> {
    let mut keys: Vec<String> = redis_cli(url, &["--scan"], None)
        .lines()
        .filter(|k| !k.starts_with("cache:") && !k.starts_with("ratelimit:"))
        .map(str::to_string)
        .collect();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let ty = redis_cli(url, &["type", &k], None);
            let v = match ty.trim() {
                "list" => redis_cli(url, &["lrange", &k, "0", "-1"], None),
                "hash" => {
                    let mut l: Vec<String> = redis_cli(url, &["hgetall", &k], None)
                        .lines()
                        .map(str::to_string)
                        .collect();
                    l.sort();
                    l.join("\n")
                }
                "set" => {
                    let mut l: Vec<String> = redis_cli(url, &["smembers", &k], None)
                        .lines()
                        .map(str::to_string)
                        .collect();
                    l.sort();
                    l.join("\n")
                }
                _ => redis_cli(url, &["get", &k], None),
            };
            (k, format!("{}: {v}", ty.trim()))
        })
        .collect()
}

fn moto() -> String {
    rig_var("FERRY_TEST_MOTO_URL")
}

/// `aws --endpoint-url <moto> ARGS` in the runbook's region; a failure fails the test.
fn aws_cli(args: &[&str]) -> String {
    let out = Command::new("aws")
        .arg("--endpoint-url")
        .arg(moto())
        .args(args)
        .env("AWS_DEFAULT_REGION", REGION)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the aws CLI (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn cloudwatch() -> Clients {
    let settings = AwsSettings {
        region: Some(REGION.into()),
        profile: None,
        endpoint_url: Some(moto()),
    };
    Clients::new(aws::sdk_config(Some(&settings)).await)
}

/// CPU of the rig's target cluster (the postmaster and its children), in clock ticks.
fn target_cluster_ticks() -> u64 {
    let data = rig_var("FERRY_TEST_PG_TARGET_DATA");
    let Some(pm) = std::fs::read_to_string(format!("{data}/postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u64>().ok()))
    else {
        return 0;
    };
    let mut total = 0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let pid = e.file_name().to_string_lossy().parse::<u64>().unwrap_or(0);
        let ppid = f.get(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        if pid == pm || ppid == pm {
            let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            total += tick(11) + tick(12);
        }
    }
    total
}

/// What the app did, for the assertions.
#[derive(Default, Debug)]
struct Tally {
    writes_selfhosted: u64,
    writes_rds: u64,
    errors: Vec<String>,
    cpu_published: u64,
}

struct App {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Tally>,
}

fn flag(dir: &Path, key: &str, default: &str) -> String {
    std::fs::read_to_string(dir.join("consul/app/prod/flags").join(key))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| default.to_string())
}

/// The application: every 200 ms it reads its flags, connects through the database
/// profile they name (as the app role, verify-full), writes an order unless maintenance
/// mode is on, answers health in `health.json` and publishes the target cluster's CPU.
fn start_app(dir: PathBuf, selfhosted: String, rds: String, instance: String, cw: Clients) -> App {
    let stop = Arc::new(AtomicBool::new(false));
    let halt = stop.clone();
    let task = tokio::spawn(async move {
        let mut t = Tally::default();
        let mut conn: Option<(String, PgConnection)> = None;
        let (mut ticks, mut ticks_at) = (target_cluster_ticks(), Instant::now());
        let mut i = 0u64;
        while !halt.load(Ordering::SeqCst) {
            i += 1;
            let profile = flag(&dir, "db_profile", "selfhosted");
            let maintenance = flag(&dir, "maintenance_mode", "false") == "true";
            if conn.as_ref().is_none_or(|(p, _)| *p != profile) {
                if let Some((_, c)) = conn.take() {
                    let _ = c.close().await;
                }
                let url = if profile == "managed" {
                    &rds
                } else {
                    &selfhosted
                };
                match PgConnection::connect(url).await {
                    Ok(c) => conn = Some((profile.clone(), c)),
                    Err(e) => t.errors.push(format!("connect {profile}: {e}")),
                }
            }
            if let Some((p, c)) = conn.as_mut() {
                let ssl: Result<bool, _> =
                    sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
                        .fetch_one(&mut *c)
                        .await;
                let health = serde_json::json!({
                    "db_profile": p,
                    "db_ssl": ssl.as_ref().is_ok_and(|s| *s),
                    "pool": if ssl.is_ok() { "healthy" } else { "broken" },
                });
                let _ = std::fs::write(dir.join("health.json.tmp"), health.to_string()).and_then(
                    |_| std::fs::rename(dir.join("health.json.tmp"), dir.join("health.json")),
                );
                if !maintenance {
                    let r = sqlx::query(
                        "insert into public.orders (user_id, total_cents, note)
                         select id, $1, 'live order' from public.users order by id limit 1",
                    )
                    .bind((i * 13 % 5000) as i64)
                    .execute(&mut *c)
                    .await;
                    match r {
                        Ok(_) if p == "managed" => t.writes_rds += 1,
                        Ok(_) => t.writes_selfhosted += 1,
                        Err(e) => t.errors.push(format!("write on {p}: {e}")),
                    }
                }
            }
            if i.is_multiple_of(5) {
                let now = target_cluster_ticks();
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
                let cpu = now.saturating_sub(ticks) as f64
                    / 100.0
                    / ticks_at.elapsed().as_secs_f64().max(0.001)
                    / cores
                    * 100.0;
                (ticks, ticks_at) = (now, Instant::now());
                let d = MetricDatum::builder()
                    .metric_name("CPUUtilization")
                    .value(cpu)
                    .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                        chrono::Utc::now().timestamp(),
                    ))
                    .dimensions(
                        Dimension::builder()
                            .name("DBInstanceIdentifier")
                            .value(&instance)
                            .build(),
                    )
                    .build();
                match cw
                    .cloudwatch
                    .put_metric_data()
                    .namespace("AWS/RDS")
                    .metric_data(d)
                    .send()
                    .await
                {
                    Ok(_) => t.cpu_published += 1,
                    Err(e) => t.errors.push(format!("PutMetricData: {e:?}")),
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if let Some((_, c)) = conn.take() {
            let _ = c.close().await;
        }
        t
    });
    App { stop, task }
}

/// One rehearsal's servers, databases, roles and moto resources; removed when it ends.
struct Rehearsal {
    n: usize,
    selfhosted: SelfHosted,
    redis_source: Redis,
    redis_target: Redis,
    /// the database's name on self-hosted ("app") is fixed; on the target cluster unique
    rds_name: String,
    role: String,
    rds_url: String,
    rds_password: String,
    instance: String,
    bucket: String,
    change_id: String,
    app_dir: tempfile::TempDir,
    backup_dir: tempfile::TempDir,
}

impl Rehearsal {
    async fn new(n: usize) -> Rehearsal {
        let selfhosted = SelfHosted::start();
        let rds_name = unique(&format!("seed003_r{n}"));
        let role = format!("{rds_name}_app");
        let target = rig_var("FERRY_TEST_PG_TARGET");
        let rds_password = target
            .split_once("://")
            .and_then(|(_, r)| r.split_once('@'))
            .and_then(|(cred, _)| cred.split_once(':'))
            .map(|(_, p)| p.to_string())
            .expect("the rig's target URL has a password");
        exec(&target, &format!("create database {rds_name}")).await;
        exec(
            &target,
            &format!("create role {role} login password '{APP_PASSWORD}'"),
        )
        .await;
        let rds_admin = with_db(&target, &rds_name);
        // What terraform's RDS module provisions besides the instance: the app role may use
        // what the migrator creates (pg_restore --no-privileges writes no grants).
        exec(
            &rds_admin,
            &format!(
                "grant usage, create on schema public to {role};
                 alter default privileges in schema public grant select, insert, update, delete on tables to {role};
                 alter default privileges in schema public grant usage, select on sequences to {role};"
            ),
        )
        .await;
        let admin = selfhosted.admin("postgres");
        exec(&admin, "create database app").await;
        exec(
            &admin,
            &format!("create role {role} login password '{APP_PASSWORD}'"),
        )
        .await;
        let app_db = selfhosted.admin("app");
        exec(&app_db, SCHEMA).await;
        exec(&app_db, &data(n)).await;
        exec(
            &app_db,
            &format!(
                "grant select, insert, update, delete on all tables in schema public to {role};
                 grant usage on all sequences in schema public to {role}; analyze;"
            ),
        )
        .await;
        let redis_source = Redis::start(REDIS_SOURCE_PASSWORD);
        let redis_target = Redis::start(REDIS_TARGET_PASSWORD);
        let out = redis_cli(&redis_source.url, &[], Some(&redis_data(n)));
        assert!(!out.contains("ERR"), "seeding Redis: {out}");
        let instance = rds_name.replace('_', "-");
        let bucket = format!("archive-{instance}");
        aws_cli(&[
            "rds",
            "create-db-instance",
            "--db-instance-identifier",
            &instance,
            "--db-instance-class",
            "db.t3.micro",
            "--engine",
            "postgres",
            "--allocated-storage",
            "20",
            "--backup-retention-period",
            "7",
            "--master-username",
            "migration",
            "--master-user-password",
            "rig-master-pw-3",
        ]);
        for m in [
            "CPUUtilization",
            "FreeStorageSpace",
            "WriteIOPS",
            "DatabaseConnections",
        ] {
            aws_cli(&[
                "cloudwatch",
                "put-metric-alarm",
                "--alarm-name",
                &format!("{instance}-{m}"),
                "--namespace",
                "AWS/RDS",
                "--metric-name",
                m,
                "--dimensions",
                &format!("Name=DBInstanceIdentifier,Value={instance}"),
                "--statistic",
                "Average",
                "--period",
                "60",
                "--evaluation-periods",
                "5",
                "--threshold",
                "90",
                "--comparison-operator",
                "GreaterThanThreshold",
            ]);
        }
        aws_cli(&[
            "s3api",
            "create-bucket",
            "--bucket",
            &bucket,
            "--create-bucket-configuration",
            &format!("LocationConstraint={REGION}"),
        ]);
        Rehearsal {
            n,
            rds_url: format!("{rds_admin}?{}", verify_full()),
            selfhosted,
            redis_source,
            redis_target,
            rds_name,
            role,
            rds_password,
            instance,
            bucket,
            change_id: format!("chg-rehearsal-{n}"),
            app_dir: tempfile::tempdir().expect("tempdir"),
            backup_dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn selfhosted_app_url(&self) -> String {
        self.selfhosted.url(&self.role, APP_PASSWORD, "app")
    }

    fn rds_app_url(&self) -> String {
        let target = rig_var("FERRY_TEST_PG_TARGET");
        let (_, rest) = target.split_once('@').expect("a URL with credentials");
        let rest = rest.rsplit_once('/').map(|(h, _)| h).unwrap_or(rest);
        format!(
            "postgres://{}:{APP_PASSWORD}@{rest}/{}?{}",
            self.role,
            self.rds_name,
            verify_full()
        )
    }

    fn run(&self, runs: &Path, state: &Path) -> Output {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let path = format!(
            "{}:{}",
            rig_var("FERRY_TEST_PG_BIN"),
            std::env::var("PATH").unwrap_or_default()
        );
        let ca = rig_var("FERRY_TEST_TLS_CA");
        let backup = self.backup_dir.path().join("chg");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .current_dir(root)
            .arg("run")
            .arg(RUNBOOK)
            .args(["--headless", "--yes", "--operator", "rehearsal"])
            .args(["--vars", RIG_VARS])
            .arg("--runs-dir")
            .arg(runs)
            .args(["--var", &format!("change_id={}", self.change_id)])
            .args(["--var", &format!("app_role={}", self.role)])
            .args(["--var", &format!("rds_instance={}", self.instance)])
            .args(["--var", &format!("backup_dir={}", backup.display())])
            .args(["--var", &format!("archive_bucket=s3://{}", self.bucket)])
            .args(["--var", &format!("selfhosted_ca={ca}")])
            .args(["--var", &format!("rds_ca={ca}")])
            .env("SELFHOSTED_DATABASE_URL", self.selfhosted.admin("app"))
            .env("RDS_DATABASE_URL", &self.rds_url)
            .env("RIG_RDS_PASSWORD", &self.rds_password)
            .env("RIG_SELFHOSTED_DATA", &self.selfhosted.data)
            .env("REDIS_SOURCE_URL", &self.redis_source.url)
            .env("REDIS_TARGET_URL", &self.redis_target.url)
            .env("RIG_APP_DIR", self.app_dir.path())
            .env("AWS_ENDPOINT_URL", moto())
            .env("AWS_DEFAULT_REGION", REGION)
            .env("PATH", path)
            .env("XDG_STATE_HOME", state)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ferry");
        let stdout = reader(child.stdout.take());
        let stderr = reader(child.stderr.take());
        let mut running = Running {
            child,
            what: format!("rehearsal {} of {RUNBOOK}", self.n),
            stdout,
            stderr,
        };
        // Longer than `Running::finish`'s watchdog: a rehearsal runs 30 steps with real
        // waits (CloudWatch is polled every 10s at the least).
        let deadline = Instant::now() + REHEARSAL_LIMIT;
        loop {
            match running.child.try_wait() {
                Ok(Some(status)) => return running.collect(status.code()),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = running.child.kill();
                    let _ = running.child.wait();
                    let out = running.collect(None);
                    panic!(
                        "rehearsal {} ran past {}s and was killed\n{}",
                        self.n,
                        REHEARSAL_LIMIT.as_secs(),
                        out.show()
                    );
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => panic!("cannot wait for ferry: {e}"),
            }
        }
    }
}

impl Drop for Rehearsal {
    fn drop(&mut self) {
        if let Ok(target) = std::env::var("FERRY_TEST_PG_TARGET") {
            cleanup(vec![
                (
                    target.clone(),
                    format!("drop database if exists {} with (force)", self.rds_name),
                ),
                (target, format!("drop role if exists {}", self.role)),
            ]);
        }
    }
}

fn journals(runs: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(runs, &mut out);
    out.sort();
    out
}

/// The source tables a rehearsal copies (django_session is excluded by the runbook).
const TABLES: [&str; 3] = ["public.users", "public.orders", "public.order_items"];

#[tokio::test(flavor = "multi_thread")]
async fn seed_003_self_hosted_to_managed_rehearses_five_times_on_the_rig() {
    let work = tempfile::tempdir().expect("tempdir");
    let runs = work.path().join("runs");
    let state = work.path().join("state");
    let cw = cloudwatch().await;
    for n in 0..5 {
        let t0 = Instant::now();
        let r = Rehearsal::new(n).await;
        let redis_want = redis_fingerprint(&r.redis_source.url);
        // a queue, the sessions, the feature flags and the beta-users set
        assert_eq!(redis_want.len(), 2 * (20 + n) + 2, "the Redis seed went in");
        let app = start_app(
            r.app_dir.path().to_path_buf(),
            r.selfhosted_app_url(),
            r.rds_app_url(),
            r.instance.clone(),
            cw.clone(),
        );
        // the app is live on self-hosted before the run starts
        let deadline = Instant::now() + Duration::from_secs(20);
        let live = "select count(*)::text from public.orders where note = 'live order'";
        while scalar(&r.selfhosted.admin("app"), live).await == "0" {
            assert!(
                Instant::now() < deadline,
                "the app never wrote to self-hosted"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let before = journals(&runs).len();
        let out = r.run(&runs, &state);
        app.stop.store(true, Ordering::SeqCst);
        let tally = app.task.await.expect("the app task");
        out.assert_code(0, "a rehearsal of seed 003");
        assert!(
            out.stdout.contains("run finished: all steps done"),
            "rehearsal {n} did not finish every step\n{}",
            out.show()
        );
        let js = journals(&runs);
        assert_eq!(js.len(), before + 1, "one journal per rehearsal");
        let journal = js
            .iter()
            .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .expect("a journal")
            .clone();
        let recs = entries(&journal);
        let steps: Vec<(String, String)> = support::headless::events(&recs, "finished", None)
            .into_iter()
            .map(|e| {
                (
                    e["entry"]["step"].as_str().unwrap_or_default().to_string(),
                    support::headless::outcome(e).to_string(),
                )
            })
            .collect();
        assert_eq!(steps.len(), 30, "every step ran once: {steps:?}");
        for (id, outcome) in &steps {
            assert_eq!(outcome, "succeeded", "step {id} in rehearsal {n}");
        }

        // each connection journaled as TLS-verified (verify-full against the test CA)
        for name in ["selfhosted", "rds"] {
            let c = recs
                .iter()
                .find(|e| e["entry"]["kind"] == "connection" && e["entry"]["connection"] == name)
                .unwrap_or_else(|| panic!("no connection entry for {name}:\n{}", dump(&recs)));
            assert_eq!(c["entry"]["mode"], "verify-full", "{c}");
            assert_eq!(c["entry"]["verified"], true, "{c}");
            assert_eq!(c["entry"]["encrypted"], true, "{c}");
        }
        let text = std::fs::read_to_string(&journal).expect("journal");
        for secret in [
            SUPER_PASSWORD,
            APP_PASSWORD,
            REDIS_SOURCE_PASSWORD,
            REDIS_TARGET_PASSWORD,
            &r.rds_password,
        ] {
            assert!(!text.contains(secret), "a password reached the journal");
        }

        // the app: wrote to self-hosted before, not during maintenance, then to RDS
        assert!(
            tally.errors.iter().all(|e| !e.starts_with("write")),
            "the app's writes failed: {:?}",
            tally.errors
        );
        assert!(
            tally.writes_selfhosted > 0 && tally.writes_rds > 0,
            "{tally:?}"
        );
        assert!(tally.cpu_published > 0, "{tally:?}");

        // the self-hosted side is stopped: nothing answers until the test starts it again
        assert!(
            PgConnection::connect(&r.selfhosted.admin("app"))
                .await
                .is_err(),
            "self-hosted PostgreSQL still answers after selfhosted-stop"
        );
        assert_eq!(
            r.redis_source.cli(&["ping"]).trim(),
            "",
            "the source Redis still answers"
        );
        r.selfhosted.pg_start();
        let src = r.selfhosted.admin("app");
        assert_eq!(
            scalar(
                &src,
                "select current_setting('default_transaction_read_only')"
            )
            .await,
            "on",
            "self-hosted was left read-only (ALTER SYSTEM)"
        );

        // the data: an independent fingerprint of every copied table, source against RDS;
        // orders past the source's last id are the app's writes on RDS after the switch
        let max: i64 = scalar(&src, "select max(id)::text from public.orders")
            .await
            .parse()
            .expect("an id");
        for t in TABLES {
            let (a, b) = if t == "public.orders" {
                let sub = format!("(select * from public.orders where id <= {max})");
                (
                    fingerprint(&src, &sub).await,
                    fingerprint(&r.rds_url, &sub).await,
                )
            } else {
                (fingerprint(&src, t).await, fingerprint(&r.rds_url, t).await)
            };
            assert_eq!(a, b, "{t} differs after rehearsal {n}");
        }
        let after: u64 = scalar(
            &r.rds_url,
            &format!(
                "select count(*)::text from public.orders where id > {max} and note = 'live order'"
            ),
        )
        .await
        .parse()
        .expect("a count");
        assert_eq!(
            after, tally.writes_rds,
            "the app's writes after the switch are on RDS"
        );
        assert_eq!(
            scalar(
                &r.rds_url,
                "select count(*)::text from public.django_session"
            )
            .await,
            "0",
            "sessions are not copied"
        );
        assert_eq!(
            scalar(
                &r.rds_url,
                "select count(*)::text from pg_indexes where indexname = 'orders_user_id'"
            )
            .await,
            "1",
            "post-data built the indexes"
        );
        assert_eq!(
            scalar(
                &r.rds_url,
                &format!(
                    "select count(*)::text from ops.cutover_log where event = '{}-on-rds'",
                    r.change_id
                )
            )
            .await,
            "1"
        );

        // Redis: every key but cache:* and ratelimit:*, same values; TTLs kept
        assert_eq!(
            redis_fingerprint(&r.redis_target.url),
            redis_want,
            "Redis keys differ"
        );
        let ttl: i64 = r
            .redis_target
            .cli(&["ttl", "session:api:0"])
            .trim()
            .parse()
            .expect("a ttl");
        assert!(
            ttl > 0 && ttl <= 86400,
            "the session's TTL was not kept: {ttl}"
        );
        assert_eq!(r.redis_target.cli(&["exists", "cache:page:0"]).trim(), "0");
        // the flags the app followed
        for (k, v) in [
            ("maintenance_mode", "false"),
            ("db_profile", "managed"),
            ("cache_profile", "managed"),
        ] {
            assert_eq!(flag(r.app_dir.path(), k, "-"), v, "flag {k}");
        }

        // AWS: the snapshot and the archive
        let snaps = aws_cli(&[
            "rds",
            "describe-db-snapshots",
            "--query",
            "DBSnapshots[].DBSnapshotIdentifier",
            "--output",
            "text",
        ]);
        let want = format!("{}-post-{}", r.instance, r.change_id);
        assert!(
            snaps.split_whitespace().any(|s| s == want),
            "no snapshot {want}: {snaps}"
        );
        let size = aws_cli(&[
            "s3api",
            "head-object",
            "--bucket",
            &r.bucket,
            "--key",
            &format!("{}/app-final.dump", r.change_id),
            "--query",
            "ContentLength",
            "--output",
            "text",
        ]);
        let size: u64 = size.trim().parse().expect("a size");
        assert!(size > 1000, "the archived dump is {size} bytes");
        eprintln!("rehearsal {n}: {:.1}s", t0.elapsed().as_secs_f64());
    }

    // ferry stats over the five rehearsals
    let js = journals(&runs);
    assert_eq!(js.len(), 5, "{js:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("stats")
        .args(["--format", "json"])
        .args(&js)
        .output()
        .expect("ferry stats");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("stats json");
    assert_eq!(v["journals"], 5);
    assert_eq!(v["runs_counted"], 5, "{v}");
    let steps = v["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 30, "{v}");
    for s in steps {
        assert_eq!(s["n"], 5, "{s}");
        for k in ["median_secs", "p90_secs", "max_secs"] {
            let x = s[k].as_f64().unwrap_or(f64::NAN);
            assert!(x.is_finite() && x >= 0.0, "{k} of {s}");
        }
        let iv = s["next95_secs"].as_array().expect("an interval");
        assert!(
            iv.iter().all(|x| x.as_f64().is_some_and(f64::is_finite)),
            "{s}"
        );
    }
    assert!(
        v["total"]["p90_secs"]
            .as_f64()
            .is_some_and(|x| x.is_finite() && x > 0.0),
        "{v}"
    );
}
