//! The replication lag pane: per lag monitor of the runbook, the current lag
//! coloured against its warn/max thresholds (and marked in words, for `NO_COLOR`),
//! a sparkline of recent samples, or why there is no value (stale with its age
//! and error, the monitor's note, no value yet).

use super::{fmt, pane_block, plain, two_sided};
use crate::tui::app::App;
use ferry_core::engine::snapshot::LagSeries;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

pub struct LagPane<'a> {
    app: &'a App,
    focused: bool,
}

impl<'a> LagPane<'a> {
    pub fn new(app: &'a App, focused: bool) -> Self {
        LagPane { app, focused }
    }
}

/// One monitor's line: `replica  1.4s ▁▂▁▁▃▂▁  warn 5s · max 30s`.
fn monitor_line(
    app: &App,
    name: &str,
    s: Option<&LagSeries>,
    name_w: usize,
    w: usize,
) -> Line<'static> {
    let t = app.theme;
    let mut left = vec![
        (fmt::pad(name, name_w), t.bold()),
        (" ".into(), Style::new()),
    ];
    let Some(s) = s else {
        left.push(("no value yet".into(), t.dim()));
        return two_sided(left, vec![], w, w);
    };
    if let Some(note) = &s.note {
        left.push((format!("— {note}"), t.dim()));
        return two_sided(left, vec![], w, w);
    }
    if let Some(st) = &s.stale {
        let age = match st.last_good {
            Some(g) => format!("stale {}", fmt::dur((app.now - g).num_seconds())),
            None => "stale, never measured".into(),
        };
        left.push((age, t.warn()));
        left.push((format!(": {}", st.error), t.dim()));
        return two_sided(left, vec![], w, w);
    }
    let Some(last) = s.samples.last() else {
        left.push(("no value yet".into(), t.dim()));
        return two_sided(left, vec![], w, w);
    };
    let v = last.value;
    let level = t.level(v, s.warn_secs, s.max_secs);
    left.push((fmt::pad_left(&fmt::lag(v), 6), level));
    let word = if s.max_secs.is_some_and(|m| v >= m) {
        " MAX"
    } else if s.warn_secs.is_some_and(|x| v >= x) {
        " WARN"
    } else {
        ""
    };
    left.push((word.into(), level));
    let mut right = Vec::new();
    let mut limits = Vec::new();
    if let Some(x) = s.warn_secs {
        limits.push(format!("warn {}", fmt::lag(x)));
    }
    if let Some(m) = s.max_secs {
        limits.push(format!("max {}", fmt::lag(m)));
    }
    if !limits.is_empty() {
        right.push((limits.join(" · "), t.dim()));
    }
    let used: usize = left.iter().map(|(x, _)| fmt::width(x)).sum();
    let mut rw: usize = right.iter().map(|(x, _)| fmt::width(x)).sum();
    if w.saturating_sub(used + rw + 3) < 8 {
        // narrow: the sparkline says more than the thresholds
        right.clear();
        rw = 0;
    }
    let spark_w = w.saturating_sub(used + rw + 3).min(40);
    if spark_w >= 4 {
        let values: Vec<f64> = s.samples.iter().map(|x| x.value).collect();
        let top = values
            .iter()
            .copied()
            .fold(s.warn_secs.unwrap_or(1.0), f64::max);
        left.push((format!(" {}", fmt::sparkline(&values, spark_w, top)), level));
    }
    two_sided(left, right, w, used)
}

impl Widget for &LagPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let block = pane_block(" Replication lag ", self.focused, app.theme);
        let inner = block.inner(area);
        block.render(area, buf);
        let w = inner.width as usize;
        if inner.height == 0 || w == 0 {
            return;
        }
        let monitors = &app.rb.monitors.lag;
        if monitors.is_empty() {
            plain("no lag monitor in this runbook", w, app.theme.dim()).render(inner, buf);
            return;
        }
        let name_w = monitors
            .iter()
            .map(|m| fmt::width(&m.name))
            .max()
            .unwrap_or(0)
            .min(16);
        let h = inner.height as usize;
        if let [m] = monitors.as_slice() {
            // one monitor with something to say instead of a value: say all of it
            let series = app.snap.monitors.lag.iter().find(|s| s.name == m.name);
            if let Some(note) = series.and_then(|s| s.note.as_deref()) {
                let text = Line::from(vec![
                    Span::styled(m.name.clone(), app.theme.bold()),
                    Span::styled(format!(" — {note}"), app.theme.dim()),
                ]);
                Paragraph::new(text)
                    .wrap(Wrap { trim: true })
                    .render(inner, buf);
                return;
            }
        }
        let off = app.lag_scroll.min(monitors.len().saturating_sub(h));
        for (n, m) in monitors.iter().skip(off).take(h).enumerate() {
            let series = app.snap.monitors.lag.iter().find(|s| s.name == m.name);
            let row = Rect::new(inner.x, inner.y + n as u16, inner.width, 1);
            monitor_line(app, &m.name, series, name_w, w).render(row, buf);
        }
    }
}
