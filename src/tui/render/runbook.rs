//! The runbook pane: phases (folded or not) and their steps, each with its state
//! glyph, who confirmed it and how long it took. Rollback-only steps sit in their
//! phase, dimmed, marked with the step they undo. The pane is a
//! [`StatefulWidget`]: the first row shown lives in a [`ListScroll`] the
//! [`App`] owns, and each frame moves it just enough to keep the selection in view.

use super::{fmt, pane_block, two_sided};
use crate::tui::app::{App, Row};
use ferry_core::engine::snapshot::StepSnap;
use ferry_core::runbook::ConfirmMode;
use ferry_core::vocab::StepState;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{StatefulWidget, Widget};

/// Cells of a step row's left part kept readable before its annotation is cut.
const KEEP_LEFT: usize = 18;

/// Where a scrolling list is: the first row shown, kept from one frame to the next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListScroll {
    pub offset: usize,
}

impl ListScroll {
    /// The first row to show of `len` rows in `h` rows of screen, `sel` in view:
    /// the last offset, moved only as far as the selection needs.
    fn follow(&mut self, sel: usize, len: usize, h: usize) -> usize {
        let mut off = self.offset.min(len.saturating_sub(h));
        if sel < off {
            off = sel;
        } else if sel >= off + h {
            off = sel + 1 - h;
        }
        self.offset = off;
        off
    }
}

pub struct RunbookPane<'a> {
    app: &'a App,
    focused: bool,
}

impl<'a> RunbookPane<'a> {
    pub fn new(app: &'a App, focused: bool) -> Self {
        RunbookPane { app, focused }
    }
}

/// The state shown for a phase: the most urgent state among its (normal-flow) steps.
pub fn phase_state(steps: &[&StepSnap]) -> StepState {
    let any = |f: &dyn Fn(StepState) -> bool| steps.iter().any(|s| f(s.state));
    let normal: Vec<&&StepSnap> = steps
        .iter()
        .filter(|s| !s.rollback_only || s.state != StepState::Pending)
        .collect();
    if any(&|s| s == StepState::Failed) {
        StepState::Failed
    } else if any(&|s| s == StepState::Interrupted) {
        StepState::Interrupted
    } else if any(&|s| s == StepState::AwaitingConfirmation) {
        StepState::AwaitingConfirmation
    } else if any(&|s| matches!(s, StepState::Running | StepState::RollingBack)) {
        StepState::Running
    } else if !normal.is_empty() && normal.iter().all(|s| s.state.is_done()) {
        StepState::Succeeded
    } else if any(&|s| s == StepState::RolledBack) {
        StepState::RolledBack
    } else {
        StepState::Pending
    }
}

/// The right-hand annotation of a step row: state words, who confirmed it, how long it took.
pub fn annotation(app: &App, s: &StepSnap) -> Vec<(String, Style)> {
    let t = app.theme;
    let mut out: Vec<(String, Style)> = Vec::new();
    let mut push = |text: String, st: Style| {
        if !out.is_empty() {
            out.push((" ".to_string(), Style::new()));
        }
        out.push((text, st));
    };
    match s.state {
        StepState::AwaitingConfirmation if s.proposal.is_some() => {
            let by = s.proposal.as_ref().map(|p| p.by.operator.as_str());
            push(
                format!("approve? by {}", by.unwrap_or_default()),
                t.awaiting(),
            );
        }
        StepState::AwaitingConfirmation => {
            let extra = if s.point_of_no_return {
                " ⚠ no return"
            } else if s.confirm == ConfirmMode::TwoPerson {
                " · two-person"
            } else {
                ""
            };
            push(format!("awaiting you{extra}"), t.awaiting());
        }
        StepState::Pending | StepState::Ready => {
            if let Some(of) = app.rollback_of.get(&s.id) {
                push(format!("rollback of {}", of.join(", ")), t.dim());
            } else if s.point_of_no_return {
                push("⚠ no return".into(), t.warn());
            } else if s.confirm == ConfirmMode::TwoPerson {
                push("two-person".into(), t.dim());
            }
        }
        StepState::Running => {
            if let Some(p) = &s.progress {
                if let Some(total) = p.total.filter(|t| *t > 0) {
                    push(
                        format!("{:.0}%", p.done as f64 * 100.0 / total as f64),
                        t.active(),
                    );
                }
            }
        }
        StepState::Succeeded => {}
        other => push(other.name().to_string(), t.state(other)),
    }
    if let Some(by) = &s.confirmed_by {
        let who = if s.automatic { "auto" } else { by.as_str() };
        push(who.to_string(), t.bold());
    }
    if let Some(start) = s.started {
        let end = match (s.finished, s.state) {
            (Some(f), _) => Some(f),
            (None, StepState::Running | StepState::RollingBack) => Some(app.now),
            _ => None,
        };
        if let Some(end) = end {
            push(fmt::dur((end - start).num_seconds()), t.dim());
        }
    }
    // beside the live duration: what the rehearsals took, and an overrun mark
    if let Some(r) = app.snap.rehearsal.as_deref() {
        if !s.rollback_only && s.state != StepState::Skipped {
            let eta = ferry_core::engine::timeline::step_eta(s, r, app.now);
            if let Some((text, level)) = crate::tui::timeline::step_text(&eta) {
                push(text, super::timeline::style(t, level));
            }
        }
    }
    out
}

fn row_line(app: &App, r: Row, w: usize) -> Line<'static> {
    let t = app.theme;
    match r {
        Row::Phase(pi) => {
            let Some(p) = app.rb.phases.get(pi) else {
                return Line::default();
            };
            let steps: Vec<&StepSnap> = p
                .steps
                .iter()
                .filter_map(|s| app.step_snap(&s.id))
                .collect();
            let st = phase_state(&steps);
            let counted: Vec<&&StepSnap> = steps.iter().filter(|s| !s.rollback_only).collect();
            let done = counted.iter().filter(|s| s.state.is_done()).count();
            let fold = if app.folded.contains(&pi) {
                "▸"
            } else {
                "▾"
            };
            let mut left = vec![
                (format!("{fold} "), t.dim()),
                (st.glyph().to_string(), t.state(st)),
                (format!(" {}", p.id), t.bold()),
            ];
            if let Some(title) = &p.title {
                left.push((format!("  {title}"), t.dim()));
            }
            let right = vec![(format!("{done}/{}", counted.len()), t.dim())];
            two_sided(left, right, w, 12)
        }
        Row::Step(i) => {
            let Some(s) = app.snap.steps.get(i) else {
                return Line::default();
            };
            let dim_row = s.rollback_only && s.state == StepState::Pending;
            let id_style = if dim_row { t.dim() } else { t.text() };
            let left = vec![
                ("  ".to_string(), Style::new()),
                (s.state.glyph().to_string(), t.state(s.state)),
                (format!(" {}", s.id), id_style),
            ];
            two_sided(left, annotation(app, s), w, KEEP_LEFT)
        }
    }
}

impl StatefulWidget for &RunbookPane<'_> {
    type State = ListScroll;

    fn render(self, area: Rect, buf: &mut Buffer, scroll: &mut ListScroll) {
        let app = self.app;
        let counted: Vec<&StepSnap> = app.snap.steps.iter().filter(|s| !s.rollback_only).collect();
        let done = counted.iter().filter(|s| s.state.is_done()).count();
        let title = format!(" Runbook · {done}/{} done ", counted.len());
        let block = pane_block(title, self.focused, app.theme);
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.height == 0 || inner.width == 0 {
            return;
        }
        let rows = app.rows();
        let h = inner.height as usize;
        let sel = rows.iter().position(|r| app.row_selected(*r)).unwrap_or(0);
        let off = scroll.follow(sel, rows.len(), h);
        let w = inner.width as usize;
        for (n, r) in rows.iter().skip(off).take(h).enumerate() {
            let y = inner.y + n as u16;
            let row = Rect::new(inner.x, y, inner.width, 1);
            let mut line = row_line(app, *r, w);
            if app.row_selected(*r) {
                line = line.patch_style(app.theme.selected());
                buf.set_style(row, app.theme.selected());
            }
            line.render(row, buf);
        }
        if off > 0 {
            buf.set_string(inner.right(), inner.y, "↑", app.theme.dim());
        }
        if off + h < rows.len() {
            buf.set_string(
                inner.right(),
                inner.bottom().saturating_sub(1),
                "↓",
                app.theme.dim(),
            );
        }
    }
}
