//! Seed 004 rehearsed end to end on the rig: `runbooks/dual-write-backfill.toml` with
//! `runbooks/rig/dual-write-backfill.vars.toml`, MariaDB as users-db-mysql8, the rig's
//! PostgreSQL target as users-db-pg15, moto as RDS and CloudWatch, and this file's app
//! writer as users-api: it writes to old, to both once `DUAL_WRITE=on` (flags are rows
//! in `rig.app_flags`, set by the rig's `kubectl`), shadow-reads, and only writes new
//! once `WRITE_TO_OLD=off`; it publishes the metrics the runbook gates on from what it
//! measured. Each of five rehearsals runs the whole runbook (`--headless --yes`) on
//! fresh databases; then every row old holds is compared with new's by an independent
//! fingerprint, and `ferry stats` over the five journals gives finite figures.

use crate::support;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use ferry_core::aws::{self, Clients};
use ferry_core::runbook::AwsSettings;
use serde_json::Value;
use sqlx::{MySqlPool, PgPool};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::headless::{dump, entries, reader, Running};
use support::{mysql, pg};

const RUNBOOK: &str = "runbooks/dual-write-backfill.toml";
const VARS: &str = "runbooks/rig/dual-write-backfill.vars.toml";
const MYSQL_DDL: &str = "runbooks/rig/dual-write-backfill.users-mysql.sql";
/// The vars file's values the app writer needs too.
const DEPLOYMENT: &str = "users-api";
const ALB: &str = "rig/users-api-writer";
const TABLES: [&str; 3] = ["users", "user_profiles", "user_settings"];
/// Seconds between the app's write bursts (it reads its flags every 100ms).
const BURST_EVERY: Duration = Duration::from_millis(1500);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn clients() -> Clients {
    let settings = AwsSettings {
        region: Some("us-west-2".into()),
        profile: None,
        endpoint_url: Some(pg::rig_var("FERRY_TEST_MOTO_URL")),
    };
    Clients::new(aws::sdk_config(Some(&settings)).await)
}

async fn create_instance(c: &Clients, id: &str, engine: &str) {
    c.rds
        .create_db_instance()
        .db_instance_identifier(id)
        .db_instance_class("db.t3.micro")
        .engine(engine)
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password("rig-password-1")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateDBInstance {id}: {e:?}"));
}

// ---------------------------------------------------------------------------------------------
// The app writer (users-api)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Tally {
    bursts: u64,
    /// bursts written to old (and to new once dual writes were on)
    old_writes: u64,
    dual_writes: u64,
    new_only_writes: u64,
    dual_write_failures: u64,
    shadow_reads: u64,
    shadow_mismatches: u64,
    errors: Vec<String>,
}

#[derive(Default, Clone)]
struct Flags {
    dual_write: bool,
    shadow: bool,
    write_to_old: bool,
}

/// The flags (rows of `rig.app_flags` on new) and their generation; none before the
/// first `kubectl set env`.
async fn read_flags(pg: &PgPool) -> Option<(Flags, i64)> {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("select name, value, generation from rig.app_flags")
            .fetch_all(pg)
            .await
            .ok()?;
    let get = |n: &str| rows.iter().find(|r| r.0 == n).map(|r| r.1.as_str());
    let flags = Flags {
        dual_write: get("DUAL_WRITE") == Some("on"),
        shadow: get("SHADOW_READS") == Some("on"),
        write_to_old: get("WRITE_TO_OLD") != Some("off"),
    };
    Some((flags, rows.iter().map(|r| r.2).max().unwrap_or(0)))
}

fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

/// One user with a profile and a setting on old, then (dual writes on) the same rows on
/// new with old's ids; and one existing user renamed on old, then on new by id.
async fn write_old(my: &MySqlPool, pg: &PgPool, dual: bool, n: u64, t: &mut Tally) {
    let at = now_text();
    let email = format!(
        "u{}-{n}@example.test",
        chrono::Utc::now().timestamp_micros()
    );
    let bio = format!("bio {n}\twith a tab, é and ✓");
    let res: Result<(u64, u64, u64, i64), sqlx::Error> = async {
        let uid = sqlx::query("insert into users (email, name, active, created_at, updated_at) values (?, ?, 1, ?, ?)")
            .bind(&email).bind(format!("user {n}")).bind(&at).bind(&at)
            .execute(my).await?.last_insert_id();
        let pid = sqlx::query("insert into user_profiles (user_id, bio, updated_at) values (?, ?, ?)")
            .bind(uid).bind(&bio).bind(&at).execute(my).await?.last_insert_id();
        let sid = sqlx::query("insert into user_settings (user_id, name, value, updated_at) values (?, 'theme', 'dark', ?)")
            .bind(uid).bind(&at).execute(my).await?.last_insert_id();
        let other: i64 = sqlx::query_scalar("select id from users where id <> ? order by rand() limit 1")
            .bind(uid).fetch_one(my).await?;
        sqlx::query("update users set name = ?, updated_at = ? where id = ?")
            .bind(format!("renamed {n}")).bind(&at).bind(other).execute(my).await?;
        Ok((uid, pid, sid, other))
    }
    .await;
    let (uid, pid, sid, other) = match res {
        Ok(v) => v,
        Err(e) => {
            t.errors.push(format!("write to old: {e}"));
            return;
        }
    };
    t.old_writes += 1;
    if !dual {
        return;
    }
    let (uid, pid, sid) = (uid as i64, pid as i64, sid as i64);
    let res: Result<(), sqlx::Error> = async {
        sqlx::query("insert into public.users (id, email, name, active, created_at, updated_at) values ($1, $2, $3, true, $4::timestamp, $4::timestamp)")
            .bind(uid).bind(&email).bind(format!("user {n}")).bind(&at).execute(pg).await?;
        sqlx::query("insert into public.user_profiles (id, user_id, bio, updated_at) values ($1, $2, $3, $4::timestamp)")
            .bind(pid).bind(uid).bind(&bio).bind(&at).execute(pg).await?;
        sqlx::query("insert into public.user_settings (id, user_id, name, value, updated_at) values ($1, $2, 'theme', 'dark', $3::timestamp)")
            .bind(sid).bind(uid).bind(&at).execute(pg).await?;
        sqlx::query("update public.users set name = $1, updated_at = $2::timestamp where id = $3")
            .bind(format!("renamed {n}")).bind(&at).bind(other).execute(pg).await?;
        Ok(())
    }
    .await;
    match res {
        Ok(()) => t.dual_writes += 1,
        // fire and forget, counted (the seed's `.catch(logger.error)`)
        Err(e) => {
            t.dual_write_failures += 1;
            t.errors.push(format!("dual write to new: {e}"));
        }
    }
}

/// After `WRITE_TO_OLD=off`: new gives the ids.
async fn write_new_only(pg: &PgPool, n: u64, t: &mut Tally) {
    let at = now_text();
    let email = format!(
        "n{}-{n}@example.test",
        chrono::Utc::now().timestamp_micros()
    );
    let res: Result<(), sqlx::Error> = async {
        let uid: i64 = sqlx::query_scalar("insert into public.users (email, name, active, created_at, updated_at) values ($1, $2, true, $3::timestamp, $3::timestamp) returning id")
            .bind(&email).bind(format!("user {n}")).bind(&at).fetch_one(pg).await?;
        sqlx::query("insert into public.user_profiles (user_id, bio, updated_at) values ($1, 'new only', $2::timestamp)")
            .bind(uid).bind(&at).execute(pg).await?;
        sqlx::query("insert into public.user_settings (user_id, name, value, updated_at) values ($1, 'theme', 'light', $2::timestamp)")
            .bind(uid).bind(&at).execute(pg).await?;
        Ok(())
    }
    .await;
    match res {
        Ok(()) => t.new_only_writes += 1,
        Err(e) => t.errors.push(format!("write to new: {e}")),
    }
}

const MY_USER_ROW: &str = "select cast(concat_ws('|', id, email, name, active, date_format(created_at, '%Y-%m-%d %H:%i:%s.%f'), date_format(updated_at, '%Y-%m-%d %H:%i:%s.%f')) as char) from users where id = ?";
const PG_USER_ROW: &str = "select concat_ws('|', id, email, name, active::int, to_char(created_at, 'YYYY-MM-DD HH24:MI:SS.US'), to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS.US')) from public.users where id = $1";

/// A shadow read: one user from both sides, compared (the seed's `deepEqual`).
async fn shadow_read(my: &MySqlPool, pg: &PgPool, t: &mut Tally) -> u64 {
    let Ok(id) = sqlx::query_scalar::<_, i64>("select id from users order by rand() limit 1")
        .fetch_one(my)
        .await
    else {
        return 0;
    };
    let a: Option<String> = sqlx::query_scalar(MY_USER_ROW)
        .bind(id)
        .fetch_optional(my)
        .await
        .ok()
        .flatten();
    let b: Option<String> = sqlx::query_scalar(PG_USER_ROW)
        .bind(id)
        .fetch_optional(pg)
        .await
        .ok()
        .flatten();
    t.shadow_reads += 1;
    if a != b {
        t.shadow_mismatches += 1;
        t.errors
            .push(format!("shadow read of user {id}: old {a:?}, new {b:?}"));
        return 1;
    }
    0
}

/// CPU of the rig's target cluster (the postmaster and its children), in clock ticks.
fn target_cluster_ticks() -> u64 {
    let data = pg::rig_var("FERRY_TEST_PG_TARGET_DATA");
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
        // fields after the `(comm)`: state ppid ... utime(14th) stime(15th)
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

/// The target cluster's share of the machine's CPU between two readings, in percent.
fn cpu_percent(before: u64, after: u64, since: Instant) -> f64 {
    let hz = 100.0; // USER_HZ
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    after.saturating_sub(before) as f64 / hz / since.elapsed().as_secs_f64().max(0.001) / cores
        * 100.0
}

fn datum(name: &str, value: f64, dims: &[(&str, &str)]) -> MetricDatum {
    let mut d = MetricDatum::builder()
        .metric_name(name)
        .value(value)
        .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
            chrono::Utc::now().timestamp(),
        ));
    for (k, v) in dims {
        d = d.dimensions(Dimension::builder().name(*k).value(*v).build());
    }
    d.build()
}

async fn put(c: &Clients, ns: &str, data: Vec<MetricDatum>, t: &mut Tally) {
    if let Err(e) = c
        .cloudwatch
        .put_metric_data()
        .namespace(ns)
        .set_metric_data(Some(data))
        .send()
        .await
    {
        t.errors.push(format!("PutMetricData {ns}: {e:?}"));
    }
}

struct App {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Tally>,
}

/// Start users-api: flags every 100ms, a write burst every [`BURST_EVERY`].
fn start_app(my: MySqlPool, pg: PgPool, cw: Clients, new_instance: String, replica: String) -> App {
    let stop = Arc::new(AtomicBool::new(false));
    let halt = stop.clone();
    let task = tokio::spawn(async move {
        let mut t = Tally::default();
        let mut flags = Flags {
            write_to_old: true,
            ..Flags::default()
        };
        let mut seen = 0;
        let mut n = 0;
        let mut last = Instant::now() - BURST_EVERY;
        let (mut ticks, mut ticks_at) = (target_cluster_ticks(), Instant::now());
        while !halt.load(Ordering::SeqCst) {
            if let Some((f, gen)) = read_flags(&pg).await {
                flags = f;
                if gen > seen {
                    // the pods have rolled: acknowledged before acting on the flags
                    let _ = sqlx::query("insert into rig.app_seen values (1, $1) on conflict (id) do update set generation = excluded.generation")
                        .bind(gen).execute(&pg).await;
                    seen = gen;
                }
            }
            if last.elapsed() >= BURST_EVERY {
                last = Instant::now();
                n += 1;
                t.bursts += 1;
                let started = Instant::now();
                let (fail0, err0) = (t.dual_write_failures, t.errors.len());
                if flags.write_to_old {
                    write_old(&my, &pg, flags.dual_write, n, &mut t).await;
                } else {
                    write_new_only(&pg, n, &mut t).await;
                }
                let mismatches = if flags.shadow {
                    shadow_read(&my, &pg, &mut t).await
                } else {
                    0
                };
                let latency = started.elapsed().as_secs_f64();
                let failed = (t.errors.len() - err0) as u64 - (t.dual_write_failures - fail0);
                let now_ticks = target_cluster_ticks();
                let cpu = cpu_percent(ticks, now_ticks, ticks_at);
                (ticks, ticks_at) = (now_ticks, Instant::now());
                let svc = [("Service", DEPLOYMENT)];
                let data = vec![
                    datum(
                        "DualWriteFailures",
                        (t.dual_write_failures - fail0) as f64,
                        &svc,
                    ),
                    datum("ShadowReadMismatch", mismatches as f64, &svc),
                ];
                put(&cw, "UsersService/Migration", data, &mut t).await;
                let lb = [("LoadBalancer", ALB)];
                let mut data = vec![datum("TargetResponseTime", latency, &lb)];
                if failed > 0 {
                    // like the ALB, a count not published while zero (the monitor has missing = "zero")
                    data.push(datum("HTTPCode_Target_5XX_Count", failed as f64, &lb));
                }
                put(&cw, "AWS/ApplicationELB", data, &mut t).await;
                let data = vec![
                    datum(
                        "CPUUtilization",
                        cpu,
                        &[("DBInstanceIdentifier", &new_instance)],
                    ),
                    // no MySQL replica on the rig: see the vars file
                    datum("ReplicaLag", 0.0, &[("DBInstanceIdentifier", &replica)]),
                ];
                put(&cw, "AWS/RDS", data, &mut t).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        t
    });
    App { stop, task }
}

// ---------------------------------------------------------------------------------------------
// Fingerprints, computed here (not by ferry)
// ---------------------------------------------------------------------------------------------

fn my_row(table: &str) -> &'static str {
    match table {
        "users" => "concat_ws('|', id, email, name, active, date_format(created_at, '%Y-%m-%d %H:%i:%s.%f'), date_format(updated_at, '%Y-%m-%d %H:%i:%s.%f'))",
        "user_profiles" => "concat_ws('|', id, user_id, coalesce(bio, '<null>'), date_format(updated_at, '%Y-%m-%d %H:%i:%s.%f'))",
        _ => "concat_ws('|', id, user_id, name, value, date_format(updated_at, '%Y-%m-%d %H:%i:%s.%f'))",
    }
}

fn pg_row(table: &str) -> &'static str {
    match table {
        "users" => "concat_ws('|', id, email, name, active::int, to_char(created_at, 'YYYY-MM-DD HH24:MI:SS.US'), to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS.US'))",
        "user_profiles" => "concat_ws('|', id, user_id, coalesce(bio, '<null>'), to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS.US'))",
        _ => "concat_ws('|', id, user_id, name, value, to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS.US'))",
    }
}

/// Every row of old's `table`, and new's rows with the ids old has, as sorted text.
async fn rows(my: &MySqlPool, pg: &PgPool, table: &str) -> (Vec<String>, Vec<String>, i64) {
    let mut old: Vec<String> = sqlx::query_scalar(&format!(
        "select cast({} as char) from {table}",
        my_row(table)
    ))
    .fetch_all(my)
    .await
    .expect("old's rows");
    let top: i64 = sqlx::query_scalar::<_, Option<i64>>(&format!("select max(id) from {table}"))
        .fetch_one(my)
        .await
        .expect("old's max id")
        .unwrap_or(0);
    let mut new: Vec<String> = sqlx::query_scalar(&format!(
        "select {} from public.{table} where id <= $1",
        pg_row(table)
    ))
    .bind(top)
    .fetch_all(pg)
    .await
    .expect("new's rows");
    let beyond: i64 = sqlx::query_scalar(&format!(
        "select count(*) from public.{table} where id > $1"
    ))
    .bind(top)
    .fetch_one(pg)
    .await
    .expect("new's own rows");
    old.sort();
    new.sort();
    (old, new, beyond)
}

fn digest(rows: &[String]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for r in rows {
        h.update(r.as_bytes());
        h.update(b"\n");
    }
    format!("{} {:x}", rows.len(), h.finalize())
}

// ---------------------------------------------------------------------------------------------
// One rehearsal
// ---------------------------------------------------------------------------------------------

fn run_ferry(args: &[String], env: &[(String, String)]) -> support::headless::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.current_dir(repo())
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start ferry");
    let stdout = reader(child.stdout.take());
    let stderr = reader(child.stderr.take());
    let mut running = Running {
        child,
        what: format!("ferry {}", args.join(" ")),
        stdout,
        stderr,
    };
    // like `Running::finish`, but a hung run is returned (killed) so the test can say
    // what the app writer saw too
    let deadline = Instant::now() + support::headless::WATCHDOG;
    loop {
        match running.child.try_wait() {
            Ok(Some(status)) => return running.collect(status.code()),
            Ok(None) if Instant::now() >= deadline => {
                let _ = running.child.kill();
                let _ = running.child.wait();
                return running.collect(None);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("cannot wait for ferry: {e}"),
        }
    }
}

async fn rehearse(i: usize, c: &Clients, runs: &Path, state: &Path) {
    let old = mysql::database("dwb_old").await;
    let ops = mysql::Database {
        name: pg::unique("dwb_ops"),
    };
    let ddl = std::fs::read_to_string(repo().join(MYSQL_DDL)).expect("the rig's MySQL DDL");
    mysql::exec(&old.name, &ddl).await;
    // history: 200 users from 2019 on, each with a profile and two settings
    mysql::exec(
        &old.name,
        "insert into users (email, name, active, created_at, updated_at)
           select concat('old', seq, '@example.test'), concat('Old User ', seq), seq % 7 <> 0,
                  timestamp'2019-03-01 10:00:00.123456' + interval seq hour,
                  timestamp'2020-01-01 00:00:00' + interval seq minute
           from seq_1_to_200;
         insert into user_profiles (user_id, bio, updated_at)
           select id, if(id % 5 = 0, null, concat('Bio of ', name, ' — ünïcode')), updated_at from users;
         insert into user_settings (user_id, name, value, updated_at)
           select id, 'lang', 'en', updated_at from users
           union all select id, 'tz', 'Europe/Paris', updated_at from users;",
    )
    .await;
    mysql::exec(
        &old.name,
        &format!(
            "create user if not exists 'users_api'@'%' identified by 'rig-users-api';
             grant select, insert, update, delete on `{}`.* to 'users_api'@'%'",
            old.name
        ),
    )
    .await;
    let new = pg::TestDb::new("FERRY_TEST_PG_TARGET", "dwb_new").await;
    let tag = pg::unique("r").replace('_', "-");
    let (new_instance, old_instance, old_replica) = (
        format!("rig-users-pg15-{tag}"),
        format!("rig-users-mysql8-{tag}"),
        format!("rig-users-mysql8-ro1-{tag}"),
    );
    create_instance(c, &new_instance, "postgres").await;
    create_instance(c, &old_instance, "mysql").await;
    create_instance(c, &old_replica, "mysql").await;

    // the lag the copy's throttle reads is there before ferry's first look (see the vars file)
    let mut setup = Tally::default();
    // and so is new's CPU (CloudWatch monitors look again a period later)
    let (ticks, since) = (target_cluster_ticks(), Instant::now());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu = cpu_percent(ticks, target_cluster_ticks(), since);
    let lag = vec![
        datum("ReplicaLag", 0.0, &[("DBInstanceIdentifier", &old_replica)]),
        datum(
            "CPUUtilization",
            cpu,
            &[("DBInstanceIdentifier", &new_instance)],
        ),
    ];
    put(c, "AWS/RDS", lag, &mut setup).await;
    assert!(setup.errors.is_empty(), "{:?}", setup.errors);
    let my = MySqlPool::connect(&mysql::url_with(&old.name))
        .await
        .expect("old pool");
    let pgp = PgPool::connect(&new.url).await.expect("new pool");
    let app = start_app(
        my.clone(),
        pgp.clone(),
        c.clone(),
        new_instance.clone(),
        old_replica.clone(),
    );

    let jobs = tempfile::tempdir().expect("jobs dir");
    let moto = pg::rig_var("FERRY_TEST_MOTO_URL");
    let env: Vec<(String, String)> = [
        ("OLD_DB_PASSWORD", mysql::password()),
        ("NEW_DATABASE_URL", new.url.clone()),
        ("AWS_ENDPOINT_URL", moto),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_DEFAULT_REGION", "us-west-2".into()),
        ("XDG_STATE_HOME", state.display().to_string()),
        ("RIG_JOBS_DIR", jobs.path().display().to_string()),
        ("USERS_DB", old.name.clone()),
        ("USERS_OPS_DB", ops.name.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let var = |k: &str, v: &str| ["--var".to_string(), format!("{k}={v}")];
    let mut args: Vec<String> = [
        "run",
        RUNBOOK,
        "--headless",
        "--yes",
        "--operator",
        "rehearsal",
        "--vars",
        VARS,
        "--runs-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(runs.display().to_string());
    for (k, v) in [
        ("db_name", old.name.as_str()),
        ("ops_db", ops.name.as_str()),
        ("change_id", &format!("rehearsal-{i}-{tag}")),
        ("new_instance", &new_instance),
        ("old_instance", &old_instance),
        ("old_replica", &old_replica),
    ] {
        args.extend(var(k, v));
    }
    let out = tokio::task::spawn_blocking(move || run_ferry(&args, &env))
        .await
        .expect("ferry thread");

    app.stop.store(true, Ordering::SeqCst);
    let tally = app.task.await.expect("the app writer");
    assert_eq!(
        out.code,
        Some(0),
        "rehearsal {i}\n{}\n--- the app writer ---\n{tally:#?}",
        out.show()
    );
    assert!(
        out.stdout.contains("every step succeeded"),
        "rehearsal {i}\n{}",
        out.show()
    );
    // the app really wrote through every phase, and never failed a request
    assert!(
        tally.errors.is_empty(),
        "rehearsal {i}: the app writer met errors: {:#?}",
        tally.errors
    );
    assert!(
        tally.dual_writes > 0 && tally.new_only_writes > 0 && tally.shadow_reads > 0,
        "rehearsal {i}: {tally:?}"
    );

    // every row old holds is on new, the same; new holds its own rows after old's last id
    for table in TABLES {
        let (o, n, beyond) = rows(&my, &pgp, table).await;
        assert!(o.len() >= 200, "{table}: {} rows on old", o.len());
        assert_eq!(
            digest(&o),
            digest(&n),
            "rehearsal {i}: {table} differs between old and new; first rows only on one side: {:?} / {:?}",
            o.iter().find(|r| !n.contains(r)),
            n.iter().find(|r| !o.contains(r))
        );
        assert_eq!(
            beyond as u64, tally.new_only_writes,
            "rehearsal {i}: {table}: rows written on new only"
        );
    }
    // the dual-written rows went through the rig's kubectl flags: the app saw each flip
    let flags: String = sqlx::query_scalar(
        "select string_agg(name || '=' || value, ',' order by name) from rig.app_flags",
    )
    .fetch_one(&pgp)
    .await
    .expect("flags");
    assert_eq!(
        flags, "DUAL_WRITE=on,READ_FROM_NEW_PERCENT=100,SHADOW_READS=off,WRITE_TO_OLD=off",
        "rehearsal {i}"
    );
    // old is read-only for the application
    let grants: Vec<String> = sqlx::query_scalar("show grants for 'users_api'@'%'")
        .fetch_all(&my)
        .await
        .expect("grants");
    let on_db = grants
        .iter()
        .find(|g| g.contains(&format!("`{}`", old.name)))
        .cloned()
        .unwrap_or_default();
    assert!(
        on_db.contains("SELECT") && !on_db.contains("INSERT"),
        "rehearsal {i}: users_api's grants on old: {grants:?}"
    );
    // the snapshots exist; old and its replica are gone
    for snap in [
        format!("{old_instance}-pre-backfill-rehearsal-{i}-{tag}"),
        format!("{old_instance}-final-rehearsal-{i}-{tag}"),
    ] {
        c.rds
            .describe_db_snapshots()
            .db_snapshot_identifier(&snap)
            .send()
            .await
            .unwrap_or_else(|e| panic!("rehearsal {i}: snapshot {snap}: {e:?}"));
    }
    for gone in [&old_instance, &old_replica] {
        assert!(
            c.rds
                .describe_db_instances()
                .db_instance_identifier(gone)
                .send()
                .await
                .is_err(),
            "rehearsal {i}: {gone} still exists"
        );
    }
    my.close().await;
    pgp.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_004_dual_write_backfill_rehearses_end_to_end_five_times() {
    let c = clients().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let runs = tmp.path().join("runs");
    let state = tmp.path().join("state");
    for i in 1..=5 {
        rehearse(i, &c, &runs, &state).await;
    }
    let journals: Vec<PathBuf> = std::fs::read_dir(runs.join("dual-write-backfill"))
        .expect("runs/dual-write-backfill")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert_eq!(journals.len(), 5, "{journals:?}");
    for j in &journals {
        let recs = entries(j);
        let closed = recs
            .iter()
            .find(|r| r["entry"]["kind"] == "closed")
            .unwrap_or_else(|| panic!("journal not closed\n{}", dump(&recs)));
        let status = &closed["entry"]["status"];
        assert!(
            status["ok"] == true && status["status"] == "finished",
            "{closed}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("stats")
        .arg("--format")
        .arg("json")
        .args(&journals)
        .output()
        .expect("ferry stats");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let stats: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let steps = stats["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("{text}"));
    // every step of the runbook, each timed in all five rehearsals
    assert_eq!(steps.len(), 32, "{text}");
    let finite = |v: &Value| v.as_f64().is_some_and(|x| x.is_finite() && x >= 0.0);
    for s in steps.iter().chain([&stats["total"]]) {
        assert_eq!(s["n"], 5, "{s}");
        for k in ["median_secs", "p90_secs", "max_secs"] {
            assert!(finite(&s[k]), "{k} of {s}");
        }
        let (lo, hi) = (&s["next95_secs"][0], &s["next95_secs"][1]);
        assert!(
            finite(lo) && finite(hi) && lo.as_f64() <= hi.as_f64(),
            "next95 of {s}"
        );
    }
}
