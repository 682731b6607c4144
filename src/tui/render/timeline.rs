//! The timeline row above the message row, shown when the run has rehearsals:
//! the rollback budget, the projected end (median and p90) against the window's
//! end, and how many journals, coloured by how close they run.

use super::cut;
use crate::tui::app::App;
use crate::tui::theme::Theme;
use crate::tui::timeline::{budget_text, end_text, Level};
use ferry_core::engine::timeline;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

pub struct TimelineRow<'a> {
    app: &'a App,
}

impl<'a> TimelineRow<'a> {
    pub fn new(app: &'a App) -> Self {
        TimelineRow { app }
    }
}

pub fn style(t: Theme, l: Level) -> Style {
    match l {
        Level::Quiet => t.dim(),
        Level::Normal => t.text(),
        Level::Warn => t.warn(),
        Level::Bad => t.bad(),
    }
}

impl Widget for &TimelineRow<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let t = app.theme;
        let Some(p) = timeline::project(&app.snap, app.now) else {
            return;
        };
        let sep = (" · ".to_string(), t.dim());
        let (end, el) = end_text(&p);
        let (budget, bl) = budget_text(&p.budget);
        // the budget first: on a narrow screen the rest is cut before it
        let segs = vec![
            (format!(" {budget}"), style(t, bl)),
            sep.clone(),
            (end, style(t, el)),
            sep,
            (format!("rehearsed ×{}", p.journals), t.dim()),
        ];
        let spans: Vec<Span> = cut(segs, area.width as usize)
            .into_iter()
            .map(|(s, st)| Span::styled(s, st))
            .collect();
        Line::from(spans).render(area, buf);
    }
}
