//! The driver under `tokio::time::pause()`: timeouts and confirmations flow
//! through real channels, the journal and the machine, in virtual time.

use super::*;
use crate::engine::connections::RetryPolicy;
use crate::engine::exec::NoMonitors;
use crate::journal::read_journal;
use crate::runbook::load_str;
use crate::vocab::StepState;
use std::path::Path;

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
    let rb = Arc::new(
        load_str("paused.toml", RB, Path::new("paused.toml"))
            .unwrap_or_else(|e| panic!("{}", e.render())),
    );
    let dir = tempfile::tempdir().unwrap();
    let jpath = dir.path().join("j.jsonl");
    let mut journal = Writer::create(&jpath, Box::new(|s: &str| s.to_string())).unwrap();
    let header = crate::journal::Header {
        ferry_version: "test".into(),
        runbook_name: rb.name.clone(),
        runbook_title: rb.title.clone(),
        runbook_path: "paused.toml".into(),
        runbook_sha256: rb.source_sha256.clone(),
        steps: Default::default(),
        operator: "alice".into(),
        host: "h".into(),
        window_start: None,
        window_secs: None,
        plan: Vec::new(),
    };
    journal.append(&Entry::Header(header), Utc::now()).unwrap();
    let mut redactor = Redactor::new();
    let conns = Connections::new(&rb, &|_| None, &mut redactor, RetryPolicy::default()).unwrap();
    let env = ExecEnv {
        run_id: "test-run".into(),
        redactor: Arc::new(redactor),
        conns: Arc::new(conns),
        monitors: Arc::new(NoMonitors),
        env: Arc::new(|_: &str| None),
    };
    let machine = Machine::new(&rb);
    let snap = initial_snapshot(&rb, &machine, &jpath, "alice");
    let actor = Actor {
        operator: "alice".into(),
        host: "h".into(),
    };
    let (driver, mut h) = Driver::new(rb.clone(), machine, journal, env, actor, snap);
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
        .send(Command::Confirm {
            step: "go".into(),
            typed: None,
            automatic: false,
            evidence: vec![],
        })
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
}
