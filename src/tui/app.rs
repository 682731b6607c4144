//! The console's state and its update function. [`App::update`] takes an
//! [`Action`] (a key, a new engine snapshot, a journal notice, a clock tick, a
//! signal), changes state and returns the engine commands to send; it never
//! draws. The panes under `render/` read the state through `&App`.

use super::overlay::Overlay;
use crate::headless::{self, Outcome};
use chrono::{DateTime, Utc};
use crossterm::event::KeyEvent;
use ferry_core::engine::driver::{Command, Notice};
use ferry_core::engine::redact::Redactor;
use ferry_core::engine::snapshot::{EngineSnapshot, StepSnap};
use ferry_core::journal::Entry;
use ferry_core::runbook::{Runbook, Step};
use ferry_core::vocab::{
    Actor, Decision, Event, Outcome as StepOutcome, Refusal, RunStatus, StepState,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

/// Journal lines kept for the log view.
pub const LOG_LINES: usize = 5000;
/// How long a transient message stays on the message line.
pub const MESSAGE_SECS: i64 = 10;

/// A pane that can hold the keyboard focus (Tab / Shift-Tab).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Runbook,
    Detail,
    Lag,
    RowCounts,
    Metrics,
}

/// The selected row of the runbook pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sel {
    /// A phase, by its index in the runbook.
    Phase(usize),
    Step(String),
}

/// A row of the runbook pane: a phase header, or a step (index into the snapshot's steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    Phase(usize),
    Step(usize),
}

/// Everything the console reacts to.
#[derive(Debug)]
pub enum Action {
    Key(KeyEvent),
    /// The terminal has a new size.
    Resize(u16, u16),
    Snapshot(Arc<EngineSnapshot>),
    Notice(Notice),
    /// The wall clock moved on.
    Tick(DateTime<Utc>),
    /// SIGTERM, SIGHUP or SIGINT (or the terminal went away): stop the engine now.
    Signal,
    /// The engine has ended: no more snapshots or notices will come.
    EngineEnded,
}

/// Whose console this is.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// The console of `ferry run`: it owns the run. `socket` is where other
    /// terminals attach (`None` when the run serves none).
    Owner { socket: Option<std::path::PathBuf> },
    /// A console joined with `ferry attach`: leaving it never stops the run;
    /// without `operate` it only watches. `observer`: the run said its user is
    /// not in `[operators] operate`, so it only watches whatever it asked for.
    Attached {
        operator: String,
        operate: bool,
        observer: bool,
        socket: std::path::PathBuf,
    },
}

/// What a read-only attached console says to a key that would act.
pub const READ_ONLY: &str = "read-only: attach with --operate to act";

/// What an observer's console says to a key that would act.
pub const OBSERVING: &str =
    "you observe this run: [operators] operate does not list you, so you cannot act";

/// A transient line on the message row.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub text: String,
    pub error: bool,
    pub until: DateTime<Utc>,
}

pub struct App {
    pub(crate) rb: Arc<Runbook>,
    /// What the quit dialog says about resuming: `Ok(command)` when it is not
    /// `ferry run RUNBOOK --resume` (the demo's), `Err(why)` when the run can
    /// never be resumed (`ferry demo --postgres`), `None` for the default.
    pub(crate) resume: Option<Result<String, String>>,
    pub(crate) snap: Arc<EngineSnapshot>,
    pub(crate) redactor: Arc<Redactor>,
    pub(crate) theme: super::theme::Theme,
    pub(crate) now: DateTime<Utc>,
    pub(crate) size: (u16, u16),
    pub(crate) focus: Pane,
    pub(crate) folded: BTreeSet<usize>,
    pub(crate) selected: Sel,
    /// The selection follows the step that needs attention until the operator moves it.
    pub(crate) follow: bool,
    /// Enter on a step: the detail pane takes the whole screen.
    pub(crate) zoom: bool,
    /// Output lines scrolled back from the newest (0 = follow the tail).
    pub(crate) out_scroll: usize,
    pub(crate) log: VecDeque<String>,
    pub(crate) log_view: bool,
    pub(crate) log_scroll: usize,
    /// First row shown of the lag and row-count panes (when focused and scrolled).
    pub(crate) lag_scroll: usize,
    pub(crate) rows_scroll: usize,
    pub(crate) overlay: Option<Overlay>,
    pub(crate) message: Option<Message>,
    /// A rollback we asked for, to offer the override if a point of no return refuses it.
    pub(crate) pending_rollback: Option<String>,
    /// `Shutdown` was sent; waiting for the engine to end.
    pub(crate) stopping: bool,
    /// Steps that were running when the stop was asked for.
    pub(crate) stopped_running: Vec<String>,
    pub(crate) signalled: bool,
    pub(crate) engine_gone: bool,
    pub(crate) exit: bool,
    pub(crate) journal_failed: Option<String>,
    /// Rollback-only step id -> the steps it undoes.
    pub(crate) rollback_of: BTreeMap<String, Vec<String>>,
    pub(crate) step_index: HashMap<String, usize>,
    /// Where the runbook pane is scrolled to: the renderer's state, kept between
    /// frames and passed to it by [`super::render::draw`].
    pub(crate) runbook_scroll: super::render::ListScroll,
    pub(crate) role: Role,
    /// This console's uid, as the kernel knows it (the run's and the attach
    /// socket's view are the same): whose proposal is "mine".
    pub(crate) me_uid: Option<u32>,
    /// What the evidence materially said when the confirm dialog opened
    /// ([`super::evidence::material`]): `y` is refused when it changed since.
    pub(crate) confirm_seen: Vec<String>,
    /// The operator acknowledged the stale evidence in the open confirm dialog (Tab).
    pub(crate) confirm_ack: bool,
    /// An attached console's link ended, and how.
    pub(crate) detached: Option<String>,
}

/// "bob confirmed `copy`" when someone other than `me` decided something.
fn by_another(ev: &Event, me: &str) -> Option<String> {
    let Event::Decided { by, decision } = ev else {
        return None;
    };
    let (what, step) = match decision {
        Decision::Confirm {
            step,
            automatic: false,
            ..
        } => ("confirmed", step),
        Decision::Skip { step, .. } => ("skipped", step),
        Decision::Retry { step } => ("asked to retry", step),
        Decision::Rollback { step, .. } => ("asked to roll back", step),
        Decision::Approve { step, .. } => ("approved", step),
        Decision::Withdraw { step } => ("withdrew the proposal of", step),
        _ => return None,
    };
    (by.operator != me).then(|| format!("{} {what} `{step}`", by.operator))
}

impl App {
    pub fn new(
        rb: Arc<Runbook>,
        snap: impl Into<Arc<EngineSnapshot>>,
        redactor: Arc<Redactor>,
        theme: super::theme::Theme,
        now: DateTime<Utc>,
    ) -> Self {
        let rollback_of = rb
            .rollback_only()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
            .collect();
        let mut app = App {
            selected: Sel::Phase(0),
            rb,
            snap: snap.into(),
            redactor,
            theme,
            now,
            size: (80, 24),
            focus: Pane::Runbook,
            folded: BTreeSet::new(),
            follow: true,
            zoom: false,
            out_scroll: 0,
            log: VecDeque::new(),
            log_view: false,
            log_scroll: 0,
            lag_scroll: 0,
            rows_scroll: 0,
            overlay: None,
            message: None,
            pending_rollback: None,
            stopping: false,
            stopped_running: Vec::new(),
            signalled: false,
            engine_gone: false,
            exit: false,
            journal_failed: None,
            rollback_of,
            step_index: HashMap::new(),
            runbook_scroll: Default::default(),
            role: Role::Owner { socket: None },
            me_uid: Some(crate::identity::euid()),
            confirm_seen: Vec::new(),
            confirm_ack: false,
            resume: None,
            detached: None,
        };
        app.reindex();
        if let Some(first) = app.snap.steps.first() {
            app.selected = Sel::Step(first.id.clone());
        }
        app.follow_attention();
        app
    }

    /// The same console for another role (see [`Role`]).
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// How the quit dialog says the run is resumed (see [`App::resume`]).
    pub fn with_resume(mut self, resume: Option<Result<String, String>>) -> Self {
        self.resume = resume;
        self
    }

    pub fn role(&self) -> &Role {
        &self.role
    }

    /// An attached console (leaving it does not stop the run).
    pub fn attached(&self) -> bool {
        matches!(self.role, Role::Attached { .. })
    }

    /// Whether this console may act: false for a read-only attached one and
    /// for an observer's.
    pub fn may_act(&self) -> bool {
        !matches!(
            self.role,
            Role::Attached { operate: false, .. } | Role::Attached { observer: true, .. }
        )
    }

    /// An observer's console: `[operators] operate` does not list its user.
    pub fn observer(&self) -> bool {
        matches!(self.role, Role::Attached { observer: true, .. })
    }

    /// Who acts from this console: the run's operator, or the attached one.
    pub fn me(&self) -> &str {
        match &self.role {
            Role::Attached { operator, .. } => operator,
            Role::Owner { .. } => &self.snap.operator,
        }
    }

    /// Whether `a` is the person at this console: the same uid, or (no uid
    /// known) the same name.
    pub fn is_me(&self, a: &Actor) -> bool {
        match (a.uid, self.me_uid) {
            (Some(x), Some(y)) => x == y,
            _ => a.operator == self.me(),
        }
    }

    /// This console as another uid (tests play two people in one process).
    pub fn with_uid(mut self, uid: Option<u32>) -> Self {
        self.me_uid = uid;
        self
    }

    fn reindex(&mut self) {
        self.step_index = self
            .snap
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
    }

    /// Apply one action; return the commands for the engine. Never draws.
    pub fn update(&mut self, action: Action) -> Vec<Command> {
        match action {
            Action::Key(k) => return self.on_key(k),
            Action::Resize(w, h) => {
                self.size = (w, h);
                if !self.visible_panes().contains(&self.focus) {
                    self.focus = Pane::Runbook;
                }
            }
            Action::Snapshot(s) => self.on_snapshot(s),
            Action::Notice(n) => self.on_notice(n),
            Action::Tick(now) => {
                self.now = now;
                if self.message.as_ref().is_some_and(|m| m.until <= now) {
                    self.message = None;
                }
            }
            Action::Signal => {
                self.signalled = true;
                return self.stop();
            }
            Action::EngineEnded => {
                self.engine_gone = true;
                if self.stopping {
                    self.exit = true;
                }
            }
        }
        Vec::new()
    }

    fn on_snapshot(&mut self, s: Arc<EngineSnapshot>) {
        let reindex = s.steps.len() != self.snap.steps.len();
        self.snap = s;
        if reindex {
            self.reindex();
        }
        if self.follow {
            self.follow_attention();
        }
        // a dialog about a step that moved on no longer applies
        if let Some(Overlay::Confirm { step, .. }) = &self.overlay {
            if self.step_snap(step).map(|s| s.state) != Some(StepState::AwaitingConfirmation) {
                let step = step.clone();
                self.overlay = None;
                self.say(format!("`{step}` is no longer awaiting confirmation"), true);
            }
        }
        // an approval is of one proposal: withdrawn or replaced, the dialog goes
        if let Some(
            Overlay::Approve {
                step,
                evidence_sha256,
            }
            | Overlay::Withdraw {
                step,
                evidence_sha256,
            },
        ) = &self.overlay
        {
            let now = self
                .step_snap(step)
                .and_then(|s| s.proposal.as_ref())
                .map(|p| p.evidence_sha256.clone());
            if now.as_ref() != Some(evidence_sha256) {
                let step = step.clone();
                self.overlay = None;
                self.say(
                    format!("the proposal of `{step}` is gone or changed: look again"),
                    true,
                );
            }
        }
    }

    fn on_notice(&mut self, n: Notice) {
        match n {
            Notice::Journaled { ts, entry } => {
                if let Some(l) = headless::line(ts, &entry) {
                    self.push_log(self.redactor.redact(&l));
                }
                match *entry {
                    Entry::Refused { refusal, asked_by } => {
                        self.on_refusal(&refusal, asked_by.as_ref());
                    }
                    Entry::Event(Event::Decided {
                        decision: Decision::Rollback { ref step, .. },
                        ..
                    }) if self.pending_rollback.as_deref() == Some(step.as_str()) => {
                        self.pending_rollback = None;
                    }
                    // what another console's operator did, said on this one too
                    Entry::Event(ref ev) => {
                        if let Some(text) = by_another(ev, self.me()) {
                            self.say(text, false);
                        }
                    }
                    _ => {}
                }
            }
            Notice::Denied(reason) => {
                let reason = self.redactor.redact(&reason);
                self.say(format!("refused: {reason}"), true);
            }
            Notice::Detached(how) => {
                let how = self.redactor.redact(&how);
                self.push_log(format!("attach: {how}"));
                self.say(format!("{how} · q leaves"), false);
                self.detached = Some(how);
            }
            Notice::JournalFailed(e) => {
                let e = self.redactor.redact(&e);
                self.push_log(format!("journal failed: {e}"));
                self.say(
                    format!("the journal cannot be written ({e}); the run stops"),
                    true,
                );
                self.journal_failed = Some(e);
            }
        }
    }

    fn on_refusal(&mut self, refusal: &Refusal, asked_by: Option<&Actor>) {
        // another console's refusal is that console's business (the log has it)
        if asked_by.is_some_and(|a| !self.is_me(a)) {
            return;
        }
        let reason = self.redactor.redact(&refusal.to_string());
        if let Some(step) = self.pending_rollback.take() {
            if matches!(refusal, Refusal::PastPointOfNoReturn { .. }) && self.overlay.is_none() {
                self.overlay = Some(Overlay::Override {
                    step,
                    refusal: reason.clone(),
                    typed: String::new(),
                });
            }
        }
        self.say(format!("refused: {reason}"), true);
    }

    pub(crate) fn push_log(&mut self, line: String) {
        if self.log.len() >= LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    /// Show a transient message on the message row.
    pub(crate) fn say(&mut self, text: impl Into<String>, error: bool) {
        self.message = Some(Message {
            text: text.into(),
            error,
            until: self.now + chrono::Duration::seconds(MESSAGE_SECS),
        });
    }

    /// Ask the engine to stop: running steps are cancelled and journaled as interrupted.
    pub(crate) fn stop(&mut self) -> Vec<Command> {
        self.overlay = None;
        if self.engine_gone || self.attached() {
            // an attached console just leaves: the run goes on without it
            self.exit = true;
            return Vec::new();
        }
        if self.stopping {
            return Vec::new();
        }
        self.stopping = true;
        self.stopped_running = self.running().iter().map(|s| s.id.clone()).collect();
        self.say(
            "stopping: running steps are being stopped and journaled as interrupted…",
            false,
        );
        vec![Command::Shutdown]
    }

    // ---- queries used by keys and panes -------------------------------------------------------

    pub fn snapshot(&self) -> &EngineSnapshot {
        &self.snap
    }

    pub fn overlay(&self) -> Option<&Overlay> {
        self.overlay.as_ref()
    }

    pub fn message(&self) -> Option<&Message> {
        self.message.as_ref()
    }

    pub fn should_exit(&self) -> bool {
        self.exit
    }

    pub fn selected(&self) -> &Sel {
        &self.selected
    }

    pub fn step_snap(&self, id: &str) -> Option<&StepSnap> {
        match self
            .step_index
            .get(id)
            .and_then(|&i| self.snap.steps.get(i))
        {
            Some(s) if s.id == id => Some(s),
            _ => self.snap.step(id),
        }
    }

    pub fn step_def(&self, id: &str) -> Option<&Step> {
        self.rb.step(id)
    }

    /// Steps whose work is in flight (stopping the console interrupts them).
    pub fn running(&self) -> Vec<&StepSnap> {
        self.snap
            .steps
            .iter()
            .filter(|s| {
                matches!(
                    s.state,
                    StepState::Running | StepState::RollingBack | StepState::RetryWait
                )
            })
            .collect()
    }

    /// How headless-style driving would describe the end of this console session.
    pub fn outcome(&self) -> Outcome {
        if self.journal_failed.is_some() {
            return Outcome::JournalFailed;
        }
        match &self.snap.status {
            RunStatus::Finished { .. } | RunStatus::Aborted => Outcome::Done,
            RunStatus::Halted { step } => {
                let snap = self.step_snap(step);
                let why = snap.and_then(|s| s.outcome_text()).unwrap_or_default();
                if snap.is_some_and(|s| matches!(s.outcome, Some(StepOutcome::Unreachable { .. })))
                {
                    Outcome::Unreachable
                } else if self.signalled || !self.stopped_running.is_empty() {
                    Outcome::Interrupted
                } else {
                    Outcome::Halted(format!("step `{step}` failed: {why}"))
                }
            }
            _ if self.signalled || !self.stopped_running.is_empty() => Outcome::Interrupted,
            RunStatus::Waiting { steps } if !steps.is_empty() => Outcome::NeedsOperator(format!(
                "the console was closed while {} waited for an operator",
                steps
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => Outcome::Interrupted,
        }
    }
}
