//! Inline SVG for the HTML report: a Gantt-style timeline of the steps and a
//! line chart per monitor series with its thresholds and the step boundaries.
//!
//! Written by hand on purpose: plotters needs system font libraries to lay out
//! text and poloto has no timeline, and both would bring far more than two
//! small charts need. Every text is XML-escaped here, in one place.

use super::model::{ReportModel, Series};
use chrono::{DateTime, Utc};
use std::fmt::Write as _;

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const W: f64 = 960.0;
const LEFT: f64 = 200.0;
const RIGHT: f64 = 20.0;

fn span(m: &ReportModel) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let a = m.run.started?;
    let b = m.run.ended?;
    if b <= a {
        return Some((a, a + chrono::Duration::seconds(1)));
    }
    Some((a, b))
}

fn x_of(t: DateTime<Utc>, a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    let total = (b - a).num_milliseconds().max(1) as f64;
    LEFT + (t - a).num_milliseconds() as f64 / total * (W - LEFT - RIGHT)
}

fn state_class(state: &str) -> &'static str {
    match state {
        "succeeded" => "ok",
        "failed" => "bad",
        "interrupted" => "warn",
        "rolled back" => "warn",
        "skipped" => "skip",
        _ => "idle",
    }
}

fn time_axis(o: &mut String, a: DateTime<Utc>, b: DateTime<Utc>, y: f64) {
    for i in 0..=4 {
        let t = a + (b - a) * i / 4;
        let x = x_of(t, a, b);
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            o,
            r#"<line x1="{x:.1}" y1="0" x2="{x:.1}" y2="{y:.1}" class="grid"/><text x="{x:.1}" y="{:.1}" class="axis" text-anchor="{anchor}">{}</text>"#,
            y + 14.0,
            t.format("%H:%M:%S")
        );
    }
}

/// One bar per step that ran, coloured by its final state.
pub fn gantt(m: &ReportModel) -> Option<String> {
    let (a, b) = span(m)?;
    let rows: Vec<_> = m.steps.iter().filter(|s| s.started.is_some()).collect();
    if rows.is_empty() {
        return None;
    }
    let row_h = 18.0;
    let h = rows.len() as f64 * row_h + 24.0;
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h:.0}" class="chart" role="img" aria-label="timeline of steps">"#
    );
    time_axis(&mut o, a, b, h - 20.0);
    for (i, s) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 2.0;
        let start = s.started.unwrap_or(a);
        let end = s.ended.unwrap_or(b);
        let x0 = x_of(start, a, b);
        let x1 = x_of(end, a, b).max(x0 + 2.0);
        let _ = write!(
            o,
            r#"<text x="{:.1}" y="{:.1}" class="label" text-anchor="end">{}</text><rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" class="bar {}"><title>{} — {}</title></rect>"#,
            LEFT - 6.0,
            y + row_h * 0.7,
            esc(&s.id),
            x1 - x0,
            row_h - 4.0,
            state_class(&s.state),
            esc(&s.id),
            esc(&s.state)
        );
        if s.point_of_no_return {
            let _ = write!(
                o,
                r#"<line x1="{x1:.1}" y1="0" x2="{x1:.1}" y2="{:.1}" class="ponr"/>"#,
                h - 20.0
            );
        }
    }
    o.push_str("</svg>");
    Some(o)
}

/// A line chart of one series over the run, with warn/max lines and step starts.
pub fn line_chart(m: &ReportModel, s: &Series) -> Option<String> {
    let (a, b) = span(m)?;
    if s.points.is_empty() {
        return None;
    }
    let h = 180.0;
    let plot_h = h - 30.0;
    let mut hi = s
        .points
        .iter()
        .map(|p| p.1)
        .fold(f64::NEG_INFINITY, f64::max);
    for t in [s.warn, s.max].into_iter().flatten() {
        hi = hi.max(t);
    }
    let lo = s
        .points
        .iter()
        .map(|p| p.1)
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let range = if hi > lo { hi - lo } else { 1.0 };
    let y_of = |v: f64| 14.0 + (1.0 - (v - lo) / range) * (plot_h - 14.0);
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h:.0}" class="chart" role="img" aria-label="{}">"#,
        esc(&s.monitor)
    );
    time_axis(&mut o, a, b, plot_h);
    for st in m
        .steps
        .iter()
        .filter_map(|st| st.started.map(|t| (t, &st.id)))
    {
        let x = x_of(st.0, a, b);
        let _ = write!(
            o,
            r#"<line x1="{x:.1}" y1="0" x2="{x:.1}" y2="{plot_h:.1}" class="step"><title>{}</title></line>"#,
            esc(st.1)
        );
    }
    for (v, class, name) in [(s.warn, "warnline", "warn"), (s.max, "maxline", "max")] {
        if let Some(v) = v {
            let y = y_of(v);
            let _ = write!(
                o,
                r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" class="{class}"/><text x="{:.1}" y="{:.1}" class="axis" text-anchor="end">{name} {v}</text>"#,
                W - RIGHT,
                W - RIGHT - 4.0,
                y - 3.0
            );
        }
    }
    let _ = write!(
        o,
        r#"<text x="{:.1}" y="18" class="axis" text-anchor="end">{hi:.2}</text><text x="{:.1}" y="{plot_h:.1}" class="axis" text-anchor="end">{lo:.2}</text>"#,
        LEFT - 6.0,
        LEFT - 6.0
    );
    let pts: Vec<String> = s
        .points
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x_of(*t, a, b), y_of(*v)))
        .collect();
    let _ = write!(
        o,
        r#"<polyline points="{}" class="series"/>"#,
        pts.join(" ")
    );
    o.push_str("</svg>");
    Some(o)
}
