//! The verifier on corners the main suite does not reach, against the rig's real
//! PostgreSQL (a fresh schema on the primary and on the target per test, dropped
//! afterwards): values whose stored text differs from what every client sees, and
//! schema differences beyond columns and constraints. Tests fail, never skip, when
//! the rig's variables are unset.

use ferry_core::copy::{self, CopyFormat};
use ferry_core::db::Db;
use ferry_core::runbook::{Check, CopyStep, VerifyStep};
use ferry_core::verify::{self, Hooks, VerifyReport};
use sqlx::postgres::PgPoolOptions;

use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::support;
use support::pg::{cleanup, exec, rig_var};

/// A schema made on the primary and the target for one test; dropped at the end.
struct Pair {
    schema: String,
    src: String,
    tgt: String,
}

impl Pair {
    async fn new(prefix: &str) -> Pair {
        let schema = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            chrono::Utc::now().timestamp_micros() % 1_000_000_000
        );
        let (src, tgt) = (
            rig_var("FERRY_TEST_PG_PRIMARY"),
            rig_var("FERRY_TEST_PG_TARGET"),
        );
        for url in [&src, &tgt] {
            exec(url, &format!("create schema {schema}")).await;
        }
        Pair { schema, src, tgt }
    }

    fn sql(&self, sql: &str) -> String {
        sql.replace("S.", &format!("{}.", self.schema))
    }

    async fn source(&self, sql: &str) {
        exec(&self.src, &self.sql(sql)).await;
    }

    async fn target(&self, sql: &str) {
        exec(&self.tgt, &self.sql(sql)).await;
    }

    async fn pools(&self) -> (Db, Db) {
        let pool = |url: String| async move {
            Db::Pg(
                PgPoolOptions::new()
                    .max_connections(4)
                    .connect(&url)
                    .await
                    .unwrap_or_else(|e| panic!("pool: {e}")),
            )
        };
        (pool(self.src.clone()).await, pool(self.tgt.clone()).await)
    }

    async fn copy(&self) {
        let (s, t) = self.pools().await;
        let step = CopyStep {
            from: "source".into(),
            to: "target".into(),
            tables: vec![format!("{}.*", self.schema)],
            exclude: vec![],
            chunk_rows: 1000,
            parallel: 2,
            throttle: None,
            truncate: false,
            zero_dates: Default::default(),
            filters: BTreeMap::new(),
        };
        let hooks = copy::Hooks {
            cancel: CancellationToken::new(),
            progress: Arc::new(|_| {}),
            info: Arc::new(|_| {}),
            throttle: None,
            run: None,
        };
        copy::run_with("copy", &step, &s, &t, hooks, CopyFormat::BinaryWhereSafe)
            .await
            .unwrap_or_else(|e| panic!("copy failed: {e}"));
    }

    async fn verify(&self, checks: &[Check]) -> VerifyReport {
        let (s, t) = self.pools().await;
        let step = VerifyStep {
            source: "source".into(),
            target: "target".into(),
            tables: vec![format!("{}.*", self.schema)],
            exclude: vec![],
            checks: checks.to_vec(),
            sample: 100,
            max_diffs: 100,
            time_limit: None,
            zero_dates: Default::default(),
        };
        let hooks = Hooks {
            cancel: CancellationToken::new(),
            progress: Arc::new(|_| {}),
            info: Arc::new(|_| {}),
        };
        verify::run(&step, &s, &t, hooks)
            .await
            .unwrap_or_else(|e| panic!("verify failed to run: {e}"))
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

const ALL: [Check; 4] = [
    Check::Schema,
    Check::Counts,
    Check::Checksums,
    Check::Sample,
];

/// `xml::text` keeps an `<?xml version="1.0"?>` declaration that xml's output function
/// (what COPY, pg_dump and every client see) leaves out. An exact copy of such a
/// value must verify clean, and a real change in it must still be named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xml_with_a_declaration_verifies_clean_after_a_copy() {
    let pair = Pair::new("vedge_xml").await;
    let ddl = "create table S.docs (id int primary key, body xml, note text)";
    pair.source(ddl).await;
    pair.target(ddl).await;
    pair.source(
        "insert into S.docs values (1, '<?xml version=\"1.0\"?><r a=\"1\"/>', 'decl'), \
         (2, '<r/>', 'plain'), (3, null, 'null'), (4, 'text <b>mixed</b> content', 'content')",
    )
    .await;
    pair.copy().await;
    let r = pair.verify(&ALL).await;
    assert!(
        r.ok && r.differences.is_empty(),
        "an exact copy must verify clean:\n{}",
        r.differences.join("\n")
    );
    pair.target("update S.docs set body = '<r a=\"2\"/>' where id = 1")
        .await;
    let r = pair.verify(&ALL).await;
    assert!(!r.ok, "a changed xml value must fail the verification");
    assert!(
        r.differences
            .iter()
            .any(|l| l.contains("(id=1)") && l.contains("body") && l.contains("a=\\\"2\\\"")),
        "the changed row is named with both values:\n{}",
        r.differences.join("\n")
    );
}

/// A table partitioned on the source but plain on the target holds the same rows,
/// but it is not the schema the migration planned: the schema check says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioning_that_differs_is_a_schema_difference() {
    let pair = Pair::new("vedge_part").await;
    pair.source(
        "create table S.ev (id bigint, at date, primary key (id, at)) partition by range (at); \
         create table S.ev_2024 partition of S.ev for values from ('2024-01-01') to ('2025-01-01'); \
         insert into S.ev select i, date '2024-01-01' + i % 300 from generate_series(1, 500) i",
    )
    .await;
    pair.target("create table S.ev (id bigint, at date, primary key (id, at))")
        .await;
    pair.copy().await;
    let r = pair.verify(&ALL).await;
    assert!(!r.ok, "{}", r.differences.join("\n"));
    assert!(
        r.differences
            .iter()
            .any(|l| l
                .contains(".ev: partitioned by RANGE (at) on source, not partitioned on target")),
        "the partitioning difference is named:\n{}",
        r.differences.join("\n")
    );
    assert_eq!(
        r.differences.len(),
        1,
        "the rows are the same: only the schema differs:\n{}",
        r.differences.join("\n")
    );
}

/// A sequence named by column defaults rather than owned by a column is checked like
/// an owned one: behind the data on the target is a difference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_sequence_behind_the_data_is_named() {
    let pair = Pair::new("vedge_seq").await;
    let ddl = "create sequence S.global_id; \
               create table S.a (id bigint primary key default nextval('S.global_id'), v text); \
               create table S.b (id bigint primary key default nextval('S.global_id'), v text)";
    pair.source(ddl).await;
    pair.target(ddl).await;
    let data = "insert into S.a (v) select 'a' || i from generate_series(1, 60) i; \
                insert into S.b (v) select 'b' || i from generate_series(1, 20) i";
    pair.source(data).await;
    pair.target(data).await;
    let r = pair.verify(&ALL).await;
    assert!(r.ok, "{}", r.differences.join("\n"));
    pair.target("select setval('S.global_id', 5)").await;
    let r = pair.verify(&[Check::Schema]).await;
    assert!(
        !r.ok,
        "a sequence behind the data must fail the verification"
    );
    assert!(
        r.differences
            .iter()
            .any(|l| l.contains(".b: sequence") && l.contains("global_id") && l.contains("behind")),
        "the sequence and its table are named:\n{}",
        r.differences.join("\n")
    );
}

/// A source role subject to a row-level security policy sees only some rows; a
/// verification that compared those (against a target holding just the same rows)
/// passed. With `row_security = off` the hidden rows make the comparison fail, named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_security_policy_that_hides_rows_fails_the_verification() {
    let pair = Pair::new("vedge_rls").await;
    let role = format!("{}_reader", pair.schema);
    pair.source(
        &format!(
            "create table S.ledger (id int primary key, owner text); \
         insert into S.ledger select i, case when i % 2 = 0 then '{role}' else 'other' end \
           from generate_series(1, 100) i; \
         alter table S.ledger enable row level security; \
         create policy own on S.ledger using (owner = current_user); \
         create role {role} login password 'pw-{role}'; \
         grant usage on schema S to {role}; grant select on S.ledger to {role}"
        )
        .replace("schema S ", &format!("schema {} ", pair.schema)),
    )
    .await;
    // The target holds exactly what the policy lets the role see.
    pair.target(&format!(
        "create table S.ledger (id int primary key, owner text); \
         insert into S.ledger select i, '{role}' from generate_series(2, 100, 2) i"
    ))
    .await;
    let reader = pair.src.replacen(
        "ferry:ferry-test-secret-pw@",
        &format!("{role}:pw-{role}@"),
        1,
    );
    assert_ne!(reader, pair.src, "the rig URL has the expected user");
    let s = Db::Pg(
        PgPoolOptions::new()
            .max_connections(4)
            .connect(&reader)
            .await
            .expect("reader pool"),
    );
    let (_, t) = pair.pools().await;
    let step = VerifyStep {
        source: "source".into(),
        target: "target".into(),
        tables: vec![format!("{}.*", pair.schema)],
        exclude: vec![],
        checks: vec![Check::Counts, Check::Checksums],
        sample: 10,
        max_diffs: 10,
        time_limit: None,
        zero_dates: Default::default(),
    };
    let hooks = Hooks {
        cancel: CancellationToken::new(),
        progress: Arc::new(|_| {}),
        info: Arc::new(|_| {}),
    };
    let r = verify::run(&step, &s, &t, hooks).await;
    drop(s);
    exec(
        &pair.src,
        &format!("drop schema {} cascade; drop role {role}", pair.schema),
    )
    .await;
    match r {
        Ok(report) => {
            assert!(!report.ok, "hidden rows must not verify clean");
            assert!(
                report
                    .differences
                    .iter()
                    .any(|l| l.contains("ledger") && l.contains("row-level security")),
                "the cause is named:\n{}",
                report.differences.join("\n")
            );
        }
        Err(e) => assert!(e.to_string().contains("row-level security"), "{e}"),
    }
}
