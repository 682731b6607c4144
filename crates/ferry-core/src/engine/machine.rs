//! The pure state machine at ferry's heart: `Machine::handle(&Event) -> Vec<Effect>`.
//! No IO, no async, no clock: time arrives as events (`RetryDue`, `Finished`
//! with `TimedOut`), and every front-end reads the same state.

use super::effect::Effect;
use crate::runbook::{ConfirmMode, OnFailure, Rollback, Runbook};
use crate::vocab::{
    evidence_sha256, Actor, Decision, Event, EvidenceItem, Outcome, Proposal, Refusal, RunStatus,
    StepState, TypedReason,
};
use std::collections::HashMap;
use std::time::Duration;

/// Longest automatic retry backoff, whatever the runbook's base backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
struct Def {
    id: String,
    deps: Vec<usize>,
    /// The runbook named the dependencies: a failed one blocks this step even with
    /// `on_failure = "continue"` (which lets only the default "next step" go on).
    explicit_deps: bool,
    confirm: ConfirmMode,
    ponr: bool,
    retries: u32,
    backoff: Duration,
    on_failure: OnFailure,
    timeout: Option<Duration>,
    /// `rollback = { run | sql }` exists
    rollback_action: bool,
    /// `rollback = [ids]`
    rollback_steps: Vec<usize>,
    rollback_only: bool,
    /// A `replicate` step: its name, and whether it starts (true) or stops.
    replication: Option<(String, bool)>,
}

/// What the machine knows of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStatus {
    pub state: StepState,
    pub attempt: u32,
    /// Who confirmed it (for a two-person step: who proposed it).
    pub confirmed_by: Option<Actor>,
    /// A two-person step's second operator, who approved the proposal.
    pub approved_by: Option<Actor>,
    /// A two-person step's proposal awaiting approval.
    pub proposal: Option<Proposal>,
    pub automatic: bool,
    pub last_outcome: Option<Outcome>,
    /// How the step's own shell or sql rollback ended, when it ran.
    pub rollback_outcome: Option<Outcome>,
    pub skip_reason: Option<String>,
    /// For rollback-only steps: whether a rollback asked for them.
    pub activated: bool,
    /// The journal holds `Started` for the current attempt: the step really began.
    /// Until then a `Running` step is only promised to the driver (replay relies on it).
    pub started: bool,
    /// `Interrupted` while its shell or sql rollback ran: a retry runs the
    /// rollback again, not the step.
    pub rollback_interrupted: bool,
}

pub struct Machine {
    defs: Vec<Def>,
    status: Vec<StepStatus>,
    index: HashMap<String, usize>,
    halted_on: Option<usize>,
    aborted: bool,
    /// Steps rolling back through a list of rollback steps: (step, remaining list).
    rollback_queues: Vec<(usize, Vec<usize>)>,
}

/// The wait before automatic retry `attempt`: the step's `backoff`, doubling, capped.
fn backoff(base: Duration, attempt: u32) -> Duration {
    crate::backoff::capped(base, attempt, MAX_BACKOFF)
}

impl Machine {
    pub fn new(rb: &Runbook) -> Self {
        let steps: Vec<_> = rb.steps().collect();
        let index: HashMap<String, usize> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        let rollback_only = rb.rollback_only();
        let defs = steps
            .iter()
            .map(|s| Def {
                id: s.id.clone(),
                deps: s
                    .depends_on
                    .iter()
                    .filter_map(|d| index.get(d).copied())
                    .collect(),
                explicit_deps: s.depends_on_explicit,
                confirm: s.confirm,
                ponr: s.point_of_no_return,
                retries: s.retries.max,
                backoff: s.retries.backoff,
                on_failure: s.on_failure,
                timeout: s.timeout,
                // a replication start without a rollback of its own undoes itself
                rollback_action: matches!(
                    s.rollback,
                    Some(Rollback::Shell { .. }) | Some(Rollback::Sql { .. })
                ) || (s.rollback.is_none() && s.kind.undoes_itself()),
                rollback_steps: match &s.rollback {
                    Some(Rollback::Steps(ids)) => {
                        ids.iter().filter_map(|d| index.get(d).copied()).collect()
                    }
                    _ => Vec::new(),
                },
                rollback_only: rollback_only.contains_key(s.id.as_str()),
                replication: match &s.kind {
                    crate::runbook::StepKind::Replicate(r) => Some((
                        r.name.clone(),
                        r.action == crate::runbook::ReplicateAction::Start,
                    )),
                    _ => None,
                },
            })
            .collect::<Vec<_>>();
        let status = defs
            .iter()
            .map(|_| StepStatus {
                state: StepState::Pending,
                attempt: 0,
                confirmed_by: None,
                approved_by: None,
                proposal: None,
                automatic: false,
                last_outcome: None,
                rollback_outcome: None,
                skip_reason: None,
                activated: false,
                started: false,
                rollback_interrupted: false,
            })
            .collect();
        Machine {
            defs,
            status,
            index,
            halted_on: None,
            aborted: false,
            rollback_queues: Vec::new(),
        }
    }

    /// Promote the first steps. Call once after `new` (and after a replay: steps
    /// the replay promoted to running but that never started are executed now).
    pub fn start(&mut self) -> Vec<Effect> {
        let mut fx = Vec::new();
        for i in 0..self.defs.len() {
            let s = &self.status[i];
            if s.state == StepState::Running && !s.started && !self.aborted {
                fx.push(Effect::Execute {
                    step: self.defs[i].id.clone(),
                    attempt: s.attempt,
                    timeout: self.defs[i].timeout,
                });
            }
        }
        self.advance(&mut fx);
        self.settle(&mut fx);
        fx
    }

    pub fn step(&self, id: &str) -> Option<&StepStatus> {
        self.index.get(id).map(|i| &self.status[*i])
    }

    pub fn state(&self, id: &str) -> Option<StepState> {
        self.step(id).map(|s| s.state)
    }

    pub fn steps(&self) -> impl Iterator<Item = (&str, &StepStatus)> {
        self.defs
            .iter()
            .map(|d| d.id.as_str())
            .zip(self.status.iter())
    }

    pub fn is_rollback_only(&self, id: &str) -> bool {
        self.index
            .get(id)
            .is_some_and(|i| self.defs[*i].rollback_only)
    }

    /// Steps that were running (for resume: they become `interrupted`): steps
    /// that started, waited for a retry, or ran their shell or sql rollback. A
    /// step without confirmation that the replay promoted but that never
    /// started is not among them: [`Machine::start`] simply runs it.
    pub fn running(&self) -> Vec<String> {
        self.defs
            .iter()
            .zip(&self.status)
            .filter(|(d, s)| match s.state {
                StepState::Running => {
                    s.started || !(d.confirm == ConfirmMode::None && s.attempt == 1)
                }
                StepState::RetryWait => true,
                StepState::RollingBack => d.rollback_action,
                _ => false,
            })
            .map(|(d, _)| d.id.clone())
            .collect()
    }

    pub fn handle(&mut self, ev: &Event) -> Vec<Effect> {
        let mut fx = Vec::new();
        match ev {
            Event::Decided { by, decision } => self.on_decision(by, decision, &mut fx),
            Event::Started { step, attempt } => {
                // A fact: the step began. Live, the machine already says so; on a
                // replay against an edited runbook (--accept-changes) it may not
                // have let the step run, and must still learn that it did.
                if let Some(i) = self.idx(step) {
                    let s = &mut self.status[i];
                    s.state = StepState::Running;
                    s.attempt = *attempt;
                    s.started = true;
                    s.rollback_interrupted = false;
                }
            }
            Event::Finished {
                step,
                attempt,
                outcome,
            } => self.on_finished(step, *attempt, outcome, &mut fx),
            Event::RetryDue { step } => {
                if let Some(i) = self.idx(step) {
                    if self.status[i].state == StepState::RetryWait && !self.aborted {
                        self.execute(i, &mut fx);
                    }
                }
            }
            Event::RollbackFinished { step, outcome } => {
                if let Some(i) = self.idx(step) {
                    if self.status[i].state == StepState::RollingBack {
                        if outcome.is_success() {
                            self.status[i].state = StepState::RolledBack;
                        } else if matches!(outcome, Outcome::Cancelled) {
                            // stopped (shutdown): like a crash, an operator decides
                            self.status[i].state = StepState::Interrupted;
                            self.status[i].rollback_interrupted = true;
                        } else {
                            self.status[i].state = StepState::Failed;
                            self.halted_on = Some(i);
                        }
                        // the step's own outcome stays: "failed: X", not the undo's "exit 0"
                        self.status[i].rollback_outcome = Some(outcome.clone());
                    }
                }
            }
            Event::Interrupted { steps } => {
                for s in steps {
                    if let Some(i) = self.idx(s) {
                        let st = &mut self.status[i];
                        st.rollback_interrupted = st.state == StepState::RollingBack;
                        st.state = StepState::Interrupted;
                    }
                }
            }
        }
        self.advance(&mut fx);
        self.settle(&mut fx);
        fx
    }

    fn idx(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    fn on_decision(&mut self, by: &Actor, decision: &Decision, fx: &mut Vec<Effect>) {
        match decision {
            Decision::Confirm {
                step,
                automatic,
                typed,
                evidence,
            } => self.on_confirm(step, by, *automatic, typed.as_deref(), evidence, fx),
            Decision::Approve {
                step,
                evidence_sha256,
            } => self.on_approve(step, by, evidence_sha256, fx),
            Decision::Withdraw { step } => self.on_withdraw(step, by, fx),
            Decision::Skip { step, reason } => self.on_skip(step, reason, fx),
            Decision::Retry { step } => self.on_retry(step, fx),
            Decision::Rollback {
                step,
                override_point_of_no_return,
            } => self.on_rollback(step, *override_point_of_no_return, fx),
            Decision::Abort { .. } => {
                self.aborted = true;
                for (i, s) in self.status.iter_mut().enumerate() {
                    match s.state {
                        StepState::Running => fx.push(Effect::Cancel {
                            step: self.defs[i].id.clone(),
                        }),
                        StepState::RetryWait => s.state = StepState::Interrupted,
                        _ => {}
                    }
                }
                self.abort_replication(fx);
            }
        }
    }

    /// An abort drops what replication left running: every `replicate` start
    /// that ran (succeeded, failed or interrupted) and has no succeeded stop of
    /// the same name is rolled back, so no slot keeps holding WAL. A start still
    /// running drops its own when it is cancelled.
    fn abort_replication(&mut self, fx: &mut Vec<Effect>) {
        let stopped: Vec<&str> = self
            .defs
            .iter()
            .zip(&self.status)
            .filter_map(|(d, s)| match &d.replication {
                Some((name, false)) if s.state == StepState::Succeeded => Some(name.as_str()),
                _ => None,
            })
            .collect();
        let undo: Vec<usize> = (0..self.defs.len())
            .filter(|&i| {
                let d = &self.defs[i];
                matches!(&d.replication, Some((name, true)) if !stopped.contains(&name.as_str()))
                    && d.rollback_action
                    && matches!(
                        self.status[i].state,
                        StepState::Succeeded | StepState::Failed | StepState::Interrupted
                    )
            })
            .collect();
        for i in undo {
            self.start_rollback(i, fx);
        }
    }

    fn reject(fx: &mut Vec<Effect>, refusal: Refusal) {
        fx.push(Effect::Rejected(refusal));
    }

    fn execute(&mut self, i: usize, fx: &mut Vec<Effect>) {
        let s = &mut self.status[i];
        s.state = StepState::Running;
        s.attempt += 1;
        s.started = false;
        s.rollback_interrupted = false;
        fx.push(Effect::Execute {
            step: self.defs[i].id.clone(),
            attempt: s.attempt,
            timeout: self.defs[i].timeout,
        });
    }

    fn on_confirm(
        &mut self,
        step: &str,
        by: &Actor,
        automatic: bool,
        typed: Option<&str>,
        evidence: &[EvidenceItem],
        fx: &mut Vec<Effect>,
    ) {
        let Some(i) = self.idx(step) else {
            return Self::reject(fx, Refusal::NoSuchStep { step: step.into() });
        };
        if self.aborted {
            return Self::reject(fx, Refusal::RunAborted);
        }
        let state = self.status[i].state;
        if state != StepState::AwaitingConfirmation {
            return Self::reject(
                fx,
                Refusal::NotAwaitingConfirmation {
                    step: step.into(),
                    state,
                },
            );
        }
        let d = &self.defs[i];
        if let Some(h) = self.halted_on {
            // "nothing else starts until the operator acts": a rehearsal's automatic
            // confirmation does not start an independent step (an undo step may go)
            if automatic && !(d.rollback_only && self.status[i].activated) {
                return Self::reject(
                    fx,
                    Refusal::HaltedNoAutomatic {
                        step: step.into(),
                        halted_at: self.defs[h].id.clone(),
                    },
                );
            }
        }
        let needs_typed = d.confirm == ConfirmMode::TwoPerson || d.ponr;
        if needs_typed && !automatic && typed != Some(step) {
            return Self::reject(
                fx,
                Refusal::TypeTheId {
                    step: step.into(),
                    why: if d.ponr {
                        TypedReason::PointOfNoReturn
                    } else {
                        TypedReason::TwoPerson
                    },
                },
            );
        }
        let unacknowledged: Vec<String> = evidence
            .iter()
            .filter(|e| e.stale && !e.acknowledged)
            .map(|e| e.label.clone())
            .collect();
        if !automatic && !unacknowledged.is_empty() {
            return Self::reject(
                fx,
                Refusal::StaleEvidence {
                    step: step.into(),
                    items: unacknowledged,
                },
            );
        }
        if d.confirm == ConfirmMode::TwoPerson && !automatic {
            // the first person only proposes; a second one approves
            if let Some(p) = &self.status[i].proposal {
                return Self::reject(
                    fx,
                    Refusal::AlreadyProposed {
                        step: step.into(),
                        proposer: p.by.who(),
                    },
                );
            }
            self.status[i].proposal = Some(Proposal {
                by: by.clone(),
                evidence: evidence.to_vec(),
                evidence_sha256: evidence_sha256(evidence),
            });
            return;
        }
        self.status[i].confirmed_by = Some(by.clone());
        self.status[i].approved_by = None;
        self.status[i].automatic = automatic;
        self.execute(i, fx);
    }

    /// The pending proposal of step `step` awaiting confirmation, or the refusal.
    fn proposal_of(&self, step: &str) -> Result<(usize, &Proposal), Refusal> {
        let i = self
            .idx(step)
            .ok_or_else(|| Refusal::NoSuchStep { step: step.into() })?;
        if self.aborted {
            return Err(Refusal::RunAborted);
        }
        let state = self.status[i].state;
        if state != StepState::AwaitingConfirmation {
            return Err(Refusal::NotAwaitingConfirmation {
                step: step.into(),
                state,
            });
        }
        match &self.status[i].proposal {
            Some(p) => Ok((i, p)),
            None => Err(Refusal::NothingProposed { step: step.into() }),
        }
    }

    /// The two-person rule: a different uid than the proposer's, who saw the
    /// proposal's evidence, lets the step run.
    fn on_approve(&mut self, step: &str, by: &Actor, seen: &str, fx: &mut Vec<Effect>) {
        let (i, p) = match self.proposal_of(step) {
            Ok(x) => x,
            Err(r) => return Self::reject(fx, r),
        };
        if p.by.same_person(by) {
            let refusal = Refusal::SamePerson {
                step: step.into(),
                proposer: p.by.operator.clone(),
                uid: p.by.uid,
            };
            return Self::reject(fx, refusal);
        }
        if p.evidence_sha256 != seen {
            let refusal = Refusal::EvidenceDiffers {
                step: step.into(),
                proposed: p.evidence_sha256.clone(),
                seen: seen.into(),
            };
            return Self::reject(fx, refusal);
        }
        let s = &mut self.status[i];
        if let Some(p) = s.proposal.take() {
            s.confirmed_by = Some(p.by);
        }
        s.approved_by = Some(by.clone());
        s.automatic = false;
        self.execute(i, fx);
    }

    fn on_withdraw(&mut self, step: &str, by: &Actor, fx: &mut Vec<Effect>) {
        let (i, p) = match self.proposal_of(step) {
            Ok(x) => x,
            Err(r) => return Self::reject(fx, r),
        };
        if !p.by.same_person(by) {
            let refusal = Refusal::NotTheProposer {
                step: step.into(),
                proposer: p.by.who(),
            };
            return Self::reject(fx, refusal);
        }
        self.status[i].proposal = None;
    }

    fn on_skip(&mut self, step: &str, reason: &str, fx: &mut Vec<Effect>) {
        let Some(i) = self.idx(step) else {
            return Self::reject(fx, Refusal::NoSuchStep { step: step.into() });
        };
        if reason.trim().is_empty() {
            return Self::reject(fx, Refusal::SkipNeedsReason { step: step.into() });
        }
        match self.status[i].state {
            StepState::Pending
            | StepState::Ready
            | StepState::AwaitingConfirmation
            | StepState::Failed
            | StepState::Interrupted
            | StepState::RetryWait
            | StepState::RolledBack => {
                self.status[i].state = StepState::Skipped;
                self.status[i].proposal = None;
                self.status[i].rollback_interrupted = false;
                self.status[i].skip_reason = Some(reason.to_string());
                if self.halted_on == Some(i) {
                    self.halted_on = None;
                }
            }
            state => Self::reject(
                fx,
                Refusal::CannotSkip {
                    step: step.into(),
                    state,
                },
            ),
        }
    }

    fn on_retry(&mut self, step: &str, fx: &mut Vec<Effect>) {
        let Some(i) = self.idx(step) else {
            return Self::reject(fx, Refusal::NoSuchStep { step: step.into() });
        };
        if self.aborted {
            return Self::reject(fx, Refusal::RunAborted);
        }
        match self.status[i].state {
            StepState::Failed
            | StepState::Interrupted
            | StepState::RolledBack
            | StepState::RetryWait => {
                if self.status[i].rollback_interrupted {
                    // what was interrupted is the rollback: run it again (a halt it
                    // caused stays until it is done)
                    return self.start_rollback(i, fx);
                }
                if self.halted_on == Some(i) {
                    self.halted_on = None;
                }
                self.execute(i, fx);
            }
            state => Self::reject(
                fx,
                Refusal::CannotRetry {
                    step: step.into(),
                    state,
                },
            ),
        }
    }

    /// The point of no return that has passed, if any, which makes rolling back `i` dangerous.
    fn passed_point_of_no_return(&self, i: usize) -> Option<usize> {
        (0..self.defs.len())
            .find(|&p| self.defs[p].ponr && self.status[p].state == StepState::Succeeded && p >= i)
    }

    fn on_rollback(&mut self, step: &str, override_ponr: bool, fx: &mut Vec<Effect>) {
        let Some(i) = self.idx(step) else {
            return Self::reject(fx, Refusal::NoSuchStep { step: step.into() });
        };
        let d = &self.defs[i];
        if !d.rollback_action && d.rollback_steps.is_empty() {
            return Self::reject(fx, Refusal::NoRollback { step: step.into() });
        }
        match self.status[i].state {
            StepState::Succeeded | StepState::Failed | StepState::Interrupted => {}
            state => {
                return Self::reject(
                    fx,
                    Refusal::CannotRollBack {
                        step: step.into(),
                        state,
                    },
                )
            }
        }
        if let Some(p) = self.passed_point_of_no_return(i) {
            if !override_ponr {
                return Self::reject(
                    fx,
                    Refusal::PastPointOfNoReturn {
                        step: step.into(),
                        point: self.defs[p].id.clone(),
                    },
                );
            }
        }
        self.start_rollback(i, fx);
    }

    fn start_rollback(&mut self, i: usize, fx: &mut Vec<Effect>) {
        self.status[i].state = StepState::RollingBack;
        self.status[i].rollback_interrupted = false;
        self.status[i].rollback_outcome = None;
        if self.defs[i].rollback_action {
            fx.push(Effect::RunRollback {
                step: self.defs[i].id.clone(),
            });
        } else {
            let list = self.defs[i].rollback_steps.clone();
            for &r in &list {
                let s = &mut self.status[r];
                s.activated = true;
                if s.state.is_terminal() || s.state == StepState::Interrupted {
                    // a second rollback runs the undo steps again
                    s.state = StepState::Pending;
                }
            }
            self.rollback_queues.push((i, list));
        }
    }

    fn on_finished(&mut self, step: &str, attempt: u32, outcome: &Outcome, fx: &mut Vec<Effect>) {
        let Some(i) = self.idx(step) else { return };
        let st = &mut self.status[i];
        if st.state != StepState::Running || st.attempt != attempt {
            return; // stale report of an older attempt
        }
        st.last_outcome = Some(outcome.clone());
        if outcome.is_success() {
            st.state = StepState::Succeeded;
            return;
        }
        if matches!(outcome, Outcome::Cancelled) {
            st.state = StepState::Interrupted;
            return;
        }
        let d = self.defs[i].clone();
        if attempt <= d.retries && !self.aborted {
            st.state = StepState::RetryWait;
            fx.push(Effect::ScheduleRetry {
                step: d.id.clone(),
                after: backoff(d.backoff, attempt),
            });
            return;
        }
        st.state = StepState::Failed;
        match d.on_failure {
            OnFailure::Halt => self.halted_on = Some(i),
            OnFailure::Continue => {}
            OnFailure::Rollback => {
                let has_rollback = d.rollback_action || !d.rollback_steps.is_empty();
                match self.passed_point_of_no_return(i) {
                    // automatic is not "explicit": past a point of no return only an
                    // operator's rollback with the override may undo an earlier step
                    Some(p) if has_rollback => {
                        Self::reject(
                            fx,
                            Refusal::NoAutomaticRollbackPastPointOfNoReturn {
                                step: d.id.clone(),
                                point: self.defs[p].id.clone(),
                            },
                        );
                    }
                    _ if has_rollback => self.start_rollback(i, fx),
                    _ => {}
                }
                self.halted_on = Some(i);
            }
        }
    }

    fn deps_done(&self, i: usize) -> bool {
        self.defs[i].deps.iter().all(|&d| {
            let s = self.status[d].state;
            s.is_done()
                || (s == StepState::Failed
                    && self.defs[d].on_failure == OnFailure::Continue
                    && !self.defs[i].explicit_deps)
        })
    }

    /// Move pending steps forward where their dependencies allow it.
    fn advance(&mut self, fx: &mut Vec<Effect>) {
        if self.aborted {
            return;
        }
        // rollback lists: one undo step at a time, in the listed order
        let mut finished_queues = Vec::new();
        for (qi, (owner, list)) in self.rollback_queues.iter().enumerate() {
            match list.iter().find(|&&r| !self.status[r].state.is_done()) {
                None => finished_queues.push((qi, *owner, true)),
                Some(&r) => {
                    if self.status[r].state == StepState::Failed {
                        finished_queues.push((qi, *owner, false));
                    }
                }
            }
        }
        for (qi, owner, ok) in finished_queues.into_iter().rev() {
            self.rollback_queues.remove(qi);
            self.status[owner].state = if ok {
                StepState::RolledBack
            } else {
                StepState::Failed
            };
            if !ok {
                self.halted_on = Some(owner);
            }
        }
        let heads: Vec<usize> = self
            .rollback_queues
            .iter()
            .filter_map(|(_, list)| {
                list.iter()
                    .copied()
                    .find(|&r| !self.status[r].state.is_done())
            })
            .collect();
        for r in heads {
            if self.status[r].state == StepState::Pending {
                self.promote(r, fx);
            }
        }
        if self.halted_on.is_some() {
            return;
        }
        for i in 0..self.defs.len() {
            if self.defs[i].rollback_only || self.status[i].state != StepState::Pending {
                continue;
            }
            if self.deps_done(i) {
                self.promote(i, fx);
            }
        }
    }

    fn promote(&mut self, i: usize, fx: &mut Vec<Effect>) {
        if self.defs[i].confirm == ConfirmMode::None {
            self.status[i].automatic = true;
            self.execute(i, fx);
        } else {
            self.status[i].state = StepState::AwaitingConfirmation;
            self.status[i].proposal = None;
        }
    }

    pub fn run_status(&self) -> RunStatus {
        let busy = self.defs.iter().zip(&self.status).any(|(d, s)| {
            matches!(s.state, StepState::Running | StepState::RetryWait)
                || (s.state == StepState::RollingBack && d.rollback_action)
        });
        if busy {
            return RunStatus::Active;
        }
        if self.aborted {
            return RunStatus::Aborted;
        }
        if let Some(h) = self.halted_on {
            // an interrupted rollback, or the undo steps of a rollback list, still
            // need the operator before the halt stands
            let mut undo: Vec<String> = self
                .rollback_queues
                .iter()
                .filter_map(|(_, list)| {
                    list.iter()
                        .copied()
                        .find(|&r| !self.status[r].state.is_done())
                })
                .filter(|&r| {
                    matches!(
                        self.status[r].state,
                        StepState::AwaitingConfirmation | StepState::Interrupted
                    )
                })
                .map(|r| self.defs[r].id.clone())
                .collect();
            if self.status[h].rollback_interrupted {
                undo.push(self.defs[h].id.clone());
            }
            if !undo.is_empty() {
                return RunStatus::Waiting { steps: undo };
            }
            return RunStatus::Halted {
                step: self.defs[h].id.clone(),
            };
        }
        let waiting: Vec<String> = self
            .defs
            .iter()
            .zip(&self.status)
            .filter(|(_, s)| {
                matches!(
                    s.state,
                    StepState::AwaitingConfirmation | StepState::Interrupted
                )
            })
            .map(|(d, _)| d.id.clone())
            .collect();
        if !waiting.is_empty() {
            return RunStatus::Waiting { steps: waiting };
        }
        let all_done = self
            .defs
            .iter()
            .zip(&self.status)
            .filter(|(d, s)| !d.rollback_only || s.activated)
            .all(|(_, s)| s.state.is_terminal());
        if all_done {
            let ok = self
                .defs
                .iter()
                .zip(&self.status)
                .filter(|(d, s)| !d.rollback_only || s.activated)
                .all(|(_, s)| s.state.is_done());
            return RunStatus::Finished { ok };
        }
        // pending steps behind a rolled-back or failed step
        let blocked: Vec<String> = self
            .defs
            .iter()
            .zip(&self.status)
            .filter(|(_, s)| {
                matches!(
                    s.state,
                    StepState::RolledBack | StepState::Failed | StepState::RollingBack
                )
            })
            .map(|(d, _)| d.id.clone())
            .collect();
        RunStatus::Waiting { steps: blocked }
    }

    fn settle(&self, fx: &mut Vec<Effect>) {
        let st = self.run_status();
        if st != RunStatus::Active {
            fx.push(Effect::Settled(st));
        }
    }
}

#[cfg(test)]
#[path = "machine_testkit.rs"]
mod testkit;

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "machine_replay_tests.rs"]
mod replay_tests;

#[cfg(test)]
#[path = "machine_two_person_tests.rs"]
mod two_person_tests;
