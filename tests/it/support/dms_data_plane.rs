//! The data plane of an AWS DMS task with a PostgreSQL source, played on the rig for
//! the seed 001 rehearsal (`seed_cdc_sync`): moto's DMS records tasks but moves no
//! rows. Once the DMS stand-in has seen ferry's StartReplicationTask for the task, this
//! does what DMS does with a PostgreSQL source, with PostgreSQL's own logical
//! replication: a publication of the tables the task's mappings select, and a
//! subscription on the target whose slot on the source is the task's slot (the initial
//! copy is the full load, the change stream the CDC). What the stand-in then reports is
//! read from that replication, never scripted: each table's state from
//! `pg_subscription_rel`, its rows and changes from the target's counters, the recovery
//! checkpoint from the slot's confirmed LSN, and the CDC latency (published to moto's
//! CloudWatch under `AWS/DMS`) from `pg_stat_replication`'s lag of the subscription's
//! WAL sender.

use super::dms_standin::{stats, table, DmsStandin, Phase, Script};
use super::pg::{cleanup, rig_var};
use aws_sdk_cloudwatch::primitives::DateTime as AwsTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use ferry_core::aws::{self, Clients};
use ferry_core::runbook::AwsSettings;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub async fn pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// The task the data plane serves.
#[derive(Clone)]
pub struct Task {
    /// identifier (the end of its ARN in moto)
    pub id: String,
    /// the replication instance's identifier (CloudWatch's dimension)
    pub instance: String,
    /// publication, subscription and slot name: the runbook's `dms_slot`
    pub slot: String,
    /// source and target database URLs
    pub legacy: String,
    pub modern: String,
    /// the task's region (moto's CloudWatch is per region)
    pub region: String,
    /// the task's selection rules: (schema, table) with DMS's `%` wildcard
    pub mappings: Vec<(String, String)>,
}

/// What the data plane did.
#[derive(Debug, Default)]
pub struct PlaneSeen {
    /// the tables it replicated (resolved from the mappings when the task started)
    pub tables: Vec<String>,
    /// CDC latency datapoints published
    pub published: usize,
    pub errors: Vec<String>,
}

/// Serve `task` until `stop`; what it did.
pub fn data_plane(
    s: DmsStandin,
    task: Task,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<PlaneSeen> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let mut seen = PlaneSeen::default();
            let cw = cloudwatch(&task.region).await;
            let (legacy, modern) = (pool(&task.legacy).await, pool(&task.modern).await);
            let mut full_load_rows: HashMap<String, i64> = HashMap::new();
            while !stop.load(Ordering::Relaxed) {
                if seen.tables.is_empty() {
                    if s.started(&task.id) {
                        match subscribe(&legacy, &modern, &task).await {
                            Ok(t) => seen.tables = t,
                            Err(e) => seen.errors.push(e),
                        }
                    }
                } else {
                    match look(&legacy, &modern, &task, &mut full_load_rows).await {
                        Ok((phase, lag)) => {
                            s.script(
                                &task.id,
                                Script {
                                    phases: vec![phase],
                                },
                            );
                            if let Some((source, target)) = lag {
                                if publish(&cw, &task, source, target).await {
                                    seen.published += 1;
                                }
                            }
                        }
                        Err(e) => seen.errors.push(e),
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            seen
        })
    })
}

/// StartReplicationTask's effect: the tables the mappings select, published, and the
/// subscription that copies them (full load) and then applies their changes (CDC).
async fn subscribe(legacy: &PgPool, modern: &PgPool, task: &Task) -> Result<Vec<String>, String> {
    let mut tables = Vec::new();
    for (schema, like) in &task.mappings {
        let found: Vec<String> = sqlx::query_scalar(
            "select format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
              where c.relkind = 'r' and n.nspname = $1 and c.relname like $2 order by 1",
        )
        .bind(schema)
        .bind(like.replace('_', "\\_"))
        .fetch_all(legacy)
        .await
        .map_err(|e| format!("the mappings' tables: {e}"))?;
        tables.extend(found);
    }
    let n = &task.slot;
    sqlx::raw_sql(&format!(
        "create publication {n} for table {}",
        tables.join(", ")
    ))
    .execute(legacy)
    .await
    .map_err(|e| format!("create publication: {e}"))?;
    sqlx::raw_sql(&format!(
        "create subscription {n} connection '{}' publication {n} with (slot_name = '{n}')",
        task.legacy
    ))
    .execute(modern)
    .await
    .map_err(|e| format!("create subscription: {e}"))?;
    Ok(tables)
}

/// What DMS reports now, read from the replication; and the lag of its WAL sender
/// (seconds: written on modern, applied on modern), once it has one.
async fn look(
    legacy: &PgPool,
    modern: &PgPool,
    task: &Task,
    full_load_rows: &mut HashMap<String, i64>,
) -> Result<(Phase, Option<(f64, f64)>), String> {
    let e = |what: &str| {
        let what = what.to_string();
        move |e: sqlx::Error| format!("{what}: {e}")
    };
    let states: Vec<(String, String, String)> = sqlx::query_as(
        "select n.nspname::text, c.relname::text, r.srsubstate::text
           from pg_subscription_rel r
           join pg_subscription s on s.oid = r.srsubid
           join pg_class c on c.oid = r.srrelid
           join pg_namespace n on n.oid = c.relnamespace
          where s.subname = $1 order by 1, 2",
    )
    .bind(&task.slot)
    .fetch_all(modern)
    .await
    .map_err(e("pg_subscription_rel"))?;
    let mut tables = Vec::new();
    let (mut loaded, mut loading, mut queued) = (0, 0, 0);
    for (schema, name, st) in &states {
        let qualified = format!("{schema}.{name}");
        let state = match st.as_str() {
            "i" => {
                queued += 1;
                "Before load"
            }
            "d" => {
                loading += 1;
                "Full load"
            }
            _ => {
                loaded += 1;
                "Table completed"
            }
        };
        if state == "Table completed" && !full_load_rows.contains_key(&qualified) {
            let rows: i64 = sqlx::query_scalar(&format!("select count(*) from {qualified}"))
                .fetch_one(modern)
                .await
                .map_err(e("full load rows"))?;
            full_load_rows.insert(qualified.clone(), rows);
        }
        let counters: Option<(i64, i64, i64)> = sqlx::query_as(
            "select n_tup_ins, n_tup_upd, n_tup_del from pg_stat_user_tables where relid = $1::regclass",
        )
        .bind(&qualified)
        .fetch_optional(modern)
        .await
        .map_err(e("pg_stat_user_tables"))?;
        let (ins, upd, del) = counters.unwrap_or_default();
        let rows = full_load_rows.get(&qualified).copied().unwrap_or(0);
        let mut t = table(schema, name, state, rows);
        t["Inserts"] = json!((ins - rows).max(0));
        t["Updates"] = json!(upd);
        t["Deletes"] = json!(del);
        // the rig's task has DMS validation off (DMS's default): the test's
        // fingerprints are the validation
        t["ValidationState"] = json!("Not enabled");
        tables.push(t);
    }
    let total = states.len().max(1) as i32;
    let checkpoint: Option<String> = sqlx::query_scalar(
        "select confirmed_flush_lsn::text from pg_replication_slots where slot_name = $1",
    )
    .bind(&task.slot)
    .fetch_optional(legacy)
    .await
    .map_err(e("pg_replication_slots"))?
    .flatten();
    let lag: Option<(f64, f64)> = sqlx::query_as(
        "select coalesce(extract(epoch from write_lag), 0)::float8, coalesce(extract(epoch from replay_lag), 0)::float8
           from pg_stat_replication where application_name = $1",
    )
    .bind(&task.slot)
    .fetch_optional(legacy)
    .await
    .map_err(e("pg_stat_replication"))?;
    let phase = Phase {
        status: Some("running".into()),
        stats: Some(stats(100 * loaded / total, loaded, loading, queued, 0)),
        tables,
        recovery_checkpoint: checkpoint,
        ..Phase::default()
    };
    Ok((phase, lag))
}

async fn cloudwatch(region: &str) -> Clients {
    let settings = AwsSettings {
        region: Some(region.into()),
        profile: None,
        endpoint_url: Some(rig_var("FERRY_TEST_MOTO_URL")),
    };
    Clients::new(aws::sdk_config(Some(&settings)).await)
}

/// The task's CDC latency as DMS publishes it (`AWS/DMS`, per instance and task).
async fn publish(cw: &Clients, task: &Task, source: f64, target: f64) -> bool {
    let dims = [
        ("ReplicationInstanceIdentifier", task.instance.as_str()),
        ("ReplicationTaskIdentifier", task.id.as_str()),
    ];
    let datum = |metric: &str, value: f64| {
        MetricDatum::builder()
            .metric_name(metric)
            .set_dimensions(Some(
                dims.iter()
                    .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
                    .collect(),
            ))
            .value(value)
            .unit(StandardUnit::Seconds)
            .storage_resolution(1)
            .timestamp(AwsTime::from_secs(chrono::Utc::now().timestamp()))
            .build()
    };
    cw.cloudwatch
        .put_metric_data()
        .namespace("AWS/DMS")
        .metric_data(datum("CDCLatencySource", source))
        .metric_data(datum("CDCLatencyTarget", target))
        .send()
        .await
        .is_ok()
}

/// Drops the data plane's replication (subscription first, so it takes its slot).
pub struct Replication(pub Task);

impl Drop for Replication {
    fn drop(&mut self) {
        let n = &self.0.slot;
        cleanup(vec![
            (self.0.modern.clone(), format!("alter subscription {n} disable")),
            (self.0.modern.clone(), format!("alter subscription {n} set (slot_name = none)")),
            (self.0.modern.clone(), format!("drop subscription if exists {n}")),
            (
                self.0.legacy.clone(),
                format!("select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = '{n}' and not active"),
            ),
            (self.0.legacy.clone(), format!("drop publication if exists {n}")),
        ]);
    }
}
