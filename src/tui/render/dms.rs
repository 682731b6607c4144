//! The DMS pane: per `[[monitor.dms]]`, the task line (status, full-load percent,
//! tables loaded/loading/queued/errored, CDC latency), the first problem, then one
//! row per table (state, full-load rows, inserts, updates, deletes, validation),
//! failing tables first. Any problem turns the border, the task line and the
//! failing rows red, so a table DMS suspended while the task keeps `running` is
//! never a quiet line among green ones.
//!
//! ```text
//! ┌ DMS cdc · 1 problem ──────────────────────────────────────────┐
//! │ ✘ orders-sync running · load 62% · ✔3 ▶1 …0 ✘1 · CDC 4.2s     │
//! │ ✘ table app.orders is `Table error` (…: duplicate key)        │
//! │ table          state               rows   ins  upd  del  valid │
//! │ app.orders     Table error            3     0    0    0  …     │
//! │ app.users      Table completed      120     0    0    0  ✔     │
//! │ updated 4s ago                                                │
//! └───────────────────────────────────────────────────────────────┘
//! ```
//!
//! The pane takes the bottom of the detail column ([`carve`]); it is not focusable.

use super::{fmt, plain, put_lines, Areas, Tier};
use crate::tui::app::App;
use crate::tui::theme::Theme;
use ferry_core::engine::snapshot::DmsTaskView;
use ferry_core::results::dms::TableStat;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Widget};

/// The rows under the detail the DMS pane would like: borders, task line, problem
/// line, header, tables, footer for each monitor.
fn wanted(views: &[DmsTaskView], configured: usize) -> u16 {
    let per: usize = views
        .iter()
        .map(|v| 4 + usize::from(v.failing()) + v.tables.len().max(1))
        .sum();
    (per.max(configured * 5) + 2).min(u16::MAX as usize) as u16
}

/// Take the DMS pane's rows from the bottom of the detail pane, leaving the detail
/// at least 6 rows; `None` when the runbook has no DMS monitor or there is no room.
pub fn carve(a: &mut Areas, screen: Rect, app: &App) -> Option<Rect> {
    let configured = app.rb.monitors.dms.len();
    let detail = a.detail?;
    if configured == 0 || a.runbook.is_none() {
        return None;
    }
    let cap = match Tier::of(screen.width, screen.height) {
        Tier::Compact => 8,
        _ => (screen.height / 4).clamp(6, 14),
    };
    let h = wanted(&app.snap.monitors.dms, configured)
        .min(cap)
        .min(detail.height.saturating_sub(6));
    if h < 4 {
        return None;
    }
    let pane = Rect::new(detail.x, detail.bottom() - h, detail.width, h);
    a.detail = Some(Rect {
        height: detail.height - h,
        ..detail
    });
    Some(pane)
}

pub struct DmsPane<'a> {
    app: &'a App,
}

impl<'a> DmsPane<'a> {
    pub fn new(app: &'a App) -> Self {
        DmsPane { app }
    }
}

fn is_bad_state(t: &TableStat) -> bool {
    let s = t.state.to_lowercase();
    s.contains("error") || s.contains("suspend")
}

/// Whether validation of `t` found anything wrong (the judgement of `aws::dms::problems`).
fn is_bad_validation(t: &TableStat) -> bool {
    t.validation_failed > 0
        || t.validation_suspended > 0
        || t.validation_state.as_deref().is_some_and(|v| {
            matches!(
                v.to_lowercase().as_str(),
                "mismatched records"
                    | "suspended records"
                    | "no primary key"
                    | "table error"
                    | "error"
                    | "failed"
            )
        })
}

/// The validation cell: `✘ 7 failed` (`✘7` when `narrow`), `✔`, the state, or `-`.
fn validation(t: &TableStat, narrow: bool) -> String {
    let bad = t.validation_failed + t.validation_suspended;
    if bad > 0 {
        return if narrow {
            format!("✘{bad}")
        } else {
            format!("✘ {bad} failed")
        };
    }
    match t.validation_state.as_deref() {
        Some("Validated") => "✔".into(),
        Some(v) => v.to_string(),
        None => "-".into(),
    }
}

fn task_line(v: &DmsTaskView, t: Theme, w: usize) -> Line<'static> {
    let Some(s) = &v.state else {
        return plain(&format!("{} · waiting for DMS…", v.task), w, t.dim());
    };
    let (glyph, st) = if v.failing() {
        ("✘ ", t.bad())
    } else if s.status == "running" {
        ("▶ ", t.active())
    } else {
        ("· ", t.text())
    };
    let num = |x: Option<i32>| x.map_or("?".into(), |n| n.to_string());
    let mut text = format!("{} {}", s.task, s.status);
    if let Some(p) = s.full_load_percent {
        text.push_str(&format!(" · load {p}%"));
    }
    text.push_str(&format!(
        " · ✔{} ▶{} …{} ✘{}",
        num(s.tables_loaded),
        num(s.tables_loading),
        num(s.tables_queued),
        num(s.tables_errored)
    ));
    match &v.latency {
        Some(l) => text.push_str(&format!(" · CDC {}", fmt::lag(l.value))),
        None if s.migration_type.as_deref() != Some("full-load") => text.push_str(" · CDC ?"),
        None => {}
    }
    Line::from(vec![
        Span::styled(glyph, st),
        Span::styled(fmt::truncate(&text, w.saturating_sub(2)), st),
    ])
}

/// Column widths: name, state, rows, ins, upd, del, validation (0: not shown).
/// Narrow panes (the 80×24 console) keep the name readable: short rows and
/// validation columns, no inserts/updates/deletes.
fn columns(w: usize) -> [usize; 7] {
    let (state, rows, val) = if w < 70 { (16, 8, 6) } else { (16, 10, 11) };
    let ops = if w >= 90 { 9 } else { 0 };
    let name = w.saturating_sub(state + rows + 3 * ops + val).max(6);
    [name, state, rows, ops, ops, ops, val]
}

fn header(t: Theme, c: [usize; 7]) -> Line<'static> {
    let mut spans = vec![
        Span::styled(fmt::pad("table", c[0]), t.bold()),
        Span::styled(fmt::pad("state", c[1]), t.bold()),
        Span::styled(fmt::pad_left("rows", c[2]), t.bold()),
    ];
    if c[3] > 0 {
        for h in ["inserts", "updates", "deletes"] {
            spans.push(Span::styled(fmt::pad_left(h, c[3]), t.bold()));
        }
    }
    spans.push(Span::styled(fmt::pad_left("valid", c[6]), t.bold()));
    Line::from(spans)
}

fn table_row(x: &TableStat, t: Theme, c: [usize; 7]) -> Line<'static> {
    let bad_state = is_bad_state(x);
    let bad_val = is_bad_validation(x);
    let row = if bad_state || bad_val {
        t.bad()
    } else {
        t.text()
    };
    let state_st = if bad_state {
        t.bad()
    } else if x.state == "Table completed" {
        t.ok()
    } else {
        t.active()
    };
    let cell = |s: String, w: usize| fmt::pad(&fmt::truncate(&s, w.saturating_sub(1)), w);
    let mut spans = vec![
        Span::styled(cell(x.name(), c[0]), row),
        Span::styled(cell(x.state.clone(), c[1]), state_st),
        Span::styled(fmt::pad_left(&fmt::thousands(x.full_load_rows), c[2]), row),
    ];
    if c[3] > 0 {
        for n in [x.inserts, x.updates, x.deletes] {
            spans.push(Span::styled(fmt::pad_left(&fmt::thousands(n), c[3]), row));
        }
    }
    let val_st = if bad_val { t.bad() } else { t.dim() };
    spans.push(Span::styled(
        fmt::pad_left(&fmt::truncate(&validation(x, c[6] < 11), c[6] - 1), c[6]),
        val_st,
    ));
    Line::from(spans)
}

/// The lines of one monitor in `w` cells and at most `h` rows: failing tables
/// first, so the red rows are the ones that stay when there is no room for all.
fn monitor_lines(app: &App, v: &DmsTaskView, w: usize, h: usize) -> Vec<Line<'static>> {
    let t = app.theme;
    let mut lines = vec![task_line(v, t, w)];
    if let Some(p) = v.problems.first() {
        let more = match v.problems.len() {
            1 => String::new(),
            n => format!(" (+{} more)", n - 1),
        };
        lines.push(plain(&format!("✘ {p}{more}"), w, t.bad()));
    }
    let footer = match (&v.stale, v.updated) {
        (Some(st), _) => Some(plain(
            &format!(
                "stale {}: {}",
                st.last_good
                    .map(|g| fmt::dur((app.now - g).num_seconds()))
                    .unwrap_or_else(|| "(no answer yet)".into()),
                st.error
            ),
            w,
            t.warn(),
        )),
        (None, Some(u)) => Some(plain(
            &format!(
                "updated {} ago{}",
                fmt::dur((app.now - u).num_seconds()),
                v.latency_note
                    .as_ref()
                    .map(|n| format!(" · no CDC latency: {n}"))
                    .unwrap_or_default()
            ),
            w,
            t.dim(),
        )),
        (None, None) => None,
    };
    if v.state.is_some() {
        let c = columns(w);
        lines.push(header(t, c));
        let mut tables: Vec<&TableStat> = v.tables.iter().collect();
        tables.sort_by_key(|x| !(is_bad_state(x) || is_bad_validation(x)));
        let room = h.saturating_sub(lines.len() + usize::from(footer.is_some()));
        if tables.is_empty() {
            lines.push(plain("no table statistics yet", w, t.dim()));
        } else if tables.len() > room && room > 0 {
            lines.extend(tables.iter().take(room - 1).map(|x| table_row(x, t, c)));
            lines.push(plain(
                &format!("… {} more table(s)", tables.len() - (room - 1)),
                w,
                t.dim(),
            ));
        } else {
            lines.extend(tables.iter().map(|x| table_row(x, t, c)));
        }
    }
    lines.extend(footer);
    lines
}

impl Widget for &DmsPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let t = app.theme;
        let views = &app.snap.monitors.dms;
        let failing = views.iter().filter(|v| v.failing()).count();
        let problems: usize = views.iter().map(|v| v.problems.len()).sum();
        let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
        let title = match problems {
            0 => format!(" DMS {} ", names.join(", ")),
            1 => format!(" DMS {} · 1 problem ", names.join(", ")),
            n => format!(" DMS {} · {n} problems ", names.join(", ")),
        };
        let edge: Style = if failing > 0 { t.bad() } else { t.dim() };
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(edge)
            .title(Span::styled(title, edge));
        let inner = block.inner(area);
        block.render(area, buf);
        let (w, h) = (inner.width as usize, inner.height as usize);
        if w == 0 || h == 0 {
            return;
        }
        if views.is_empty() {
            plain("no DMS monitor in this runbook", w, t.dim()).render(inner, buf);
            return;
        }
        // each monitor gets an equal share of the rows
        let share = (h / views.len()).max(1);
        let mut lines = Vec::new();
        for v in views {
            lines.extend(monitor_lines(app, v, w, share));
        }
        put_lines(&lines, inner, buf);
    }
}
