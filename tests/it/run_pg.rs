//! End-to-end tests of `ferry run --headless` on the real binary against the rig's real
//! PostgreSQL primary (`FERRY_TEST_PG_PRIMARY`, started by `scripts/test`): a `sql` step's
//! `expect` (met and missed), a `wait` on a SQL condition that a concurrent insert makes
//! true, a server that refuses connections (exit 3), and the URL password staying out
//! of stdout, stderr and the journal when a step fails with a server error.
//!
//! Tests fail, never skip, when the rig's variables are unset. Every ferry process runs
//! under a 60s watchdog: a hang kills it and fails the test with what it printed so far.

use serde_json::Value;
use sqlx::{Connection, PgConnection};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support;
use support::headless::{dump, Dir as HeadlessDir, Running};
use support::pg::{cleanup, rig_var, unique};

/// The rig's PostgreSQL password (scripts/rig.sh); it must never be shown or stored.
const RIG_PASSWORD: &str = "ferry-test-secret-pw";

fn primary() -> String {
    let url = rig_var("FERRY_TEST_PG_PRIMARY");
    assert!(
        url.contains(RIG_PASSWORD),
        "FERRY_TEST_PG_PRIMARY should carry the rig password (the redaction tests rely on it)"
    );
    url
}

/// Run SQL on `url` from the test itself.
fn pg(url: &str, sql: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let mut c = PgConnection::connect(url)
            .await
            .unwrap_or_else(|e| panic!("the test cannot connect to the rig's primary: {e}"));
        let rows: Vec<String> = sqlx::raw_sql(sql)
            .fetch_all(&mut c)
            .await
            .unwrap_or_else(|e| panic!("the test's own SQL failed: {e}\n{sql}"))
            .iter()
            .map(|r| {
                use sqlx::Row;
                r.try_get_unchecked::<String, _>(0).unwrap_or_default()
            })
            .collect();
        let _ = c.close().await;
        rows
    })
}

/// Drops a table when the test ends, pass or fail.
struct DropTable {
    url: String,
    table: String,
}

impl Drop for DropTable {
    fn drop(&mut self) {
        let sql = format!("drop table if exists {}", self.table);
        cleanup(vec![(self.url.clone(), sql)]);
    }
}

/// A test directory (the headless harness's) whose runbook's connection `db` reads
/// `${env:DB_URL}`.
struct Dir(HeadlessDir);

impl Dir {
    fn new(db_url: &str) -> Self {
        let mut d = HeadlessDir::new();
        d.env("DB_URL", db_url);
        Dir(d)
    }

    /// Write `runbook.toml`: `[runbook]`, `[connections.db]`, then one phase with `steps`.
    fn runbook(&self, steps: &str) {
        self.0.runbook(
            "pg",
            &format!(
                "[connections.db]\nurl = \"${{env:DB_URL}}\"\n\n[[phase]]\nid = \"p\"\n\n{steps}"
            ),
        );
    }
}

impl std::ops::Deref for Dir {
    type Target = HeadlessDir;
    fn deref(&self) -> &HeadlessDir {
        &self.0
    }
}

/// Complete lines of a journal, parsed (a line being written right now is skipped).
fn entries(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn events<'a>(recs: &'a [Value], ty: &str, step: &str) -> Vec<&'a Value> {
    support::headless::events(recs, ty, Some(step))
}

fn ts(r: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(r["ts"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("bad ts in {r}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// 14. sql with expect
// ---------------------------------------------------------------------------------------------

#[test]
fn a_sql_step_passes_when_its_expectation_holds_and_fails_when_not() {
    let url = primary();
    let table = unique("ferry_e2e_expect");
    let _cleanup = DropTable {
        url: url.clone(),
        table: table.clone(),
    };

    let dir = Dir::new(&url);
    dir.runbook(&format!(
        "  [[phase.step]]\n  id = \"make-and-count\"\n  kind = \"sql\"\n  connection = \"db\"\n  \
         sql = \"create table {table} (id int primary key); insert into {table} values (1); select count(*) from {table}\"\n  \
         expect = 1\n  timeout = \"30s\"\n"
    ));
    let out = dir.run(&["--yes"]);
    out.assert_code(0, "a sql step whose expectation holds");
    assert!(
        out.stdout.contains("make-and-count"),
        "stdout names the step\n{}",
        out.show()
    );
    assert_eq!(
        pg(&url, &format!("select count(*)::text from {table}")),
        ["1"],
        "the step's SQL really ran on the primary"
    );
    let recs = entries(&dir.journal());
    let fin = events(&recs, "finished", "make-and-count");
    assert_eq!(fin.len(), 1, "{}", dump(&recs));
    assert_eq!(
        fin[0]["entry"]["outcome"]["outcome"],
        "succeeded",
        "{}",
        dump(&recs)
    );

    let dir = Dir::new(&url);
    dir.runbook(&format!(
        "  [[phase.step]]\n  id = \"count-is-wrong\"\n  kind = \"sql\"\n  connection = \"db\"\n  \
         sql = \"select count(*) from {table}\"\n  expect = 2\n  timeout = \"30s\"\n\n\
         \x20 [[phase.step]]\n  id = \"never\"\n  kind = \"shell\"\n  run = \"touch never.marker\"\n"
    ));
    let out = dir.run(&["--yes"]);
    out.assert_code(1, "a sql step whose expectation fails");
    assert!(
        out.stdout.contains("expected 2, got 1"),
        "stdout should say what was expected and what came back\n{}",
        out.show()
    );
    assert!(
        !dir.path().join("never.marker").exists(),
        "the run must halt on the failed expectation"
    );
    let recs = entries(&dir.journal());
    let fin = events(&recs, "finished", "count-is-wrong");
    assert_eq!(fin.len(), 1, "{}", dump(&recs));
    assert_eq!(
        fin[0]["entry"]["outcome"]["outcome"],
        "failed",
        "{}",
        dump(&recs)
    );
}

// ---------------------------------------------------------------------------------------------
// 15. wait until a SQL condition holds
// ---------------------------------------------------------------------------------------------

#[test]
fn a_wait_step_passes_once_a_concurrent_insert_makes_its_query_true() {
    let url = primary();
    let table = unique("ferry_e2e_wait");
    let _cleanup = DropTable {
        url: url.clone(),
        table: table.clone(),
    };
    pg(&url, &format!("create table {table} (id int)"));

    let dir = Dir::new(&url);
    dir.runbook(&format!(
        "  [[phase.step]]\n  id = \"row-arrives\"\n  kind = \"wait\"\n  \
         until = {{ sql = \"select count(*) > 0 from {table}\", connection = \"db\" }}\n  \
         every = \"200ms\"\n  timeout = \"40s\"\n"
    ));
    let running = dir.start(&["--yes"]);
    // wait until ferry is really waiting: the step started
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let started = dir
            .journals()
            .first()
            .is_some_and(|j| !events(&entries(j), "started", "row-arrives").is_empty());
        if started {
            break;
        }
        assert!(Instant::now() < deadline, "the wait step never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(1));
    let inserted_at = chrono::Utc::now();
    pg(&url, &format!("insert into {table} values (1)"));
    let out = running.finish();
    out.assert_code(0, "the wait step after the row arrived");

    let recs = entries(&dir.journal());
    let fin = events(&recs, "finished", "row-arrives");
    assert_eq!(fin.len(), 1, "{}", dump(&recs));
    assert_eq!(
        fin[0]["entry"]["outcome"]["outcome"],
        "succeeded",
        "{}",
        dump(&recs)
    );
    let done = ts(fin[0]);
    assert!(
        done >= inserted_at - chrono::Duration::milliseconds(50),
        "the wait step finished at {done}, before the row was inserted at {inserted_at}\n{}",
        dump(&recs)
    );
    assert!(
        out.stdout.contains("waiting"),
        "stdout should show the step waiting while the table was empty\n{}",
        out.show()
    );
}

// ---------------------------------------------------------------------------------------------
// 16. A server that refuses connections
// ---------------------------------------------------------------------------------------------

/// `url` with its port replaced.
fn with_port(url: &str, port: u16) -> String {
    let at = url.rfind('@').expect("URL has user info");
    let rest = &url[at + 1..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host = rest[..end]
        .rsplit_once(':')
        .map_or(&rest[..end], |(h, _)| h);
    format!("{}@{host}:{port}{}", &url[..at], &rest[end..])
}

#[test]
fn a_refused_connection_ends_the_run_with_exit_3_and_names_the_problem() {
    let url = primary();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        l.local_addr().expect("local addr").port()
    }; // closed again: nothing listens there now
    let closed = with_port(&url, port);
    assert!(
        closed.contains(&format!(":{port}/")),
        "bad test URL {closed}"
    );

    let dir = Dir::new(&closed);
    dir.runbook(
        "  [[phase.step]]\n  id = \"probe\"\n  kind = \"sql\"\n  connection = \"db\"\n  sql = \"select 1\"\n\n\
         \x20 [[phase.step]]\n  id = \"never\"\n  kind = \"shell\"\n  run = \"touch never.marker\"\n",
    );
    let started = Instant::now();
    let out = dir.run(&["--yes"]);
    let took = started.elapsed();
    out.assert_code(3, "a run whose database refuses connections");
    assert!(
        took < Duration::from_secs(30),
        "giving up took {took:?} (want < 30s)"
    );
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("unreachable"),
        "the output should say a service is unreachable\n{}",
        out.show()
    );
    assert!(
        all.contains("`db`") && all.contains(&format!("127.0.0.1:{port}")),
        "the output should name the connection `db` and where it tried to connect\n{}",
        out.show()
    );
    assert!(
        all.to_lowercase().contains("refused"),
        "the output should say the connection was refused\n{}",
        out.show()
    );
    assert!(
        !all.contains(RIG_PASSWORD),
        "the URL password leaked\n{}",
        out.show()
    );
    assert!(
        !dir.path().join("never.marker").exists(),
        "nothing may run after the unreachable step"
    );
    let journal = std::fs::read_to_string(dir.journal()).unwrap_or_default();
    assert!(
        !journal.contains(RIG_PASSWORD),
        "the URL password leaked into the journal"
    );
}

// ---------------------------------------------------------------------------------------------
// 17. The URL password never shows
// ---------------------------------------------------------------------------------------------

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.filter_map(|e| e.ok()) {
            let p = e.path();
            if p.is_dir() {
                files_under(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

#[test]
fn the_url_password_never_appears_after_a_server_error() {
    let url = primary();
    let missing = unique("ferry_e2e_no_such_table");
    let dir = Dir::new(&url);
    dir.runbook(&format!(
        "  [[phase.step]]\n  id = \"shows-url\"\n  kind = \"shell\"\n  \
         run = 'echo \"connecting to $DB_URL\"; echo \"stderr: $DB_URL\" >&2; pw=${{DB_URL#*://*:}}; echo \"bare: ${{pw%%@*}}\"'\n\n\
         \x20 [[phase.step]]\n  id = \"works\"\n  kind = \"sql\"\n  connection = \"db\"\n  sql = \"select current_user\"\n\n\
         \x20 [[phase.step]]\n  id = \"server-error\"\n  kind = \"sql\"\n  connection = \"db\"\n  \
         sql = \"select * from {missing}\"\n  timeout = \"30s\"\n"
    ));
    let out = dir.run(&["--yes"]);
    out.assert_code(1, "a run whose sql step fails with a server error");
    assert!(
        out.stdout.contains("does not exist") && out.stdout.contains("42P01"),
        "stdout should show the server's error (undefined table, SQLSTATE 42P01)\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("bare: "),
        "the shell step printed the bare password (masked)\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("connecting to postgres://"),
        "the shell step's output is shown (masked)\n{}",
        out.show()
    );
    assert!(
        !out.stdout.contains(RIG_PASSWORD),
        "the URL password leaked to stdout\n{}",
        out.show()
    );
    assert!(
        !out.stderr.contains(RIG_PASSWORD),
        "the URL password leaked to stderr\n{}",
        out.show()
    );
    let mut files = Vec::new();
    files_under(dir.path(), &mut files);
    assert!(
        !dir.journals().is_empty(),
        "a journal was written: {files:?}"
    );
    for f in &files {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default()).into_owned();
        assert!(
            !text.contains(RIG_PASSWORD),
            "the URL password leaked into {}:\n{text}",
            f.display()
        );
    }
    let recs = entries(&dir.journal());
    let fin = events(&recs, "finished", "server-error");
    assert_eq!(fin.len(), 1, "{}", dump(&recs));
    assert_eq!(
        fin[0]["entry"]["outcome"]["outcome"],
        "failed",
        "{}",
        dump(&recs)
    );
}

// ---------------------------------------------------------------------------------------------
// 18. A stopped statement does not run on in the server
// ---------------------------------------------------------------------------------------------

/// How many backends other than the caller's run a statement containing `marker`.
fn running_with(url: &str, marker: &str) -> usize {
    let n = pg(
        url,
        &format!(
            "select count(*)::text from pg_stat_activity where query like '%{marker}%' \
             and pid <> pg_backend_pid()"
        ),
    );
    n.first().and_then(|n| n.parse().ok()).unwrap_or(usize::MAX)
}

/// Poll until no backend runs `marker` any more; the time it took, or `None` after `limit`.
fn gone_within(url: &str, marker: &str, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if running_with(url, marker) == 0 {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Wait until the server runs the statement marked `marker`.
fn wait_running(url: &str, marker: &str, running: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while running_with(url, marker) == 0 {
        if Instant::now() >= deadline || matches!(running.child.try_wait(), Ok(Some(_))) {
            let _ = running.child.kill();
            let _ = running.child.wait();
            panic!("the statement never ran\n{}", running.collect(None).show());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sleeper(marker: &str, extra: &str) -> String {
    format!(
        "  [[phase.step]]\n  id = \"slow\"\n  kind = \"sql\"\n  connection = \"db\"\n  \
         sql = \"select pg_sleep(60) /* {marker} */\"\n{extra}\n\n"
    )
}

/// A timed-out statement is cancelled on the server, not left running beside
/// the steps that come after it (holding whatever locks it took).
#[test]
fn a_timed_out_sql_step_is_cancelled_on_the_server() {
    let url = primary();
    let marker = unique("ferry_e2e_timeout");
    let dir = Dir::new(&url);
    dir.runbook(&format!(
        "{}  [[phase.step]]\n  id = \"after\"\n  kind = \"shell\"\n  run = \"sleep 4\"\n",
        sleeper(&marker, "  timeout = \"2s\"\n  on_failure = \"continue\"")
    ));
    let mut running = dir.start(&["--yes"]);
    wait_running(&url, &marker, &mut running);
    // the step times out after 2s; by then plus a moment the server must have let go
    let gone = gone_within(&url, &marker, Duration::from_secs(6));
    let out = running.finish();
    out.assert_code(1, "a run with a timed-out step");
    assert!(
        gone.is_some(),
        "the statement still ran on the server after the step timed out\n{}",
        out.show()
    );
    assert!(out.stdout.contains("timed out"), "{}", out.show());
}

/// Ctrl-C during a statement stops it on the server and ferry exits promptly
/// (it used to wait for the statement to end by itself before exiting).
#[test]
fn ctrl_c_during_a_sql_step_cancels_it_and_exits_promptly() {
    let url = primary();
    let marker = unique("ferry_e2e_sigint");
    let dir = Dir::new(&url);
    dir.runbook(&sleeper(&marker, ""));
    let mut running = dir.start(&["--yes"]);
    wait_running(&url, &marker, &mut running);
    let pid = i32::try_from(running.child.id()).expect("pid fits in i32");
    let sent = Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = running.finish();
    out.assert_code(1, "an interrupted run");
    assert!(
        sent.elapsed() < Duration::from_secs(15),
        "ferry took {:?} to stop\n{}",
        sent.elapsed(),
        out.show()
    );
    assert_eq!(running_with(&url, &marker), 0, "the statement still runs");
    let recs = entries(&dir.journal());
    let fin = events(&recs, "finished", "slow");
    assert_eq!(fin.len(), 1, "{}", dump(&recs));
    assert_eq!(fin[0]["entry"]["outcome"]["outcome"], "cancelled");
}

/// `kill -9` during a statement: the server notices within seconds that ferry is
/// gone (client_connection_check_interval) and stops it, so a resume's retry
/// does not run beside it.
#[test]
fn kill_9_during_a_sql_step_does_not_leave_it_running_on_the_server() {
    let url = primary();
    let marker = unique("ferry_e2e_kill9");
    let dir = Dir::new(&url);
    dir.runbook(&sleeper(&marker, ""));
    let mut running = dir.start(&["--yes"]);
    wait_running(&url, &marker, &mut running);
    let _ = running.child.kill();
    let _ = running.child.wait();
    let gone = gone_within(&url, &marker, Duration::from_secs(10));
    assert!(
        gone.is_some(),
        "the dead run's statement still ran on the server 10s after the kill"
    );
}

/// libpq and sqlx also take the password as a query parameter
/// (`postgres://user@host/db?password=…`): it is a secret like any other.
#[test]
fn a_password_given_as_a_query_parameter_never_shows() {
    let url = primary();
    // postgres://ferry:PW@host:port/db -> postgres://ferry@host:port/db?password=PW
    let user_at = url.find("://").map_or(0, |i| i + 3);
    let at = url.rfind('@').expect("URL has user info");
    let colon = url[user_at..at].find(':').map_or(at, |i| user_at + i);
    let qp = format!("{}{}?password={RIG_PASSWORD}", &url[..colon], &url[at..]);
    assert!(
        qp.starts_with("postgres") && !qp.contains(&format!(":{RIG_PASSWORD}@")),
        "bad test URL"
    );
    let dir = Dir::new(&qp);
    dir.runbook(
        "  [[phase.step]]\n  id = \"echo\"\n  kind = \"shell\"\n  run = 'echo \"url: $DB_URL\"'\n\n\
         \x20 [[phase.step]]\n  id = \"works\"\n  kind = \"sql\"\n  connection = \"db\"\n  \
         sql = \"select current_user\"\n  expect = \"ferry\"\n",
    );
    let out = dir.run(&["--yes"]);
    out.assert_code(0, "the query-parameter password works");
    let journal = std::fs::read_to_string(dir.journal()).unwrap_or_default();
    for (what, text) in [
        ("stdout", &out.stdout),
        ("stderr", &out.stderr),
        ("journal", &journal),
    ] {
        assert!(
            !text.contains(RIG_PASSWORD),
            "{what} shows the password\n{text}"
        );
    }
    assert!(out.stdout.contains("password=••••••"), "{}", out.show());
}
