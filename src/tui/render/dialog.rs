//! Dialogs drawn centred over the panes: confirm (what will run, the evidence
//! that will be journaled, `y` or the typed step id), skip (a reason), roll back
//! (and the point-of-no-return override), quit while steps run. The `/` prompt
//! lives on the message row instead; help has its own widget.

use super::{fmt, help, plain};
use crate::tui::app::App;
use crate::tui::describe;
use crate::tui::evidence;
use crate::tui::overlay::Overlay;
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Widget};

/// A rectangle of at most `w`×`h` centred in `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// Draw a bordered popup holding `lines` (cut to fit), centred in `area`.
pub fn popup(
    area: Rect,
    buf: &mut Buffer,
    title: String,
    st: Style,
    lines: Vec<Line<'static>>,
    w: u16,
) {
    let h = lines.len() as u16 + 2;
    let r = centered(area, w, h);
    Clear.render(r, buf);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Thick)
        .border_style(st)
        .title(Span::styled(title, st));
    let inner = block.inner(r);
    block.render(r, buf);
    super::put_lines(&lines, inner, buf);
}

fn wrapped(text: &str, w: usize, st: Style, indent: &str) -> Vec<Line<'static>> {
    fmt::wrap(text, w.saturating_sub(fmt::width(indent)).max(1))
        .into_iter()
        .map(|l| Line::styled(format!("{indent}{l}"), st))
        .collect()
}

/// An input field with a block cursor after the text.
fn input(label: &str, text: &str, w: usize, t: Theme) -> Line<'static> {
    let room = w.saturating_sub(fmt::width(label) + 1);
    Line::from(vec![
        Span::styled(label.to_string(), t.bold()),
        Span::raw(fmt::truncate_left(text, room)),
        Span::styled(" ", t.selected()),
    ])
}

/// Keep at most `n` lines of `v`, saying how many were left out.
fn cap(mut v: Vec<Line<'static>>, n: usize, t: Theme) -> Vec<Line<'static>> {
    if v.len() > n && n > 0 {
        let more = v.len() - n + 1;
        v.truncate(n - 1);
        v.push(Line::styled(format!("  … {more} more"), t.dim()));
    } else if n == 0 {
        v.clear();
    }
    v
}

fn step_head(app: &App, step: &str, w: usize) -> Vec<Line<'static>> {
    let t = app.theme;
    let mut out = Vec::new();
    if let Some(s) = app.step_snap(step) {
        out.push(Line::from(vec![
            Span::styled(s.state.glyph().to_string(), t.state(s.state)),
            Span::styled(format!(" {}", s.id), t.bold()),
            Span::raw(format!(
                "  {}",
                fmt::truncate(&s.title, w.saturating_sub(s.id.len() + 4))
            )),
        ]));
    }
    if let Some(d) = app.step_def(step) {
        out.push(plain(
            &format!(
                "{} · phase {} · {}",
                d.kind.name(),
                d.phase,
                describe::settings(d)
            ),
            w,
            t.dim(),
        ));
        if d.point_of_no_return {
            out.push(plain(
                "⚠ point of no return: this cannot be undone",
                w,
                t.bad(),
            ));
        }
    }
    out
}

fn confirm(app: &App, step: &str, typed: Option<&str>, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let dw = area.width.saturating_sub(4).clamp(20, 96);
    let w = dw.saturating_sub(2) as usize;
    let mut head = step_head(app, step, w);
    if app
        .step_def(step)
        .is_some_and(|d| d.confirm == ferry_core::runbook::ConfirmMode::TwoPerson)
    {
        head.push(plain(
            "two-person step: you propose it; a second operator, another OS user, approves it from `ferry attach --operate` before it runs",
            w,
            t.warn(),
        ));
    }
    let runs: Vec<Line> = app
        .step_def(step)
        .map(describe::runs)
        .unwrap_or_default()
        .iter()
        .flat_map(|l| wrapped(&app.redactor.redact(l), w, t.text(), "  "))
        .collect();
    let items = evidence::gather(&app.rb, &app.snap, app.now);
    let mut ev: Vec<Line> = items
        .iter()
        .flat_map(|e| {
            // row counts say "counted 4s ago" themselves
            let age = e
                .age_secs
                .filter(|_| !e.label.starts_with("row"))
                .map(|a| format!(" · {} old", fmt::dur(i64::try_from(a).unwrap_or(i64::MAX))))
                .unwrap_or_default();
            let (mark, st) = if e.stale {
                ("⚠ STALE ", t.bad())
            } else {
                ("", t.text())
            };
            wrapped(&format!("{mark}{}: {}{age}", e.label, e.value), w, st, "  ")
        })
        .collect();
    let stale = items.iter().filter(|e| e.stale).count();
    ev.push(plain(
        &format!(
            "  evidence sha256 {}",
            ferry_core::vocab::evidence_sha256(&items)
        ),
        w,
        t.dim(),
    ));
    let mut prompt = Vec::new();
    if stale > 0 {
        prompt.push(plain(
            &if app.confirm_ack {
                format!("[x] {stale} stale item(s) acknowledged: journaled with the confirmation · Tab undoes")
            } else {
                format!("[ ] {stale} stale item(s): Tab acknowledges confirming over them (journaled)")
            },
            w,
            if app.confirm_ack { t.warn() } else { t.bad() },
        ));
    }
    prompt.extend(match typed {
        None => vec![Line::from(vec![
            Span::styled("y", t.bold()),
            Span::raw(" confirm · "),
            Span::styled("n", t.bold()),
            Span::raw(" / "),
            Span::styled("Esc", t.bold()),
            Span::raw(" cancel"),
        ])],
        Some(x) => vec![
            input(&format!("type `{step}` to confirm: "), x, w, t),
            plain("Enter confirm · Esc cancel", w, t.dim()),
        ],
    });
    let fixed = head.len() + prompt.len() + 4;
    let room = (area.height as usize).saturating_sub(fixed + 2);
    let runs_n = runs.len().min((room / 2).max(1));
    let ev_n = room.saturating_sub(runs_n);
    let mut lines = head;
    lines.push(Line::default());
    lines.push(Line::styled("will run:", t.dim()));
    lines.extend(cap(runs, runs_n, t));
    lines.push(Line::styled(
        "evidence journaled with this confirmation:",
        t.dim(),
    ));
    lines.extend(cap(ev, ev_n, t));
    lines.push(Line::default());
    lines.extend(prompt);
    let title = if app.attached() {
        format!(" Confirm `{step}` as {} ", app.me())
    } else {
        format!(" Confirm `{step}` ")
    };
    popup(area, buf, title, t.awaiting(), lines, dw);
}

/// A two-person step's proposal: who proposed it, the evidence on their screen
/// and its hash; `y` approves it (or, for one's own, withdraws it).
fn approve(app: &App, step: &str, own: bool, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let dw = area.width.saturating_sub(4).clamp(20, 96);
    let w = dw.saturating_sub(2) as usize;
    let Some(p) = app.step_snap(step).and_then(|s| s.proposal.as_ref()) else {
        return;
    };
    let mut lines = step_head(app, step, w);
    lines.push(plain(&format!("proposed by {}", p.by.at()), w, t.warn()));
    lines.push(Line::default());
    lines.push(Line::styled(
        "the evidence on the proposer's screen:",
        t.dim(),
    ));
    // marked as the proposer's dialog marked it: stale, and that they acknowledged it
    let ev: Vec<Line> = p
        .evidence
        .iter()
        .flat_map(|e| {
            let (mark, st) = match (e.stale, e.acknowledged) {
                (true, true) => ("⚠ STALE (acknowledged by the proposer) ", t.bad()),
                (true, false) => ("⚠ STALE ", t.bad()),
                _ => ("", t.text()),
            };
            wrapped(&format!("{mark}{}: {}", e.label, e.value), w, st, "  ")
        })
        .collect();
    let room = (area.height as usize).saturating_sub(lines.len() + 7);
    lines.extend(cap(ev, room.max(1), t));
    lines.push(plain(
        &format!("  evidence sha256 {}", p.evidence_sha256),
        w,
        t.bold(),
    ));
    lines.push(Line::default());
    let (what, title) = if own {
        (
            " withdraw your proposal · ",
            format!(" Withdraw your proposal of `{step}` "),
        )
    } else {
        (
            " approve: it runs now · ",
            format!(" Approve `{step}` as {} ", app.me()),
        )
    };
    lines.push(Line::from(vec![
        Span::styled("y", t.bold()),
        Span::raw(what),
        Span::styled("n", t.bold()),
        Span::raw(" / "),
        Span::styled("Esc", t.bold()),
        Span::raw(" cancel"),
    ]));
    popup(area, buf, title, t.awaiting(), lines, dw);
}

/// Draw the open dialog `ov` over `area`.
pub fn render(app: &App, ov: &Overlay, area: Rect, buf: &mut Buffer) {
    match ov {
        Overlay::Jump { .. } => {}
        Overlay::Help => help::render(app, area, buf),
        Overlay::Confirm { step, typed } => confirm(app, step, typed.as_deref(), area, buf),
        Overlay::Approve { step, .. } => approve(app, step, false, area, buf),
        Overlay::Withdraw { step, .. } => approve(app, step, true, area, buf),
        Overlay::Skip { step, reason } => skip(app, step, reason, area, buf),
        Overlay::Rollback { step } => rollback(app, step, area, buf),
        Overlay::Override {
            step,
            refusal,
            typed,
        } => override_point_of_no_return(app, step, refusal, typed, area, buf),
        Overlay::Leave => leave(app, area, buf),
        Overlay::Quit { running } => quit(app, running, area, buf),
    }
}

/// The width of a small dialog over `area`, and the text width inside it.
fn small(area: Rect) -> (u16, usize) {
    let dw = area.width.saturating_sub(4).clamp(20, 80);
    (dw, dw.saturating_sub(2) as usize)
}

fn skip(app: &App, step: &str, reason: &str, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let (dw, w) = small(area);
    let mut lines = step_head(app, step, w);
    lines.push(Line::default());
    lines.extend(wrapped(
        "The reason is journaled with the skip; steps that depend on this one go on.",
        w,
        t.dim(),
        "",
    ));
    lines.push(input("reason: ", reason, w, t));
    lines.push(plain("Enter skip · Esc cancel", w, t.dim()));
    popup(area, buf, format!(" Skip `{step}` "), t.warn(), lines, dw);
}

fn rollback(app: &App, step: &str, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let (dw, w) = small(area);
    let mut lines = step_head(app, step, w);
    lines.push(Line::default());
    lines.push(Line::styled("rolling back runs:", t.dim()));
    let what = app
        .step_def(step)
        .and_then(describe::rollback)
        .unwrap_or_default();
    for l in what.iter().take(8) {
        lines.extend(wrapped(&app.redactor.redact(l), w, t.text(), "  "));
    }
    lines.push(Line::default());
    lines.push(plain("y roll back · n / Esc cancel", w, t.bold()));
    popup(
        area,
        buf,
        format!(" Roll back `{step}` "),
        t.warn(),
        lines,
        dw,
    );
}

fn override_point_of_no_return(
    app: &App,
    step: &str,
    refusal: &str,
    typed: &str,
    area: Rect,
    buf: &mut Buffer,
) {
    let t = app.theme;
    let (dw, w) = small(area);
    let mut lines = vec![Line::styled("the engine refused:", t.dim())];
    lines.extend(wrapped(refusal, w, t.bad(), "  "));
    lines.push(Line::default());
    lines.push(plain(
        &format!("To roll back `{step}` anyway, type its id:"),
        w,
        t.bold(),
    ));
    lines.push(input("", typed, w, t));
    lines.push(plain("Enter roll back anyway · Esc cancel", w, t.dim()));
    popup(area, buf, " Point of no return ".into(), t.bad(), lines, dw);
}

fn leave(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let (dw, w) = small(area);
    let mut lines = wrapped(
        &format!(
            "The run goes on in {}'s console: leaving this one stops nothing. Attach again any time.",
            app.snap.operator
        ),
        w,
        t.text(),
        "",
    );
    lines.push(Line::default());
    lines.push(plain("y leave · n / Esc stay", w, t.bold()));
    popup(
        area,
        buf,
        " Leave this attached console? ".into(),
        t.active(),
        lines,
        dw,
    );
}

fn quit(app: &App, running: &[String], area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let (dw, w) = small(area);
    let mut lines = quit_running(running, w, t);
    if !app.snap.attached.is_empty() {
        let who: Vec<&str> = app
            .snap
            .attached
            .iter()
            .map(|a| a.operator.as_str())
            .collect();
        lines.extend(wrapped(
            &format!(
                "Attached: {}. Quitting this console stops the run for them too.",
                who.join(", ")
            ),
            w,
            t.warn(),
            "",
        ));
    }
    match &app.resume {
        Some(Err(why)) => lines.extend(wrapped(why, w, t.dim(), "")),
        other => {
            let cmd = match other {
                Some(Ok(c)) => c.clone(),
                _ => format!("ferry run {} --resume", crate::quote::path(&app.rb.path)),
            };
            lines.push(Line::styled("Resume later with:", t.dim()));
            lines.extend(wrapped(&cmd, w, t.bold(), "  "));
        }
    }
    lines.push(Line::default());
    lines.push(plain("y quit · n / Esc stay", w, t.bold()));
    popup(
        area,
        buf,
        if running.is_empty() {
            " Quit the run? ".into()
        } else {
            " Quit while steps run? ".into()
        },
        t.warn(),
        lines,
        dw,
    );
}

/// What quitting does to the running steps (nothing when none runs).
fn quit_running(running: &[String], w: usize, t: Theme) -> Vec<Line<'static>> {
    if running.is_empty() {
        return Vec::new();
    }
    let list = running
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let (are, them) = if running.len() == 1 {
        ("1 step is".to_string(), "it")
    } else {
        (format!("{} steps are", running.len()), "them")
    };
    wrapped(
        &format!(
            "{are} running: {list}. Quitting stops {them} and journals {them} as interrupted."
        ),
        w,
        t.text(),
        "",
    )
}
