//! The step detail pane: the selected step's kind, title and settings, exactly
//! what it runs, its notes, its outcome, a progress bar (rows/s, ETA) and the
//! tail of its live output (PgUp/PgDn scroll back). With a phase selected, the
//! phase's notes and a count of its steps by state.

use super::{fmt, pane_block, plain, put_lines, two_sided};
use crate::tui::app::{App, Sel};
use crate::tui::describe;
use crate::tui::theme::Theme;
use ferry_core::engine::snapshot::StepSnap;
use ferry_core::vocab::Progress;
use ferry_core::vocab::StepState;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

pub struct DetailPane<'a> {
    app: &'a App,
    focused: bool,
}

impl<'a> DetailPane<'a> {
    pub fn new(app: &'a App, focused: bool) -> Self {
        DetailPane { app, focused }
    }
}

/// The progress bar and its figures: `████░░░ 62%  1.2M rows/s  ETA 00:41 rehearsed rates`
/// (the ETA's basis dimmed beside it).
pub fn progress_lines(p: &Progress, w: usize, t: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let mut spans: Vec<Span<'static>> = Vec::new();
    let rate = p.rate.map(|r| format!("  {} {}/s", fmt::si(r), p.unit));
    let eta = p.eta_secs.map(|e| format!("  ETA {}", fmt::clock(e)));
    // the ETA's basis, beside it when the width leaves room for all of it
    let basis = p
        .eta_secs
        .and(p.eta_basis)
        .map(|b| Span::styled(format!(" {b}"), t.dim()));
    let fits = |spans: &[Span<'static>], s: &Span<'static>| {
        spans.iter().map(|s| s.width()).sum::<usize>() + s.width() <= w
    };
    match p.total.filter(|t| *t > 0) {
        Some(total) => {
            let f = (p.done as f64 / total as f64).clamp(0.0, 1.0);
            let bar_w = (w / 3).clamp(10, 40);
            let filled = (f * bar_w as f64).round() as usize;
            spans.push(Span::styled("█".repeat(filled), t.active()));
            spans.push(Span::styled("░".repeat(bar_w - filled), t.dim()));
            spans.push(Span::styled(format!(" {:.0}%", f * 100.0), t.bold()));
            spans.extend(rate.map(Span::raw));
            spans.extend(eta.map(Span::raw));
            spans.extend(basis.filter(|b| fits(&spans, b)));
            let of = format!(
                "  {}/{} {}",
                fmt::si(p.done as f64),
                fmt::si(total as f64),
                p.unit
            );
            let used: usize = spans.iter().map(|s| s.width()).sum();
            if used + fmt::width(&of) <= w {
                spans.push(Span::styled(of, t.dim()));
            }
        }
        None => {
            spans.push(Span::styled(
                format!("{} {}", fmt::thousands(p.done as i64), p.unit),
                t.bold(),
            ));
            spans.extend(rate.map(Span::raw));
            spans.extend(eta.map(Span::raw));
            spans.extend(basis.filter(|b| fits(&spans, b)));
        }
    }
    out.push(Line::from(spans));
    if let Some(n) = &p.note {
        out.push(plain(n, w, t.warn()));
    }
    if let Some(c) = &p.catch_up {
        let applied = c.applied_lsn.as_deref().unwrap_or("nothing yet");
        out.push(plain(
            &format!(
                "primary at {} when the wait began · applied {applied}",
                c.primary_lsn
            ),
            w,
            t.dim(),
        ));
    }
    if !p.items.is_empty() {
        let mut spans = Vec::new();
        for it in &p.items {
            let (mark, st) = match it.state.as_str() {
                "done" => ("✔".to_string(), t.ok()),
                "failed" => ("✘".to_string(), t.bad()),
                "running" => match it.total.filter(|x| *x > 0) {
                    Some(tot) => (
                        format!("▶ {:.0}%", it.done as f64 * 100.0 / tot as f64),
                        t.active(),
                    ),
                    None => ("▶".to_string(), t.active()),
                },
                "pending" => ("…".to_string(), t.dim()),
                other => (other.to_string(), t.dim()),
            };
            spans.push(Span::raw(format!("{} ", it.name)));
            spans.push(Span::styled(mark, st));
            spans.push(Span::raw("   "));
        }
        out.push(Line::from(spans));
    }
    out
}

fn wrapped(lines: &[String], w: usize, st: Style, indent: &str) -> Vec<Line<'static>> {
    lines
        .iter()
        .flat_map(|l| fmt::wrap(l, w.saturating_sub(indent.len()).max(1)))
        .map(|l| Line::styled(format!("{indent}{l}"), st))
        .collect()
}

/// Keep at most `n` lines, the last one saying how many were left out.
fn capped(mut v: Vec<Line<'static>>, n: usize, t: Theme) -> Vec<Line<'static>> {
    if v.len() > n {
        let more = v.len() - n + 1;
        v.truncate(n.saturating_sub(1));
        if n > 0 {
            v.push(Line::styled(format!("  … {more} more lines"), t.dim()));
        }
    }
    v
}

/// The selected step: its head, what it runs, its rollback and notes (cut to
/// the room there is), its outcome and progress, then its output's tail.
fn step_view(app: &App, s: &StepSnap, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let w = area.width as usize;
    let h = area.height as usize;
    let head = step_head(app, s, w);
    let (runs, rollback, notes) = step_body(app, s, w);
    let tail = step_tail(app, s, w);

    let out_header = !s.output.is_empty() || s.state == StepState::Running;
    let fixed = head.len() + tail.len() + usize::from(out_header);
    let min_out = s.output.len().min(5);
    let avail = h.saturating_sub(fixed + min_out);
    let runs_n = runs.len().min((avail * 2 / 3).max(2));
    let runs = capped(runs, runs_n, t);
    let rest = avail.saturating_sub(runs.len());
    let rollback: Vec<Line> = rollback.into_iter().take(rest).collect();
    let rest = rest.saturating_sub(rollback.len());
    let notes = capped(notes, rest, t);

    let mut lines = head;
    lines.extend(runs);
    lines.extend(rollback);
    lines.extend(notes);
    lines.extend(tail);
    let used = lines.len().min(h);
    put_lines(&lines, area, buf);
    if !out_header || used >= h {
        return;
    }
    output_tail(app, s, area, used, buf);
}

/// The step's state and id, its kind and settings, and who confirmed it and when it started.
fn step_head(app: &App, s: &StepSnap, w: usize) -> Vec<Line<'static>> {
    let t = app.theme;
    let def = app.step_def(&s.id);
    let mut left = vec![
        (s.state.glyph().to_string(), t.state(s.state)),
        (format!(" {}", s.id), t.bold()),
    ];
    if s.title != s.id {
        left.push((format!("  {}", s.title), t.text()));
    }
    let mut head = vec![two_sided(
        left,
        vec![(
            if s.attempt > 1 {
                format!("{} · attempt {}", s.state.name(), s.attempt)
            } else {
                s.state.name().to_string()
            },
            t.state(s.state),
        )],
        w,
        w / 2,
    )];
    let mut meta = format!("{} · phase {}", s.kind, s.phase);
    if let Some(d) = def {
        meta.push_str(&format!(" · {}", describe::settings(d)));
    }
    head.push(plain(&meta, w, t.dim()));
    let mut flags: Vec<(String, Style)> = Vec::new();
    if s.point_of_no_return {
        flags.push(("⚠ point of no return  ".into(), t.warn()));
    }
    if let Some(of) = app.rollback_of.get(&s.id) {
        flags.push((format!("rollback of {}  ", of.join(", ")), t.dim()));
    }
    if let Some(by) = &s.confirmed_by {
        let who = if s.automatic {
            format!("confirmed automatically for {by}  ")
        } else {
            format!("confirmed by {by}  ")
        };
        flags.push((who, t.bold()));
    }
    if let Some(st) = s.started {
        flags.push((format!("started {} UTC  ", st.format("%H:%M:%S")), t.dim()));
    }
    if !flags.is_empty() {
        head.push(Line::from(
            super::cut(flags, w)
                .into_iter()
                .map(|(a, b)| Span::styled(a, b))
                .collect::<Vec<_>>(),
        ));
    }
    head
}

/// Lines of what the step runs, of its rollback, and of its notes (each uncut).
type Body = (Vec<Line<'static>>, Vec<Line<'static>>, Vec<Line<'static>>);

/// What the step runs, its rollback and its notes, from the runbook, redacted.
fn step_body(app: &App, s: &StepSnap, w: usize) -> Body {
    let t = app.theme;
    let runs_label = if matches!(
        s.state,
        StepState::Pending | StepState::Ready | StepState::AwaitingConfirmation
    ) {
        "will run:"
    } else {
        "runs:"
    };
    let mut runs = vec![Line::styled(runs_label, t.dim())];
    let mut rollback = Vec::new();
    let mut notes = Vec::new();
    if let Some(d) = app.step_def(&s.id) {
        let desc: Vec<String> = describe::runs(d)
            .iter()
            .map(|l| app.redactor.redact(l))
            .collect();
        runs.extend(wrapped(&desc, w, t.text(), "  "));
        if let Some(rb) = describe::rollback(d) {
            rollback.push(plain(
                &app.redactor
                    .redact(&format!("rollback: {}", rb.join(" ⏎ "))),
                w,
                t.dim(),
            ));
        }
        if let Some(n) = &d.notes {
            notes.push(Line::styled("notes:", t.dim()));
            notes.extend(wrapped(std::slice::from_ref(n), w, t.text(), "  "));
        }
    }
    (runs, rollback, notes)
}

/// The step's outcome, skip reason and progress.
fn step_tail(app: &App, s: &StepSnap, w: usize) -> Vec<Line<'static>> {
    let t = app.theme;
    let mut tail = Vec::new();
    if let Some(o) = &s.outcome_text() {
        let (mark, st) = match s.state {
            StepState::Failed | StepState::Interrupted => ("✘ ", t.bad()),
            StepState::Succeeded | StepState::RolledBack => ("✔ ", t.ok()),
            _ => ("· ", t.dim()),
        };
        tail.extend(
            wrapped(&[format!("{mark}{}", app.redactor.redact(o))], w, st, "")
                .into_iter()
                .take(3),
        );
    }
    if let Some(r) = &s.skip_reason {
        tail.push(plain(&format!("⤼ skipped: {r}"), w, t.warn()));
    }
    if let Some(p) = &s.progress {
        tail.extend(progress_lines(p, w, t));
    }
    tail
}

/// The output header and as many output lines as fit below the first `used` rows,
/// scrolled back by the app's `out_scroll`.
fn output_tail(app: &App, s: &StepSnap, area: Rect, used: usize, buf: &mut Buffer) {
    let t = app.theme;
    let w = area.width as usize;
    let out_h = area.height as usize - used - 1;
    let len = s.output.len();
    let back = app.out_scroll.min(len.saturating_sub(out_h));
    let end = len - back;
    let start = end.saturating_sub(out_h);
    let lines_word = if len == 1 { "line" } else { "lines" };
    let label = if back > 0 {
        format!("── output · {end} of {len} {lines_word} · ↑{back} (PgDn) ")
    } else {
        format!("── output · {len} {lines_word} ")
    };
    let header_area = Rect::new(area.x, area.y + used as u16, area.width, 1);
    let fill = "─".repeat(w.saturating_sub(fmt::width(&label)));
    plain(&format!("{label}{fill}"), w, t.dim()).render(header_area, buf);
    let out_lines: Vec<Line> = s
        .output
        .range(start..end)
        .map(|l| plain(l, w, t.text()))
        .collect();
    let out_area = Rect::new(area.x, header_area.y + 1, area.width, out_h as u16);
    put_lines(&out_lines, out_area, buf);
}

fn phase_view(app: &App, pi: usize, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let w = area.width as usize;
    let Some(p) = app.rb.phases.get(pi) else {
        return;
    };
    let mut lines = vec![plain(
        &format!("phase {}  {}", p.id, p.title.as_deref().unwrap_or("")),
        w,
        t.bold(),
    )];
    let mut counts: Vec<(StepState, usize)> = Vec::new();
    for s in p.steps.iter().filter_map(|s| app.step_snap(&s.id)) {
        match counts.iter_mut().find(|(st, _)| *st == s.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((s.state, 1)),
        }
    }
    let summary: Vec<String> = counts
        .iter()
        .map(|(st, n)| format!("{} {n} {}", st.glyph(), st.name()))
        .collect();
    lines.push(plain(
        &format!("{} steps: {}", p.steps.len(), summary.join(" · ")),
        w,
        t.dim(),
    ));
    if let Some(n) = &p.notes {
        lines.extend(wrapped(std::slice::from_ref(n), w, t.text(), ""));
    }
    lines.push(plain("Enter folds or unfolds the phase", w, t.dim()));
    put_lines(&lines, area, buf);
}

impl Widget for &DetailPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let title = match &app.selected {
            Sel::Step(id) => format!(" Step detail · {id} "),
            Sel::Phase(_) => " Phase ".to_string(),
        };
        let block = pane_block(title, self.focused, app.theme);
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.width == 0 || inner.height == 0 {
            return;
        }
        match &app.selected {
            Sel::Step(id) => match app.step_snap(id) {
                Some(s) => step_view(app, s, inner, buf),
                None => plain(
                    &format!("no step `{id}`"),
                    inner.width as usize,
                    app.theme.dim(),
                )
                .render(inner, buf),
            },
            Sel::Phase(pi) => phase_view(app, *pi, inner, buf),
        }
    }
}
