//! The verification engine's generic path (values read, normalised and hashed by
//! ferry): SQLite ↔ SQLite, and SQLite ↔ PostgreSQL in both directions, where the
//! same data is spelled differently by each engine (booleans 0/1 vs `t`/`f`,
//! timestamps `T…Z` vs `… +00`, `2.5` vs `2.50`, JSON key order, blobs vs `bytea`).
//! The data is written by the test itself on each side, never by ferry's copy. The
//! PostgreSQL tests use a database of their own on the rig's target cluster and fail,
//! never skip, when the rig's variables are unset.

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use ferry_core::db::Db;
use ferry_core::runbook::{Check, VerifyStep};
use ferry_core::verify::{self, Hooks, VerifyReport};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::PgPool;
use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const ROWS: i64 = 700;
const ALL: [Check; 4] = [
    Check::Schema,
    Check::Counts,
    Check::Checksums,
    Check::Sample,
];

use crate::support;
use support::pg::TestDb;

fn hooks() -> Hooks {
    Hooks {
        cancel: CancellationToken::new(),
        progress: Arc::new(|_| {}),
        info: Arc::new(|_| {}),
    }
}

fn step(tables: &str, checks: &[Check]) -> VerifyStep {
    VerifyStep {
        source: "source".into(),
        target: "target".into(),
        tables: vec![tables.into()],
        exclude: vec![],
        checks: checks.to_vec(),
        sample: 200,
        max_diffs: 100,
        time_limit: None,
        zero_dates: Default::default(),
    }
}

async fn run(step: &VerifyStep, s: &Db, t: &Db) -> VerifyReport {
    verify::run(step, s, t, hooks())
        .await
        .unwrap_or_else(|e| panic!("verify failed to run: {e}"))
}

#[track_caller]
fn has(r: &VerifyReport, want: &str) {
    assert!(
        r.differences.iter().any(|l| l.contains(want)),
        "no difference line contains {want:?}; the lines were:\n{}",
        r.differences.join("\n")
    );
}

/// One row of the shared data set.
struct Row {
    id: i64,
    email: String,
    score: f64,
    avatar: Vec<u8>,
    active: bool,
    created: DateTime<Utc>,
    amount: f64,
    note: Option<String>,
}

fn data() -> Vec<Row> {
    let t0 = Utc
        .with_ymd_and_hms(2024, 1, 1, 10, 0, 0)
        .single()
        .expect("a time");
    (1..=ROWS)
        .map(|i| Row {
            id: i,
            email: format!("u{i}@example.com"),
            score: i as f64 / 7.0,
            avatar: (i as u32).to_be_bytes().to_vec(),
            active: i % 2 == 0,
            created: t0 + ChronoDuration::milliseconds(i * 1250),
            amount: i as f64 * 1.25,
            note: match i % 5 {
                0 => None,
                1 => Some(String::new()),
                2 => Some(format!("tab\there {i} 🦀")),
                _ => Some(format!("note {i}")),
            },
        })
        .collect()
}

async fn sqlite_db(path: &Path) -> SqlitePool {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await
        .expect("open the SQLite file");
    sqlx::raw_sql(
        "pragma journal_mode = wal; \
         create table users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, score REAL, avatar BLOB, \
           active INTEGER, created TEXT, amount NUMERIC, doc TEXT, note TEXT); \
         create table tags (user_id INTEGER NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (user_id, tag)) WITHOUT ROWID; \
         create table events (kind TEXT, n INTEGER); \
         create index users_email_idx on users (email);",
    )
    .execute(&pool)
    .await
    .expect("SQLite schema");
    let mut tx = pool.begin().await.expect("begin");
    for r in data() {
        sqlx::query("insert into users values (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(r.id)
            .bind(&r.email)
            .bind(r.score)
            .bind(&r.avatar)
            .bind(r.active as i64)
            .bind(r.created.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .bind(r.amount)
            .bind(format!("{{\"b\":{},\"a\":\"x\"}}", r.id))
            .bind(&r.note)
            .execute(&mut *tx)
            .await
            .expect("insert user");
        sqlx::query("insert or ignore into tags values (?, ?), (?, ?)")
            .bind(r.id)
            .bind("t1")
            .bind(r.id)
            .bind(format!("t{}", r.id % 3))
            .execute(&mut *tx)
            .await
            .expect("insert tags");
        sqlx::query("insert into events values (?, ?)")
            .bind(if r.id % 2 == 0 { "login" } else { "view" })
            .bind(r.id % 10)
            .execute(&mut *tx)
            .await
            .expect("insert event");
    }
    tx.commit().await.expect("commit");
    pool
}

async fn pg_fill(pool: &PgPool) {
    sqlx::raw_sql(
        "create table users (id bigint primary key, email text not null, score float8, avatar bytea, \
           active boolean, created timestamptz, amount numeric(10,2), doc jsonb, note text); \
         create table tags (user_id bigint not null, tag text not null, primary key (user_id, tag)); \
         create table events (kind text, n bigint); \
         create index users_email_idx on users (email);",
    )
    .execute(pool)
    .await
    .expect("PostgreSQL schema");
    let mut tx = pool.begin().await.expect("begin");
    for r in data() {
        sqlx::query(
            "insert into users values ($1, $2, $3, $4, $5, $6, $7::numeric, $8::jsonb, $9)",
        )
        .bind(r.id)
        .bind(&r.email)
        .bind(r.score)
        .bind(&r.avatar)
        .bind(r.active)
        .bind(r.created)
        .bind(format!("{:.2}", r.amount))
        .bind(format!("{{\"b\": {}, \"a\": \"x\"}}", r.id))
        .bind(&r.note)
        .execute(&mut *tx)
        .await
        .expect("insert user");
        sqlx::query("insert into tags values ($1, 't1'), ($1, $2) on conflict do nothing")
            .bind(r.id)
            .bind(format!("t{}", r.id % 3))
            .execute(&mut *tx)
            .await
            .expect("insert tags");
        sqlx::query("insert into events values ($1, $2)")
            .bind(if r.id % 2 == 0 { "login" } else { "view" })
            .bind(r.id % 10)
            .execute(&mut *tx)
            .await
            .expect("insert event");
    }
    tx.commit().await.expect("commit");
    sqlx::raw_sql("analyze")
        .execute(pool)
        .await
        .expect("analyze");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_against_sqlite_passes_then_names_one_changed_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = sqlite_db(&dir.path().join("a.db")).await;
    let b = sqlite_db(&dir.path().join("b.db")).await;
    let (sa, sb) = (Db::Sqlite(a), Db::Sqlite(b.clone()));
    let r = run(&step("main.*", &ALL), &sa, &sb).await;
    assert!(
        r.ok,
        "{}\n{}\n{:#?}",
        r.summary,
        r.differences.join("\n"),
        r.tables
    );
    let tags = ROWS + (1..=ROWS).filter(|i| i % 3 != 1).count() as i64;
    assert_eq!(
        r.rows_compared as i64,
        ROWS + tags + ROWS,
        "{:#?}",
        r.tables
    );
    sqlx::raw_sql("update users set email = 'changed' where id = 42; update events set n = 99 where rowid = 5")
        .execute(&b)
        .await
        .expect("change b");
    let r = run(&step("main.*", &[Check::Checksums]), &sa, &sb).await;
    assert!(!r.ok);
    has(
        &r,
        "main.users (id=42): changed: email \"u42@example.com\" on source, \"changed\" on target",
    );
    has(
        &r,
        "main.events (no key): row (\"view\", 99) 0× on source, 1× on target",
    );
    has(
        &r,
        "main.events (no key): row (\"view\", 5) 70× on source, 69× on target",
    );
    assert_eq!(r.differences.len(), 3, "{}", r.differences.join("\n"));
}

/// A database of its own on the target cluster (dropped afterwards), and a pool on it.
async fn pg_db() -> (TestDb, PgPool) {
    let db = TestDb::new("FERRY_TEST_PG_TARGET", "vfy_lite").await;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&db.url)
        .await
        .expect("pool");
    (db, pool)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_with_the_same_data_compare_equal_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lite = sqlite_db(&dir.path().join("lite.db")).await;
    let (_db, pg) = pg_db().await;
    pg_fill(&pg).await;
    let (l, p) = (Db::Sqlite(lite.clone()), Db::Pg(pg.clone()));

    let r = run(&step("public.*", &ALL), &p, &l).await;
    assert!(
        r.ok,
        "PostgreSQL → SQLite: {}\n{}\n{:#?}",
        r.summary,
        r.differences.join("\n"),
        r.tables
    );
    let r = run(&step("main.*", &ALL), &l, &p).await;
    assert!(
        r.ok,
        "SQLite → PostgreSQL: {}\n{}\n{:#?}",
        r.summary,
        r.differences.join("\n"),
        r.tables
    );

    sqlx::raw_sql("update users set score = 1.5 where id = 42; delete from tags where user_id = 7 and tag = 't1'")
        .execute(&lite)
        .await
        .expect("change the SQLite side");
    let r = run(
        &step(
            "public.*",
            &[Check::Counts, Check::Checksums, Check::Sample],
        ),
        &p,
        &l,
    )
    .await;
    assert!(!r.ok);
    has(
        &r,
        "public.users (id=42): changed: score 6 on source, 1.5 on target",
    );
    has(&r, "public.tags (user_id=7, tag=\"t1\"): missing on target");
    let r = run(&step("main.*", &[Check::Checksums]), &l, &p).await;
    has(
        &r,
        "main.users (id=42): changed: score 1.5 on source, 6 on target",
    );
    has(&r, "main.tags (user_id=7, tag=\"t1\"): extra on target");
}
