//! `ferry demo`: seed a fresh SQLite "dating app" in a working folder, start
//! the app's traffic, and run the embedded demo runbook against it in the
//! console (or headless), then say where everything is and what to run next.

use super::run::{self, RunSettings};
use super::{EXIT_BAD_INPUT, EXIT_FAILED};
use crate::demo;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// Validated settings of `ferry demo`.
#[derive(Debug, Clone)]
pub struct DemoSettings {
    pub rows: u64,
    pub dir: Option<PathBuf>,
    /// Resume the unfinished run in the folder instead of seeding a new one.
    pub resume: bool,
    pub traffic: bool,
    pub yes: bool,
    pub operator: String,
    pub tui: bool,
}

/// The newest journal of the runbook named `runbook` under `runs`.
pub(super) fn newest_journal(runs: &Path, runbook: &str) -> Option<PathBuf> {
    let mut v: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(runs.join(runbook))
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    v.sort();
    v.pop().map(|(_, p)| p)
}

/// Whether the journal's run ended (finished or aborted): such a run cannot be resumed.
fn closed(journal: &Path) -> bool {
    std::fs::read_to_string(journal).is_ok_and(|t| {
        t.lines()
            .rfind(|l| !l.trim().is_empty())
            .is_some_and(|l| l.contains("\"kind\":\"closed\""))
    })
}

/// The newest demo folder under `root` (their names are UTC times).
fn newest_folder(root: &Path) -> Option<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("demo.toml").is_file())
        .collect();
    v.sort();
    v.pop()
}

/// The command that resumes the demo in `dir`.
pub fn resume_cmd(dir: &Path) -> String {
    format!("ferry demo --dir {} --resume", crate::quote::path(dir))
}

/// Everything before the runtime starts: the folder and the environment.
pub fn prepare(s: &DemoSettings) -> Result<PathBuf, String> {
    let root = super::logging::state_dir().join("demo");
    if s.resume {
        let dir = match &s.dir {
            Some(d) => d.clone(),
            None => newest_folder(&root).ok_or_else(|| {
                format!(
                    "no demo folder under {} to resume; pass --dir DIR",
                    root.display()
                )
            })?,
        };
        for f in ["demo.toml", "source.db", "target.db"] {
            if !dir.join(f).is_file() {
                return Err(format!(
                    "{} is not a demo folder ({f} is missing): nothing to resume",
                    dir.display()
                ));
            }
        }
        if ferry_core::journal::newest_unfinished(&dir.join("runs"), "demo").is_none() {
            return Err(format!(
                "the demo run in {} already ended (or never started): nothing to resume; `ferry demo` starts a new one",
                dir.display()
            ));
        }
        let dir = dir
            .canonicalize()
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        // the journal names the runbook by its hash: keep the folder's own copy
        std::env::set_var("FERRY_DEMO_DIR", &dir);
        return Ok(dir);
    }
    let dir = match &s.dir {
        Some(d) => d.clone(),
        None => fresh_folder(&root)?,
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create the demo folder {}: {e}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(dir.join("demo.toml"), demo::RUNBOOK)
        .map_err(|e| format!("cannot write {}: {e}", dir.join("demo.toml").display()))?;
    // the runbook reads its folder from the environment; set before any thread starts
    std::env::set_var("FERRY_DEMO_DIR", &dir);
    Ok(dir)
}

/// A new folder under `root` named by the time; two demos started in the
/// same second get `-2`, `-3`, … rather than one folder (and one source.db).
pub(super) fn fresh_folder(root: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(root)
        .map_err(|e| format!("cannot create the demo folder {}: {e}", root.display()))?;
    let name = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    for n in 1..100 {
        let dir = match n {
            1 => root.join(&name),
            _ => root.join(format!("{name}-{n}")),
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(format!(
                    "cannot create the demo folder {}: {e}",
                    dir.display()
                ))
            }
        }
    }
    Err(format!(
        "cannot find a free folder name under {}",
        root.display()
    ))
}

pub async fn run(s: DemoSettings, dir: PathBuf) -> i32 {
    let source = dir.join("source.db");
    let target = dir.join("target.db");
    if s.resume {
        complain!("demo: resuming the run in {}", dir.display());
    } else {
        complain!("demo: seeding {} rows into {} …", s.rows, source.display());
        let sizes = match demo::seed(&source, &target, s.rows).await {
            Ok(sz) => sz,
            Err(e) => {
                complain!(
                    "error: cannot seed the demo databases in {}: {e}",
                    dir.display()
                );
                return EXIT_FAILED;
            }
        };
        if let Err(e) = demo::point_app_at(&dir, "source.db") {
            complain!(
                "error: cannot write {}: {e}",
                dir.join(demo::APP_CONFIG).display()
            );
            return EXIT_FAILED;
        }
        complain!(
            "demo: source has {} users, {} profiles, {} matches, {} messages; target has the same schema, empty",
            sizes.users, sizes.users, sizes.matches, sizes.messages
        );
    }
    let cancel = CancellationToken::new();
    let writer = s
        .traffic
        .then(|| tokio::spawn(demo::app_writer(dir.clone(), cancel.clone())));
    if writer.is_some() {
        complain!(
            "demo: the app writes messages to the database {} names while its writes are open",
            demo::APP_CONFIG
        );
    }
    let settings = RunSettings {
        runbook: dir.join("demo.toml"),
        journal: None,
        resume: s.resume,
        accept_changes: false,
        operator: s.operator.clone(),
        yes: s.yes,
        runs_dir: dir.join("runs"),
        tui: s.tui,
        socket: None,
        wait: false,
        resume_cmd: Some(resume_cmd(&dir)),
        no_resume: None,
        vars: Default::default(),
        rehearsals: None,
    };
    let code = run::run(settings).await;
    cancel.cancel();
    if let Some(w) = writer {
        match w.await {
            Ok(Ok(n)) => complain!(
                "demo: the app wrote {} messages to source.db and {} to target.db during the run",
                n.source,
                n.target
            ),
            Ok(Err(e)) => complain!("demo: the app's writer stopped: {e}"),
            Err(_) => {}
        }
    }
    let journal = newest_journal(&dir.join("runs"), "demo");
    say!("");
    say!("demo folder  {}", dir.display());
    say!("  source     {}", source.display());
    say!("  target     {}", target.display());
    if let Some(j) = &journal {
        say!("  journal    {}", j.display());
        say!("");
        say!(
            "report:  ferry report {} --format html -o {}",
            crate::quote::path(j),
            crate::quote::path(&dir.join("report.html"))
        );
        if code != super::EXIT_OK && !closed(j) {
            say!("resume:  {}", resume_cmd(&dir));
        }
    }
    code
}

/// Parse-time checks of the demo flags.
pub fn check_rows(rows: u64) -> Result<u64, i32> {
    if !(demo::MIN_ROWS..=demo::MAX_ROWS).contains(&rows) {
        complain!(
            "error: --rows must be between {} and {} (got {rows})",
            ferry_core::units::count(demo::MIN_ROWS),
            ferry_core::units::count(demo::MAX_ROWS)
        );
        return Err(EXIT_BAD_INPUT);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_bounded_on_both_sides() {
        assert_eq!(check_rows(100), Ok(100));
        assert_eq!(check_rows(demo::MAX_ROWS), Ok(demo::MAX_ROWS));
        assert_eq!(check_rows(99), Err(EXIT_BAD_INPUT));
        // u64::MAX used to reach the seeder and panic allocating its rows
        assert_eq!(check_rows(u64::MAX), Err(EXIT_BAD_INPUT));
        assert_eq!(check_rows(demo::MAX_ROWS + 1), Err(EXIT_BAD_INPUT));
    }

    #[test]
    fn demos_started_together_get_folders_of_their_own() {
        let root = tempfile::tempdir().expect("tempdir");
        let a = fresh_folder(root.path()).expect("first");
        let b = fresh_folder(root.path()).expect("second");
        let c = fresh_folder(root.path()).expect("third");
        assert!(a != b && b != c && a != c, "{a:?} {b:?} {c:?}");
        assert!(a.is_dir() && b.is_dir() && c.is_dir());
    }
}
