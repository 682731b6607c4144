//! The verification engine against the rig's real PostgreSQL: the primary as the
//! source, the separate target cluster as the target, and the streaming standby as a
//! read-only source. Each test makes its own schema on both sides with the *same SQL*
//! (never with ferry's copy, so the verifier is tested on its own) and drops it.
//! Tests fail, never skip, when the rig's variables are unset.

use ferry_core::db::Db;
use ferry_core::runbook::{Check, VerifyStep};
use ferry_core::verify::{self, Hooks, Tuning, VerifyReport};
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use crate::support;
use support::pg::{cleanup, exec, rig_var, unique};

/// A schema made on the primary and the target for one test; dropped at the end.
struct Pair {
    schema: String,
    src: String,
    tgt: String,
}

impl Pair {
    async fn new(prefix: &str) -> Pair {
        let schema = unique(prefix);
        let (src, tgt) = (
            rig_var("FERRY_TEST_PG_PRIMARY"),
            rig_var("FERRY_TEST_PG_TARGET"),
        );
        for url in [&src, &tgt] {
            exec(
                url,
                &format!(
                    "select pg_advisory_xact_lock(7406); create extension if not exists citext; \
                     create schema {schema}"
                ),
            )
            .await;
        }
        Pair { schema, src, tgt }
    }

    /// Run the same SQL on both sides (`S.` means this test's schema).
    async fn both(&self, sql: &str) {
        let sql = sql.replace("S.", &format!("{}.", self.schema));
        exec(&self.src, &sql).await;
        exec(&self.tgt, &sql).await;
    }

    async fn target(&self, sql: &str) {
        exec(&self.tgt, &sql.replace("S.", &format!("{}.", self.schema))).await;
    }

    fn step(&self, checks: &[Check]) -> VerifyStep {
        VerifyStep {
            source: "source".into(),
            target: "target".into(),
            tables: vec![format!("{}.*", self.schema)],
            exclude: vec![],
            checks: checks.to_vec(),
            sample: 300,
            max_diffs: 100,
            time_limit: None,
            zero_dates: Default::default(),
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let sql = format!("drop schema if exists {} cascade", self.schema);
        cleanup(vec![
            (self.src.clone(), sql.clone()),
            (self.tgt.clone(), sql),
        ]);
    }
}

async fn pool(url: &str) -> Db {
    Db::Pg(
        PgPoolOptions::new()
            .max_connections(4)
            .connect(url)
            .await
            .unwrap_or_else(|e| panic!("pool for {url}: {e}")),
    )
}

fn hooks() -> Hooks {
    Hooks {
        cancel: CancellationToken::new(),
        progress: Arc::new(|_| {}),
        info: Arc::new(|_| {}),
    }
}

async fn verify(step: &VerifyStep, src: &str, tgt: &str) -> VerifyReport {
    verify_with(step, src, tgt, Tuning::default()).await
}

/// Small chunks, every table planned up front: many chunks, compared row by row.
const SMALL: Tuning = Tuning {
    chunk_rows: 1000,
    whole_table_rows: 0,
};

/// Large chunks planned up front: a differing chunk is bisected over two levels.
const COARSE: Tuning = Tuning {
    chunk_rows: 100_000,
    whole_table_rows: 0,
};

async fn verify_with(step: &VerifyStep, src: &str, tgt: &str, tuning: Tuning) -> VerifyReport {
    let (s, t) = (pool(src).await, pool(tgt).await);
    verify::run_with(step, &s, &t, hooks(), tuning)
        .await
        .unwrap_or_else(|e| panic!("verify failed to run: {e}"))
}

const ALL: [Check; 4] = [
    Check::Schema,
    Check::Counts,
    Check::Checksums,
    Check::Sample,
];

/// Awkward types, names and keys; deterministic data (identical on both sides).
const FIXTURE: &str = r#"
create type S.mood as enum ('happy', 'sad', 'it''s complicated');
create domain S.email as text check (value like '%@%');
create table S.awkward (
  id bigint generated always as identity primary key,
  mood S.mood, moods S.mood[], contact S.email, name citext, tags text[], doc jsonb, raw bytea,
  amount numeric(12,3), ratio float8, ratio4 real, at_tz timestamptz, at_local timestamp, born date,
  note text, flag boolean, dur interval, uid uuid, password_hash text,
  doubled bigint generated always as (id * 2) stored);
create index awkward_born_idx on S.awkward (born);
insert into S.awkward (mood, moods, contact, name, tags, doc, raw, amount, ratio, ratio4, at_tz, at_local,
                       born, note, flag, dur, uid, password_hash)
select (array['happy','sad','it''s complicated'])[1 + i % 3]::S.mood,
       case when i % 4 = 0 then array['happy', null, 'sad']::S.mood[] end,
       'u' || i || '@example.com',
       case when i % 2 = 0 then 'Name ' || i else 'NAME ' || i end,
       case i % 5 when 0 then array['a,b', null, 'c"d', '', E'e\\f', '{x}'] when 1 then '{}'::text[] else array['t' || i] end,
       jsonb_build_object('i', i, 'nested', jsonb_build_array(1, 'x', null, 1.50), 'txt', E'tab\there', 'ü', 'ñ'),
       decode(md5(i::text), 'hex'),
       i * 1.001,
       case i % 50 when 0 then 'NaN'::float8 when 1 then 'Infinity' when 2 then '-Infinity' when 3 then '-0'::float8 else i / 7.0 end,
       (i / 3.0)::real,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 hour 1.000001 second',
       timestamp '1999-12-31 23:59:59.999999' + i * interval '1 day',
       date '2000-02-29' + i,
       case i % 6 when 0 then null when 1 then '' when 2 then E'tab\there\nnew line\\back' when 3 then 'emoji 🦀✨'
                  when 4 then 'trailing ' else 'plain ' || i end,
       case when i % 3 = 0 then null else i % 2 = 0 end,
       i * interval '1 minute 3 seconds',
       md5('u' || i)::uuid,
       md5('secret' || i)
  from generate_series(1, 2000) i;
create table S."MixedCase" ("Id" int primary key, "Value" text, "camelCol" int);
insert into S."MixedCase" select i, 'v' || i, i * 3 from generate_series(1, 300) i;
create table S.composite (tenant int, code text, qty int, primary key (tenant, code));
insert into S.composite select t, 'c-' || c, t * c from generate_series(1, 5) t, generate_series(1, 400) c;
create table S.texts (k text primary key, v text);
insert into S.texts select 'k-' || lpad(i::text, 4, '0'), 'value ' || i from generate_series(1, 1000) i;
create table S.nokey (a int, b text, c jsonb);
insert into S.nokey select i % 40, 'b' || (i % 40), jsonb_build_object('n', i % 40) from generate_series(1, 120) i;
create table S.serial_t (id serial primary key, v text);
insert into S.serial_t (v) select 'row ' || i from generate_series(1, 50) i;
create table S.typed (id int primary key, started timestamptz);
insert into S.typed select i, timestamptz '2023-06-01 12:00:00+02' + i * interval '7 minutes 0.5 seconds' from generate_series(1, 100) i;
create table S.icu (k text collate "und-x-icu" primary key, v int);
insert into S.icu select 'Key ' || i, i from generate_series(1, 500) i;
create table S.big (id int primary key, v text, n numeric);
insert into S.big select i, 'big ' || i, i / 3.0 from generate_series(1, 120000) i;
analyze S.awkward, S."MixedCase", S.composite, S.texts, S.nokey, S.serial_t, S.typed, S.icu, S.big;
"#;

fn lines(r: &VerifyReport) -> String {
    r.differences.join("\n")
}

#[track_caller]
fn has(r: &VerifyReport, parts: &[&str]) {
    assert!(
        r.differences
            .iter()
            .any(|l| parts.iter().all(|p| l.contains(p))),
        "no difference line contains all of {parts:?}; the lines were:\n{}",
        lines(r)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_pair_with_awkward_types_has_no_differences() {
    let p = Pair::new("vfy_clean").await;
    p.both(FIXTURE).await;
    let r = verify(&p.step(&ALL), &p.src, &p.tgt).await;
    assert!(
        r.ok,
        "expected no differences, got: {}\n{}\n{:#?}",
        r.summary,
        lines(&r),
        r.tables
    );
    assert!(
        r.differences.is_empty() && r.more_differences == 0,
        "{}",
        lines(&r)
    );
    assert!(!r.stopped_early);
    assert_eq!(r.tables.len(), 9, "{:#?}", r.tables);
    assert!(
        r.tables.iter().all(|t| t.ok && t.summary == "equal"),
        "{:#?}",
        r.tables
    );
    // every row of every table went through a checksum
    assert_eq!(
        r.rows_compared,
        2000 + 300 + 2000 + 1000 + 120 + 50 + 100 + 500 + 120_000
    );
    let awkward = r
        .tables
        .iter()
        .find(|t| t.table.ends_with(".awkward"))
        .expect("awkward");
    assert_eq!(awkward.counts.as_deref(), Some("2,000 = 2,000"));
    assert!(
        awkward
            .sample
            .as_deref()
            .is_some_and(|s| s.starts_with("300 rows")),
        "{awkward:?}"
    );
    let nokey = r
        .tables
        .iter()
        .find(|t| t.table.ends_with(".nokey"))
        .expect("nokey");
    assert_eq!(nokey.checksums.as_deref(), Some("equal (row hashes)"));
    // the report module renders this shape
    let v = serde_json::to_value(&r).expect("json");
    assert!(v["tables"]
        .as_array()
        .is_some_and(|t| t.iter().all(|x| x["table"].is_string())));
    assert!(v["differences"].is_array() && v["more_differences"] == 0 && v["ok"] == true);
    // the same pair cut into 1000-row chunks planned up front
    let r = verify_with(&p.step(&ALL), &p.src, &p.tgt, SMALL).await;
    assert!(
        r.ok,
        "small chunks: {}\n{}\n{:#?}",
        r.summary,
        lines(&r),
        r.tables
    );
    let big = r
        .tables
        .iter()
        .find(|t| t.table.ends_with(".big"))
        .expect("big");
    assert_eq!(
        big.checksums.as_deref(),
        Some("120 chunks equal"),
        "{big:?}"
    );
    let r = verify_with(&p.step(&ALL), &p.src, &p.tgt, COARSE).await;
    assert!(r.ok, "coarse chunks: {}\n{}", r.summary, lines(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_differences_are_each_named_by_key_and_column() {
    let p = Pair::new("vfy_diff").await;
    p.both(FIXTURE).await;
    p.target(
        r#"
        update S.awkward set doc = jsonb_set(doc, '{i}', '999') where id = 17;
        delete from S.awkward where id in (5, 1500);
        insert into S.awkward (id, note) overriding system value values (100000, 'extra row');
        update S.awkward set note = '' where id = 30;
        update S.awkward set at_tz = at_tz + interval '1 microsecond' where id = 40;
        update S.awkward set password_hash = 'x' where id = 41;
        update S.texts set v = v || ' ' where k = 'k-0007';
        update S.composite set qty = qty + 1 where tenant = 2 and code = 'c-3';
        update S.nokey set b = 'changed' where a = 12;
        update S."MixedCase" set "Value" = 'V' where "Id" = 9;
        update S.icu set v = -1 where k = 'Key 77';
        update S.big set v = 'BIG' where id = 77777;
        delete from S.big where id between 1000 and 1002;
        alter table S.typed alter column started type timestamp using started at time zone 'UTC';
        drop index S.awkward_born_idx;
        select setval('S.serial_t_id_seq', 1);
        "#,
    )
    .await;
    let r = verify(&p.step(&ALL), &p.src, &p.tgt).await;
    injected_found(&r, &p.schema);
    let r = verify_with(&p.step(&ALL), &p.src, &p.tgt, SMALL).await;
    injected_found(&r, &p.schema);
    let r = verify_with(&p.step(&ALL), &p.src, &p.tgt, COARSE).await;
    injected_found(&r, &p.schema);
}

/// Every difference `injected_differences_are_each_named_by_key_and_column` makes.
fn injected_found(r: &VerifyReport, s: &str) {
    assert!(!r.ok, "{}", r.summary);
    has(r, &[&format!("{s}.awkward (id=17): changed: doc")]);
    has(r, &[&format!("{s}.awkward (id=5): missing on target")]);
    has(r, &[&format!("{s}.awkward (id=1500): missing on target")]);
    has(r, &[&format!("{s}.awkward (id=100000): extra on target")]);
    has(
        r,
        &[&format!(
            "{s}.awkward (id=30): changed: note NULL on source, \"\" on target"
        )],
    );
    has(r, &[&format!("{s}.awkward (id=40): changed: at_tz \"2024-01-02 16:00:40.00004+00\" on source, \"2024-01-02 16:00:40.000041+00\" on target")]);
    has(r, &[&format!("{s}.awkward (id=41): changed: password_hash <redacted> on source, <redacted> on target")]);
    has(
        r,
        &[&format!(
            "{s}.texts (k=\"k-0007\"): changed: v \"value 7\" on source, \"value 7 \" on target"
        )],
    );
    has(
        r,
        &[&format!(
            "{s}.composite (tenant=2, code=\"c-3\"): changed: qty 6 on source, 7 on target"
        )],
    );
    has(
        r,
        &[
            &format!("{s}.nokey (no key): row (12, \"b12\""),
            "3× on source, 0× on target",
        ],
    );
    has(
        r,
        &[
            &format!("{s}.nokey (no key): row (12, \"changed\""),
            "0× on source, 3× on target",
        ],
    );
    has(
        r,
        &[&format!(
            "{s}.MixedCase (Id=9): changed: Value \"v9\" on source, \"V\" on target"
        )],
    );
    has(
        r,
        &[&format!(
            "{s}.icu (k=\"Key 77\"): changed: v 77 on source, -1 on target"
        )],
    );
    has(
        r,
        &[&format!(
            "{s}.big (id=77777): changed: v \"big 77777\" on source, \"BIG\" on target"
        )],
    );
    has(r, &[&format!("{s}.big (id=1001): missing on target")]);
    has(
        r,
        &[&format!(
            "{s}.typed.started: timestamptz on source, timestamp on target"
        )],
    );
    has(
        r,
        &[&format!(
            "{s}.awkward: index awkward_born_idx missing on target"
        )],
    );
    has(
        r,
        &[&format!(
            "sequence {s}.serial_t_id_seq on target is behind the data: next value 2, max(id) = 50"
        )],
    );
    has(
        r,
        &[&format!("{s}.awkward: 2000 rows on source, 1999 on target")],
    );
    // the type change alone changes no data (timestamps compare in UTC)
    assert!(
        !r.differences
            .iter()
            .any(|l| l.starts_with(&format!("{s}.typed ("))),
        "{}",
        lines(r)
    );
    // no secret value is ever shown
    assert!(!lines(r).contains("password_hash \""), "{}", lines(r));
    let big = r
        .tables
        .iter()
        .find(|t| t.table.ends_with(".big"))
        .expect("big");
    assert!(
        big.checksums
            .as_deref()
            .is_some_and(|c| c.contains("3 missing, 1 changed")),
        "{big:?}"
    );
    assert!(r.summary.contains("differences in"), "{}", r.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_streaming_standby_serves_as_a_read_only_source() {
    let p = Pair::new("vfy_standby").await;
    p.both(FIXTURE).await;
    let standby = rig_var("FERRY_TEST_PG_STANDBY");
    // wait for the standby to replay the fixture
    let marker = format!("select count(*) from {}.big", p.schema);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n: Option<i64> = match PgConnection::connect(&standby).await {
            Ok(mut c) => sqlx::query_scalar(&marker).fetch_one(&mut c).await.ok(),
            Err(_) => None,
        };
        if n == Some(120_000) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the standby did not replay the fixture within 60s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = verify(&p.step(&ALL), &standby, &p.tgt).await;
    assert!(r.ok, "standby vs target: {}\n{}", r.summary, lines(&r));
    p.target("update S.texts set v = 'changed' where k = 'k-0500'")
        .await;
    let r = verify(&p.step(&[Check::Checksums]), &standby, &p.tgt).await;
    has(
        &r,
        &[&format!(
            "{}.texts (k=\"k-0500\"): changed: v \"value 500\" on source, \"changed\" on target",
            p.schema
        )],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_diffs_caps_the_list_and_counts_the_rest() {
    let p = Pair::new("vfy_cap").await;
    p.both("create table S.t (id int primary key, v text); insert into S.t select i, 'v' || i from generate_series(1, 500) i;")
        .await;
    p.target(
        "delete from S.t where id <= 30; update S.t set v = 'x' where id between 100 and 104;",
    )
    .await;
    let mut step = p.step(&[Check::Counts, Check::Checksums]);
    step.max_diffs = 10;
    let r = verify(&step, &p.src, &p.tgt).await;
    assert_eq!(r.differences.len(), 10, "{}", lines(&r));
    // 30 missing + 5 changed rows + the count
    assert_eq!(
        r.differences.len() as u64 + r.more_differences,
        36,
        "{}",
        r.summary
    );
    assert!(
        r.summary.starts_with("36 differences in 1 of 1 tables"),
        "{}",
        r.summary
    );
    let t = &r.tables[0];
    assert_eq!(t.differences, 36);
    assert!(
        t.checksums
            .as_deref()
            .is_some_and(|c| c.contains("30 missing, 5 changed")),
        "{t:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_limit_stops_early_and_says_so() {
    let p = Pair::new("vfy_limit").await;
    p.both("create table S.t (id int primary key, v text); insert into S.t select i, md5(i::text) from generate_series(1, 300000) i;")
        .await;
    let mut step = p.step(&ALL);
    step.time_limit = Some(Duration::from_millis(1));
    let r = verify(&step, &p.src, &p.tgt).await;
    assert!(r.stopped_early && !r.ok, "{r:#?}");
    assert!(
        r.summary.contains("stopped at the time limit"),
        "{}",
        r.summary
    );
    assert!(r.summary.contains("NOT verified"), "{}", r.summary);
}

// ---------------------------------------------------------------------------------------------
// End to end: `ferry run --headless --yes`
// ---------------------------------------------------------------------------------------------

#[test]
fn a_headless_run_whose_verify_finds_a_difference_exits_1_and_journals_the_row() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let p = rt.block_on(async {
        let p = Pair::new("vfy_e2e").await;
        p.both("create table S.users (id bigint primary key, email text); \
                insert into S.users select i, 'u' || i || '@example.com' from generate_series(1, 1000) i;")
            .await;
        p.target("update S.users set email = 'wrong@example.com' where id = 421").await;
        p
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let runbook = format!(
        "[runbook]\nname = \"verify-e2e\"\nformat = 1\n\n\
         [connections.src]\nurl = \"${{env:SRC_URL}}\"\n[connections.dst]\nurl = \"${{env:DST_URL}}\"\n\n\
         [[phase]]\nid = \"p\"\n\n  [[phase.step]]\n  id = \"verify\"\n  kind = \"verify\"\n  \
         source = \"src\"\n  target = \"dst\"\n  tables = [\"{}.*\"]\n  timeout = \"60s\"\n",
        p.schema
    );
    std::fs::write(dir.path().join("runbook.toml"), runbook).expect("write runbook");
    let journal = dir.path().join("journal.jsonl");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(dir.path())
        .args(["run", "runbook.toml", "--headless", "--yes", "--journal"])
        .arg(&journal)
        .env("SRC_URL", &p.src)
        .env("DST_URL", &p.tgt)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run ferry");
    let show = format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{show}");
    let want = format!("{}.users (id=421): changed: email", p.schema);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&want),
        "stdout names the row\n{show}"
    );
    assert!(
        !show.contains("ferry-test-secret-pw"),
        "the password leaked\n{show}"
    );
    let text = std::fs::read_to_string(&journal).expect("journal");
    let result: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["entry"]["kind"] == "result")
        .collect();
    assert_eq!(result.len(), 1, "one result entry\n{text}");
    let data = &result[0]["entry"]["data"];
    assert_eq!(data["ok"], false);
    assert!(
        data["differences"].as_array().is_some_and(|d| d
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.contains(&want)))),
        "the journaled result names the row: {data}"
    );
}
