//! The driver: owns the machine and the journal, runs effects in tokio tasks
//! (each with a cancellation token), feeds outcomes back as events, publishes
//! an owned [`EngineSnapshot`] on a watch channel and sends must-not-lose
//! notices on an mpsc channel. Every event is journaled before it is handled.

use super::effect::Effect;
use super::exec::{self, ExecCtx, MonitorView, Report};
use super::machine::Machine;
use super::snapshot::{EngineSnapshot, StepSnap};
use super::{connections::Connections, redact::Redactor};
use crate::journal::{Entry, Writer};
use crate::runbook::Runbook;
use crate::vocab::{Actor, Decision, Event, Outcome, OutputLine, Progress, RunStatus};
use chrono::Utc;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What a front-end may ask of the engine.
#[derive(Debug, Clone)]
pub enum Command {
    /// The run's own operator decided.
    Decide(Decision),
    /// An operator attached from another terminal decided: journaled with `actor`
    /// as who did it. Only decisions about a step pass ([`Decision::open_to_attached`]);
    /// an abort inside is ignored, so an attached console can never stop the run.
    As { actor: Actor, decision: Decision },
    /// An attached operator's decision refused before the machine saw it (an
    /// observer's: `[operators] operate` does not list them): journaled as the
    /// refusal it is, asked by `actor`.
    Refuse {
        actor: Actor,
        refusal: crate::vocab::Refusal,
    },
    /// Stop now: cancel running steps (they become `interrupted`), keep the run resumable.
    Shutdown,
    /// The operators attached from other terminals changed: `attendees` goes
    /// into the snapshot and `note` (who came or went) into the journal.
    Presence {
        attendees: Vec<super::snapshot::Attendee>,
        note: String,
    },
}

/// Must-not-lose messages for front-ends.
#[derive(Debug, Clone)]
pub enum Notice {
    /// An entry was journaled (already redacted where it matters).
    Journaled {
        ts: chrono::DateTime<Utc>,
        entry: Box<Entry>,
    },
    /// The journal could not be written: the run stops.
    JournalFailed(String),
    /// An attached console's command was not passed on (read-only), and why.
    Denied(String),
    /// An attached console's link to the run ended, and how (the last notice it gets).
    Detached(String),
}

enum Internal {
    Event(Event),
    Output(OutputLine),
    Report(String, Report),
    TaskDone,
}

/// Progress is journaled at most this often per step (the screen gets every update).
const PROGRESS_JOURNAL_EVERY: Duration = Duration::from_secs(5);

/// What executors need, shared by every task.
pub struct ExecEnv {
    /// The run's identity (see [`crate::journal::Writer::run_id`]): a copy started by
    /// another run starts over instead of resuming that run's checkpoints.
    pub run_id: String,
    pub redactor: Arc<Redactor>,
    pub conns: Arc<Connections>,
    pub monitors: Arc<dyn MonitorView>,
    pub env: exec::EnvLookup,
}

pub struct Handles {
    pub commands: mpsc::UnboundedSender<Command>,
    /// The latest picture of the run, published only when something in it changed.
    pub snapshot: watch::Receiver<Arc<EngineSnapshot>>,
    pub notices: mpsc::UnboundedReceiver<Notice>,
}

pub struct Driver {
    runbook: Arc<Runbook>,
    machine: Machine,
    journal: Writer,
    env: ExecEnv,
    actor: Actor,
    snap: EngineSnapshot,
    /// Whether `snap` changed since it was last published.
    dirty: bool,
    snapshot_tx: watch::Sender<Arc<EngineSnapshot>>,
    notice_tx: mpsc::UnboundedSender<Notice>,
    cmd_rx: mpsc::UnboundedReceiver<Command>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: mpsc::UnboundedReceiver<Internal>,
    tokens: HashMap<String, CancellationToken>,
    /// Per running step: why a monitor's alarm failed it (its outcome becomes that failure).
    alarms: HashMap<String, Arc<std::sync::Mutex<Option<String>>>>,
    root: CancellationToken,
    tasks: JoinSet<()>,
    closed: bool,
    journal_failed: bool,
    initial: Vec<Event>,
    /// Per step: when progress was last journaled, and the latest one not yet journaled.
    progress_log: HashMap<String, (tokio::time::Instant, Option<Progress>)>,
    /// Live monitors: their values go into the snapshot, their samples into the journal.
    monitor_hub: Option<Arc<crate::monitor::Hub>>,
    monitor_version: Option<watch::Receiver<u64>>,
    monitor_samples: Option<mpsc::UnboundedReceiver<crate::monitor::Record>>,
    /// Who asked for the event being handled, when not the run's own operator
    /// (an attached console): its refusals say so, so only that console shows them.
    asked_by: Option<Actor>,
}

impl Driver {
    /// `machine` may already hold replayed state (resume); `snap` its matching snapshot.
    pub fn new(
        runbook: Arc<Runbook>,
        machine: Machine,
        journal: Writer,
        env: ExecEnv,
        actor: Actor,
        snap: EngineSnapshot,
    ) -> (Self, Handles) {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(snap.clone()));
        let (notice_tx, notice_rx) = mpsc::unbounded_channel();
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let d = Driver {
            runbook,
            machine,
            journal,
            env,
            actor,
            snap,
            dirty: false,
            snapshot_tx,
            notice_tx,
            cmd_rx,
            internal_tx,
            internal_rx,
            tokens: HashMap::new(),
            alarms: HashMap::new(),
            root: CancellationToken::new(),
            tasks: JoinSet::new(),
            closed: false,
            journal_failed: false,
            initial: Vec::new(),
            progress_log: HashMap::new(),
            monitor_hub: None,
            monitor_version: None,
            monitor_samples: None,
            asked_by: None,
        };
        (
            d,
            Handles {
                commands: cmd_tx,
                snapshot: snapshot_rx,
                notices: notice_rx,
            },
        )
    }

    /// Feed live monitor values into the snapshot and their samples into the journal.
    pub fn with_monitors(
        &mut self,
        hub: Arc<crate::monitor::Hub>,
        samples: mpsc::UnboundedReceiver<crate::monitor::Record>,
    ) {
        self.snap.monitors = Arc::new(hub.snapshot());
        self.dirty = true;
        self.monitor_version = Some(hub.subscribe());
        self.monitor_hub = Some(hub);
        self.monitor_samples = Some(samples);
    }

    /// An event to journal and handle before anything else (resume: `Interrupted`).
    pub fn first(&mut self, ev: Event) {
        self.initial.push(ev);
    }

    /// Run until the run is finished or aborted, or a shutdown was asked for and
    /// every task has ended. Returns the final status.
    pub async fn run(mut self) -> RunStatus {
        for ev in std::mem::take(&mut self.initial) {
            self.feed(ev);
        }
        // what each database connection got (TLS verified or not) is evidence
        let (seen, mut tls_rx) = self.env.conns.tls_evidence();
        for ev in seen {
            self.journal(Entry::Connection(ev));
        }
        self.rewatch_replication();
        let fx = self.machine.start();
        // starting moves steps to ready or awaiting: the first publish must show it
        self.dirty = true;
        self.apply(fx);
        let mut shutting_down = false;
        loop {
            self.publish();
            if (self.closed || shutting_down || self.journal_failed) && self.tasks.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                Some(msg) = self.internal_rx.recv() => match msg {
                    Internal::Event(ev) => self.feed(ev),
                    Internal::Output(line) => self.output(line),
                    Internal::Report(step, r) => self.report(step, r),
                    Internal::TaskDone => {}
                },
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
                Some(ev) = tls_rx.recv() => self.journal(Entry::Connection(ev)),
                Some(record) = async { match self.monitor_samples.as_mut() { Some(m) => m.recv().await, None => std::future::pending().await } } => match record {
                    crate::monitor::Record::Sample(sample) => self.journal(Entry::Sample {
                        monitor: sample.monitor,
                        series: sample.series,
                        value: sample.value,
                        unit: sample.unit,
                        warn: sample.warn,
                        max: sample.max,
                    }),
                    crate::monitor::Record::Note(text) => self.journal(Entry::Note { step: None, text }),
                    crate::monitor::Record::Alarm { monitor, problems } => self.alarm(&monitor, &problems),
                },
                Ok(()) = async { match self.monitor_version.as_mut() { Some(v) => v.changed().await, None => std::future::pending().await } } => {
                    if let Some(h) = &self.monitor_hub {
                        self.snap.monitors = Arc::new(h.snapshot());
                        self.dirty = true;
                    }
                }
                cmd = self.cmd_rx.recv(), if !shutting_down => match cmd {
                    None | Some(Command::Shutdown) => {
                        shutting_down = true;
                        self.root.cancel();
                    }
                    Some(Command::Presence { attendees, note }) => {
                        self.snap.attached = attendees;
                        self.dirty = true;
                        self.journal(Entry::Note { step: None, text: note });
                    }
                    Some(Command::Refuse { actor, refusal }) => {
                        self.journal(Entry::Refused { refusal, asked_by: Some(actor) });
                    }
                    Some(Command::Decide(decision)) => {
                        self.feed(Event::decided(self.actor.clone(), decision));
                    }
                    Some(Command::As { actor, decision }) => {
                        if decision.open_to_attached() {
                            self.feed(Event::decided(actor, decision));
                        } else {
                            tracing::warn!(?decision, by = %actor.operator, "ignored: an attached operator cannot stop the run");
                        }
                    }
                },
            }
        }
        while let Ok(ev) = tls_rx.try_recv() {
            self.journal(Entry::Connection(ev));
        }
        // drain what the cancelled tasks reported
        while let Ok(msg) = self.internal_rx.try_recv() {
            match msg {
                Internal::Event(ev) => self.feed(ev),
                Internal::Output(line) => self.output(line),
                Internal::Report(step, r) => self.report(step, r),
                Internal::TaskDone => {}
            }
        }
        self.publish();
        self.env.conns.close().await;
        self.machine.run_status()
    }

    fn journal(&mut self, entry: Entry) {
        if self.journal_failed {
            return;
        }
        match self.journal.append(&entry, Utc::now()) {
            Ok(ts) => {
                self.snap.record(&entry, ts);
                self.dirty = true;
                let _ = self.notice_tx.send(Notice::Journaled {
                    ts,
                    entry: Box::new(entry),
                });
            }
            Err(e) => {
                // without a journal nothing may run: stop everything
                self.journal_failed = true;
                self.root.cancel();
                let _ = self.notice_tx.send(Notice::JournalFailed(format!(
                    "{}: {e}",
                    self.journal.path().display()
                )));
            }
        }
    }

    fn report(&mut self, step: String, r: Report) {
        match r {
            Report::Result { data } => self.journal(Entry::Result { step, data }),
            Report::Process { pgid, start_ticks } => self.journal(Entry::Process {
                step,
                pgid,
                start_ticks,
            }),
            Report::Progress(mut p) => {
                super::eta::apply(&step, &mut p, self.snap.rehearsal.as_deref());
                if let Some(s) = self.snap.steps.iter_mut().find(|s| s.id == step) {
                    s.progress = Some(p.clone());
                    self.dirty = true;
                }
                let now = tokio::time::Instant::now();
                let due = self
                    .progress_log
                    .get(&step)
                    .is_none_or(|(at, _)| now.duration_since(*at) >= PROGRESS_JOURNAL_EVERY);
                if due {
                    self.progress_log.insert(step.clone(), (now, None));
                    self.journal(Entry::Progress { step, progress: p });
                } else if let Some(entry) = self.progress_log.get_mut(&step) {
                    entry.1 = Some(p);
                }
            }
        }
    }

    /// Journal, then handle, then perform.
    fn feed(&mut self, ev: Event) {
        match &ev {
            Event::Started { step, attempt } => tracing::info!(%step, attempt, "step started"),
            Event::Finished {
                step,
                attempt,
                outcome,
            } => tracing::info!(%step, attempt, outcome = %outcome.describe(), "step finished"),
            other => tracing::debug!(event = ?other, "event"),
        }
        // step boundaries refresh the exact row counts
        if let (Event::Finished { .. }, Some(h)) = (&ev, &self.monitor_hub) {
            h.request_exact_counts();
        }
        // the last progress of a finishing step is worth keeping
        if let Event::Finished { step, .. } = &ev {
            if let Some((_, Some(p))) = self.progress_log.remove(step) {
                self.journal(Entry::Progress {
                    step: step.clone(),
                    progress: p,
                });
            }
        }
        // the forecast as each step starts, for the report's budget over time
        if let Event::Started { step, .. } = &ev {
            if let Some(p) = super::timeline::project(&self.snap, Utc::now()) {
                let budget_secs = match p.budget {
                    super::timeline::Budget::Known { secs, .. } => Some(secs),
                    _ => None,
                };
                self.journal(Entry::Projection {
                    step: step.clone(),
                    end_median: p.end_median,
                    end_p90: p.end_p90,
                    budget_secs,
                });
            }
        }
        self.journal(Entry::Event(ev.clone()));
        if self.journal_failed {
            return;
        }
        self.follow_replication(&ev);
        let fx = self.machine.handle(&ev);
        self.snap.sync(&self.machine);
        self.dirty = true;
        let asked_by = ev.by().filter(|b| **b != self.actor).cloned();
        // effects may feed events of their own (`Started`): restore, not clear
        let outer = std::mem::replace(&mut self.asked_by, asked_by);
        self.apply(fx);
        self.asked_by = outer;
    }

    /// A DMS monitor found new trouble: journal it, then fail every running step
    /// with it (cancelled now, its outcome the failure naming the table and message).
    fn alarm(&mut self, monitor: &str, problems: &[String]) {
        let text = self
            .env
            .redactor
            .redact(&format!("dms monitor `{monitor}`: {}", problems.join("; ")));
        self.journal(Entry::Note {
            step: None,
            text: format!("PROBLEM: {text}"),
        });
        let running: Vec<String> = self
            .snap
            .steps
            .iter()
            .filter(|s| s.state == crate::vocab::StepState::Running)
            .map(|s| s.id.clone())
            .collect();
        for id in running {
            let (Some(slot), Some(token)) = (self.alarms.get(&id), self.tokens.get(&id)) else {
                continue;
            };
            if let Ok(mut why) = slot.lock() {
                why.get_or_insert_with(|| text.clone());
            }
            token.cancel();
            self.journal(Entry::Note {
                step: Some(id.clone()),
                text: format!("failing `{id}`: {text}"),
            });
        }
    }

    fn output(&mut self, line: OutputLine) {
        self.journal(Entry::Output(line));
    }

    fn apply(&mut self, fx: Vec<Effect>) {
        for e in fx {
            match e {
                Effect::Execute {
                    step,
                    attempt,
                    timeout,
                } => {
                    self.feed(Event::Started {
                        step: step.clone(),
                        attempt,
                    });
                    self.spawn_step(step, attempt, timeout);
                }
                Effect::Cancel { step } => {
                    if let Some(t) = self.tokens.get(&step) {
                        t.cancel();
                    }
                }
                Effect::ScheduleRetry { step, after } => {
                    self.journal(Entry::Note {
                        step: Some(step.clone()),
                        text: format!("retrying `{step}` in {}", humantime::format_duration(after)),
                    });
                    let tx = self.internal_tx.clone();
                    let cancel = self.root.child_token();
                    self.tasks.spawn(async move {
                        tokio::select! {
                            _ = cancel.cancelled() => {}
                            _ = tokio::time::sleep(after) => { let _ = tx.send(Internal::Event(Event::RetryDue { step })); }
                        }
                    });
                }
                Effect::RunRollback { step } => self.spawn_rollback(step),
                Effect::Rejected(refusal) => self.journal(Entry::Refused {
                    refusal,
                    asked_by: self.asked_by.clone(),
                }),
                Effect::Settled(status) => {
                    self.snap.status = status.clone();
                    self.dirty = true;
                    if matches!(status, RunStatus::Finished { .. } | RunStatus::Aborted)
                        && !self.closed
                    {
                        self.closed = true;
                        self.journal(Entry::Closed { status });
                    }
                }
            }
        }
    }

    /// The executor context, and the task forwarding its output into the loop;
    /// await that task after dropping the context so output precedes `Finished`.
    fn ctx(&self, step: &str, cancel: CancellationToken) -> (ExecCtx, tokio::task::JoinHandle<()>) {
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<OutputLine>();
        let (rep_tx, mut rep_rx) = mpsc::unbounded_channel::<Report>();
        let internal = self.internal_tx.clone();
        let name = step.to_string();
        // forward output lines and reports into the driver's loop, each in order
        let forward = tokio::spawn(async move {
            let mut out_open = true;
            let mut rep_open = true;
            while out_open || rep_open {
                tokio::select! {
                    line = out_rx.recv(), if out_open => match line {
                        Some(line) => { if internal.send(Internal::Output(line)).is_err() { break; } }
                        None => out_open = false,
                    },
                    rep = rep_rx.recv(), if rep_open => match rep {
                        Some(r) => { if internal.send(Internal::Report(name.clone(), r)).is_err() { break; } }
                        None => rep_open = false,
                    },
                }
            }
        });
        let ctx = ExecCtx {
            step: step.to_string(),
            output: out_tx,
            reports: rep_tx,
            cancel,
            run_id: self.env.run_id.clone(),
            redactor: self.env.redactor.clone(),
            conns: self.env.conns.clone(),
            monitors: self.env.monitors.clone(),
            env: self.env.env.clone(),
        };
        (ctx, forward)
    }

    fn spawn_step(&mut self, step: String, attempt: u32, timeout: Option<Duration>) {
        let token = self.root.child_token();
        self.tokens.insert(step.clone(), token.clone());
        let alarm = Arc::new(std::sync::Mutex::new(None::<String>));
        self.alarms.insert(step.clone(), alarm.clone());
        let (ctx, forward) = self.ctx(&step, token.clone());
        let rb = self.runbook.clone();
        let tx = self.internal_tx.clone();
        let watch = self.replication_guard(&step);
        self.tasks.spawn(async move {
            let outcome = match rb.step(&step) {
                None => Outcome::Failed {
                    error: format!("no step `{step}` in the runbook"),
                },
                Some(def) => {
                    let fut = exec::execute(def, &ctx);
                    tokio::pin!(fut);
                    let broke = replication_broke(watch);
                    tokio::pin!(broke);
                    match timeout {
                        None => tokio::select! {
                            o = &mut fut => o,
                            error = &mut broke => {
                                token.cancel();
                                let _ = fut.await;
                                Outcome::Failed { error: ctx.redactor.redact(&error) }
                            }
                        },
                        Some(t) => tokio::select! {
                            o = &mut fut => o,
                            error = &mut broke => {
                                token.cancel();
                                let _ = fut.await;
                                Outcome::Failed { error: ctx.redactor.redact(&error) }
                            }
                            _ = tokio::time::sleep(t) => {
                                token.cancel();
                                let _ = fut.await;
                                Outcome::TimedOut {
                                    after_secs: t.as_secs(),
                                    after_ms: (t.subsec_millis() > 0)
                                        .then(|| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
                                }
                            }
                        },
                    }
                }
            };
            // a monitor's alarm wins over whatever the cancelled step said
            let outcome = match alarm.lock().ok().and_then(|mut a| a.take()) {
                Some(error) => Outcome::Failed { error },
                None => outcome,
            };
            drop(ctx);
            let _ = tokio::time::timeout(Duration::from_secs(2), forward).await;
            let _ = tx.send(Internal::Event(Event::Finished {
                step,
                attempt,
                outcome,
            }));
            let _ = tx.send(Internal::TaskDone);
        });
    }

    fn spawn_rollback(&mut self, step: String) {
        let token = self.root.child_token();
        let (ctx, forward) = self.ctx(&step, token);
        let rb = self.runbook.clone();
        let tx = self.internal_tx.clone();
        self.tasks.spawn(async move {
            let outcome = match rb.step(&step) {
                None => Outcome::Failed {
                    error: format!("no step `{step}`"),
                },
                Some(def) => exec::rollback(def, &ctx).await,
            };
            drop(ctx);
            let _ = tokio::time::timeout(Duration::from_secs(2), forward).await;
            let _ = tx.send(Internal::Event(Event::RollbackFinished { step, outcome }));
        });
    }

    /// Send the snapshot to the front-ends if it changed since the last time. The
    /// clone is shallow where it matters: monitor values and output tails are shared.
    fn publish(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        self.snap.sync(&self.machine);
        self.snapshot_tx.send_replace(Arc::new(self.snap.clone()));
    }
}

/// What a waiting step needs to notice that the run's replication broke.
type Guard = Option<(Arc<crate::monitor::Hub>, crate::monitor::ErrorBaseline)>;

/// Resolves with the reason once a watched subscription faults (disabled, or
/// its errors rose since the step began); never without a guard.
async fn replication_broke(guard: Guard) -> String {
    let Some((hub, base)) = guard else {
        return std::future::pending().await;
    };
    let mut version = hub.subscribe();
    loop {
        if let Some(f) = hub.replication_fault(&base) {
            return f;
        }
        if version.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

impl Driver {
    /// The replicate step `id` and its definition, when it is one.
    fn replicate_step(&self, id: &str) -> Option<&crate::runbook::ReplicateStep> {
        match &self.runbook.step(id)?.kind {
            crate::runbook::StepKind::Replicate(r) => Some(r),
            _ => None,
        }
    }

    fn watch(&self, step: &str, r: &crate::runbook::ReplicateStep) {
        if let Some(h) = &self.monitor_hub {
            h.watch_replication(crate::monitor::WatchSpec {
                name: r.name.clone(),
                step: step.to_string(),
                source: r.from.clone(),
                target: r.to.clone(),
            });
        }
    }

    /// A replication start begins its subscription's watch; a stop that
    /// succeeded, or a start rolled back, ends it.
    fn follow_replication(&mut self, ev: &Event) {
        use crate::runbook::ReplicateAction;
        let (step, ended) = match ev {
            Event::Started { step, .. } => (step, false),
            Event::Finished {
                step,
                outcome: Outcome::Succeeded { .. },
                ..
            }
            | Event::RollbackFinished {
                step,
                outcome: Outcome::Succeeded { .. },
            } => (step, true),
            _ => return,
        };
        let Some(r) = self.replicate_step(step) else {
            return;
        };
        let rolled_back = matches!(ev, Event::RollbackFinished { .. });
        let stop_watch = match r.action {
            ReplicateAction::Start if !ended => {
                self.watch(step, r);
                false
            }
            ReplicateAction::Start => rolled_back,
            ReplicateAction::Stop => ended && !rolled_back,
        };
        if stop_watch {
            if let Some(h) = &self.monitor_hub {
                h.unwatch_replication(&r.name);
            }
        }
    }

    /// A resumed run watches again what its starts began and no stop ended.
    fn rewatch_replication(&mut self) {
        use crate::runbook::ReplicateAction;
        use crate::vocab::StepState as S;
        let steps: Vec<String> = self.runbook.steps().map(|s| s.id.clone()).collect();
        for id in &steps {
            let Some(r) = self.replicate_step(id) else {
                continue;
            };
            let state = self.machine.step(id).map(|s| s.state);
            let begun = matches!(
                state,
                Some(
                    S::Running
                        | S::RetryWait
                        | S::Succeeded
                        | S::Failed
                        | S::Interrupted
                        | S::RollingBack
                )
            );
            let stopped = steps.iter().any(|o| {
                self.replicate_step(o)
                    .is_some_and(|x| x.action == ReplicateAction::Stop && x.name == r.name)
                    && self
                        .machine
                        .step(o)
                        .is_some_and(|s| s.state == S::Succeeded)
            });
            if r.action == ReplicateAction::Start && begun && !stopped {
                self.watch(id, r);
            }
        }
    }

    /// For a `wait` step: the hub and the error counts now, so that a
    /// subscription breaking while it waits fails it.
    fn replication_guard(&self, step: &str) -> Guard {
        let def = self.runbook.step(step)?;
        if !matches!(def.kind, crate::runbook::StepKind::Wait(_)) {
            return None;
        }
        let hub = self.monitor_hub.clone()?;
        let base = hub.replication_baseline();
        Some((hub, base))
    }
}

/// A snapshot for a fresh machine (used before the driver runs, and by resume).
pub fn initial_snapshot(
    rb: &Runbook,
    machine: &Machine,
    journal: &std::path::Path,
    operator: &str,
) -> EngineSnapshot {
    let mut s = EngineSnapshot {
        runbook_name: rb.name.clone(),
        runbook_title: rb.title.clone(),
        journal: journal.to_path_buf(),
        operator: operator.to_string(),
        status: machine.run_status(),
        steps: rb
            .steps()
            .map(|st| StepSnap::new(st, machine.is_rollback_only(&st.id)))
            .collect(),
        window: rb.window.clone(),
        monitors: Default::default(),
        attached: Vec::new(),
        rehearsal: None,
    };
    s.sync(machine);
    s
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
