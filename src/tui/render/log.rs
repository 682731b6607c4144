//! The full-screen log view (`l`): the journal as it is written, one line per
//! entry (redacted), newest at the bottom; ↑ ↓ PgUp PgDn scroll back.

use super::{fmt, pane_block, plain, put_lines};
use crate::tui::app::App;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Widget;

pub struct LogPane<'a> {
    app: &'a App,
}

impl<'a> LogPane<'a> {
    pub fn new(app: &'a App) -> Self {
        LogPane { app }
    }
}

impl Widget for &LogPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let len = app.log.len();
        let title = if app.log_scroll > 0 {
            format!(
                " Journal log · {len} lines · ↑{} · l or Esc closes ",
                app.log_scroll
            )
        } else {
            format!(" Journal log · {len} lines · l or Esc closes ")
        };
        let block = pane_block(title, true, app.theme);
        let inner = block.inner(area);
        block.render(area, buf);
        let h = inner.height as usize;
        let w = inner.width as usize;
        if h == 0 {
            return;
        }
        if len == 0 {
            plain("nothing journaled yet", w, app.theme.dim()).render(inner, buf);
            return;
        }
        let back = app.log_scroll.min(len.saturating_sub(h));
        let end = len - back;
        let start = end.saturating_sub(h);
        let lines: Vec<Line> = app
            .log
            .range(start..end)
            .map(|l| Line::raw(fmt::truncate(l, w)))
            .collect();
        put_lines(&lines, inner, buf);
    }
}
