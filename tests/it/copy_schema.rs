//! The copy engine against target schemas that differ from the source's, on the
//! rig's real PostgreSQL (a fresh database on the primary and one on the target
//! cluster per test, dropped afterwards): what the operator is told, and what
//! happens to sequences the catalogs tie to a table in other ways than ownership.
//! Tests fail, never skip, when the rig's variables are unset.

use ferry_core::copy::{self, CopyError, CopyFormat, CopyReport, Hooks};
use ferry_core::db::Db;
use ferry_core::runbook::CopyStep;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

use crate::support;
use support::pg::{exec, rig_var, scalar, DbPair as Pair};

impl Pair {
    async fn copy(
        &self,
        step_id: &str,
        tables: &[&str],
    ) -> (Result<CopyReport, CopyError>, Vec<String>) {
        self.copy_to(&self.tgt_url, step_id, tables, 2).await
    }

    /// Copy into `tgt_url` (this pair's target database, perhaps as another user).
    async fn copy_to(
        &self,
        tgt_url: &str,
        step_id: &str,
        tables: &[&str],
        parallel: u32,
    ) -> (Result<CopyReport, CopyError>, Vec<String>) {
        let s = Db::Pg(PgPool::connect(&self.src_url).await.expect("source pool"));
        let t = Db::Pg(PgPool::connect(tgt_url).await.expect("target pool"));
        let step = CopyStep {
            from: "source".into(),
            to: "target".into(),
            tables: tables.iter().map(|s| s.to_string()).collect(),
            exclude: vec![],
            chunk_rows: 100,
            parallel,
            throttle: None,
            truncate: false,
            zero_dates: Default::default(),
            filters: BTreeMap::new(),
        };
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        let hooks = Hooks {
            cancel: CancellationToken::new(),
            progress: Arc::new(|_| {}),
            info: Arc::new(move |s| l.lock().expect("lock").push(s)),
            throttle: None,
            run: None,
        };
        let r = copy::run_with(step_id, &step, &s, &t, hooks, CopyFormat::BinaryWhereSafe).await;
        let seen = lines.lock().expect("lock").clone();
        (r, seen)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_type_that_cannot_hold_the_values_is_named_with_what_to_do() {
    let pair = Pair::new("copy_types").await;
    exec(
        &pair.src_url,
        "create schema shop; create table shop.price (id int primary key, amount numeric(12,2), label text); \
         insert into shop.price select i, i / 4.0, 'p' || i from generate_series(1, 300) i",
    )
    .await;
    exec(
        &pair.tgt_url,
        "create schema shop; create table shop.price (id int primary key, amount integer, label varchar(10))",
    )
    .await;
    let (r, info) = pair.copy("c", &["shop.*"]).await;
    let said = info.join("\n");
    assert!(
        said.contains("shop.price")
            && said.contains("amount numeric(12,2) → integer")
            && said.contains("label text → character varying(10)"),
        "the type differences are announced before the copy:\n{said}"
    );
    match r {
        Err(CopyError::Failed(msg)) => {
            assert!(
                msg.contains("table shop.price chunk [")
                    && msg.contains("column amount")
                    && msg.contains("amount numeric(12,2) → integer")
                    && msg.contains("change the target column"),
                "the failure names the table, chunk, column, both types and what to do: {msg}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_target_column_says_what_to_do() {
    let pair = Pair::new("copy_nocol").await;
    exec(
        &pair.src_url,
        "create table t (id int primary key, \"Note\" text)",
    )
    .await;
    exec(&pair.tgt_url, "create table t (id int primary key)").await;
    let (r, _) = pair.copy("c", &["public.t"]).await;
    match r {
        Err(CopyError::Failed(msg)) => assert!(
            msg.contains("public.t") && msg.contains("\"Note\"") && msg.contains("add the column"),
            "{msg}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        scalar(&pair.tgt_url, "select count(*)::text from t").await,
        "0"
    );
}

/// A sequence made on its own and named by column defaults (`nextval('S.global_id')`,
/// shared by two tables, as ORMs and hand-written schemas do) must follow the data
/// like an owned one: after the copy the target's next value collides with no row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_named_by_column_defaults_follows_the_data() {
    let pair = Pair::new("copy_sharedseq").await;
    let ddl = "create schema app; create sequence app.global_id; \
               create table app.a (id bigint primary key default nextval('app.global_id'), v text); \
               create table app.b (id bigint primary key default nextval('app.global_id'), v text);";
    exec(&pair.src_url, ddl).await;
    exec(&pair.tgt_url, ddl).await;
    exec(
        &pair.src_url,
        "insert into app.a (v) select 'a' || i from generate_series(1, 120) i; \
         insert into app.b (v) select 'b' || i from generate_series(1, 30) i;",
    )
    .await;
    let (r, info) = pair.copy("c", &["app.*"]).await;
    let report = r.unwrap_or_else(|e| panic!("copy failed: {e}"));
    assert!(
        !report.sequences.is_empty(),
        "the shared sequence is reset: {info:?}"
    );
    let next = scalar(&pair.tgt_url, "select nextval('app.global_id')::text").await;
    assert_eq!(
        next, "151",
        "the next id follows the source's sequence: {info:?}"
    );

    // Without a sequence on the source, the target's shared sequence follows the
    // largest copied table, whatever order the tables are reset in.
    let plain = "create schema plain; \
                 create table plain.a (id bigint primary key, v text); \
                 create table plain.b (id bigint primary key, v text);";
    exec(&pair.src_url, plain).await;
    exec(
        &pair.tgt_url,
        "create schema plain; create sequence plain.global_id; \
         create table plain.a (id bigint primary key default nextval('plain.global_id'), v text); \
         create table plain.b (id bigint primary key default nextval('plain.global_id'), v text);",
    )
    .await;
    exec(
        &pair.src_url,
        "insert into plain.a select i, 'a' from generate_series(1, 500) i; \
         insert into plain.b select i, 'b' from generate_series(1, 40) i;",
    )
    .await;
    let (r, info) = pair.copy("c2", &["plain.*"]).await;
    r.unwrap_or_else(|e| panic!("copy failed: {e}"));
    let next = scalar(&pair.tgt_url, "select nextval('plain.global_id')::text").await;
    assert_eq!(
        next, "501",
        "the next id is past every copied row: {info:?}"
    );
}

/// Without the replica role (not a superuser), foreign keys are checked as rows
/// load. A table that references itself (a tree: comments and their parents) loaded
/// by parallel workers failed as soon as a child's chunk committed before its
/// parent's; its chunks now load one at a time in key order, and the copy says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_self_referencing_table_copies_without_superuser() {
    let pair = Pair::new("copy_selfref").await;
    let role = format!("{}_copier", pair.name);
    let ddl =
        "create table comment (id int primary key, parent int references comment(id), body text)";
    exec(&pair.src_url, ddl).await;
    exec(
        &pair.src_url,
        "insert into comment select i, case when i > 1 then i / 2 end, 'c' || i from generate_series(1, 3000) i",
    )
    .await;
    let admin = rig_var("FERRY_TEST_PG_TARGET");
    exec(
        &admin,
        &format!(
            "create role {role} login password 'pw-{role}'; alter database {} owner to {role}",
            pair.name
        ),
    )
    .await;
    let user_url = pair.tgt_url.replacen(
        "ferry:ferry-test-secret-pw@",
        &format!("{role}:pw-{role}@"),
        1,
    );
    assert_ne!(user_url, pair.tgt_url, "the rig URL has the expected user");
    exec(&user_url, ddl).await;
    let (r, info) = pair.copy_to(&user_url, "c", &["public.comment"], 4).await;
    let outcome = match &r {
        Ok(report) => format!("ok, replica role {}", report.replica_role),
        Err(e) => e.to_string(),
    };
    let same = scalar(
        &pair.src_url,
        "select md5(string_agg(t::text, '|' order by id)) from comment t",
    )
    .await
        == scalar(
            &user_url,
            "select md5(string_agg(t::text, '|' order by id)) from comment t",
        )
        .await;
    // Drop the database before the role, whatever happened.
    exec(
        &admin,
        &format!("drop database if exists {} with (force)", pair.name),
    )
    .await;
    exec(&admin, &format!("drop role if exists {role}")).await;
    assert!(
        r.is_ok(),
        "the copy as a plain user failed: {outcome}\n{info:#?}"
    );
    assert!(same, "the copied tree differs from the source");
    assert!(
        info.iter()
            .any(|l| l.contains("public.comment") && l.contains("references itself")),
        "the copy says how it loads the table: {info:#?}"
    );
}

/// A source role without BYPASSRLS reading a table under a row-level security policy
/// saw only its own rows: the copy moved half the table and reported success (the
/// row count check compares what was sent with what loaded, both filtered). With
/// `row_security = off` the server refuses instead, and the copy says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_security_policy_that_hides_rows_is_an_error_not_a_partial_copy() {
    let pair = Pair::new("copy_rls").await;
    let role = format!("{}_reader", pair.name);
    let ddl = "create table ledger (id int primary key, owner text, amount int)";
    exec(&pair.src_url, ddl).await;
    exec(&pair.tgt_url, ddl).await;
    exec(
        &pair.src_url,
        &format!(
            "insert into ledger select i, case when i % 2 = 0 then '{role}' else 'other' end, i \
               from generate_series(1, 200) i; \
             alter table ledger enable row level security; \
             create policy own on ledger using (owner = current_user); \
             create role {role} login password 'pw-{role}'; grant select on ledger to {role}"
        ),
    )
    .await;
    let reader_url = pair.src_url.replacen(
        "ferry:ferry-test-secret-pw@",
        &format!("{role}:pw-{role}@"),
        1,
    );
    assert_ne!(
        reader_url, pair.src_url,
        "the rig URL has the expected user"
    );
    let s = Db::Pg(PgPool::connect(&reader_url).await.expect("source pool"));
    let t = Db::Pg(PgPool::connect(&pair.tgt_url).await.expect("target pool"));
    let step = CopyStep {
        from: "source".into(),
        to: "target".into(),
        tables: vec!["public.ledger".into()],
        exclude: vec![],
        chunk_rows: 1000,
        parallel: 1,
        throttle: None,
        truncate: false,
        zero_dates: Default::default(),
        filters: BTreeMap::new(),
    };
    let hooks = Hooks {
        cancel: CancellationToken::new(),
        progress: Arc::new(|_| {}),
        info: Arc::new(|_| {}),
        throttle: None,
        run: None,
    };
    let r = copy::run_with("c", &step, &s, &t, hooks, CopyFormat::BinaryWhereSafe).await;
    let loaded = scalar(&pair.tgt_url, "select count(*)::text from ledger").await;
    let admin = rig_var("FERRY_TEST_PG_PRIMARY");
    exec(
        &admin,
        &format!("drop database if exists {} with (force)", pair.name),
    )
    .await;
    exec(&admin, &format!("drop role if exists {role}")).await;
    match r {
        Err(CopyError::Failed(msg)) => assert!(
            msg.contains("public.ledger")
                && msg.contains("row-level security")
                && msg.contains("BYPASSRLS"),
            "the refusal names the table and the cause: {msg}"
        ),
        other => panic!("expected a refusal, got {other:?} with {loaded} of 200 rows loaded"),
    }
    assert_eq!(loaded, "0", "nothing of the table is loaded");
}
