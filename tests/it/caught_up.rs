//! The caught-up proof (`wait` with `until = { caught_up = ... }`) through `ferry run`
//! on the real rig: on the streaming standby (passing at once, and held back by
//! `pg_wal_replay_pause()` until replay resumes), on a real logical slot (a
//! subscription on the target cluster to a publication on the primary), and the
//! clear errors for a replica of another cluster and a missing slot. Tests that
//! touch the shared standby carry "standby" in their names (.config/nextest.toml).

use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support;
use support::headless::{entries, kind, wait_for_journal, Dir};
use support::pg::{exec, rig_var, scalar, unique, DbPair, ResumeReplay};

const SECRET: &str = "ferry-test-secret-pw";

/// A runbook with two connections and one caught-up proof.
fn proof_runbook(dir: &Dir, until: &str) {
    dir.runbook(
        "caught-up",
        &format!(
            r#"
[connections.old]
url = "${{env:OLD_URL}}"
[connections.replica]
url = "${{env:REPLICA_URL}}"

[[phase]]
id = "cutover"
  [[phase.step]]
  id = "caught-up"
  kind = "wait"
  until = {until}
  every = "200ms"
  timeout = "40s"
"#
        ),
    );
}

fn results(recs: &[Value]) -> Vec<&Value> {
    recs.iter()
        .filter(|r| kind(r) == "result")
        .map(|r| &r["entry"]["data"])
        .collect()
}

fn lsn(text: &str) -> u64 {
    let (hi, lo) = text.split_once('/').expect("an LSN like 0/3000060");
    (u64::from_str_radix(hi, 16).expect("hex") << 32) | u64::from_str_radix(lo, 16).expect("hex")
}

/// The journal and every report of it name no password.
fn assert_no_secret(journal: &Path) {
    let text = std::fs::read_to_string(journal).expect("journal");
    assert!(!text.contains(SECRET), "a password reached the journal");
    for format in ["md", "html", "json"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["report", &journal.to_string_lossy(), "--format", format])
            .output()
            .expect("ferry report");
        assert!(out.status.success(), "{out:?}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains(SECRET));
    }
}

/// The JSON report, checked against assets/report.schema.json.
fn json_report(journal: &Path) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["report", &journal.to_string_lossy(), "--format", "json"])
        .output()
        .expect("ferry report");
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/report.schema.json"),
        )
        .expect("schema"),
    )
    .expect("schema json");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    v
}

fn markdown(journal: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["report", &journal.to_string_lossy(), "--format", "md"])
        .output()
        .expect("ferry report");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn caught_up_passes_on_the_standby_and_journals_both_positions() {
    let mut dir = Dir::new();
    dir.env("OLD_URL", &rig_var("FERRY_TEST_PG_PRIMARY"));
    dir.env("REPLICA_URL", &rig_var("FERRY_TEST_PG_STANDBY"));
    proof_runbook(
        &dir,
        r#"{ caught_up = { primary = "old", replica = "replica" } }"#,
    );
    let out = dir.run(&["--yes"]);
    out.assert_code(0, "the standby streams: the proof passes");
    let journal = dir.journal();
    let recs = entries(&journal);
    let rs = results(&recs);
    assert_eq!(rs.len(), 1, "one result: {rs:?}");
    let r = rs[0];
    assert_eq!(r["proof"], "caught_up");
    assert_eq!(r["caught_up"], true, "{r}");
    assert_eq!(r["replica"], "replica");
    let (p, a) = (
        lsn(r["primary_lsn"].as_str().expect("primary_lsn")),
        lsn(r["applied_lsn"].as_str().expect("applied_lsn")),
    );
    assert!(a >= p, "applied {a} must reach the primary's {p}");
    assert_eq!(r["bytes_behind"], 0);
    assert!(r["system_identifier"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));

    let v = json_report(&journal);
    let proofs = v["caught_up"]
        .as_array()
        .expect("caught_up in the JSON report");
    assert_eq!(proofs.len(), 1);
    assert_eq!(proofs[0]["step"], "caught-up");
    assert_eq!(proofs[0]["primary_lsn"], r["primary_lsn"]);
    let md = markdown(&journal);
    assert!(md.contains("## Caught-up proofs"), "{md}");
    assert!(
        md.contains(r["primary_lsn"].as_str().unwrap_or("?")),
        "{md}"
    );
    assert_no_secret(&journal);
}

#[test]
fn a_paused_standby_holds_the_proof_until_replay_resumes() {
    let standby = rig_var("FERRY_TEST_PG_STANDBY");
    let primary = rig_var("FERRY_TEST_PG_PRIMARY");
    let _guard = ResumeReplay(standby.clone());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let table = unique("caught_up_probe");
    rt.block_on(async {
        exec(&standby, "select pg_wal_replay_pause()").await;
        // WAL the standby receives but does not replay
        exec(
            &primary,
            &format!("create table {table} (v text); insert into {table} select repeat('x', 200) from generate_series(1, 2000)"),
        )
        .await;
    });
    let mut dir = Dir::new();
    dir.env("OLD_URL", &primary);
    dir.env("REPLICA_URL", &standby);
    proof_runbook(
        &dir,
        r#"{ caught_up = { primary = "old", replica = "replica" } }"#,
    );
    let mut running = dir.start(&["--yes"]);
    // it waits, saying how far behind it is, as typed progress
    wait_for_journal(
        &dir,
        &mut running,
        Duration::from_secs(20),
        "progress with bytes behind",
        |recs| {
            recs.iter().any(|r| {
                kind(r) == "progress"
                    && r["entry"]["progress"]["catch_up"]["bytes_behind"]
                        .as_u64()
                        .is_some_and(|b| b > 0)
            })
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !running.exited(),
        "the proof must wait while replay is paused"
    );
    let resumed_at = Instant::now();
    rt.block_on(exec(&standby, "select pg_wal_replay_resume()"));
    let out = running.finish();
    out.assert_code(0, "the proof passes once replay resumes");
    assert!(
        resumed_at.elapsed() < Duration::from_secs(15),
        "it passed soon after the resume"
    );
    let journal = dir.journal();
    let recs = entries(&journal);
    let rs = results(&recs);
    assert_eq!(rs.len(), 1, "{rs:?}");
    assert_eq!(rs[0]["caught_up"], true);
    assert!(
        rs[0]["waited_secs"].as_f64().is_some_and(|s| s >= 2.0),
        "{}",
        rs[0]
    );
    rt.block_on(exec(&primary, &format!("drop table {table}")));
    assert_no_secret(&journal);
}

#[test]
fn a_replica_of_another_cluster_fails_at_once() {
    let mut dir = Dir::new();
    dir.env("OLD_URL", &rig_var("FERRY_TEST_PG_PRIMARY"));
    // the target cluster: writable, and not made from the primary
    dir.env("REPLICA_URL", &rig_var("FERRY_TEST_PG_TARGET"));
    proof_runbook(
        &dir,
        r#"{ caught_up = { primary = "old", replica = "replica" } }"#,
    );
    let started = Instant::now();
    let out = dir.run(&["--yes"]);
    out.assert_code(1, "a replica of another cluster is an error");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "not a wait until the timeout"
    );
    assert!(
        out.stdout
            .contains("`replica` is not a replica of `old`: its system identifier is"),
        "{}",
        out.show()
    );
    assert_no_secret(&dir.journal());
}

#[test]
fn a_missing_slot_fails_at_once() {
    let mut dir = Dir::new();
    dir.env("OLD_URL", &rig_var("FERRY_TEST_PG_PRIMARY"));
    dir.env("REPLICA_URL", &rig_var("FERRY_TEST_PG_TARGET"));
    proof_runbook(
        &dir,
        r#"{ caught_up = { primary = "old", slot = "no_such_slot_here" } }"#,
    );
    let started = Instant::now();
    let out = dir.run(&["--yes"]);
    out.assert_code(1, "a missing slot is an error");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        out.stdout
            .contains("there is no replication slot `no_such_slot_here` on `old`"),
        "{}",
        out.show()
    );
    assert_no_secret(&dir.journal());
}

/// A subscription on the target cluster to a publication on the primary, dropped
/// (with its slot) when the test ends.
struct Subscription {
    tgt_url: String,
    name: String,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        support::pg::cleanup(vec![(
            self.tgt_url.clone(),
            format!("drop subscription if exists {}", self.name),
        )]);
    }
}

#[test]
fn a_logical_slot_proof_passes_once_the_subscriber_confirmed() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let pair = rt.block_on(DbPair::new("caught_up_logical"));
    let sub = unique("ferry_sub");
    let conninfo = pair.src_url.clone();
    rt.block_on(async {
        exec(
            &pair.src_url,
            &format!(
                "create table items (id bigint primary key, v text);
                 insert into items select g, 'v' || g from generate_series(1, 500) g;
                 create publication {sub} for table items"
            ),
        )
        .await;
        exec(
            &pair.tgt_url,
            "create table items (id bigint primary key, v text)",
        )
        .await;
        exec(
            &pair.tgt_url,
            &format!("create subscription {sub} connection '{conninfo}' publication {sub}"),
        )
        .await;
    });
    let _sub = Subscription {
        tgt_url: pair.tgt_url.clone(),
        name: sub.clone(),
    };
    // wait for the initial copy, then write more: the proof must cover these rows
    let deadline = Instant::now() + Duration::from_secs(30);
    while rt.block_on(scalar(&pair.tgt_url, "select count(*)::text from items")) != "500" {
        assert!(Instant::now() < deadline, "the initial sync did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }
    rt.block_on(exec(
        &pair.src_url,
        "insert into items select g, 'late' from generate_series(501, 3000) g; update items set v = 'changed' where id <= 100",
    ));

    let mut dir = Dir::new();
    dir.env("OLD_URL", &pair.src_url);
    dir.env("REPLICA_URL", &pair.tgt_url);
    proof_runbook(
        &dir,
        &format!(r#"{{ caught_up = {{ primary = "old", slot = "{sub}" }} }}"#),
    );
    let out = dir.run(&["--yes"]);
    out.assert_code(0, "the subscriber confirms past the position");
    // what was written before the wait began has been applied on the target
    assert_eq!(
        rt.block_on(scalar(
            &pair.tgt_url,
            "select count(*)::text || ' ' || count(*) filter (where v = 'changed')::text from items"
        )),
        "3000 100"
    );
    let journal = dir.journal();
    let recs = entries(&journal);
    let rs = results(&recs);
    assert_eq!(rs.len(), 1, "{rs:?}");
    assert_eq!(rs[0]["slot"].as_str(), Some(sub.as_str()));
    assert_eq!(rs[0]["caught_up"], true);
    let (p, a) = (
        lsn(rs[0]["primary_lsn"].as_str().expect("primary_lsn")),
        lsn(rs[0]["applied_lsn"].as_str().expect("applied_lsn")),
    );
    assert!(a >= p, "confirmed flush {a} reached {p}");
    json_report(&journal);
    assert_no_secret(&journal);
    drop(_sub);
    drop(pair);
}
