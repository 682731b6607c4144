//! Building the report model: one pass over the journal's records (a fold
//! that keeps each step's state, the confirmations, resumes, results, samples
//! and notes), then the run-wide figures derived from it.

use super::*;
use crate::journal::{Entry, Header, Lenient, Record};
use crate::vocab::{Actor, Decision, Event, Outcome, OutputLine, RunStatus, Stream};
use std::collections::{BTreeMap, BTreeSet};

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
    let mut fold = Fold::new(&plan);
    for r in &j.records {
        fold.record(r);
    }
    fold.finish_steps();
    let Fold {
        steps,
        confirmations,
        interruptions,
        results,
        series,
        notes,
        sessions,
        operators,
        closed,
        connections,
        forecast,
        budget,
        ..
    } = fold;

    let started = j.records.iter().map(|r| r.ts).min();
    let ended = j.records.iter().map(|r| r.ts).max();
    let caught_up = caught_up_proofs(&results);
    let slots_left = slots_left(&results);
    ReportModel {
        caught_up,
        slots_left,
        schema_version: SCHEMA_VERSION,
        generated_by: format!("ferry {}", env!("CARGO_PKG_VERSION")),
        journal: journal_info(path, j),
        runbook: runbook_info(header.as_ref()),
        run: RunInfo {
            started,
            ended,
            duration_secs: match (started, ended) {
                (Some(a), Some(b)) => Some(secs(a, b)),
                _ => None,
            },
            outcome: run_outcome(closed.as_ref(), &steps).into(),
            operators: operators.into_iter().collect(),
            sessions,
            down_secs: interruptions.iter().filter_map(|i| i.down_secs).sum(),
        },
        window: window_info(header.as_ref(), ended),
        points_of_no_return: points_of_no_return(&steps),
        steps,
        confirmations,
        interruptions,
        results,
        series: series.into_values().collect(),
        notes,
        connections,
        forecast,
        budget,
    }
}

/// The journal's records added up one at a time: the steps' states and times,
/// who confirmed what, the resumes, results, samples and notes.
struct Fold {
    steps: Vec<StepReport>,
    /// Where each step id sits in `steps`.
    index: BTreeMap<String, usize>,
    /// The last output lines of each step.
    output: BTreeMap<String, Vec<String>>,
    confirmations: Vec<Confirmation>,
    /// Two-person steps' pending proposals: their evidence, for the approval.
    proposals: std::collections::HashMap<String, Vec<EvidenceItem>>,
    interruptions: Vec<Interruption>,
    results: Vec<StepResult>,
    series: BTreeMap<(String, String), Series>,
    notes: Vec<Note>,
    connections: Vec<ConnectionReport>,
    forecast: Option<ForecastInfo>,
    budget: Vec<BudgetPoint>,
    sessions: Vec<Session>,
    operators: BTreeSet<String>,
    closed: Option<RunStatus>,
    /// The time of the record before the current one.
    last_ts: Option<DateTime<Utc>>,
    /// The interruption a resuming session opened (its `Interrupted` event, if
    /// any, follows it).
    open_resume: Option<usize>,
}

impl Fold {
    fn new(plan: &[StepMeta]) -> Fold {
        let steps: Vec<StepReport> = plan.iter().map(StepReport::planned).collect();
        let index = steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        Fold {
            steps,
            index,
            output: BTreeMap::new(),
            confirmations: Vec::new(),
            proposals: Default::default(),
            interruptions: Vec::new(),
            results: Vec::new(),
            series: BTreeMap::new(),
            notes: Vec::new(),
            connections: Vec::new(),
            forecast: None,
            budget: Vec::new(),
            sessions: Vec::new(),
            operators: BTreeSet::new(),
            closed: None,
            last_ts: None,
            open_resume: None,
        }
    }

    /// The step `id`; one the header does not list (an old journal) is added
    /// as it comes.
    fn step(&mut self, id: &str) -> &mut StepReport {
        let i = match self.index.get(id) {
            Some(i) => *i,
            None => {
                self.steps.push(StepReport::unplanned(id));
                self.index.insert(id.to_string(), self.steps.len() - 1);
                self.steps.len() - 1
            }
        };
        &mut self.steps[i]
    }

    fn record(&mut self, r: &Record) {
        let ts = r.ts;
        let before = self.last_ts.replace(ts);
        // notes (leftover processes stopped) may come between the two
        if matches!(&r.entry, Entry::Event(e) if !matches!(e, Event::Interrupted { .. })) {
            self.open_resume = None;
        }
        match &r.entry {
            Entry::Header(h) => {
                self.operators.insert(h.operator.clone());
            }
            Entry::Session {
                operator,
                host,
                resumed,
                ..
            } => self.session(ts, before, operator, host, *resumed),
            Entry::Event(ev) => self.event(ts, ev),
            Entry::Output(o) => self.output(o),
            Entry::Progress { step, progress } => {
                let units = progress.total.unwrap_or(0).max(progress.done);
                self.step(step).last_progress = Some((units, progress.unit.clone()));
            }
            Entry::Process { .. } => {}
            Entry::Projection {
                step,
                end_median,
                end_p90,
                budget_secs,
            } => self.budget.push(BudgetPoint {
                at: ts,
                step: step.clone(),
                end_median: *end_median,
                end_p90: *end_p90,
                budget_secs: *budget_secs,
            }),
            Entry::Forecast {
                journals, steps, ..
            } => {
                self.forecast = Some(ForecastInfo {
                    at: ts,
                    journals: journals.clone(),
                });
                for (id, t) in steps {
                    if let Some(i) = self.index.get(id) {
                        self.steps[*i].planned = Some(Planned {
                            n: t.n,
                            median_secs: t.median_secs,
                            p90_secs: t.p90_secs,
                        });
                    }
                }
            }
            Entry::Result { step, data } => {
                let kind = self.step(step).kind.clone();
                self.results.push(StepResult {
                    step: step.clone(),
                    kind,
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
                let s = self
                    .series
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
            Entry::Note { step, text } => self.notes.push(Note {
                at: ts,
                step: step.clone(),
                text: text.clone(),
            }),
            Entry::Refused { refusal, asked_by } => self.notes.push(Note {
                at: ts,
                step: None,
                text: Entry::refused_text(refusal, asked_by.as_ref()),
            }),
            Entry::Closed { status } => self.closed = Some(status.clone()),
            Entry::Connection(c) => {
                let seen = self.connections.iter().any(|k| {
                    k.connection == c.connection
                        && k.address == c.at
                        && k.mode == c.mode.as_str()
                        && k.encrypted == c.encrypted
                        && k.verified == c.verified
                });
                if !seen {
                    self.connections.push(ConnectionReport {
                        at: ts,
                        connection: c.connection.clone(),
                        address: c.at.clone(),
                        mode: c.mode.to_string(),
                        encrypted: c.encrypted,
                        verified: c.verified,
                        ca: c.ca.clone(),
                        protocol: c.protocol.clone(),
                        cipher: c.cipher.clone(),
                        warning: c.warning.clone(),
                    });
                }
            }
        }
    }

    /// A process took the journal: a resume opens an interruption that runs
    /// from the last line written before it.
    fn session(
        &mut self,
        ts: DateTime<Utc>,
        before: Option<DateTime<Utc>>,
        operator: &str,
        host: &str,
        resumed: bool,
    ) {
        self.operators.insert(operator.to_string());
        self.sessions.push(Session {
            at: ts,
            operator: operator.to_string(),
            host: host.to_string(),
            resumed,
        });
        if resumed {
            self.interruptions.push(Interruption {
                at: ts,
                steps: Vec::new(),
                resumed_by: Some(operator.to_string()),
                stopped_at: before,
                down_secs: before.map(|b| secs(b, ts).max(0.0)),
            });
            self.open_resume = Some(self.interruptions.len() - 1);
        }
    }

    fn event(&mut self, ts: DateTime<Utc>, ev: &Event) {
        match ev {
            Event::Decided {
                by,
                decision:
                    Decision::Confirm {
                        step,
                        automatic,
                        evidence,
                        ..
                    },
            } => self.confirm(ts, step, by, *automatic, evidence),
            Event::Decided {
                by,
                decision:
                    Decision::Approve {
                        step,
                        evidence_sha256,
                    },
            } => self.second_person(ts, step, by, "approved", evidence_sha256),
            Event::Decided {
                by,
                decision: Decision::Withdraw { step },
            } => {
                let sha = self
                    .proposals
                    .get(step)
                    .map(|e| crate::vocab::evidence_sha256(e))
                    .unwrap_or_default();
                self.second_person(ts, step, by, "withdrawn", &sha)
            }
            Event::Started { step, attempt } => {
                let s = self.step(step);
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
                let s = self.step(step);
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
                self.operators.insert(by.operator.clone());
                let s = self.step(step);
                s.state = "skipped".into();
                s.skip_reason = Some(format!("{reason} ({})", by.operator));
                s.skipped_at = Some(ts);
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
                let s = self.step(step);
                s.rollback_started = Some(ts);
                s.rollback_ended = None;
                s.rollback = Some(format!(
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
                let s = self.step(step);
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
            } => self.notes.push(Note {
                at: ts,
                step: None,
                text: format!("run aborted by {}: {reason}", by.operator),
            }),
            Event::Interrupted { steps } => self.interrupted(ts, steps),
        }
    }

    fn confirm(
        &mut self,
        ts: DateTime<Utc>,
        step: &str,
        by: &Actor,
        automatic: bool,
        evidence: &[EvidenceItem],
    ) {
        let who = if automatic {
            "automatic (--yes)".to_string()
        } else {
            by.who()
        };
        if !automatic {
            self.operators.insert(by.operator.clone());
        }
        let (stale_evidence, stale_acknowledged) = super::stale_of(evidence);
        let s = self.step(step);
        s.confirmed_by = Some(who);
        s.approved_by = None;
        s.stale_evidence = stale_evidence.clone();
        s.stale_acknowledged = stale_acknowledged;
        let two_person = s.confirm == "two-person" && !automatic;
        if two_person {
            self.proposals.insert(step.to_string(), evidence.to_vec());
        }
        self.confirmations.push(Confirmation {
            step: step.to_string(),
            action: if two_person { "proposed" } else { "confirmed" }.into(),
            at: ts,
            operator: by.operator.clone(),
            host: by.host.clone(),
            uid: by.uid,
            login: by.login.clone(),
            automatic,
            evidence: evidence.to_vec(),
            evidence_sha256: crate::vocab::evidence_sha256(evidence),
            stale_evidence,
            stale_acknowledged,
        });
    }

    /// A two-person step's approval or withdrawal of the pending proposal.
    fn second_person(
        &mut self,
        ts: DateTime<Utc>,
        step: &str,
        by: &Actor,
        action: &str,
        evidence_sha256: &str,
    ) {
        self.operators.insert(by.operator.clone());
        let evidence = self.proposals.remove(step).unwrap_or_default();
        // the proposal's evidence, with what its proposer acknowledged
        let (stale_evidence, stale_acknowledged) = super::stale_of(&evidence);
        let s = self.step(step);
        if action == "approved" {
            s.approved_by = Some(by.who());
        } else {
            s.confirmed_by = None;
            s.stale_evidence.clear();
            s.stale_acknowledged = false;
        }
        self.confirmations.push(Confirmation {
            step: step.to_string(),
            action: action.to_string(),
            at: ts,
            operator: by.operator.clone(),
            host: by.host.clone(),
            uid: by.uid,
            login: by.login.clone(),
            automatic: false,
            evidence,
            evidence_sha256: evidence_sha256.to_string(),
            stale_evidence,
            stale_acknowledged,
        });
    }

    /// The steps a resume found running: they count an interruption, which
    /// belongs to the resuming session journaled right before.
    fn interrupted(&mut self, ts: DateTime<Utc>, list: &[String]) {
        for id in list {
            let s = self.step(id);
            s.interrupted += 1;
            s.state = "interrupted".into();
        }
        match self.open_resume.take() {
            Some(k) => self.interruptions[k].steps.extend(list.iter().cloned()),
            None => {
                let resumed_by = self
                    .sessions
                    .last()
                    .filter(|s| s.resumed)
                    .map(|s| s.operator.clone());
                self.interruptions.push(Interruption {
                    at: ts,
                    steps: list.to_vec(),
                    resumed_by,
                    stopped_at: None,
                    down_secs: None,
                });
            }
        }
    }

    /// Keeps the last [`FAILED_OUTPUT_LINES`] lines of each step, marked by stream.
    fn output(&mut self, o: &OutputLine) {
        let buf = self.output.entry(o.step.clone()).or_default();
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

    /// Each step's duration, and the last output of those that failed or were
    /// interrupted.
    fn finish_steps(&mut self) {
        for s in &mut self.steps {
            if let (Some(a), Some(b)) = (s.started, s.ended) {
                s.duration_secs = Some(secs(a, b));
            }
            if matches!(s.state.as_str(), "failed" | "interrupted") {
                s.last_output = self.output.get(&s.id).cloned().unwrap_or_default();
            }
        }
    }
}

/// How the run ended: from the closing line, or unfinished (halted when a step failed).
fn run_outcome(closed: Option<&RunStatus>, steps: &[StepReport]) -> &'static str {
    match closed {
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
    }
}

/// The planned window from the header, and how far the run's end overran it.
fn window_info(header: Option<&Header>, ended: Option<DateTime<Utc>>) -> Option<WindowInfo> {
    let h = header?;
    let start = h.window_start?;
    let secs_planned = h.window_secs?;
    let end = start + chrono::Duration::seconds(secs_planned as i64);
    Some(WindowInfo {
        planned_start: start,
        planned_end: end,
        planned_secs: secs_planned,
        overrun_secs: ended.map(|e| (e - end).num_seconds()),
    })
}

/// The steps marked as points of no return: when they were passed, and by whose word.
fn points_of_no_return(steps: &[StepReport]) -> Vec<PointOfNoReturn> {
    steps
        .iter()
        .filter(|s| s.point_of_no_return)
        .map(|s| PointOfNoReturn {
            step: s.id.clone(),
            passed_at: (s.state == "succeeded").then_some(s.ended).flatten(),
            confirmed_by: s.confirmed_by.clone(),
        })
        .collect()
}

/// The journal's integrity: lines, the chain, a torn last line, the chain's head.
fn journal_info(path: &str, j: &Lenient) -> JournalInfo {
    JournalInfo {
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
    }
}

/// The runbook as the header names it (empty fields without a header).
fn runbook_info(header: Option<&Header>) -> RunbookInfo {
    let field = |f: fn(&Header) -> &String| header.map(|h| f(h).clone()).unwrap_or_default();
    RunbookInfo {
        name: field(|h| &h.runbook_name),
        title: field(|h| &h.runbook_title),
        path: field(|h| &h.runbook_path),
        sha256: field(|h| &h.runbook_sha256),
        ferry_version: field(|h| &h.ferry_version),
    }
}

/// The results of `wait` steps that are caught-up proofs, typed.
fn caught_up_proofs(results: &[StepResult]) -> Vec<super::CaughtUpProof> {
    use crate::results::caught_up::CaughtUpReport;
    results
        .iter()
        .filter(|r| r.kind == "wait")
        .filter_map(|r| {
            let proof = serde_json::from_value::<CaughtUpReport>(r.data.clone()).ok()?;
            (proof.proof == CaughtUpReport::PROOF).then(|| super::CaughtUpProof {
                step: r.step.clone(),
                at: r.at,
                proof,
            })
        })
        .collect()
}

/// Slots whose last teardown left them on the source.
fn slots_left(results: &[StepResult]) -> Vec<super::SlotLeft> {
    use crate::results::replicate::ReplicateReport;
    let mut last: BTreeMap<String, super::SlotLeft> = BTreeMap::new();
    let mut left: BTreeSet<String> = BTreeSet::new();
    for r in results.iter().filter(|r| r.kind == "replicate") {
        let Ok(rep) = serde_json::from_value::<ReplicateReport>(r.data.clone()) else {
            continue;
        };
        let Some(t) = &rep.teardown else { continue };
        if t.slot_left {
            left.insert(rep.name.clone());
            last.insert(
                rep.name.clone(),
                super::SlotLeft {
                    step: r.step.clone(),
                    slot: rep.name.clone(),
                    at: r.at,
                },
            );
        } else {
            left.remove(&rep.name);
        }
    }
    last.into_iter()
        .filter(|(n, _)| left.contains(n))
        .map(|(_, s)| s)
        .collect()
}
