//! Seed 000 (the dating app: offline copy with verification) rehearsed end to end
//! on the rig: `runbooks/copy-and-verify.toml` with `runbooks/rig/copy-and-verify.vars.toml`,
//! `--headless --yes`, five times, each on fresh data. Legacy is a database on the
//! rig's primary, prod-v2 one on the target cluster, the legacy RDS instance and its
//! secret live in moto, and the production-only commands run their local
//! equivalents (a `psql` session of the app role as the fleet, rows as the load
//! balancer and DNS, a file as the status page). Each rehearsal asserts the run's
//! outcome, an independent fingerprint of every copied table against the legacy
//! data, and the side effects of the cutover; `ferry stats` over the five journals
//! gives finite figures for every step.

use crate::support;

use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::headless::{reader, Output, Running};
use support::pg::{cleanup, exec, fingerprint, rig_var, scalar, unique, with_db};

const RUNBOOK: &str = "runbooks/copy-and-verify.toml";
const RIG_VARS: &str = "runbooks/rig/copy-and-verify.vars.toml";
/// What the runbook copies (every `public.*` but the excluded `tmp_*` and `*_backup*`).
const TABLES: [&str; 4] = [
    "public.users",
    "public.profiles",
    "public.matches",
    "public.messages",
];
/// The runbook's `new_alb_dns` and `legacy_alb_dns` (its production values, kept on the rig).
const NEW_ALB: &str = "k8s-dating-api-0a1b2c3d4e-987654321.us-east-1.elb.amazonaws.com";
const LEGACY_ALB: &str = "dating-legacy-1234567890.us-east-1.elb.amazonaws.com";

/// The schema the app's migrations deploy on both sides.
const SCHEMA: &str = r#"
create table public.users (
  id bigserial primary key,
  email text not null unique,
  created_at timestamptz not null default now());
create table public.profiles (
  user_id bigint primary key references public.users (id),
  display_name text not null,
  bio text);
create table public.matches (
  id bigserial primary key,
  user_a_id bigint not null references public.users (id),
  user_b_id bigint not null references public.users (id),
  created_at timestamptz not null default now(),
  check (user_a_id <> user_b_id));
create table public.messages (
  id bigserial primary key,
  match_id bigint not null references public.matches (id),
  sender_id bigint not null references public.users (id),
  body text not null,
  sent_at timestamptz not null default now());
"#;

/// Legacy's data for rehearsal `n` (different each time), and the one-off tables the
/// runbook leaves behind on purpose.
fn legacy_data(n: usize) -> String {
    let users = 200 + 37 * n;
    format!(
        r#"
insert into public.users (email, created_at)
  select 'user' || g || '-r{n}@example.invalid', timestamptz '2026-01-01 00:00:00+00' + g * interval '7 minutes'
    from generate_series(1, {users}) g;
insert into public.profiles
  select id, 'Name ' || id, case when id % 3 = 0 then null else 'bio é ✓ ' || id || ' r{n}' end from public.users;
insert into public.matches (user_a_id, user_b_id, created_at)
  select g, g + 1, timestamptz '2026-02-01 00:00:00+00' + g * interval '1 hour' from generate_series(1, {users} - 1) g;
insert into public.messages (match_id, sender_id, body, sent_at)
  select (g % ({users} - 1)) + 1, (g % ({users} - 1)) + 1, 'message ' || g || E' \t r{n}',
         timestamptz '2026-03-01 00:00:00+00' + g * interval '1 second'
    from generate_series(1, {users} * 5) g;
create table public.tmp_import_2023 (id int primary key, junk text);
insert into public.tmp_import_2023 select g, 'junk' from generate_series(1, 10) g;
create table public.users_backup_2024 (id bigint primary key, email text);
insert into public.users_backup_2024 select id, email from public.users;
"#
    )
}

fn grants(role: &str) -> String {
    format!(
        "grant usage on schema public to {role};
         grant select, insert, update, delete on all tables in schema public to {role};
         grant usage on all sequences in schema public to {role};"
    )
}

/// The rig's stand-ins for the load balancer and DNS, in the target database.
const RIG_INFRA: &str = r#"
create schema rig;
create table rig.load_balancer (name text primary key, action text not null);
insert into rig.load_balancer values ('legacy', 'forward');
create table rig.dns (record text primary key, target text not null);
"#;

fn moto() -> String {
    rig_var("FERRY_TEST_MOTO_URL")
}

/// `aws --endpoint-url <moto> ARGS`; a failure fails the test.
fn aws(args: &[&str]) -> String {
    let out = Command::new("aws")
        .arg("--endpoint-url")
        .arg(moto())
        .args(args)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the aws CLI (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A background `psql` session of the app role (the rig's "fleet"), in a process group
/// of its own whose id is written to `pid_file`.
fn start_session(url: &str, app_name: &str, pid_file: &Path) -> Child {
    let child = Command::new("sh")
        .arg("-c")
        .arg("sleep 86400 | psql \"$APP_URL\"")
        .env("APP_URL", url)
        .env("PGAPPNAME", app_name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start the app session");
    std::fs::write(pid_file, child.id().to_string()).expect("write the pid file");
    child
}

/// Stop the process group named in `pid_file`, if it is still there.
fn stop_group(pid_file: &Path) {
    if let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    {
        // SAFETY: kill(2) on a process group this test (or its run) started.
        unsafe {
            libc::kill(-pid, libc::SIGTERM);
        }
    }
}

/// One rehearsal's databases (same name on the primary and the target cluster), its
/// app role on both clusters and its local fleet; all removed when it ends.
struct Rehearsal {
    n: usize,
    name: String,
    role: String,
    legacy_url: String,
    target_url: String,
    legacy_app_url: String,
    target_app_url: String,
    instance: String,
    secret: String,
    change_id: String,
    app_dir: tempfile::TempDir,
    fleet: Option<Child>,
}

const APP_PASSWORD: &str = "rig-app-pw-7";

impl Rehearsal {
    async fn new(n: usize) -> Rehearsal {
        let name = unique(&format!("seed000_r{n}"));
        let role = format!("{name}_app");
        let primary = rig_var("FERRY_TEST_PG_PRIMARY");
        let target = rig_var("FERRY_TEST_PG_TARGET");
        for admin in [&primary, &target] {
            exec(admin, &format!("create database {name}")).await;
            exec(
                admin,
                &format!("create role {role} login password '{APP_PASSWORD}'"),
            )
            .await;
        }
        let legacy_url = with_db(&primary, &name);
        let target_url = with_db(&target, &name);
        let app = |url: &str| {
            let (_, rest) = url.split_once('@').expect("a URL with credentials");
            format!("postgres://{role}:{APP_PASSWORD}@{rest}")
        };
        let r = Rehearsal {
            n,
            legacy_app_url: app(&legacy_url),
            target_app_url: app(&target_url),
            name: name.clone(),
            role: role.clone(),
            legacy_url,
            target_url,
            instance: name.replace('_', "-"),
            secret: format!("dating/legacy/{name}"),
            change_id: format!("rehearsal-{n}"),
            app_dir: tempfile::tempdir().expect("tempdir"),
            fleet: None,
        };
        exec(&r.legacy_url, SCHEMA).await;
        exec(&r.legacy_url, &legacy_data(n)).await;
        exec(&r.legacy_url, &grants(&role)).await;
        exec(&r.legacy_url, "analyze").await;
        exec(&r.target_url, SCHEMA).await;
        exec(&r.target_url, &grants(&role)).await;
        exec(&r.target_url, RIG_INFRA).await;
        exec(
            &r.target_url,
            &format!("insert into rig.dns values ('api', '{LEGACY_ALB}')"),
        )
        .await;
        aws(&[
            "rds",
            "create-db-instance",
            "--db-instance-identifier",
            &r.instance,
            "--db-instance-class",
            "db.t3.micro",
            "--engine",
            "postgres",
            "--allocated-storage",
            "20",
            "--master-username",
            "migration",
            "--master-user-password",
            "rig-master-pw-1",
        ]);
        // The rig has no read replica of the target: the copy's throttle reads a
        // ReplicaLag of 0 published here to moto's CloudWatch. This is an input the
        // throttle acts on, not a gate's result; without a datapoint the throttle
        // (rightly) pauses on a stale monitor.
        aws(&[
            "cloudwatch",
            "put-metric-data",
            "--namespace",
            "AWS/RDS",
            "--metric-name",
            "ReplicaLag",
            "--dimensions",
            &format!("DBInstanceIdentifier={}-ro1", r.instance),
            "--value",
            "0",
            "--unit",
            "Seconds",
        ]);
        aws(&[
            "secretsmanager",
            "create-secret",
            "--name",
            &r.secret,
            "--secret-string",
            "rig-legacy-credentials",
        ]);
        r
    }

    /// Start the legacy fleet and wait until its session is on legacy.
    async fn start_fleet(&mut self) {
        let pid_file = self.app_dir.path().join("legacy-api.pid");
        self.fleet = Some(start_session(&self.legacy_app_url, "legacy-api", &pid_file));
        let deadline = Instant::now() + Duration::from_secs(10);
        let sql =
            "select count(*)::text from pg_stat_activity where application_name = 'legacy-api'";
        while scalar(&self.legacy_url, sql).await != "1" {
            assert!(
                Instant::now() < deadline,
                "the legacy fleet's session never came up"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn run(&self, runs: &Path) -> Output {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let path = format!(
            "{}:{}",
            rig_var("FERRY_TEST_PG_BIN"),
            std::env::var("PATH").unwrap_or_default()
        );
        let work = runs.parent().expect("runs has a parent");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .current_dir(work)
            .arg("run")
            .arg(root.join(RUNBOOK))
            .args(["--headless", "--yes", "--operator", "rehearsal"])
            .arg("--vars")
            .arg(root.join(RIG_VARS))
            .arg("--runs-dir")
            .arg(runs)
            .args(["--var", &format!("change_id={}", self.change_id)])
            .args(["--var", &format!("app_role={}", self.role)])
            .args(["--var", &format!("legacy_instance={}", self.instance)])
            .args(["--var", &format!("legacy_secret_id={}", self.secret)])
            .args(["--var", &format!("target_replica={}-ro1", self.instance)])
            .env("LEGACY_DATABASE_URL", &self.legacy_url)
            .env("TARGET_DATABASE_URL", &self.target_url)
            .env("TARGET_APP_DATABASE_URL", &self.target_app_url)
            .env("LEGACY_APP_DATABASE_URL", &self.legacy_app_url)
            .env("RIG_APP_DIR", self.app_dir.path())
            .env("AWS_ENDPOINT_URL", moto())
            .env("PATH", path)
            .env("XDG_STATE_HOME", work.join("state"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ferry");
        let stdout = reader(child.stdout.take());
        let stderr = reader(child.stderr.take());
        Running {
            child,
            what: format!("rehearsal {} of {RUNBOOK}", self.n),
            stdout,
            stderr,
        }
        .finish()
    }
}

impl Drop for Rehearsal {
    fn drop(&mut self) {
        stop_group(&self.app_dir.path().join("legacy-api.pid"));
        stop_group(&self.app_dir.path().join("api.pid"));
        if let Some(mut c) = self.fleet.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let mut statements = Vec::new();
        for var in ["FERRY_TEST_PG_PRIMARY", "FERRY_TEST_PG_TARGET"] {
            if let Ok(admin) = std::env::var(var) {
                statements.push((
                    admin.clone(),
                    format!("drop database if exists {} with (force)", self.name),
                ));
                statements.push((admin, format!("drop role if exists {}", self.role)));
            }
        }
        cleanup(statements);
    }
}

/// The steps of a journal and their outcomes, in order.
fn step_outcomes(journal: &Path) -> Vec<(String, String)> {
    let recs = support::headless::entries(journal);
    support::headless::events(&recs, "finished", None)
        .into_iter()
        .map(|e| {
            (
                e["entry"]["step"].as_str().unwrap_or_default().to_string(),
                support::headless::outcome(e).to_string(),
            )
        })
        .collect()
}

fn journals(runs: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walk(runs)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_000_copy_and_verify_rehearses_five_times_on_the_rig() {
    let work = tempfile::tempdir().expect("tempdir");
    let runs = work.path().join("runs");
    for n in 0..5 {
        let mut r = Rehearsal::new(n).await;
        let mut want = Vec::new();
        for t in TABLES {
            want.push(fingerprint(&r.legacy_url, t).await);
        }
        let users: usize = scalar(&r.legacy_url, "select count(*)::text from public.users")
            .await
            .parse()
            .expect("a count");
        assert_eq!(users, 200 + 37 * n, "the seed data went in");
        r.start_fleet().await;

        let before = journals(&runs).len();
        let out = r.run(&runs);
        out.assert_code(0, "a rehearsal of seed 000");
        assert!(
            out.stdout.contains("run finished: all steps done"),
            "rehearsal {n} did not finish every step\n{}",
            out.show()
        );
        let js = journals(&runs);
        assert_eq!(js.len(), before + 1, "one journal per rehearsal");
        let journal = js
            .iter()
            .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .expect("a journal");
        let steps = step_outcomes(journal);
        assert!(steps.len() >= 30, "too few steps ran: {steps:?}");
        for (id, outcome) in &steps {
            assert_eq!(outcome, "succeeded", "step {id} in rehearsal {n}");
        }
        for id in ["copy-public", "verify-full", "legacy-delete", "dns-to-new"] {
            assert!(
                steps.iter().any(|(s, _)| s == id),
                "{id} did not run: {steps:?}"
            );
        }
        assert!(
            !steps.iter().any(|(s, _)| s.starts_with("rb-")),
            "a rollback-only step ran: {steps:?}"
        );

        // the data: an independent fingerprint of every copied table
        for (t, want) in TABLES.iter().zip(&want) {
            assert_eq!(
                &fingerprint(&r.target_url, t).await,
                want,
                "{t} differs after rehearsal {n}"
            );
        }
        // the one-off tables stayed behind
        assert_eq!(
            scalar(
                &r.target_url,
                "select count(*)::text from pg_tables where schemaname = 'public' and (tablename like 'tmp_%' or tablename like '%_backup%')"
            )
            .await,
            "0"
        );
        // the cutover's side effects
        assert_eq!(
            scalar(
                &r.target_url,
                "select target from rig.dns where record = 'api'"
            )
            .await,
            NEW_ALB
        );
        assert_eq!(
            scalar(
                &r.target_url,
                "select action from rig.load_balancer where name = 'legacy'"
            )
            .await,
            "fixed-response 503"
        );
        assert_eq!(
            scalar(
                &r.target_url,
                &format!(
                    "select count(*)::text from ops.cutover_log where event = '{}-traffic-on-prod-v2'",
                    r.change_id
                )
            )
            .await,
            "1"
        );
        let status = std::fs::read_to_string(
            work.path()
                .join("runs")
                .join(&r.change_id)
                .join("statuspage.log"),
        )
        .unwrap_or_default();
        let lines: Vec<&str> = status
            .lines()
            .map(|l| l.split(' ').next().unwrap_or(""))
            .collect();
        assert_eq!(lines, ["in_progress", "completed"], "status page: {status}");
        // the app role is locked out of legacy, and legacy is gone (database and instance)
        let primary = rig_var("FERRY_TEST_PG_PRIMARY");
        assert_eq!(
            scalar(
                &primary,
                &format!(
                    "select count(*)::text from pg_database where datname = '{}'",
                    r.name
                )
            )
            .await,
            "0",
            "legacy was not dropped"
        );
        assert_eq!(
            scalar(
                &primary,
                &format!(
                    "select rolcanlogin::text from pg_roles where rolname = '{}'",
                    r.role
                )
            )
            .await,
            "false"
        );
        let left = aws(&[
            "rds",
            "describe-db-instances",
            "--query",
            "DBInstances[].DBInstanceIdentifier",
            "--output",
            "text",
        ]);
        assert!(
            !left.split_whitespace().any(|i| i == r.instance),
            "the legacy instance is still in moto: {left}"
        );
        let snaps = aws(&[
            "rds",
            "describe-db-snapshots",
            "--query",
            "DBSnapshots[].DBSnapshotIdentifier",
            "--output",
            "text",
        ]);
        for s in ["pre", "final"] {
            let id = format!("{}-{s}-{}", r.instance, r.change_id);
            assert!(
                snaps.split_whitespace().any(|x| x == id),
                "no snapshot {id}: {snaps}"
            );
        }
        let secret = aws(&[
            "secretsmanager",
            "describe-secret",
            "--secret-id",
            &r.secret,
            "--query",
            "DeletedDate",
            "--output",
            "text",
        ]);
        assert!(
            !secret.trim().is_empty() && secret.trim() != "None",
            "the legacy secret is not scheduled for deletion: {secret}"
        );
    }

    // ferry stats over the five rehearsals
    let js = journals(&runs);
    assert_eq!(js.len(), 5, "{js:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("stats")
        .args(["--format", "json"])
        .args(&js)
        .output()
        .expect("ferry stats");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("stats json");
    assert_eq!(v["journals"], 5);
    assert_eq!(v["runs_counted"], 5, "{v}");
    let steps = v["steps"].as_array().expect("steps");
    assert!(steps.len() >= 30, "{v}");
    for s in steps {
        assert_eq!(s["n"], 5, "{s}");
        for k in ["median_secs", "p90_secs", "max_secs"] {
            let x = s[k].as_f64().unwrap_or(f64::NAN);
            assert!(x.is_finite() && x >= 0.0, "{k} of {s}");
        }
        let iv = s["next95_secs"].as_array().expect("an interval");
        assert!(
            iv.iter().all(|x| x.as_f64().is_some_and(f64::is_finite)),
            "{s}"
        );
    }
    let total = &v["total"];
    assert!(
        total["p90_secs"]
            .as_f64()
            .is_some_and(|x| x.is_finite() && x > 0.0),
        "{v}"
    );
}
