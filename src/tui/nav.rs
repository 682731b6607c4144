//! Navigation: the runbook pane's rows (phases folded or not), the selection and
//! how it follows the step that needs attention, jumping to a step, focus
//! between panes, and scrolling the output.

use super::app::{App, Pane, Row, Sel};
use ferry_core::engine::snapshot::StepSnap;
use ferry_core::vocab::StepState;

impl App {
    /// The rows of the runbook pane, phases folded or not.
    pub fn rows(&self) -> Vec<Row> {
        let mut out = Vec::with_capacity(self.snap.steps.len() + self.rb.phases.len());
        for (pi, p) in self.rb.phases.iter().enumerate() {
            out.push(Row::Phase(pi));
            if self.folded.contains(&pi) {
                continue;
            }
            for st in &p.steps {
                if let Some(&i) = self.step_index.get(&st.id) {
                    out.push(Row::Step(i));
                }
            }
        }
        out
    }

    pub fn row_selected(&self, r: Row) -> bool {
        match (r, &self.selected) {
            (Row::Phase(p), Sel::Phase(q)) => p == *q,
            (Row::Step(i), Sel::Step(id)) => self.snap.steps.get(i).is_some_and(|s| &s.id == id),
            _ => false,
        }
    }

    pub(crate) fn phase_of(&self, step: &str) -> Option<usize> {
        self.rb
            .phases
            .iter()
            .position(|p| p.steps.iter().any(|s| s.id == step))
    }

    /// The step that needs the operator most: awaiting confirmation, then failed or
    /// interrupted, then running.
    pub fn attention(&self) -> Option<&StepSnap> {
        let by = |f: fn(StepState) -> bool| self.snap.steps.iter().find(|s| f(s.state));
        by(|s| s == StepState::AwaitingConfirmation)
            .or_else(|| by(|s| matches!(s, StepState::Failed | StepState::Interrupted)))
            .or_else(|| by(|s| matches!(s, StepState::Running | StepState::RollingBack)))
    }

    pub(crate) fn follow_attention(&mut self) {
        let Some(id) = self.attention().map(|s| s.id.clone()) else {
            return;
        };
        if self.selected != Sel::Step(id.clone()) {
            self.out_scroll = 0;
        }
        if let Some(p) = self.phase_of(&id) {
            self.folded.remove(&p);
        }
        self.selected = Sel::Step(id);
    }

    /// The panes shown at the current size (see `render::layout`).
    pub fn visible_panes(&self) -> Vec<Pane> {
        let area = ratatui::layout::Rect::new(0, 0, self.size.0, self.size.1);
        let a = super::render::layout(area, false, false, super::render::Configured::of_app(self));
        [
            (a.runbook, Pane::Runbook),
            (a.detail, Pane::Detail),
            (a.lag, Pane::Lag),
            (a.rowcounts, Pane::RowCounts),
            (a.metrics, Pane::Metrics),
        ]
        .into_iter()
        .filter_map(|(r, p)| r.map(|_| p))
        .collect()
    }

    pub(crate) fn jump(&mut self, q: &str) {
        if q.is_empty() {
            return;
        }
        let ids: Vec<&str> = self.snap.steps.iter().map(|s| s.id.as_str()).collect();
        let prefixed: Vec<&&str> = ids.iter().filter(|i| i.starts_with(q)).collect();
        let found = ids
            .iter()
            .find(|i| **i == q)
            .or(if prefixed.len() == 1 {
                prefixed.first().copied()
            } else {
                None
            })
            .or_else(|| ids.iter().find(|i| i.contains(q)))
            .map(|s| s.to_string());
        match found {
            Some(id) => {
                self.follow = false;
                if let Some(p) = self.phase_of(&id) {
                    self.folded.remove(&p);
                }
                self.select(Sel::Step(id));
            }
            None => self.say(format!("no step matches `{q}`"), true),
        }
    }

    pub(crate) fn select(&mut self, s: Sel) {
        if self.selected != s {
            self.out_scroll = 0;
        }
        self.selected = s;
    }

    pub(crate) fn cycle_focus(&mut self, d: isize) {
        let panes = if self.zoom || self.log_view {
            vec![self.focus]
        } else {
            self.visible_panes()
        };
        let i = panes.iter().position(|p| *p == self.focus).unwrap_or(0) as isize;
        let n = panes.len() as isize;
        self.focus = panes[((i + d).rem_euclid(n)) as usize];
    }

    pub(crate) fn scroll_focused(&mut self, d: isize) {
        match self.focus {
            Pane::Runbook if !self.zoom => self.move_selection(d),
            Pane::Runbook | Pane::Detail => self.scroll_output(-d),
            Pane::Lag => self.lag_scroll = (self.lag_scroll as isize + d).max(0) as usize,
            Pane::RowCounts => self.rows_scroll = (self.rows_scroll as isize + d).max(0) as usize,
            Pane::Metrics => {}
        }
    }

    pub(crate) fn scroll_output(&mut self, back: isize) {
        if self.log_view {
            return;
        }
        let len = match &self.selected {
            Sel::Step(id) => self.step_snap(id).map_or(0, |s| s.output.len()),
            Sel::Phase(_) => 0,
        };
        self.out_scroll = (self.out_scroll as isize + back).clamp(0, len as isize) as usize;
    }

    pub(crate) fn move_selection(&mut self, d: isize) {
        let rows = self.rows();
        if rows.is_empty() {
            return;
        }
        let cur = rows.iter().position(|r| self.row_selected(*r)).unwrap_or(0) as isize;
        let next = (cur + d).clamp(0, rows.len() as isize - 1) as usize;
        self.follow = false;
        let sel = self.sel_of(rows[next]);
        self.select(sel);
    }

    pub(crate) fn sel_of(&self, r: Row) -> Sel {
        match r {
            Row::Phase(p) => Sel::Phase(p),
            Row::Step(i) => Sel::Step(
                self.snap
                    .steps
                    .get(i)
                    .map(|s| s.id.clone())
                    .unwrap_or_default(),
            ),
        }
    }

    pub(crate) fn fold_key(&mut self, fold: bool) {
        self.follow = false;
        match self.selected.clone() {
            Sel::Phase(p) => {
                if fold {
                    self.folded.insert(p);
                } else {
                    self.folded.remove(&p);
                }
            }
            Sel::Step(id) => {
                if fold {
                    if let Some(p) = self.phase_of(&id) {
                        self.select(Sel::Phase(p));
                    }
                }
            }
        }
    }

    pub(crate) fn enter(&mut self) {
        match self.selected.clone() {
            Sel::Phase(p) => {
                self.follow = false;
                if !self.folded.remove(&p) {
                    self.folded.insert(p);
                }
            }
            Sel::Step(_) => self.zoom = !self.zoom,
        }
    }
}
