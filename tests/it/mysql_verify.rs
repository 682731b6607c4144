//! Verify MySQL → PostgreSQL against the rig's real MariaDB and its PostgreSQL target
//! cluster: the awkward dataset of `mysql_copy` (every row of docs/mysql.md's table
//! that MariaDB has) copied by ferry verifies clean, then rows changed, deleted and
//! inserted on the target are named by their keys (integer keys bisected by key
//! ranges, text keys under a case-insensitive collation paired by key); values
//! written independently on each side in different spellings (a DECIMAL(65,30)
//! against an unconstrained numeric, FLOAT and DOUBLE text, a TIMESTAMP written at
//! +05:00 against a timestamptz written at -05, CHAR padding, TIME against interval,
//! JSON key order, SET against text[]) are no difference, while a one-microsecond or
//! one-digit change is; unique keys compare by columns across engines; the
//! executor's verify step succeeds and fails on the same data; a MySQL target is
//! refused. Tests fail, never skip, when the rig's variables are unset.

use crate::mysql_copy::{run_copy, step as copy_step, MY_AWKWARD, PG_AWKWARD};
use crate::mysql_exec::Run;
use crate::support::mysql;
use crate::support::pg::TestDb;
use ferry_core::db::Db;
use ferry_core::runbook::{Check, VerifyStep, ZeroDates};
use ferry_core::verify::{self, Hooks, Tuning, VerifyError, VerifyReport};
use ferry_core::vocab::Outcome;
use sqlx::PgPool;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

const ALL: [Check; 4] = [
    Check::Schema,
    Check::Counts,
    Check::Checksums,
    Check::Sample,
];

/// Small chunks planned up front: many key ranges, each compared on its own.
const SMALL: Tuning = Tuning {
    chunk_rows: 500,
    whole_table_rows: 0,
};

fn vstep(my_db: &str, checks: &[Check]) -> VerifyStep {
    VerifyStep {
        source: "legacy".into(),
        target: "target".into(),
        tables: vec![format!("{my_db}.*")],
        exclude: vec![],
        checks: checks.to_vec(),
        sample: 300,
        max_diffs: 100,
        time_limit: None,
        zero_dates: ZeroDates::Fail,
    }
}

async fn mysql_db(db: &str) -> Db {
    Db::MySql(
        sqlx::MySqlPool::connect_with(
            ferry_core::db::mysql::options(&mysql::url_with(db)).expect("options"),
        )
        .await
        .expect("mysql pool"),
    )
}

async fn run(
    my_db: &str,
    pg_url: &str,
    st: &VerifyStep,
    tuning: Tuning,
) -> (Result<VerifyReport, VerifyError>, Vec<String>) {
    let source = mysql_db(my_db).await;
    let target = Db::Pg(PgPool::connect(pg_url).await.expect("pg pool"));
    let info = Arc::new(Mutex::new(Vec::new()));
    let i2 = info.clone();
    let hooks = Hooks {
        cancel: CancellationToken::new(),
        progress: Arc::new(|_| {}),
        info: Arc::new(move |l| i2.lock().expect("lock").push(l)),
    };
    let r = verify::run_with(st, &source, &target, hooks, tuning).await;
    let lines = info.lock().expect("lock").clone();
    (r, lines)
}

async fn verified(my_db: &str, pg_url: &str, st: &VerifyStep, tuning: Tuning) -> VerifyReport {
    let (r, info) = run(my_db, pg_url, st, tuning).await;
    r.unwrap_or_else(|e| panic!("verify failed to run: {e}\n{info:#?}"))
}

/// The difference line containing `needle`, or a panic listing every line.
fn line<'a>(r: &'a VerifyReport, needle: &str) -> &'a str {
    r.differences
        .iter()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no difference mentions {needle:?}: {:#?}", r.differences))
}

/// A table keyed by text under MySQL's case-insensitive, PAD SPACE collation:
/// its key ranges cannot mean the same rows on PostgreSQL.
const MY_TAGS: &str = "
create table tags (name varchar(20) collate utf8mb4_general_ci primary key, n int not null);
insert into tags values ('apple', 1), ('Banana', 2), ('cherry', 3), ('b', 4), ('Äpfel', 5), ('zz ', 6);
";
const PG_TAGS: &str = "create table tags (name varchar(20) primary key, n int not null);";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_awkward_dataset_verifies_and_changed_rows_are_named_by_key() {
    let my = mysql::database("ferry_vawk").await;
    mysql::exec(&my.name, MY_AWKWARD).await;
    mysql::exec(&my.name, MY_TAGS).await;
    let pg = TestDb::new("FERRY_TEST_PG_TARGET", "my_vawk").await;
    pg.exec(PG_AWKWARD).await;
    pg.exec(PG_TAGS).await;
    let cs = copy_step(&[&format!("{}.*", my.name)], 400, 3, ZeroDates::Fail);
    let (r, info) = run_copy(&my.name, &pg.url, &cs).await;
    r.unwrap_or_else(|e| panic!("copy failed: {e}\n{info:#?}"));

    let st = vstep(&my.name, &ALL);
    for tuning in [SMALL, Tuning::default()] {
        let (r, info) = run(&my.name, &pg.url, &st, tuning).await;
        let report = r.unwrap_or_else(|e| panic!("verify failed to run: {e}\n{info:#?}"));
        assert!(
            report.ok,
            "{tuning:?}: {}\n{:#?}\n{info:#?}",
            report.summary, report.differences
        );
        assert_eq!(report.source, "mysql");
        assert_eq!(report.target, "postgres");
        assert_eq!(report.rows_compared, 2504 + 6, "{report:?}");
        assert_eq!(report.tables.len(), 2, "{report:?}");
        assert!(
            info.iter()
                .any(|l| l.contains("tags") && l.contains("compared by row hashes")),
            "a text key under a ci collation is not ranged: {info:#?}"
        );
    }

    // Change, delete and insert rows on the target.
    pg.exec(
        "update awkward set pad = 'changed' where id = 1000;
         update awkward set f = 0.2 where id = 4;
         delete from awkward where id = 2000;
         insert into awkward (id, pad) values (9000, 'new');
         update tags set n = 20 where name = 'Banana';
         delete from tags where name = 'b';
         insert into tags values ('B', 4);",
    )
    .await;
    for tuning in [SMALL, Tuning::default()] {
        let report = verified(&my.name, &pg.url, &st, tuning).await;
        assert!(!report.ok, "{tuning:?}: {}", report.summary);
        let awk = format!("{}.awkward", my.name);
        let tags = format!("{}.tags", my.name);
        let l = line(&report, &format!("{awk} (id=1000)"));
        assert!(
            l.contains("changed") && l.contains("pad \"p996 \" on source, \"changed\" on target"),
            "{l}"
        );
        let l = line(&report, &format!("{awk} (id=4)"));
        assert!(l.contains("f 0.1 on source, 0.2 on target"), "{l}");
        assert!(line(&report, &format!("{awk} (id=2000)")).ends_with("missing on target"));
        assert!(line(&report, &format!("{awk} (id=9000)")).ends_with("extra on target"));
        let l = line(&report, &format!("{tags} (name=\"Banana\")"));
        assert!(l.contains("n 2 on source, 20 on target"), "{l}");
        assert!(line(&report, &format!("{tags} (name=\"b\")")).ends_with("missing on target"));
        assert!(line(&report, &format!("{tags} (name=\"B\")")).ends_with("extra on target"));
        let rows: u64 = report.differences.len() as u64 + report.more_differences;
        assert!(rows >= 7, "{:#?}", report.differences);
        assert!(
            report.summary.contains("differences in 2 of 2 tables"),
            "{}",
            report.summary
        );
    }
}

const MY_FMT: &str = "
set session sql_mode = '';
create table fmt (
  id int primary key,
  dec65 decimal(65,30), f float, dbl double, ts timestamp(6) null default null, ch char(10),
  t time(6), flag tinyint(1), j json, s set('a','b','c'), d datetime(6)
);
set time_zone = '+05:00';
insert into fmt values
 (1, 1.5, 0.1, 0.1, '2024-03-01 12:00:00.5', 'ab  ', '00:00:01.5', 1,
  '{\"b\": 1, \"a\": [1, 2.5, -1e-7]}', 'a,c', '2024-03-01 12:00:00.100000'),
 (2, -0.000000000000000000000000000001, 1.5e38, 5e-324, '2038-01-19 08:14:07', 'x',
  '-838:59:59', 0, '[]', '', '1000-01-01 00:00:00'),
 (3, 12345678901234567890123456789012345.123456789012345678901234567890, -1.17549435e-38,
  1.7976931348623157e308, '1970-01-01 05:00:01', '', '838:59:59', null, null, null, null);
";

/// The same data written by PostgreSQL in its own spellings, from a session in
/// another time zone.
const PG_FMT: &str = "
create table fmt (
  id int primary key,
  dec65 numeric, f real, dbl double precision, ts timestamptz, ch char(10),
  t interval, flag boolean, j jsonb, s text[], d timestamp(6)
);
set timezone = 'America/New_York';
insert into fmt values
 (1, 1.5, '0.1', '0.1', '2024-03-01 02:00:00.5-05', 'ab', '1.5 seconds', true,
  '{\"a\": [1, 2.5, -0.0000001], \"b\": 1}', '{a,c}', '2024-03-01 12:00:00.1'),
 (2, '-1e-30', '1.5e+38', '4.9406564584124654e-324', '2038-01-19 03:14:07+00', 'x',
  '-838:59:59', false, '[]', '{}', '1000-01-01'),
 (3, 12345678901234567890123456789012345.12345678901234567890123456789, '-1.1754944e-38',
  '1.7976931348623157e+308', '1970-01-01 00:00:01Z', '', '838:59:59', null, null, null, null);
";

#[tokio::test]
async fn spellings_are_not_differences_but_values_are() {
    let my = mysql::database("ferry_vfmt").await;
    mysql::exec(&my.name, MY_FMT).await;
    let pg = TestDb::new("FERRY_TEST_PG_TARGET", "my_vfmt").await;
    pg.exec(PG_FMT).await;
    let st = vstep(&my.name, &ALL);
    let report = verified(&my.name, &pg.url, &st, SMALL).await;
    assert!(report.ok, "{}\n{:#?}", report.summary, report.differences);
    assert_eq!(report.rows_compared, 3);

    // Unique keys compare by their columns, whatever each engine names them.
    mysql::exec(&my.name, "alter table fmt add unique key uq_ch (ch)").await;
    let schema_only = vstep(&my.name, &[Check::Schema]);
    let report = verified(&my.name, &pg.url, &schema_only, SMALL).await;
    let l = line(&report, "unique key uq_ch (ch)");
    assert!(l.ends_with("missing on target"), "{l}");
    pg.exec("create unique index fmt_ch_unique on fmt (ch)")
        .await;
    let report = verified(&my.name, &pg.url, &schema_only, SMALL).await;
    assert!(report.ok, "{}\n{:#?}", report.summary, report.differences);

    // One digit, one microsecond, one space: data, never spelling.
    pg.exec(
        "update fmt set dec65 = 1.500000000000000000000000000001 where id = 1;
         update fmt set ts = '2038-01-19 03:14:07.000001+00' where id = 2;
         update fmt set dbl = '1.7976931348623155e+308' where id = 3;
         update fmt set s = '{a}' where id = 1;",
    )
    .await;
    let report = verified(&my.name, &pg.url, &st, SMALL).await;
    assert!(!report.ok);
    let fmt = format!("{}.fmt", my.name);
    let l = line(&report, &format!("{fmt} (id=1)"));
    assert!(
        l.contains("dec65 1.5 on source, 1.500000000000000000000000000001 on target"),
        "{l}"
    );
    assert!(l.contains("s \"{\\\"a\\\",\\\"c\\\"}\" on source"), "{l}");
    let l = line(&report, &format!("{fmt} (id=2)"));
    assert!(
        l.contains(
            "ts \"2038-01-19 03:14:07\" on source, \"2038-01-19 03:14:07.000001\" on target"
        ),
        "{l}"
    );
    let l = line(&report, &format!("{fmt} (id=3)"));
    assert!(l.contains("dbl 1.7976931348623157e308 on source"), "{l}");
    assert_eq!(report.differences.len(), 3, "{:#?}", report.differences);
}

#[tokio::test]
async fn zero_dates_differ_unless_the_step_says_they_were_carried_as_null() {
    let my = mysql::database("ferry_vzero").await;
    mysql::exec(
        &my.name,
        "set session sql_mode = '';
         create table z (id int primary key, d date);
         insert into z values (1, '2024-01-01'), (2, '0000-00-00');",
    )
    .await;
    let pg = TestDb::new("FERRY_TEST_PG_TARGET", "my_vzero").await;
    pg.exec("create table z (id int primary key, d date); insert into z values (1, '2024-01-01'), (2, null);")
        .await;
    let mut st = vstep(&my.name, &ALL);
    let report = verified(&my.name, &pg.url, &st, SMALL).await;
    let l = line(&report, "(id=2)");
    assert!(
        l.contains("0000-00-00 (cannot be carried: zero date") && l.contains("NULL on target"),
        "{l}"
    );
    st.zero_dates = ZeroDates::Null;
    let report = verified(&my.name, &pg.url, &st, SMALL).await;
    assert!(report.ok, "{}\n{:#?}", report.summary, report.differences);
}

#[tokio::test]
async fn the_verify_step_runs_on_a_mysql_source_and_a_mysql_target_is_refused() {
    let my = mysql::database("ferry_vexec").await;
    mysql::exec(
        &my.name,
        "create table acct (id bigint primary key auto_increment, email varchar(100) not null);
         insert into acct (email) values ('a@x.org'), ('b@x.org');",
    )
    .await;
    let pg = TestDb::new("FERRY_TEST_PG_TARGET", "my_vexec").await;
    pg.exec(
        "create table acct (id bigint generated by default as identity primary key, email text not null);
         insert into acct (id, email) values (1, 'a@x.org'), (2, 'b@x.org');",
    )
    .await;
    let toml = format!(
        "kind = \"verify\"\nsource = \"db\"\ntarget = \"pg\"\ntables = [\"{}.*\"]",
        my.name
    );
    // The target's identity continues after the copied rows: no difference.
    pg.exec("select setval(pg_get_serial_sequence('acct', 'id'), 2)")
        .await;
    let outcome = Run::on_pg(&my.name, &pg.url, &toml).execute().await;
    match outcome {
        Outcome::Succeeded { summary } => {
            assert!(
                summary.starts_with("no differences: 1 tables, 2 rows"),
                "{summary}"
            )
        }
        other => panic!("expected success: {other:?}"),
    }
    // MySQL moved its counter on: writes switched to the target would reuse its keys.
    mysql::exec(&my.name, "alter table acct auto_increment = 100").await;
    let outcome = Run::on_pg(&my.name, &pg.url, &toml).execute().await;
    match outcome {
        Outcome::Failed { error } => assert!(
            error.contains("behind the source: next value 3, AUTO_INCREMENT 100 on source"),
            "{error}"
        ),
        other => panic!("a sequence behind AUTO_INCREMENT must fail: {other:?}"),
    }

    // Copies into MySQL do not exist, so neither does a verify of one.
    let st = vstep(&my.name, &ALL);
    let pgdb = Db::Pg(PgPool::connect(&pg.url).await.expect("pg pool"));
    let hooks = Hooks {
        cancel: CancellationToken::new(),
        progress: Arc::new(|_| {}),
        info: Arc::new(|_| {}),
    };
    match verify::run(&st, &pgdb, &mysql_db(&my.name).await, hooks).await {
        Err(VerifyError::Failed(e)) => {
            assert!(e.contains("MySQL source with a PostgreSQL target"), "{e}")
        }
        other => panic!("a MySQL target must be refused: {other:?}"),
    }
}
