//! Seed 001 rehearsed end to end on the rig: `runbooks/cdc-one-time-sync.toml` runs
//! `--headless --yes` with `runbooks/rig/cdc-one-time-sync.vars.toml` five times, each
//! time on fresh databases, and `ferry stats` over the five journals gives finite
//! figures for every step.
//!
//! What plays what (the vars file says the same):
//! - legacy NWS is a fresh database on the rig's primary, the modern platform one on
//!   the rig's target cluster;
//! - AWS DMS's control plane is moto behind the DMS stand-in (`support::dms_standin`,
//!   whose doc comment says which calls it serves and why). moto moves no data, so this
//!   test plays the task's **data plane**, as the replica-promotion rehearsal plays
//!   RDS's control plane (`support::dms_data_plane`): once ferry's `dms-start` has
//!   called StartReplicationTask, PostgreSQL's logical replication does what DMS does
//!   with a PostgreSQL source, on a slot named by the runbook's `dms_slot`, and what
//!   DMS reports is read from that replication. Nothing moves a row unless ferry
//!   started the task;
//! - the provisioning traffic and the migration service (and the ACL pods) are this
//!   file's service thread: it provisions on legacy (inserts, token status updates,
//!   device deletes) during the whole run, reads its deployments' settings from the
//!   rows the rig's `kubectl` writes and acknowledges each rollout, and once
//!   `TOKEN_SYNC_ENABLED` is on syncs every token it changes to modern's
//!   `token_status` and marks the provisioning rows synced (the seed's §3.1).
//!
//! After each run the traffic stops, the change stream drains, and independent
//! fingerprints compare every moved table, source against target.

use crate::dms_moto::standin;
use crate::support;

use aws_sdk_databasemigration as dms;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::dms_data_plane::{data_plane, pool, Replication, Task};
use support::dms_standin::{stats, DmsStandin, Phase, Script};
use support::headless::{dump, entries, events, kind, outcome, reader};
use support::pg::{fingerprint, scalar, unique, TestDb};

/// The runbook's `[aws] region`.
const REGION: &str = "eu-west-1";
/// The DMS task's table mappings: the live tables of the procedure's CDC.
const CDC_TABLES: [(&str, &str); 3] = [
    ("nws", "provision_status"),
    ("nws", "token_%"),
    ("nws", "device_%"),
];
/// What DMS moves (the mappings above, resolved) and what ferry's copy moves.
const MOVED_BY_DMS: [&str; 3] = [
    "nws.provision_status",
    "nws.token_vault",
    "nws.device_registry",
];
const MOVED_BY_COPY: [&str; 3] = ["nws.ref_country", "nws.ref_status", "nws.partner_config"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The NWS schema. Legacy gets §2.2's sync columns and their index from the runbook;
/// modern's copy of the schema was made from the target design and already has them
/// (`nws-schema-matches` compares the two after §2.2).
fn ddl(modern: bool) -> String {
    let (sync, index) = if modern {
        (
            ", sync_status varchar(20), last_sync_timestamp timestamp",
            "create index provision_status_last_sync_idx on nws.provision_status (last_sync_timestamp);",
        )
    } else {
        ("", "")
    };
    format!(
        "create schema nws;
         create table nws.ref_country (code char(2) primary key, name text not null);
         create table nws.ref_status (code varchar(20) primary key, description text not null, terminal boolean not null);
         create table nws.partner_config (partner_id bigint primary key, name text not null, config jsonb not null);
         create table nws.token_vault (token_id varchar(64) primary key, status varchar(20) not null, last_updated timestamp not null);
         create table nws.provision_status (id bigint primary key, token_id varchar(64) not null, status varchar(20) not null,
                                            updated_at timestamptz not null{sync});
         create table nws.device_registry (id bigint primary key, token_id varchar(64) not null, device_type text not null,
                                           registered_at timestamptz not null);
         create table nws.audit_log (id bigint primary key, event text not null);
         {index}"
    )
}

/// Legacy's data for rehearsal `n`.
fn seed(n: usize) -> String {
    let tokens = 300 + 17 * n;
    format!(
        "insert into nws.ref_country select chr(65 + g / 26) || chr(65 + g % 26), 'Country ' || g from generate_series(0, 249) g;
         insert into nws.ref_status values ('RECEIVED', 'received', false), ('PROCESSING', 'processing', false),
           ('COMPLETED', 'completed', false), ('FAILED', 'failed', false), ('VERIFIED', 'verified', false),
           ('ELIGIBLE', 'eligible', true);
         insert into nws.partner_config select g, 'partner ' || g, jsonb_build_object('tier', g % 3, 'rehearsal', {n})
           from generate_series(1, {partners}) g;
         insert into nws.token_vault select 'tok-' || lpad(g::text, 6, '0'), (array['ACTIVE','SUSPENDED','DELETED'])[1 + g % 3],
           timestamp '2026-11-01' + g * interval '1 minute' from generate_series(1, {tokens}) g;
         insert into nws.provision_status select g, 'tok-' || lpad((1 + g % {tokens})::text, 6, '0'),
           (array['RECEIVED','PROCESSING','COMPLETED','VERIFIED'])[1 + g % 4], timestamptz '2026-11-01' + g * interval '1 second'
           from generate_series(1, {provisions}) g;
         insert into nws.device_registry select g, 'tok-' || lpad((1 + g % {tokens})::text, 6, '0'), (array['phone','watch','car'])[1 + g % 3],
           timestamptz '2026-10-01' + g * interval '1 hour' from generate_series(1, {devices}) g;
         insert into nws.audit_log select g, 'seeded ' || g from generate_series(1, 50) g;",
        partners = 40 + n,
        provisions = 2000 + 101 * n,
        devices = 500 + 13 * n,
    )
}

// ---------------------------------------------------------------------------------------------
// DMS's control plane objects (moto, through the stand-in)
// ---------------------------------------------------------------------------------------------

async fn dms_client(endpoint: &str) -> dms::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_rds::config::Credentials::new(
            "testing", "testing", None, None, "seed-cdc",
        ))
        .load()
        .await;
    dms::Client::new(&conf)
}

/// The replication instance, the endpoints and the full-load-and-CDC task that exist
/// before the night (the prerequisites, §1); the task's ARN.
async fn create_task(c: &dms::Client, tag: &str) -> String {
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
        (dms::types::ReplicationEndpointTypeValue::Source, "legacy"),
        (dms::types::ReplicationEndpointTypeValue::Target, "modern"),
    ] {
        let ep = c
            .create_endpoint()
            .endpoint_identifier(format!("{tag}-{name}"))
            .endpoint_type(kind)
            .engine_name("postgres")
            .server_name("127.0.0.1")
            .port(5432)
            .database_name(name)
            .username("migrator")
            .password("not-used-on-the-rig")
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
    let rules: Vec<Value> = CDC_TABLES
        .iter()
        .enumerate()
        .map(|(i, (schema, table))| {
            json!({
                "rule-type": "selection", "rule-id": (i + 1).to_string(), "rule-name": format!("cdc-{}", i + 1),
                "object-locator": { "schema-name": schema, "table-name": table },
                "rule-action": "include",
            })
        })
        .collect();
    let task = c
        .create_replication_task()
        .replication_task_identifier(format!("{tag}-task"))
        .replication_instance_arn(&inst)
        .source_endpoint_arn(&eps[0])
        .target_endpoint_arn(&eps[1])
        .migration_type(dms::types::MigrationTypeValue::FullLoadAndCdc)
        .table_mappings(json!({ "rules": rules }).to_string())
        .send()
        .await
        .expect("CreateReplicationTask");
    task.replication_task()
        .and_then(|t| t.replication_task_arn())
        .expect("a task ARN")
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// The provisioning traffic, the migration service and the ACL pods
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Traffic {
    ticks: u64,
    /// token changes synced to modern by the live sync (TOKEN_SYNC_ENABLED)
    synced: u64,
    errors: Vec<String>,
}

/// Every 100 ms: read the deployments' settings and acknowledge their newest rollout
/// (the pods picked it up), then provision on legacy, and sync the token it changed
/// once the token sync is enabled.
fn service(
    legacy_url: String,
    modern_url: String,
    tokens: usize,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Traffic> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let (legacy, modern) = (pool(&legacy_url).await, pool(&modern_url).await);
            let mut t = Traffic::default();
            while !stop.load(Ordering::Relaxed) {
                t.ticks += 1;
                if let Err(e) = tick(&legacy, &modern, t.ticks, tokens, &mut t.synced).await {
                    if t.errors.len() < 20 {
                        t.errors.push(format!("tick {}: {e}", t.ticks));
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            t
        })
    })
}

async fn tick(
    legacy: &PgPool,
    modern: &PgPool,
    i: u64,
    tokens: usize,
    synced: &mut u64,
) -> Result<(), sqlx::Error> {
    // the settings and the rollouts, read in one snapshot, acknowledged before use
    let sync: bool = match sqlx::query_scalar::<_, bool>(
        "with seen as (
           insert into rig.rollout_seen select deployment, generation from rig.rollout
           on conflict (deployment) do update set generation = excluded.generation returning 1)
         select coalesce((select value = 'true' from rig.configmap
                           where name = 'migration-flags' and key = 'TOKEN_SYNC_ENABLED'), false)",
    )
    .fetch_one(modern)
    .await
    {
        Ok(v) => v,
        // no rollout yet: the rig's kubectl makes its tables on first use
        Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("42P01") => false,
        Err(e) => return Err(e),
    };
    let i64i = i as i64;
    let token = format!("tok-{:06}", 1 + (i as usize * 7) % tokens);
    let status = ["ACTIVE", "SUSPENDED", "ACTIVE", "DELETED"][i as usize % 4];
    let (status, at): (String, String) = sqlx::query_as(
        "update nws.token_vault set status = $2, last_updated = clock_timestamp()::timestamp
          where token_id = $1 returning status::text, last_updated::text",
    )
    .bind(&token)
    .bind(status)
    .fetch_one(legacy)
    .await?;
    sqlx::query("insert into nws.provision_status (id, token_id, status, updated_at) values (1000000 + $1, $2, 'RECEIVED', now())")
        .bind(i64i)
        .bind(&token)
        .execute(legacy)
        .await?;
    if i.is_multiple_of(3) {
        sqlx::query("insert into nws.device_registry values (1000000 + $1, $2, 'phone', now())")
            .bind(i64i)
            .bind(&token)
            .execute(legacy)
            .await?;
    }
    if i.is_multiple_of(5) {
        sqlx::query(
            "delete from nws.device_registry where id = (select min(id) from nws.device_registry)",
        )
        .execute(legacy)
        .await?;
    }
    sqlx::query("insert into nws.audit_log values (1000000 + $1, 'provisioned ' || $2)")
        .bind(i64i)
        .bind(&token)
        .execute(legacy)
        .await?;
    if sync {
        // syncTokenStatus (§3.1): the status to modern (a newer one already there wins),
        // then the provisioning rows marked synced
        sqlx::query(
            "insert into public.token_status (token_id, status, last_updated, sync_status)
             values ($1, $2, $3::timestamp, 'COMPLETED')
             on conflict (token_id) do update set status = excluded.status, last_updated = excluded.last_updated,
               sync_status = excluded.sync_status where token_status.last_updated <= excluded.last_updated",
        )
        .bind(&token)
        .bind(&status)
        .bind(&at)
        .execute(modern)
        .await?;
        sqlx::query(
            "update nws.provision_status set sync_status = 'COMPLETED', last_sync_timestamp = now()
              where token_id = $1 and sync_status is distinct from 'COMPLETED'",
        )
        .bind(&token)
        .execute(legacy)
        .await?;
        *synced += 1;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The rehearsals
// ---------------------------------------------------------------------------------------------

/// The journal under `runs`, once there is one.
fn journal_in(runs: &Path) -> Option<PathBuf> {
    std::fs::read_dir(runs.join("cdc-one-time-sync"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
}

/// A WAL position `X/Y` as a number.
fn lsn(text: &str) -> u64 {
    let (hi, lo) = text
        .split_once('/')
        .unwrap_or_else(|| panic!("not an LSN: {text:?}"));
    let hex =
        |h: &str| u64::from_str_radix(h, 16).unwrap_or_else(|_| panic!("not an LSN: {text:?}"));
    (hex(hi) << 32) | hex(lo)
}

/// Until modern holds what legacy holds in every table DMS moves, or 30 s: the change
/// stream drains once the traffic has stopped.
async fn drained(legacy: &str, modern: &str) -> Vec<(String, String, String)> {
    let t0 = Instant::now();
    loop {
        let mut differ = Vec::new();
        for t in MOVED_BY_DMS {
            let (a, b) = (fingerprint(legacy, t).await, fingerprint(modern, t).await);
            if a != b {
                differ.push((t.to_string(), a, b));
            }
        }
        if differ.is_empty() || t0.elapsed() > Duration::from_secs(30) {
            return differ;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One rehearsal on fresh data; returns its journal.
async fn rehearse(n: usize, runs: &Path, s: &DmsStandin, c: &dms::Client) -> PathBuf {
    let legacy = TestDb::new("FERRY_TEST_PG_PRIMARY", "seed_cdc_legacy").await;
    let modern = TestDb::new("FERRY_TEST_PG_TARGET", "seed_cdc_modern").await;
    legacy.exec(&ddl(false)).await;
    legacy.exec(&seed(n)).await;
    modern.exec(&ddl(true)).await;
    let tokens = 300 + 17 * n;

    let tag = unique("cdc").replace('_', "-");
    let arn = create_task(c, &tag).await;
    let task = Task {
        id: arn.rsplit(':').next().unwrap_or(&arn).to_string(),
        instance: format!("{tag}-ri"),
        slot: format!("dms_{}", unique("nws")),
        legacy: legacy.url.clone(),
        modern: modern.url.clone(),
        region: REGION.into(),
        mappings: CDC_TABLES
            .iter()
            .map(|(s, t)| (s.to_string(), t.to_string()))
            .collect(),
    };
    // DMS after StartReplicationTask, until the data plane reports
    s.script(
        &task.id,
        Script {
            phases: vec![Phase {
                status: Some("starting".into()),
                stats: Some(stats(0, 0, 0, 0, 0)),
                ..Phase::default()
            }],
        },
    );
    let replication = Replication(task.clone());
    let jobs = runs.with_file_name(format!("jobs-{n}"));

    let traffic_stop = Arc::new(AtomicBool::new(false));
    let plane_stop = Arc::new(AtomicBool::new(false));
    let traffic = service(
        legacy.url.clone(),
        modern.url.clone(),
        tokens,
        traffic_stop.clone(),
    );
    let plane = data_plane(s.clone(), task.clone(), plane_stop.clone());
    let change = format!("rehearsal-{n}-{tag}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(repo())
        .arg("run")
        .arg(repo().join("runbooks/cdc-one-time-sync.toml"))
        .args([
            "--headless",
            "--yes",
            "--operator",
            "seed-rehearsal",
            "--vars",
        ])
        .arg(repo().join("runbooks/rig/cdc-one-time-sync.vars.toml"))
        .arg("--runs-dir")
        .arg(runs)
        .args(["--var", &format!("change_id={change}")])
        .args(["--var", &format!("dms_task_arn={arn}")])
        .args(["--var", &format!("dms_slot={}", task.slot)])
        .env("LEGACY_NWS_DATABASE_URL", &legacy.url)
        .env("MODERN_DATABASE_URL", &modern.url)
        .env("RIG_JOBS_DIR", &jobs)
        .env("AWS_ENDPOINT_URL", &s.url)
        .env("AWS_REGION", REGION)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("FERRY_DMS_POLL_SECS", "1")
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
        if t0.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = t0.elapsed();
    let text = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        h.and_then(|h| h.join().ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let (stdout, stderr) = (text(o), text(e));
    traffic_stop.store(true, Ordering::Relaxed);
    let traffic = traffic.join().expect("the service thread");
    let differ = drained(&legacy.url, &modern.url).await;
    plane_stop.store(true, Ordering::Relaxed);
    let plane = plane.join().expect("the data plane thread");
    let journal = journal_in(runs).unwrap_or_else(|| panic!("no journal\n{stdout}\n{stderr}"));
    let recs = entries(&journal);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "rehearsal {n} ({took:?}):\n{stdout}\n{stderr}\n{}\nplane: {plane:?}\ntraffic: {traffic:?}",
        dump(&recs)
    );
    assert!(
        stdout.contains("finished: every step succeeded"),
        "{stdout}"
    );
    eprintln!(
        "rehearsal {n}: {took:?}, {} ticks of traffic",
        traffic.ticks
    );

    // the players did their part, and nothing went wrong on their side
    assert!(plane.errors.is_empty(), "data plane: {plane:?}");
    let mut replicated = plane.tables.clone();
    replicated.sort();
    let mut want: Vec<String> = MOVED_BY_DMS.iter().map(|t| t.to_string()).collect();
    want.sort();
    assert_eq!(replicated, want, "the tables the task's mappings select");
    assert!(
        plane.published > 0,
        "no CDC latency was published: {plane:?}"
    );
    assert!(traffic.errors.is_empty(), "traffic: {traffic:?}");
    assert!(
        traffic.ticks > 10 && traffic.synced > 0,
        "traffic: {traffic:?}"
    );

    // the data: every moved table, source against target (independent SQL)
    assert!(
        differ.is_empty(),
        "after the change stream drained: {differ:?}"
    );
    for t in MOVED_BY_COPY.iter().chain(MOVED_BY_DMS.iter()) {
        let (a, b) = (
            fingerprint(&legacy.url, t).await,
            fingerprint(&modern.url, t).await,
        );
        assert!(!a.starts_with("0 "), "{t} on legacy is empty");
        assert_eq!(a, b, "{t}: legacy and modern differ");
    }
    assert_eq!(
        scalar(&modern.url, "select count(*)::text from nws.audit_log").await,
        "0",
        "nws.audit_log is in no mapping and no copy: nothing moves it"
    );
    // the programmatic sync: modern's token_status is legacy's token vault, every
    // provisioning row is synced, and the backfill went through every token
    let vault = "(select token_id, status, last_updated, 'COMPLETED'::varchar(20) as sync_status from nws.token_vault)";
    assert_eq!(
        fingerprint(&legacy.url, vault).await,
        fingerprint(&modern.url, "public.token_status").await,
        "token_status on modern against legacy's token vault"
    );
    assert_eq!(
        scalar(
            &legacy.url,
            "select count(*) filter (where sync_status is distinct from 'COMPLETED')::text || '/' || (count(*) > 2000)::text from nws.provision_status"
        )
        .await,
        "0/true"
    );
    let log = std::fs::read_to_string(jobs.join(format!("token-backfill-{change}.log")))
        .expect("the backfill job's log");
    assert!(
        log.contains(&format!("token-status-sync: {tokens} tokens synced")),
        "{log}"
    );
    assert_eq!(
        scalar(
            &modern.url,
            "select last_token_id from public.sync_checkpoint where job = 'token-status-sync'"
        )
        .await,
        format!("tok-{tokens:06}")
    );
    // the flags and settings the runbook set
    assert_eq!(
        scalar(&modern.url, "select string_agg(key || '=' || value, ',' order by key) from rig.configmap where name = 'migration-flags'").await,
        "MODERN_TRAFFIC_PERCENT=1,TOKEN_SYNC_ENABLED=true"
    );
    assert_eq!(
        scalar(&modern.url, "select string_agg(name || '=' || value, ',' order by name) from rig.deploy_env where deployment = 'app-ddx-trdc-google-hce'").await,
        "ACL_SYNC_BATCH_SIZE=100,ACL_SYNC_RETRY_ATTEMPTS=3,ACL_SYNC_TIMEOUT=5s"
    );

    // the DMS task as ferry journaled it
    let rs = crate::dms_moto::results(&recs);
    let start = crate::dms_moto::result_of(&rs, "dms-start");
    assert_eq!(start["before"]["status"], "ready", "{start}");
    assert_eq!(start["after"]["status"], "running", "{start}");
    let mut checkpoints = Vec::new();
    for step in [
        "dms-checkpoint-after-load",
        "dms-validation-clean",
        "dms-checkpoint-after-ramp",
    ] {
        let r = crate::dms_moto::result_of(&rs, step);
        assert_eq!(r["after"]["status"], "running", "{step}: {r}");
        let mut tables: Vec<(String, String)> = r["tables"]
            .as_array()
            .unwrap_or_else(|| panic!("{step}: no tables in {r}"))
            .iter()
            .map(|t| {
                (
                    format!(
                        "{}.{}",
                        t["schema"].as_str().unwrap_or(""),
                        t["table"].as_str().unwrap_or("")
                    ),
                    t["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        tables.sort();
        let completed: Vec<(String, String)> = want
            .iter()
            .map(|t| (t.clone(), "Table completed".to_string()))
            .collect();
        assert_eq!(tables, completed, "{step}: {r}");
        if step != "dms-validation-clean" {
            let c = r["after"]["recovery_checkpoint"]
                .as_str()
                .unwrap_or_else(|| panic!("{step}: no recovery checkpoint in {r}"));
            checkpoints.push(lsn(c));
        }
    }
    assert!(
        checkpoints[0] <= checkpoints[1],
        "the end-of-night checkpoint is behind the one after the load: {checkpoints:?}"
    );
    let current = lsn(&scalar(&legacy.url, "select pg_current_wal_lsn()::text").await);
    assert!(
        checkpoints[1] <= current,
        "{checkpoints:?} beyond legacy's WAL {current}"
    );
    let notes: Vec<&str> = recs
        .iter()
        .filter(|r| kind(r) == "note")
        .filter_map(|r| r["entry"]["text"].as_str())
        .collect();
    for want in [
        format!("dms monitor `cdc`: task `{}` is `running`", task.id),
        "dms monitor `cdc`: 3 of 3 table(s) completed".to_string(),
    ] {
        assert!(
            notes.iter().any(|n| n.contains(&want)),
            "no note `{want}`: {notes:#?}"
        );
    }
    for step in [
        "dms-start",
        "dms-full-load-done",
        "cdc-caught-up",
        "token-backfill",
        "soak-1pct",
        "handover",
    ] {
        let fin = events(&recs, "finished", Some(step));
        let last = fin.last().map(|r| outcome(r)).unwrap_or("never finished");
        assert_eq!(last, "succeeded", "{step}\n{}", dump(&recs));
    }
    drop(replication);
    drop(modern);
    drop(legacy);
    journal
}

#[tokio::test(flavor = "multi_thread")]
async fn cdc_one_time_sync_rehearses_five_times_with_finite_stats() {
    let s = standin();
    let c = dms_client(&s.url).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let runs = tmp.path().join("runs");
    let mut journals = Vec::new();
    for n in 0..5 {
        let j = rehearse(n, &runs, s, &c).await;
        let kept = tmp.path().join(format!("rehearsal-{n}.jsonl"));
        std::fs::rename(&j, &kept).expect("keep the journal");
        journals.push(kept);
    }
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
    // every step of the night: all but the four of the rollback phase
    assert_eq!(steps.len(), 24, "{text}");
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
