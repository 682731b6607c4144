//! The driver under `tokio::time::pause()`: timeouts and confirmations flow
//! through real channels, the journal and the machine, in virtual time.

use super::*;
use crate::engine::start;
use crate::journal::read_journal;
use crate::vocab::StepState;

const RB: &str = r#"
[runbook]
name = "paused"
format = 1
[connections.db]
url = "sqlite::memory:"
[[monitor.lag]]
name = "replica"
connection = "db"
[[phase]]
id = "p"
  [[phase.step]]
  id = "go"
  kind = "confirm"
  [[phase.step]]
  id = "lag-low"
  kind = "wait"
  confirm = "none"
  until = { lag = "replica", below = "5s", for = "1m" }
  every = "10s"
  timeout = "30m"
"#;

#[tokio::test(start_paused = true)]
async fn a_wait_times_out_in_virtual_time_and_halts_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("paused.toml");
    std::fs::write(&book, RB).unwrap();
    let jpath = dir.path().join("j.jsonl");
    // the same front door `ferry run` uses
    let opened = start::open(start::Settings {
        runbook: book,
        journal: Some(jpath.clone()),
        resume: false,
        accept_changes: false,
        operator: "alice".into(),
        host: "h".into(),
        uid: None,
        login: None,
        runs_dir: dir.path().join("runs"),
        env: Arc::new(|_: &str| None),
        env_vars: Vec::new(),
        vars: Default::default(),
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let start::Started {
        driver,
        handles: mut h,
        monitors,
        ..
    } = opened.begin(None).await.unwrap_or_else(|e| panic!("{e}"));
    let task = tokio::spawn(driver.run());

    // the operator confirms the first step once it awaits
    loop {
        h.snapshot.changed().await.unwrap();
        let awaiting = h.snapshot.borrow().step("go").map(|s| s.state)
            == Some(StepState::AwaitingConfirmation);
        if awaiting {
            break;
        }
    }
    let started = tokio::time::Instant::now();
    h.commands
        .send(Command::Decide(Decision::Confirm {
            step: "go".into(),
            typed: None,
            automatic: false,
            evidence: vec![],
        }))
        .unwrap();
    loop {
        h.snapshot.changed().await.unwrap();
        if matches!(h.snapshot.borrow().status, RunStatus::Halted { .. }) {
            break;
        }
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(30 * 60),
        "the wait must last its whole timeout: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(31 * 60),
        "and not much longer: {waited:?}"
    );
    let snap = h.snapshot.borrow().clone();
    assert_eq!(
        snap.step("lag-low").map(|s| s.state),
        Some(StepState::Failed)
    );
    assert_eq!(
        snap.step("go")
            .and_then(|s| s.confirmed_by.clone())
            .as_deref(),
        Some("alice")
    );
    h.commands.send(Command::Shutdown).unwrap();
    let status = task.await.unwrap();
    assert_eq!(
        status,
        RunStatus::Halted {
            step: "lag-low".into()
        }
    );

    let replay = read_journal(&jpath).unwrap();
    let timed_out = replay.records.iter().any(|r| {
        matches!(&r.entry, Entry::Event(Event::Finished { step, outcome: Outcome::TimedOut { after_secs: 1800, after_ms: None }, .. }) if step == "lag-low")
    });
    assert!(timed_out, "the journal records the timeout");
    assert!(!replay.closed(), "a halted run stays resumable");
    monitors.cancel();
}
