//! Keys: what each one does to the [`App`], and the commands it sends. Open
//! overlays take every key; otherwise keys act on the focused pane and the
//! selected step. The help overlay (`?`) lists them all (see [`HELP`]).

use super::app::{App, Sel};
use super::evidence;
use super::overlay::Overlay;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ferry_core::engine::driver::Command;
use ferry_core::runbook::ConfirmMode;
use ferry_core::vocab::{Decision, StepState};

/// Every key, as the help overlay lists it.
pub const HELP: &[(&str, &str)] = &[
    ("↑ ↓  j k", "move in the runbook (scroll the focused pane)"),
    ("← →", "fold / unfold a phase"),
    ("Enter", "fold a phase · show a step's detail full-screen"),
    ("Tab  Shift-Tab", "focus the next / previous pane"),
    ("Home End  g G", "first / last row"),
    ("PgUp PgDn", "scroll the step's output (or the log)"),
    (
        "c",
        "confirm the step awaiting you (dialog: y, or type its id)",
    ),
    ("s", "skip the selected step (asks a reason)"),
    ("r", "retry the selected failed or interrupted step"),
    ("b", "roll the selected step back (dialog)"),
    ("/", "jump to a step by id"),
    ("f", "follow the step that needs attention"),
    ("l", "full-screen journal log (toggle)"),
    ("?", "this help"),
    ("Esc", "close a dialog, the log or the full-screen detail"),
    ("q  Ctrl-C", "quit (asks first while steps run)"),
];

/// Lines a PgUp/PgDn moves.
const PAGE: usize = 10;

impl App {
    pub(crate) fn on_key(&mut self, k: KeyEvent) -> Vec<Command> {
        if k.kind == KeyEventKind::Release {
            return Vec::new();
        }
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            return self.quit_request();
        }
        if self.overlay.is_some() {
            return self.overlay_key(k);
        }
        if self.log_view && self.log_key(&k) {
            return Vec::new();
        }
        match k.code {
            KeyCode::Char('?') => self.overlay = Some(Overlay::Help),
            KeyCode::Char('q') => return self.quit_request(),
            KeyCode::Esc => {
                if self.log_view {
                    self.log_view = false;
                } else {
                    self.zoom = false;
                }
            }
            KeyCode::Tab => self.cycle_focus(1),
            KeyCode::BackTab => self.cycle_focus(-1),
            KeyCode::Up | KeyCode::Char('k') => self.scroll_focused(-1),
            KeyCode::Down | KeyCode::Char('j') => self.scroll_focused(1),
            KeyCode::Home | KeyCode::Char('g') => self.scroll_focused(-100_000),
            KeyCode::End | KeyCode::Char('G') => self.scroll_focused(100_000),
            KeyCode::Left => self.fold_key(true),
            KeyCode::Right => self.fold_key(false),
            KeyCode::Enter => self.enter(),
            KeyCode::PageUp => self.scroll_output(PAGE as isize),
            KeyCode::PageDown => self.scroll_output(-(PAGE as isize)),
            KeyCode::Char('c' | 's' | 'r' | 'b') if !self.may_act() => {
                self.say(super::app::READ_ONLY, true)
            }
            KeyCode::Char('c') => self.open_confirm(),
            KeyCode::Char('s') => self.open_skip(),
            KeyCode::Char('r') => return self.retry(),
            KeyCode::Char('b') => self.open_rollback(),
            KeyCode::Char('/') => {
                self.overlay = Some(Overlay::Jump {
                    query: String::new(),
                })
            }
            KeyCode::Char('l') => {
                self.log_view = !self.log_view;
                self.log_scroll = 0;
            }
            KeyCode::Char('f') => {
                self.follow = true;
                self.say("following the step that needs attention", false);
                if let Some(id) = self.attention().map(|s| s.id.clone()) {
                    self.select(Sel::Step(id));
                }
            }
            _ => {}
        }
        Vec::new()
    }

    /// Keys of the log view; false when the key is not the log's own.
    fn log_key(&mut self, k: &KeyEvent) -> bool {
        let max = self.log.len();
        let by = |s: usize, d: isize| (s as isize + d).clamp(0, max as isize) as usize;
        match k.code {
            KeyCode::Up | KeyCode::Char('k') => self.log_scroll = by(self.log_scroll, 1),
            KeyCode::Down | KeyCode::Char('j') => self.log_scroll = by(self.log_scroll, -1),
            KeyCode::PageUp => self.log_scroll = by(self.log_scroll, PAGE as isize),
            KeyCode::PageDown => self.log_scroll = by(self.log_scroll, -(PAGE as isize)),
            KeyCode::Home | KeyCode::Char('g') => self.log_scroll = max,
            KeyCode::End | KeyCode::Char('G') => self.log_scroll = 0,
            _ => return false,
        }
        true
    }

    pub(crate) fn quit_request(&mut self) -> Vec<Command> {
        if self.engine_gone {
            self.exit = true;
            return Vec::new();
        }
        if self.attached() {
            self.overlay = Some(Overlay::Leave);
            return Vec::new();
        }
        if self.stopping {
            self.say(
                "still stopping: waiting for the engine to journal the running steps…",
                false,
            );
            return Vec::new();
        }
        let running: Vec<String> = self.running().iter().map(|s| s.id.clone()).collect();
        // quitting the run's own console ends the run for attached operators too: ask
        if running.is_empty() && self.snap.attached.is_empty() {
            return self.stop();
        }
        self.overlay = Some(Overlay::Quit { running });
        Vec::new()
    }

    // ---- commands -------------------------------------------------------------------------------

    fn selected_step(&mut self) -> Option<String> {
        match &self.selected {
            Sel::Step(id) => Some(id.clone()),
            Sel::Phase(_) => {
                self.say("select a step first (↑ ↓ or /)", true);
                None
            }
        }
    }

    fn open_confirm(&mut self) {
        let sel = match &self.selected {
            Sel::Step(id) => self
                .step_snap(id)
                .filter(|s| s.state == StepState::AwaitingConfirmation)
                .map(|s| s.id.clone()),
            Sel::Phase(_) => None,
        };
        let Some(step) = sel.or_else(|| self.snap.awaiting().first().map(|s| s.id.clone())) else {
            self.say("no step is awaiting confirmation", true);
            return;
        };
        let needs_typed = self
            .step_def(&step)
            .is_some_and(|d| d.confirm == ConfirmMode::TwoPerson || d.point_of_no_return);
        self.select(Sel::Step(step.clone()));
        self.overlay = Some(Overlay::Confirm {
            step,
            typed: needs_typed.then(String::new),
        });
    }

    pub(crate) fn confirm(&mut self, step: String, typed: Option<String>) -> Vec<Command> {
        if self.step_snap(&step).map(|s| s.state) != Some(StepState::AwaitingConfirmation) {
            self.say(format!("`{step}` is no longer awaiting confirmation"), true);
            return Vec::new();
        }
        let evidence = evidence::gather(&self.rb, &self.snap, self.now);
        self.say(format!("confirmed `{step}`"), false);
        vec![Command::Decide(Decision::Confirm {
            step,
            typed,
            automatic: false,
            evidence,
        })]
    }

    fn open_skip(&mut self) {
        let Some(step) = self.selected_step() else {
            return;
        };
        let state = self.step_snap(&step).map(|s| s.state);
        if matches!(
            state,
            Some(
                StepState::Running
                    | StepState::RollingBack
                    | StepState::Succeeded
                    | StepState::Skipped
            )
        ) {
            let name = state.map(|s| s.name()).unwrap_or("unknown");
            self.say(format!("`{step}` is {name} and cannot be skipped"), true);
            return;
        }
        self.overlay = Some(Overlay::Skip {
            step,
            reason: String::new(),
        });
    }

    fn retry(&mut self) -> Vec<Command> {
        let Some(step) = self.selected_step() else {
            return Vec::new();
        };
        let state = self.step_snap(&step).map(|s| s.state);
        match state {
            Some(
                StepState::Failed
                | StepState::Interrupted
                | StepState::RolledBack
                | StepState::RetryWait,
            ) => {
                self.say(format!("retry of `{step}` asked"), false);
                vec![Command::Decide(Decision::Retry { step })]
            }
            other => {
                let name = other.map(|s| s.name()).unwrap_or("unknown");
                self.say(
                    format!("`{step}` is {name}: only failed, interrupted or rolled-back steps can be retried"),
                    true,
                );
                Vec::new()
            }
        }
    }

    fn open_rollback(&mut self) {
        let Some(step) = self.selected_step() else {
            return;
        };
        if self.step_def(&step).is_none_or(|d| d.rollback.is_none()) {
            self.say(format!("`{step}` has no rollback in the runbook"), true);
            return;
        }
        let state = self.step_snap(&step).map(|s| s.state);
        if !matches!(
            state,
            Some(StepState::Succeeded | StepState::Failed | StepState::Interrupted)
        ) {
            let name = state.map(|s| s.name()).unwrap_or("unknown");
            self.say(
                format!("`{step}` is {name} and cannot be rolled back"),
                true,
            );
            return;
        }
        self.overlay = Some(Overlay::Rollback { step });
    }
}
