//! `ferry run RUNBOOK`: load and check the runbook, open (or resume) the
//! journal, start the engine, and drive it: from the full-screen console
//! ([`crate::tui`]) on a terminal, else headless: one line per event on
//! stdout, `--yes` confirming every step as a journaled automatic confirmation.

use super::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE};
use crate::headless;
use ferry_core::engine::start;
use ferry_core::runbook::Runbook;
use ferry_core::vocab::RunStatus;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Validated settings of `ferry run`.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub runbook: PathBuf,
    pub journal: Option<PathBuf>,
    pub resume: bool,
    pub accept_changes: bool,
    pub operator: String,
    pub yes: bool,
    pub runs_dir: PathBuf,
    /// Drive the run from the full-screen console instead of headless mode.
    pub tui: bool,
    /// Where `ferry attach` reaches this run (default: `<journal>.sock`).
    pub socket: Option<PathBuf>,
    /// Headless without `--yes`: wait for an attached operator at steps that
    /// need a person, instead of stopping.
    pub wait: bool,
    /// How this run is resumed, when not `ferry run RUNBOOK --resume`
    /// (the demo's runbook needs its folder in the environment).
    pub resume_cmd: Option<String>,
    /// Why this run can never be resumed (`ferry demo --postgres`: its clusters
    /// are gone when it ends); said instead of a resume command.
    pub no_resume: Option<String>,
    /// `--var` / `--vars` values overriding the runbook's `[vars]`.
    pub vars: ferry_core::runbook::vars::Overrides,
    /// `--rehearsals GLOB` (wins over the runbook's `rehearsals`).
    pub rehearsals: Option<String>,
}

/// The name shown for this process's operator when `--operator` gives none:
/// the login name of its effective uid (never `$USER`, which anyone can set).
pub fn default_operator() -> String {
    crate::identity::my_login()
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// `ferry run`: start (or resume) the run through the engine's front door, serve
/// the attach socket, drive it from the console or headless, and say how it ended.
pub async fn run(s: RunSettings) -> i32 {
    let mut opened = match start::open(engine_settings(&s)).await {
        Ok(o) => o,
        Err(e) => return refuse(&e),
    };
    match rehearsals(&s, &opened) {
        Ok(Some(loaded)) => {
            for w in &loaded.warnings {
                say!("warning: {w}");
            }
            say!(
                "rehearsals: {} journal(s) give the ETAs and the rollback budget",
                loaded.journals.len()
            );
            opened.set_rehearsal(
                loaded.rehearsal,
                loaded
                    .journals
                    .iter()
                    .map(|j| j.display().to_string())
                    .collect(),
            );
        }
        Ok(None) => {}
        Err(e) => {
            complain!("error: {e}");
            complain!("  = help: fix `rehearsals` in [runbook] or --rehearsals GLOB (journals of earlier runs of this runbook)");
            opened.abandon();
            return EXIT_BAD_INPUT;
        }
    }
    super::logging::set_redactor(opened.redactor.clone());
    tracing::info!(runbook = %opened.runbook.name, path = %s.runbook.display(), operator = %s.operator, "run starting");
    // the attach socket, before the session entry that records it
    // who may attach and act: the kernel's uid against the runbook's [operators]
    let access = match crate::attach::access::Access::for_run(opened.runbook.operators.as_ref()) {
        Ok(a) => a,
        Err(e) => {
            complain!("error: {e}");
            opened.abandon();
            return EXIT_BAD_INPUT;
        }
    };
    let attach = match super::serve::open(s.socket.as_deref(), opened.journal_path(), &access) {
        Ok(a) => a,
        Err(e) => {
            complain!("error: {e}");
            complain!("  = help: pass --socket PATH with a free path");
            // nothing was written yet: leave no empty journal behind
            opened.abandon();
            return EXIT_BAD_INPUT;
        }
    };
    let started = match opened
        .begin(attach.as_ref().map(|a| a.0.path.as_path()))
        .await
    {
        Ok(st) => st,
        Err(e) => return refuse(&e),
    };
    for note in &started.notes {
        say!("note: {note}");
    }
    say!("journal {}", started.journal.display());
    if let Some((file, _)) = &attach {
        say!(
            "attach from another terminal: ferry attach --socket {} [--operate]",
            crate::quote::path(&file.path)
        );
    }
    drive(s, started, attach.map(|a| (a, access))).await
}

/// The rehearsals of this run: `--rehearsals` (relative to the current folder)
/// or the runbook's `rehearsals` (relative to its folder); the run's own journal
/// is never one of them.
fn rehearsals(
    s: &RunSettings,
    opened: &start::Opened,
) -> Result<
    Option<ferry_core::report::rehearsal::Loaded>,
    ferry_core::report::rehearsal::RehearsalError,
> {
    let rb = &opened.runbook;
    let (pattern, base) = match (&s.rehearsals, &rb.rehearsals) {
        (Some(p), _) => (p.clone(), PathBuf::from(".")),
        (None, Some(p)) => (
            p.clone(),
            rb.path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
        ),
        (None, None) => return Ok(None),
    };
    ferry_core::report::rehearsal::load(
        &pattern,
        &base,
        &rb.name,
        &rb.source_sha256,
        Some(opened.journal_path()),
    )
    .map(Some)
}

/// The engine's settings for this command line.
fn engine_settings(s: &RunSettings) -> start::Settings {
    start::Settings {
        runbook: s.runbook.clone(),
        journal: s.journal.clone(),
        resume: s.resume,
        accept_changes: s.accept_changes,
        operator: s.operator.clone(),
        host: hostname(),
        uid: Some(crate::identity::euid()),
        login: crate::identity::login_name(crate::identity::euid()),
        runs_dir: s.runs_dir.clone(),
        env: Arc::new(|k: &str| std::env::var(k).ok()),
        env_vars: std::env::vars().collect(),
        vars: s.vars.clone(),
    }
}

/// Say why the run cannot start; the exit code for it.
fn refuse(e: &start::StartError) -> i32 {
    match e.diagnostics() {
        Some(d) => complain_raw!("{d}"),
        None => complain!("error: {e}"),
    }
    if e.unreachable() {
        EXIT_UNREACHABLE
    } else {
        EXIT_BAD_INPUT
    }
}

/// The socket `ferry attach` reaches a run at, bound before the run begins.
type Attach = Option<(
    (
        crate::attach::socket::SocketFile,
        std::os::unix::net::UnixListener,
    ),
    crate::attach::access::Access,
)>;

/// Serve the attach socket, run the driver, hand its handles to the console or to
/// headless mode, and finish.
async fn drive(s: RunSettings, st: start::Started, attach: Attach) -> i32 {
    let start::Started {
        driver,
        handles,
        runbook: rb,
        redactor,
        journal: journal_path,
        host,
        monitors,
        vars,
        ..
    } = st;
    let (handles, server) = match attach {
        Some(((file, listener), access)) => {
            let info =
                super::serve::run_info(&rb, &journal_path, &s.operator, &host, access, &vars);
            match tokio::net::UnixListener::from_std(listener) {
                Ok(l) => {
                    let (h, srv) =
                        crate::attach::server::serve(file, l, handles, info, redactor.clone());
                    (h, Some(srv))
                }
                Err(e) => {
                    complain!(
                        "warning: cannot serve {}: {e}; ferry attach will not reach this run",
                        file.path.display()
                    );
                    (handles, None)
                }
            }
        }
        None => (handles, None),
    };
    let socket = server.as_ref().map(|s| s.path.clone());
    let driver_task = tokio::spawn(driver.run());
    let outcome = if s.tui {
        crate::tui::run(
            handles,
            rb.clone(),
            redactor.clone(),
            crate::tui::Role::Owner { socket },
            match (&s.no_resume, &s.resume_cmd) {
                (Some(why), _) => Some(Err(why.clone())),
                (None, Some(c)) => Some(Ok(c.clone())),
                (None, None) => None,
            },
        )
        .await
    } else {
        let how = headless::Acting {
            yes: s.yes,
            retry_interrupted: s.resume && s.yes,
            wait: s.wait,
        };
        headless::drive(handles, how, &redactor, &rb).await
    };
    let status = driver_task.await.unwrap_or(RunStatus::Aborted);
    if let Some(srv) = server {
        srv.finish().await;
    }
    monitors.cancel();
    finish(
        &rb,
        &journal_path,
        &status,
        outcome,
        s.resume_cmd.as_deref(),
        s.no_resume.as_deref(),
    )
}

fn finish(
    rb: &Runbook,
    journal: &Path,
    status: &RunStatus,
    outcome: headless::Outcome,
    resume_cmd: Option<&str>,
    no_resume: Option<&str>,
) -> i32 {
    let resume_hint = match (no_resume, resume_cmd) {
        (Some(why), _) => why.to_string(),
        (None, Some(c)) => format!("resume with: {c}"),
        (None, None) => format!(
            "resume with: ferry run {} --resume --journal {}",
            crate::quote::path(&rb.path),
            crate::quote::path(journal)
        ),
    };
    match (status, outcome) {
        (_, headless::Outcome::JournalFailed) => EXIT_FAILED,
        (RunStatus::Finished { ok: true }, _) => {
            say!(
                "finished: every step succeeded · journal {}",
                journal.display()
            );
            say!("next: ferry report {}", crate::quote::path(journal));
            EXIT_OK
        }
        (RunStatus::Finished { ok: false }, _) => {
            say!("finished with failures · journal {}", journal.display());
            EXIT_FAILED
        }
        (RunStatus::Aborted, _) => {
            say!("aborted · journal {}", journal.display());
            EXIT_FAILED
        }
        (_, headless::Outcome::Unreachable) => {
            say!("stopped: a required service is unreachable · {resume_hint}");
            EXIT_UNREACHABLE
        }
        (_, headless::Outcome::Interrupted) => {
            say!("interrupted: running steps were stopped and journaled · {resume_hint}");
            EXIT_FAILED
        }
        (_, headless::Outcome::NeedsOperator(msg)) => {
            say!("stopped: {msg} · {resume_hint}");
            EXIT_FAILED
        }
        (_, headless::Outcome::Halted(msg)) => {
            say!("halted: {msg} · {resume_hint}");
            EXIT_FAILED
        }
        (_, headless::Outcome::Done) => EXIT_FAILED,
    }
}
