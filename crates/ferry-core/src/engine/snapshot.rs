//! The owned picture of a run that every front-end renders: step states, who
//! confirmed what, timings, the last output lines. Built from the machine and
//! from journal entries, so a live run and a replayed journal look the same.

use super::machine::Machine;
use crate::journal::Entry;
use crate::runbook::{ConfirmMode, Step, Window};
use crate::vocab::{Decision, Event, Outcome, RunStatus, StepState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

/// Output lines kept per step for the screen (the journal keeps them all).
pub const OUTPUT_TAIL: usize = 200;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepSnap {
    pub id: String,
    pub phase: String,
    pub title: String,
    pub kind: String,
    pub confirm: ConfirmMode,
    pub point_of_no_return: bool,
    pub rollback_only: bool,
    /// It has a `rollback`: a rollback from after it must undo it.
    #[serde(default)]
    pub has_rollback: bool,
    pub state: StepState,
    pub attempt: u32,
    pub confirmed_by: Option<String>,
    /// A two-person step's approver, as [`crate::vocab::Actor::who`] reads.
    #[serde(default)]
    pub approved_by: Option<String>,
    /// A two-person step's proposal awaiting a second operator's approval.
    #[serde(default)]
    pub proposal: Option<crate::vocab::Proposal>,
    pub automatic: bool,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    /// How the last execution ended, and the last rollback's, typed: a front-end
    /// decides on the variant and shows [`StepSnap::outcome_text`].
    pub outcome: Option<Outcome>,
    pub rollback_outcome: Option<Outcome>,
    pub skip_reason: Option<String>,
    /// Interrupted while its rollback ran: a retry runs the rollback again.
    pub rollback_interrupted: bool,
    /// Shared with the snapshots already published: a new line copies this step's
    /// tail only while an older snapshot still holds it.
    pub output: Arc<VecDeque<String>>,
    /// The latest progress of a long step.
    pub progress: Option<crate::vocab::Progress>,
}

impl StepSnap {
    /// The outcome as people read it: the step's, then its rollback's.
    pub fn outcome_text(&self) -> Option<String> {
        match (&self.outcome, &self.rollback_outcome) {
            (Some(o), Some(r)) => Some(format!("{}; rollback: {}", o.describe(), r.describe())),
            (None, Some(r)) => Some(format!("rollback: {}", r.describe())),
            (o, None) => o.as_ref().map(|o| o.describe()),
        }
    }

    pub fn new(s: &Step, rollback_only: bool) -> Self {
        StepSnap {
            id: s.id.clone(),
            phase: s.phase.clone(),
            title: s.label().to_string(),
            kind: s.kind.name().to_string(),
            confirm: s.confirm,
            point_of_no_return: s.point_of_no_return,
            rollback_only,
            has_rollback: s.rollback.is_some(),
            state: StepState::Pending,
            attempt: 0,
            confirmed_by: None,
            approved_by: None,
            proposal: None,
            automatic: false,
            started: None,
            finished: None,
            outcome: None,
            rollback_outcome: None,
            skip_reason: None,
            rollback_interrupted: false,
            output: Arc::default(),
            progress: None,
        }
    }
}

/// An operator attached to the run from another terminal (`ferry attach`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attendee {
    pub operator: String,
    pub host: String,
    /// The kernel's view: the peer's uid on the socket, and its login name.
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub login: Option<String>,
    /// Attached with `--operate`: may confirm, skip, retry and roll back.
    pub operate: bool,
}

pub use crate::monitor::series::{
    DmsTaskView, LagSeries, MetricSeries, MonitorsSnapshot, RowCount, RowCounts, Sample, Stale,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineSnapshot {
    pub runbook_name: String,
    pub runbook_title: String,
    pub journal: PathBuf,
    pub operator: String,
    pub status: RunStatus,
    pub steps: Vec<StepSnap>,
    pub window: Option<Window>,
    /// Live monitor values (filled by the monitor layer; empty until it runs),
    /// shared: the hub makes a new one only when a value changed.
    pub monitors: Arc<MonitorsSnapshot>,
    /// Operators attached from other terminals, in the order they came.
    #[serde(default)]
    pub attached: Vec<Attendee>,
    /// Timings of earlier runs of this runbook (`rehearsals`), when given: the
    /// front-ends project the run's end and the rollback budget from them
    /// (`engine::timeline`).
    #[serde(default)]
    pub rehearsal: Option<Arc<crate::vocab::rehearsal::Rehearsal>>,
}

impl EngineSnapshot {
    fn step_mut(&mut self, id: &str) -> Option<&mut StepSnap> {
        self.steps.iter_mut().find(|s| s.id == id)
    }

    pub fn step(&self, id: &str) -> Option<&StepSnap> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Copy step states from the machine.
    pub fn sync(&mut self, m: &Machine) {
        for s in &mut self.steps {
            if let Some(st) = m.step(&s.id) {
                s.state = st.state;
                s.attempt = st.attempt;
                s.automatic = st.automatic;
                s.confirmed_by = st.confirmed_by.as_ref().map(|a| a.operator.clone());
                s.approved_by = st.approved_by.as_ref().map(|a| a.who());
                s.proposal = st.proposal.clone();
                s.skip_reason = st.skip_reason.clone();
                s.rollback_interrupted = st.rollback_interrupted;
                s.outcome = st.last_outcome.clone();
                s.rollback_outcome = st.rollback_outcome.clone();
            }
        }
        self.status = m.run_status();
    }

    /// Timings and output from a journal entry written at `ts`.
    pub fn record(&mut self, entry: &Entry, ts: DateTime<Utc>) {
        match entry {
            Entry::Event(Event::Started { step, .. }) => {
                if let Some(s) = self.step_mut(step) {
                    s.started = Some(ts);
                    s.finished = None;
                }
            }
            Entry::Event(Event::Finished { step, .. })
            | Entry::Event(Event::Decided {
                decision: Decision::Skip { step, .. },
                ..
            })
            | Entry::Event(Event::RollbackFinished { step, .. }) => {
                if let Some(s) = self.step_mut(step) {
                    s.finished = Some(ts);
                }
            }
            Entry::Progress { step, progress } => {
                if let Some(s) = self.step_mut(step) {
                    s.progress = Some(progress.clone());
                }
            }
            Entry::Output(line) => {
                if let Some(s) = self.step_mut(&line.step) {
                    let output = Arc::make_mut(&mut s.output);
                    if output.len() >= OUTPUT_TAIL {
                        output.pop_front();
                    }
                    output.push_back(line.line.clone());
                }
            }
            _ => {}
        }
    }

    /// Steps awaiting the operator's confirmation.
    pub fn awaiting(&self) -> Vec<&StepSnap> {
        self.steps
            .iter()
            .filter(|s| s.state == StepState::AwaitingConfirmation)
            .collect()
    }
}
