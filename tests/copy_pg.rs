//! The copy engine against the rig's real PostgreSQL: a fresh database on the
//! primary (source) and one on the target cluster per test, dropped afterwards.
//! Exactness is judged by an independent query on both sides
//! (`md5(string_agg(t::text, '|' order by t::text))`, plus counts), never by ferry's
//! own code. Tests fail, never skip, when the rig's variables are unset.

use ferry::copy::{self, CopyError, CopyFormat, CopyProgress, CopyReport, Hooks, Throttle};
use ferry::db::Db;
use ferry::runbook::{Compare, Condition, CopyStep};
use sqlx::{Connection, PgConnection, PgPool};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn rig_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test, which starts the PostgreSQL rig")
    })
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros() % 1_000_000_000
    )
}

/// `url` with its database replaced by `db`.
fn with_db(url: &str, db: &str) -> String {
    let (base, _) = url
        .rsplit_once('/')
        .expect("a postgres URL with a database");
    format!("{base}/{db}")
}

/// A database made for one test on each side; dropped (forcefully) when the test ends.
struct Pair {
    src_url: String,
    tgt_url: String,
    names: Vec<(String, String)>,
}

impl Pair {
    async fn new(prefix: &str) -> Pair {
        let name = unique(prefix);
        let mut names = Vec::new();
        for var in ["FERRY_TEST_PG_PRIMARY", "FERRY_TEST_PG_TARGET"] {
            let admin = rig_var(var);
            let mut c = PgConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("cannot connect to {var}: {e}"));
            sqlx::raw_sql(&format!("create database {name}"))
                .execute(&mut c)
                .await
                .unwrap_or_else(|e| panic!("create database {name} on {var}: {e}"));
            names.push((admin, name.clone()));
        }
        Pair {
            src_url: with_db(&rig_var("FERRY_TEST_PG_PRIMARY"), &name),
            tgt_url: with_db(&rig_var("FERRY_TEST_PG_TARGET"), &name),
            names,
        }
    }

    async fn pools(&self) -> (Db, Db) {
        let s = PgPool::connect(&self.src_url).await.expect("source pool");
        let t = PgPool::connect(&self.tgt_url).await.expect("target pool");
        (Db::Pg(s), Db::Pg(t))
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let names = std::mem::take(&mut self.names);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                for (admin, name) in names {
                    if let Ok(mut c) = PgConnection::connect(&admin).await {
                        let _ =
                            sqlx::raw_sql(&format!("drop database if exists {name} with (force)"))
                                .execute(&mut c)
                                .await;
                    }
                }
            })
        })
        .join();
    }
}

/// Run SQL on `url` (several statements allowed).
async fn exec(url: &str, sql: &str) {
    let mut c = PgConnection::connect(url).await.expect("connect");
    sqlx::raw_sql(sql)
        .execute(&mut c)
        .await
        .unwrap_or_else(|e| panic!("test SQL failed: {e}\n{sql}"));
}

async fn scalar(url: &str, sql: &str) -> String {
    let mut c = PgConnection::connect(url).await.expect("connect");
    sqlx::query_scalar::<_, Option<String>>(sql)
        .fetch_one(&mut c)
        .await
        .unwrap_or_else(|e| panic!("test query failed: {e}\n{sql}"))
        .unwrap_or_default()
}

/// Count and an order-independent digest of every row, by an independent query.
async fn fingerprint(url: &str, table: &str) -> String {
    scalar(
        url,
        &format!(
            "select count(*)::text || ' ' || coalesce(md5(string_agg(t::text, '|' order by t::text)), '-') from {table} t"
        ),
    )
    .await
}

fn step(tables: &[&str], chunk_rows: u64, parallel: u32) -> CopyStep {
    CopyStep {
        from: "source".into(),
        to: "target".into(),
        tables: tables.iter().map(|s| s.to_string()).collect(),
        exclude: vec![],
        chunk_rows,
        parallel,
        throttle: None,
        truncate: false,
        filters: BTreeMap::new(),
    }
}

#[derive(Default)]
struct Seen {
    info: Mutex<Vec<String>>,
    progress: Mutex<Vec<CopyProgress>>,
}

fn hooks(seen: &Arc<Seen>, cancel: CancellationToken) -> Hooks {
    let a = seen.clone();
    let b = seen.clone();
    Hooks {
        cancel,
        progress: Arc::new(move |p| a.progress.lock().expect("lock").push(p)),
        info: Arc::new(move |l| b.info.lock().expect("lock").push(l)),
        throttle: None,
        run: None,
    }
}

async fn copy(
    pair: &Pair,
    step_id: &str,
    st: &CopyStep,
    format: CopyFormat,
) -> (Result<CopyReport, CopyError>, Arc<Seen>) {
    let (s, t) = pair.pools().await;
    let seen = Arc::new(Seen::default());
    let r = copy::run_with(
        step_id,
        st,
        &s,
        &t,
        hooks(&seen, CancellationToken::new()),
        format,
    )
    .await;
    (r, seen)
}

const AWKWARD_SCHEMA: &str = r#"
create extension if not exists citext;
create type mood as enum ('sad', 'ok', 'happy', 'it''s, "complicated"');
create domain posint as integer check (value > 0);
create schema "MixedCase";
create table public.awkward (
  id bigint generated always as identity primary key,
  m mood, d posint, ci citext, arr text[], iarr int[], moods mood[],
  j jsonb, js json, b bytea, n numeric, f8 float8, f4 float4,
  ts timestamp, tstz timestamptz, t text, e text, vc varchar(40), ch char(5),
  gen text generated always as (upper(t) || '!') stored,
  iv interval, u uuid, dt date, tm time, flag boolean, money_col money
);
create table public.builtins (id bigint primary key, arr text[], iarr int[], j jsonb, js json, b bytea,
  n numeric, f8 float8, f4 float4, ts timestamp, tstz timestamptz, t text, e text, vc varchar(40), ch char(5),
  iv interval, u uuid, dt date, tm time, flag boolean, money_col money, g point, ip inet, bits bit varying(12),
  tsr tstzrange, xid8_col bigint[]);
create table "MixedCase"."Table" ("Id" int primary key, "Val" text, "Other Col" int);
create table public.composite (a int, b text, v text, primary key (a, b));
create table public.textkey (k text primary key, v int);
create table public.uuidkey (k uuid primary key, v int);
create table public.nokey (x int, y text);
create table public.serials (id serial primary key, v text);
create table public.ident_default (id int generated by default as identity primary key, v text);
create table public.parted (id int, region text, v text, primary key (id, region)) partition by list (region);
create table public.parted_eu partition of public.parted for values in ('eu');
create table public.parted_us partition of public.parted for values in ('us');
create table public.empty_one (id int primary key, v text);
create table public.empty_nokey (v text);
create table public.parted_small (id int primary key, v text) partition by range (id);
create table public.parted_small_all partition of public.parted_small for values from (minvalue) to (maxvalue);
"#;

const AWKWARD_DATA: &str = r#"
insert into awkward (m, d, ci, arr, iarr, moods, j, js, b, n, f8, f4, ts, tstz, t, e, vc, ch, iv, u, dt, tm, flag, money_col)
select (array['sad','ok','happy','it''s, "complicated"'])[1 + i % 4]::mood, 1 + i, 'Name' || i,
  array['a,b' || i, null, 'c"d', '', 'NULL', E'back\\slash', '{x}'], array[i, null, -i],
  array['sad', null, 'it''s, "complicated"']::mood[],
  jsonb_build_object('k', i, 'u', 'ü✓😀', 'n', null, 'arr', jsonb_build_array(1, 'x', 1.50)),
  json_build_object('order', 2, 'kept', '  spaces  '),
  case when i % 7 = 0 then null else decode(md5(i::text), 'hex') || '\x005c0a09ff'::bytea end,
  case i % 5 when 0 then 'NaN'::numeric when 1 then 123456789012345678901234567890.123456789012345678901234567890 * i
       when 2 then -0.000000000000000000000000000001 else i / 7.0 end,
  case i % 6 when 0 then 'NaN'::float8 when 1 then 'Infinity' when 2 then '-Infinity' when 3 then 1e-300 * i else i * 0.1 end,
  case i % 4 when 0 then 'NaN'::float4 when 1 then 3.4e38 else (i * 0.1)::float4 end,
  timestamp '2024-01-01 00:00:00.123456' + i * interval '1 minute 1.000001 second',
  timestamptz '1999-12-31 23:59:59.999999+05:30' + i * interval '1 hour 1 microsecond',
  E'tab\there\nnew line\r\\backslash 😀 ' || i || E' \\N',
  case when i % 3 = 0 then null when i % 3 = 1 then '' else E'\\N' end,
  'vc' || i, 'c' || (i % 10),
  make_interval(days => i, secs => i * 0.5), md5(i::text)::uuid, date '2000-01-01' + i, time '12:34:56.789',
  case i % 3 when 0 then true when 1 then false end, (i * 1.25)::money
from generate_series(1, 3000) i;
insert into awkward (m) values (null);
insert into awkward (b, t) select decode(string_agg(lpad(to_hex(x), 2, '0'), ''), 'hex'), 'all bytes' from generate_series(0, 255) x;
insert into builtins select id, arr, iarr, j, js, b, n, f8, f4, ts, tstz, t, e, vc, ch, iv, u, dt, tm, flag, money_col,
  point(id, -id * 0.5), ('10.0.' || (id % 256) || '.1/24')::inet, (id % 4096)::bit(12)::varbit,
  tstzrange(tstz, tstz + interval '1 day', '[)'), array[id, null] from awkward;
insert into "MixedCase"."Table" select i, 'v' || i, i * 2 from generate_series(1, 1500) i;
insert into composite select i / 10, 'k' || (i % 10) || E'\t' || i, 'v' || i from generate_series(1, 2500) i;
insert into textkey select 'key ' || i || case when i % 2 = 0 then ' é' else 'Z' end, i from generate_series(1, 1800) i;
insert into uuidkey select md5('u' || i)::uuid, i from generate_series(1, 900) i;
insert into nokey select i % 17, case when i % 5 = 0 then null else 'row ' || i end from generate_series(1, 1300) i;
insert into nokey select 1, 'duplicate row' from generate_series(1, 3);
insert into serials (v) select 'v' || i from generate_series(1, 500) i;
delete from serials where id > 480;
insert into ident_default (v) select 'v' || i from generate_series(1, 50) i;
insert into parted select i, case when i % 3 = 0 then 'us' else 'eu' end, 'p' || i from generate_series(1, 2000) i;
insert into parted_small values (1, 'only');
"#;

const AWKWARD_TABLES: &[&str] = &[
    "public.awkward",
    "public.builtins",
    "\"MixedCase\".\"Table\"",
    "public.composite",
    "public.textkey",
    "public.uuidkey",
    "public.nokey",
    "public.serials",
    "public.ident_default",
    "public.parted",
    "public.parted_small",
];

async fn check_exact(pair: &Pair) {
    for t in AWKWARD_TABLES {
        let a = fingerprint(&pair.src_url, t).await;
        let b = fingerprint(&pair.tgt_url, t).await;
        assert_eq!(a, b, "table {t} differs between source and target");
        assert!(!a.starts_with("0 "), "table {t} should not be empty");
    }
}

async fn awkward_copy(format: CopyFormat) {
    let pair = Pair::new("copy_awkward").await;
    exec(&pair.src_url, AWKWARD_SCHEMA).await;
    exec(&pair.tgt_url, AWKWARD_SCHEMA).await;
    exec(&pair.src_url, AWKWARD_DATA).await;
    exec(&pair.src_url, "analyze").await;
    let st = step(&["public.*", "MixedCase.*"], 400, 3);
    let (r, seen) = copy(&pair, "copy-awkward", &st, format).await;
    let report = r.unwrap_or_else(|e| {
        panic!(
            "copy failed: {e}\ninfo: {:?}",
            seen.info.lock().map(|v| v.clone())
        )
    });
    eprintln!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    eprintln!("{:#?}", seen.info.lock().map(|v| v.clone()));
    check_exact(&pair).await;

    // Every table is there, in several chunks where it has a key.
    let by_name = |n: &str| {
        report
            .tables
            .iter()
            .find(|t| t.table == n)
            .unwrap_or_else(|| panic!("{n} in report"))
    };
    assert!(by_name("public.awkward").chunks > 3);
    assert_eq!(
        by_name("public.awkward").format,
        "copy text",
        "a domain and an enum: text"
    );
    let builtin_format = if format == CopyFormat::Text {
        "copy text"
    } else {
        "copy binary"
    };
    assert_eq!(by_name("public.builtins").format, builtin_format);
    assert!(by_name("public.composite").chunks > 3);
    assert!(by_name("public.textkey").chunks > 3);
    assert!(by_name("MixedCase.Table").chunks > 2);
    assert_eq!(by_name("public.nokey").chunks, 1);
    assert!(
        by_name("public.parted").chunks > 3,
        "a partitioned table is copied through its parent"
    );
    assert!(
        !report
            .tables
            .iter()
            .any(|t| t.table.starts_with("public.parted_eu")),
        "partitions are not copied on their own"
    );
    assert_eq!(by_name("public.nokey").rows, 1303);
    assert_eq!(
        report.rows,
        report.tables.iter().map(|t| t.rows).sum::<u64>()
    );
    assert!(report.replica_role, "the rig's user is a superuser");

    // Sequences follow the data: the same state as the source's.
    for (seq, table) in [
        ("awkward_id_seq", "awkward"),
        ("serials_id_seq", "serials"),
        ("ident_default_id_seq", "ident_default"),
    ] {
        let q = format!("select last_value::text || ' ' || is_called::text from {seq}");
        assert_eq!(
            scalar(&pair.src_url, &q).await,
            scalar(&pair.tgt_url, &q).await,
            "sequence {seq}"
        );
        assert!(
            report
                .sequences
                .iter()
                .any(|s| s.table == format!("public.{table}") && s.value.is_some()),
            "{seq} reported: {:?}",
            report.sequences
        );
    }

    // Progress was reported, per table, with a total.
    let progress = seen.progress.lock().expect("lock").clone();
    let last = progress.last().expect("progress reported");
    assert_eq!(last.rows_done, report.rows);
    assert_eq!(last.chunks_done, last.chunks_total);
    assert_eq!(last.tables.len(), report.tables.len());
    assert_eq!(
        report.tables.len(),
        AWKWARD_TABLES.len() + 2,
        "and the two empty tables"
    );
    assert!(last.tables.iter().all(|t| t.state == "done"));

    // A second run of the same step finds every chunk checkpointed and copies nothing.
    let (again, _) = copy(&pair, "copy-awkward", &st, format).await;
    let again = again.expect("second run");
    assert_eq!(again.chunks_resumed, again.chunks);
    check_exact(&pair).await;

    // ...so the next insert on the target does not collide.
    exec(
        &pair.tgt_url,
        "insert into serials (v) values ('next'); insert into ident_default (v) values ('next')",
    )
    .await;
    assert_eq!(
        scalar(&pair.tgt_url, "select max(id)::text from serials").await,
        "501"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn awkward_data_is_copied_exactly_in_text_format() {
    awkward_copy(CopyFormat::Text).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn awkward_data_is_copied_exactly_in_binary_format_where_safe() {
    awkward_copy(CopyFormat::BinaryWhereSafe).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_target_column_is_refused_by_name() {
    let pair = Pair::new("copy_missing_col").await;
    exec(&pair.src_url, "create table people (id int primary key, name text, email text); insert into people values (1, 'a', 'a@x')").await;
    exec(
        &pair.tgt_url,
        "create table people (id int primary key, name text)",
    )
    .await;
    let (r, _) = copy(&pair, "c", &step(&["public.*"], 100, 2), CopyFormat::Text).await;
    match r {
        Err(CopyError::Failed(msg)) => {
            assert!(
                msg.contains("public.people") && msg.contains("\"email\""),
                "{msg}"
            );
        }
        other => panic!("expected a failure naming the column, got {other:?}"),
    }
    assert_eq!(
        scalar(&pair.tgt_url, "select count(*)::text from people").await,
        "0"
    );
    // And a missing table.
    exec(&pair.src_url, "create table extra (id int primary key)").await;
    let (r, _) = copy(
        &pair,
        "c2",
        &step(&["public.extra"], 100, 2),
        CopyFormat::Text,
    )
    .await;
    assert!(
        matches!(&r, Err(CopyError::Failed(m)) if m.contains("public.extra")),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_constraint_violation_stops_the_copy_naming_table_chunk_and_value() {
    let pair = Pair::new("copy_violation").await;
    exec(&pair.src_url, "create table t (id int primary key, v int); insert into t select i, i from generate_series(1, 1000) i; update t set v = -5 where id = 777").await;
    exec(
        &pair.tgt_url,
        "create table t (id int primary key, v int check (v > 0))",
    )
    .await;
    let (r, _) = copy(&pair, "c", &step(&["public.t"], 100, 2), CopyFormat::Text).await;
    match r {
        Err(CopyError::Failed(msg)) => {
            eprintln!("{msg}");
            assert!(
                msg.contains("public.t")
                    && msg.contains("chunk [")
                    && msg.contains("check constraint"),
                "{msg}"
            );
            assert!(
                msg.contains("777") || msg.contains("-5"),
                "the value is quoted: {msg}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copying_a_database_onto_itself_is_refused() {
    let pair = Pair::new("copy_self").await;
    exec(
        &pair.src_url,
        "create table t (id int primary key); insert into t values (1)",
    )
    .await;
    let s = Db::Pg(PgPool::connect(&pair.src_url).await.expect("pool"));
    let s2 = Db::Pg(PgPool::connect(&pair.src_url).await.expect("pool"));
    let seen = Arc::new(Seen::default());
    let r = copy::run(
        "c",
        &step(&["public.*"], 10, 1),
        &s,
        &s2,
        hooks(&seen, CancellationToken::new()),
    )
    .await;
    assert!(
        matches!(&r, Err(CopyError::Failed(m)) if m.contains("same database")),
        "{r:?}"
    );
    assert_eq!(
        scalar(&pair.src_url, "select count(*)::text from t").await,
        "1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_throttle_pauses_while_lag_is_high_and_resumes_when_it_drops() {
    let pair = Pair::new("copy_throttle").await;
    let schema = "create table t (id int primary key, v text)";
    exec(
        &pair.src_url,
        &format!("{schema}; insert into t select i, 'v' || i from generate_series(1, 5000) i"),
    )
    .await;
    exec(&pair.tgt_url, schema).await;
    let lag_secs = Arc::new(AtomicU64::new(42));
    let lag = lag_secs.clone();
    let cond = Condition::Lag {
        monitor: "replica".into(),
        compare: Compare::Above,
        threshold: Duration::from_secs(30),
    };
    let throttle = copy::throttle::from_condition(
        cond.clone(),
        move |m| {
            assert_eq!(m, "replica");
            Some(Duration::from_secs(lag.load(Ordering::SeqCst)))
        },
        |_| None,
    );
    assert_eq!(throttle(), Throttle::Hold("lag 42s > 30s".into()));
    let (s, t) = pair.pools().await;
    let seen = Arc::new(Seen::default());
    let mut h = hooks(&seen, CancellationToken::new());
    h.throttle = Some(throttle);
    let mut st = step(&["public.t"], 500, 2);
    st.throttle = Some(cond);
    let task = tokio::spawn(async move { copy::run("c", &st, &s, &t, h).await });

    // Paused: nothing copied, and the progress says why.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        scalar(&pair.tgt_url, "select count(*)::text from t").await,
        "0"
    );
    let paused_note = seen
        .progress
        .lock()
        .expect("lock")
        .iter()
        .rev()
        .find_map(|p| p.paused.clone());
    assert_eq!(paused_note.as_deref(), Some("paused: lag 42s > 30s"));
    assert!(!task.is_finished());

    // The lag drops: the copy resumes by itself and completes.
    lag_secs.store(3, Ordering::SeqCst);
    let report = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("copy finishes after the lag drops")
        .expect("task")
        .expect("copy succeeds");
    assert_eq!(report.rows, 5000);
    assert_eq!(
        fingerprint(&pair.src_url, "t").await,
        fingerprint(&pair.tgt_url, "t").await
    );
    let info = seen.info.lock().expect("lock").clone();
    assert!(
        info.iter().any(|l| l == "paused: lag 42s > 30s"),
        "{info:?}"
    );
    assert!(info.iter().any(|l| l.starts_with("resumed")), "{info:?}");
    assert_eq!(
        seen.progress
            .lock()
            .expect("lock")
            .last()
            .and_then(|p| p.paused.clone()),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_copy_stops_promptly_and_a_rerun_completes_it_exactly() {
    let pair = Pair::new("copy_cancel").await;
    let schema = "create table big (id bigint primary key, pad text); create table other (k text primary key, v int)";
    exec(&pair.src_url, &format!("{schema}; insert into big select i, repeat('x', 200) || i from generate_series(1, 200000) i; \
        insert into other select 'k' || i, i from generate_series(1, 20000) i; analyze")).await;
    exec(&pair.tgt_url, schema).await;
    let (s, t) = pair.pools().await;
    let seen = Arc::new(Seen::default());
    let cancel = CancellationToken::new();
    let st = step(&["public.*"], 2000, 3);
    let h = hooks(&seen, cancel.clone());
    let st2 = st.clone();
    let task = tokio::spawn(async move { copy::run("c", &st2, &s, &t, h).await });
    // Cancel once some rows are in.
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen
        .progress
        .lock()
        .expect("lock")
        .last()
        .is_none_or(|p| p.rows_done < 10_000)
    {
        assert!(Instant::now() < deadline, "the copy made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    let at = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops promptly")
        .expect("task");
    assert_eq!(r.unwrap_err(), CopyError::Cancelled);
    assert!(at.elapsed() < Duration::from_secs(3));
    // What is on the target is exactly the checkpointed chunks, no partial chunk.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let in_target = scalar(
        &pair.tgt_url,
        "select ((select count(*) from big) + (select count(*) from other))::text",
    )
    .await;
    let checkpointed = scalar(
        &pair.tgt_url,
        "select coalesce(sum(rows), 0)::text from ferry.copy_checkpoint where step = 'c'",
    )
    .await;
    assert_eq!(in_target, checkpointed);
    assert_ne!(in_target, "220000", "the copy should have been cut short");

    let (r, _) = copy(&pair, "c", &st, CopyFormat::Text).await;
    let report = r.expect("rerun");
    assert!(report.chunks_resumed > 0);
    for t in ["big", "other"] {
        assert_eq!(
            fingerprint(&pair.src_url, t).await,
            fingerprint(&pair.tgt_url, t).await,
            "{t}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_superuser_parents_load_before_children_and_the_note_says_so() {
    let pair = Pair::new("copy_nosuper").await;
    let role = unique("copier");
    let schema = "create table parent (id int primary key, v text); \
                  create table child (id int primary key, parent_id int not null references parent(id), v text); \
                  create table grandchild (id int primary key, child_id int references child(id))";
    exec(
        &pair.src_url,
        &format!(
            "{schema}; insert into parent select i, 'p' || i from generate_series(1, 3000) i; \
        insert into child select i, 1 + i % 3000, 'c' || i from generate_series(1, 6000) i; \
        insert into grandchild select i, 1 + i % 6000 from generate_series(1, 4000) i"
        ),
    )
    .await;
    exec(
        &pair.tgt_url,
        &format!(
            "create role {role} login password 'pw-{role}'; grant all on database {} to {role}; \
        alter database {} owner to {role}",
            pair.names[1].1, pair.names[1].1
        ),
    )
    .await;
    let user_url = pair.tgt_url.replacen(
        "ferry:ferry-test-secret-pw@",
        &format!("{role}:pw-{role}@"),
        1,
    );
    assert_ne!(
        user_url, pair.tgt_url,
        "the rig URL has the expected user and password"
    );
    exec(&user_url, schema).await;
    let s = Db::Pg(PgPool::connect(&pair.src_url).await.expect("pool"));
    let t = Db::Pg(PgPool::connect(&user_url).await.expect("pool"));
    let seen = Arc::new(Seen::default());
    let r = copy::run(
        "c",
        &step(&["public.*"], 500, 4),
        &s,
        &t,
        hooks(&seen, CancellationToken::new()),
    )
    .await;
    let report = r.unwrap_or_else(|e| panic!("copy as a plain user: {e}"));
    assert!(!report.replica_role);
    for tb in ["parent", "child", "grandchild"] {
        assert_eq!(
            fingerprint(&pair.src_url, tb).await,
            fingerprint(&user_url, tb).await,
            "{tb}"
        );
    }
    let notes = seen
        .progress
        .lock()
        .expect("lock")
        .last()
        .map(|p| p.notes.clone())
        .unwrap_or_default();
    assert!(
        notes.iter().any(|n| n.contains("no replica role")),
        "{notes:?}"
    );
    let admin = rig_var("FERRY_TEST_PG_TARGET");
    exec(
        &admin,
        &format!("drop database if exists {} with (force)", pair.names[1].1),
    )
    .await;
    exec(&admin, &format!("drop role if exists {role}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_where_filter_copies_only_matching_rows_and_keeps_other_target_rows() {
    let pair = Pair::new("copy_where").await;
    let schema = "create table users (id int primary key, v text)";
    exec(
        &pair.src_url,
        &format!("{schema}; insert into users select i, 'v' || i from generate_series(1, 1000) i"),
    )
    .await;
    // The target already has newer rows (written by the app since the watermark).
    exec(
        &pair.tgt_url,
        &format!(
            "{schema}; insert into users select i, 'new' || i from generate_series(2001, 2100) i"
        ),
    )
    .await;
    let mut st = step(&["public.users"], 100, 2);
    st.filters.insert("public.users".into(), "id <= 600".into());
    let (r, _) = copy(&pair, "c", &st, CopyFormat::Text).await;
    let report = r.expect("copy");
    assert_eq!(report.rows, 600);
    assert_eq!(
        scalar(
            &pair.tgt_url,
            "select count(*)::text from users where id > 2000"
        )
        .await,
        "100"
    );
    assert_eq!(
        scalar(
            &pair.src_url,
            "select md5(string_agg(t::text, '|' order by id)) from users t where id <= 600"
        )
        .await,
        scalar(
            &pair.tgt_url,
            "select md5(string_agg(t::text, '|' order by id)) from users t where id <= 2000"
        )
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_empties_the_target_on_a_first_run_only() {
    let pair = Pair::new("copy_truncate").await;
    let schema = "create table t (id int primary key, v text)";
    exec(
        &pair.src_url,
        &format!("{schema}; insert into t select i, 'v' || i from generate_series(1, 300) i"),
    )
    .await;
    exec(
        &pair.tgt_url,
        &format!("{schema}; insert into t values (5000, 'stale')"),
    )
    .await;
    let mut st = step(&["public.t"], 100, 2);
    st.truncate = true;
    let (r, _) = copy(&pair, "c", &st, CopyFormat::Text).await;
    assert!(r.expect("copy").truncated);
    assert_eq!(
        fingerprint(&pair.src_url, "t").await,
        fingerprint(&pair.tgt_url, "t").await
    );
    // A resume of the same step does not truncate (and has nothing left to do).
    exec(&pair.tgt_url, "insert into t values (6000, 'kept')").await;
    let (r, seen) = copy(&pair, "c", &st, CopyFormat::Text).await;
    let r = r.expect("second run");
    assert!(!r.truncated);
    assert_eq!(
        scalar(&pair.tgt_url, "select count(*)::text from t").await,
        "301"
    );
    assert!(seen
        .info
        .lock()
        .expect("lock")
        .iter()
        .any(|l| l.contains("not truncating")));
}

/// A big table with a composite key is cut at the quantiles of a row sample: the
/// chunks tile the key space (every row in exactly one) and each holds about
/// `chunk_rows`; and a copy over such a plan is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_composite_key_table_is_cut_at_sampled_quantiles() {
    let pair = Pair::new("ferry_quantiles").await;
    let schema =
        "create table items (order_id bigint, line int, sku text, primary key (order_id, line));";
    exec(
        &pair.src_url,
        &format!(
            "{schema} insert into items select 1 + i / 3, i % 3, 'sku-' || (i % 977) \
             from generate_series(0, 59999) i; analyze items;"
        ),
    )
    .await;
    exec(&pair.tgt_url, schema).await;
    let (s, _t) = pair.pools().await;
    let cat = ferry::copy::catalog::read(&s).await.expect("catalog");
    let table = cat.find("public.items").expect("the table");
    let plan = ferry::copy::plan(&s, table, 2_000).await.expect("plan");
    assert_eq!(plan.method, ferry::copy::Method::Sampled);
    assert!(
        (25..=35).contains(&plan.chunks.len()),
        "about 30 chunks, got {}",
        plan.chunks.len()
    );
    let mut total = 0;
    let mut exact = 0;
    for c in &plan.chunks {
        let cond = |b: &Option<Vec<ferry::copy::KeyVal>>, op: &str| match b {
            None => "true".to_string(),
            Some(k) => {
                let v: Vec<String> = k
                    .iter()
                    .map(|x| match x {
                        ferry::copy::KeyVal::Text(t) => format!("'{t}'"),
                        other => panic!("a text bound, got {other:?}"),
                    })
                    .collect();
                format!("(order_id, line) {op} ({}::bigint, {}::int)", v[0], v[1])
            }
        };
        let n: i64 = scalar(
            &pair.src_url,
            &format!(
                "select count(*)::text from items where {} and {}",
                cond(&c.lo, ">="),
                cond(&c.hi, "<")
            ),
        )
        .await
        .parse()
        .expect("a count");
        assert!(
            (1_000..=3_000).contains(&n) || c.hi.is_none(),
            "chunk {c:?} holds {n} rows, far from 2,000"
        );
        total += n;
        exact += usize::from(n == 2_000);
    }
    assert_eq!(total, 60_000, "every row in exactly one chunk");
    // the exact row_number() pass would cut every chunk at exactly 2,000
    assert!(
        exact < plan.chunks.len() - 1,
        "the sample's quantiles were used"
    );
    let st = step(&["public.items"], 2_000, 2);
    let (r, _) = copy(&pair, "quantiles", &st, CopyFormat::BinaryWhereSafe).await;
    r.expect("the copy succeeds");
    assert_eq!(
        fingerprint(&pair.src_url, "items").await,
        fingerprint(&pair.tgt_url, "items").await
    );
}
