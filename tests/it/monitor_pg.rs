//! Lag monitors against the rig's real primary and streaming standby: a
//! caught-up standby reads ~0; with WAL replay paused and writes on the
//! primary, lag and bytes behind grow; after resume they fall back. Also the
//! primary's view, SQL metrics with `rate`, row counts, and a stale source.
//! Runs in the `standby` nextest group so no other test sees the paused replay.

use ferry_core::engine::connections::{Connections, RetryPolicy};
use ferry_core::engine::redact::Redactor;
use ferry_core::monitor::{self, DbGetter, Hub, MonitorView};
use ferry_core::runbook::load_str;
use sqlx::{Connection, PgConnection};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use crate::support;
use support::pg::{rig_var, OwnCluster, ResumeReplay};

fn start(
    toml: &str,
) -> (
    Arc<Hub>,
    CancellationToken,
    tokio::sync::mpsc::UnboundedReceiver<monitor::Record>,
) {
    let rb =
        load_str("m.toml", toml, Path::new("m.toml")).unwrap_or_else(|e| panic!("{}", e.render()));
    let env = |k: &str| std::env::var(k).ok();
    let mut red = Redactor::new();
    let conns = Arc::new(
        Connections::new(
            &rb,
            &env,
            &mut red,
            RetryPolicy {
                attempts: 2,
                first_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_millis(200),
            },
        )
        .expect("connections"),
    );
    let getter: DbGetter = Arc::new(move |name: String| {
        let c = conns.clone();
        Box::pin(async move { c.get(&name).await.map_err(|e| e.to_string()) })
    });
    let cancel = CancellationToken::new();
    let (hub, samples) = monitor::spawn(&rb, getter, None, cancel.clone());
    (hub, cancel, samples)
}

/// Poll `f` every 200 ms until it returns Some, or panic after `secs` showing the hub.
async fn until<T>(hub: &Hub, secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {what}\n{:#?}",
            hub.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const LAG_RB: &str = r#"
[runbook]
name = "lag"
format = 1
[connections.standby]
url = "${env:FERRY_TEST_PG_STANDBY}"
[connections.primary]
url = "${env:FERRY_TEST_PG_PRIMARY}"
[[monitor.lag]]
name = "replica"
connection = "standby"
every = "500ms"
warn = "2s"
max = "30s"
[[monitor.lag]]
name = "from-primary"
connection = "primary"
every = "500ms"
[[phase]]
id = "p"
  [[phase.step]]
  id = "x"
  kind = "confirm"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn standby_lag_grows_while_replay_is_paused_and_falls_after() {
    let (hub, cancel, _samples) = start(LAG_RB);
    let caught_up = until(&hub, 20, "a first lag value", || hub.lag("replica")).await;
    assert!(
        caught_up < Duration::from_secs(2),
        "an idle, caught-up standby reads ~0, got {caught_up:?}"
    );

    let mut standby = PgConnection::connect(&rig_var("FERRY_TEST_PG_STANDBY"))
        .await
        .expect("standby");
    let mut primary = PgConnection::connect(&rig_var("FERRY_TEST_PG_PRIMARY"))
        .await
        .expect("primary");
    let _guard = ResumeReplay(rig_var("FERRY_TEST_PG_STANDBY"));
    sqlx::query("select pg_wal_replay_pause()")
        .execute(&mut standby)
        .await
        .expect("pause replay");
    sqlx::query("create table if not exists lag_probe (v text)")
        .execute(&mut primary)
        .await
        .expect("create");
    // keep writing so receive LSN moves ahead of replay LSN
    let writer = {
        let url = rig_var("FERRY_TEST_PG_PRIMARY");
        tokio::spawn(async move {
            let mut c = PgConnection::connect(&url).await.expect("primary");
            for _ in 0..40 {
                let _ = sqlx::query(
                    "insert into lag_probe select repeat('x', 1000) from generate_series(1, 200)",
                )
                .execute(&mut c)
                .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let grown = until(&hub, 20, "lag above 1.5s while paused", || {
        hub.lag("replica")
            .filter(|l| *l > Duration::from_millis(1500))
    })
    .await;
    let snap = hub.snapshot();
    let replica = snap
        .lag
        .iter()
        .find(|l| l.name == "replica")
        .expect("series");
    assert!(
        replica.bytes_behind.unwrap_or(0) > 0,
        "bytes behind grow too"
    );
    assert_eq!(
        replica.note.as_deref(),
        Some("WAL replay is paused on this standby")
    );
    assert!(grown > Duration::from_millis(1500));
    // the primary's view sees the standby falling behind in bytes
    let from_primary = snap
        .lag
        .iter()
        .find(|l| l.name == "from-primary")
        .expect("series");
    assert!(from_primary.stale.is_none(), "{:?}", from_primary.stale);

    let _ = writer.await;
    sqlx::query("select pg_wal_replay_resume()")
        .execute(&mut standby)
        .await
        .expect("resume replay");
    until(&hub, 30, "lag and bytes back to 0 after resume", || {
        let caught_up = hub
            .snapshot()
            .lag
            .iter()
            .find(|l| l.name == "replica")
            .and_then(|l| l.bytes_behind)
            == Some(0);
        hub.lag("replica")
            .filter(|l| *l < Duration::from_secs(1) && caught_up)
    })
    .await;
    let _ = sqlx::query("drop table lag_probe")
        .execute(&mut primary)
        .await;
    cancel.cancel();
}

/// Connections to the primary and the target, and a schema of this process on both:
/// `t` (50 rows on the primary, none on the target) and, on the primary, `counter` at 0.
async fn metric_tables() -> (PgConnection, PgConnection, String) {
    let mut primary = PgConnection::connect(&rig_var("FERRY_TEST_PG_PRIMARY"))
        .await
        .expect("primary");
    let mut target = PgConnection::connect(&rig_var("FERRY_TEST_PG_TARGET"))
        .await
        .expect("target");
    let schema = format!("mon_{}", std::process::id());
    for c in [&mut primary, &mut target] {
        sqlx::raw_sql(&format!(
            "create schema {schema}; create table {schema}.t (id int primary key)"
        ))
        .execute(&mut *c)
        .await
        .expect("schema");
    }
    sqlx::query(&format!(
        "insert into {schema}.t select generate_series(1, 50)"
    ))
    .execute(&mut primary)
    .await
    .expect("insert");
    sqlx::raw_sql(&format!(
        "create table {schema}.counter (n bigint); insert into {schema}.counter values (0)"
    ))
    .execute(&mut primary)
    .await
    .expect("counter");
    (primary, target, schema)
}

/// The runbook: a rate over `counter`, a row count, a metric on a server that is not
/// there, a numeric sum, a text metric, and row counts of the schema on both sides.
fn metrics_runbook(schema: &str) -> String {
    format!(
        r#"
[runbook]
name = "m"
format = 1
[connections.source]
url = "${{env:FERRY_TEST_PG_PRIMARY}}"
[connections.target]
url = "${{env:FERRY_TEST_PG_TARGET}}"
[connections.nowhere]
url = "postgres://nobody@127.0.0.1:9/none"
[[monitor.metric]]
name = "counter-rate"
sql = {{ connection = "source", query = "select n from {schema}.counter", rate = true, every = "500ms" }}
[[monitor.metric]]
name = "rows"
sql = {{ connection = "source", query = "select count(*) from {schema}.t", every = "500ms" }}
[[monitor.metric]]
name = "dead"
sql = {{ connection = "nowhere", query = "select 1", every = "500ms" }}
[[monitor.metric]]
name = "numeric-sum"
sql = {{ connection = "source", query = "select sum(n) from {schema}.counter", every = "500ms" }}
[[monitor.metric]]
name = "not-a-number"
sql = {{ connection = "source", query = "select 'abc'", every = "500ms" }}
[monitor.rowcounts]
source = "source"
target = "target"
tables = ["{schema}.*"]
every = "1s"
[[phase]]
id = "p"
  [[phase.step]]
  id = "x"
  kind = "confirm"
"#
    )
}

/// Adds 100 to `counter` every 500 ms, 16 times: a rate of about 200/s for 8 s.
fn bump_counter(schema: &str) -> tokio::task::JoinHandle<()> {
    let url = rig_var("FERRY_TEST_PG_PRIMARY");
    let schema = schema.to_string();
    tokio::spawn(async move {
        let mut c = PgConnection::connect(&url).await.expect("primary");
        for _ in 0..16 {
            let _ = sqlx::query(&format!("update {schema}.counter set n = n + 100"))
                .execute(&mut c)
                .await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

/// The records to journal start with a (downsampled) sample, and the dead metric going
/// stale is among the notes, with its error.
async fn assert_stale_is_journaled(
    samples: &mut tokio::sync::mpsc::UnboundedReceiver<monitor::Record>,
) {
    // samples are downsampled for the journal
    // (going stale is journaled as a note, with the error)
    let mut notes = Vec::new();
    let first = loop {
        match samples.recv().await.expect("a record to journal") {
            monitor::Record::Sample(s) => break s,
            monitor::Record::Note(n) => notes.push(n),
            monitor::Record::Alarm { monitor, problems } => {
                panic!("no DMS monitor here, yet an alarm from `{monitor}`: {problems:?}")
            }
        }
    };
    assert!(first.series == "metric" || first.series == "lag");
    while let Ok(r) = samples.try_recv() {
        if let monitor::Record::Note(n) = r {
            notes.push(n);
        }
    }
    assert!(
        notes
            .iter()
            .any(|n| n.contains("monitor `dead` is stale") && n.contains("127.0.0.1:9")),
        "{notes:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_metrics_rates_rowcounts_and_staleness() {
    let (mut primary, mut target, schema) = metric_tables().await;
    let rb = metrics_runbook(&schema);
    let (hub, cancel, mut samples) = start(&rb);
    assert_eq!(
        until(&hub, 15, "rows metric", || hub.metric("rows")).await,
        50.0
    );
    // a counter growing by 100 every 500 ms is about 200/s
    let bump = bump_counter(&schema);
    let rate = until(&hub, 15, "a positive rate", || {
        hub.metric("counter-rate").filter(|r| *r > 0.0)
    })
    .await;
    assert!(
        (100.0..=400.0).contains(&rate),
        "rate of a counter growing ~200/s: {rate}"
    );
    // sum(bigint) is numeric, the DESIGN's own example (`select sum(xact_commit) ...`)
    let sum = until(&hub, 15, "a numeric sum", || hub.metric("numeric-sum")).await;
    assert!(sum >= 0.0, "{sum}");
    let nan = until(&hub, 15, "a stale text metric", || {
        hub.snapshot()
            .metrics
            .into_iter()
            .find(|m| m.name == "not-a-number")
            .and_then(|m| m.stale)
    })
    .await;
    assert!(nan.error.contains("`abc`, not a number"), "{}", nan.error);
    let counts = until(&hub, 15, "row counts", || {
        hub.snapshot().rowcounts.filter(|r| !r.tables.is_empty())
    })
    .await;
    let t = counts
        .tables
        .iter()
        .find(|t| t.table == format!("{schema}.t"))
        .expect("table counted");
    assert_eq!(
        (t.source, t.target, t.exact),
        (Some(50), Some(0), true),
        "first reading is exact"
    );
    // a source that never answers is stale, with its error, and gates nothing
    let dead = until(&hub, 15, "stale dead metric", || {
        hub.snapshot()
            .metrics
            .into_iter()
            .find(|m| m.name == "dead" && m.stale.is_some())
    })
    .await;
    assert!(dead
        .stale
        .map(|s| s.error)
        .unwrap_or_default()
        .contains("127.0.0.1:9"));
    assert_eq!(hub.metric("dead"), None);
    assert_stale_is_journaled(&mut samples).await;
    let _ = bump.await;
    cancel.cancel();
    for c in [&mut primary, &mut target] {
        let _ = sqlx::query(&format!("drop schema {schema} cascade"))
            .execute(&mut *c)
            .await;
    }
}

/// A server that goes away after the monitor connected: the pool keeps retrying it
/// until its own timeout, and the stale reason must still name the real cause
/// (the refused connection), not only "no answer within 5s".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_away_is_stale_with_its_connect_error() {
    let cluster = tokio::task::spawn_blocking(OwnCluster::start)
        .await
        .expect("start a cluster");
    let rb = format!(
        r#"
[runbook]
name = "down"
format = 1
[connections.own]
url = "{}"
[[monitor.metric]]
name = "up"
sql = {{ connection = "own", query = "select 1", every = "300ms" }}
[[phase]]
id = "p"
  [[phase.step]]
  id = "s"
  kind = "confirm"
"#,
        cluster.url
    );
    let (hub, cancel, _samples) = start(&rb);
    until(&hub, 20, "a first value", || hub.metric("up")).await;
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop_fast();
        cluster
    })
    .await
    .expect("stop the cluster");
    let why = until(
        &hub,
        40,
        "a stale reason naming the refused connection",
        || {
            let m = hub
                .snapshot()
                .metrics
                .into_iter()
                .find(|m| m.name == "up")?;
            let e = m.stale?.error;
            (e.contains("connection `own`") && e.to_lowercase().contains("refused")).then_some(e)
        },
    )
    .await;
    assert_eq!(
        hub.metric("up"),
        None,
        "a stale metric gates nothing: {why}"
    );
    cancel.cancel();
    drop(cluster);
}

/// Row counts between exact counts. The source's statistics are stale (40 rows
/// written since its last analyze, autovacuum off); the target was loaded and
/// analysed. The exact first reading (equal) must stay equal while nothing
/// changes, not turn into `reltuples`' 5,000 against 5,040; a write afterwards
/// shows at once, as an estimate, and an exact count on demand confirms it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estimates_neither_invent_a_difference_nor_miss_a_write() {
    let (src, tgt) = (
        rig_var("FERRY_TEST_PG_PRIMARY"),
        rig_var("FERRY_TEST_PG_TARGET"),
    );
    let schema = format!("rcest_{}", std::process::id());
    let sql = |url: String, q: String| async move {
        let mut c = PgConnection::connect(&url).await.expect("connect");
        sqlx::raw_sql(&q).execute(&mut c).await.expect("test SQL");
    };
    sql(
        src.clone(),
        format!(
            "create schema {schema}; \
             create table {schema}.t (id int primary key) with (autovacuum_enabled = false); \
             insert into {schema}.t select generate_series(1, 5000); analyze {schema}.t; \
             insert into {schema}.t select generate_series(5001, 5040);"
        ),
    )
    .await;
    sql(
        tgt.clone(),
        format!(
            "create schema {schema}; create table {schema}.t (id int primary key); \
             insert into {schema}.t select generate_series(1, 5040); analyze {schema}.t;"
        ),
    )
    .await;
    let rb = format!(
        r#"
[runbook]
name = "rc"
format = 1
[connections.source]
url = "${{env:FERRY_TEST_PG_PRIMARY}}"
[connections.target]
url = "${{env:FERRY_TEST_PG_TARGET}}"
[monitor.rowcounts]
source = "source"
target = "target"
tables = ["{schema}.*"]
every = "300ms"
[[phase]]
id = "p"
  [[phase.step]]
  id = "x"
  kind = "confirm"
"#
    );
    let (hub, cancel, _samples) = start(&rb);
    let table = format!("{schema}.t");
    let reading = || {
        let rc = hub.snapshot().rowcounts?;
        let t = rc.tables.iter().find(|t| t.table == table)?.clone();
        Some((rc.updated?, t))
    };
    let (first_at, first) = until(&hub, 20, "a first reading", reading).await;
    assert_eq!(
        (first.source, first.target, first.exact),
        (Some(5040), Some(5040), true)
    );
    // three estimate polls later, still equal
    let later = until(&hub, 20, "three more readings", || {
        let (at, t) = reading()?;
        ((at - first_at).num_milliseconds() >= 900).then_some(t)
    })
    .await;
    assert_eq!(
        (later.source, later.target),
        (Some(5040), Some(5040)),
        "equal tables must not read as different between exact counts: {later:?}"
    );
    sql(
        src.clone(),
        format!("insert into {schema}.t select generate_series(5041, 5140)"),
    )
    .await;
    let moved = until(&hub, 20, "the write to show", || {
        let (_, t) = reading()?;
        (t.source == Some(5140)).then_some(t)
    })
    .await;
    assert!(
        !moved.exact,
        "between exact counts it is an estimate: {moved:?}"
    );
    hub.request_exact_counts();
    let exact = until(&hub, 20, "an exact count on demand", || {
        let (_, t) = reading()?;
        t.exact.then_some(t)
    })
    .await;
    assert_eq!((exact.source, exact.target), (Some(5140), Some(5040)));
    cancel.cancel();
    for url in [src, tgt] {
        sql(url, format!("drop schema {schema} cascade")).await;
    }
}
