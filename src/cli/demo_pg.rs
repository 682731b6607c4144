//! `ferry demo --postgres`: the demo's story on real PostgreSQL. Finds the
//! PostgreSQL binaries, starts a throwaway primary, streaming standby and target
//! (`demo::cluster`), seeds the dating app (`demo::pg`), starts the app's
//! traffic, runs the embedded `runbooks/demo-postgres.toml` in the console or
//! headless, and stops and removes the clusters whatever the ending. Such a run
//! cannot be resumed: its clusters are gone when it ends.

use super::demo::{fresh_folder, newest_journal, DemoSettings};
use super::run::{self, RunSettings};
use super::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_UNREACHABLE};
use crate::demo::{self, cluster, pg};
use std::path::{Path, PathBuf};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// The runbook's name (its journals go under `runs/demo-postgres/`) and file.
const NAME: &str = "demo-postgres";
const FILE: &str = "demo-postgres.toml";

/// Why `--postgres --resume` is refused, and what such a run says instead of a resume command.
pub const NO_RESUME: &str = "a `ferry demo --postgres` run cannot be resumed: its PostgreSQL clusters are stopped and removed when the demo ends; `ferry demo --postgres` starts a new one";

/// What `prepare` found and made before the runtime starts.
#[derive(Debug)]
pub struct Prepared {
    pub dir: PathBuf,
    bin: PathBuf,
    ports: [u16; 3],
}

/// Everything before the runtime starts (the environment is set while ferry has
/// one thread): the binaries, the folder, the ports and the URLs the runbook reads.
/// An error comes with its exit code; nothing is made before the binaries are found.
pub fn prepare(s: &DemoSettings) -> Result<Prepared, (i32, String)> {
    if s.resume {
        return Err((EXIT_BAD_INPUT, NO_RESUME.to_string()));
    }
    let bin = cluster::find_bin().map_err(|e| (EXIT_UNREACHABLE, e))?;
    let bad = |e: String| (EXIT_BAD_INPUT, e);
    let dir = match &s.dir {
        Some(d) => d.clone(),
        None => fresh_folder(&super::logging::state_dir().join("demo")).map_err(bad)?,
    };
    std::fs::create_dir_all(&dir).map_err(|e| {
        bad(format!(
            "cannot create the demo folder {}: {e}",
            dir.display()
        ))
    })?;
    let dir = dir
        .canonicalize()
        .map_err(|e| bad(format!("{}: {e}", dir.display())))?;
    std::fs::write(dir.join(FILE), pg::RUNBOOK)
        .map_err(|e| bad(format!("cannot write {}: {e}", dir.join(FILE).display())))?;
    let ports = cluster::free_ports()
        .map_err(|e| (EXIT_FAILED, format!("cannot find free loopback ports: {e}")))?;
    std::env::set_var("FERRY_DEMO_DIR", &dir);
    for (var, port) in [
        ("FERRY_DEMO_PG_SOURCE", ports[0]),
        ("FERRY_DEMO_PG_STANDBY", ports[1]),
        ("FERRY_DEMO_PG_TARGET", ports[2]),
    ] {
        std::env::set_var(var, cluster::url(port, pg::DATABASE));
    }
    Ok(Prepared { dir, bin, ports })
}

/// The first of SIGINT, SIGTERM or SIGHUP (pending forever if none can be caught).
async fn any_signal() -> &'static str {
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
    }
}

/// Start the clusters and seed them; returns the sizes seeded.
async fn set_up(
    clusters: &mut cluster::Clusters,
    ports: [u16; 3],
    rows: u64,
    stop: &CancellationToken,
) -> Result<demo::Sizes, String> {
    clusters
        .start_all(ports, stop, |p| complain!("demo: {p}"))
        .await?;
    complain!(
        "demo: seeding {rows} rows into the primary's database `{}` …",
        pg::DATABASE
    );
    let (source_admin, target_admin) = (
        cluster::url(ports[0], "postgres"),
        cluster::url(ports[2], "postgres"),
    );
    let seed = pg::seed(&source_admin, &target_admin, rows);
    // a seed cut short only drops connections: the servers end its statement
    let sizes = tokio::select! {
        r = seed => r.map_err(|e| format!("cannot seed the demo databases: {e}"))?,
        _ = stop.cancelled() => return Err(cluster::INTERRUPTED.to_string()),
    };
    clusters
        .wait_streaming(ports[0], std::time::Duration::from_secs(60), stop)
        .await?;
    Ok(sizes)
}

/// The demo on real PostgreSQL: make the clusters, start and seed them, point
/// the app at the source, run the runbook with the app's traffic, then stop and
/// remove the clusters whatever happened.
pub async fn run(s: DemoSettings, p: Prepared) -> i32 {
    let Prepared { dir, bin, ports } = p;
    let (source, target) = (
        cluster::url(ports[0], pg::DATABASE),
        cluster::url(ports[2], pg::DATABASE),
    );
    // signals before the run's own handlers exist: stop what was started
    let interrupted = any_signal();
    tokio::pin!(interrupted);
    let mut clusters = match make_clusters(&bin, ports, interrupted.as_mut()).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let sizes = match start_and_seed(&mut clusters, ports, s.rows, interrupted).await {
        Ok(sz) => sz,
        Err(e) => {
            complain!("error: {e}");
            stop(&mut clusters);
            return EXIT_FAILED;
        }
    };
    complain!(
        "demo: source has {} users, {} profiles, {} matches, {} messages; target has the same schema, empty",
        sizes.users, sizes.users, sizes.matches, sizes.messages
    );
    if let Err(e) = pg::point_app_at(&dir, &source) {
        complain!(
            "error: cannot write {}: {e}",
            dir.join(demo::APP_CONFIG).display()
        );
        stop(&mut clusters);
        return EXIT_FAILED;
    }
    let code = run_with_traffic(&s, &dir, &source, &target).await;
    stop(&mut clusters);
    summary(&dir, code);
    code
}

/// The folder for the clusters, unless a signal comes first (then nothing was started).
async fn make_clusters(
    bin: &Path,
    ports: [u16; 3],
    interrupted: std::pin::Pin<&mut impl std::future::Future<Output = &'static str>>,
) -> Result<cluster::Clusters, i32> {
    let clusters = tokio::select! {
        r = cluster::Clusters::make_root(bin) => match r {
            Ok(c) => c,
            Err(e) => {
                complain!("error: cannot make a folder for the PostgreSQL clusters: {e}");
                return Err(EXIT_FAILED);
            }
        },
        sig = interrupted => {
            complain!("demo: {sig} before the clusters were made; nothing to stop");
            return Err(EXIT_FAILED);
        }
    };
    complain!(
        "demo: PostgreSQL {} clusters in {} (primary 127.0.0.1:{}, standby 127.0.0.1:{}, target 127.0.0.1:{}); stopped and removed when the demo ends",
        bin.display(),
        clusters.root.display(),
        ports[0],
        ports[1],
        ports[2]
    );
    Ok(clusters)
}

/// [`set_up`], stopped at a signal: the tool that runs finishes, then nothing
/// more starts behind our back.
async fn start_and_seed(
    clusters: &mut cluster::Clusters,
    ports: [u16; 3],
    rows: u64,
    interrupted: std::pin::Pin<&mut impl std::future::Future<Output = &'static str>>,
) -> Result<demo::Sizes, String> {
    let stop_setup = CancellationToken::new();
    let setup = set_up(clusters, ports, rows, &stop_setup);
    tokio::pin!(setup);
    tokio::select! {
        r = &mut setup => r,
        sig = interrupted => {
            complain!("demo: {sig}: stopping the start-up …");
            stop_setup.cancel();
            let _ = setup.await;
            Err(format!("{sig} while starting the clusters"))
        }
    }
}

/// The run itself, with the app writing to the database it is pointed at
/// (unless `--no-traffic`); what the app wrote is told after.
async fn run_with_traffic(s: &DemoSettings, dir: &Path, source: &str, target: &str) -> i32 {
    let cancel = CancellationToken::new();
    let writer = s.traffic.then(|| {
        tokio::spawn(pg::app_writer(
            dir.to_path_buf(),
            source.to_string(),
            target.to_string(),
            cancel.clone(),
        ))
    });
    if writer.is_some() {
        complain!(
            "demo: the app writes messages to the database {} names while its writes are open",
            demo::APP_CONFIG
        );
    }
    let settings = RunSettings {
        runbook: dir.join(FILE),
        journal: None,
        resume: false,
        accept_changes: false,
        operator: s.operator.clone(),
        yes: s.yes,
        runs_dir: dir.join("runs"),
        tui: s.tui,
        socket: None,
        wait: false,
        resume_cmd: None,
        no_resume: Some(NO_RESUME.to_string()),
        vars: Default::default(),
        rehearsals: None,
    };
    let code = run::run(settings).await;
    cancel.cancel();
    if let Some(w) = writer {
        match w.await {
            Ok(Ok(n)) => complain!(
                "demo: the app wrote {} messages to the primary and {} to the target during the run",
                n.source,
                n.target
            ),
            Ok(Err(e)) => complain!("demo: the app's writer stopped: {e}"),
            Err(_) => {}
        }
    }
    code
}

fn stop(clusters: &mut cluster::Clusters) {
    let root = clusters.root.clone();
    clusters.stop_all();
    complain!(
        "demo: stopped the PostgreSQL clusters and removed {}",
        root.display()
    );
}

fn summary(dir: &Path, code: i32) {
    let journal = newest_journal(&dir.join("runs"), NAME);
    say!("");
    say!("demo folder  {}", dir.display());
    say!("  runbook    {}", dir.join(FILE).display());
    if let Some(j) = &journal {
        say!("  journal    {}", j.display());
        say!("");
        say!(
            "report:  ferry report {} --format html -o {}",
            crate::quote::path(j),
            crate::quote::path(&dir.join("report.html"))
        );
    }
    if code != super::EXIT_OK {
        say!("(the clusters are gone with the demo: `ferry demo --postgres` starts a new one)");
    }
}
