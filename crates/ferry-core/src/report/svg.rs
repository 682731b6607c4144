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

/// A tick label: seconds, or tenths or hundredths of a second on a run of a
/// few seconds (five ticks of one second would all read the same).
fn tick(t: DateTime<Utc>, a: DateTime<Utc>, b: DateTime<Utc>) -> String {
    let ms = t.timestamp_subsec_millis();
    match (b - a).num_milliseconds() {
        s if s < 2_000 => format!("{}.{:02}", t.format("%H:%M:%S"), ms / 10),
        s if s < 20_000 => format!("{}.{}", t.format("%H:%M:%S"), ms / 100),
        _ => t.format("%H:%M:%S").to_string(),
    }
}

/// Grey hatched bands where no ferry ran (a stop to its resume), across `0..h`.
fn down_bands(o: &mut String, m: &ReportModel, a: DateTime<Utc>, b: DateTime<Utc>, h: f64) {
    for i in &m.interruptions {
        let Some(from) = i.stopped_at else { continue };
        let (x0, x1) = (x_of(from, a, b), x_of(i.at, a, b));
        if x1 <= x0 {
            continue;
        }
        let _ = write!(
            o,
            r#"<rect x="{x0:.1}" y="0" width="{:.1}" height="{h:.1}" class="down"><title>no ferry running: {} → {}</title></rect>"#,
            x1 - x0,
            from.format("%H:%M:%S"),
            i.at.format("%H:%M:%S")
        );
        let label = match x1 - x0 {
            w if w >= 110.0 => "no ferry running",
            w if w >= 40.0 => "stopped",
            _ => continue,
        };
        let _ = write!(
            o,
            r#"<text x="{:.1}" y="10" class="axis" text-anchor="middle">{label}</text>"#,
            (x0 + x1) / 2.0
        );
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
            tick(t, a, b)
        );
    }
}

/// One bar per step that ran, coloured by its final state; a skip is a grey
/// tick, a rollback an orange bar after the step's own; bands where no ferry ran.
pub fn gantt(m: &ReportModel) -> Option<String> {
    let (a, b) = span(m)?;
    let rows: Vec<_> = m
        .steps
        .iter()
        .filter(|s| s.started.is_some() || s.skipped_at.is_some())
        .collect();
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
        let _ = write!(
            o,
            r#"<text x="{:.1}" y="{:.1}" class="label" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y + row_h * 0.7,
            esc(&s.id)
        );
        let Some(start) = s.started else {
            // skipped without running
            if let Some(t) = s.skipped_at {
                let x = x_of(t, a, b);
                let _ = write!(
                    o,
                    r#"<rect x="{:.1}" y="{y:.1}" width="3" height="{:.1}" class="bar skip"><title>{} — skipped at {}</title></rect><text x="{:.1}" y="{:.1}" class="axis">skipped</text>"#,
                    x - 1.5,
                    row_h - 4.0,
                    esc(&s.id),
                    t.format("%H:%M:%S"),
                    x + 5.0,
                    y + row_h * 0.65
                );
            }
            continue;
        };
        let end = s.ended.unwrap_or(b);
        let x0 = x_of(start, a, b);
        let x1 = x_of(end, a, b).max(x0 + 2.0);
        let _ = write!(
            o,
            r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" class="bar {}"><title>{} — {}</title></rect>"#,
            x1 - x0,
            row_h - 4.0,
            state_class(&s.state),
            esc(&s.id),
            esc(&s.state)
        );
        if let Some(rs) = s.rollback_started {
            let r0 = x_of(rs, a, b);
            let r1 = x_of(s.rollback_ended.unwrap_or(b), a, b).max(r0 + 3.0);
            let _ = write!(
                o,
                r#"<rect x="{r0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" class="rollback"><title>{} — rollback {}</title></rect><text x="{:.1}" y="{:.1}" class="axis">rollback</text>"#,
                y + 2.0,
                r1 - r0,
                row_h - 8.0,
                esc(&s.id),
                esc(s.rollback.as_deref().unwrap_or("")),
                r1 + 4.0,
                y + row_h * 0.65
            );
        }
        if s.point_of_no_return {
            let _ = write!(
                o,
                r#"<line x1="{x1:.1}" y1="0" x2="{x1:.1}" y2="{:.1}" class="ponr"/>"#,
                h - 20.0
            );
        }
    }
    // over the bars: a step that was running when ferry stopped is greyed there
    down_bands(&mut o, m, a, b, h - 20.0);
    o.push_str("</svg>");
    Some(o)
}

/// Labels over the plot for the steps that took a visible share of the run
/// (ids that would overlap are dropped: every start keeps its dashed line).
fn step_labels(m: &ReportModel, a: DateTime<Utc>, b: DateTime<Utc>) -> String {
    const CHAR_W: f64 = 6.0;
    const ROWS: usize = 3;
    let min_secs = (b - a).num_milliseconds() as f64 / 1000.0 * 0.02;
    let mut ends = [f64::NEG_INFINITY; ROWS];
    let mut o = String::new();
    for st in &m.steps {
        let (Some(t), Some(d)) = (st.started, st.duration_secs) else {
            continue;
        };
        if d < min_secs {
            continue;
        }
        let x = x_of(t, a, b);
        let w = st.id.chars().count() as f64 * CHAR_W;
        if x + 3.0 + w > W {
            continue;
        }
        if let Some(row) = (0..ROWS).find(|r| ends[*r] + 4.0 <= x) {
            ends[row] = x + 3.0 + w;
            let _ = write!(
                o,
                r#"<text x="{:.1}" y="{:.1}" class="steplabel">{}</text>"#,
                x + 3.0,
                10.0 + row as f64 * 11.0,
                esc(&st.id)
            );
        }
    }
    o
}

/// A line chart of one series over the run, with warn/max lines, step
/// starts (the longer steps named above the plot) and a dot per sample.
pub fn line_chart(m: &ReportModel, s: &Series) -> Option<String> {
    let (a, b) = span(m)?;
    if s.points.is_empty() {
        return None;
    }
    let labels = step_labels(m, a, b);
    // room above the plot for the step names
    let top = if labels.is_empty() { 14.0 } else { 44.0 };
    let h = 150.0 + top;
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
    if hi <= lo {
        // a flat series: give the axis a unit of height, labelled as drawn
        hi = lo + 1.0;
    }
    let range = hi - lo;
    let y_of = |v: f64| top + (1.0 - (v - lo) / range) * (plot_h - top);
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h:.0}" class="chart" role="img" aria-label="{}">"#,
        esc(&s.monitor)
    );
    time_axis(&mut o, a, b, plot_h);
    down_bands(&mut o, m, a, b, plot_h);
    o.push_str(&labels);
    for st in m
        .steps
        .iter()
        .filter_map(|st| st.started.map(|t| (t, &st.id)))
    {
        let x = x_of(st.0, a, b);
        let _ = write!(
            o,
            r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{plot_h:.1}" class="step"><title>{}</title></line>"#,
            top - 6.0,
            esc(st.1)
        );
    }
    let unit = esc(s.unit.as_deref().unwrap_or(""));
    for (v, class, name) in [(s.warn, "warnline", "warn"), (s.max, "maxline", "max")] {
        if let Some(v) = v {
            let y = y_of(v);
            let _ = write!(
                o,
                r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" class="{class}"/><text x="{:.1}" y="{:.1}" class="axis" text-anchor="end">{name} {v} {unit}</text>"#,
                W - RIGHT,
                W - RIGHT - 4.0,
                y - 3.0
            );
        }
    }
    let _ = write!(
        o,
        r#"<text x="{:.1}" y="{:.1}" class="axis" text-anchor="end">{hi:.2} {unit}</text><text x="{:.1}" y="{plot_h:.1}" class="axis" text-anchor="end">{lo:.2} {unit}</text>"#,
        LEFT - 6.0,
        top + 4.0,
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
    // samples are journaled every 10 s: on a short run there are few, and a
    // single one draws no line at all
    if s.points.len() <= 120 {
        for p in &pts {
            if let Some((x, y)) = p.split_once(',') {
                let _ = write!(o, r#"<circle cx="{x}" cy="{y}" r="2.5" class="dot"/>"#);
            }
        }
    }
    o.push_str("</svg>");
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Entry;
    use crate::report::testkit::{at, model};
    use crate::vocab::Decision;

    fn sample(v: f64) -> Entry {
        Entry::Sample {
            monitor: "m".into(),
            series: "metric".into(),
            value: v,
            unit: Some("msg/s".into()),
            warn: None,
            max: None,
        }
    }

    #[test]
    fn a_single_sample_is_drawn_and_a_short_run_has_distinct_ticks() {
        // a demo run is shorter than the 10 s between journaled samples
        let m = model(vec![
            (
                0,
                Entry::Note {
                    step: None,
                    text: "start".into(),
                },
            ),
            (1, sample(0.0)),
            (
                3,
                Entry::Note {
                    step: None,
                    text: "end".into(),
                },
            ),
        ]);
        let svg = line_chart(&m, &m.series[0]).expect("a chart");
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
        assert!(
            svg.contains("1.00 msg/s") && svg.contains("0.00 msg/s"),
            "{svg}"
        );
        let ticks: Vec<&str> = svg
            .split(r#"class="axis" text-anchor="#)
            .skip(1)
            .filter_map(|t| t.split('>').nth(1)?.split('<').next())
            .filter(|t| t.contains(':'))
            .collect();
        let mut distinct = ticks.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), 5, "five different tick labels: {ticks:?}");
        // a failed one-step run of 0.3 s: hundredths
        let (a, b) = (at(0), at(0) + chrono::Duration::milliseconds(300));
        let labels: Vec<String> = (0..=4).map(|i| tick(a + (b - a) * i / 4, a, b)).collect();
        let mut d = labels.clone();
        d.dedup();
        assert_eq!(d.len(), 5, "{labels:?}");
    }

    #[test]
    fn the_timeline_shows_skips_rollbacks_and_the_time_nothing_ran() {
        use crate::vocab::{Actor, Event, Outcome};
        let bob = Actor {
            operator: "bob".into(),
            host: "h".into(),
            ..Default::default()
        };
        let ok = Outcome::Succeeded {
            summary: "ok".into(),
        };
        let session = |resumed| Entry::Session {
            operator: "bob".into(),
            host: "h".into(),
            uid: None,
            login: None,
            resumed,
            pid: 1,
            socket: None,
        };
        let m = model(vec![
            (0, session(false)),
            (
                1,
                Entry::Event(Event::Decided {
                    by: bob.clone(),
                    decision: Decision::Skip {
                        step: "a".into(),
                        reason: "r".into(),
                    },
                }),
            ),
            (
                2,
                Entry::Event(Event::Started {
                    step: "b".into(),
                    attempt: 1,
                }),
            ),
            (
                3,
                Entry::Event(Event::Finished {
                    step: "b".into(),
                    attempt: 1,
                    outcome: ok.clone(),
                }),
            ),
            (
                4,
                Entry::Event(Event::Started {
                    step: "c".into(),
                    attempt: 1,
                }),
            ),
            (60, session(true)),
            (
                60,
                Entry::Event(Event::Interrupted {
                    steps: vec!["c".into()],
                }),
            ),
            (
                70,
                Entry::Event(Event::Decided {
                    by: bob,
                    decision: Decision::Rollback {
                        step: "b".into(),
                        override_point_of_no_return: false,
                    },
                }),
            ),
            (
                72,
                Entry::Event(Event::RollbackFinished {
                    step: "b".into(),
                    outcome: ok,
                }),
            ),
            (80, sample(1.0)),
            (
                90,
                Entry::Note {
                    step: None,
                    text: "end".into(),
                },
            ),
        ]);
        let g = gantt(&m).expect("a timeline");
        assert!(
            g.contains(">a</text>") && g.contains("a — skipped at"),
            "{g}"
        );
        assert!(
            g.contains(r#"class="rollback""#) && g.contains(">rollback</text>"),
            "{g}"
        );
        assert!(
            g.contains(r#"class="down""#) && g.contains("no ferry running"),
            "{g}"
        );
        let c = line_chart(&m, &m.series[0]).expect("a chart");
        assert!(
            c.contains(r#"class="down""#),
            "the chart shows the stop too: {c}"
        );
    }
}
