//! Keys: what each one does to the [`App`], and the commands it sends. Open
//! overlays take every key; otherwise keys act on the focused pane and the
//! selected step. One table, [`KEYS`], is both what the handler dispatches on
//! and what the help overlay (`?`) lists.

use super::app::{App, Sel};
use super::evidence;
use super::overlay::Overlay;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ferry_core::engine::driver::Command;
use ferry_core::runbook::ConfirmMode;
use ferry_core::vocab::{Decision, StepState};

/// What a key asks of the console outside dialogs (an open dialog takes every key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    Up,
    Down,
    Fold,
    Unfold,
    Enter,
    FocusNext,
    FocusPrev,
    First,
    Last,
    PageUp,
    PageDown,
    Confirm,
    Skip,
    Retry,
    Rollback,
    Jump,
    Follow,
    Log,
    Help,
    /// Esc: close the log or the full-screen detail.
    Close,
    Quit,
}

/// A key as the console tells keys apart: by code, and Ctrl only for Ctrl-C
/// (every other modifier is ignored, so Shift-G is `G` and Alt-j is `j`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn on(code: KeyCode, does: KeyAction) -> (Key, KeyAction) {
    (Key { code, ctrl: false }, does)
}

const fn ch(c: char, does: KeyAction) -> (Key, KeyAction) {
    on(KeyCode::Char(c), does)
}

/// One row of the help: its keys in groups (the help puts two spaces between
/// groups, one between keys), each with what it does, and what the row says.
#[derive(Debug)]
pub struct Binding {
    pub keys: &'static [&'static [(Key, KeyAction)]],
    pub what: &'static str,
}

impl Binding {
    /// The keys as the help shows them, e.g. `↑ ↓  j k`.
    pub fn label(&self) -> String {
        self.keys
            .iter()
            .map(|g| {
                g.iter()
                    .map(|(k, _)| key_name(*k))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("  ")
    }
}

/// How the help names a key.
pub fn key_name(k: Key) -> String {
    match (k.code, k.ctrl) {
        (KeyCode::Char(c), true) => format!("Ctrl-{}", c.to_ascii_uppercase()),
        (KeyCode::Char(c), false) => c.to_string(),
        (KeyCode::Up, _) => "↑".into(),
        (KeyCode::Down, _) => "↓".into(),
        (KeyCode::Left, _) => "←".into(),
        (KeyCode::Right, _) => "→".into(),
        (KeyCode::PageUp, _) => "PgUp".into(),
        (KeyCode::PageDown, _) => "PgDn".into(),
        (KeyCode::Tab, _) => "Tab".into(),
        (KeyCode::BackTab, _) => "Shift-Tab".into(),
        (KeyCode::Home, _) => "Home".into(),
        (KeyCode::End, _) => "End".into(),
        (KeyCode::Enter, _) => "Enter".into(),
        (KeyCode::Esc, _) => "Esc".into(),
        (code, _) => format!("{code:?}"),
    }
}

/// Every key outside dialogs: what the handler dispatches on ([`action_for`])
/// and what the help overlay (`?`) lists, row by row.
pub const KEYS: &[Binding] = &[
    Binding {
        keys: &[
            &[
                on(KeyCode::Up, KeyAction::Up),
                on(KeyCode::Down, KeyAction::Down),
            ],
            &[ch('j', KeyAction::Down), ch('k', KeyAction::Up)],
        ],
        what: "move in the runbook (scroll the focused pane)",
    },
    Binding {
        keys: &[&[
            on(KeyCode::Left, KeyAction::Fold),
            on(KeyCode::Right, KeyAction::Unfold),
        ]],
        what: "fold / unfold a phase",
    },
    Binding {
        keys: &[&[on(KeyCode::Enter, KeyAction::Enter)]],
        what: "fold a phase · show a step's detail full-screen",
    },
    Binding {
        keys: &[
            &[on(KeyCode::Tab, KeyAction::FocusNext)],
            &[on(KeyCode::BackTab, KeyAction::FocusPrev)],
        ],
        what: "focus the next / previous pane",
    },
    Binding {
        keys: &[
            &[
                on(KeyCode::Home, KeyAction::First),
                on(KeyCode::End, KeyAction::Last),
            ],
            &[ch('g', KeyAction::First), ch('G', KeyAction::Last)],
        ],
        what: "first / last row",
    },
    Binding {
        keys: &[&[
            on(KeyCode::PageUp, KeyAction::PageUp),
            on(KeyCode::PageDown, KeyAction::PageDown),
        ]],
        what: "scroll the step's output (or the log)",
    },
    Binding {
        keys: &[&[ch('c', KeyAction::Confirm)]],
        what: "confirm the step awaiting you (dialog: y, or type its id)",
    },
    Binding {
        keys: &[&[ch('s', KeyAction::Skip)]],
        what: "skip the selected step (asks a reason)",
    },
    Binding {
        keys: &[&[ch('r', KeyAction::Retry)]],
        what: "retry the selected failed or interrupted step",
    },
    Binding {
        keys: &[&[ch('b', KeyAction::Rollback)]],
        what: "roll the selected step back (dialog)",
    },
    Binding {
        keys: &[&[ch('/', KeyAction::Jump)]],
        what: "jump to a step by id",
    },
    Binding {
        keys: &[&[ch('f', KeyAction::Follow)]],
        what: "follow the step that needs attention",
    },
    Binding {
        keys: &[&[ch('l', KeyAction::Log)]],
        what: "full-screen journal log (toggle)",
    },
    Binding {
        keys: &[&[ch('?', KeyAction::Help)]],
        what: "this help",
    },
    Binding {
        keys: &[&[on(KeyCode::Esc, KeyAction::Close)]],
        what: "close a dialog, the log or the full-screen detail",
    },
    Binding {
        keys: &[
            &[ch('q', KeyAction::Quit)],
            &[(
                Key {
                    code: KeyCode::Char('c'),
                    ctrl: true,
                },
                KeyAction::Quit,
            )],
        ],
        what: "quit (asks first while steps run)",
    },
];

/// What `k` does outside dialogs, from [`KEYS`]; `None` for a key that does nothing.
pub fn action_for(k: &KeyEvent) -> Option<KeyAction> {
    let ctrl_c = k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c');
    let key = Key {
        code: k.code,
        ctrl: ctrl_c,
    };
    KEYS.iter()
        .flat_map(|b| b.keys.iter().copied().flatten())
        .find(|(bound, _)| *bound == key)
        .map(|(_, does)| *does)
}

/// Lines a PgUp/PgDn moves.
const PAGE: usize = 10;

impl App {
    pub(crate) fn on_key(&mut self, k: KeyEvent) -> Vec<Command> {
        if k.kind == KeyEventKind::Release {
            return Vec::new();
        }
        // Ctrl-C quits from a dialog too
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            return self.quit_request();
        }
        if self.overlay.is_some() {
            return self.overlay_key(k);
        }
        match action_for(&k) {
            Some(does) => self.act(does),
            None => Vec::new(),
        }
    }

    /// Do what a key asks (see [`KEYS`]); the log view takes the keys that scroll.
    fn act(&mut self, does: KeyAction) -> Vec<Command> {
        if self.log_view && self.log_key(does) {
            return Vec::new();
        }
        match does {
            KeyAction::Help => self.overlay = Some(Overlay::Help),
            KeyAction::Quit => return self.quit_request(),
            KeyAction::Close => {
                if self.log_view {
                    self.log_view = false;
                } else {
                    self.zoom = false;
                }
            }
            KeyAction::FocusNext => self.cycle_focus(1),
            KeyAction::FocusPrev => self.cycle_focus(-1),
            KeyAction::Up => self.scroll_focused(-1),
            KeyAction::Down => self.scroll_focused(1),
            KeyAction::First => self.scroll_focused(-100_000),
            KeyAction::Last => self.scroll_focused(100_000),
            KeyAction::Fold => self.fold_key(true),
            KeyAction::Unfold => self.fold_key(false),
            KeyAction::Enter => self.enter(),
            KeyAction::PageUp => self.scroll_output(PAGE as isize),
            KeyAction::PageDown => self.scroll_output(-(PAGE as isize)),
            KeyAction::Confirm | KeyAction::Skip | KeyAction::Retry | KeyAction::Rollback
                if !self.may_act() =>
            {
                let why = if self.observer() {
                    super::app::OBSERVING
                } else {
                    super::app::READ_ONLY
                };
                self.say(why, true)
            }
            KeyAction::Confirm => self.open_confirm(),
            KeyAction::Skip => self.open_skip(),
            KeyAction::Retry => return self.retry(),
            KeyAction::Rollback => self.open_rollback(),
            KeyAction::Jump => {
                self.overlay = Some(Overlay::Jump {
                    query: String::new(),
                })
            }
            KeyAction::Log => {
                self.log_view = !self.log_view;
                self.log_scroll = 0;
            }
            KeyAction::Follow => {
                self.follow = true;
                self.say("following the step that needs attention", false);
                if let Some(id) = self.attention().map(|s| s.id.clone()) {
                    self.select(Sel::Step(id));
                }
            }
        }
        Vec::new()
    }

    /// Keys of the log view; false when the key is not the log's own.
    fn log_key(&mut self, does: KeyAction) -> bool {
        let max = self.log.len();
        let by = |s: usize, d: isize| (s as isize + d).clamp(0, max as isize) as usize;
        match does {
            KeyAction::Up => self.log_scroll = by(self.log_scroll, 1),
            KeyAction::Down => self.log_scroll = by(self.log_scroll, -1),
            KeyAction::PageUp => self.log_scroll = by(self.log_scroll, PAGE as isize),
            KeyAction::PageDown => self.log_scroll = by(self.log_scroll, -(PAGE as isize)),
            KeyAction::First => self.log_scroll = max,
            KeyAction::Last => self.log_scroll = 0,
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
        // a two-person step someone proposed: approve another's, withdraw one's own
        if let Some(p) = self.step_snap(&step).and_then(|s| s.proposal.clone()) {
            self.select(Sel::Step(step.clone()));
            let evidence_sha256 = p.evidence_sha256;
            self.overlay = Some(if self.is_me(&p.by) {
                Overlay::Withdraw {
                    step,
                    evidence_sha256,
                }
            } else {
                Overlay::Approve {
                    step,
                    evidence_sha256,
                }
            });
            return;
        }
        let needs_typed = self
            .step_def(&step)
            .is_some_and(|d| d.confirm == ConfirmMode::TwoPerson || d.point_of_no_return);
        self.select(Sel::Step(step.clone()));
        self.confirm_seen = evidence::material(&self.rb, &self.snap, self.now);
        self.confirm_ack = false;
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
        // the evidence must still say what it said when the dialog opened
        let now = evidence::material(&self.rb, &self.snap, self.now);
        if now != self.confirm_seen {
            let changed: Vec<&str> = now
                .iter()
                .filter(|f| !self.confirm_seen.contains(f))
                .map(String::as_str)
                .collect();
            self.say(
                format!(
                    "not confirmed: the evidence changed since the dialog opened ({}); check the new values, then confirm again",
                    changed.join("; ")
                ),
                true,
            );
            self.confirm_seen = now;
            self.confirm_ack = false;
            self.overlay = Some(Overlay::Confirm { step, typed });
            return Vec::new();
        }
        let mut evidence = evidence::gather(&self.rb, &self.snap, self.now);
        if evidence.iter().any(|e| e.stale) {
            if !self.confirm_ack {
                self.say(
                    "not confirmed: some evidence is stale; Tab acknowledges it (journaled), then confirm",
                    true,
                );
                self.overlay = Some(Overlay::Confirm { step, typed });
                return Vec::new();
            }
            for e in evidence.iter_mut().filter(|e| e.stale) {
                e.acknowledged = true;
            }
        }
        let two_person = self
            .step_def(&step)
            .is_some_and(|d| d.confirm == ConfirmMode::TwoPerson);
        if two_person {
            self.say(
                format!("proposed `{step}`: a second operator (another OS user) approves it"),
                false,
            );
        } else {
            self.say(format!("confirmed `{step}`"), false);
        }
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
