//! `ferry run RUNBOOK`: load and check the runbook, open (or resume) the
//! journal, start the engine, and drive it: from the full-screen console
//! ([`crate::tui`]) on a terminal, else headless: one line per event on
//! stdout, `--yes` confirming every step as a journaled automatic confirmation.

use super::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE};
use crate::headless;
use chrono::Utc;
use ferry_core::engine::connections::{Connections, RetryPolicy};
use ferry_core::engine::driver::{initial_snapshot, Driver, ExecEnv};
use ferry_core::engine::machine::Machine;
use ferry_core::engine::redact::Redactor;
use ferry_core::engine::resume;
use ferry_core::journal::{self, Entry, Header, Writer};
use ferry_core::runbook::{self, expand::is_secret_name, Runbook};
use ferry_core::vocab::{Actor, Event, RunStatus};
use ferry_core::{aws, monitor};
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
}

pub fn default_operator() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            // SAFETY: getuid has no preconditions.
            let uid = unsafe { libc::getuid() };
            std::fs::read_to_string("/etc/passwd")
                .ok()
                .and_then(|t| {
                    t.lines().find_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
                    })
                })
                .unwrap_or_else(|| format!("uid{uid}"))
        })
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

fn header(rb: &Runbook, operator: &str, host: &str) -> Header {
    Header {
        ferry_version: env!("CARGO_PKG_VERSION").to_string(),
        runbook_name: rb.name.clone(),
        runbook_title: rb.title.clone(),
        runbook_path: rb.path.display().to_string(),
        runbook_sha256: rb.source_sha256.clone(),
        steps: rb
            .steps()
            .map(|s| (s.id.clone(), s.fingerprint()))
            .collect(),
        operator: operator.to_string(),
        host: host.to_string(),
        window_start: rb.window.as_ref().map(|w| w.start),
        window_secs: rb.window.as_ref().map(|w| w.duration.as_secs()),
        plan: journal::StepMeta::plan(rb),
    }
}

/// Whether the run needs AWS clients: rds steps, CloudWatch monitors, IAM auth.
pub fn uses_aws(rb: &Runbook) -> bool {
    rb.steps()
        .any(|s| matches!(s.kind, runbook::StepKind::Rds(_)))
        || rb
            .monitors
            .lag
            .iter()
            .any(|l| matches!(l.source, runbook::LagSource::Cloudwatch { .. }))
        || rb
            .monitors
            .metric
            .iter()
            .any(|m| matches!(m.source, runbook::MetricSource::Cloudwatch(_)))
        || rb.connections.values().any(|c| c.iam_auth.is_some())
}

/// Build the redactor from the environment the runbook refers to.
pub fn redactor_for(rb: &Runbook) -> Redactor {
    let mut r = Redactor::new();
    let mut names: Vec<String> = Vec::new();
    for c in rb.connections.values() {
        names.extend(runbook::expand::env_refs(&c.url));
    }
    for v in rb.vars.values() {
        names.extend(runbook::expand::env_refs(v));
    }
    for s in rb.steps() {
        if let runbook::StepKind::Shell(sh) = &s.kind {
            names.extend(runbook::expand::env_refs(&sh.run));
            names.extend(sh.env.values().flat_map(|v| runbook::expand::env_refs(v)));
        }
    }
    for n in names {
        if is_secret_name(&n) {
            if let Ok(v) = std::env::var(&n) {
                r.add(&v);
            }
        }
    }
    // any secret-looking variable in the environment, even if unreferenced
    for (k, v) in std::env::vars() {
        if is_secret_name(&k) && !k.starts_with("CARGO") {
            r.add(&v);
        }
    }
    r
}

pub async fn run(s: RunSettings) -> i32 {
    let rb = match runbook::load(&s.runbook) {
        Ok(rb) => Arc::new(rb),
        Err(report) => {
            complain_raw!("{}", report.render());
            return EXIT_BAD_INPUT;
        }
    };
    let host = hostname();
    let mut redactor = redactor_for(&rb);
    let env_fn = |k: &str| std::env::var(k).ok();
    let conns = match Connections::new(&rb, &env_fn, &mut redactor, RetryPolicy::default()) {
        Ok(c) => c,
        Err(missing) => {
            complain!("error: cannot resolve the runbook's connections:");
            for m in missing {
                complain!("  {m}");
            }
            complain!("  = help: export the variables, then run again (`ferry check` lists what the runbook needs)");
            return EXIT_BAD_INPUT;
        }
    };
    // AWS clients only when the runbook uses AWS; `${env:X}` in [aws] expands
    // now, like connection URLs, and a bad [aws] stops the run before its journal exists
    if uses_aws(&rb) {
        match aws::connect(rb.aws.as_ref(), &env_fn).await {
            Ok(clients) => {
                let rds = rb
                    .steps()
                    .any(|s| matches!(s.kind, runbook::StepKind::Rds(_)))
                    || rb.connections.values().any(|c| c.iam_auth.is_some());
                if let Err(e) = aws::preflight(&clients, rds).await {
                    complain!("error: {} ({})", e, clients.endpoint());
                    complain!("  = help: check [aws] endpoint_url / region and the network, then run again");
                    return EXIT_UNREACHABLE;
                }
                conns.set_aws(clients)
            }
            Err(e) => {
                complain!("error: cannot configure AWS: {e}");
                return EXIT_BAD_INPUT;
            }
        }
    }
    let redactor = Arc::new(redactor);
    super::logging::set_redactor(redactor.clone());
    tracing::info!(runbook = %rb.name, path = %s.runbook.display(), operator = %s.operator, "run starting");
    let redact_for_journal = {
        let r = redactor.clone();
        Box::new(move |t: &str| r.redact(t)) as Box<dyn Fn(&str) -> String + Send>
    };

    // journal: new, or resumed after verification
    let mut leftovers = Vec::new();
    let (journal, machine, snap, interrupted) = if s.resume {
        let path = match s
            .journal
            .clone()
            .or_else(|| journal::newest_unfinished(&s.runs_dir, &rb.name))
        {
            Some(p) => p,
            None => {
                complain!(
                    "error: no unfinished journal of runbook `{}` under {}\n  = help: pass --journal PATH, or start a new run without --resume",
                    rb.name,
                    s.runs_dir.join(&rb.name).display()
                );
                return EXIT_BAD_INPUT;
            }
        };
        let replay = match journal::read_journal(&path) {
            Ok(r) => r,
            Err(e) => {
                complain!("error: {e}");
                return EXIT_BAD_INPUT;
            }
        };
        if replay.closed() {
            complain!(
                "error: the run in {} already ended; start a new run without --resume",
                path.display()
            );
            return EXIT_BAD_INPUT;
        }
        let hdr = replay.header().cloned();
        if let Some(h) = &hdr {
            if h.runbook_name != rb.name {
                complain!(
                    "error: {} is a journal of runbook `{}`, not `{}`",
                    path.display(),
                    h.runbook_name,
                    rb.name
                );
                return EXIT_BAD_INPUT;
            }
            let changes = resume::changed_steps(h, &rb);
            if !changes.is_empty() {
                if s.accept_changes {
                    say!(
                        "note: the runbook changed since the journal began (accepted): {}",
                        changes.join(", ")
                    );
                } else {
                    complain!("error: the runbook changed since {} began:", path.display());
                    for c in &changes {
                        complain!("  {c}");
                    }
                    complain!("  = help: restore the runbook, or pass --accept-changes to continue with the new definitions");
                    return EXIT_BAD_INPUT;
                }
            }
        }
        let w = match Writer::resume(&path, &replay, redact_for_journal) {
            Ok(w) => w,
            Err(e) => {
                complain!("error: cannot append to journal {}: {e}", path.display());
                return EXIT_BAD_INPUT;
            }
        };
        // only now: a live run's half-written line is not a crash's
        if let Some((line, _)) = &replay.torn {
            say!(
                "note: the last line of {} (line {line}) was cut short by a crash; it is dropped",
                path.display()
            );
        }
        let m0 = Machine::new(&rb);
        let mut snap = initial_snapshot(&rb, &m0, &path, &s.operator);
        let (m, running) = resume::replay(&rb, &replay, &mut snap);
        leftovers = resume::leftover_groups(&replay, &running);
        (w, m, snap, running)
    } else {
        let path = s
            .journal
            .clone()
            .unwrap_or_else(|| journal::default_path(&s.runs_dir, &rb.name, Utc::now()));
        let w = match Writer::create(&path, redact_for_journal) {
            Ok(w) => w,
            Err(e) => {
                complain!("error: cannot create journal {}: {e}", path.display());
                return EXIT_BAD_INPUT;
            }
        };
        let m = Machine::new(&rb);
        let snap = initial_snapshot(&rb, &m, &path, &s.operator);
        (w, m, snap, Vec::new())
    };
    let mut journal = journal;
    // the attach socket, before the session entry that records it
    let attach = match super::serve::open(s.socket.as_deref(), journal.path()) {
        Ok(a) => a,
        Err(e) => {
            complain!("error: {e}");
            complain!("  = help: pass --socket PATH with a free path");
            if !s.resume {
                // nothing was written yet: leave no empty journal behind
                let _ = std::fs::remove_file(journal.path());
            }
            return EXIT_BAD_INPUT;
        }
    };
    let now = Utc::now();
    let first = if s.resume {
        Ok(now)
    } else {
        journal.append(&Entry::Header(header(&rb, &s.operator, &host)), now)
    };
    let session = journal.append(
        &Entry::Session {
            operator: s.operator.clone(),
            host: host.clone(),
            resumed: s.resume,
            pid: std::process::id(),
            socket: attach.as_ref().map(|a| a.0.path.display().to_string()),
        },
        now,
    );
    if let Err(e) = first.and(session) {
        complain!(
            "error: cannot write journal {}: {e}",
            journal.path().display()
        );
        return EXIT_BAD_INPUT;
    }
    for line in resume::stop_leftovers(&leftovers).await {
        say!("note: {line}");
        let note = Entry::Note {
            step: None,
            text: line,
        };
        if let Err(e) = journal.append(&note, Utc::now()) {
            complain!(
                "error: cannot write journal {}: {e}",
                journal.path().display()
            );
            return EXIT_BAD_INPUT;
        }
    }
    let journal_path = journal.path().to_path_buf();
    say!("journal {}", journal_path.display());
    if let Some((file, _)) = &attach {
        say!(
            "attach from another terminal: ferry attach --socket {} [--operate]",
            file.path.display()
        );
    }

    let actor = Actor {
        operator: s.operator.clone(),
        host: host.clone(),
    };
    // monitors for the whole run
    let conns = Arc::new(conns);
    let monitors_cancel = tokio_util::sync::CancellationToken::new();
    let getter: monitor::DbGetter = {
        let c = conns.clone();
        Arc::new(move |name: String| {
            let c = c.clone();
            Box::pin(async move { c.get(&name).await.map_err(|e| e.to_string()) })
        })
    };
    let (hub, samples) = monitor::spawn(&rb, getter, conns.aws().cloned(), monitors_cancel.clone());
    let env = ExecEnv {
        run_id: journal.run_id().unwrap_or_default().to_string(),
        redactor: redactor.clone(),
        conns,
        monitors: hub.clone(),
        env: Arc::new(|k: &str| std::env::var(k).ok()),
    };
    let (mut driver, handles) = Driver::new(rb.clone(), machine, journal, env, actor, snap);
    driver.with_monitors(hub, samples);
    if !interrupted.is_empty() {
        // journaled and applied before anything else runs
        driver.first(Event::Interrupted {
            steps: interrupted.clone(),
        });
    }
    let (handles, server) = match attach {
        Some((file, listener)) => {
            let info = super::serve::run_info(&rb, &journal_path, &s.operator, &host);
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
    monitors_cancel.cancel();
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
            rb.path.display(),
            journal.display()
        ),
    };
    match (status, outcome) {
        (_, headless::Outcome::JournalFailed) => EXIT_FAILED,
        (RunStatus::Finished { ok: true }, _) => {
            say!(
                "finished: every step succeeded · journal {}",
                journal.display()
            );
            say!("next: ferry report {}", journal.display());
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
