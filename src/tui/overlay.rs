//! Dialogs and prompts that sit over the panes and take every key while open:
//! confirmation, a two-person step's approval or withdrawal, skip reason, rollback (and its point-of-no-return override),
//! quit, jump to step, help. Esc closes any of them.

use super::app::App;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ferry_core::engine::driver::Command;
use ferry_core::vocab::Decision;

/// Longest text a prompt accepts.
pub const MAX_INPUT: usize = 200;

#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    Help,
    /// Confirm a step awaiting confirmation; `typed` is `Some` when its id must be typed.
    Confirm {
        step: String,
        typed: Option<String>,
    },
    /// Approve another operator's proposal of a two-person step: its evidence
    /// and hash are shown; `y` approves exactly that hash.
    Approve {
        step: String,
        evidence_sha256: String,
    },
    /// Take back this console's own proposal of a two-person step.
    Withdraw {
        step: String,
        evidence_sha256: String,
    },
    Skip {
        step: String,
        reason: String,
    },
    Rollback {
        step: String,
    },
    /// The engine refused a rollback because of a point of no return: type the id to override.
    Override {
        step: String,
        refusal: String,
        typed: String,
    },
    /// Quit while steps run: they will be stopped and journaled as interrupted.
    Quit {
        running: Vec<String>,
    },
    /// Leave an attached console: the run goes on in its own.
    Leave,
    Jump {
        query: String,
    },
}

/// What a key does to a text field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Changed,
    Submit,
    Cancel,
    Ignored,
}

/// Apply a key to a one-line text field: printable characters, Backspace, Ctrl-U, Enter, Esc.
pub fn edit(text: &mut String, k: &KeyEvent) -> Edit {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    match k.code {
        KeyCode::Enter => Edit::Submit,
        KeyCode::Esc => Edit::Cancel,
        KeyCode::Backspace => {
            text.pop();
            Edit::Changed
        }
        KeyCode::Char('u') if ctrl => {
            text.clear();
            Edit::Changed
        }
        KeyCode::Char(c) if !ctrl && !c.is_control() => {
            if text.chars().count() < MAX_INPUT {
                text.push(c);
            }
            Edit::Changed
        }
        _ => Edit::Ignored,
    }
}

/// A yes/no dialog's answer to a key: `y` yes, `n` or Esc no, `None` for any other key.
fn answer(k: &KeyEvent) -> Option<bool> {
    match k.code {
        KeyCode::Char('y') | KeyCode::Char('Y') => Some(true),
        KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => Some(false),
        _ => None,
    }
}

impl App {
    /// A key for the open dialog; the dialog stays open unless the key closes it
    /// (or opens another).
    pub(crate) fn overlay_key(&mut self, k: KeyEvent) -> Vec<Command> {
        let Some(mut ov) = self.overlay.take() else {
            return Vec::new();
        };
        // Tab acknowledges (or takes back) stale evidence in a confirm dialog
        if matches!(ov, Overlay::Confirm { .. }) && k.code == KeyCode::Tab {
            self.confirm_ack = !self.confirm_ack;
            self.overlay = Some(ov);
            return Vec::new();
        }
        let mut out = Vec::new();
        let keep = match &mut ov {
            Overlay::Help => !matches!(
                k.code,
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('?') | KeyCode::Char('q')
            ),
            Overlay::Quit { .. } => match answer(&k) {
                Some(true) => {
                    out = self.stop();
                    false
                }
                Some(false) => false,
                None => true,
            },
            Overlay::Leave => match (k.code, answer(&k)) {
                (KeyCode::Char('q'), _) | (_, Some(true)) => {
                    self.exit = true;
                    false
                }
                (_, Some(false)) => false,
                (_, None) => true,
            },
            Overlay::Confirm { step, typed: None } => match answer(&k) {
                Some(true) => {
                    out = self.confirm(step.clone(), None);
                    false
                }
                Some(false) => false,
                None => true,
            },
            Overlay::Confirm {
                step,
                typed: Some(t),
            } => self.typed_confirm_key(step, t, &k, &mut out),
            Overlay::Approve {
                step,
                evidence_sha256,
            } => match answer(&k) {
                Some(true) => {
                    self.say(format!("approval of `{step}` sent"), false);
                    out.push(Command::Decide(Decision::Approve {
                        step: step.clone(),
                        evidence_sha256: evidence_sha256.clone(),
                    }));
                    false
                }
                Some(false) => false,
                None => true,
            },
            Overlay::Withdraw { step, .. } => match answer(&k) {
                Some(true) => {
                    self.say(format!("proposal of `{step}` withdrawn"), false);
                    out.push(Command::Decide(Decision::Withdraw { step: step.clone() }));
                    false
                }
                Some(false) => false,
                None => true,
            },
            Overlay::Skip { step, reason } => self.skip_key(step, reason, &k, &mut out),
            Overlay::Rollback { step } => match answer(&k) {
                Some(true) => {
                    self.pending_rollback = Some(step.clone());
                    self.say(format!("rollback of `{step}` asked"), false);
                    out.push(Command::Decide(Decision::Rollback {
                        step: step.clone(),
                        override_point_of_no_return: false,
                    }));
                    false
                }
                Some(false) => false,
                None => true,
            },
            Overlay::Override { step, typed, .. } => self.override_key(step, typed, &k, &mut out),
            Overlay::Jump { query } => match edit(query, &k) {
                Edit::Submit => {
                    let q = query.trim().to_string();
                    self.jump(&q);
                    false
                }
                Edit::Cancel => false,
                _ => true,
            },
        };
        if keep && self.overlay.is_none() {
            self.overlay = Some(ov);
        }
        out
    }

    /// A key for the confirmation that needs the step id typed; whether it stays open.
    fn typed_confirm_key(
        &mut self,
        step: &str,
        t: &mut String,
        k: &KeyEvent,
        out: &mut Vec<Command>,
    ) -> bool {
        match edit(t, k) {
            Edit::Submit if t.trim() == step => {
                *out = self.confirm(step.to_string(), Some(step.to_string()));
                false
            }
            Edit::Submit => {
                self.say(
                    format!("`{}` is not `{step}`: type the step id exactly", t.trim()),
                    true,
                );
                t.clear();
                true
            }
            Edit::Cancel => false,
            _ => true,
        }
    }

    /// A key for the skip dialog (a reason is required); whether it stays open.
    fn skip_key(
        &mut self,
        step: &str,
        reason: &mut String,
        k: &KeyEvent,
        out: &mut Vec<Command>,
    ) -> bool {
        match edit(reason, k) {
            Edit::Submit if reason.trim().is_empty() => {
                self.say("skipping needs a reason: type it, then Enter", true);
                true
            }
            Edit::Submit => {
                self.say(format!("skip of `{step}` asked"), false);
                out.push(Command::Decide(Decision::Skip {
                    step: step.to_string(),
                    reason: reason.trim().to_string(),
                }));
                false
            }
            Edit::Cancel => false,
            _ => true,
        }
    }

    /// A key for the point-of-no-return override (the step id typed); whether it stays open.
    fn override_key(
        &mut self,
        step: &str,
        typed: &mut String,
        k: &KeyEvent,
        out: &mut Vec<Command>,
    ) -> bool {
        match edit(typed, k) {
            Edit::Submit if typed.trim() == step => {
                self.say(
                    format!("rollback of `{step}` asked, overriding the point of no return"),
                    false,
                );
                out.push(Command::Decide(Decision::Rollback {
                    step: step.to_string(),
                    override_point_of_no_return: true,
                }));
                false
            }
            Edit::Submit => {
                self.say(
                    format!(
                        "`{}` is not `{step}`: type the step id exactly",
                        typed.trim()
                    ),
                    true,
                );
                typed.clear();
                true
            }
            Edit::Cancel => false,
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn edits_text() {
        let mut t = String::new();
        assert_eq!(edit(&mut t, &key(KeyCode::Char('a'))), Edit::Changed);
        assert_eq!(edit(&mut t, &key(KeyCode::Char('b'))), Edit::Changed);
        assert_eq!(t, "ab");
        edit(&mut t, &key(KeyCode::Backspace));
        assert_eq!(t, "a");
        edit(
            &mut t,
            &KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL),
        );
        assert_eq!(t, "");
        assert_eq!(edit(&mut t, &key(KeyCode::Enter)), Edit::Submit);
        assert_eq!(edit(&mut t, &key(KeyCode::Esc)), Edit::Cancel);
        assert_eq!(edit(&mut t, &key(KeyCode::F(1))), Edit::Ignored);
        for _ in 0..300 {
            edit(&mut t, &key(KeyCode::Char('x')));
        }
        assert_eq!(t.len(), MAX_INPUT);
    }
}
