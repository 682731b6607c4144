//! Whole-screen insta snapshots over a fixed-size `TestBackend`, at 80×24 and
//! 160×48, from a runbook parsed with `load_str` and hand-built engine
//! snapshots at a fixed clock: start, awaiting confirmation, the confirm dialog,
//! a running copy with progress, a failed step, a finished run.

use super::*;
use crate::tui::render;
use crate::tui::Action;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn shot(scene: &str, w: u16, h: u16, keys: &[KeyEvent]) -> String {
    let mut app = app_for(scenario(scene), Theme::COLOR);
    app.update(Action::Resize(w, h));
    for k in keys {
        app.update(Action::Key(*k));
    }
    let mut term = match Terminal::new(TestBackend::new(w, h)) {
        Ok(t) => t,
        Err(e) => panic!("test backend: {e}"),
    };
    if let Err(e) = term.draw(|f| render::draw(f, &mut app)) {
        panic!("draw: {e}");
    }
    screen(term.backend().buffer())
}

macro_rules! screens {
    ($($name:ident: $scene:expr, $keys:expr;)*) => {$(
        #[test]
        fn $name() {
            let keys: &[KeyEvent] = $keys;
            for (w, h) in [(80u16, 24u16), (160, 48)] {
                let text = shot($scene, w, h, keys);
                insta::assert_snapshot!(format!("{}_{w}x{h}", stringify!($name)), text);
            }
        }
    )*};
}

screens! {
    start: "start", &[];
    awaiting_confirmation: "awaiting", &[];
    confirm_dialog: "awaiting", &[key('c')];
    running_copy: "running", &[];
    failed_step: "failed", &[];
    finished_run: "finished", &[];
}

#[test]
fn two_person_confirm_dialog_asks_for_the_typed_id() {
    let mut s = scenario("finished");
    s.status = RunStatus::Waiting {
        steps: vec!["promote".into()],
    };
    let p = step(&mut s, "promote");
    p.state = StepState::AwaitingConfirmation;
    p.confirmed_by = None;
    let mut app = app_for(s, Theme::MONO);
    app.update(Action::Resize(80, 24));
    for k in [key('c')].into_iter().chain(typed("prom")) {
        app.update(Action::Key(k));
    }
    let mut term = match Terminal::new(TestBackend::new(80, 24)) {
        Ok(t) => t,
        Err(e) => panic!("test backend: {e}"),
    };
    if let Err(e) = term.draw(|f| render::draw(f, &mut app)) {
        panic!("draw: {e}");
    }
    let text = screen(term.backend().buffer());
    assert!(text.contains("Confirm `promote`"), "{text}");
    assert!(
        text.contains("⚠ point of no return: this cannot be undone"),
        "{text}"
    );
    assert!(text.contains("type `promote` to confirm: prom"), "{text}");
    assert!(text.contains("Enter confirm · Esc cancel"), "{text}");
}

#[test]
fn help_lists_every_key() {
    let mut app = app_for(scenario("awaiting"), Theme::MONO);
    app.update(Action::Resize(100, 30));
    app.update(Action::Key(key('?')));
    let mut term = match Terminal::new(TestBackend::new(100, 30)) {
        Ok(t) => t,
        Err(e) => panic!("test backend: {e}"),
    };
    if let Err(e) = term.draw(|f| render::draw(f, &mut app)) {
        panic!("draw: {e}");
    }
    let text = screen(term.backend().buffer());
    for b in crate::tui::keys::KEYS {
        let (k, what) = (b.label(), b.what);
        assert!(text.contains(&k), "help lacks `{k}`:\n{text}");
        assert!(text.contains(what), "help lacks `{what}`:\n{text}");
    }
}

#[test]
fn every_size_from_tiny_to_huge_renders_without_panicking() {
    for scene in ["start", "awaiting", "running", "failed", "finished"] {
        for (w, h) in [
            (1, 1),
            (10, 5),
            (40, 12),
            (80, 24),
            (100, 28),
            (140, 40),
            (250, 70),
        ] {
            for keys in [
                vec![],
                vec![key('c')],
                vec![key('l')],
                vec![key('?')],
                vec![code(KeyCode::Enter)],
            ] {
                let _ = shot(scene, w, h, &keys);
            }
        }
    }
}
