//! The help against the key handler: every key the help overlay shows, pressed
//! through [`App::update`], does what its row claims; and every key that changes
//! anything outside a dialog is one the help shows.

use super::*;
use crate::tui::app::{Pane, Sel};
use crate::tui::keys::{key_name, Key, KeyAction, KEYS};
use crate::tui::overlay::Overlay;
use crate::tui::Action;
use ferry_core::engine::driver::Command;

fn event(k: Key) -> KeyEvent {
    let mods = if k.ctrl {
        KeyModifiers::CONTROL
    } else {
        KeyModifiers::NONE
    };
    KeyEvent::new(k.code, mods)
}

/// The console at 160×48 on the "awaiting" scenario (`copy` selected), or on another scenario.
fn console(scene: &str) -> App {
    let mut app = app_for(scenario(scene), Theme::MONO);
    app.update(Action::Resize(160, 48));
    app
}

fn sel(id: &str) -> Sel {
    Sel::Step(id.to_string())
}

/// Press `k` on a console made ready for `does`; whether it did what `does` means.
fn does_what_it_claims(does: KeyAction, k: Key) -> bool {
    let mut app = console(match does {
        KeyAction::Retry => "failed",
        KeyAction::PageUp | KeyAction::PageDown => "running",
        _ => "awaiting",
    });
    match does {
        KeyAction::Fold => app.selected = Sel::Phase(1),
        KeyAction::Unfold => {
            app.selected = Sel::Phase(1);
            app.folded.insert(1);
        }
        KeyAction::PageDown => app.out_scroll = 10,
        KeyAction::Rollback => app.selected = sel("maintenance-on"),
        KeyAction::Follow => {
            app.selected = Sel::Phase(0);
            app.follow = false;
        }
        KeyAction::Close => app.log_view = true,
        _ => {}
    }
    let panes = app.visible_panes();
    let cmds = app.update(Action::Key(event(k)));
    match does {
        KeyAction::Up => app.selected == sel("maintenance-on"),
        KeyAction::Down => app.selected == sel("verify"),
        KeyAction::Fold => app.folded.contains(&1),
        KeyAction::Unfold => !app.folded.contains(&1),
        KeyAction::Enter => app.zoom,
        KeyAction::FocusNext => app.focus == panes[1] && app.focus != Pane::Runbook,
        KeyAction::FocusPrev => panes.last() == Some(&app.focus) && app.focus != Pane::Runbook,
        KeyAction::First => app.selected == Sel::Phase(0),
        KeyAction::Last => app.selected == sel("maintenance-off"),
        KeyAction::PageUp => app.selected == sel("copy") && app.out_scroll == 10,
        KeyAction::PageDown => app.selected == sel("copy") && app.out_scroll == 0,
        KeyAction::Confirm => {
            matches!(&app.overlay, Some(Overlay::Confirm { step, .. }) if step == "copy")
        }
        KeyAction::Skip => {
            matches!(&app.overlay, Some(Overlay::Skip { step, .. }) if step == "copy")
        }
        KeyAction::Retry => {
            matches!(cmds.as_slice(), [Command::Decide(Decision::Retry { step })] if step == "verify")
        }
        KeyAction::Rollback => {
            matches!(&app.overlay, Some(Overlay::Rollback { step }) if step == "maintenance-on")
        }
        KeyAction::Jump => {
            matches!(&app.overlay, Some(Overlay::Jump { query }) if query.is_empty())
        }
        KeyAction::Follow => app.follow && app.selected == sel("copy"),
        KeyAction::Log => app.log_view,
        KeyAction::Help => app.overlay == Some(Overlay::Help),
        KeyAction::Close => !app.log_view,
        KeyAction::Quit => {
            matches!(cmds.as_slice(), [Command::Shutdown])
                || matches!(app.overlay, Some(Overlay::Quit { .. }))
        }
    }
}

#[test]
fn every_key_the_help_shows_does_what_its_row_claims() {
    for b in KEYS {
        let label = b.label();
        for (k, does) in b.keys.iter().copied().flatten() {
            assert!(
                label.split(' ').any(|w| w == key_name(*k)),
                "`{label}` does not show {k:?}"
            );
            assert!(
                does_what_it_claims(*does, *k),
                "`{}` (help: `{label}` {}) does not do {does:?}",
                key_name(*k),
                b.what
            );
        }
    }
}

/// What a key can change on the console, as text to compare.
fn state(app: &App, cmds: &[Command]) -> String {
    format!(
        "{:?}",
        (
            &app.overlay,
            (app.log_view, app.log_scroll, app.zoom, app.focus),
            (&app.selected, &app.folded, app.follow, app.out_scroll),
            (app.lag_scroll, app.rows_scroll),
            app.message.as_ref().map(|m| &m.text),
            (app.exit, app.stopping, cmds.len()),
        )
    )
}

/// Consoles in the states a key acts differently in: the runbook focused, the
/// log open and scrolled, the detail zoomed, a failed step selected.
fn probes() -> Vec<App> {
    let mut log = console("awaiting");
    for i in 0..30 {
        log.push_log(format!("line {i}"));
    }
    log.log_view = true;
    log.log_scroll = 5;
    let mut zoomed = console("running");
    zoomed.zoom = true;
    zoomed.out_scroll = 5;
    let mut phase = console("awaiting");
    phase.selected = Sel::Phase(1);
    vec![console("awaiting"), log, zoomed, phase, console("failed")]
}

#[test]
fn every_key_the_handler_acts_on_is_in_the_help() {
    let mut codes = vec![
        KeyCode::Backspace,
        KeyCode::Enter,
        KeyCode::Left,
        KeyCode::Right,
        KeyCode::Up,
        KeyCode::Down,
        KeyCode::Home,
        KeyCode::End,
        KeyCode::PageUp,
        KeyCode::PageDown,
        KeyCode::Tab,
        KeyCode::BackTab,
        KeyCode::Delete,
        KeyCode::Insert,
        KeyCode::Esc,
        KeyCode::Null,
    ];
    codes.extend((1..=12).map(KeyCode::F));
    codes.extend((' '..='~').chain(['é', '→', '\u{7f}']).map(KeyCode::Char));
    let shown: Vec<Key> = KEYS
        .iter()
        .flat_map(|b| b.keys.iter().copied().flatten())
        .map(|(k, _)| *k)
        .collect();
    let mut acted = 0;
    for code in codes {
        for mods in [
            KeyModifiers::NONE,
            KeyModifiers::SHIFT,
            KeyModifiers::CONTROL,
            KeyModifiers::ALT,
        ] {
            for mut app in probes() {
                let before = state(&app, &[]);
                let cmds = app.update(Action::Key(KeyEvent::new(code, mods)));
                if state(&app, &cmds) == before {
                    continue;
                }
                acted += 1;
                let ctrl = mods.contains(KeyModifiers::CONTROL);
                assert!(
                    shown.iter().any(|k| k.code == code && (!k.ctrl || ctrl)),
                    "{mods:?} {code:?} acts but the help does not show it"
                );
            }
        }
    }
    assert!(acted > 0, "no key acted at all: the probes are wrong");
}
