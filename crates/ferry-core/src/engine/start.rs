//! Starting and resuming a run: the engine's one front door.
//!
//! ```text
//! Settings ──open()──► Opened ──(front-end opens its attach socket)──begin()──► Started
//!            runbook, redactor,           header + session entries, leftover groups
//!            connections, AWS,            stopped, monitors spawned, driver built
//!            journal new or resumed
//!            and replayed
//! ```
//! The split exists because the session entry records where `ferry attach` reaches
//! the run, and the socket is named after the journal, which `open` decides. Every
//! front-end (`ferry run`, the demo, the driver's own tests) starts runs through here.

use super::connections::{Connections, RetryPolicy};
use super::driver::{initial_snapshot, Driver, ExecEnv, Handles};
use super::exec::EnvLookup;
use super::machine::Machine;
use super::redact::Redactor;
use super::resume;
use super::snapshot::EngineSnapshot;
use crate::journal::{self, Entry, Header, Writer};
use crate::runbook::{self, expand::is_secret_name, Runbook};
use crate::vocab::{Actor, Event};
use crate::{aws, monitor};
use chrono::Utc;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What a run is started from.
#[derive(Clone)]
pub struct Settings {
    pub runbook: PathBuf,
    /// The journal to write (new run) or to continue (`resume`); default: the
    /// newest unfinished one under `runs_dir` when resuming, a new file otherwise.
    pub journal: Option<PathBuf>,
    pub resume: bool,
    /// Continue a journal whose runbook changed since it began.
    pub accept_changes: bool,
    /// The name shown for the run's own operator (`--operator`, else the login).
    pub operator: String,
    pub host: String,
    /// The kernel's view of the run's own operator: the process's effective uid
    /// and its login name (journaled with every decision of the run's console).
    pub uid: Option<u32>,
    pub login: Option<String>,
    pub runs_dir: PathBuf,
    /// Where `${env:X}` and secrets are looked up (the process environment in production).
    pub env: EnvLookup,
    /// Every secret-looking variable of this environment is masked, referenced or not.
    pub env_vars: Vec<(String, String)>,
    /// `--var` / `--vars` values overriding the runbook's `[vars]`.
    pub vars: runbook::vars::Overrides,
}

/// Why a run could not start. `Display` is the message for the operator; the
/// front-end adds the `error: ` prefix and picks the exit code by [`StartError::unreachable`].
#[derive(Debug)]
pub enum StartError {
    /// The runbook does not load: its diagnostics, rendered.
    Runbook(String),
    Connections(Vec<String>),
    AwsConfig(String),
    AwsUnreachable {
        error: String,
        endpoint: String,
    },
    NoUnfinishedJournal {
        runbook: String,
        dir: PathBuf,
    },
    Journal(String),
    AlreadyEnded(PathBuf),
    OtherRunbook {
        path: PathBuf,
        journal_runbook: String,
        runbook: String,
    },
    RunbookChanged {
        path: PathBuf,
        changes: Vec<String>,
    },
    /// `--var` / `--vars` values that cannot be used (unknown names, a bad
    /// file, a value changed on resume): the message, rendered.
    Vars(String),
    JournalWrite {
        path: PathBuf,
        error: String,
    },
}

impl StartError {
    /// A required service did not answer (exit code 3) rather than bad input (2).
    pub fn unreachable(&self) -> bool {
        matches!(self, StartError::AwsUnreachable { .. })
    }

    /// The runbook's own diagnostics, printed as they are (no `error: ` prefix).
    pub fn diagnostics(&self) -> Option<&str> {
        match self {
            StartError::Runbook(d) => Some(d),
            StartError::Vars(d) => Some(d),
            _ => None,
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Runbook(d) | StartError::Vars(d) => f.write_str(d),
            StartError::Connections(missing) => {
                writeln!(f, "cannot resolve the runbook's connections:")?;
                for m in missing {
                    writeln!(f, "  {m}")?;
                }
                write!(f, "  = help: export the variables, then run again (`ferry check` lists what the runbook needs)")
            }
            StartError::AwsConfig(e) => write!(f, "cannot configure AWS: {e}"),
            StartError::AwsUnreachable { error, endpoint } => write!(
                f,
                "{error} ({endpoint})\n  = help: check [aws] endpoint_url / region and the network, then run again"
            ),
            StartError::NoUnfinishedJournal { runbook, dir } => write!(
                f,
                "no unfinished journal of runbook `{runbook}` under {}\n  = help: pass --journal PATH, or start a new run without --resume",
                dir.display()
            ),
            StartError::Journal(e) => f.write_str(e),
            StartError::AlreadyEnded(p) => write!(
                f,
                "the run in {} already ended; start a new run without --resume",
                p.display()
            ),
            StartError::OtherRunbook {
                path,
                journal_runbook,
                runbook,
            } => write!(
                f,
                "{} is a journal of runbook `{journal_runbook}`, not `{runbook}`",
                path.display()
            ),
            StartError::RunbookChanged { path, changes } => {
                writeln!(f, "the runbook changed since {} began:", path.display())?;
                for c in changes {
                    writeln!(f, "  {c}")?;
                }
                write!(f, "  = help: restore the runbook, or pass --accept-changes to continue with the new definitions")
            }
            StartError::JournalWrite { path, error } => {
                write!(f, "cannot write journal {}: {error}", path.display())
            }
        }
    }
}

/// Something worth telling the operator while a run starts.
#[derive(Debug, Clone, PartialEq)]
pub enum StartNote {
    /// `--accept-changes`: these steps differ from the journal's.
    ChangesAccepted(Vec<String>),
    /// The journal's last line was cut short by a crash and is dropped.
    TornLine { path: PathBuf, line: usize },
    /// A process group a crashed step left running, and what was done about it.
    Leftover(String),
    /// Vars masked in the journal (named like a secret): their values come
    /// from this command line or the runbook, and could not be compared.
    MaskedVars(Vec<String>),
}

impl fmt::Display for StartNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartNote::ChangesAccepted(c) => write!(
                f,
                "the runbook changed since the journal began (accepted): {}",
                c.join(", ")
            ),
            StartNote::TornLine { path, line } => write!(
                f,
                "the last line of {} (line {line}) was cut short by a crash; it is dropped",
                path.display()
            ),
            StartNote::Leftover(l) => f.write_str(l),
            StartNote::MaskedVars(v) => write!(
                f,
                "{} masked in the journal (named like a secret): taken from this command line or the runbook, not compared with the first session's",
                v.join(", ")
            ),
        }
    }
}

/// A run whose journal is open (and replayed, when resumed), not yet begun.
pub struct Opened {
    pub runbook: Arc<Runbook>,
    pub redactor: Arc<Redactor>,
    pub notes: Vec<StartNote>,
    /// The var values in force, with where each came from.
    pub vars: runbook::vars::Overrides,
    settings: Settings,
    conns: Connections,
    journal: Writer,
    machine: Machine,
    snap: EngineSnapshot,
    interrupted: Vec<String>,
    leftovers: Vec<(String, i32, Option<u64>)>,
    /// What the rehearsals forecast, journaled after the session entry.
    forecast: Option<Entry>,
}

/// A run ready to go: spawn `driver.run()`, hand `handles` to a front-end, and
/// cancel `monitors` once the driver has ended.
pub struct Started {
    pub driver: Driver,
    pub handles: Handles,
    pub runbook: Arc<Runbook>,
    pub redactor: Arc<Redactor>,
    pub journal: PathBuf,
    /// The host the run's session entry names.
    pub host: String,
    /// The var values in force, with where each came from.
    pub vars: runbook::vars::Overrides,
    pub monitors: CancellationToken,
    pub notes: Vec<StartNote>,
}

/// Load the runbook, resolve its connections and AWS clients, and open the
/// journal: a new one, or the one to resume, verified, checked against the
/// runbook and replayed into the machine.
pub async fn open(settings: Settings) -> Result<Opened, StartError> {
    let mut notes = Vec::new();
    let first = load_runbook(&settings.runbook, &settings.vars)?;
    let (rb, vars, resume_from) = if settings.resume {
        let (path, replay) = resume_journal(&first, &settings)?;
        let journaled = replay.header().map(|h| h.vars.clone()).unwrap_or_default();
        let (merged, masked) = settings
            .vars
            .for_resume(&journaled, &first.vars)
            .map_err(|e| StartError::Vars(e.to_string()))?;
        if !masked.is_empty() {
            notes.push(StartNote::MaskedVars(masked));
        }
        let rb = load_runbook(&settings.runbook, &merged)?;
        (rb, merged, Some((path, replay)))
    } else {
        (first, settings.vars.clone(), None)
    };
    let rb = Arc::new(rb);
    let mut redactor = redactor_for(&rb, &*settings.env, &settings.env_vars);
    let conns = Connections::new(&rb, &*settings.env, &mut redactor, RetryPolicy::default())
        .map_err(StartError::Connections)?;
    connect_aws(&rb, &conns, &*settings.env).await?;
    let redactor = Arc::new(redactor);
    let redact_for_journal = {
        let r = redactor.clone();
        Box::new(move |t: &str| r.redact(t)) as Box<dyn Fn(&str) -> String + Send>
    };
    let (journal, machine, snap, interrupted, leftovers) = if let Some((path, replay)) = resume_from
    {
        resumed(&rb, &settings, path, replay, redact_for_journal, &mut notes)?
    } else {
        let path = settings
            .journal
            .clone()
            .unwrap_or_else(|| journal::default_path(&settings.runs_dir, &rb.name, Utc::now()));
        let w = Writer::create(&path, redact_for_journal).map_err(|e| {
            StartError::Journal(format!("cannot create journal {}: {e}", path.display()))
        })?;
        let m = Machine::new(&rb);
        let snap = initial_snapshot(&rb, &m, &path, &settings.operator);
        (w, m, snap, Vec::new(), Vec::new())
    };
    Ok(Opened {
        runbook: rb,
        redactor,
        notes,
        vars,
        settings,
        conns,
        journal,
        machine,
        snap,
        interrupted,
        leftovers,
        forecast: None,
    })
}

/// AWS clients only when the runbook uses AWS; `${env:X}` in `[aws]` expands now,
/// like connection URLs, and one cheap call proves the endpoint answers.
async fn connect_aws(
    rb: &Runbook,
    conns: &Connections,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), StartError> {
    if !uses_aws(rb) {
        return Ok(());
    }
    let clients = aws::connect(rb.aws.as_ref(), lookup)
        .await
        .map_err(|e| StartError::AwsConfig(e.to_string()))?;
    let rds = rb
        .steps()
        .any(|s| matches!(s.kind, runbook::StepKind::Rds(_)))
        || rb.connections.values().any(|c| c.iam_auth.is_some());
    if let Err(e) = aws::preflight(&clients, rds).await {
        return Err(StartError::AwsUnreachable {
            error: e.to_string(),
            endpoint: clients.endpoint(),
        });
    }
    conns.set_aws(clients);
    Ok(())
}

type Resumed = (
    Writer,
    Machine,
    EngineSnapshot,
    Vec<String>,
    Vec<(String, i32, Option<u64>)>,
);

/// The runbook with the given var values; every given name must be declared.
fn load_runbook(path: &Path, vars: &runbook::vars::Overrides) -> Result<Runbook, StartError> {
    let rb = runbook::load_with(path, &vars.values())
        .map_err(|report| StartError::Runbook(report.render()))?;
    vars.check_declared(&rb.vars)
        .map_err(|e| StartError::Vars(e.to_string()))?;
    Ok(rb)
}

/// The journal to resume, found and verified, and not closed.
fn resume_journal(rb: &Runbook, s: &Settings) -> Result<(PathBuf, journal::Replay), StartError> {
    let path = s
        .journal
        .clone()
        .or_else(|| journal::newest_unfinished(&s.runs_dir, &rb.name))
        .ok_or_else(|| StartError::NoUnfinishedJournal {
            runbook: rb.name.clone(),
            dir: s.runs_dir.join(&rb.name),
        })?;
    let replay = journal::read_journal(&path).map_err(|e| StartError::Journal(e.to_string()))?;
    if replay.closed() {
        return Err(StartError::AlreadyEnded(path));
    }
    Ok((path, replay))
}

/// The journal to resume: of this runbook (unchanged unless accepted),
/// reopened for appending and replayed.
fn resumed(
    rb: &Runbook,
    s: &Settings,
    path: PathBuf,
    replay: journal::Replay,
    redact: Box<dyn Fn(&str) -> String + Send>,
    notes: &mut Vec<StartNote>,
) -> Result<Resumed, StartError> {
    if let Some(h) = replay.header() {
        if h.runbook_name != rb.name {
            return Err(StartError::OtherRunbook {
                path,
                journal_runbook: h.runbook_name.clone(),
                runbook: rb.name.clone(),
            });
        }
        let changes = resume::changed_steps(h, rb);
        if !changes.is_empty() {
            if !s.accept_changes {
                return Err(StartError::RunbookChanged { path, changes });
            }
            notes.push(StartNote::ChangesAccepted(changes));
        }
    }
    let w = Writer::resume(&path, &replay, redact).map_err(|e| {
        StartError::Journal(format!("cannot append to journal {}: {e}", path.display()))
    })?;
    // only now: a live run's half-written line is not a crash's
    if let Some((line, _)) = &replay.torn {
        notes.push(StartNote::TornLine {
            path: path.clone(),
            line: *line,
        });
    }
    let m0 = Machine::new(rb);
    let mut snap = initial_snapshot(rb, &m0, &path, &s.operator);
    let (m, running) = resume::replay(rb, &replay, &mut snap);
    let leftovers = resume::leftover_groups(&replay, &running);
    Ok((w, m, snap, running, leftovers))
}

impl Opened {
    /// The journal this run writes.
    pub fn journal_path(&self) -> &Path {
        self.journal.path()
    }

    /// Rehearsal timings for the front-ends (computed by `report::rehearsal`
    /// from earlier journals): carried in every snapshot from the first.
    /// The journal records what the forecast was based on: the rehearsal
    /// journals (`journals`) and the per-step figures, for the report's planned
    /// against actual.
    pub fn set_rehearsal(&mut self, r: crate::vocab::rehearsal::Rehearsal, journals: Vec<String>) {
        self.forecast = Some(Entry::Forecast {
            journals,
            steps: r.steps.clone(),
            rollbacks: r.rollbacks.clone(),
        });
        self.snap.rehearsal = Some(Arc::new(r));
    }

    /// Drop a new run's journal file that nothing was written to yet (a front-end
    /// that cannot go on after `open`); a resumed journal is never touched.
    pub fn abandon(self) {
        if !self.settings.resume {
            let _ = std::fs::remove_file(self.journal.path());
        }
    }

    /// Write the header (a new run) and the session entry naming `socket`, stop
    /// the process groups a crashed run left, spawn the monitors and build the
    /// driver with its handles.
    pub async fn begin(self, socket: Option<&Path>) -> Result<Started, StartError> {
        let Opened {
            runbook: rb,
            redactor,
            mut notes,
            vars,
            settings: s,
            conns,
            mut journal,
            machine,
            snap,
            interrupted,
            leftovers,
            forecast,
        } = self;
        let write_err = |j: &Writer, e: std::io::Error| StartError::JournalWrite {
            path: j.path().to_path_buf(),
            error: e.to_string(),
        };
        let now = Utc::now();
        if !s.resume {
            let mut h = header(&rb, &s.operator, &s.host);
            h.uid = s.uid;
            h.login = s.login.clone();
            h.vars = vars.used(&rb.vars);
            journal
                .append(&Entry::Header(h), now)
                .map_err(|e| write_err(&journal, e))?;
        }
        let session = Entry::Session {
            operator: s.operator.clone(),
            host: s.host.clone(),
            uid: s.uid,
            login: s.login.clone(),
            resumed: s.resume,
            pid: std::process::id(),
            socket: socket.map(|p| p.display().to_string()),
        };
        journal
            .append(&session, now)
            .map_err(|e| write_err(&journal, e))?;
        if let Some(f) = &forecast {
            journal.append(f, now).map_err(|e| write_err(&journal, e))?;
        }
        for line in resume::stop_leftovers(&leftovers).await {
            let note = Entry::Note {
                step: None,
                text: line.clone(),
            };
            journal
                .append(&note, Utc::now())
                .map_err(|e| write_err(&journal, e))?;
            notes.push(StartNote::Leftover(line));
        }
        let journal_path = journal.path().to_path_buf();
        let conns = Arc::new(conns);
        let monitors = CancellationToken::new();
        let getter: monitor::DbGetter = {
            let c = conns.clone();
            Arc::new(move |name: String| {
                let c = c.clone();
                Box::pin(async move { c.get(&name).await.map_err(|e| e.to_string()) })
            })
        };
        let (hub, samples) = monitor::spawn(&rb, getter, conns.aws().cloned(), monitors.clone());
        let env = ExecEnv {
            run_id: journal.run_id().unwrap_or_default().to_string(),
            redactor: redactor.clone(),
            conns,
            monitors: hub.clone(),
            env: s.env.clone(),
        };
        let actor = Actor {
            operator: s.operator.clone(),
            host: s.host.clone(),
            uid: s.uid,
            login: s.login.clone(),
        };
        let (mut driver, handles) = Driver::new(rb.clone(), machine, journal, env, actor, snap);
        driver.with_monitors(hub, samples);
        if !interrupted.is_empty() {
            // journaled and applied before anything else runs
            driver.first(Event::Interrupted { steps: interrupted });
        }
        Ok(Started {
            driver,
            handles,
            runbook: rb,
            redactor,
            journal: journal_path,
            host: s.host,
            vars,
            monitors,
            notes,
        })
    }
}

/// The journal's first line: the runbook as planned, who started it, where.
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
        uid: None,
        login: None,
        window_start: rb.window.as_ref().map(|w| w.start),
        window_secs: rb.window.as_ref().map(|w| w.duration.as_secs()),
        plan: journal::StepMeta::plan(rb),
        vars: Vec::new(),
    }
}

/// Whether the run needs AWS clients: rds and dms steps, CloudWatch monitors, IAM auth.
pub fn uses_aws(rb: &Runbook) -> bool {
    rb.steps().any(|s| {
        matches!(
            s.kind,
            runbook::StepKind::Rds(_) | runbook::StepKind::Dms(_)
        )
    }) || rb
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

/// The redactor for a run: the values of every secret-named variable the runbook
/// refers to, and of every secret-looking variable of the environment.
pub fn redactor_for(
    rb: &Runbook,
    env: &dyn Fn(&str) -> Option<String>,
    env_vars: &[(String, String)],
) -> Redactor {
    let mut r = Redactor::new();
    let mut names: Vec<String> = Vec::new();
    for c in rb.connections.values() {
        names.extend(runbook::expand::env_refs(&c.url));
    }
    for (k, v) in &rb.vars {
        names.extend(runbook::expand::env_refs(v));
        // a secret-named var given as a literal (in the runbook, a vars file or --var)
        if runbook::vars::is_masked(k) && runbook::expand::env_refs(v).is_empty() {
            r.add(v);
        }
    }
    for st in rb.steps() {
        if let runbook::StepKind::Shell(sh) = &st.kind {
            names.extend(runbook::expand::env_refs(&sh.run));
            names.extend(sh.env.values().flat_map(|v| runbook::expand::env_refs(v)));
        }
    }
    for n in names {
        if is_secret_name(&n) {
            if let Some(v) = env(&n) {
                r.add(&v);
            }
        }
    }
    for (k, v) in env_vars {
        if is_secret_name(k) && !k.starts_with("CARGO") {
            r.add(v);
        }
    }
    r
}
