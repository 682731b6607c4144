//! Headless mode: one human-readable line per journaled event on stdout, and
//! (with `--yes`) the same evidence the console would show journaled with each confirmation;
//! the decisions an operator would take, made by rule: `--yes` confirms every
//! step (journaled as automatic) and retries interrupted steps on resume;
//! without it, a step that needs a person stops the run with a clear message.

use ferry_core::engine::driver::{Command, Handles, Notice};
use ferry_core::engine::redact::Redactor;
use ferry_core::journal::Entry;
use ferry_core::vocab::Stream;
use ferry_core::vocab::{Actor, Decision, Event, Outcome as StepOutcome, RunStatus, StepState};
use std::collections::HashSet;
use tokio::signal::unix::{signal, SignalKind};

mod timeline;

/// Why headless driving ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The engine ended by itself (finished or aborted).
    Done,
    NeedsOperator(String),
    Halted(String),
    Unreachable,
    Interrupted,
    JournalFailed,
}

/// One line for a journal entry, or nothing for entries not worth a line.
pub fn line(ts: chrono::DateTime<chrono::Utc>, entry: &Entry) -> Option<String> {
    let t = ts.format("%H:%M:%S");
    let text = match entry {
        Entry::Header(h) => format!(
            "run of `{}` ({}) by {} on {}",
            h.runbook_name, h.runbook_title, h.operator, h.host
        ),
        Entry::Session {
            operator,
            host,
            resumed,
            ..
        } => {
            if *resumed {
                format!("resumed by {operator} on {host}")
            } else {
                return None;
            }
        }
        Entry::Event(ev) => event_line(ev),
        Entry::Output(o) => {
            let mark = match o.stream {
                Stream::Stdout => "│",
                Stream::Stderr => "┃",
                Stream::Info => "·",
            };
            format!("  {} {mark} {}", o.step, o.line)
        }
        Entry::Progress { step, progress: p } => {
            let pct = p
                .total
                .filter(|t| *t > 0)
                .map(|t| format!(" {:.0}%", p.done as f64 * 100.0 / t as f64))
                .unwrap_or_default();
            let rate = p
                .rate
                .map(|r| format!(" {r:.0} {}/s", p.unit))
                .unwrap_or_default();
            let eta = p
                .eta_secs
                .map(|e| {
                    let basis = p.eta_basis.map(|b| format!(" ({b})")).unwrap_or_default();
                    format!(
                        " ETA {}{basis}",
                        humantime::format_duration(std::time::Duration::from_secs(e))
                    )
                })
                .unwrap_or_default();
            let note = p
                .note
                .as_ref()
                .map(|n| format!(" · {n}"))
                .unwrap_or_default();
            let positions = p
                .catch_up
                .as_ref()
                .map(|c| {
                    format!(
                        " · primary {} applied {}",
                        c.primary_lsn,
                        c.applied_lsn.as_deref().unwrap_or("nothing yet")
                    )
                })
                .unwrap_or_default();
            format!(
                "  {step} ▸ {} {}{pct}{rate}{eta}{note}{positions}",
                p.done, p.unit
            )
        }
        Entry::Result { step, .. } => format!("  {step} = result recorded in the journal"),
        Entry::Sample { .. } | Entry::Process { .. } | Entry::Projection { .. } => return None,
        Entry::Forecast { journals, .. } => {
            format!("  forecast from {} rehearsal journal(s)", journals.len())
        }
        Entry::Connection(c) => format!("  connected: {}", c.summary()),
        Entry::Note { step, text } => match step {
            Some(s) => format!("  {s}: {text}"),
            None => format!("  {text}"),
        },
        Entry::Refused { refusal, asked_by } => {
            format!("  {}", Entry::refused_text(refusal, asked_by.as_ref()))
        }
        Entry::Closed { status } => match status {
            RunStatus::Finished { ok: true } => "run finished: all steps done".to_string(),
            RunStatus::Finished { ok: false } => "run finished with failures".to_string(),
            RunStatus::Aborted => "run aborted".to_string(),
            other => format!("run closed: {other:?}"),
        },
    };
    Some(format!("{t} {text}"))
}

/// The text of an event's line (without its time).
fn event_line(ev: &Event) -> String {
    match ev {
        Event::Decided { by, decision } => decision_line(by, decision),
        Event::Started { step, attempt } => {
            if *attempt > 1 {
                format!("▶ {step}: started (attempt {attempt})")
            } else {
                format!("▶ {step}: started")
            }
        }
        Event::Finished { step, outcome, .. } => match outcome {
            StepOutcome::Succeeded { summary } => format!("✔ {step}: succeeded — {summary}"),
            StepOutcome::Cancelled => format!("! {step}: stopped"),
            other => format!("✘ {step}: failed — {}", other.describe()),
        },
        Event::RetryDue { step } => format!("↻ {step}: retrying now"),
        Event::RollbackFinished { step, outcome } => {
            if outcome.is_success() {
                format!("↩ {step}: rolled back — {}", outcome.describe())
            } else {
                format!("✘ {step}: rollback failed — {}", outcome.describe())
            }
        }
        Event::Interrupted { steps } => {
            format!("! interrupted by the previous crash: {}", steps.join(", "))
        }
    }
}

/// The text of an operator's decision.
fn decision_line(by: &Actor, decision: &Decision) -> String {
    match decision {
        Decision::Confirm {
            step,
            automatic,
            evidence,
            ..
        } => {
            let over = over_stale(evidence);
            if *automatic {
                format!(
                    "✔ {step}: confirmed automatically (--yes) for {}{over}",
                    by.operator
                )
            } else {
                format!("✔ {step}: confirmed by {}{over}", by.at())
            }
        }
        Decision::Skip { step, reason } => {
            format!("⤼ {step}: skipped by {} — {reason}", by.operator)
        }
        Decision::Retry { step } => format!("↻ {step}: retry asked by {}", by.operator),
        Decision::Rollback {
            step,
            override_point_of_no_return,
        } => format!(
            "↶ {step}: rollback asked by {}{}",
            by.operator,
            if *override_point_of_no_return {
                " (overriding the point of no return)"
            } else {
                ""
            }
        ),
        Decision::Abort { reason } => format!("■ run aborted by {}: {reason}", by.operator),
        Decision::Approve {
            step,
            evidence_sha256,
        } => format!(
            "✔ {step}: approved by {} (evidence sha256 {})",
            by.at(),
            ferry_core::vocab::short(evidence_sha256)
        ),
        Decision::Withdraw { step } => format!("✘ {step}: proposal withdrawn by {}", by.at()),
    }
}

/// ` — over stale evidence: a, b` (with `(acknowledged)` when the operator
/// acknowledged every stale item), or nothing when no item was stale.
fn over_stale(evidence: &[ferry_core::vocab::EvidenceItem]) -> String {
    let stale: Vec<&str> = evidence
        .iter()
        .filter(|e| e.stale)
        .map(|e| e.label.as_str())
        .collect();
    if stale.is_empty() {
        return String::new();
    }
    let ack = if evidence.iter().filter(|e| e.stale).all(|e| e.acknowledged) {
        " (acknowledged)"
    } else {
        ""
    };
    format!(" — over stale evidence{ack}: {}", stale.join(", "))
}

/// What headless driving does on the operator's behalf.
#[derive(Debug, Clone, Copy, Default)]
pub struct Acting {
    /// `--yes`: confirm every step (journaled as automatic).
    pub yes: bool,
    /// `--resume --yes`: retry the steps a crash interrupted.
    pub retry_interrupted: bool,
    /// `--wait`: a step that needs a person waits for one (attached with
    /// `ferry attach --operate`) instead of stopping the run.
    pub wait: bool,
}

/// Print events and act for the operator until the engine stops.
pub async fn drive(
    mut h: Handles,
    how: Acting,
    redactor: &Redactor,
    rb: &ferry_core::runbook::Runbook,
) -> Outcome {
    let Acting {
        yes,
        retry_interrupted,
        wait,
    } = how;
    let mut sigterm = signal(SignalKind::terminate()).ok();
    let mut sighup = signal(SignalKind::hangup()).ok();
    let mut result = Outcome::Done;
    let mut stopping = false;
    let mut confirmed: HashSet<String> = HashSet::new();
    let mut retried: HashSet<String> = HashSet::new();
    let mut announced: HashSet<(String, u32)> = HashSet::new();
    // rehearsal figures: said as steps finish, and checked each second for a
    // step running past its p90 or the rollback budget running out
    let mut watch = timeline::Watch::default();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stop = |h: &Handles, stopping: &mut bool| {
        if !*stopping {
            *stopping = true;
            let _ = h.commands.send(Command::Shutdown);
        }
    };
    loop {
        tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c(), if !stopping => {
                result = Outcome::Interrupted;
                stop(&h, &mut stopping);
            }
            _ = async { match sigterm.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending::<()>().await } }, if !stopping => {
                result = Outcome::Interrupted;
                stop(&h, &mut stopping);
            }
            _ = async { match sighup.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending::<()>().await } }, if !stopping => {
                result = Outcome::Interrupted;
                stop(&h, &mut stopping);
            }
            _ = tick.tick(), if !stopping => {
                let snap = h.snapshot.borrow().clone();
                for l in watch.observe(&snap, chrono::Utc::now()) {
                    say!("{l}");
                }
            }
            n = h.notices.recv() => match n {
                Some(Notice::Journaled { ts, entry }) => {
                    if let Some(l) = line(ts, &entry) {
                        say!("{}", redactor.redact(&l));
                    }
                }
                Some(Notice::JournalFailed(e)) => {
                    complain!("error: the journal cannot be written ({e}); stopping so nothing runs unrecorded");
                    result = Outcome::JournalFailed;
                    stop(&h, &mut stopping);
                }
                Some(Notice::Denied(_) | Notice::Detached(_)) => {}
                None => break,
            },
            changed = h.snapshot.changed() => {
                if changed.is_err() {
                    continue;
                }
                if stopping {
                    continue;
                }
                let snap = h.snapshot.borrow_and_update().clone();
                for l in watch.observe(&snap, chrono::Utc::now()) {
                    say!("{l}");
                }
                // a rehearsal acts as soon as it can, whatever else is running, so
                // independent branches really run side by side. A command is sent
                // once per visit of the state (the next snapshots may predate it).
                confirmed.retain(|id| snap.step(id).is_some_and(|s| s.state == StepState::AwaitingConfirmation));
                retried.retain(|id| snap.step(id).is_some_and(|s| s.state == StepState::Interrupted));
                let halted = matches!(snap.status, RunStatus::Halted { .. } | RunStatus::Aborted);
                for s in snap.steps.iter().filter(|_| !halted) {
                    match s.state {
                        StepState::AwaitingConfirmation if yes && confirmed.insert(s.id.clone()) => {
                            let _ = h.commands.send(Command::Decide(Decision::Confirm { step: s.id.clone(), typed: None, automatic: true, evidence: crate::tui::evidence::gather(rb, &snap, chrono::Utc::now()) }));
                        }
                        StepState::Interrupted if retry_interrupted && retried.insert(s.id.clone()) => {
                            let _ = h.commands.send(Command::Decide(Decision::Retry { step: s.id.clone() }));
                        }
                        _ => {}
                    }
                }
                match &snap.status {
                    RunStatus::Waiting { .. } => {
                        let mut needs_person = Vec::new();
                        for s in snap.steps.iter() {
                            match s.state {
                                StepState::AwaitingConfirmation if !yes => {
                                    if announced.insert((s.id.clone(), s.attempt)) {
                                        say!("? {}: awaits confirmation ({})", s.id, s.title);
                                    }
                                    if let Some(p) = &s.proposal {
                                        if announced.insert((format!("proposal:{}:{}", s.id, p.evidence_sha256), s.attempt)) {
                                            say!("? {}: proposed by {} (evidence sha256 {}); awaits a second operator's approval from `ferry attach --operate` as another OS user", s.id, p.by.at(), ferry_core::vocab::short(&p.evidence_sha256));
                                        }
                                    }
                                    needs_person.push(format!("step `{}` needs an operator's confirmation (run it in the console; or headless with --wait, confirmed from `ferry attach --operate`; or --yes for a rehearsal)", s.id));
                                }
                                StepState::Interrupted if !retry_interrupted => {
                                    let what = if s.rollback_interrupted { "'s rollback" } else { "" };
                                    needs_person.push(format!("step `{}`{what} was interrupted; an operator must retry or skip it (with --resume --yes it is retried)", s.id));
                                }
                                StepState::Failed | StepState::RolledBack => {
                                    needs_person.push(format!("step `{}` {}", s.id, s.state.name()));
                                }
                                _ => {}
                            }
                        }
                        let acting = snap.steps.iter().any(|s| {
                            (yes && s.state == StepState::AwaitingConfirmation)
                                || (retry_interrupted && s.state == StepState::Interrupted)
                        });
                        if !needs_person.is_empty() && !acting && !wait {
                            result = Outcome::NeedsOperator(needs_person.join("; "));
                            stop(&h, &mut stopping);
                        }
                    }
                    RunStatus::Halted { step } if wait => {
                        let attempt = snap.step(step).map_or(0, |s| s.attempt);
                        if announced.insert((format!("halted:{step}"), attempt)) {
                            say!("! halted: `{step}` failed; waiting for an operator (ferry attach --operate: r retry · s skip · b roll back)");
                        }
                    }
                    RunStatus::Halted { step } => {
                        let s = snap.step(step);
                        let why = s.and_then(|s| s.outcome_text()).unwrap_or_default();
                        let undone = if s.is_some_and(|s| s.state == StepState::RolledBack) { " (rolled back)" } else { "" };
                        let unreachable = s.is_some_and(|s| matches!(s.outcome, Some(StepOutcome::Unreachable { .. })));
                        result = if unreachable { Outcome::Unreachable } else { Outcome::Halted(format!("step `{step}` failed: {why}{undone}")) };
                        stop(&h, &mut stopping);
                    }
                    _ => {}
                }
            }
        }
    }
    // the engine's last state (the loop can end before its snapshot was read)
    let last = h.snapshot.borrow().clone();
    for l in watch.observe(&last, chrono::Utc::now()) {
        say!("{l}");
    }
    result
}
