//! The pre-flight of a copy MySQL → PostgreSQL, against the rig's real MariaDB and its
//! PostgreSQL target cluster: every value that will not fit its target column and every
//! target unique key whose source values collide under PostgreSQL's comparison is
//! reported at once, naming table, column and a key, before any row moves; a table
//! without a primary key is a warning and is copied; the same data, once it fits, copies;
//! `ferry check --live` reports the same problems and changes nothing. Tests fail, never
//! skip, when the rig's variables are unset.

use crate::mysql_copy::{run_copy, step};
use crate::support::mysql;
use crate::support::pg::{scalar as pg_scalar, TestDb};
use ferry_core::copy::CopyError;
use ferry_core::runbook::ZeroDates;
use std::path::Path;

const MY_FIT: &str = r#"
set session sql_mode = '';
create table fit (id int primary key, name varchar(40), u bigint unsigned,
  amount decimal(12,4), flag tinyint(1), d date, t time, small int);
insert into fit values
  (1, 'short', 5, 1.5, 1, '2024-01-01', '10:00:00', 1),
  (2, 'a name longer than ten', 18446744073709551615, 1.2345, 0, '2024-01-02', '11:00:00', 2),
  (3, 'ok', 6, 1234567.5, 2, '0000-00-00', '30:00:00', 3);
create table nokey (v varchar(10));
insert into nokey values ('x'), ('x');
"#;

const PG_FIT: &str = "create table public.fit (id int primary key, name varchar(10), u bigint, \
    amount numeric(8,2), flag boolean, d date, t time, small bigint); \
    create table public.nokey (v text)";

/// The data of `MY_FIT` changed so that every value fits.
const MY_FIXED: &str = "update fit set name = 'ten chars!', u = 7, amount = 1.25, flag = 1, \
    d = '2024-01-03', t = '12:00:00' where id in (2, 3)";

fn failed(r: Result<ferry_core::copy::CopyReport, CopyError>) -> String {
    match r {
        Err(CopyError::Failed(e)) => e,
        other => panic!("the pre-flight must fail the step, got {other:?}"),
    }
}

#[tokio::test]
async fn every_value_that_will_not_fit_is_named_at_once_before_any_row_moves() {
    let my = mysql::database("ferry_pre_fit").await;
    mysql::exec(&my.name, MY_FIT).await;
    let pg = TestDb::new("FERRY_TEST_PG_TARGET", "my_pre_fit").await;
    pg.exec(PG_FIT).await;
    let tables = [format!("{}.*", my.name)];
    let tables: Vec<&str> = tables.iter().map(String::as_str).collect();

    let (r, _) = run_copy(&my.name, &pg.url, &step(&tables, 1, 2, ZeroDates::Fail)).await;
    let err = failed(r);
    assert!(err.contains("pre-flight: 7 problem(s)"), "{err}");
    let fit = format!("{}.fit", my.name);
    for (col, key, what) in [
        ("name", "(id=2)", "more than the 10 characters"),
        ("u", "(id=2)", "numeric(20)"),
        ("amount", "(id=2)", "more than the 2 fractional digits"),
        (
            "amount",
            "(id=3)",
            "more than the 6 digits before the point",
        ),
        ("flag", "(id=3)", "neither 0 nor 1"),
        ("d", "(id=3)", "zero_dates = \"null\""),
        ("t", "(id=3)", "not times of day"),
    ] {
        let line = err
            .split("; table ")
            .find(|p| p.contains(&format!("column {col:?}")) && p.contains(what))
            .unwrap_or_else(|| panic!("no problem for {col} ({what}): {err}"));
        assert!(line.contains(&fit), "names the table: {line}");
        assert!(line.contains(key), "names the first key: {line}");
    }
    assert!(!err.contains("\"small\""), "an int fits a bigint: {err}");
    for t in ["fit", "nokey"] {
        assert_eq!(
            pg_scalar(&pg.url, &format!("select count(*)::text from public.{t}")).await,
            "0",
            "no row of {t} moved"
        );
    }

    // the same declared types, with values that fit: copied; the keyless table warned about
    mysql::exec(&my.name, MY_FIXED).await;
    let (r, info) = run_copy(&my.name, &pg.url, &step(&tables, 1, 2, ZeroDates::Fail)).await;
    r.unwrap_or_else(|e| panic!("values that fit must copy: {e}"));
    assert!(
        info.iter().any(|l| l.starts_with("pre-flight: table")
            && l.contains(&format!("{}.nokey has no primary key", my.name))),
        "{info:?}"
    );
    assert_eq!(
        pg_scalar(
            &pg.url,
            "select string_agg(id || ':' || name || ':' || u || ':' || amount || ':' || flag, ' ' order by id) from public.fit"
        )
        .await,
        "1:short:5:1.50:true 2:ten chars!:7:1.25:true 3:ten chars!:7:1.25:true"
    );
    assert_eq!(
        pg_scalar(&pg.url, "select count(*)::text from public.nokey").await,
        "2"
    );
}

const MY_USERS: &str = r#"
create table users (id int primary key,
  email varchar(50) collate utf8mb4_bin, nick varchar(20) collate utf8mb4_general_ci,
  code varchar(10) collate utf8mb4_nopad_bin, city varchar(20),
  unique key (email), unique key (nick), unique key (code));
insert into users values (1, 'Alice@x', 'Bob', 'ab', 'Oslo'), (2, 'alice@x', 'Carol', 'ab ', 'Oslo'),
  (3, 'carol@x', 'Dave', 'cd', 'Rome');
"#;

#[tokio::test]
async fn unique_keys_that_collide_under_postgresql_comparison_are_named() {
    let my = mysql::database("ferry_pre_uniq").await;
    mysql::exec(&my.name, MY_USERS).await;
    let pg = TestDb::new("FERRY_TEST_PG_TARGET", "my_pre_uniq").await;
    pg.exec(
        "create extension if not exists citext; \
         create table public.users (id int primary key, email citext unique, nick citext unique, \
           code char(5) unique, city text unique)",
    )
    .await;
    let tables = [format!("{}.users", my.name)];
    let tables: Vec<&str> = tables.iter().map(String::as_str).collect();
    let (r, _) = run_copy(&my.name, &pg.url, &step(&tables, 1000, 1, ZeroDates::Fail)).await;
    let err = failed(r);
    assert!(err.contains("pre-flight: 3 problem(s)"), "{err}");
    let problem = |col: &str| {
        err.split("; table ")
            .find(|p| p.contains(&format!("({col}) of the target")))
            .unwrap_or_else(|| panic!("no collision named on {col}: {err}"))
            .to_string()
    };
    // utf8mb4_bin keeps both spellings; citext folds case
    let email = problem("email");
    assert!(
        email.contains("case-insensitive")
            && email.contains("Alice@x")
            && email.contains("alice@x"),
        "{email}"
    );
    // MariaDB's NO PAD collation keeps 'ab' and 'ab '; character(5) ignores trailing spaces
    let code = problem("code");
    assert!(code.contains("trailing spaces"), "{code}");
    // the source has no unique key on city at all
    let city = problem("city");
    assert!(
        city.contains("no unique key") && city.contains("Oslo"),
        "{city}"
    );
    // a case-insensitive MySQL unique key into citext: checked, and unique
    assert!(!err.contains("(nick) of the target"), "{err}");
    assert_eq!(
        pg_scalar(&pg.url, "select count(*)::text from public.users").await,
        "0"
    );

    // a deterministic target: MySQL's unique keys prove it; only city still collides
    pg.exec(
        "drop table public.users; create table public.users (id int primary key, \
           email text unique, nick text unique, code varchar(10) unique, city text)",
    )
    .await;
    let (r, _) = run_copy(&my.name, &pg.url, &step(&tables, 1000, 1, ZeroDates::Fail)).await;
    r.unwrap_or_else(|e| panic!("byte-wise unique keys cannot collide: {e}"));
    assert_eq!(
        pg_scalar(
            &pg.url,
            "select string_agg(email || '/' || code || '|', ' ' order by id) from public.users"
        )
        .await,
        "Alice@x/ab| alice@x/ab | carol@x/cd|"
    );
}

#[tokio::test]
async fn zero_dates_mapped_to_null_collide_only_where_nulls_are_not_distinct() {
    let my = mysql::database("ferry_pre_null").await;
    mysql::exec(
        &my.name,
        "set session sql_mode = '';
         create table ev (id int primary key, day date, unique key (day));
         insert into ev values (1, '2024-01-01'), (2, '0000-00-00'), (3, null);",
    )
    .await;
    let pg = TestDb::new("FERRY_TEST_PG_TARGET", "my_pre_null").await;
    pg.exec("create table public.ev (id int primary key, day date unique nulls not distinct)")
        .await;
    let tables = [format!("{}.ev", my.name)];
    let tables: Vec<&str> = tables.iter().map(String::as_str).collect();
    let (r, _) = run_copy(&my.name, &pg.url, &step(&tables, 1000, 1, ZeroDates::Null)).await;
    let err = failed(r);
    assert!(
        err.contains("pre-flight: 1 problem(s)")
            && err.contains("(day) of the target")
            && err.contains("NULLS NOT DISTINCT"),
        "{err}"
    );

    // NULLs distinct, as by default: the zero date and the NULL are two NULLs, both fine
    pg.exec("drop table public.ev; create table public.ev (id int primary key, day date unique)")
        .await;
    let (r, _) = run_copy(&my.name, &pg.url, &step(&tables, 1000, 1, ZeroDates::Null)).await;
    r.unwrap_or_else(|e| panic!("several NULLs are fine: {e}"));
    assert_eq!(
        pg_scalar(
            &pg.url,
            "select string_agg(id || ':' || coalesce(day::text, 'NULL'), ' ' order by id) from public.ev"
        )
        .await,
        "1:2024-01-01 2:NULL 3:NULL"
    );
}

fn live_runbook(dir: &Path, my_db: &str) {
    std::fs::write(
        dir.join("runbook.toml"),
        format!(
            "[runbook]\nname = \"my-pre\"\ntitle = \"mysql pre-flight\"\nformat = 1\n\n\
             [connections.legacy]\nurl = \"{}\"\n[connections.target]\nurl = \"${{env:DST}}\"\n\n\
             [[phase]]\nid = \"p\"\n\n  [[phase.step]]\n  id = \"backfill\"\n  kind = \"copy\"\n  from = \"legacy\"\n  to = \"target\"\n\
             \x20 tables = [\"{my_db}.*\"]\n  confirm = \"none\"\n",
            mysql::url_without_password(my_db).replacen('@', ":${env:MYSQL_PASSWORD}@", 1)
        ),
    )
    .expect("write runbook");
}

#[tokio::test]
async fn check_live_reports_the_pre_flight_and_changes_nothing() {
    let my = mysql::database("ferry_pre_live").await;
    mysql::exec(&my.name, MY_FIT).await;
    let pg = TestDb::new("FERRY_TEST_PG_TARGET", "my_pre_live").await;
    pg.exec(PG_FIT).await;
    let dir = tempfile::tempdir().expect("tempdir");
    live_runbook(dir.path(), &my.name);
    let check = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .current_dir(dir.path())
            .args(["check", "runbook.toml", "--live"])
            .env("DST", &pg.url)
            .env("MYSQL_PASSWORD", mysql::password())
            .output()
            .expect("ferry check --live");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, out) = check();
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("PROBLEM  step `backfill`"))
            .count(),
        7,
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "warning  step `backfill`: table {}.nokey has no primary key",
            my.name
        )),
        "{out}"
    );
    assert!(
        !out.contains(&mysql::password()),
        "the password leaked: {out}"
    );
    assert_eq!(
        pg_scalar(&pg.url, "select count(*)::text from public.fit").await,
        "0"
    );

    mysql::exec(&my.name, MY_FIXED).await;
    let (code, out) = check();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("2 table(s) pass the copy's pre-flight legacy -> target"),
        "{out}"
    );
    assert_eq!(
        pg_scalar(&pg.url, "select count(*)::text from public.fit").await,
        "0",
        "check --live copies nothing"
    );
}
