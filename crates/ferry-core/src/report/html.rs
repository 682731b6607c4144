//! The self-contained HTML report: inline CSS and SVG, no scripts, no fonts or
//! anything else from the network; readable when printed to PDF.

use super::markdown::{down_note, interruption_text, lines, step_notes};
use super::model::ReportModel;
use super::results;
use super::svg;
use crate::units::{report_duration, timestamp};
use maud::{html, Markup, PreEscaped, DOCTYPE};

const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b1f23;margin:2rem auto;max-width:1000px;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.3rem}h2{margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}code,pre{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
pre{background:#f6f8fa;padding:.5rem;overflow-x:auto;white-space:pre-wrap;overflow-wrap:anywhere}
.banner{padding:.7rem 1rem;border-radius:6px;margin:1rem 0;font-weight:600}
.banner.ok{background:#dafbe1;border:1px solid #4ac26b}.banner.bad{background:#ffebe9;border:2px solid #cf222e;color:#82071e;font-size:1.1rem}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{padding:.4rem .7rem;border-radius:6px}.verdict.ok{background:#dafbe1}.verdict.bad{background:#ffebe9;color:#82071e}
.state-succeeded{color:#1a7f37}.state-failed{color:#cf222e;font-weight:600}.state-interrupted,.state-rolled{color:#9a6700}
svg.chart{width:100%;height:auto;border:1px solid #d0d7de;margin:.5rem 0;background:#fff}
svg .grid{stroke:#eaeef2}svg .axis,svg .label{font-size:11px;fill:#57606a;font-family:system-ui,sans-serif}
svg .bar.ok{fill:#4ac26b}svg .bar.bad{fill:#cf222e}svg .bar.warn{fill:#d4a72c}svg .bar.skip{fill:#afb8c1}svg .bar.idle{fill:#8c959f}
svg .ponr{stroke:#cf222e;stroke-dasharray:4 3}svg .step{stroke:#d0d7de;stroke-dasharray:2 3}
svg .series{fill:none;stroke:#0969da;stroke-width:1.6}svg .dot{fill:#0969da}
svg .down{fill:#d0d7de;fill-opacity:.45}svg .rollback{fill:#bc4c00}svg .steplabel{font-size:10px;fill:#57606a;font-family:system-ui,sans-serif}svg .warnline{stroke:#d4a72c;stroke-dasharray:6 4}svg .maxline{stroke:#cf222e;stroke-dasharray:6 4}
@media print{body{margin:0;max-width:none}h2,h3{break-after:avoid}tr,svg,pre{break-inside:avoid}svg .axis,svg .label{font-size:13px}}
"#;

/// A time in the timeline table: the clock alone on the day the run started
/// (the header gives the date), the full date and time otherwise.
fn clock(m: &ReportModel, t: chrono::DateTime<chrono::Utc>) -> String {
    match m.run.started {
        Some(s) if s.date_naive() == t.date_naive() => t.format("%H:%M:%S").to_string(),
        _ => timestamp(t),
    }
}

pub fn render(m: &ReportModel) -> String {
    let title = if m.runbook.title.is_empty() {
        m.runbook.name.clone()
    } else {
        m.runbook.title.clone()
    };
    let page: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Cutover report: " (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                h1 { "Cutover report: " (title) }
                @if m.journal.chain_ok {
                    div class="banner ok" { "Journal integrity: verified — " (lines(m.journal.lines)) ", hash chain intact."
                        @if let Some(l) = m.journal.torn_line { " Line " (l) " was cut short by a crash and is ignored." } }
                } @else {
                    div class="banner bad" id="chain-broken" {
                        "⚠ JOURNAL CHAIN BROKEN AT LINE " (m.journal.broken_line.unwrap_or(0)) ": " (m.journal.problem.clone().unwrap_or_default())
                        ". Everything from that line on is not verified: the journal was edited or corrupted after it was written."
                    }
                }
                table {
                    tr { th { "Runbook" } td { code { (m.runbook.name) } " (" (m.runbook.path) ")" } }
                    tr { th { "Outcome" } td { strong { (m.run.outcome) } } }
                    tr { th { "Started" } td { (m.run.started.map(timestamp).unwrap_or_default()) } }
                    tr { th { "Ended" } td { (m.run.ended.map(timestamp).unwrap_or_default()) } }
                    tr { th { "Duration" } td { (m.run.duration_secs.map(report_duration).unwrap_or_default()) (down_note(m)) } }
                    tr { th { "Window" } td {
                        @match &m.window {
                            Some(w) => {
                                "planned " (timestamp(w.planned_start)) " → " (timestamp(w.planned_end)) " (" (report_duration(w.planned_secs as f64)) ")"
                                @if let Some(s) = w.overrun_secs { @if s > 0 { "; " strong { "overran by " (report_duration(s as f64)) } } @else { "; ended " (report_duration(-s as f64)) " before it closed" } }
                            }
                            None => { "none planned" }
                        }
                    } }
                    tr { th { "Operators" } td { (m.run.operators.join(", ")) } }
                    tr { th { "Journal" } td { code { (m.journal.path) } } }
                    @if let (Some(h), Some(l)) = (&m.journal.head, m.journal.head_line) {
                        tr { th { "Journal head" } td { code { (h) } " (line " (l) "; keep it with the change ticket: any later edit of the journal changes it)" } }
                    }
                }
                h2 { "Timeline" }
                @if let Some(g) = svg::gantt(m) { (PreEscaped(g)) }
                table {
                    tr { th { "Step" } th { "Kind" } th { "Start (UTC)" } th { "Duration" } th { "State" } th { "Confirmed by" } th { "Notes" } }
                    @for s in m.steps.iter().filter(|s| !(s.rollback_only && s.state == "not run")) {
                        tr {
                            td { code { (s.id) } br; (s.title) }
                            td { (s.kind) }
                            td { (s.started.map(|t| clock(m, t)).unwrap_or_default()) }
                            td { (s.duration_secs.map(report_duration).unwrap_or_default()) }
                            td class={ "state-" (s.state.split(' ').next().unwrap_or("")) } { (s.state) }
                            td { (s.confirmed_by.clone().unwrap_or_default()) }
                            td { (step_notes(s)) }
                        }
                    }
                }
                h2 { "Confirmations and their evidence" }
                @if m.confirmations.is_empty() { p { "No confirmations were journaled." } }
                @for c in &m.confirmations {
                    p { code { (c.step) } " confirmed "
                        @if c.automatic { "automatically (rehearsal, for " (c.operator) ")" } @else { "by " (c.operator) "@" (c.host) }
                        " at " (timestamp(c.at)) }
                    @if !c.evidence.is_empty() { ul { @for e in &c.evidence { li { (e.label) ": " (e.value) } } } }
                }
                @if !m.interruptions.is_empty() {
                    h2 { "Interruptions and resumes" }
                    ul { @for i in &m.interruptions { li { (interruption_text(i, |s| s.to_string())) } } }
                }
                @for s in m.steps.iter().filter(|s| s.state == "failed" || s.state == "interrupted") {
                    h2 { "Failed: " code { (s.id) } }
                    p { (s.outcome.clone().unwrap_or_default()) }
                    @if !s.last_output.is_empty() { pre { (s.last_output.join("\n")) } }
                }
                @for (heading, kind) in [("Copy results", "copy"), ("Verification results", "verify"), ("AWS actions", "rds")] {
                    @let rs: Vec<_> = m.results.iter().filter(|r| r.kind == kind).collect();
                    @if !rs.is_empty() {
                        h2 { (heading) }
                        @for r in rs {
                            @let v = results::view(kind, &r.data);
                            h3 { code { (r.step) } " " small { (timestamp(r.at)) } }
                            @if let Some((ok, why)) = &v.verdict {
                                p class=(if *ok { "verdict ok" } else { "verdict bad" }) { strong { (if *ok { "PASSED" } else { "FAILED" }) } ": " (why) }
                            }
                            @if !v.lines.is_empty() { ul { @for l in &v.lines { li { (l) } } } }
                            @if let Some(t) = &v.table {
                                table {
                                    tr { @for h in &t.head { th { (h) } } }
                                    @for row in &t.rows { tr { @for (i, c) in row.iter().enumerate() { td class=[t.right.get(i).copied().unwrap_or(false).then_some("num")] { (c) } } } }
                                }
                            }
                            @for (title, items) in &v.lists { p { strong { (title) } } ul { @for it in items { li { (it) } } } }
                        }
                    }
                }
                @if !m.series.is_empty() {
                    h2 { "Monitors" }
                    @for s in &m.series {
                        h3 { (s.monitor) " (" (s.series) @if let Some(u) = &s.unit { ", " (u) } ")" }
                        @if let Some(c) = svg::line_chart(m, s) { (PreEscaped(c)) }
                    }
                }
                @if !m.notes.is_empty() {
                    h2 { "Notes and refusals" }
                    ul { @for n in &m.notes { li { (timestamp(n.at)) " " @if let Some(s) = &n.step { code { (s) } ": " } (n.text) } } }
                }
                hr;
                p { small { "Generated by " (m.generated_by) " from the journal alone." } }
            }
        }
    };
    page.into_string()
}
