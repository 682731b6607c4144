//! The view: the screen layout and one widget per pane. Each frame renders
//! from the app's owned snapshot; the only thing drawing writes is the scroll
//! state of the lists, which the [`App`] owns and [`draw`] passes in.
//!
//! ```text
//! Full (≥140×40)                         Medium (≥100×28): no metrics row
//! ┌ Runbook ───────┐┌ Step detail ──────────────────────────┐
//! │ ▾ ✔ precheck   ││ copy · Copy tables          running    │
//! │   ✔ snapshot…  ││ $ what it runs                          │
//! │ ▾ ▶ cutover    ││ ████████░░░░ 62%  1.2M rows/s ETA 00:41 │
//! │   ▶ copy       ││ output …                                │
//! │   ? verify     │├ Replication lag ──┐┌ Row counts ────────┤
//! │   · promote    ││ replica 1.4s ▁▂▁  ││ users 120 120 0    │
//! │                │├ Metrics ──────────┴┴────────────────────┤
//! │                ││ ⣀⣠⣤⣶⣿ Braille charts with axes           │
//! └────────────────┘└────────────────────────────────────────┘
//!  timeline row (with rehearsals): projected end vs the window, rollback budget
//!  message row: run state, refusals, the `/` prompt
//!  status bar: UTC clock · window · operator · journal · key hints
//! ```
//! Compact (80×24 and anything below Medium): runbook over a lag strip, detail over
//! the row counts (each only when the runbook has that monitor), the two bottom rows.
//! `l` replaces the panes with the journal log; Enter on a step gives the detail
//! the whole width. Dialogs and help are drawn last, centred over everything.

mod detail;
mod dialog;
mod dms;
mod help;
mod lag;
mod log;
mod metrics;
mod replication;
mod rowcounts;
mod runbook;
mod status;
mod timeline;

pub use detail::DetailPane;
pub use dms::DmsPane;
pub use lag::LagPane;
pub use log::LogPane;
pub use metrics::MetricsPane;
pub use replication::ReplicationPane;
pub use rowcounts::RowCountsPane;
pub use runbook::{ListScroll, RunbookPane};
pub use status::{MessageRow, StatusBar};
pub use timeline::TimelineRow;

use super::app::{App, Pane};
use super::fmt;
use super::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, StatefulWidget, Widget};
use ratatui::Frame;

/// How much of the screen there is room for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Compact,
    Medium,
    Full,
}

impl Tier {
    pub fn of(w: u16, h: u16) -> Tier {
        if w >= 140 && h >= 40 {
            Tier::Full
        } else if w >= 100 && h >= 28 {
            Tier::Medium
        } else {
            Tier::Compact
        }
    }
}

/// Where each pane goes; `None` for a pane not shown at this size or mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Areas {
    pub runbook: Option<Rect>,
    pub detail: Option<Rect>,
    pub lag: Option<Rect>,
    pub rowcounts: Option<Rect>,
    pub metrics: Option<Rect>,
    /// The run's subscriptions, while one exists (the bottom of the detail).
    pub replication: Option<Rect>,
    pub log: Option<Rect>,
    /// The rehearsal timeline, when the run has rehearsals.
    pub timeline: Option<Rect>,
    pub message: Rect,
    pub status: Rect,
}

/// How many monitors of each kind the runbook configures: panes of kinds it has
/// none of shrink to their one-line notice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Configured {
    pub lag: usize,
    pub rowcounts: bool,
    pub metrics: usize,
    /// The run has rehearsals: a timeline row above the message row.
    pub timeline: bool,
    /// Rows the replication pane wants (0: no subscription of the run exists).
    pub replication: u16,
}

impl Configured {
    pub fn of(rb: &ferry_core::runbook::Runbook) -> Self {
        Configured {
            lag: rb.monitors.lag.len(),
            rowcounts: rb.monitors.rowcounts.is_some(),
            metrics: rb.monitors.metric.len(),
            timeline: false,
            replication: 0,
        }
    }

    /// What the console shows: the runbook's monitors, and the timeline row
    /// when the run has rehearsals.
    pub fn of_app(app: &App) -> Self {
        Configured {
            timeline: app.snap.rehearsal.is_some(),
            replication: replication::wanted(app),
            ..Configured::of(&app.rb)
        }
    }
}

/// The layout of a screen of `area`, in log view or with the detail zoomed or not.
pub fn layout(area: Rect, log_view: bool, zoom: bool, mon: Configured) -> Areas {
    let [main, timeline, message, status] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(u16::from(mon.timeline)),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let mut a = Areas {
        message,
        status,
        timeline: mon.timeline.then_some(timeline),
        ..Areas::default()
    };
    if log_view {
        a.log = Some(main);
        return a;
    }
    if zoom {
        a.detail = Some(main);
        return a;
    }
    let tier = Tier::of(area.width, area.height);
    let rw = match tier {
        Tier::Compact => (area.width * 2 / 5).clamp(24, 40),
        _ => (area.width * 3 / 10).clamp(30, 56),
    }
    .min(area.width);
    let [left, right] =
        Layout::horizontal([Constraint::Length(rw), Constraint::Min(0)]).areas(main);
    a.runbook = Some(left);
    match tier {
        Tier::Compact => {
            a.detail = Some(right);
            // row counts tell whether the copy is done and writes are frozen: under the
            // detail when the runbook has them and the detail keeps room for its output
            if mon.rowcounts && area.height >= 20 {
                let h = (area.height / 3).clamp(5, 8);
                let [detail, rows] =
                    Layout::vertical([Constraint::Min(6), Constraint::Length(h)]).areas(right);
                a.detail = Some(detail);
                a.rowcounts = Some(rows);
            }
            // lag matters most during a cutover: a strip under the runbook when there is room
            if mon.lag > 0 && area.height >= 20 {
                // one monitor gets two rows: its value and sparkline, or a note that wraps
                let strip = mon.lag.clamp(2, 3) as u16 + 2;
                let [list, lag] =
                    Layout::vertical([Constraint::Min(5), Constraint::Length(strip)]).areas(left);
                a.runbook = Some(list);
                a.lag = Some(lag);
            }
        }
        Tier::Medium | Tier::Full => {
            let mon_h = if mon.lag == 0 && !mon.rowcounts {
                3
            } else {
                (area.height / 4).clamp(6, 12)
            };
            let met_h = match (tier, mon.metrics) {
                (Tier::Full, 0) => 3,
                (Tier::Full, _) => (area.height / 4).clamp(8, 16),
                _ => 0,
            };
            let [detail, mon, met] = Layout::vertical([
                Constraint::Min(6),
                Constraint::Length(mon_h),
                Constraint::Length(met_h),
            ])
            .areas(right);
            let [lag, rows] =
                Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                    .areas(mon);
            a.detail = Some(detail);
            a.lag = Some(lag);
            a.rowcounts = Some(rows);
            if tier == Tier::Full {
                a.metrics = Some(met);
            }
        }
    }
    replication::place(&mut a, mon.replication);
    a
}

/// A pane's frame: thick border when focused (visible without colour), title on the top edge.
pub fn pane_block<'a>(title: impl Into<Line<'a>>, focused: bool, theme: Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(theme.border(focused))
        .title(title)
}

/// One line with `left` segments flush left and `right` segments flush right in
/// `w` cells: the right part is cut first, down to what the left needs to stay
/// readable (`keep_left` cells), then the left part.
pub fn two_sided(
    left: Vec<(String, Style)>,
    right: Vec<(String, Style)>,
    w: usize,
    keep_left: usize,
) -> Line<'static> {
    let lw: usize = left.iter().map(|(s, _)| fmt::width(s)).sum();
    let rw: usize = right.iter().map(|(s, _)| fmt::width(s)).sum();
    let room_right = w.saturating_sub(lw.min(keep_left) + 1);
    let right = if rw > room_right {
        cut(right, room_right)
    } else {
        right
    };
    let rw: usize = right.iter().map(|(s, _)| fmt::width(s)).sum();
    let room_left = if rw > 0 { w.saturating_sub(rw + 1) } else { w };
    let left = cut(left, room_left);
    let lw: usize = left.iter().map(|(s, _)| fmt::width(s)).sum();
    let gap = w.saturating_sub(lw + rw);
    let mut spans: Vec<Span<'static>> = left
        .into_iter()
        .map(|(s, st)| Span::styled(s, st))
        .collect();
    spans.push(Span::raw(" ".repeat(gap)));
    spans.extend(right.into_iter().map(|(s, st)| Span::styled(s, st)));
    Line::from(spans)
}

/// Segments cut to `w` cells in total (the last one kept ends in `…`).
pub fn cut(segs: Vec<(String, Style)>, w: usize) -> Vec<(String, Style)> {
    let mut out = Vec::new();
    let mut used = 0;
    for (s, st) in segs {
        let sw = fmt::width(&s);
        if used + sw <= w {
            used += sw;
            out.push((s, st));
        } else {
            let t = fmt::truncate(&s, w - used);
            if !t.is_empty() {
                out.push((t, st));
            }
            break;
        }
    }
    out
}

/// A line of text cut to `w` cells, in one style.
pub fn plain(s: &str, w: usize, st: Style) -> Line<'static> {
    Line::from(Span::styled(fmt::truncate(s, w), st))
}

/// Render `lines` top-down into `area`, one per row (no wrapping).
pub fn put_lines(lines: &[Line<'_>], area: Rect, buf: &mut Buffer) {
    for (i, l) in lines.iter().take(area.height as usize).enumerate() {
        let row = Rect {
            y: area.y + i as u16,
            height: 1,
            ..area
        };
        l.render(row, buf);
    }
}

/// The whole console; its state is where the runbook list is scrolled to.
impl StatefulWidget for &App {
    type State = ListScroll;

    fn render(self, area: Rect, buf: &mut Buffer, runbook_scroll: &mut ListScroll) {
        let mut a = layout(area, self.log_view, self.zoom, Configured::of_app(self));
        if let Some(r) = dms::carve(&mut a, area, self) {
            DmsPane::new(self).render(r, buf);
        }
        let focus = |p: Pane| self.focus == p;
        if let Some(r) = a.runbook {
            RunbookPane::new(self, focus(Pane::Runbook)).render(r, buf, runbook_scroll);
        }
        if let Some(r) = a.detail {
            DetailPane::new(self, focus(Pane::Detail) || self.zoom).render(r, buf);
        }
        if let Some(r) = a.lag {
            LagPane::new(self, focus(Pane::Lag)).render(r, buf);
        }
        if let Some(r) = a.rowcounts {
            RowCountsPane::new(self, focus(Pane::RowCounts)).render(r, buf);
        }
        if let Some(r) = a.metrics {
            MetricsPane::new(self, focus(Pane::Metrics)).render(r, buf);
        }
        if let Some(r) = a.replication {
            ReplicationPane::new(self).render(r, buf);
        }
        if let Some(r) = a.log {
            LogPane::new(self).render(r, buf);
        }
        if let Some(r) = a.timeline {
            TimelineRow::new(self).render(r, buf);
        }
        MessageRow::new(self).render(a.message, buf);
        StatusBar::new(self).render(a.status, buf);
        if let Some(ov) = &self.overlay {
            dialog::render(self, ov, area, buf);
        }
    }
}

/// Draw one frame of the whole console. The app lends the scroll state to the
/// frame and takes back where the lists ended up.
pub fn draw(frame: &mut Frame<'_>, app: &mut App) {
    let mut scroll = app.runbook_scroll;
    frame.render_stateful_widget(&*app, frame.area(), &mut scroll);
    app.runbook_scroll = scroll;
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Configured = Configured {
        lag: 2,
        rowcounts: true,
        metrics: 2,
        timeline: true,
        replication: 0,
    };

    #[test]
    fn tiers_and_layout_never_overlap() {
        assert_eq!(Tier::of(80, 24), Tier::Compact);
        assert_eq!(Tier::of(120, 30), Tier::Medium);
        assert_eq!(Tier::of(160, 48), Tier::Full);
        for (w, h) in [
            (80, 24),
            (100, 28),
            (120, 30),
            (160, 48),
            (250, 70),
            (40, 10),
        ] {
            let a = layout(Rect::new(0, 0, w, h), false, false, ALL);
            let rects: Vec<Rect> = [a.runbook, a.detail, a.lag, a.rowcounts, a.metrics]
                .into_iter()
                .flatten()
                .chain(a.timeline)
                .chain([a.message, a.status])
                .collect();
            for (i, x) in rects.iter().enumerate() {
                assert!(x.right() <= w && x.bottom() <= h, "{w}x{h}: {x:?} outside");
                for y in &rects[i + 1..] {
                    assert!(!x.intersects(*y), "{w}x{h}: {x:?} overlaps {y:?}");
                }
            }
        }
        let none = Configured::default();
        let compact = layout(Rect::new(0, 0, 80, 24), false, false, none);
        assert!(compact.lag.is_none() && compact.metrics.is_none() && compact.rowcounts.is_none());
        let compact = layout(Rect::new(0, 0, 80, 24), false, false, ALL);
        assert_eq!(
            compact.lag.map(|r| r.height),
            Some(4),
            "a lag strip under the runbook"
        );
        assert!(compact.metrics.is_none());
        assert_eq!(
            compact.rowcounts.map(|r| r.height),
            Some(8),
            "row counts under the detail"
        );
        let full = layout(Rect::new(0, 0, 160, 48), false, false, ALL);
        assert!(full.lag.is_some() && full.metrics.is_some() && full.rowcounts.is_some());
        assert_eq!(full.metrics.map(|r| r.height), Some(12));
        // kinds the runbook lacks shrink to their one-line notice
        let bare = layout(Rect::new(0, 0, 160, 48), false, false, none);
        assert_eq!(bare.lag.map(|r| r.height), Some(3));
        assert_eq!(bare.metrics.map(|r| r.height), Some(3));
    }

    #[test]
    fn two_sided_cuts_the_right_side_first() {
        let st = Style::new();
        let l = two_sided(
            vec![("  ✔ snapshot-restored".into(), st)],
            vec![("alice 2m03s".into(), st)],
            24,
            12,
        );
        assert_eq!(l.to_string(), "  ✔ snapsho… alice 2m03s");
        let l = two_sided(vec![("ab".into(), st)], vec![("cd".into(), st)], 8, 4);
        assert_eq!(l.to_string(), "ab    cd");
    }
}
