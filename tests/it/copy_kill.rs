//! Exactly-once under violence: the real `ferry run` binary copies several tables in
//! parallel from the rig's primary to its target cluster (a runbook with a copy step,
//! `url = "${env:SRC}"`), is killed with SIGKILL at random moments, and is resumed
//! with `ferry run ... --resume --yes`. The result must match the source exactly:
//! the same fingerprint (`md5(string_agg(t::text, ...))`, an independent query) and
//! no duplicates (`count(*) = count(distinct key)`). A second test restarts the
//! source cluster (`pg_ctl restart -m fast`) mid-copy: the copy must retry and finish
//! with identical data. That source is a cluster of the test's own in the rig
//! directory: restarting the rig's primary cuts off whatever other test is using it at
//! that moment (tests run in parallel), as a first version of this test showed.
//!
//! Tests fail, never skip, when the rig's variables are unset.

use sqlx::{Connection, PgConnection};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Longest a ferry process may take before the test gives up on it.
const WATCHDOG: Duration = Duration::from_secs(180);

use crate::support;
use support::pg::{with_db, OwnCluster, TestDb};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn exec(url: &str, sql: &str) {
    rt().block_on(support::pg::exec(url, sql))
}

fn scalar(url: &str, sql: &str) -> String {
    rt().block_on(support::pg::scalar(url, sql))
}

/// A database made for the test on a rig cluster, dropped at the end.
fn test_db(var: &str, prefix: &str) -> TestDb {
    rt().block_on(TestDb::new(var, prefix))
}

const SCHEMA: &str = "
create table accounts (id bigint primary key, email text not null, created timestamptz, blob bytea);
create table orders (id bigint primary key, account_id bigint not null references accounts(id), total numeric(12,2), note text);
create table items (order_id bigint references orders(id), n int, sku text, qty int, primary key (order_id, n));
create table tags (tag text primary key, weight float8);
create table events (account_id bigint, kind text, at timestamptz);
";

/// Tables, with the key used for the duplicate check (None: no key).
const TABLES: &[(&str, Option<&str>)] = &[
    ("accounts", Some("id")),
    ("orders", Some("id")),
    ("items", Some("(order_id, n)")),
    ("tags", Some("tag")),
    ("events", None),
];

fn seed(url: &str, scale: i64) {
    exec(url, SCHEMA);
    exec(
        url,
        &format!(
            "insert into accounts select i, 'user' || i || '@example.com', timestamptz '2020-01-01' + i * interval '1 minute', \
               case when i % 3 = 0 then null else decode(md5(i::text), 'hex') end from generate_series(1, {a}) i;
             insert into orders select i, 1 + (i * 7) % {a}, (i % 100000) / 100.0, case when i % 4 = 0 then null else E'note\\t' || i end \
               from generate_series(1, {o}) i;
             insert into items select 1 + i / 3, i % 3, 'sku-' || (i % 977), i % 11 from generate_series(0, {it}) i;
             insert into tags select 'tag ' || md5(i::text), i * 0.25 from generate_series(1, {t}) i;
             insert into events select 1 + i % {a}, 'kind' || (i % 5), timestamptz '2021-06-01' + i * interval '1 second' \
               from generate_series(1, {e}) i;
             analyze;",
            a = scale,
            o = scale * 2,
            it = scale * 3 - 1,
            t = scale / 2,
            e = scale
        ),
    );
}

/// Chunks checkpointed on the target so far (0 before the table exists).
fn checkpoints(url: &str) -> u64 {
    rt().block_on(async {
        let mut c = PgConnection::connect(url).await.ok()?;
        sqlx::query_scalar::<_, i64>("select count(*) from ferry.copy_checkpoint")
            .fetch_one(&mut c)
            .await
            .ok()
    })
    .unwrap_or(0) as u64
}

fn fingerprint(url: &str, table: &str) -> String {
    scalar(
        url,
        &format!("select count(*)::text || ' ' || coalesce(md5(string_agg(t::text, '|' order by t::text)), '-') from {table} t"),
    )
}

fn assert_exact(src: &str, tgt: &str, what: &str) {
    for (t, key) in TABLES {
        assert_eq!(
            fingerprint(src, t),
            fingerprint(tgt, t),
            "{what}: table {t} differs"
        );
        if let Some(k) = key {
            assert_eq!(
                scalar(
                    tgt,
                    &format!("select (count(*) - count(distinct {k}))::text from {t}")
                ),
                "0",
                "{what}: duplicates in {t}"
            );
        }
    }
}

fn runbook(dir: &Path, chunk_rows: u64, parallel: u32) -> PathBuf {
    let path = dir.join("copy.toml");
    std::fs::write(
        &path,
        format!(
            "[runbook]\nname = \"copy-kill\"\ntitle = \"copy under kill -9\"\nformat = 1\n\n\
             [connections.src]\nurl = \"${{env:SRC}}\"\n[connections.dst]\nurl = \"${{env:DST}}\"\n\n\
             [[phase]]\nid = \"p\"\n\n  [[phase.step]]\n  id = \"copy-all\"\n  kind = \"copy\"\n  from = \"src\"\n  to = \"dst\"\n\
             \x20 tables = [\"public.*\"]\n  chunk_rows = {chunk_rows}\n  parallel = {parallel}\n  truncate = true\n  confirm = \"none\"\n"
        ),
    )
    .expect("write runbook");
    path
}

/// Start `ferry run` (fresh or `--resume`), output appended to `log`.
fn start(rb: &Path, journal: &Path, resume: bool, src: &str, dst: &str, log: &Path) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.arg("run")
        .arg(rb)
        .arg("--headless")
        .arg("--yes")
        .arg("--journal")
        .arg(journal);
    if resume {
        cmd.arg("--resume");
    }
    cmd.env("SRC", src)
        .env("DST", dst)
        .env("FERRY_LOG", "warn")
        .current_dir(rb.parent().unwrap_or(Path::new(".")))
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().expect("log")))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("spawn ferry")
}

fn wait(child: &mut Child, log: &Path) -> ExitStatus {
    let deadline = Instant::now() + WATCHDOG;
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "ferry did not finish within {WATCHDOG:?}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A small xorshift generator, seeded from the clock (the seed is printed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

/// Run until done, resuming after each kill. Returns the output.
fn run_to_completion(rb: &Path, dir: &Path, src: &str, dst: &str, kills: &[Duration]) -> String {
    let journal = dir.join("journal.jsonl");
    let log = dir.join("ferry.log");
    let _ = std::fs::remove_file(&journal);
    let _ = std::fs::remove_file(&log);
    let mut resume = false;
    for &after in kills {
        let fresh = !resume || !journal.exists();
        let mut child = start(rb, &journal, !fresh, src, dst, &log);
        std::thread::sleep(after);
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("kill -9");
            let _ = child.wait();
            std::fs::write(dir.join("kills.txt"), format!("killed after {after:?}\n")).ok();
        } else {
            // It finished before the kill: nothing left to resume.
            let st = child.wait().expect("wait");
            assert!(
                st.success(),
                "ferry failed:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            return std::fs::read_to_string(&log).unwrap_or_default();
        }
        resume = true;
    }
    let fresh = !resume || !journal.exists();
    let mut child = start(rb, &journal, !fresh, src, dst, &log);
    let st = wait(&mut child, &log);
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(st.success(), "the final ferry run failed ({st}):\n{out}");
    out
}

#[test]
fn kill_9_at_random_moments_then_resume_loses_and_doubles_nothing() {
    let src = test_db("FERRY_TEST_PG_PRIMARY", "kill_src");
    seed(&src.url, 60_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let rb = runbook(dir.path(), 3000, 4);

    // Calibrate: an uninterrupted run, which must be exact too.
    let tgt = test_db("FERRY_TEST_PG_TARGET", "kill_tgt");
    exec(&tgt.url, SCHEMA);
    let t0 = Instant::now();
    run_to_completion(&rb, dir.path(), &src.url, &tgt.url, &[]);
    let full = t0.elapsed();
    assert_exact(&src.url, &tgt.url, "uninterrupted run");
    drop(tgt);

    let seed = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(7) as u64 | 1;
    eprintln!("kill trials: seed {seed}, an uninterrupted run takes {full:?}");
    let mut rng = Rng(seed);
    let span = full.as_millis().max(400) as u64;
    let trials: Vec<Vec<Duration>> = vec![
        vec![Duration::from_millis(rng.between(30, span / 4))],
        vec![Duration::from_millis(rng.between(span / 4, span * 3 / 4))],
        vec![Duration::from_millis(rng.between(span / 2, span))],
        vec![
            Duration::from_millis(rng.between(50, span / 2)),
            Duration::from_millis(rng.between(50, span / 2)),
            Duration::from_millis(rng.between(50, span / 2)),
        ],
    ];
    for (i, kills) in trials.iter().enumerate() {
        let tgt = test_db("FERRY_TEST_PG_TARGET", "kill_tgt");
        exec(&tgt.url, SCHEMA);
        // Stale rows the first run's truncate must remove.
        exec(&tgt.url, "insert into tags values ('stale', 0)");
        let out = run_to_completion(&rb, dir.path(), &src.url, &tgt.url, kills);
        let resumed: Vec<&str> = out
            .lines()
            .filter(|l| {
                l.contains("resuming step") || l.contains("✔ copy-all") || l.contains("emptied")
            })
            .collect();
        eprintln!("trial {i}, kills after {kills:?}: {resumed:#?}");
        if std::env::var("COPY_KILL_VERBOSE").is_ok() {
            eprintln!("{out}");
        }
        assert_exact(
            &src.url,
            &tgt.url,
            &format!("trial {i} (kills after {kills:?}, seed {seed})\n{out}"),
        );
    }
}

/// Which side of the copy lives on the test's own cluster and is restarted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Source,
    Target,
}

/// Copy between the test's own cluster and the rig, restart the own cluster mid-copy,
/// and expect retries and an exact result.
fn restart_mid_copy(side: Side) {
    let cluster = OwnCluster::start();
    exec(&cluster.url, "create database restart_db");
    let own = with_db(&cluster.url, "restart_db");
    let rig_db;
    let (src_url, tgt_url) = match side {
        Side::Source => {
            rig_db = test_db("FERRY_TEST_PG_TARGET", "restart_tgt");
            (own, rig_db.url.clone())
        }
        Side::Target => {
            rig_db = test_db("FERRY_TEST_PG_PRIMARY", "restart_src");
            (rig_db.url.clone(), own)
        }
    };
    seed(&src_url, 150_000);
    exec(&tgt_url, SCHEMA);
    let dir = tempfile::tempdir().expect("tempdir");
    let rb = runbook(dir.path(), 2000, 2);
    let journal = dir.path().join("journal.jsonl");
    let log = dir.path().join("ferry.log");
    let mut child = start(&rb, &journal, false, &src_url, &tgt_url, &log);

    // Wait until some chunks are in, then restart.
    let deadline = Instant::now() + Duration::from_secs(60);
    while checkpoints(&tgt_url) < 5 {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "ferry ended before the restart:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(Instant::now() < deadline, "no chunk was copied within 60s");
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.restart_fast();
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the copy should still be running after the restart"
    );

    let st = wait(&mut child, &log);
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        st.success(),
        "ferry failed after the {side:?} restart ({st}):\n{out}"
    );
    assert!(
        out.contains("retrying in"),
        "the copy should say it retried:\n{out}"
    );
    for line in out.lines().filter(|l| l.contains("retrying")) {
        eprintln!("{line}");
    }
    assert_exact(
        &src_url,
        &tgt_url,
        &format!("after a {side:?} restart\n{out}"),
    );
}

#[test]
fn restarting_the_source_mid_copy_retries_and_completes_exactly() {
    restart_mid_copy(Side::Source);
}

#[test]
fn restarting_the_target_mid_copy_retries_and_completes_exactly() {
    restart_mid_copy(Side::Target);
}

/// The target connection is cut while a chunk is streaming and both ends of the
/// pipe are full: the source side must notice and the chunk must be retried, not
/// hang for ever (it did: the reader stayed blocked on a full channel once the
/// writer had failed). To make "mid-stream, buffers full" certain, a transaction of
/// the test holds an uncommitted row with a key the chunk loads, so the target's COPY
/// waits on it; then the test terminates that COPY's backend.
#[test]
fn terminating_the_target_backend_mid_chunk_retries_instead_of_hanging() {
    let src = test_db("FERRY_TEST_PG_PRIMARY", "term_src");
    let tgt = test_db("FERRY_TEST_PG_TARGET", "term_tgt");
    let table = "create table wide (id bigint primary key, body text);";
    exec(&src.url, table);
    exec(&tgt.url, table);
    // 40 MB in one chunk: far more than the socket buffers and the channel hold.
    exec(
        &src.url,
        "insert into wide select i, repeat(md5(i::text), 31) from generate_series(1, 40000) i; analyze",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let rb = runbook(dir.path(), 100_000, 1);
    // No truncate: it would wait for the held row's transaction.
    let text = std::fs::read_to_string(&rb).expect("runbook");
    std::fs::write(&rb, text.replace("truncate = true\n", "")).expect("runbook");
    let journal = dir.path().join("journal.jsonl");
    let log = dir.path().join("ferry.log");

    let rt = rt();
    let mut blocker = rt
        .block_on(PgConnection::connect(&tgt.url))
        .expect("connect the blocking session");
    rt.block_on(
        sqlx::raw_sql("begin; insert into wide values (100, 'blocker')").execute(&mut blocker),
    )
    .expect("hold an uncommitted row");

    let mut child = start(&rb, &journal, false, &src.url, &tgt.url, &log);
    let copy_waiting =
        "select pid::text from pg_stat_activity where application_name = 'ferry copy' \
                        and wait_event_type = 'Lock' limit 1";
    let deadline = Instant::now() + Duration::from_secs(60);
    let pid = loop {
        let pid = scalar(&tgt.url, &format!("select coalesce(({copy_waiting}), '')"));
        if !pid.is_empty() {
            break pid;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "ferry ended before its COPY waited on the held row:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(
            Instant::now() < deadline,
            "the copy never waited on the held row"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Let the source fill every buffer behind the stalled COPY, then cut it off.
    std::thread::sleep(Duration::from_secs(1));
    exec(&tgt.url, &format!("select pg_terminate_backend({pid})"));

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = std::fs::read_to_string(&log).unwrap_or_default();
        if out.contains("retrying in") {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the chunk was not retried within 30s of its target connection being cut (hung):\n{out}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    rt.block_on(sqlx::raw_sql("rollback").execute(&mut blocker))
        .expect("release the held row");
    let st = wait(&mut child, &log);
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(st.success(), "ferry failed after the retry ({st}):\n{out}");
    assert_eq!(
        fingerprint(&src.url, "wide"),
        fingerprint(&tgt.url, "wide"),
        "table wide differs after the retry\n{out}"
    );
}
