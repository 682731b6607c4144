//! Widget tests: each pane rendered into a `Buffer`, asserted on its text (and,
//! for `NO_COLOR`, on its cells' colours).

use super::*;
use crate::tui::render::ListScroll;
use crate::tui::render::{
    DetailPane, LagPane, MessageRow, MetricsPane, RowCountsPane, RunbookPane, StatusBar,
};
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::widgets::{StatefulWidget, Widget};

fn render(w: u16, h: u16, f: impl FnOnce(Rect, &mut Buffer)) -> Vec<String> {
    let area = Rect::new(0, 0, w, h);
    let mut buf = Buffer::empty(area);
    f(area, &mut buf);
    lines(&buf)
}

fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

#[track_caller]
fn assert_has(lines: &[String], needle: &str) {
    assert!(
        has(lines, needle),
        "`{needle}` not on screen:\n{}",
        lines.join("\n")
    );
}

#[test]
fn runbook_pane_shows_glyphs_confirmers_durations_and_rollback_only_steps() {
    let app = app_for(scenario("awaiting"), Theme::MONO);
    let out = render(44, 14, |a, b| {
        RunbookPane::new(&app, true).render(a, b, &mut ListScroll::default())
    });
    let expected = Buffer::with_lines([
        "┏ Runbook · 3/6 done ━━━━━━━━━━━━━━━━━━━━━━┓",
        "┃▾ ✔ precheck  Pre-cutover checks       2/2┃",
        "┃  ✔ snapshot-restored            alice 40s┃",
        "┃  ✔ lag-low                          2m03s┃",
        "┃▾ ? cutover  Cutover                   1/4┃",
        "┃  ✔ maintenance-on                  bob 3s┃",
        "┃  ? copy                      awaiting you┃",
        "┃  · verify                                ┃",
        "┃  · promote                    ⚠ no return┃",
        "┃▾ · rollback  Rollback path            0/0┃",
        "┃  · maintenance-off    rollback of promote┃",
        "┃                                          ┃",
        "┃                                          ┃",
        "┗━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┛",
    ]);
    assert_eq!(out, lines(&expected));
}

#[test]
fn runbook_pane_folds_a_phase_and_marks_who_confirmed_and_automatic() {
    let mut snap = scenario("awaiting");
    step(&mut snap, "maintenance-on").automatic = true;
    let mut app = app_for(snap, Theme::MONO);
    app.follow = false;
    app.folded.insert(0);
    let out = render(44, 8, |a, b| {
        RunbookPane::new(&app, false).render(a, b, &mut ListScroll::default())
    });
    assert_has(&out, "▸ ✔ precheck");
    assert!(!has(&out, "snapshot-restored"), "{out:?}");
    assert_has(&out, "maintenance-on                 auto 3s");
    assert_has(&out, "↓"); // more rows below
}

#[test]
fn runbook_pane_shows_running_progress_and_failure() {
    let app = app_for(scenario("failed"), Theme::MONO);
    let out = render(44, 12, |a, b| {
        RunbookPane::new(&app, false).render(a, b, &mut ListScroll::default())
    });
    assert_has(&out, "✘ cutover");
    assert_has(&out, "✘ verify");
    assert_has(&out, "failed 17s");
    assert_has(&out, "✔ copy");
    assert_has(&out, "alice 1m03s");
    let app = app_for(scenario("running"), Theme::MONO);
    let out = render(44, 12, |a, b| {
        RunbookPane::new(&app, false).render(a, b, &mut ListScroll::default())
    });
    assert_has(&out, "▶ copy");
    assert_has(&out, "62% alice 1m23s");
}

#[test]
fn detail_pane_shows_the_command_with_vars_filled_and_env_refs_as_written() {
    let mut app = app_for(scenario("awaiting"), Theme::MONO);
    app.select(crate::tui::app::Sel::Step("maintenance-on".into()));
    let out = render(100, 16, |a, b| DetailPane::new(&app, false).render(a, b));
    assert_has(&out, "✔ maintenance-on");
    assert_has(
        &out,
        "$ ./scripts/maintenance.sh on --region ${env:AWS_REGION} --instance prod-v2",
    );
    assert_has(&out, "rollback: $ ./scripts/maintenance.sh off");
    assert_has(&out, "confirmed by bob");
    assert_has(&out, "output · 2 lines");
    assert_has(&out, "banner shown");
}

#[test]
fn detail_pane_describes_wait_copy_verify_and_rds_steps() {
    let mut app = app_for(scenario("start"), Theme::MONO);
    let cases = [
        (
            "lag-low",
            "wait until lag `replica` below 10s for 1m, checking every",
        ),
        ("copy", "copy public.*  source → target"),
        ("copy", "chunks of 50000 rows · 2 in parallel"),
        ("copy", "pauses while lag `replica` above 30s"),
        ("verify", "verify public.*  source ↔ target"),
        (
            "verify",
            "checks schema, counts, checksums, sample · sample 1000 rows",
        ),
        (
            "promote",
            "rds promote_read_replica instance prod-v2, then wait for `available`",
        ),
        ("promote", "⚠ point of no return"),
        ("snapshot-restored", "Check the restore log first."),
        ("maintenance-off", "rollback of promote"),
    ];
    for (id, text) in cases {
        app.select(crate::tui::app::Sel::Step(id.into()));
        let out = render(110, 20, |a, b| DetailPane::new(&app, false).render(a, b));
        assert_has(&out, text);
    }
}

#[test]
fn detail_pane_progress_bar_rate_eta_and_output_scrolling() {
    let mut app = app_for(scenario("running"), Theme::MONO);
    let out = render(90, 20, |a, b| DetailPane::new(&app, false).render(a, b));
    let bar = out
        .iter()
        .find(|l| l.contains('█'))
        .unwrap_or_else(|| panic!("no progress bar:\n{}", out.join("\n")));
    assert!(bar.contains("62%"), "{bar}");
    assert!(bar.contains("1.2M rows/s"), "{bar}");
    // the ETA says what it was worked out from
    assert!(bar.contains("ETA 00:41 rehearsed rates"), "{bar}");
    // the counts come last, where the width leaves room for them
    assert!(!bar.contains("1.2M/2.0M rows"), "{bar}");
    let wide = render(120, 20, |a, b| DetailPane::new(&app, false).render(a, b));
    assert_has(&wide, "ETA 00:41 rehearsed rates  1.2M/2.0M rows");
    assert_has(&out, "users ✔   matches ▶ 48%   messages …");
    assert_has(&out, "chunk 030 committed");
    // PgUp scrolls the output back
    app.update(crate::tui::Action::Key(code(KeyCode::PageUp)));
    let out = render(90, 20, |a, b| DetailPane::new(&app, false).render(a, b));
    assert!(!has(&out, "chunk 030 committed"), "{}", out.join("\n"));
    assert_has(&out, "↑10 (PgDn)");
    app.update(crate::tui::Action::Key(code(KeyCode::PageDown)));
    let out = render(90, 20, |a, b| DetailPane::new(&app, false).render(a, b));
    assert_has(&out, "chunk 030 committed");
}

#[test]
fn detail_pane_shows_a_failure_and_a_phase_summary() {
    let mut app = app_for(scenario("failed"), Theme::MONO);
    let out = render(90, 16, |a, b| DetailPane::new(&app, false).render(a, b));
    assert_has(&out, "✘ verify");
    assert_has(&out, "✘ public.matches: 45689 rows missing on the target");
    app.select(crate::tui::app::Sel::Phase(1));
    let out = render(90, 10, |a, b| DetailPane::new(&app, false).render(a, b));
    assert_has(&out, "phase cutover  Cutover");
    assert_has(&out, "4 steps: ✔ 2 succeeded · ✘ 1 failed · · 1 pending");
}

#[test]
fn lag_pane_shows_value_sparkline_thresholds_and_stale_series() {
    let app = app_for(scenario("awaiting"), Theme::MONO);
    let out = render(60, 4, |a, b| LagPane::new(&app, false).render(a, b));
    assert_eq!(out[0], format!("┌ Replication lag {}┐", "─".repeat(41)));
    // the sparkline is scaled to the warn threshold (5s) or the highest sample
    assert!(
        out[1].starts_with("│replica       1.4s ▂▃▂▃▄▄▃▂▃▃"),
        "{}",
        out[1]
    );
    assert!(out[1].ends_with("warn 5.0s · max 30.0s│"), "{}", out[1]);
    assert_eq!(
        out[2],
        format!("│{:<58}│", "rds-replica stale 1m35s: CloudWatch: throttled")
    );
}

#[test]
fn lag_pane_marks_warn_and_max_in_words_and_shows_notes() {
    let mut snap = scenario("awaiting");
    if let Some(s) = Arc::make_mut(&mut snap.monitors).lag[0].samples.last_mut() {
        s.value = 42.0;
    }
    Arc::make_mut(&mut snap.monitors).lag[1] = ferry_core::engine::snapshot::LagSeries {
        name: "rds-replica".into(),
        note: Some("SQLite has no replication".into()),
        ..Default::default()
    };
    let app = app_for(snap, Theme::MONO);
    let out = render(70, 4, |a, b| LagPane::new(&app, false).render(a, b));
    assert!(out[1].contains("42.0s MAX ▁▁▁▁▁▁▁▁▁█"), "{}", out[1]);
    assert_has(&out, "rds-replica — SQLite has no replication");
    let mut snap = scenario("awaiting");
    if let Some(s) = Arc::make_mut(&mut snap.monitors).lag[0].samples.last_mut() {
        s.value = 7.5;
    }
    let app = app_for(snap, Theme::MONO);
    let out = render(70, 4, |a, b| LagPane::new(&app, false).render(a, b));
    assert!(out[1].contains("7.5s WARN"), "{}", out[1]);
    // no samples at all yet
    let app = app_for(scenario("start"), Theme::MONO);
    let out = render(70, 4, |a, b| LagPane::new(&app, false).render(a, b));
    assert_has(&out, "replica     no value yet");
}

#[test]
fn panes_say_when_the_runbook_has_no_such_monitor() {
    let rb = bare_rb();
    let app = App::new(
        rb.clone(),
        fresh(&rb),
        Arc::new(Redactor::new()),
        Theme::MONO,
        now(),
    );
    let out = render(50, 3, |a, b| LagPane::new(&app, false).render(a, b));
    assert_eq!(
        out[1],
        format!("│{:<48}│", "no lag monitor in this runbook")
    );
    let out = render(50, 3, |a, b| RowCountsPane::new(&app, false).render(a, b));
    assert_eq!(
        out[1],
        format!("│{:<48}│", "no row-count monitor in this runbook")
    );
    let out = render(50, 3, |a, b| MetricsPane::new(&app, false).render(a, b));
    assert_eq!(
        out[1],
        format!("│{:<48}│", "no metric monitor in this runbook")
    );
}

#[test]
fn rowcount_pane_shows_source_target_and_delta() {
    let app = app_for(scenario("awaiting"), Theme::MONO);
    let out = render(60, 7, |a, b| RowCountsPane::new(&app, false).render(a, b));
    assert_eq!(
        out[0],
        format!(
            "┌ Row counts source → target · 1 of 3 differ {}┐",
            "─".repeat(14)
        )
    );
    let rows = Buffer::with_lines([
        "│table                          source     target         Δ│",
        "│public.users                  120,000    120,000         0│",
        "│public.matches                 88,000     42,311    45,689│",
        "│public.messages            ~1,250,000          …         …│",
    ]);
    assert_eq!(out[1..5], lines(&rows));
    assert_eq!(out[5], format!("│{:<58}│", "counted 4s ago"));
}

#[test]
fn rowcount_pane_shows_stale_and_waiting() {
    let mut snap = scenario("awaiting");
    if let Some(rc) = Arc::make_mut(&mut snap.monitors).rowcounts.as_mut() {
        rc.stale = Some(ferry_core::engine::snapshot::Stale {
            error: "target: connection refused".into(),
            last_good: Some(ago(70)),
        });
    }
    let app = app_for(snap, Theme::MONO);
    let out = render(60, 7, |a, b| RowCountsPane::new(&app, false).render(a, b));
    assert_eq!(
        out[5],
        format!("│{:<58}│", "stale 1m10s: target: connection refused")
    );
    let app = app_for(scenario("start"), Theme::MONO);
    let out = render(60, 7, |a, b| RowCountsPane::new(&app, false).render(a, b));
    assert_has(&out, "waiting for the first count…");
}

#[test]
fn metrics_pane_draws_braille_charts_with_axes_and_latest_values() {
    let app = app_for(scenario("awaiting"), Theme::MONO);
    let out = render(100, 12, |a, b| MetricsPane::new(&app, false).render(a, b));
    let braille = out
        .iter()
        .flat_map(|l| l.chars())
        .filter(|c| ('\u{2801}'..='\u{28ff}').contains(c))
        .count();
    assert!(braille > 10, "too few Braille cells:\n{}", out.join("\n"));
    assert_has(&out, "Source CPU 42.1 %");
    assert_has(&out, "Source commits/s 1610");
    assert_has(&out, "now");
    assert_has(&out, "-7m00s");
    assert_has(&out, "││88   │"); // the CPU axis top: warn 80 + 10%
    assert_has(&out, "││0    │");
}

#[test]
fn metrics_pane_shows_stale_series_and_waiting() {
    let mut snap = scenario("awaiting");
    Arc::make_mut(&mut snap.monitors).metrics[0].stale =
        Some(ferry_core::engine::snapshot::Stale {
            error: "CloudWatch unreachable".into(),
            last_good: Some(ago(300)),
        });
    Arc::make_mut(&mut snap.monitors).metrics[1].samples.clear();
    let app = app_for(snap, Theme::MONO);
    let out = render(100, 12, |a, b| MetricsPane::new(&app, false).render(a, b));
    assert_has(&out, "Source CPU 42.1 % stale 5m00s");
    assert_has(&out, "CloudWatch unreachable");
    assert_has(&out, "waiting for samples…");
}

#[test]
fn status_bar_shows_clock_window_operator_journal_and_hints() {
    let app = app_for(scenario("awaiting"), Theme::MONO);
    let out = render(120, 1, |a, b| StatusBar::new(&app).render(a, b));
    assert_eq!(
        out[0].trim_end(),
        " 02:41:07 UTC · window 1h18m left · alice · journal runs/legacy-to-v2/2026-11-22T02-00-00Z.jsonl · ? help · q quit"
    );
    // narrower: the journal path is cut from the left, then dropped
    let out = render(90, 1, |a, b| StatusBar::new(&app).render(a, b));
    assert!(
        out[0].contains("journal …-22T02-00-00Z.jsonl · ? help"),
        "{}",
        out[0]
    );
    let out = render(70, 1, |a, b| StatusBar::new(&app).render(a, b));
    assert_eq!(
        out[0].trim_end(),
        " 02:41:07 UTC · window 1h18m left · alice · ? help · q quit"
    );
    let mut app = app_for(scenario("awaiting"), Theme::MONO);
    app.update(crate::tui::Action::Tick(
        now() + chrono::Duration::minutes(100),
    ));
    let out = render(60, 1, |a, b| StatusBar::new(&app).render(a, b));
    assert!(out[0].contains("window overrun 21m07s"), "{}", out[0]);
}

#[test]
fn message_row_shows_the_run_state_and_messages() {
    let app = app_for(scenario("awaiting"), Theme::MONO);
    let out = render(80, 1, |a, b| MessageRow::new(&app).render(a, b));
    assert_eq!(
        out[0].trim_end(),
        " ? awaiting you: `copy` · c confirm · s skip"
    );
    let app = app_for(scenario("failed"), Theme::MONO);
    let out = render(80, 1, |a, b| MessageRow::new(&app).render(a, b));
    assert_eq!(
        out[0].trim_end(),
        " ✘ halted: `verify` failed · r retry · s skip · b roll back"
    );
    let app = app_for(scenario("finished"), Theme::MONO);
    let out = render(80, 1, |a, b| MessageRow::new(&app).render(a, b));
    assert_eq!(
        out[0].trim_end(),
        " ✔ run finished: every step succeeded · q quits"
    );
}

#[test]
fn no_color_uses_no_colour_anywhere_but_colour_mode_does() {
    for (theme, want_colour) in [(Theme::MONO, false), (Theme::COLOR, true)] {
        let mut app = app_for(scenario("failed"), theme);
        app.update(crate::tui::Action::Resize(160, 48));
        let area = Rect::new(0, 0, 160, 48);
        let mut buf = Buffer::empty(area);
        (&app).render(area, &mut buf, &mut ListScroll::default());
        let coloured = buf
            .content()
            .iter()
            .filter(|c| c.fg != Color::Reset || c.bg != Color::Reset)
            .count();
        assert_eq!(
            coloured > 0,
            want_colour,
            "theme {theme:?}: {coloured} coloured cells"
        );
    }
}

#[test]
fn log_view_shows_the_newest_journal_lines_and_scrolls_back() {
    let mut app = app_for(scenario("awaiting"), Theme::MONO);
    for i in 0..50 {
        app.push_log(format!("02:41:{i:02} line {i}"));
    }
    let out = render(60, 6, |a, b| {
        crate::tui::render::LogPane::new(&app).render(a, b)
    });
    assert!(
        out[0].starts_with("┏ Journal log · 50 lines · l or Esc closes"),
        "{}",
        out[0]
    );
    assert_eq!(out[1], format!("┃{:<58}┃", "02:41:46 line 46"));
    assert_eq!(out[4], format!("┃{:<58}┃", "02:41:49 line 49"));
    app.log_view = true;
    app.update(crate::tui::Action::Key(code(KeyCode::PageUp)));
    let out = render(60, 6, |a, b| {
        crate::tui::render::LogPane::new(&app).render(a, b)
    });
    assert_eq!(out[4], format!("┃{:<58}┃", "02:41:39 line 39"));
    assert!(out[0].contains("↑10"), "{}", out[0]);
}
