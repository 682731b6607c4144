//! One frame of the console: a 300-step runbook with every pane populated
//! (3 lag monitors, 4 metric charts, 40 row-count tables, a running copy with
//! progress and 200 output lines), rendered at 160×48 into a `TestBackend`.
//! Run with `cargo bench --bench render`; the figure is in BENCHMARKS.md.

use chrono::{DateTime, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use ferry::tui::{render, Action, App, Theme};
use ferry_core::engine::redact::Redactor;
use ferry_core::engine::snapshot::{
    EngineSnapshot, LagSeries, MetricSeries, MonitorsSnapshot, RowCount, RowCounts, Sample,
    StepSnap,
};
use ferry_core::runbook::Runbook;
use ferry_core::vocab::{Outcome, RunStatus, StepState};
use ferry_core::vocab::{Progress, ProgressItem};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::fmt::Write;
use std::sync::Arc;

const PHASES: usize = 10;
const STEPS_PER_PHASE: usize = 30;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 2, 41, 7)
        .single()
        .unwrap_or_default()
}

fn runbook_text() -> String {
    let mut t = String::from(
        r#"
[runbook]
name = "big"
title = "A 300-step cutover"
format = 1
window = { start = "2026-11-22T02:00:00Z", duration = "2h" }
[connections.source]
url = "${env:SOURCE_DATABASE_URL}"
[connections.target]
url = "${env:TARGET_DATABASE_URL}"
[monitor.rowcounts]
source = "source"
target = "target"
tables = ["public.*"]
"#,
    );
    for i in 0..3 {
        let _ = write!(
            t,
            "[[monitor.lag]]\nname = \"lag-{i}\"\nconnection = \"source\"\nwarn = \"5s\"\nmax = \"30s\"\n"
        );
    }
    for i in 0..4 {
        let _ = write!(
            t,
            "[[monitor.metric]]\nname = \"metric-{i}\"\ntitle = \"Metric {i}\"\nsql = {{ connection = \"source\", query = \"select {i}\", every = \"5s\" }}\n"
        );
    }
    for p in 0..PHASES {
        let _ = write!(t, "[[phase]]\nid = \"phase-{p}\"\ntitle = \"Phase {p}\"\n");
        for s in 0..STEPS_PER_PHASE {
            let id = format!("step-{p}-{s}");
            let body = match s % 6 {
                0 => "kind = \"confirm\"\nnotes = \"Check the dashboards and say so on the bridge.\"".to_string(),
                1 => format!("kind = \"shell\"\nrun = \"./scripts/do.sh {id} --region ${{env:AWS_REGION}}\"\nrollback = {{ run = \"./scripts/undo.sh {id}\" }}"),
                2 => format!("kind = \"sql\"\nconnection = \"source\"\nsql = \"update settings set v = '{id}' where k = 'phase'\""),
                3 => "kind = \"wait\"\nuntil = { lag = \"lag-0\", below = \"10s\", for = \"30s\" }".to_string(),
                4 => "kind = \"copy\"\nfrom = \"source\"\nto = \"target\"\ntables = [\"public.*\"]\nchunk_rows = 50000\nparallel = 2".to_string(),
                _ => "kind = \"verify\"\nsource = \"source\"\ntarget = \"target\"\ntables = [\"public.*\"]\nchecks = [\"counts\", \"checksums\"]".to_string(),
            };
            let _ = write!(t, "  [[phase.step]]\n  id = \"{id}\"\n  {body}\n");
        }
    }
    t
}

fn samples(n: usize, f: impl Fn(usize) -> f64) -> Vec<Sample> {
    (0..n)
        .map(|i| Sample {
            at: now() - chrono::Duration::seconds(((n - i) * 5) as i64),
            value: f(i),
        })
        .collect()
}

fn fixture() -> (Arc<Runbook>, EngineSnapshot) {
    let text = runbook_text();
    let rb =
        match ferry_core::runbook::load_str("big.toml", &text, std::path::Path::new("big.toml")) {
            Ok(rb) => Arc::new(rb),
            Err(e) => panic!("bench runbook: {}", e.render()),
        };
    let mut steps: Vec<StepSnap> = rb.steps().map(|s| StepSnap::new(s, false)).collect();
    let running = 150;
    for (i, s) in steps.iter_mut().enumerate() {
        if i < running {
            s.state = StepState::Succeeded;
            s.confirmed_by = Some("alice".into());
            s.started = Some(now() - chrono::Duration::seconds(3000 - i as i64 * 10));
            s.finished = Some(now() - chrono::Duration::seconds(2995 - i as i64 * 10));
            s.outcome = Some(Outcome::Succeeded {
                summary: "ok".into(),
            });
        }
    }
    let cur = &mut steps[running];
    cur.state = StepState::Running;
    cur.started = Some(now() - chrono::Duration::seconds(83));
    cur.output = Arc::new(
        (0..200)
            .map(|i| format!("chunk {i:04} of public.messages committed (50000 rows)"))
            .collect(),
    );
    cur.progress = Some(Progress {
        done: 1_240_000,
        total: Some(2_000_000),
        unit: "rows".into(),
        rate: Some(1_200_000.0),
        eta_secs: Some(41),
        eta_basis: Some(ferry_core::vocab::EtaBasis::LiveRate),
        bytes: None,
        items: (0..8)
            .map(|i| ProgressItem {
                name: format!("table_{i}"),
                done: i * 1000,
                total: Some(8000),
                state: if i < 3 { "done" } else { "running" }.into(),
            })
            .collect(),
        note: None,
        catch_up: None,
    });
    let snap = EngineSnapshot {
        runbook_name: rb.name.clone(),
        runbook_title: rb.title.clone(),
        journal: "runs/big/20261122T020000Z.jsonl".into(),
        operator: "alice".into(),
        status: RunStatus::Active,
        steps,
        rehearsal: None,
        window: rb.window.clone(),
        monitors: Arc::new(MonitorsSnapshot {
            replication: Vec::new(),
            lag: (0..3)
                .map(|i| LagSeries {
                    name: format!("lag-{i}"),
                    warn_secs: Some(5.0),
                    max_secs: Some(30.0),
                    samples: samples(120, |k| ((k * 7 + i * 3) % 11) as f64 * 0.4),
                    ..Default::default()
                })
                .collect(),
            metrics: (0..4)
                .map(|i| MetricSeries {
                    name: format!("metric-{i}"),
                    samples: samples(120, |k| 40.0 + ((k * 13 + i * 5) % 37) as f64),
                    ..Default::default()
                })
                .collect(),
            rowcounts: Some(RowCounts {
                source: "source".into(),
                target: "target".into(),
                tables: (0..40)
                    .map(|i| RowCount {
                        table: format!("public.table_{i:02}"),
                        source: Some(100_000 + i * 1000),
                        target: Some(100_000 + i * 900),
                        exact: true,
                    })
                    .collect(),
                updated: Some(now()),
                stale: None,
            }),
            dms: Vec::new(),
        }),
        attached: Vec::new(),
    };
    (rb, snap)
}

fn bench(c: &mut Criterion) {
    let (rb, snap) = fixture();
    let mut app = App::new(
        rb,
        snap.clone(),
        Arc::new(Redactor::new()),
        Theme::COLOR,
        now(),
    );
    app.update(Action::Resize(160, 48));
    let mut term = match Terminal::new(TestBackend::new(160, 48)) {
        Ok(t) => t,
        Err(e) => panic!("test backend: {e}"),
    };
    c.bench_function("console frame, 300 steps, 160x48", |b| {
        b.iter(|| {
            if let Err(e) = term.draw(|f| render::draw(f, &mut app)) {
                panic!("draw: {e}");
            }
        })
    });
    // what the event loop does per frame when the engine changed: clone the snapshot, draw
    c.bench_function("snapshot clone + frame, 300 steps, 160x48", |b| {
        b.iter(|| {
            app.update(Action::Snapshot(Arc::new(snap.clone())));
            if let Err(e) = term.draw(|f| render::draw(f, &mut app)) {
                panic!("draw: {e}");
            }
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
