//! The metrics pane: one Braille line chart per metric monitor (CloudWatch or
//! SQL-sampled), with time and value axes and the latest value in its title,
//! coloured against the monitor's warn/max; stale series say so with their age.

use super::{fmt, pane_block, plain};
use crate::tui::app::App;
use ferry_core::engine::snapshot::MetricSeries;
use ferry_core::runbook::MetricMonitor;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Widget};

/// Narrowest chart worth drawing.
const MIN_CHART_W: u16 = 34;
const MIN_CHART_H: u16 = 5;

pub struct MetricsPane<'a> {
    app: &'a App,
    focused: bool,
}

impl<'a> MetricsPane<'a> {
    pub fn new(app: &'a App, focused: bool) -> Self {
        MetricsPane { app, focused }
    }
}

/// The latest value with its unit: `42.1 %`, `1.2k msg/s`.
fn value_text(v: f64, unit: Option<&str>) -> String {
    match unit {
        Some(u) => format!("{} {u}", fmt::si(v)),
        None => fmt::si(v),
    }
}

fn chart(app: &App, m: &MetricMonitor, s: Option<&MetricSeries>, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let name = m.title.as_deref().unwrap_or(&m.name);
    let unit = m.unit.as_deref().or(s.and_then(|s| s.unit.as_deref()));
    let latest = s.and_then(|s| s.samples.last());
    let mut title = vec![Span::styled(format!(" {name} "), t.bold())];
    let level = latest.map_or(t.text(), |l| t.level(l.value, m.warn, m.max));
    if let Some(l) = latest {
        title.push(Span::styled(
            format!("{} ", value_text(l.value, unit)),
            level,
        ));
    }
    let stale = s.and_then(|s| s.stale.as_ref());
    if let Some(st) = stale {
        let age = st
            .last_good
            .map(|g| format!("stale {} ", fmt::dur((app.now - g).num_seconds())))
            .unwrap_or_else(|| "stale ".into());
        title.push(Span::styled(age, t.warn()));
    }
    let mut block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.dim())
        .title(Line::from(title));
    if let Some(st) = stale {
        // the chart keeps its old samples; the error goes in the bottom border
        block = block.title_bottom(Line::from(Span::styled(
            format!(
                " {} ",
                fmt::truncate(&st.error, area.width.saturating_sub(4) as usize)
            ),
            t.warn(),
        )));
    }
    let inner = block.inner(area);
    let samples = s.map(|s| s.samples.as_slice()).unwrap_or(&[]);
    if samples.len() < 2 {
        block.render(area, buf);
        let why = match stale {
            Some(st) => format!("no samples: {}", st.error),
            None => "waiting for samples…".into(),
        };
        plain(&why, inner.width as usize, t.dim()).render(inner, buf);
        return;
    }
    let now = app.now;
    let data: Vec<(f64, f64)> = samples
        .iter()
        .map(|p| ((p.at - now).num_milliseconds() as f64 / 1000.0, p.value))
        .collect();
    let x0 = data.first().map_or(-60.0, |d| d.0).min(-60.0);
    let x1 = data.last().map_or(0.0, |d| d.0).max(0.0);
    let lo = data
        .iter()
        .map(|d| d.1)
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let mut hi = data.iter().map(|d| d.1).fold(f64::NEG_INFINITY, f64::max);
    if let Some(w) = m.warn {
        hi = hi.max(w);
    }
    hi = if hi > lo { hi * 1.1 } else { lo + 1.0 };
    let ds = Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(level)
        .data(&data);
    let x_axis = Axis::default()
        .bounds([x0, x1])
        .style(t.dim())
        .labels([format!("-{}", fmt::dur((-x0) as i64)), "now".to_string()]);
    let y_axis = Axis::default()
        .bounds([lo, hi])
        .style(t.dim())
        .labels([fmt::si(lo), fmt::si(hi)]);
    Chart::new(vec![ds])
        .block(block)
        .x_axis(x_axis)
        .y_axis(y_axis)
        .legend_position(None)
        .render(area, buf);
}

impl Widget for &MetricsPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let block = pane_block(" Metrics ", self.focused, app.theme);
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.width == 0 || inner.height == 0 {
            return;
        }
        let monitors = &app.rb.monitors.metric;
        if monitors.is_empty() {
            plain(
                "no metric monitor in this runbook",
                inner.width as usize,
                app.theme.dim(),
            )
            .render(inner, buf);
            return;
        }
        let per_row = ((inner.width / MIN_CHART_W).max(1) as usize).min(monitors.len());
        let max_rows = (inner.height / MIN_CHART_H).max(1) as usize;
        let rows = monitors.len().div_ceil(per_row).min(max_rows);
        let shown = (rows * per_row).min(monitors.len());
        let row_areas =
            Layout::vertical(vec![Constraint::Ratio(1, rows as u32); rows]).split(inner);
        for (r, row_area) in row_areas.iter().enumerate() {
            let n = per_row.min(shown - r * per_row);
            let cells =
                Layout::horizontal(vec![Constraint::Ratio(1, n as u32); n]).split(*row_area);
            for (c, cell) in cells.iter().enumerate() {
                let m = &monitors[r * per_row + c];
                let s = app.snap.monitors.metrics.iter().find(|s| s.name == m.name);
                chart(app, m, s, *cell, buf);
            }
        }
        if shown < monitors.len() {
            let more = format!(" +{} more ", monitors.len() - shown);
            buf.set_string(
                area.right().saturating_sub(more.len() as u16 + 1),
                area.y,
                more,
                app.theme.dim(),
            );
        }
    }
}
