//! Headless lines for the rehearsal figures the console shows on its timeline
//! row: the projection when the run starts and each time a step finishes, a
//! step's time against its rehearsals, a step running past its rehearsed p90,
//! and the rollback budget's warning when it gets close to zero or passes it.

use crate::tui::timeline::{budget_text, line, step_text};
use chrono::{DateTime, Utc};
use ferry_core::engine::snapshot::EngineSnapshot;
use ferry_core::engine::timeline::{project, step_eta, Budget};
use ferry_core::units::screen_duration as dur;
use ferry_core::vocab::StepState;
use std::collections::HashSet;

/// What has been said already, so each line is said once.
#[derive(Debug, Default)]
pub struct Watch {
    started: bool,
    finished: HashSet<String>,
    overrun: HashSet<String>,
    /// 1: the budget's warning was said; 2: that it no longer fits.
    budget_level: u8,
}

impl Watch {
    /// The lines `snap` at `now` calls for (none without rehearsals).
    pub fn observe(&mut self, snap: &EngineSnapshot, now: DateTime<Utc>) -> Vec<String> {
        let Some(r) = snap.rehearsal.as_deref() else {
            return Vec::new();
        };
        let Some(p) = project(snap, now) else {
            return Vec::new();
        };
        let t = now.format("%H:%M:%S");
        let mut out = Vec::new();
        let mut changed = !self.started;
        self.started = true;
        for s in snap.steps.iter().filter(|s| !s.rollback_only) {
            let eta = step_eta(s, r, now);
            let ended = matches!(
                s.state,
                StepState::Succeeded | StepState::Failed | StepState::Skipped
            );
            if ended && self.finished.insert(s.id.clone()) {
                changed = true;
                if let (Some(e), Some((text, _))) = (eta.elapsed_secs, step_text(&eta)) {
                    out.push(format!(
                        "{t} ⏱ {}: took {} · rehearsed {text}",
                        s.id,
                        dur(e.round() as i64)
                    ));
                }
            }
            if s.state == StepState::Running && eta.overrun && self.overrun.insert(s.id.clone()) {
                if let (Some(e), Some(tm)) = (eta.elapsed_secs, eta.timing) {
                    out.push(format!(
                        "{t} ⚠ {}: running {}, past its rehearsed p90 {}",
                        s.id,
                        dur(e.round() as i64),
                        dur(tm.p90_secs.round() as i64)
                    ));
                }
            }
        }
        if changed {
            out.push(format!("{t} ⏱ {}", line(&p)));
        }
        let level = match p.budget {
            Budget::Known { secs, .. } if secs <= 0.0 => 2,
            Budget::Known { warn: true, .. } => 1,
            _ => 0,
        };
        if level > self.budget_level {
            self.budget_level = level;
            out.push(format!("{t} {}", budget_text(&p.budget).0));
        }
        out
    }
}
