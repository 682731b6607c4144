//! The full-screen console of `ferry run` on a terminal: a ratatui front-end
//! over the engine's [`Handles`], replacing headless driving.
//!
//! - [`app`]: the state and `App::update(Action)` (never draws); [`keys`]: what
//!   each key does; [`overlay`]: dialogs and prompts; [`nav`]: rows, selection, focus;
//! - [`render`]: the layout and one widget per pane;
//! - [`event_loop`]: the injectable `select!` loop (any backend, any key stream);
//! - [`term`]: the terminal guard, the panic hook and signals;
//! - [`describe`], [`evidence`], [`fmt`], [`theme`]: what a step runs, what a
//!   confirmation records, text helpers, colours (none with `NO_COLOR`).

pub mod app;
pub mod describe;
pub mod event_loop;
pub mod evidence;
pub mod fmt;
pub mod keys;
pub mod nav;
pub mod overlay;
pub mod render;
pub mod term;
pub mod theme;
pub mod timeline;

#[cfg(test)]
mod tests;

pub use app::{Action, App, Role};
pub use theme::Theme;

use crate::headless::{self, Outcome};
use chrono::Utc;
use ferry_core::engine::driver::Handles;
use ferry_core::engine::redact::Redactor;
use ferry_core::runbook::Runbook;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::sync::Arc;

/// Drive the engine from the full-screen console until the operator quits, the
/// run ends and the operator leaves, or a signal stops it. Returns how driving
/// ended, as headless mode would, so `ferry run` finishes the same way.
/// `role` tells the run's own console from one attached with `ferry attach`.
pub async fn run(
    handles: Handles,
    rb: Arc<Runbook>,
    redactor: Arc<Redactor>,
    role: Role,
    resume: Option<Result<String, String>>,
) -> Outcome {
    let snap = handles.snapshot.borrow().clone();
    let attached = matches!(role, Role::Attached { .. });
    let mut app = App::new(
        rb.clone(),
        snap,
        redactor.clone(),
        Theme::from_env(),
        Utc::now(),
    )
    .with_role(role)
    .with_resume(resume);
    term::install_panic_hook();
    let started = term::TerminalGuard::enter().and_then(|guard| {
        Terminal::new(CrosstermBackend::new(std::io::stdout())).map(|t| (guard, t))
    });
    let (guard, mut terminal) = match started {
        Ok(x) => x,
        Err(e) if attached => {
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("error: cannot start the full-screen console ({e})\n"),
            );
            return Outcome::Interrupted;
        }
        Err(e) => {
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!(
                    "note: cannot start the full-screen console ({e}); running in headless mode\n"
                ),
            );
            return headless::drive(handles, headless::Acting::default(), &redactor, &rb).await;
        }
    };
    event_loop::run(
        &mut terminal,
        crossterm::event::EventStream::new(),
        term::signals(),
        &mut app,
        handles,
        Utc::now,
    )
    .await;
    drop(terminal);
    drop(guard);
    app.outcome()
}
