//! The Markdown report: what the review meeting reads first.

use super::model::{Interruption, ReportModel, StepReport};
use super::results;
use crate::units::{report_duration, timestamp};
use std::fmt::Write as _;

/// Escape text for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(m: &ReportModel) -> String {
    let mut o = String::new();
    let title = if m.runbook.title.is_empty() {
        &m.runbook.name
    } else {
        &m.runbook.title
    };
    let _ = writeln!(o, "# Cutover report: {title}\n");
    if m.journal.chain_ok {
        let _ = writeln!(
            o,
            "> **Journal integrity: verified.** {}, hash chain intact{}.\n",
            lines(m.journal.lines),
            m.journal
                .torn_line
                .map(|l| format!(" (line {l} was cut short by a crash and is ignored)"))
                .unwrap_or_default()
        );
    } else {
        let _ = writeln!(
            o,
            "> ⚠ **JOURNAL CHAIN BROKEN AT LINE {}** — {}. Lines from {} on are **not verified**: this journal was edited or corrupted after it was written, and what follows may not be what happened.\n",
            m.journal.broken_line.unwrap_or(0),
            m.journal.problem.as_deref().unwrap_or("unknown problem"),
            m.journal.broken_line.unwrap_or(0)
        );
    }
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(
        o,
        "| Runbook | `{}` ({}) |",
        m.runbook.name,
        cell(&m.runbook.path)
    );
    let _ = writeln!(o, "| Outcome | **{}** |", m.run.outcome);
    let _ = writeln!(
        o,
        "| Started | {} |",
        m.run.started.map(timestamp).unwrap_or_else(|| "—".into())
    );
    let _ = writeln!(
        o,
        "| Ended | {} |",
        m.run.ended.map(timestamp).unwrap_or_else(|| "—".into())
    );
    let _ = writeln!(
        o,
        "| Duration | {}{} |",
        m.run
            .duration_secs
            .map(report_duration)
            .unwrap_or_else(|| "—".into()),
        down_note(m)
    );
    match &m.window {
        Some(w) => {
            let verdict = match w.overrun_secs {
                Some(s) if s > 0 => format!("**overran by {}**", report_duration(s as f64)),
                Some(s) => format!(
                    "ended {} before the window closed",
                    report_duration(-s as f64)
                ),
                None => "—".into(),
            };
            let _ = writeln!(
                o,
                "| Window | planned {} → {} ({}); {} |",
                timestamp(w.planned_start),
                timestamp(w.planned_end),
                report_duration(w.planned_secs as f64),
                verdict
            );
        }
        None => {
            let _ = writeln!(o, "| Window | none planned |");
        }
    }
    let _ = writeln!(o, "| Operators | {} |", m.run.operators.join(", "));
    let _ = writeln!(o, "| Journal | `{}` |", cell(&m.journal.path));
    let _ = writeln!(o, "| Runbook SHA-256 | `{}` |", m.runbook.sha256);
    if let (Some(h), Some(l)) = (&m.journal.head, m.journal.head_line) {
        let _ = writeln!(
            o,
            "| Journal head | `{h}` (line {l}; keep it with the change ticket: any later edit of the journal changes it) |"
        );
    }
    let _ = writeln!(o);

    let _ = writeln!(o, "## Timeline\n");
    let _ = writeln!(
        o,
        "| # | Phase | Step | Kind | Start | End | Duration | State | Confirmed by | Notes |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
    for (n, s) in m.steps.iter().enumerate() {
        if s.rollback_only && s.state == "not run" {
            continue;
        }
        let _ = writeln!(
            o,
            "| {} | {} | `{}` {} | {} | {} | {} | {} | {} | {} | {} |",
            n + 1,
            cell(&s.phase),
            s.id,
            cell(&s.title),
            s.kind,
            s.started.map(timestamp).unwrap_or_else(|| "—".into()),
            s.ended.map(timestamp).unwrap_or_else(|| "—".into()),
            s.duration_secs
                .map(report_duration)
                .unwrap_or_else(|| "—".into()),
            s.state,
            s.confirmed_by.as_deref().unwrap_or("—"),
            cell(&step_notes(s))
        );
    }
    let _ = writeln!(o);

    let _ = writeln!(o, "## Points of no return\n");
    if m.points_of_no_return.is_empty() {
        let _ = writeln!(o, "None in this runbook.\n");
    }
    for p in &m.points_of_no_return {
        match p.passed_at {
            Some(t) => {
                let _ = writeln!(
                    o,
                    "- `{}` passed at {} (confirmed by {})",
                    p.step,
                    timestamp(t),
                    p.confirmed_by.as_deref().unwrap_or("—")
                );
            }
            None => {
                let _ = writeln!(o, "- `{}` not passed", p.step);
            }
        }
    }
    if !m.points_of_no_return.is_empty() {
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "## Confirmations and their evidence\n");
    if m.confirmations.is_empty() {
        let _ = writeln!(o, "No confirmations were journaled.\n");
    }
    for c in &m.confirmations {
        let who = if c.automatic {
            format!("automatically (rehearsal, for {})", c.operator)
        } else {
            format!("by {}@{}", c.operator, c.host)
        };
        let _ = writeln!(o, "- `{}` confirmed {} at {}", c.step, who, timestamp(c.at));
        if c.evidence.is_empty() {
            let _ = writeln!(o, "  - evidence: none shown");
        }
        for e in &c.evidence {
            let _ = writeln!(o, "  - {}: {}", e.label, e.value);
        }
    }
    if !m.confirmations.is_empty() {
        let _ = writeln!(o);
    }

    if !m.interruptions.is_empty() {
        let _ = writeln!(o, "## Interruptions and resumes\n");
        for i in &m.interruptions {
            let _ = writeln!(o, "- {}", interruption_text(i, |s| format!("`{s}`")));
        }
        let _ = writeln!(o);
    }

    let failed: Vec<&StepReport> = m
        .steps
        .iter()
        .filter(|s| s.state == "failed" || s.state == "interrupted")
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(o, "## Failed and interrupted steps\n");
        for s in failed {
            let _ = writeln!(
                o,
                "### `{}` — {}\n",
                s.id,
                s.outcome.as_deref().unwrap_or(&s.state)
            );
            if s.last_output.is_empty() {
                let _ = writeln!(o, "No output.\n");
            } else {
                let _ = writeln!(o, "Last output lines:\n\n```text");
                for l in &s.last_output {
                    let _ = writeln!(o, "{}", l.replace("```", "'''"));
                }
                let _ = writeln!(o, "```\n");
            }
        }
    }

    for (heading, kind) in [
        ("Copy results", "copy"),
        ("Verification results", "verify"),
        ("AWS actions", "rds"),
    ] {
        let rs: Vec<_> = m.results.iter().filter(|r| r.kind == kind).collect();
        if rs.is_empty() {
            continue;
        }
        let _ = writeln!(o, "## {heading}\n");
        for r in rs {
            let _ = writeln!(o, "### `{}` ({})\n", r.step, timestamp(r.at));
            let v = results::view(kind, &r.data);
            if let Some((ok, why)) = &v.verdict {
                let _ = writeln!(
                    o,
                    "**{}**: {}\n",
                    if *ok { "PASSED" } else { "FAILED" },
                    cell(why)
                );
            }
            for l in &v.lines {
                let _ = writeln!(o, "- {}", cell(l));
            }
            if !v.lines.is_empty() {
                let _ = writeln!(o);
            }
            if let Some(t) = &v.table {
                let _ = writeln!(o, "| {} |", t.head.join(" | "));
                let align: Vec<&str> = t
                    .right
                    .iter()
                    .map(|r| if *r { "---:" } else { "---" })
                    .collect();
                let _ = writeln!(o, "|{}|", align.join("|"));
                for row in &t.rows {
                    let _ = writeln!(
                        o,
                        "| {} |",
                        row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
                    );
                }
                let _ = writeln!(o);
            }
            for (title, items) in &v.lists {
                let _ = writeln!(o, "{title}:\n");
                for it in items {
                    let _ = writeln!(o, "- {}", cell(it));
                }
                let _ = writeln!(o);
            }
        }
    }

    if !m.series.is_empty() {
        let _ = writeln!(o, "## Monitors\n");
        let _ = writeln!(
            o,
            "| Monitor | Series | Samples | Min | Max | Last | Warn | Max allowed |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
        for s in &m.series {
            let vals: Vec<f64> = s.points.iter().map(|p| p.1).collect();
            let min = vals.iter().cloned().fold(f64::INFINITY, f64::min);
            let max = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let f = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "—".into());
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                s.monitor,
                s.series,
                vals.len(),
                f(vals.first().map(|_| min)),
                f(vals.first().map(|_| max)),
                f(vals.last().copied()),
                f(s.warn),
                f(s.max)
            );
        }
        let _ = writeln!(o);
    }

    if !m.notes.is_empty() {
        let _ = writeln!(o, "## Notes and refusals\n");
        for n in &m.notes {
            let _ = writeln!(
                o,
                "- {} {}{}",
                timestamp(n.at),
                n.step
                    .as_ref()
                    .map(|s| format!("`{s}`: "))
                    .unwrap_or_default(),
                n.text
            );
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(
        o,
        "---\nGenerated by {} from the journal alone.",
        m.generated_by
    );
    o
}

/// "1 line", "65 lines".
pub fn lines(n: usize) -> String {
    format!("{n} line{}", if n == 1 { "" } else { "s" })
}

/// What the run's duration holds besides work: time with no ferry running.
pub fn down_note(m: &ReportModel) -> String {
    if m.run.down_secs > 0.0 {
        format!(
            " ({} of it with no ferry running, between a stop and its resume)",
            report_duration(m.run.down_secs)
        )
    } else {
        String::new()
    }
}

/// One interruption in a sentence; `code` marks up a step id.
pub fn interruption_text(i: &Interruption, code: impl Fn(&str) -> String) -> String {
    let running = match i.steps.len() {
        0 => "no step was running".to_string(),
        n => format!(
            "{} {} running",
            i.steps
                .iter()
                .map(|s| code(s))
                .collect::<Vec<_>>()
                .join(", "),
            if n == 1 { "was" } else { "were" }
        ),
    };
    let stopped = match i.stopped_at {
        Some(t) => format!(
            "the previous process stopped after {} while {running}",
            timestamp(t)
        ),
        None => format!("the previous process stopped while {running}"),
    };
    let down = i
        .down_secs
        .map(|d| format!("; nothing ran for {}", report_duration(d)))
        .unwrap_or_default();
    format!(
        "{}: resumed by {}; {stopped}{down}",
        timestamp(i.at),
        i.resumed_by.as_deref().unwrap_or("—")
    )
}

pub fn step_notes(s: &StepReport) -> String {
    let mut n = Vec::new();
    if s.point_of_no_return {
        n.push("point of no return".to_string());
    }
    if s.attempts > 1 {
        n.push(format!("{} attempts", s.attempts));
    }
    if s.interrupted > 0 {
        n.push(format!("interrupted {}×", s.interrupted));
    }
    if let Some(r) = &s.skip_reason {
        match s.skipped_at {
            Some(t) => n.push(format!("skipped at {}: {r}", t.format("%H:%M:%S"))),
            None => n.push(format!("skipped: {r}")),
        }
    }
    if let Some(r) = &s.rollback {
        n.push(format!("rollback {r}"));
    }
    if s.state == "failed" {
        if let Some(o) = &s.outcome {
            n.push(o.clone());
        }
    }
    n.join("; ")
}
