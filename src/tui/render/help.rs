//! The help overlay: every key and what it does (from [`crate::tui::keys::KEYS`]).

use super::dialog::popup;
use super::fmt;
use crate::tui::app::{App, Role};
use crate::tui::keys::KEYS;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let labels: Vec<(String, &str)> = KEYS.iter().map(|b| (b.label(), b.what)).collect();
    let key_w = labels.iter().map(|(k, _)| fmt::width(k)).max().unwrap_or(0) + 2;
    let dw = area.width.saturating_sub(4).clamp(20, 76);
    let w = dw.saturating_sub(2) as usize;
    let mut lines: Vec<Line<'static>> = labels
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(fmt::pad(k, key_w), t.bold()),
                Span::raw(fmt::truncate(what, w.saturating_sub(key_w))),
            ])
        })
        .collect();
    lines.push(Line::default());
    lines.push(Line::styled(
        fmt::truncate("Glyphs: · pending ○ ready ? awaiting ▶ running ✔ done ✘ failed ⤼ skipped ! interrupted ↻ retry ↶ ↩ rollback", w),
        t.dim(),
    ));
    let attach = match app.role() {
        Role::Owner { socket: Some(p) } => Some(format!(
            "Join from another terminal: ferry attach --socket {} [--operate]",
            crate::quote::path(p)
        )),
        Role::Owner { socket: None } => None,
        Role::Attached {
            operator,
            operate,
            observer,
            socket,
        } => Some(format!(
            "Attached to {} as {operator}{}; q leaves, the run goes on.",
            socket.display(),
            if *observer {
                " (observing: [operators] operate does not list you)"
            } else if *operate {
                ""
            } else {
                " (read-only)"
            }
        )),
    };
    if let Some(a) = attach {
        lines.extend(
            fmt::wrap(&a, w)
                .into_iter()
                .map(|l| Line::styled(l, t.dim())),
        );
    }
    lines.push(Line::styled("Esc closes this help", t.dim()));
    popup(area, buf, " Keys ".into(), t.active(), lines, dw);
}
