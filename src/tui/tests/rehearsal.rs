//! The console with rehearsals, from the journals of five real rehearsals
//! (`tests/fixtures/rehearsals`, made by `ferry run --headless --yes`) read by
//! `report::rehearsal`, over a run at a fixed clock: `copy` running far past
//! its rehearsed p90 while the rollback budget warns, and the confirm dialog of
//! the point of no return showing the budget. Insta snapshots at 80×24 and 160×48.

use super::*;
use crate::tui::render;
use crate::tui::Action;
use ferry_core::vocab::rehearsal::Rehearsal;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::path::Path;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 2, 0, 0).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

/// The fixture runbook and what its five rehearsals say.
fn fixture() -> (Arc<Runbook>, Rehearsal) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rehearsals");
    let rb = ferry_core::runbook::load(&dir.join("cutover.toml"))
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let loaded = ferry_core::report::rehearsal::load(
        "journals/*.jsonl",
        &dir,
        &rb.name,
        &rb.source_sha256,
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.journals.len(), 5);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let r = loaded.rehearsal;
    // what the real runs took: four copies of 2, 3, 2.5 and 4 s, one rollback of 2 s
    let copy = r.steps["copy"];
    assert_eq!(copy.n, 4);
    assert!((2.4..3.2).contains(&copy.median_secs), "{copy:?}");
    assert!((3.4..4.6).contains(&copy.p90_secs), "{copy:?}");
    let back = r.rollbacks["freeze"];
    assert!(
        back.n == 1 && (1.9..3.0).contains(&back.p90_secs),
        "{back:?}"
    );
    (Arc::new(rb), r)
}

/// `freeze` done, `copy` running since 1 s into the window.
fn running(rb: &Runbook, r: &Rehearsal) -> EngineSnapshot {
    let mut s = fresh(rb);
    s.journal = "runs/rehearsed-cutover/2026-11-22T02-00-00Z.jsonl".into();
    s.rehearsal = Some(Arc::new(r.clone()));
    let f = step(&mut s, "freeze");
    f.state = StepState::Succeeded;
    f.attempt = 1;
    f.automatic = true;
    f.started = Some(at(0));
    f.finished = Some(at(1));
    let c = step(&mut s, "copy");
    c.state = StepState::Running;
    c.attempt = 1;
    c.started = Some(at(1));
    s.status = RunStatus::Active;
    s
}

fn draw(
    rb: Arc<Runbook>,
    snap: EngineSnapshot,
    now: DateTime<Utc>,
    w: u16,
    h: u16,
    keys: &[KeyEvent],
) -> String {
    let mut app = App::new(rb, snap, Arc::new(Redactor::new()), Theme::COLOR, now);
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

#[test]
fn a_step_past_its_p90_and_the_budget_warning() {
    let (rb, r) = fixture();
    // 31 s into a 40 s window: copy has run 30 s against a p90 of about 4 s
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let text = draw(rb.clone(), running(&rb, &r), at(31), w, h, &[]);
        assert!(text.contains("⚠>p90"), "{text}");
        // the row puts the budget first; at 80 columns the rehearsal count is cut
        if w >= 160 {
            assert!(text.contains("rehearsed ×5"), "{text}");
        }
        assert!(text.contains("⚠ rollback budget"), "{text}");
        insta::assert_snapshot!(format!("overrun_{w}x{h}"), text);
    }
    // early on, nothing is late and the budget is plenty
    let text = draw(rb.clone(), running(&rb, &r), at(2), 160, 48, &[]);
    assert!(
        !text.contains("⚠>p90") && !text.contains("⚠ rollback"),
        "{text}"
    );
    assert!(text.contains("rollback budget 36s"), "{text}");
}

#[test]
fn the_confirm_dialog_of_the_point_of_no_return_shows_the_budget() {
    let (rb, r) = fixture();
    let mut s = running(&rb, &r);
    for (id, from, to) in [("copy", 1, 4), ("verify", 4, 5)] {
        let x = step(&mut s, id);
        x.state = StepState::Succeeded;
        x.started = Some(at(from));
        x.finished = Some(at(to));
    }
    step(&mut s, "promote").state = StepState::AwaitingConfirmation;
    s.status = RunStatus::Waiting {
        steps: vec!["promote".into()],
    };
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let text = draw(rb.clone(), s.clone(), at(6), w, h, &[key('c')]);
        assert!(text.contains("Confirm `promote`"), "{text}");
        assert!(text.contains("window: rollback budget"), "{text}");
        insta::assert_snapshot!(format!("point_of_no_return_dialog_{w}x{h}"), text);
    }
}
