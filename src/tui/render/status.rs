//! The two bottom rows. The message row shows the `/` prompt, a transient
//! message (refusals from the engine, confirmations sent) or the run's state;
//! the status bar shows the UTC clock, the maintenance window (remaining or
//! overrun), the operator, the journal path and key hints.

use super::{cut, fmt, plain};
use crate::tui::app::{App, Role};
use crate::tui::overlay::Overlay;
use ferry_core::vocab::{RunStatus, StepState};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

pub struct MessageRow<'a> {
    app: &'a App,
}

impl<'a> MessageRow<'a> {
    pub fn new(app: &'a App) -> Self {
        MessageRow { app }
    }
}

pub struct StatusBar<'a> {
    app: &'a App,
}

impl<'a> StatusBar<'a> {
    pub fn new(app: &'a App) -> Self {
        StatusBar { app }
    }
}

fn ids(v: &[&str]) -> String {
    v.iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The run's state in one line, with the keys that move it on.
pub fn run_state(app: &App) -> (String, Style) {
    let t = app.theme;
    if app.stopping {
        return (
            "stopping: running steps are being stopped and journaled as interrupted…".into(),
            t.warn(),
        );
    }
    let of = |st: StepState| -> Vec<&str> {
        app.snap
            .steps
            .iter()
            .filter(|s| s.state == st)
            .map(|s| s.id.as_str())
            .collect()
    };
    match &app.snap.status {
        RunStatus::Finished { ok: true } => (
            "✔ run finished: every step succeeded · q quits".into(),
            t.ok(),
        ),
        RunStatus::Finished { ok: false } => {
            ("✘ run finished with failures · q quits".into(), t.bad())
        }
        RunStatus::Aborted => ("■ run aborted · q quits".into(), t.bad()),
        _ if app.engine_gone => match &app.detached {
            Some(how) => (format!("{how} · q leaves"), t.warn()),
            None => ("the engine has stopped · q quits".into(), t.warn()),
        },
        RunStatus::Halted { step } => (
            format!("✘ halted: `{step}` failed · r retry · s skip · b roll back"),
            t.bad(),
        ),
        RunStatus::Active => {
            let running = of(StepState::Running);
            let back = of(StepState::RollingBack);
            if !back.is_empty() {
                (format!("↶ rolling back: {}", ids(&back)), t.active())
            } else {
                (format!("▶ running: {}", ids(&running)), t.active())
            }
        }
        RunStatus::Waiting { .. } => {
            let awaiting = of(StepState::AwaitingConfirmation);
            let interrupted = of(StepState::Interrupted);
            let proposed: Vec<_> = app
                .snap
                .steps
                .iter()
                .filter_map(|s| Some((s.id.as_str(), s.proposal.as_ref()?)))
                .collect();
            if let Some((id, p)) = proposed.first() {
                // nothing is confirmed yet: every console says it waits for a second person,
                // and only a console that may act is offered the key
                let text = if app.is_me(&p.by) {
                    format!("? `{id}` proposed by you: awaiting a second operator's approval · c withdraws")
                } else {
                    format!(
                        "? `{id}` proposed by {}: awaiting a second operator's approval · {} · evidence {}",
                        p.by.who(),
                        if app.may_act() {
                            "c approve"
                        } else if app.observer() {
                            "you observe"
                        } else {
                            "read-only"
                        },
                        ferry_core::vocab::short(&p.evidence_sha256)
                    )
                };
                (text, t.awaiting())
            } else if !awaiting.is_empty() && !app.may_act() {
                (
                    format!("? awaiting confirmation: {}", ids(&awaiting)),
                    t.awaiting(),
                )
            } else if !awaiting.is_empty() {
                (
                    format!("? awaiting you: {} · c confirm · s skip", ids(&awaiting)),
                    t.awaiting(),
                )
            } else if !interrupted.is_empty() {
                (
                    format!("! interrupted: {} · r retry · s skip", ids(&interrupted)),
                    t.warn(),
                )
            } else {
                let mut stuck = of(StepState::Failed);
                stuck.extend(of(StepState::RolledBack));
                (
                    format!("waiting: blocked behind {} · r retry · s skip", ids(&stuck)),
                    t.warn(),
                )
            }
        }
    }
}

impl Widget for &MessageRow<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let t = app.theme;
        let w = area.width as usize;
        let line = if let Some(Overlay::Jump { query }) = &app.overlay {
            Line::from(
                cut(
                    vec![
                        (" / jump to step: ".into(), t.bold()),
                        (query.clone(), t.text()),
                        (" ".into(), t.selected()),
                        ("   Enter jump · Esc cancel".into(), t.dim()),
                    ],
                    w,
                )
                .into_iter()
                .map(|(s, st)| Span::styled(s, st))
                .collect::<Vec<_>>(),
            )
        } else if let Some(m) = &app.message {
            plain(
                &format!(" {}", m.text),
                w,
                if m.error { t.bad() } else { t.active() },
            )
        } else {
            let (s, st) = run_state(app);
            plain(&format!(" {s}"), w, st)
        };
        line.render(area, buf);
    }
}

/// The run's operator and who else is attached: `alice (+bob operating, +carol observing)`.
pub fn people(app: &App) -> String {
    let s = &app.snap;
    if s.attached.is_empty() {
        return s.operator.clone();
    }
    let others: Vec<String> = s
        .attached
        .iter()
        .map(|a| {
            let how = if a.operate { "operating" } else { "observing" };
            // the login the kernel vouches for, when the shown name is another
            match a.login.as_deref() {
                Some(l) if l != a.operator => format!("+{} ({l}) {how}", a.operator),
                _ => format!("+{} {how}", a.operator),
            }
        })
        .collect();
    format!("{} ({})", s.operator, others.join(", "))
}

/// The maintenance window relative to `now`: opens in, left, or overrun.
pub fn window_text(app: &App) -> Option<(String, Style)> {
    let w = app.snap.window.as_ref()?;
    let t = app.theme;
    let len = chrono::Duration::from_std(w.duration).unwrap_or_else(|_| chrono::Duration::zero());
    let end = w.start + len;
    Some(if app.now < w.start {
        (
            format!(
                "window opens in {}",
                fmt::dur((w.start - app.now).num_seconds())
            ),
            t.dim(),
        )
    } else if app.now < end {
        let left = (end - app.now).num_seconds();
        let st = if left < 600 { t.warn() } else { t.text() };
        (format!("window {} left", fmt::dur(left)), st)
    } else {
        (
            format!("window overrun {}", fmt::dur((app.now - end).num_seconds())),
            t.bad(),
        )
    })
}

impl Widget for &StatusBar<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let t = app.theme;
        let w = area.width as usize;
        let sep = (" · ".to_string(), t.dim());
        let clock = (format!(" {} UTC", app.now.format("%H:%M:%S")), t.bold());
        let mut segs = vec![clock];
        if let Some(win) = window_text(app) {
            segs.push(sep.clone());
            segs.push(win);
        }
        segs.push(sep.clone());
        if let Role::Attached {
            operate, observer, ..
        } = app.role()
        {
            let tag = if *observer {
                "attached observing"
            } else if *operate {
                "attached"
            } else {
                "attached read-only"
            };
            segs.push((tag.into(), t.warn()));
            segs.push(sep.clone());
        }
        segs.push((people(app), t.bold()));
        let quit = if app.attached() { "q leave" } else { "q quit" };
        let hints = vec![sep.clone(), (format!("? help · {quit}"), t.dim())];
        let used: usize = segs
            .iter()
            .chain(hints.iter())
            .map(|(s, _)| fmt::width(s))
            .sum();
        let journal = app.snap.journal.display().to_string();
        let room = w.saturating_sub(used + fmt::width(" · journal "));
        if room >= 12 {
            segs.push(sep.clone());
            segs.push(("journal ".into(), t.dim()));
            segs.push((fmt::truncate_left(&journal, room), t.text()));
        }
        segs.extend(hints);
        let spans: Vec<Span> = cut(segs, w)
            .into_iter()
            .map(|(s, st)| Span::styled(s, st))
            .collect();
        Line::from(spans).render(area, buf);
    }
}
