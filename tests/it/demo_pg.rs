//! `ferry demo --postgres` on the real binary and the real PostgreSQL binaries of
//! this machine: end to end headless (copy and verify succeed, the standby's lag
//! is journaled), and afterwards no postgres process of the demo runs and its
//! data folders are gone, also when the demo is stopped by SIGTERM, before or
//! during the run. Missing binaries and `--resume` are refused up front.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ferry() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
    c.env_remove("FERRY_DEMO_DIR");
    c
}

/// The clusters' folder the demo names on stderr (`... clusters in DIR (primary ...`).
fn clusters_dir(stderr: &str) -> PathBuf {
    let line = stderr
        .lines()
        .find(|l| l.contains(" clusters in /"))
        .unwrap_or_else(|| panic!("the demo does not say where its clusters are:\n{stderr}"));
    let rest = &line[line.find(" clusters in ").expect("marker") + " clusters in ".len()..];
    PathBuf::from(rest.split_whitespace().next().expect("a path"))
}

/// Processes whose command line names `dir` (the clusters' postgres processes do: `-D DIR/...`).
fn processes_in(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| {
            let raw = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            cmd.contains(&needle)
                .then(|| format!("{}: {cmd}", e.file_name().to_string_lossy()))
        })
        .collect()
}

fn assert_cleaned_up(dir: &Path, context: &str) {
    assert!(
        dir.starts_with(std::env::temp_dir()) && dir.to_string_lossy().contains("ferry-demo-pg."),
        "unexpected clusters folder {dir:?}"
    );
    let procs = processes_in(dir);
    assert!(procs.is_empty(), "{context}: still running: {procs:#?}");
    assert!(!dir.exists(), "{context}: {dir:?} was left behind");
}

#[test]
fn the_postgres_demo_runs_end_to_end_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let out = ferry()
        .args([
            "demo",
            "--postgres",
            "--headless",
            "--yes",
            "--rows",
            "20000",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("run ferry demo --postgres");
    let took = started.elapsed();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!("ferry demo --postgres --rows 20000 took {took:.1?}");
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for needle in [
        "✔ standby-streaming: succeeded — got 1 as expected",
        "✔ standby-caught-up: succeeded",
        "✔ copy-all: succeeded — copied 20,00",
        "✔ verify-all: succeeded — no differences: 5 tables",
        "✔ switch-app: succeeded",
        "run finished: all steps done",
        "report:  ferry report ",
    ] {
        assert!(
            stdout.contains(needle),
            "lacks `{needle}`:\n{stdout}\n{stderr}"
        );
    }
    assert!(
        stderr.contains("source has 2000 users, 2000 profiles, 5000 matches, 11000 messages"),
        "{stderr}"
    );
    let journals: Vec<PathBuf> = std::fs::read_dir(dir.path().join("runs/demo-postgres"))
        .expect("the journal folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(journals.len(), 1, "{journals:?}");
    let journal = std::fs::read_to_string(&journals[0]).expect("read the journal");
    for needle in [
        "\"kind\":\"result\",\"step\":\"copy-all\"",
        "\"kind\":\"result\",\"step\":\"verify-all\"",
        "\"kind\":\"sample\",\"monitor\":\"standby\",\"series\":\"lag\"",
        "\"kind\":\"sample\",\"monitor\":\"standby\",\"series\":\"lag_bytes\"",
    ] {
        assert!(journal.contains(needle), "the journal lacks {needle}");
    }
    assert!(
        journal
            .lines()
            .last()
            .is_some_and(|l| l.contains("\"kind\":\"closed\"")),
        "the journal is closed"
    );
    let config = std::fs::read_to_string(dir.path().join("app-config.env")).expect("app config");
    let target = config.trim().trim_start_matches("DATABASE_URL=");
    assert!(
        target.starts_with("postgres://postgres@127.0.0.1:") && target.ends_with("/dating"),
        "the switch pointed the app at the target: {config}"
    );
    assert_cleaned_up(&clusters_dir(&stderr), "after a finished demo");
    // the report of the journal shows the copy and the standby's lag monitor
    let report = ferry()
        .args(["report", "--format", "md"])
        .arg(&journals[0])
        .output()
        .expect("report");
    assert_eq!(report.status.code(), Some(0));
    let md = String::from_utf8_lossy(&report.stdout);
    assert!(md.contains("**succeeded**"), "{md}");
    assert!(md.contains("| public.messages |"), "{md}");
    assert!(md.contains("| standby | lag |"), "{md}");
}

/// Start the demo, wait for a line containing `marker` on stdout or stderr, send SIGTERM.
fn terminate_at(marker: &str) -> (Option<i32>, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = ferry()
        .args([
            "demo",
            "--postgres",
            "--headless",
            "--yes",
            "--rows",
            "20000",
            "--dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferry demo --postgres");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let readers: Vec<_> = [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ]
    .into_iter()
    .map(|r| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        })
    })
    .collect();
    drop(tx);
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(marker) {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("never saw `{marker}`:\n{seen}");
            }
        }
    }
    // SAFETY: kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0, "SIGTERM");
    let status = child.wait().expect("wait");
    for r in readers {
        let _ = r.join();
    }
    while let Ok(line) = rx.try_recv() {
        seen.push_str(&line);
        seen.push('\n');
    }
    (status.code(), seen, dir)
}

#[test]
fn sigterm_while_the_clusters_start_stops_them() {
    // the primary runs and the standby is being made when the signal comes
    let (code, seen, _dir) = terminate_at("the primary is up");
    assert_eq!(code, Some(1), "{seen}");
    assert!(
        seen.contains("SIGTERM while starting the clusters"),
        "{seen}"
    );
    assert_cleaned_up(&clusters_dir(&seen), "after SIGTERM during start-up");
}

#[test]
fn sigterm_during_the_run_stops_the_clusters() {
    // the wait for writes to stop holds at least 3 s: the run is surely in progress
    let (code, seen, dir) = terminate_at("▶ writes-stopped: started");
    assert_eq!(code, Some(1), "{seen}");
    assert!(seen.contains("interrupted"), "{seen}");
    assert!(seen.contains("cannot be resumed"), "{seen}");
    assert!(!seen.contains("resume with:"), "no resume command: {seen}");
    assert!(
        dir.path().join("runs/demo-postgres").is_dir(),
        "the journal stays"
    );
    assert_cleaned_up(&clusters_dir(&seen), "after SIGTERM during the run");
}

#[test]
fn missing_postgres_binaries_are_refused_with_what_to_install() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("demo");
    let out = ferry()
        .args(["demo", "--postgres", "--headless", "--yes", "--dir"])
        .arg(&d)
        .env("FERRY_PG_BIN", "/nonexistent")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("FERRY_PG_BIN=/nonexistent")
            && stderr.contains("apt-get install postgresql"),
        "{stderr}"
    );
    assert!(!d.exists(), "nothing is made: {d:?}");
}

#[test]
fn a_postgres_demo_cannot_be_resumed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("demo");
    let out = ferry()
        .args(["demo", "--postgres", "--resume", "--headless", "--dir"])
        .arg(&d)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot be resumed") && stderr.contains("clusters are stopped and removed"),
        "{stderr}"
    );
    assert!(!d.exists(), "nothing is made: {d:?}");
}

mod writer {
    //! The PostgreSQL app writer against the demo's own clusters: it follows the
    //! freeze, its rollback and the switch, and the standby really replicates.

    use ferry::demo::cluster::{self, Clusters};
    use ferry::demo::pg;
    use sqlx::PgPool;
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    async fn count(pool: &PgPool) -> i64 {
        sqlx::query_scalar("select count(*) from messages")
            .fetch_one(pool)
            .await
            .expect("count")
    }

    async fn set_writes(pool: &PgPool, v: &str) {
        sqlx::query("update app_settings set value = $1 where key = 'writes'")
            .bind(v)
            .execute(pool)
            .await
            .expect("set writes");
    }

    async fn grows(pool: &PgPool) -> bool {
        let before = count(pool).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        count(pool).await > before
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_follows_the_freeze_its_rollback_and_the_switch() {
        let bin = cluster::find_bin().expect("PostgreSQL binaries on this machine");
        let mut clusters = Clusters::make_root(&bin).await.expect("mktemp");
        let root = clusters.root.clone();
        let ports = cluster::free_ports().expect("ports");
        clusters
            .start_all(ports, &CancellationToken::new(), |_| {})
            .await
            .expect("start the clusters");
        let sizes = pg::seed(
            &cluster::url(ports[0], "postgres"),
            &cluster::url(ports[2], "postgres"),
            400,
        )
        .await
        .expect("seed");
        let (s_url, sb_url, t_url) = (
            cluster::url(ports[0], pg::DATABASE),
            cluster::url(ports[1], pg::DATABASE),
            cluster::url(ports[2], pg::DATABASE),
        );
        let src = PgPool::connect(&s_url).await.expect("source");
        let tgt = PgPool::connect(&t_url).await.expect("target");
        assert_eq!(count(&src).await as u64, sizes.messages);
        // awkward values made it in
        let (nulls, empty, bytea, unicode): (i64, i64, i64, i64) = sqlx::query_as(
            "select (select count(*) from profiles where bio is null),
                    (select count(*) from profiles where bio = ''),
                    (select count(*) from profiles where photo is not null),
                    (select count(*) from users where name ~ '[øéả]')",
        )
        .fetch_one(&src)
        .await
        .expect("awkward values");
        assert!(
            nulls > 0 && empty > 0 && bytea > 0 && unicode > 0,
            "{nulls} {empty} {bytea} {unicode}"
        );
        assert_eq!(
            count(&tgt).await,
            0,
            "the target has the schema and no rows"
        );

        let dir = tempfile::tempdir().expect("tempdir");
        pg::point_app_at(dir.path(), &s_url).expect("config");
        let cancel = CancellationToken::new();
        let w = tokio::spawn(pg::app_writer(
            dir.path().to_path_buf(),
            s_url.clone(),
            t_url.clone(),
            cancel.clone(),
        ));
        assert!(grows(&src).await, "it writes while writes are open");
        set_writes(&src, "frozen").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!grows(&src).await, "nothing is written after the freeze");
        set_writes(&src, "open").await;
        assert!(
            grows(&src).await,
            "writes resume when the freeze is rolled back"
        );
        set_writes(&src, "frozen").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        // the standby streams what the primary wrote
        let standby = PgPool::connect(&sb_url).await.expect("standby");
        let want = count(&src).await;
        let mut got = 0;
        for _ in 0..50 {
            got = count(&standby).await;
            if got == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(got, want, "the standby replays the primary's writes");
        standby.close().await;
        // what the copy brings over, then switch-app and open-writes-on-target
        sqlx::raw_sql(
            "insert into app_settings values ('writes', 'frozen');
             insert into users values (1, 'a@example.org', 'A', NULL, now());
             insert into matches values (1, 1, 1, NULL, now());",
        )
        .execute(&tgt)
        .await
        .expect("target rows");
        pg::point_app_at(dir.path(), &t_url).expect("switch");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!grows(&tgt).await, "not before the target is opened");
        set_writes(&tgt, "open").await;
        assert!(
            grows(&tgt).await,
            "after the switch the app writes to the target"
        );
        assert!(!grows(&src).await, "and no longer to the source");
        cancel.cancel();
        let written = tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .expect("the writer stops when cancelled")
            .expect("join")
            .expect("writer");
        assert!(written.source > 0 && written.target > 0, "{written:?}");
        src.close().await;
        tgt.close().await;
        drop(clusters);
        assert!(!root.exists(), "{root:?} is removed");
        assert!(
            super::processes_in(&root).is_empty(),
            "the clusters stopped"
        );
    }
}
