//! The row-count pane: per table, the source and target counts and their
//! difference (source − target), estimates marked `~`, with when they were
//! counted or why they are stale.

use super::{fmt, pane_block, plain, put_lines};
use crate::tui::app::App;
use ferry_core::engine::snapshot::RowCount;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

pub struct RowCountsPane<'a> {
    app: &'a App,
    focused: bool,
}

impl<'a> RowCountsPane<'a> {
    pub fn new(app: &'a App, focused: bool) -> Self {
        RowCountsPane { app, focused }
    }
}

fn count(n: Option<i64>, exact: bool) -> String {
    match n {
        Some(n) if exact => fmt::thousands(n),
        Some(n) => format!("~{}", fmt::thousands(n)),
        None => "…".into(),
    }
}

fn table_line(app: &App, r: &RowCount, cols: [usize; 4]) -> Line<'static> {
    let t = app.theme;
    let (delta, st) = match (r.source, r.target) {
        (Some(s), Some(g)) if s == g => ("0".to_string(), t.ok()),
        (Some(s), Some(g)) => (fmt::thousands(s - g), t.warn()),
        _ => ("…".to_string(), t.dim()),
    };
    Line::from(vec![
        Span::raw(fmt::pad(&r.table, cols[0])),
        Span::raw(fmt::pad_left(&count(r.source, r.exact), cols[1])),
        Span::raw(fmt::pad_left(&count(r.target, r.exact), cols[2])),
        Span::styled(fmt::pad_left(&delta, cols[3]), st),
    ])
}

impl Widget for &RowCountsPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let t = app.theme;
        let Some(cfg) = &app.rb.monitors.rowcounts else {
            let block = pane_block(" Row counts ", self.focused, t);
            let inner = block.inner(area);
            block.render(area, buf);
            plain(
                "no row-count monitor in this runbook",
                inner.width as usize,
                t.dim(),
            )
            .render(inner, buf);
            return;
        };
        let rc = app.snap.monitors.rowcounts.as_ref();
        let differ = rc.map_or(0, |rc| {
            rc.tables
                .iter()
                .filter(|r| matches!((r.source, r.target), (Some(s), Some(g)) if s != g))
                .count()
        });
        let title = match rc {
            Some(rc) if !rc.tables.is_empty() => format!(
                " Row counts {} → {} · {differ} of {} differ ",
                cfg.source,
                cfg.target,
                rc.tables.len()
            ),
            _ => format!(" Row counts {} → {} ", cfg.source, cfg.target),
        };
        let block = pane_block(title, self.focused, t);
        let inner = block.inner(area);
        block.render(area, buf);
        let w = inner.width as usize;
        let h = inner.height as usize;
        if w == 0 || h == 0 {
            return;
        }
        let Some(rc) = rc else {
            plain("waiting for the first count…", w, t.dim()).render(inner, buf);
            return;
        };
        let footer = match (&rc.stale, rc.updated) {
            (Some(st), _) => {
                let age = st
                    .last_good
                    .map(|g| format!("stale {}", fmt::dur((app.now - g).num_seconds())))
                    .unwrap_or_else(|| "stale".into());
                Some(plain(&format!("{age}: {}", st.error), w, t.warn()))
            }
            (None, Some(u)) => Some(plain(
                &format!("counted {} ago", fmt::dur((app.now - u).num_seconds())),
                w,
                t.dim(),
            )),
            (None, None) => None,
        };
        let num_w = rc
            .tables
            .iter()
            .flat_map(|r| [count(r.source, r.exact), count(r.target, r.exact)])
            .map(|s| fmt::width(&s))
            .max()
            .unwrap_or(0)
            .max(6)
            + 1;
        let delta_w = num_w.min(10);
        let name_w = w.saturating_sub(2 * num_w + delta_w).max(4);
        let cols = [name_w, num_w, num_w, delta_w];
        let mut lines = vec![Line::from(vec![
            Span::styled(fmt::pad("table", cols[0]), t.bold()),
            Span::styled(fmt::pad_left("source", cols[1]), t.bold()),
            Span::styled(fmt::pad_left("target", cols[2]), t.bold()),
            Span::styled(fmt::pad_left("Δ", cols[3]), t.bold()),
        ])];
        let body_h = h.saturating_sub(1 + usize::from(footer.is_some()));
        if rc.tables.is_empty() {
            lines.push(plain("no tables matched", w, t.dim()));
        }
        let off = app.rows_scroll.min(rc.tables.len().saturating_sub(body_h));
        lines.extend(
            rc.tables
                .iter()
                .skip(off)
                .take(body_h)
                .map(|r| table_line(app, r, cols)),
        );
        put_lines(&lines, inner, buf);
        if let Some(f) = footer {
            let row = Rect::new(inner.x, inner.bottom() - 1, inner.width, 1);
            f.render(row, buf);
        }
    }
}
