//! The replication pane: its lines against a `Buffer` (states, rows copied, lag,
//! headroom, error counts; red and said in words on an error), hidden while no
//! subscription of the run exists, and whole screens with it at 80×24 and 160×48.

use super::*;
use crate::tui::render::{self, layout, Configured, ReplicationPane};
use crate::tui::Action;
use ferry_core::monitor::subscription::{Headroom, ReplicationWatch, TableState, TableWatch};
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::widgets::Widget;
use ratatui::Terminal;

fn table(name: &str, state: TableState, rows: Option<i64>) -> TableWatch {
    TableWatch {
        table: name.into(),
        state,
        rows,
    }
}

/// The initial sync under way: one table copying, one ready, one waiting.
pub fn syncing() -> ReplicationWatch {
    ReplicationWatch {
        name: "ferry_cutover".into(),
        step: "copy".into(),
        source: "source".into(),
        target: "target".into(),
        exists: true,
        enabled: true,
        tables: vec![
            table("public.ledger", TableState::Ready, None),
            table("public.items", TableState::Copying, Some(1_240_000)),
            table("public.events", TableState::Init, None),
        ],
        lag_bytes: Some(1_572_864),
        lag_secs: Some(0.8),
        headroom: Some(Headroom {
            wal_status: Some("reserved".into()),
            safe_bytes: Some(3 * 1024 * 1024 * 1024),
        }),
        apply_errors: Some(0),
        sync_errors: Some(0),
        error: None,
        updated: Some(ago(1)),
        stale: None,
    }
}

/// Disabled by `disable_on_error` after a conflicting row.
pub fn broken() -> ReplicationWatch {
    ReplicationWatch {
        enabled: false,
        tables: vec![
            table("public.ledger", TableState::Ready, None),
            table("public.items", TableState::Ready, None),
            table("public.events", TableState::Ready, None),
        ],
        lag_bytes: Some(40_960),
        lag_secs: Some(12.0),
        apply_errors: Some(1),
        error: Some("subscription `ferry_cutover` could not apply a change to public.items (the transaction committing at 0/3A1F2C8 on the source) and disabled itself (apply errors 1, sync errors 0); fix the target, then `alter subscription ferry_cutover enable`".into()),
        ..syncing()
    }
}

fn with(scene: &str, w: ReplicationWatch) -> EngineSnapshot {
    let mut s = scenario(scene);
    Arc::make_mut(&mut s.monitors).replication = vec![w];
    s
}

fn pane(app: &App, w: u16, h: u16) -> (Vec<String>, Buffer) {
    let area = Rect::new(0, 0, w, h);
    let mut buf = Buffer::empty(area);
    (&ReplicationPane::new(app)).render(area, &mut buf);
    (lines(&buf), buf)
}

#[test]
fn the_pane_shows_lag_headroom_counts_and_tables_not_ready_first() {
    let app = app_for(with("running", syncing()), Theme::MONO);
    let (out, _) = pane(&app, 72, 7);
    let want = Buffer::with_lines([
        "┌ Replication · ferry_cutover · 1/3 ready · source → target ───────────┐",
        "│lag 1.5 MiB · 0.8s                                WAL headroom 3.0 GiB│",
        "│errors apply 0 · sync 0                                      streaming│",
        "│public.events init                                                    │",
        "│public.items  copying      1,240,000 rows                             │",
        "│public.ledger ready                                                   │",
        "└──────────────────────────────────────────────────────────────────────┘",
    ]);
    assert_eq!(out, lines(&want), "\n{}", out.join("\n"));
}

#[test]
fn an_error_turns_the_pane_red_and_says_so_in_words() {
    let app = app_for(with("running", broken()), Theme::COLOR);
    let (out, buf) = pane(&app, 90, 8);
    let text = out.join("\n");
    assert!(
        text.contains("┌ Replication ERROR · ferry_cutover · 3/3 ready"),
        "{text}"
    );
    assert!(text.contains("lag 40.0 KiB · 12.0s"), "{text}");
    assert!(text.contains("errors apply 1 · sync 0"), "{text}");
    assert!(text.contains("DISABLED│"), "{text}");
    assert!(
        text.contains("could not apply a change to public.items"),
        "{text}"
    );
    assert_eq!(buf[(0, 0)].fg, Color::Red, "the frame is red");
    let fine = app_for(with("running", syncing()), Theme::COLOR);
    let (_, buf) = pane(&fine, 90, 7);
    assert_ne!(buf[(0, 0)].fg, Color::Red);
    // NO_COLOR: the words carry it
    let mono = app_for(with("running", broken()), Theme::MONO);
    let (out, buf) = pane(&mono, 90, 7);
    assert!(out.join("\n").contains("ERROR"));
    assert!(buf.content.iter().all(|c| c.fg == Color::Reset));
}

#[test]
fn many_tables_end_in_a_count_and_a_stale_watch_says_why() {
    let mut w = syncing();
    w.tables = (0..10)
        .map(|i| table(&format!("public.t{i}"), TableState::Ready, None))
        .collect();
    w.stale = Some(Stale {
        error: "target: connection refused".into(),
        last_good: Some(ago(12)),
    });
    let app = app_for(with("running", w), Theme::MONO);
    let (out, _) = pane(&app, 72, 12);
    let text = out.join("\n");
    assert!(text.contains("… 4 more (4 ready)"), "{text}");
    assert!(
        text.contains("ferry_cutover stale 12s: target: connection refused"),
        "{text}"
    );
}

#[test]
fn no_subscription_no_pane() {
    let mut gone = syncing();
    gone.exists = false;
    for (snap, shown) in [
        (scenario("running"), false),
        (with("running", gone), false),
        (with("running", syncing()), true),
    ] {
        let mut app = app_for(snap, Theme::MONO);
        app.update(Action::Resize(80, 24));
        let a = layout(
            Rect::new(0, 0, 80, 24),
            false,
            false,
            Configured::of_app(&app),
        );
        assert_eq!(a.replication.is_some(), shown);
        if let (Some(r), Some(d)) = (a.replication, a.detail) {
            assert_eq!(r.y, d.y + d.height, "under the detail");
            assert!(d.height >= 6);
        }
    }
}

fn shot(snap: EngineSnapshot, w: u16, h: u16) -> String {
    let mut app = app_for(snap, Theme::COLOR);
    app.update(Action::Resize(w, h));
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
fn screens_with_the_replication_pane() {
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        insta::assert_snapshot!(
            format!("replication_syncing_{w}x{h}"),
            shot(with("running", syncing()), w, h)
        );
        insta::assert_snapshot!(
            format!("replication_error_{w}x{h}"),
            shot(with("failed", broken()), w, h)
        );
    }
}
