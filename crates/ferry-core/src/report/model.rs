//! The report model: everything the review meeting asks, derived from the
//! journal alone (no runbook, no database). Serialises as the JSON report
//! (`assets/report.schema.json`, `schema_version` 1).

use crate::journal::{Entry, Lenient, StepMeta};
use crate::vocab::{Decision, Event, EvidenceItem, Outcome, RunStatus, Stream};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

pub const SCHEMA_VERSION: u32 = 1;
/// Output lines kept for each failed step.
pub const FAILED_OUTPUT_LINES: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct ReportModel {
    pub schema_version: u32,
    pub generated_by: String,
    pub journal: JournalInfo,
    pub runbook: RunbookInfo,
    pub run: RunInfo,
    pub window: Option<WindowInfo>,
    pub steps: Vec<StepReport>,
    pub confirmations: Vec<Confirmation>,
    pub points_of_no_return: Vec<PointOfNoReturn>,
    pub interruptions: Vec<Interruption>,
    pub results: Vec<StepResult>,
    pub series: Vec<Series>,
    pub notes: Vec<Note>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JournalInfo {
    pub path: String,
    pub lines: usize,
    /// True when every line verified and chained.
    pub chain_ok: bool,
    /// The first line that failed verification, and why.
    pub broken_line: Option<usize>,
    pub problem: Option<String>,
    /// A last line cut short by a crash (dropped).
    pub torn_line: Option<usize>,
    /// The hash of the last verified line: the chain's head. Kept outside the
    /// journal (in the change ticket), it makes a later edit, a cut-off end or a
    /// re-chained forgery detectable, which the chain alone cannot.
    pub head: Option<String>,
    /// Its line number.
    pub head_line: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunbookInfo {
    pub name: String,
    pub title: String,
    pub path: String,
    pub sha256: String,
    pub ferry_version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub at: DateTime<Utc>,
    pub operator: String,
    pub host: String,
    pub resumed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub started: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
    pub duration_secs: Option<f64>,
    /// succeeded, failed, aborted, or unfinished (the journal was not closed).
    pub outcome: String,
    pub operators: Vec<String>,
    pub sessions: Vec<Session>,
    /// Seconds no ferry process was running: from each crash (the last line
    /// the dead process wrote) to its resume. Part of `duration_secs`.
    pub down_secs: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowInfo {
    pub planned_start: DateTime<Utc>,
    pub planned_end: DateTime<Utc>,
    pub planned_secs: u64,
    /// Seconds the run ended after the window closed (negative: before).
    pub overrun_secs: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub id: String,
    pub phase: String,
    pub title: String,
    pub kind: String,
    pub confirm: String,
    pub point_of_no_return: bool,
    pub rollback_only: bool,
    /// not run, running, succeeded, failed, skipped, interrupted, rolled back
    pub state: String,
    pub started: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
    pub duration_secs: Option<f64>,
    /// Who confirmed it; "automatic (--yes)" for a rehearsal's confirmation, "none
    /// needed" for a step with `confirm = "none"`.
    pub confirmed_by: Option<String>,
    pub attempts: u32,
    pub skip_reason: Option<String>,
    pub skipped_at: Option<DateTime<Utc>>,
    pub rollback: Option<String>,
    /// When a rollback was asked, and when it ended (done or failed).
    pub rollback_started: Option<DateTime<Utc>>,
    pub rollback_ended: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub interrupted: u32,
    /// The last output lines of a failed step.
    pub last_output: Vec<String>,
}

impl StepReport {
    /// A step the header's plan does not list (an old journal): known only by its id.
    fn unplanned(id: &str) -> StepReport {
        StepReport {
            id: id.to_string(),
            phase: String::new(),
            title: id.to_string(),
            kind: String::new(),
            confirm: String::new(),
            point_of_no_return: false,
            rollback_only: false,
            state: "not run".into(),
            started: None,
            ended: None,
            duration_secs: None,
            confirmed_by: None,
            attempts: 0,
            skip_reason: None,
            skipped_at: None,
            rollback: None,
            rollback_started: None,
            rollback_ended: None,
            outcome: None,
            interrupted: 0,
            last_output: Vec::new(),
        }
    }

    fn planned(m: &StepMeta) -> StepReport {
        StepReport {
            phase: m.phase.clone(),
            title: m.title.clone(),
            kind: m.kind.clone(),
            confirm: format!("{:?}", m.confirm)
                .to_lowercase()
                .replace("twoperson", "two-person"),
            point_of_no_return: m.point_of_no_return,
            rollback_only: m.rollback_only,
            ..StepReport::unplanned(&m.id)
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Confirmation {
    pub step: String,
    pub at: DateTime<Utc>,
    pub operator: String,
    pub host: String,
    pub automatic: bool,
    pub evidence: Vec<EvidenceItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PointOfNoReturn {
    pub step: String,
    /// When it succeeded, if it did.
    pub passed_at: Option<DateTime<Utc>>,
    pub confirmed_by: Option<String>,
}

/// A resume: the process before it stopped (crash, kill, closed console)
/// and a later one took the journal up again.
#[derive(Debug, Clone, Serialize)]
pub struct Interruption {
    /// When the run was resumed.
    pub at: DateTime<Utc>,
    /// The steps that were running when it stopped (they come back interrupted).
    pub steps: Vec<String>,
    pub resumed_by: Option<String>,
    /// The last line the stopped process wrote: it ran at least until then.
    pub stopped_at: Option<DateTime<Utc>>,
    /// Seconds from `stopped_at` to the resume: no ferry was running.
    pub down_secs: Option<f64>,
}

/// A step's structured result (copy, verify, rds), as journaled.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub step: String,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub monitor: String,
    /// "lag" (seconds), "lag_bytes" (bytes behind) or "metric".
    pub series: String,
    pub unit: Option<String>,
    pub warn: Option<f64>,
    pub max: Option<f64>,
    pub points: Vec<(DateTime<Utc>, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Note {
    pub at: DateTime<Utc>,
    pub step: Option<String>,
    pub text: String,
}

fn secs(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_microseconds().unwrap_or(0) as f64 / 1e6
}

/// Build the model. `path` is how the journal is named in the report.
pub fn build(path: &str, j: &Lenient) -> ReportModel {
    let header = j.records.iter().find_map(|r| match &r.entry {
        Entry::Header(h) => Some(h.clone()),
        _ => None,
    });
    let plan: Vec<StepMeta> = header.as_ref().map(|h| h.plan.clone()).unwrap_or_default();
    let mut steps: Vec<StepReport> = plan.iter().map(StepReport::planned).collect();
    let mut index: BTreeMap<String, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.clone(), i))
        .collect();
    let mut output: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut confirmations = Vec::new();
    let mut interruptions: Vec<Interruption> = Vec::new();
    let mut results = Vec::new();
    let mut series: BTreeMap<(String, String), Series> = BTreeMap::new();
    let mut notes = Vec::new();
    let mut sessions = Vec::new();
    let mut operators = BTreeSet::new();
    let mut closed: Option<RunStatus> = None;
    // the time of the record before the current one, and the interruption a
    // resuming session opened (its `Interrupted` event, if any, follows it)
    let mut last_ts: Option<DateTime<Utc>> = None;
    let mut open_resume: Option<usize> = None;

    let mut step_mut = |id: &str, steps: &mut Vec<StepReport>| -> usize {
        if let Some(i) = index.get(id) {
            return *i;
        }
        // a step the header does not list (an old journal): add it as it comes
        steps.push(StepReport::unplanned(id));
        index.insert(id.to_string(), steps.len() - 1);
        steps.len() - 1
    };

    for r in &j.records {
        let ts = r.ts;
        let before = last_ts.replace(ts);
        // notes (leftover processes stopped) may come between the two
        if matches!(&r.entry, Entry::Event(e) if !matches!(e, Event::Interrupted { .. })) {
            open_resume = None;
        }
        match &r.entry {
            Entry::Header(h) => {
                operators.insert(h.operator.clone());
            }
            Entry::Session {
                operator,
                host,
                resumed,
                ..
            } => {
                operators.insert(operator.clone());
                sessions.push(Session {
                    at: ts,
                    operator: operator.clone(),
                    host: host.clone(),
                    resumed: *resumed,
                });
                if *resumed {
                    interruptions.push(Interruption {
                        at: ts,
                        steps: Vec::new(),
                        resumed_by: Some(operator.clone()),
                        stopped_at: before,
                        down_secs: before.map(|b| secs(b, ts).max(0.0)),
                    });
                    open_resume = Some(interruptions.len() - 1);
                }
            }
            Entry::Event(ev) => match ev {
                Event::Decided {
                    by,
                    decision:
                        Decision::Confirm {
                            step,
                            automatic,
                            evidence,
                            ..
                        },
                } => {
                    let i = step_mut(step, &mut steps);
                    let who = if *automatic {
                        "automatic (--yes)".to_string()
                    } else {
                        by.operator.clone()
                    };
                    if !automatic {
                        operators.insert(by.operator.clone());
                    }
                    steps[i].confirmed_by = Some(who);
                    confirmations.push(Confirmation {
                        step: step.clone(),
                        at: ts,
                        operator: by.operator.clone(),
                        host: by.host.clone(),
                        automatic: *automatic,
                        evidence: evidence.clone(),
                    });
                }
                Event::Started { step, attempt } => {
                    let i = step_mut(step, &mut steps);
                    let s = &mut steps[i];
                    if s.started.is_none() {
                        s.started = Some(ts);
                    }
                    s.attempts = s.attempts.max(*attempt);
                    s.state = "running".into();
                    if s.confirmed_by.is_none() {
                        s.confirmed_by = Some("none needed".into());
                    }
                }
                Event::Finished { step, outcome, .. } => {
                    let i = step_mut(step, &mut steps);
                    let s = &mut steps[i];
                    s.ended = Some(ts);
                    s.state = match outcome {
                        Outcome::Succeeded { .. } => "succeeded",
                        Outcome::Cancelled => "interrupted",
                        _ => "failed",
                    }
                    .into();
                    if matches!(outcome, Outcome::Cancelled) {
                        s.interrupted += 1;
                    }
                    s.outcome = Some(outcome.describe());
                }
                Event::Decided {
                    by,
                    decision: Decision::Skip { step, reason },
                } => {
                    let i = step_mut(step, &mut steps);
                    operators.insert(by.operator.clone());
                    steps[i].state = "skipped".into();
                    steps[i].skip_reason = Some(format!("{reason} ({})", by.operator));
                    steps[i].skipped_at = Some(ts);
                }
                Event::Decided {
                    decision: Decision::Retry { .. },
                    ..
                }
                | Event::RetryDue { .. } => {}
                Event::Decided {
                    by,
                    decision:
                        Decision::Rollback {
                            step,
                            override_point_of_no_return,
                        },
                } => {
                    let i = step_mut(step, &mut steps);
                    steps[i].rollback_started = Some(ts);
                    steps[i].rollback_ended = None;
                    steps[i].rollback = Some(format!(
                        "asked by {} at {}{}",
                        by.operator,
                        ts.format("%H:%M:%S"),
                        if *override_point_of_no_return {
                            ", overriding the point of no return"
                        } else {
                            ""
                        }
                    ));
                }
                Event::RollbackFinished { step, outcome } => {
                    let i = step_mut(step, &mut steps);
                    let s = &mut steps[i];
                    s.rollback_ended = Some(ts);
                    if outcome.is_success() {
                        s.state = "rolled back".into();
                    }
                    s.rollback = Some(format!(
                        "{}{}",
                        s.rollback
                            .clone()
                            .map(|r| format!("{r}; "))
                            .unwrap_or_default(),
                        if outcome.is_success() {
                            format!("rolled back at {}", ts.format("%H:%M:%S"))
                        } else {
                            format!("rollback failed: {}", outcome.describe())
                        }
                    ));
                }
                Event::Decided {
                    by,
                    decision: Decision::Abort { reason },
                } => notes.push(Note {
                    at: ts,
                    step: None,
                    text: format!("run aborted by {}: {reason}", by.operator),
                }),
                Event::Interrupted { steps: list } => {
                    for id in list {
                        let i = step_mut(id, &mut steps);
                        steps[i].interrupted += 1;
                        steps[i].state = "interrupted".into();
                    }
                    // journaled right after the resuming session's line
                    match open_resume.take() {
                        Some(k) => interruptions[k].steps.extend(list.iter().cloned()),
                        None => {
                            let resumed_by = sessions
                                .last()
                                .filter(|s| s.resumed)
                                .map(|s| s.operator.clone());
                            interruptions.push(Interruption {
                                at: ts,
                                steps: list.clone(),
                                resumed_by,
                                stopped_at: None,
                                down_secs: None,
                            });
                        }
                    }
                }
            },
            Entry::Output(o) => {
                let buf = output.entry(o.step.clone()).or_default();
                let mark = match o.stream {
                    Stream::Stderr => "! ",
                    Stream::Info => "· ",
                    Stream::Stdout => "",
                };
                buf.push(format!("{mark}{}", o.line));
                if buf.len() > FAILED_OUTPUT_LINES {
                    buf.remove(0);
                }
            }
            Entry::Progress { .. } | Entry::Process { .. } => {}
            Entry::Result { step, data } => {
                let i = step_mut(step, &mut steps);
                results.push(StepResult {
                    step: step.clone(),
                    kind: steps[i].kind.clone(),
                    at: ts,
                    data: data.clone(),
                });
            }
            Entry::Sample {
                monitor,
                series: kind,
                value,
                unit,
                warn,
                max,
            } => {
                let s = series
                    .entry((monitor.clone(), kind.clone()))
                    .or_insert_with(|| Series {
                        monitor: monitor.clone(),
                        series: kind.clone(),
                        unit: unit.clone(),
                        warn: *warn,
                        max: *max,
                        points: Vec::new(),
                    });
                s.points.push((ts, *value));
            }
            Entry::Note { step, text } => notes.push(Note {
                at: ts,
                step: step.clone(),
                text: text.clone(),
            }),
            Entry::Refused { refusal, asked_by } => notes.push(Note {
                at: ts,
                step: None,
                text: Entry::refused_text(refusal, asked_by.as_ref()),
            }),
            Entry::Closed { status } => closed = Some(status.clone()),
        }
    }

    // interrupted spans: a session that was running steps and then a resume
    for s in &mut steps {
        if let (Some(a), Some(b)) = (s.started, s.ended) {
            s.duration_secs = Some(secs(a, b));
        }
        if matches!(s.state.as_str(), "failed" | "interrupted") {
            s.last_output = output.get(&s.id).cloned().unwrap_or_default();
        }
    }
    let started = j.records.iter().map(|r| r.ts).min();
    let ended = j.records.iter().map(|r| r.ts).max();
    let outcome = match &closed {
        Some(RunStatus::Finished { ok: true }) => "succeeded",
        Some(RunStatus::Finished { ok: false }) => "failed",
        Some(RunStatus::Aborted) => "aborted",
        _ => {
            if steps.iter().any(|s| s.state == "failed") {
                "halted (unfinished)"
            } else {
                "unfinished"
            }
        }
    };
    let window = header.as_ref().and_then(|h| {
        let start = h.window_start?;
        let secs_planned = h.window_secs?;
        let end = start + chrono::Duration::seconds(secs_planned as i64);
        Some(WindowInfo {
            planned_start: start,
            planned_end: end,
            planned_secs: secs_planned,
            overrun_secs: ended.map(|e| (e - end).num_seconds()),
        })
    });
    let points_of_no_return = steps
        .iter()
        .filter(|s| s.point_of_no_return)
        .map(|s| PointOfNoReturn {
            step: s.id.clone(),
            passed_at: (s.state == "succeeded").then_some(s.ended).flatten(),
            confirmed_by: s.confirmed_by.clone(),
        })
        .collect();

    ReportModel {
        schema_version: SCHEMA_VERSION,
        generated_by: format!("ferry {}", env!("CARGO_PKG_VERSION")),
        journal: JournalInfo {
            path: path.to_string(),
            lines: j.lines,
            chain_ok: j.broken.is_none(),
            broken_line: j.broken.as_ref().map(|b| b.0),
            problem: j.broken.as_ref().map(|b| b.1.clone()),
            torn_line: j.torn,
            head: j
                .verified_records
                .checked_sub(1)
                .and_then(|i| j.records.get(i))
                .map(|r| r.hash.clone()),
            head_line: j.verified_line,
        },
        runbook: RunbookInfo {
            name: header
                .as_ref()
                .map(|h| h.runbook_name.clone())
                .unwrap_or_default(),
            title: header
                .as_ref()
                .map(|h| h.runbook_title.clone())
                .unwrap_or_default(),
            path: header
                .as_ref()
                .map(|h| h.runbook_path.clone())
                .unwrap_or_default(),
            sha256: header
                .as_ref()
                .map(|h| h.runbook_sha256.clone())
                .unwrap_or_default(),
            ferry_version: header
                .as_ref()
                .map(|h| h.ferry_version.clone())
                .unwrap_or_default(),
        },
        run: RunInfo {
            started,
            ended,
            duration_secs: match (started, ended) {
                (Some(a), Some(b)) => Some(secs(a, b)),
                _ => None,
            },
            outcome: outcome.into(),
            operators: operators.into_iter().collect(),
            sessions,
            down_secs: interruptions.iter().filter_map(|i| i.down_secs).sum(),
        },
        window,
        steps,
        confirmations,
        points_of_no_return,
        interruptions,
        results,
        series: series.into_values().collect(),
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testkit::{at, bob, ev, session};

    #[test]
    fn skips_rollbacks_and_stops_carry_their_times() {
        let ok = Outcome::Succeeded {
            summary: "ok".into(),
        };
        let m = crate::report::testkit::model(vec![
            (0, session(false)),
            (
                1,
                ev(Event::Decided {
                    by: bob(),
                    decision: Decision::Skip {
                        step: "a".into(),
                        reason: "not needed".into(),
                    },
                }),
            ),
            (
                2,
                ev(Event::Started {
                    step: "b".into(),
                    attempt: 1,
                }),
            ),
            (
                3,
                ev(Event::Finished {
                    step: "b".into(),
                    attempt: 1,
                    outcome: ok.clone(),
                }),
            ),
            (
                4,
                ev(Event::Started {
                    step: "c".into(),
                    attempt: 1,
                }),
            ),
            // the process dies here; a resume 60 s later, with a note between
            (70, session(true)),
            (
                70,
                Entry::Note {
                    step: None,
                    text: "stopped leftovers".into(),
                },
            ),
            (
                70,
                ev(Event::Interrupted {
                    steps: vec!["c".into()],
                }),
            ),
            (
                80,
                ev(Event::Decided {
                    by: bob(),
                    decision: Decision::Rollback {
                        step: "b".into(),
                        override_point_of_no_return: false,
                    },
                }),
            ),
            (
                82,
                ev(Event::RollbackFinished {
                    step: "b".into(),
                    outcome: ok,
                }),
            ),
            // the console closed while nothing ran, and was opened again
            (100, session(true)),
        ]);
        let a = &m.steps[0];
        assert_eq!((a.id.as_str(), a.skipped_at), ("a", Some(at(1))));
        let b = &m.steps[1];
        assert_eq!(b.state, "rolled back");
        assert_eq!(
            (b.rollback_started, b.rollback_ended),
            (Some(at(80)), Some(at(82)))
        );
        assert_eq!(
            b.rollback.as_deref(),
            Some(format!(
                "asked by bob at {}; rolled back at {}",
                at(80).format("%H:%M:%S"),
                at(82).format("%H:%M:%S")
            ))
            .as_deref()
        );
        assert_eq!(m.interruptions.len(), 2, "{:?}", m.interruptions);
        let i = &m.interruptions[0];
        assert_eq!(i.steps, ["c"]);
        assert_eq!(
            (i.at, i.stopped_at, i.down_secs),
            (at(70), Some(at(4)), Some(66.0))
        );
        let i = &m.interruptions[1];
        assert!(i.steps.is_empty(), "nothing was running: {i:?}");
        assert_eq!(i.down_secs, Some(18.0));
        assert_eq!(m.run.down_secs, 84.0);
    }
}
