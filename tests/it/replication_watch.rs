//! The background watch of a run's subscription on the real rig, read through the
//! engine's own snapshot (the run started in-process through `engine::start`, as
//! `ferry run` does): the tables' states reach ready with the lag and the WAL
//! headroom read; then a row inserted on the source whose key the target already
//! has, after the initial sync, makes the watch report the apply error with the
//! table named and fails the caught-up proof waiting on the slot, naming the
//! subscription and the table; the journal keeps both.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_core::engine::snapshot::EngineSnapshot;
use ferry_core::engine::start::{self, Settings};
use ferry_core::monitor::subscription::TableState;
use ferry_core::vocab::{Outcome, StepState};

use crate::support;
use support::headless::{entries, kind, Dir};
use support::pg::{exec, unique, DbPair};

/// Drops the subscription (its slot with it) and the publication a test left.
struct Leftovers {
    src_url: String,
    tgt_url: String,
    name: String,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let n = &self.name;
        support::pg::cleanup(vec![
            (self.tgt_url.clone(), format!("alter subscription {n} disable")),
            (self.tgt_url.clone(), format!("alter subscription {n} set (slot_name = none)")),
            (self.tgt_url.clone(), format!("drop subscription if exists {n}")),
            (
                self.src_url.clone(),
                format!("select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = '{n}' and not active"),
            ),
            (self.src_url.clone(), format!("drop publication if exists {n}")),
        ]);
    }
}

fn settings(dir: &Dir, runbook: PathBuf, pair: &DbPair) -> Settings {
    let vars: Vec<(String, String)> = vec![
        ("SRC_URL".into(), pair.src_url.clone()),
        ("TGT_URL".into(), pair.tgt_url.clone()),
    ];
    let lookup = vars.clone();
    Settings {
        runbook,
        journal: None,
        resume: false,
        accept_changes: false,
        operator: "tester".into(),
        host: "rig".into(),
        uid: None,
        login: None,
        runs_dir: dir.file("runs"),
        env: Arc::new(move |k: &str| lookup.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())),
        env_vars: vars,
        vars: Default::default(),
    }
}

/// Wait until `f` holds for the latest snapshot, or panic after `secs` showing it.
async fn until(
    rx: &mut tokio::sync::watch::Receiver<Arc<EngineSnapshot>>,
    secs: u64,
    what: &str,
    f: impl Fn(&EngineSnapshot) -> bool,
) -> Arc<EngineSnapshot> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let snap = rx.borrow_and_update().clone();
        if f(&snap) {
            return snap;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out waiting for: {what}\nreplication: {:#?}\nsteps: {:#?}",
            snap.monitors.replication,
            snap.steps
                .iter()
                .map(|s| (&s.id, s.state, s.outcome_text()))
                .collect::<Vec<_>>()
        );
        let _ = tokio::time::timeout(left.min(Duration::from_millis(500)), rx.changed()).await;
    }
}

#[test]
fn a_conflicting_row_while_streaming_fails_the_waiting_step_with_the_table_named() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let pair = rt.block_on(DbPair::new("repl_watch"));
    let name = unique("ferry_watch");
    let _left = Leftovers {
        src_url: pair.src_url.clone(),
        tgt_url: pair.tgt_url.clone(),
        name: name.clone(),
    };
    rt.block_on(async {
        let ddl = "create table items (id int primary key, v text);
                   create table ledger (id int primary key, amount numeric(12,2))";
        exec(&pair.src_url, ddl).await;
        exec(&pair.tgt_url, ddl).await;
        exec(
            &pair.src_url,
            "insert into items select g, md5(g::text) from generate_series(1, 3000) g;
             insert into ledger select g, g * 1.5 from generate_series(1, 500) g",
        )
        .await;
    });
    let dir = Dir::new();
    let here = dir.path().display().to_string();
    let runbook = dir.runbook(
        "watch",
        &format!(
            r#"
[connections.source]
url = "${{env:SRC_URL}}"
[connections.target]
url = "${{env:TGT_URL}}"

[[phase]]
id = "online"

  [[phase.step]]
  id = "start"
  kind = "replicate"
  action = "start"
  from = "source"
  to = "target"
  tables = ["public.*"]
  name = "{name}"
  confirm = "none"
  timeout = "50s"

  [[phase.step]]
  id = "hold"
  kind = "shell"
  run = "touch synced; while [ ! -f go ]; do sleep 0.1; done"
  cwd = "{here}"
  confirm = "none"
  timeout = "60s"

  [[phase.step]]
  id = "caught-up"
  kind = "wait"
  until = {{ caught_up = {{ primary = "source", slot = "{name}" }} }}
  every = "200ms"
  confirm = "none"
  timeout = "60s"
"#
        ),
    );
    rt.block_on(async {
        let opened = start::open(settings(&dir, runbook, &pair))
            .await
            .unwrap_or_else(|e| panic!("open: {e}"));
        let started = opened
            .begin(None)
            .await
            .unwrap_or_else(|e| panic!("begin: {e}"));
        let journal = started.journal.clone();
        let monitors = started.monitors.clone();
        let handles = started.handles;
        let run = tokio::spawn(started.driver.run());
        let mut rx = handles.snapshot.clone();

        // the initial sync: every table reaches ready in the snapshot
        let snap = until(&mut rx, 50, "every table ready", |s| {
            s.monitors.replication.iter().any(|w| {
                w.exists
                    && w.tables.len() == 2
                    && w.tables.iter().all(|t| t.state == TableState::Ready)
            })
        })
        .await;
        let w = &snap.monitors.replication[0];
        assert_eq!((w.name.as_str(), w.step.as_str()), (name.as_str(), "start"));
        assert!(w.enabled && !w.in_error(), "{w:#?}");
        assert_eq!(
            w.tables
                .iter()
                .map(|t| t.table.as_str())
                .collect::<Vec<_>>(),
            ["public.items", "public.ledger"]
        );
        assert!(w.lag_bytes.is_some() && w.lag_secs.is_some(), "{w:#?}");
        assert_eq!(w.apply_errors, Some(0), "PostgreSQL 15 counts errors");
        let headroom = w.headroom.clone().expect("the slot's headroom");
        assert_eq!(headroom.wal_status.as_deref(), Some("reserved"), "{w:#?}");

        // streaming: a row the target already has arrives from the source
        until(&mut rx, 30, "the hold step", |s| {
            s.step("hold")
                .is_some_and(|h| h.state == StepState::Running)
        })
        .await;
        // the step is running; its shell touches the file a moment later
        let t0 = std::time::Instant::now();
        while !dir.file("synced").exists() {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(10),
                "the hold step runs but never touched its file"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        exec(
            &pair.tgt_url,
            "insert into items values (5001, 'in the way')",
        )
        .await;
        exec(
            &pair.src_url,
            "insert into items values (5001, 'from the source')",
        )
        .await;
        std::fs::write(dir.file("go"), "").expect("go");

        // the step fails on the hub's reading; the snapshot's copy of it follows
        let snap = until(&mut rx, 50, "the caught-up step failed, the pane red", |s| {
            s.step("caught-up")
                .is_some_and(|c| c.state == StepState::Failed)
                && s.monitors.replication.iter().any(|w| w.in_error())
        })
        .await;
        let w = &snap.monitors.replication[0];
        assert!(
            w.in_error() && !w.enabled,
            "the pane goes red: {w:#?}\nthe step: {:?}",
            snap.step("caught-up").and_then(|c| c.outcome_text())
        );
        assert!(w.apply_errors.unwrap_or(0) >= 1, "{w:#?}");
        let said = w.error.clone().unwrap_or_default();
        assert!(
            said.starts_with(&format!(
                "subscription `{name}` could not apply a change to public.items (the transaction committing at "
            )) && said.contains("and disabled itself (apply errors 1, sync errors 0)"),
            "{said}"
        );
        let Some(Outcome::Failed { error }) =
            snap.step("caught-up").and_then(|c| c.outcome.clone())
        else {
            panic!("the proof failed: {:?}", snap.step("caught-up"))
        };
        assert!(
            error.contains(&format!("subscription `{name}`")) && error.contains("public.items"),
            "the waiting step names the subscription and the table: {error}"
        );
        assert!(!error.contains("public.ledger"), "{error}");

        drop(handles.commands);
        let _ = tokio::time::timeout(Duration::from_secs(30), run).await;
        monitors.cancel();

        let recs = entries(&journal);
        let notes: Vec<&str> = recs
            .iter()
            .filter(|r| kind(r) == "note")
            .filter_map(|r| r["entry"]["text"].as_str())
            .collect();
        assert!(
            notes.iter().any(
                |n| n.starts_with(&format!("replication `{name}`: public.items"))
                    && n.ends_with("ready")
            ),
            "{notes:#?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.contains("could not apply a change to public.items")),
            "{notes:#?}"
        );
        assert!(
            recs.iter().any(|r| kind(r) == "sample"
                && r["entry"]["monitor"] == name.as_str()
                && r["entry"]["series"] == "replication_lag_bytes"),
            "lag samples are journaled"
        );
    });
}
