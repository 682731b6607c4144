//! Logical replication driven by ferry on the real rig (source databases on the
//! primary, targets on the separate target cluster): `ferry check --live` names
//! every problem and changes nothing; `replicate` start under a writer that
//! inserts, updates and deletes, the caught-up proof on its slot, stop, then an
//! independent fingerprint of every table and the sequences match; a table
//! without a key is refused before anything is created; a conflicting row fails
//! the start and its rollback leaves no slot and no publication; kill -9 during
//! the initial sync, then `--resume`, re-attaches and creates nothing twice.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support;
use support::headless::{entries, kind, wait_for_journal, Dir};
use support::pg::{exec, fingerprint, scalar, unique, DbPair};

const SECRET: &str = "ferry-test-secret-pw";

/// Drops whatever a test left under `name` (subscription first, so it takes its slot).
struct Leftovers {
    src_url: String,
    tgt_url: String,
    name: String,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let n = &self.name;
        support::pg::cleanup(vec![
            (self.tgt_url.clone(), format!("alter subscription {n} disable")),
            (self.tgt_url.clone(), format!("alter subscription {n} set (slot_name = none)")),
            (self.tgt_url.clone(), format!("drop subscription if exists {n}")),
            (
                self.src_url.clone(),
                format!("select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = '{n}' and not active"),
            ),
            (self.src_url.clone(), format!("drop publication if exists {n}")),
        ]);
    }
}

/// (publications, slots, subscriptions) named `name` right now.
async fn what_exists(src: &str, tgt: &str, name: &str) -> (String, String, String) {
    (
        scalar(
            src,
            &format!("select count(*)::text from pg_publication where pubname = '{name}'"),
        )
        .await,
        scalar(
            src,
            &format!("select count(*)::text from pg_replication_slots where slot_name = '{name}'"),
        )
        .await,
        scalar(
            tgt,
            &format!("select count(*)::text from pg_subscription where subname = '{name}'"),
        )
        .await,
    )
}

fn none() -> (String, String, String) {
    ("0".into(), "0".into(), "0".into())
}

fn connections(dir: &mut Dir, pair: &DbPair) -> &'static str {
    dir.env("SRC_URL", &pair.src_url);
    dir.env("TGT_URL", &pair.tgt_url);
    r#"
[connections.source]
url = "${env:SRC_URL}"
[connections.target]
url = "${env:TGT_URL}"
"#
}

fn start_step(name: &str, extra: &str) -> String {
    format!(
        r#"
  [[phase.step]]
  id = "start"
  kind = "replicate"
  action = "start"
  from = "source"
  to = "target"
  tables = ["public.*"]
  name = "{name}"
  timeout = "50s"
{extra}"#
    )
}

fn no_secret(dir: &Dir) {
    for j in dir.journals() {
        let text = std::fs::read_to_string(&j).expect("journal");
        assert!(!text.contains(SECRET), "a password reached {}", j.display());
    }
}

#[test]
fn check_live_names_every_problem_and_changes_nothing() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let pair = rt.block_on(DbPair::new("repl_live"));
    let name = unique("ferry_live");
    rt.block_on(async {
        exec(
            &pair.src_url,
            "create table items (id int primary key, v text);
             create table nokey (v text);
             create table orphan (id int primary key)",
        )
        .await;
        exec(
            &pair.tgt_url,
            "create table items (id int primary key, v text); create table nokey (v text)",
        )
        .await;
    });
    let mut dir = Dir::new();
    let conns = connections(&mut dir, &pair);
    dir.runbook(
        "live",
        &format!(
            "{conns}\n[[phase]]\nid = \"online\"\n{}",
            start_step(&name, "")
        ),
    );
    let check = |dir: &Dir| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .current_dir(dir.path())
            .args(["check", "runbook.toml", "--live"])
            .envs(dir.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("ferry check --live")
    };
    let out = check(&dir);
    let stdout =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("table public.nokey has no primary key and no replica identity"),
        "{stdout}"
    );
    assert!(
        stdout.contains("table public.orphan does not exist on the target"),
        "{stdout}"
    );
    assert!(!stdout.contains(SECRET), "{stdout}");
    assert_eq!(
        rt.block_on(what_exists(&pair.src_url, &pair.tgt_url, &name)),
        none()
    );

    // fixed: a replica identity for the keyless table, the missing table created
    rt.block_on(async {
        exec(&pair.src_url, "alter table nokey replica identity full").await;
        exec(&pair.tgt_url, "create table orphan (id int primary key)").await;
    });
    let out = check(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("3 table(s) can replicate source -> target"),
        "{stdout}"
    );
    assert_eq!(
        rt.block_on(what_exists(&pair.src_url, &pair.tgt_url, &name)),
        none()
    );
}

#[test]
fn a_table_without_a_key_is_refused_before_anything_is_created() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let pair = rt.block_on(DbPair::new("repl_nokey"));
    let name = unique("ferry_nokey");
    let _left = Leftovers {
        src_url: pair.src_url.clone(),
        tgt_url: pair.tgt_url.clone(),
        name: name.clone(),
    };
    rt.block_on(async {
        let ddl = "create table items (id int primary key, v text); create table audit (at timestamptz, what text)";
        exec(&pair.src_url, ddl).await;
        exec(&pair.tgt_url, ddl).await;
    });
    let mut dir = Dir::new();
    let conns = connections(&mut dir, &pair);
    dir.runbook(
        "nokey",
        &format!(
            "{conns}\n[[phase]]\nid = \"online\"\n{}",
            start_step(&name, "")
        ),
    );
    let out = dir.run(&["--yes"]);
    out.assert_code(1, "refused");
    assert!(
        out.stdout
            .contains("table public.audit has no primary key and no replica identity")
            && out.stdout.contains("nothing was created"),
        "{}",
        out.show()
    );
    assert_eq!(
        rt.block_on(what_exists(&pair.src_url, &pair.tgt_url, &name)),
        none()
    );
    no_secret(&dir);
}

#[test]
fn a_conflicting_row_fails_the_start_and_its_rollback_leaves_no_slot() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let pair = rt.block_on(DbPair::new("repl_conflict"));
    let name = unique("ferry_conflict");
    let _left = Leftovers {
        src_url: pair.src_url.clone(),
        tgt_url: pair.tgt_url.clone(),
        name: name.clone(),
    };
    rt.block_on(async {
        exec(
            &pair.src_url,
            "create table items (id int primary key, v text);
             insert into items select g, 'v' from generate_series(1, 1000) g",
        )
        .await;
        // a row already on the target: the initial copy of items hits its key
        exec(
            &pair.tgt_url,
            "create table items (id int primary key, v text); insert into items values (7, 'in the way')",
        )
        .await;
    });
    let mut dir = Dir::new();
    let conns = connections(&mut dir, &pair);
    dir.runbook(
        "conflict",
        &format!(
            "{conns}\n[[phase]]\nid = \"online\"\n{}",
            start_step(&name, "  on_failure = \"rollback\"\n")
        ),
    );
    let out = dir.run(&["--yes"]);
    out.assert_code(1, "the start fails");
    assert!(
        out.stdout.contains("disabled itself after an error")
            && out.stdout.contains("public.items"),
        "the failure names the table\n{}",
        out.show()
    );
    let recs = entries(&dir.journal());
    assert!(
        recs.iter().any(|r| kind(r) == "event"
            && r["entry"]["type"] == "rollback_finished"
            && r["entry"]["outcome"]["outcome"] == "succeeded"),
        "{}",
        support::headless::dump(&recs)
    );
    assert_eq!(
        rt.block_on(what_exists(&pair.src_url, &pair.tgt_url, &name)),
        none()
    );
    no_secret(&dir);
}

/// Seed the source and the (empty) target with the same tables.
async fn seed(pair: &DbPair) {
    let ddl = "create table items (id bigserial primary key, v text, n int);
               create table ledger (id int primary key, amount numeric(12,2), at timestamptz default now());
               create table events (k text not null, payload jsonb);
               alter table events replica identity full;
               create sequence standalone_seq;";
    exec(&pair.src_url, ddl).await;
    exec(&pair.tgt_url, ddl).await;
    exec(
        &pair.src_url,
        "insert into items (v, n) select md5(g::text), g from generate_series(1, 20000) g;
         insert into ledger (id, amount) select g, g * 1.5 from generate_series(1, 5000) g;
         insert into events select 'k' || g, jsonb_build_object('g', g) from generate_series(1, 1000) g;
         select setval('standalone_seq', 42);",
    )
    .await;
}

/// Insert, update and delete on the source until `stop`; count the statements.
async fn writer(url: String, stop: Arc<AtomicBool>, ops: Arc<AtomicU64>) {
    let pool = sqlx::PgPool::connect(&url).await.expect("writer connects");
    let mut i: i64 = 0;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let sql = format!(
            "insert into items (v, n) values ('w{i}', {i}), ('x{i}', -{i});
             update items set n = n + 1, v = v || '+' where id = {};
             delete from items where id = {};
             update ledger set amount = amount + 0.25 where id = {};
             insert into events values ('w{i}', '{{\"i\": {i}}}');
             delete from events where k = 'k{}';",
            (i * 7919) % 20000 + 1,
            (i * 104729) % 20000 + 1,
            (i * 31) % 5000 + 1,
            i % 1000 + 1,
        );
        sqlx::raw_sql(&sql)
            .execute(&pool)
            .await
            .expect("writer writes");
        ops.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn replication_under_writes_then_caught_up_then_stop_matches_every_table() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let pair = rt.block_on(DbPair::new("repl_full"));
    let name = unique("ferry_full");
    let _left = Leftovers {
        src_url: pair.src_url.clone(),
        tgt_url: pair.tgt_url.clone(),
        name: name.clone(),
    };
    rt.block_on(seed(&pair));
    let mut dir = Dir::new();
    let conns = connections(&mut dir, &pair);
    dir.runbook(
        "full",
        &format!(
            r#"{conns}
[[phase]]
id = "online"
{}
  [[phase.step]]
  id = "freeze"
  kind = "shell"
  run = "touch freeze; while [ ! -f frozen ]; do sleep 0.1; done"
  timeout = "30s"

  [[phase.step]]
  id = "caught-up"
  kind = "wait"
  until = {{ caught_up = {{ primary = "source", slot = "{name}" }} }}
  every = "200ms"
  timeout = "30s"

  [[phase.step]]
  id = "stop"
  kind = "replicate"
  action = "stop"
  from = "source"
  to = "target"
  tables = ["public.*"]
  name = "{name}"
  timeout = "30s"
"#,
            start_step(&name, "")
        ),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let w = rt.spawn(writer(pair.src_url.clone(), stop.clone(), ops.clone()));
    // the writer is busy before the start begins
    let t0 = Instant::now();
    while ops.load(Ordering::SeqCst) < 20 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the writer does not write"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut running = dir.start(&["--yes"]);
    let before_freeze = {
        // freeze when ferry asks for it: the start is done, the writer still writing
        wait_for_journal(
            &dir,
            &mut running,
            Duration::from_secs(50),
            "the freeze step",
            |_| dir.file("freeze").exists(),
        );
        stop.store(true, Ordering::SeqCst);
        rt.block_on(w).expect("writer task");
        std::fs::write(dir.file("frozen"), "").expect("frozen");
        ops.load(Ordering::SeqCst)
    };
    let out = running.finish();
    out.assert_code(0, "start, freeze, caught-up, stop");
    assert!(
        before_freeze > 40,
        "the writer wrote during the start: {before_freeze} statements"
    );

    for t in ["items", "ledger", "events"] {
        let (s, g) = rt.block_on(async {
            (
                fingerprint(&pair.src_url, &format!("public.{t}")).await,
                fingerprint(&pair.tgt_url, &format!("public.{t}")).await,
            )
        });
        assert_eq!(s, g, "table {t} differs after the stop");
    }
    // sequences follow: the target's next ids continue the source's
    for s in ["items_id_seq", "standalone_seq"] {
        let q = format!("select last_value::text from {s}");
        let (a, b) = rt.block_on(async {
            (
                scalar(&pair.src_url, &q).await,
                scalar(&pair.tgt_url, &q).await,
            )
        });
        assert_eq!(a, b, "sequence {s}");
    }
    assert_eq!(
        rt.block_on(scalar(
            &pair.tgt_url,
            "select last_value::text from standalone_seq"
        )),
        "42"
    );
    rt.block_on(exec(
        &pair.tgt_url,
        "insert into items (v, n) values ('after', 0)",
    ));
    // stopped: nothing left on either side
    assert_eq!(
        rt.block_on(what_exists(&pair.src_url, &pair.tgt_url, &name)),
        none()
    );

    let recs = entries(&dir.journal());
    let proof = recs
        .iter()
        .find(|r| kind(r) == "result" && r["entry"]["step"] == "caught-up")
        .expect("the proof's result");
    assert_eq!(proof["entry"]["data"]["caught_up"], true);
    // the stop's confirmation carries the proof's positions as evidence
    let primary_lsn = proof["entry"]["data"]["primary_lsn"].as_str().expect("lsn");
    let confirm = recs
        .iter()
        .find(|r| {
            kind(r) == "event" && r["entry"]["type"] == "confirm" && r["entry"]["step"] == "stop"
        })
        .expect("the stop's confirmation");
    let evidence = confirm["entry"]["evidence"].as_array().expect("evidence");
    assert!(
        evidence.iter().any(|e| e["label"] == "caught-up caught-up"
            && e["value"].as_str().is_some_and(|v| v.starts_with(&format!(
                "succeeded: primary at {primary_lsn} when the wait began"
            )))),
        "{evidence:?}"
    );
    let stop_result = recs
        .iter()
        .find(|r| kind(r) == "result" && r["entry"]["step"] == "stop")
        .expect("the stop's result");
    assert_eq!(stop_result["entry"]["data"]["teardown"]["slot_left"], false);
    no_secret(&dir);
}

#[test]
fn kill_9_during_the_initial_sync_then_resume_reattaches_with_one_slot() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let pair = rt.block_on(DbPair::new("repl_resume"));
    let name = unique("ferry_resume");
    let _left = Leftovers {
        src_url: pair.src_url.clone(),
        tgt_url: pair.tgt_url.clone(),
        name: name.clone(),
    };
    rt.block_on(async {
        exec(
            &pair.src_url,
            "create table items (id int primary key, v text);
             insert into items select g, 'v' from generate_series(1, 4000) g",
        )
        .await;
        // an ALWAYS trigger fires in the sync worker too: the initial copy takes seconds
        exec(
            &pair.tgt_url,
            "create table items (id int primary key, v text);
             create function slow() returns trigger language plpgsql as $$ begin perform pg_sleep(0.002); return new; end $$;
             create trigger slow before insert on items for each row execute function slow();
             alter table items enable always trigger slow;",
        )
        .await;
    });
    let mut dir = Dir::new();
    let conns = connections(&mut dir, &pair);
    dir.runbook(
        "resume",
        &format!(
            "{conns}\n[[phase]]\nid = \"online\"\n{}",
            start_step(&name, "")
        ),
    );
    let mut running = dir.start(&["--yes"]);
    wait_for_journal(
        &dir,
        &mut running,
        Duration::from_secs(30),
        "the subscription created",
        |recs| {
            recs.iter().any(|r| {
                r["entry"]["line"]
                    .as_str()
                    .is_some_and(|l| l.starts_with("created subscription"))
            })
        },
    );
    let killed = running.kill9();
    assert_eq!(killed.code, None, "killed by the signal");
    // still syncing when ferry died
    let ready = rt.block_on(scalar(
        &pair.tgt_url,
        &format!("select count(*)::text from pg_subscription_rel r join pg_subscription s on s.oid = r.srsubid where s.subname = '{name}' and r.srsubstate = 'r'"),
    ));
    assert_eq!(ready, "0", "the kill came during the initial sync");

    let out = dir.run(&["--resume", "--yes"]);
    out.assert_code(0, "--resume --yes re-attaches and finishes");
    let recs = entries(&dir.journal());
    let resumed_at = recs
        .iter()
        .position(|r| kind(r) == "session" && r["entry"]["resumed"] == true)
        .expect("a resumed session");
    let after: Vec<&str> = recs[resumed_at..]
        .iter()
        .filter_map(|r| r["entry"]["line"].as_str())
        .collect();
    assert!(
        after.iter().any(|l| l
            .starts_with("re-attaching to what exists already: publication, slot, subscription")),
        "{after:#?}"
    );
    assert!(
        !after.iter().any(|l| l.starts_with("created ")),
        "nothing is created twice: {after:#?}"
    );
    assert_eq!(
        rt.block_on(what_exists(&pair.src_url, &pair.tgt_url, &name)),
        ("1".into(), "1".into(), "1".into()),
        "exactly one publication, slot and subscription"
    );
    assert_eq!(
        rt.block_on(scalar(&pair.tgt_url, "select count(*)::text from items")),
        "4000"
    );
    no_secret(&dir);
}
