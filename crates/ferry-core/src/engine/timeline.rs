//! The night against the window, from the rehearsals in the snapshot: each
//! step's rehearsed median and p90 beside its live duration (and whether it has
//! overrun its p90), the projected end of the run (median and p90), and the
//! rollback budget: window end − now − p90 of the rollback path from here.
//!
//! Pure: the caller passes `now` (no clock, no I/O), so the console, headless
//! mode and the tests compute the same figures from the same snapshot.

use super::snapshot::{EngineSnapshot, StepSnap};
use crate::vocab::rehearsal::{Rehearsal, Timing};
use crate::vocab::StepState;
use chrono::{DateTime, Duration, Utc};

/// A step against its rehearsals.
#[derive(Debug, Clone, PartialEq)]
pub struct StepEta {
    pub timing: Option<Timing>,
    /// Seconds since it started (running) or its whole duration (finished).
    pub elapsed_secs: Option<f64>,
    /// Running (or finished) for longer than its rehearsed p90.
    pub overrun: bool,
}

/// The rollback budget: how long is left, once a rollback from here is paid for.
#[derive(Debug, Clone, PartialEq)]
pub enum Budget {
    /// The runbook plans no window.
    NoWindow,
    /// A point of no return has run: there is no rollback path to pay for.
    PastPointOfNoReturn { step: String },
    /// Steps to undo whose rollback no rehearsal timed.
    Unknown { unrehearsed: Vec<String> },
    Known {
        /// Window end − now − `rollback_p90_secs` (negative: it no longer fits).
        secs: f64,
        /// p90 of the rollback path from the current point.
        rollback_p90_secs: f64,
        /// At or below the warning line ([`warn_secs`]).
        warn: bool,
    },
}

/// Where the run is heading.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// Now + the rehearsed median (p90) of what is left.
    pub end_median: DateTime<Utc>,
    pub end_p90: DateTime<Utc>,
    /// Steps left that no rehearsal timed (counted as zero in the ends).
    pub unrehearsed: Vec<String>,
    pub window_end: Option<DateTime<Utc>>,
    pub budget: Budget,
    /// How many journals the figures come from.
    pub journals: usize,
}

impl Projection {
    /// Seconds the p90 end leaves before the window closes (negative: past it).
    pub fn p90_slack_secs(&self) -> Option<f64> {
        self.window_end.map(|w| secs(w - self.end_p90))
    }
    pub fn median_slack_secs(&self) -> Option<f64> {
        self.window_end.map(|w| secs(w - self.end_median))
    }
}

fn secs(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn after(t: DateTime<Utc>, s: f64) -> DateTime<Utc> {
    t + Duration::milliseconds((s.max(0.0) * 1000.0) as i64)
}

/// The budget warns at 20% of the window, and never later than 15 minutes before
/// it reaches zero: enough to decide and start a rollback.
pub fn warn_secs(window_secs: f64) -> f64 {
    (window_secs * 0.2).min(15.0 * 60.0)
}

/// One step against its rehearsals, at `now`.
pub fn step_eta(s: &StepSnap, r: &Rehearsal, now: DateTime<Utc>) -> StepEta {
    let timing = r.steps.get(&s.id).copied();
    let elapsed_secs = s.started.map(|st| secs(s.finished.unwrap_or(now) - st));
    let measured = matches!(s.state, StepState::Running | StepState::Succeeded);
    StepEta {
        timing,
        elapsed_secs,
        overrun: measured && matches!((timing, elapsed_secs), (Some(t), Some(e)) if e > t.p90_secs),
    }
}

/// Steps of the normal flow still ahead (or running, or to be retried).
fn still_ahead(s: &StepSnap) -> bool {
    !s.rollback_only
        && matches!(
            s.state,
            StepState::Pending
                | StepState::Ready
                | StepState::AwaitingConfirmation
                | StepState::Running
                | StepState::RetryWait
                | StepState::Interrupted
                | StepState::Failed
        )
}

/// Steps a rollback from here would undo: those that ran (or run) and have one.
fn to_undo(s: &StepSnap) -> bool {
    s.has_rollback
        && !s.rollback_only
        && matches!(
            s.state,
            StepState::Succeeded
                | StepState::Running
                | StepState::RetryWait
                | StepState::Interrupted
                | StepState::Failed
        )
}

/// The projection at `now`, or `None` when the run has no rehearsals.
pub fn project(snap: &EngineSnapshot, now: DateTime<Utc>) -> Option<Projection> {
    let r = snap.rehearsal.as_deref()?;
    let (mut median, mut p90) = (0.0, 0.0);
    let mut unrehearsed = Vec::new();
    for s in snap.steps.iter().filter(|s| still_ahead(s)) {
        let Some(t) = r.steps.get(&s.id) else {
            unrehearsed.push(s.id.clone());
            continue;
        };
        let done = match (s.state, s.started) {
            (StepState::Running, Some(st)) => secs(now - st),
            _ => 0.0,
        };
        median += (t.median_secs - done).max(0.0);
        p90 += (t.p90_secs - done).max(0.0);
    }
    let window_end = snap
        .window
        .as_ref()
        .map(|w| w.start + Duration::from_std(w.duration).unwrap_or_default());
    Some(Projection {
        end_median: after(now, median),
        end_p90: after(now, p90),
        unrehearsed,
        window_end,
        budget: budget(snap, r, now, window_end),
        journals: r.journals,
    })
}

fn budget(
    snap: &EngineSnapshot,
    r: &Rehearsal,
    now: DateTime<Utc>,
    window_end: Option<DateTime<Utc>>,
) -> Budget {
    let (Some(end), Some(w)) = (window_end, snap.window.as_ref()) else {
        return Budget::NoWindow;
    };
    if let Some(p) = snap.steps.iter().find(|s| {
        s.point_of_no_return && matches!(s.state, StepState::Succeeded | StepState::Running)
    }) {
        return Budget::PastPointOfNoReturn { step: p.id.clone() };
    }
    let mut path = 0.0;
    let mut unrehearsed = Vec::new();
    for s in snap.steps.iter().filter(|s| to_undo(s)) {
        match r.rollbacks.get(&s.id) {
            Some(t) => path += t.p90_secs,
            None => unrehearsed.push(s.id.clone()),
        }
    }
    if !unrehearsed.is_empty() {
        return Budget::Unknown { unrehearsed };
    }
    let left = secs(end - now) - path;
    Budget::Known {
        secs: left,
        rollback_p90_secs: path,
        warn: left <= warn_secs(w.duration.as_secs_f64()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::Window;
    use std::sync::Arc;

    fn step(id: &str, state: StepState, rollback: bool, ponr: bool) -> StepSnap {
        let rb = crate::runbook::load_str(
            "t.toml",
            &format!(
                "[runbook]\nname = \"t\"\nformat = 1\n[[phase]]\nid = \"p\"\n[[phase.step]]\nid = \"{id}\"\nkind = \"shell\"\nrun = \"true\"\n{}{}",
                if rollback { "rollback = { run = \"true\" }\n" } else { "" },
                if ponr { "point_of_no_return = true\n" } else { "" }
            ),
            std::path::Path::new("t.toml"),
        )
        .unwrap_or_else(|e| panic!("{}", e.render()));
        let mut s = StepSnap::new(rb.steps().next().unwrap(), false);
        s.state = state;
        s
    }

    fn t(median: f64, p90: f64) -> Timing {
        Timing {
            n: 5,
            median_secs: median,
            p90_secs: p90,
        }
    }

    #[test]
    fn ends_budget_and_overrun_follow_the_steps() {
        let t0: DateTime<Utc> = "2026-11-22T02:00:00Z".parse().unwrap();
        let mut done = step("freeze", StepState::Succeeded, true, false);
        done.started = Some(t0);
        done.finished = Some(after(t0, 30.0));
        let mut copy = step("copy", StepState::Running, true, false);
        copy.started = Some(after(t0, 30.0));
        let promote = step("promote", StepState::Pending, false, true);
        let rehearsal = Rehearsal {
            journals: 5,
            steps: [
                ("freeze".to_string(), t(20.0, 25.0)),
                ("copy".to_string(), t(600.0, 900.0)),
                ("promote".to_string(), t(60.0, 120.0)),
            ]
            .into_iter()
            .collect(),
            rollbacks: [
                ("freeze".to_string(), t(10.0, 15.0)),
                ("copy".to_string(), t(100.0, 200.0)),
            ]
            .into_iter()
            .collect(),
            total: None,
            ..Default::default()
        };
        let snap = |steps: Vec<StepSnap>| EngineSnapshot {
            runbook_name: "t".into(),
            runbook_title: "t".into(),
            journal: "j".into(),
            operator: "o".into(),
            status: crate::vocab::RunStatus::Active,
            steps,
            window: Some(Window {
                start: t0,
                duration: std::time::Duration::from_secs(3600),
            }),
            monitors: Default::default(),
            attached: Vec::new(),
            rehearsal: Some(Arc::new(rehearsal.clone())),
        };
        // 130 s into the run, 100 s into copy
        let now = after(t0, 130.0);
        let s = snap(vec![done.clone(), copy.clone(), promote.clone()]);
        let p = project(&s, now).unwrap();
        assert_eq!(p.end_median, after(now, 500.0 + 60.0));
        assert_eq!(p.end_p90, after(now, 800.0 + 120.0));
        // 3600 - 130 - (15 + 200)
        assert_eq!(
            p.budget,
            Budget::Known {
                secs: 3255.0,
                rollback_p90_secs: 215.0,
                warn: false
            }
        );
        assert!(!step_eta(&copy, &rehearsal, now).overrun);
        assert!(step_eta(&copy, &rehearsal, after(t0, 931.0)).overrun);
        // copy eats the window: at 3000 s the budget is 385 s, under 20% of the hour: a warning
        let late = after(t0, 3000.0);
        let p = project(&s, late).unwrap();
        assert!(
            matches!(p.budget, Budget::Known { secs, warn: true, .. } if (secs - 385.0).abs() < 1e-9),
            "{:?}",
            p.budget
        );
        // an overrunning step adds nothing more than now to the ends
        assert_eq!(p.end_p90, after(late, 120.0));
        // a rollback nobody rehearsed makes the budget unknown
        let mut r2 = rehearsal.clone();
        r2.rollbacks.remove("copy");
        let mut s2 = s.clone();
        s2.rehearsal = Some(Arc::new(r2));
        assert_eq!(
            project(&s2, now).unwrap().budget,
            Budget::Unknown {
                unrehearsed: vec!["copy".into()]
            }
        );
        // past the point of no return
        let mut ran = promote.clone();
        ran.state = StepState::Succeeded;
        let s3 = snap(vec![done, copy, ran]);
        assert_eq!(
            project(&s3, now).unwrap().budget,
            Budget::PastPointOfNoReturn {
                step: "promote".into()
            }
        );
    }
}
