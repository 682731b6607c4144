//! The DMS pane: whole-screen insta snapshots at 80×24 and 160×48 of a run whose
//! DMS task has a table in "Table error" while the task keeps running (the pane
//! names the table and the message), and widget tests: failing rows come first
//! and are red, a healthy task is not, the pane is absent without a DMS monitor.

use super::*;
use crate::tui::render::{self, DmsPane};
use crate::tui::Action;
use ferry_core::engine::snapshot::DmsTaskView;
use ferry_core::results::dms::{TableStat, TaskState};
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::widgets::Widget;
use ratatui::Terminal;

const DMS_RUNBOOK: &str = r#"
[runbook]
name = "orders-dms"
title = "Orders → modern through AWS DMS"
format = 1

[aws]
region = "eu-west-1"

[[monitor.dms]]
name = "cdc"
task = "arn:aws:dms:eu-west-1:123456789012:task:ORDERSSYNC"
every = "15s"

[[phase]]
id = "cdc"
title = "Full load and CDC"

  [[phase.step]]
  id = "dms-start"
  kind = "dms"
  action = "start"
  task = "arn:aws:dms:eu-west-1:123456789012:task:ORDERSSYNC"
  wait = "running"

  [[phase.step]]
  id = "full-load"
  kind = "wait"
  until = { dms = "cdc", full_load = "done" }
  confirm = "none"

  [[phase.step]]
  id = "latency-low"
  kind = "wait"
  until = { dms = "cdc", latency_below = "30s", for = "5m" }
"#;

fn dms_rb() -> Arc<Runbook> {
    Arc::new(
        ferry_core::runbook::load_str("dms.toml", DMS_RUNBOOK, std::path::Path::new("dms.toml"))
            .unwrap_or_else(|e| panic!("dms runbook: {}", e.render())),
    )
}

fn stat(name: &str, state: &str, rows: i64) -> TableStat {
    TableStat {
        schema: "app".into(),
        table: name.into(),
        state: state.into(),
        full_load_rows: rows,
        inserts: rows / 10,
        updates: rows / 100,
        deletes: 0,
        validation_state: Some("Validated".into()),
        ..TableStat::default()
    }
}

/// The task mid-load with `app.orders` in "Table error" (or all healthy).
fn view(failing: bool) -> DmsTaskView {
    let mut tables = vec![
        stat("users", "Table completed", 120_000),
        stat("payments", "Full load", 48_211),
        stat("orders", "Full load", 3_100),
        stat("items", "Before load", 0),
    ];
    let mut state = TaskState {
        task: "orders-sync".into(),
        arn: "arn:aws:dms:eu-west-1:123456789012:task:ORDERSSYNC".into(),
        status: "running".into(),
        migration_type: Some("full-load-and-cdc".into()),
        full_load_percent: Some(62),
        tables_loaded: Some(1),
        tables_loading: Some(2),
        tables_queued: Some(1),
        tables_errored: Some(0),
        ..TaskState::default()
    };
    let mut problems = Vec::new();
    if failing {
        tables[2].state = "Table error".into();
        tables[2].validation_state = None;
        state.tables_errored = Some(1);
        state.last_failure_message =
            Some("ERROR: duplicate key value violates unique constraint \"orders_pkey\"".into());
        problems = ferry_core::aws::dms::problems(&state, &tables);
    }
    DmsTaskView {
        name: "cdc".into(),
        task: state.arn.clone(),
        state: Some(state),
        tables,
        problems,
        latency: Some(Sample {
            at: ago(60),
            value: 4.2,
        }),
        latency_note: None,
        updated: Some(ago(4)),
        stale: None,
    }
}

fn app(failing: bool, theme: Theme) -> App {
    let rb = dms_rb();
    let mut snap = fresh(&rb);
    snap.monitors = Arc::new(MonitorsSnapshot {
        dms: vec![view(failing)],
        ..MonitorsSnapshot::default()
    });
    let s = step(&mut snap, "dms-start");
    s.state = StepState::Succeeded;
    s.started = Some(ago(300));
    s.finished = Some(ago(280));
    let w = step(&mut snap, "full-load");
    w.state = StepState::Running;
    w.started = Some(ago(280));
    App::new(rb, snap, Arc::new(Redactor::new()), theme, now())
}

fn shot(failing: bool, w: u16, h: u16) -> (String, Buffer) {
    let mut app = app(failing, Theme::COLOR);
    app.update(Action::Resize(w, h));
    let mut term = match Terminal::new(TestBackend::new(w, h)) {
        Ok(t) => t,
        Err(e) => panic!("test backend: {e}"),
    };
    if let Err(e) = term.draw(|f| render::draw(f, &mut app)) {
        panic!("draw: {e}");
    }
    let buf = term.backend().buffer().clone();
    (screen(&buf), buf)
}

#[test]
fn dms_pane_with_a_table_error() {
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let (text, _) = shot(true, w, h);
        assert!(text.contains("DMS cdc · 1 problem"), "{text}");
        assert!(text.contains("app.orders"), "{text}");
        insta::assert_snapshot!(format!("dms_pane_table_error_{w}x{h}"), text);
    }
}

/// The cells of the first row containing `needle`, and that row's index.
fn row_of(buf: &Buffer, needle: &str) -> u16 {
    let rows = lines(buf);
    match rows.iter().position(|r| r.contains(needle)) {
        Some(i) => i as u16,
        None => panic!("`{needle}` not on screen:\n{}", rows.join("\n")),
    }
}

fn fg_at(buf: &Buffer, y: u16, needle: &str) -> Color {
    let row = &lines(buf)[y as usize];
    let byte = row.find(needle).unwrap_or(0);
    let x = fmt_cells(&row[..byte]);
    buf[(x, y)].fg
}

/// The cell column of a byte offset (every character here is one cell wide).
fn fmt_cells(prefix: &str) -> u16 {
    prefix.chars().count() as u16
}

#[test]
fn a_failing_table_is_red_and_listed_first() {
    let app = app(true, Theme::COLOR);
    let area = Rect::new(0, 0, 100, 10);
    let mut buf = Buffer::empty(area);
    DmsPane::new(&app).render(area, &mut buf);
    let rows = lines(&buf);
    let header = row_of(&buf, "│table ");
    assert!(
        rows[header as usize + 1].contains("app.orders"),
        "the errored table comes first:\n{}",
        rows.join("\n")
    );
    let y = row_of(&buf, "app.orders    ");
    assert_eq!(fg_at(&buf, y, "app.orders"), Color::Red);
    assert_eq!(fg_at(&buf, y, "Table error"), Color::Red);
    let problem = row_of(&buf, "✘ table app.orders is `Table error`");
    assert!(
        rows[problem as usize].contains("duplicate key"),
        "the message is named: {}",
        rows[problem as usize]
    );
    assert_eq!(fg_at(&buf, problem, "✘ table"), Color::Red);
    assert_eq!(buf[(0, 0)].fg, Color::Red, "the border turns red");
    let ok = row_of(&buf, "app.users");
    assert_ne!(fg_at(&buf, ok, "app.users"), Color::Red);
}

#[test]
fn a_healthy_task_is_not_red_and_a_runbook_without_dms_has_no_pane() {
    let app = app(false, Theme::COLOR);
    let area = Rect::new(0, 0, 100, 10);
    let mut buf = Buffer::empty(area);
    DmsPane::new(&app).render(area, &mut buf);
    let rows = lines(&buf);
    assert!(rows[0].contains("DMS cdc") && !rows[0].contains("problem"));
    assert!(
        rows[1].contains("orders-sync running · load 62% · ✔1 ▶2 …1 ✘0 · CDC 4.2s"),
        "{}",
        rows.join("\n")
    );
    for y in 0..10 {
        for x in 0..100 {
            assert_ne!(buf[(x, y)].fg, Color::Red, "nothing red at {x},{y}");
        }
    }
    // the cutover fixture has no [[monitor.dms]]: its screen has no DMS pane
    let (w, h) = (160u16, 48u16);
    let mut other = app_for(scenario("running"), Theme::COLOR);
    other.update(Action::Resize(w, h));
    let mut term = match Terminal::new(TestBackend::new(w, h)) {
        Ok(t) => t,
        Err(e) => panic!("test backend: {e}"),
    };
    if let Err(e) = term.draw(|f| render::draw(f, &mut other)) {
        panic!("draw: {e}");
    }
    assert!(!screen(term.backend().buffer()).contains(" DMS "));
}
