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
    pub traffic: bool,
    pub yes: bool,
    pub operator: String,
    pub tui: bool,
}

fn newest_journal(runs: &Path) -> Option<PathBuf> {
    let mut v: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(runs.join("demo"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    v.sort();
    v.pop().map(|(_, p)| p)
}

/// Everything before the runtime starts: the folder and the environment.
pub fn prepare(s: &DemoSettings) -> Result<PathBuf, String> {
    let dir = match &s.dir {
        Some(d) => d.clone(),
        None => super::logging::state_dir()
            .join("demo")
            .join(chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string()),
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

pub async fn run(s: DemoSettings, dir: PathBuf) -> i32 {
    let source = dir.join("source.db");
    let target = dir.join("target.db");
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
    complain!(
        "demo: source has {} users, {} profiles, {} matches, {} messages; target has the same schema, empty",
        sizes.users, sizes.users, sizes.matches, sizes.messages
    );
    let cancel = CancellationToken::new();
    let writer = s
        .traffic
        .then(|| tokio::spawn(demo::app_writer(source.clone(), cancel.clone())));
    if writer.is_some() {
        complain!("demo: the app is writing messages to the source until the freeze step");
    }
    let settings = RunSettings {
        runbook: dir.join("demo.toml"),
        journal: None,
        resume: false,
        accept_changes: false,
        operator: s.operator.clone(),
        yes: s.yes,
        runs_dir: dir.join("runs"),
        tui: s.tui,
    };
    let code = run::run(settings).await;
    cancel.cancel();
    if let Some(w) = writer {
        if let Ok(Ok(n)) = w.await {
            complain!("demo: the app wrote {n} messages during the run");
        }
    }
    let journal = newest_journal(&dir.join("runs"));
    say!("");
    say!("demo folder  {}", dir.display());
    say!("  source     {}", source.display());
    say!("  target     {}", target.display());
    if let Some(j) = &journal {
        say!("  journal    {}", j.display());
        say!("");
        say!(
            "report:  ferry report {} --format html -o {}",
            j.display(),
            dir.join("report.html").display()
        );
        if code != super::EXIT_OK {
            // the generic resume hint lacks the variable the demo runbook needs
            say!(
                "resume:  FERRY_DEMO_DIR={} ferry run {} --resume --journal {}",
                dir.display(),
                dir.join("demo.toml").display(),
                j.display()
            );
        }
    }
    code
}

/// Parse-time checks of the demo flags.
pub fn check_rows(rows: u64) -> Result<u64, i32> {
    if !(demo::MIN_ROWS..=demo::MAX_ROWS).contains(&rows) {
        complain!(
            "error: --rows must be between {} and {} (got {rows})",
            crate::units::count(demo::MIN_ROWS),
            crate::units::count(demo::MAX_ROWS)
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
}
