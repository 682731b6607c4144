//! Tests of the console: fixtures (a runbook parsed with `load_str` and engine
//! snapshots built by hand, no engine), then widget tests per pane, update tests
//! with injected keys, loop tests over `TestBackend`, and insta screen snapshots.

mod app_tests;
mod attached;
mod dms;
mod help_keys;
mod loop_tests;
mod panes;
mod rehearsal;
mod replication;
mod screens;

use crate::tui::{App, Theme};
use chrono::{DateTime, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ferry_core::engine::redact::Redactor;
use ferry_core::engine::snapshot::{
    EngineSnapshot, LagSeries, MetricSeries, MonitorsSnapshot, RowCount, RowCounts, Sample, Stale,
    StepSnap,
};
use ferry_core::runbook::Runbook;
use ferry_core::vocab::{Decision, Outcome, RunStatus, StepState};
use ferry_core::vocab::{Progress, ProgressItem};
use ratatui::buffer::Buffer;
use std::sync::Arc;

pub const RUNBOOK: &str = r#"
[runbook]
name = "legacy-to-v2"
title = "Legacy → prod-v2 cutover"
format = 1
window = { start = "2026-11-22T02:00:00Z", duration = "2h" }

[vars]
target_instance = "prod-v2"

[connections.source]
url = "${env:SOURCE_DATABASE_URL}"
[connections.target]
url = "${env:TARGET_DATABASE_URL}"
[connections.replica]
url = "postgres://app@replica.internal:5432/app"

[[monitor.lag]]
name = "replica"
connection = "replica"
warn = "5s"
max = "30s"

[[monitor.lag]]
name = "rds-replica"
cloudwatch = { instance = "${vars.target_instance}" }

[[monitor.metric]]
name = "source-cpu"
title = "Source CPU"
unit = "%"
warn = 80
cloudwatch = { namespace = "AWS/RDS", metric = "CPUUtilization", dimensions = { DBInstanceIdentifier = "legacy" }, stat = "Average", period = "60s" }
[[monitor.metric]]
name = "source-tps"
title = "Source commits/s"
sql = { connection = "source", query = "select sum(xact_commit) from pg_stat_database", rate = true, every = "5s" }

[monitor.rowcounts]
source = "source"
target = "target"
tables = ["public.*"]
every = "10s"

[[phase]]
id = "precheck"
title = "Pre-cutover checks"

  [[phase.step]]
  id = "snapshot-restored"
  title = "Last night's snapshot was restored and spot-checked"
  kind = "confirm"
  notes = "Check the restore log first."

  [[phase.step]]
  id = "lag-low"
  kind = "wait"
  until = { lag = "replica", below = "10s", for = "60s" }
  timeout = "30m"
  confirm = "none"

[[phase]]
id = "cutover"
title = "Cutover"

  [[phase.step]]
  id = "maintenance-on"
  kind = "shell"
  run = "./scripts/maintenance.sh on --region ${env:AWS_REGION} --instance ${vars.target_instance}"
  timeout = "2m"
  rollback = { run = "./scripts/maintenance.sh off" }

  [[phase.step]]
  id = "copy"
  kind = "copy"
  title = "Copy every table"
  from = "source"
  to = "target"
  tables = ["public.*"]
  chunk_rows = 50000
  parallel = 2
  throttle = { lag = "replica", above = "30s" }

  [[phase.step]]
  id = "verify"
  kind = "verify"
  source = "source"
  target = "target"
  tables = ["public.*"]
  checks = ["schema", "counts", "checksums", "sample"]
  sample = 1000

  [[phase.step]]
  id = "promote"
  kind = "rds"
  action = "promote_read_replica"
  instance = "${vars.target_instance}"
  wait = "available"
  confirm = "two-person"
  point_of_no_return = true
  rollback = ["maintenance-off"]

[[phase]]
id = "rollback"
title = "Rollback path"

  [[phase.step]]
  id = "maintenance-off"
  kind = "shell"
  run = "./scripts/maintenance.sh off"
  depends_on = []
"#;

pub fn rb() -> Arc<Runbook> {
    Arc::new(
        ferry_core::runbook::load_str(
            "cutover.toml",
            RUNBOOK,
            std::path::Path::new("cutover.toml"),
        )
        .unwrap_or_else(|e| panic!("fixture runbook: {}", e.render())),
    )
}

/// A runbook with no monitors at all.
pub fn bare_rb() -> Arc<Runbook> {
    let src = r#"
[runbook]
name = "bare"
title = "Bare"
format = 1
[[phase]]
id = "only"
  [[phase.step]]
  id = "ask"
  kind = "confirm"
  [[phase.step]]
  id = "hello"
  kind = "shell"
  run = "echo hello"
"#;
    Arc::new(
        ferry_core::runbook::load_str("bare.toml", src, std::path::Path::new("bare.toml"))
            .unwrap_or_else(|e| panic!("bare runbook: {}", e.render())),
    )
}

/// The fixed clock of every test: 41 minutes into the window.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 2, 41, 7)
        .single()
        .unwrap_or_default()
}

pub fn ago(secs: i64) -> DateTime<Utc> {
    now() - chrono::Duration::seconds(secs)
}

/// A fresh snapshot: every step pending, no monitor values.
pub fn fresh(rb: &Runbook) -> EngineSnapshot {
    let only = rb.rollback_only();
    EngineSnapshot {
        runbook_name: rb.name.clone(),
        runbook_title: rb.title.clone(),
        journal: "runs/legacy-to-v2/2026-11-22T02-00-00Z.jsonl".into(),
        operator: "alice".into(),
        status: RunStatus::Active,
        steps: rb
            .steps()
            .map(|s| StepSnap::new(s, only.contains_key(s.id.as_str())))
            .collect(),
        window: rb.window.clone(),
        monitors: Arc::default(),
        attached: Vec::new(),
        rehearsal: None,
    }
}

pub fn step<'a>(s: &'a mut EngineSnapshot, id: &str) -> &'a mut StepSnap {
    match s.steps.iter_mut().find(|x| x.id == id) {
        Some(x) => x,
        None => panic!("no step {id} in the fixture"),
    }
}

/// Mark `id` succeeded: confirmed by `by` (if any), started `start` seconds ago, taking `took`.
pub fn done(s: &mut EngineSnapshot, id: &str, by: Option<&str>, start: i64, took: i64) {
    let x = step(s, id);
    x.state = StepState::Succeeded;
    x.attempt = 1;
    x.confirmed_by = by.map(str::to_string);
    x.started = Some(ago(start));
    x.finished = Some(ago(start - took));
    x.outcome = Some(Outcome::Succeeded {
        summary: "ok".into(),
    });
}

pub fn monitors() -> MonitorsSnapshot {
    let lag_values = [0.8, 1.1, 0.9, 1.4, 2.2, 1.9, 1.2, 1.0, 1.3, 1.4];
    let samples = |vals: &[f64], step: i64| -> Vec<Sample> {
        let n = vals.len() as i64;
        vals.iter()
            .enumerate()
            .map(|(i, v)| Sample {
                at: ago((n - 1 - i as i64) * step),
                value: *v,
            })
            .collect()
    };
    MonitorsSnapshot {
        replication: Vec::new(),
        lag: vec![
            LagSeries {
                name: "replica".into(),
                warn_secs: Some(5.0),
                max_secs: Some(30.0),
                samples: samples(&lag_values, 5),
                ..Default::default()
            },
            LagSeries {
                name: "rds-replica".into(),
                samples: samples(&[3.0, 4.0], 60),
                stale: Some(Stale {
                    error: "CloudWatch: throttled".into(),
                    last_good: Some(ago(95)),
                }),
                ..Default::default()
            },
        ],
        metrics: vec![
            MetricSeries {
                name: "source-cpu".into(),
                unit: Some("%".into()),
                warn: Some(80.0),
                samples: samples(&[22.0, 35.0, 41.0, 38.0, 55.0, 61.0, 47.0, 42.1], 60),
                ..Default::default()
            },
            MetricSeries {
                name: "source-tps".into(),
                samples: samples(&[1200.0, 1350.0, 990.0, 1500.0, 1720.0, 1610.0], 5),
                ..Default::default()
            },
        ],
        rowcounts: Some(RowCounts {
            source: "source".into(),
            target: "target".into(),
            tables: vec![
                RowCount {
                    table: "public.users".into(),
                    source: Some(120_000),
                    target: Some(120_000),
                    exact: true,
                },
                RowCount {
                    table: "public.matches".into(),
                    source: Some(88_000),
                    target: Some(42_311),
                    exact: true,
                },
                RowCount {
                    table: "public.messages".into(),
                    source: Some(1_250_000),
                    target: None,
                    exact: false,
                },
            ],
            updated: Some(ago(4)),
            stale: None,
        }),
        dms: Vec::new(),
    }
}

/// The named scenarios of the screen snapshots.
pub fn scenario(name: &str) -> EngineSnapshot {
    let rb = rb();
    let mut s = fresh(&rb);
    match name {
        "start" => {
            step(&mut s, "snapshot-restored").state = StepState::AwaitingConfirmation;
            s.status = RunStatus::Waiting {
                steps: vec!["snapshot-restored".into()],
            };
        }
        "awaiting" => {
            s.monitors = Arc::new(monitors());
            done(&mut s, "snapshot-restored", Some("alice"), 900, 40);
            done(&mut s, "lag-low", None, 860, 123);
            done(&mut s, "maintenance-on", Some("bob"), 700, 3);
            Arc::make_mut(&mut step(&mut s, "maintenance-on").output).extend([
                "maintenance mode on".to_string(),
                "banner shown".to_string(),
            ]);
            step(&mut s, "copy").state = StepState::AwaitingConfirmation;
            s.status = RunStatus::Waiting {
                steps: vec!["copy".into()],
            };
        }
        "running" => {
            s = scenario("awaiting");
            let c = step(&mut s, "copy");
            c.state = StepState::Running;
            c.attempt = 1;
            c.confirmed_by = Some("alice".into());
            c.started = Some(ago(83));
            c.progress = Some(Progress {
                done: 1_240_000,
                total: Some(2_000_000),
                unit: "rows".into(),
                rate: Some(1_200_000.0 / 83.0 * 80.0),
                eta_secs: Some(41),
                eta_basis: Some(ferry_core::vocab::EtaBasis::RehearsedRates),
                bytes: None,
                items: vec![
                    ProgressItem {
                        name: "users".into(),
                        done: 120_000,
                        total: Some(120_000),
                        state: "done".into(),
                    },
                    ProgressItem {
                        name: "matches".into(),
                        done: 42_311,
                        total: Some(88_000),
                        state: "running".into(),
                    },
                    ProgressItem {
                        name: "messages".into(),
                        done: 0,
                        total: None,
                        state: "pending".into(),
                    },
                ],
                note: None,
                catch_up: None,
            });
            Arc::make_mut(&mut c.output)
                .extend((1..=30).map(|i| format!("chunk {i:03} committed")));
            s.status = RunStatus::Active;
        }
        "failed" => {
            s = scenario("running");
            let c = step(&mut s, "copy");
            c.state = StepState::Succeeded;
            c.finished = Some(ago(20));
            c.outcome = Some(Outcome::Succeeded {
                summary: "copied 2,000,000 rows in 3 tables".into(),
            });
            let v = step(&mut s, "verify");
            v.state = StepState::Failed;
            v.attempt = 1;
            v.started = Some(ago(19));
            v.finished = Some(ago(2));
            v.outcome = Some(Outcome::Failed {
                error: "public.matches: 45689 rows missing on the target (ids 42312..88000)".into(),
            });
            Arc::make_mut(&mut v.output).push_back("schema ✔  counts ✘".into());
            s.status = RunStatus::Halted {
                step: "verify".into(),
            };
        }
        "finished" => {
            s.monitors = Arc::new(monitors());
            done(&mut s, "snapshot-restored", Some("alice"), 3000, 40);
            done(&mut s, "lag-low", None, 2960, 123);
            done(&mut s, "maintenance-on", Some("bob"), 2800, 3);
            done(&mut s, "copy", Some("alice"), 2700, 1500);
            done(&mut s, "verify", None, 1200, 300);
            done(&mut s, "promote", Some("alice"), 900, 600);
            s.status = RunStatus::Finished { ok: true };
        }
        other => panic!("no scenario {other}"),
    }
    s
}

pub fn app_for(snap: EngineSnapshot, theme: Theme) -> App {
    App::new(rb(), snap, Arc::new(Redactor::new()), theme, now())
}

pub fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

pub fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// Every key of `text` as a character key.
pub fn typed(text: &str) -> Vec<KeyEvent> {
    text.chars().map(key).collect()
}

/// The buffer's text, one string per row, trailing spaces kept.
pub fn lines(buf: &Buffer) -> Vec<String> {
    let a = buf.area;
    (a.y..a.y + a.height)
        .map(|y| {
            let mut row = String::new();
            let mut x = a.x;
            while x < a.x + a.width {
                let cell = &buf[(x, y)];
                row.push_str(cell.symbol());
                x += 1;
            }
            row
        })
        .collect()
}

/// The buffer's text as one string, rows joined by newlines, trailing spaces cut.
pub fn screen(buf: &Buffer) -> String {
    lines(buf)
        .iter()
        .map(|l| l.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
