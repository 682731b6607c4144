//! The attach server and client over real Unix sockets in a temporary folder:
//! a real driver confirmed by an attached operator, read-only refusals,
//! redaction, a newcomer's backlog, and a client too slow to keep up (dropped
//! under `tokio::time::pause()`, while the run's own console still gets every
//! notice). Framing and socket files are in `socket_tests.rs`.

use super::client;
use super::proto::{self, ClientMsg, LineReader, ServerMsg, Welcome};
use super::server::{self, RunInfo};
use super::socket;
use chrono::Utc;
use ferry_core::engine::connections::{Connections, RetryPolicy};
use ferry_core::engine::driver::{initial_snapshot, Command, Driver, ExecEnv, Handles, Notice};
use ferry_core::engine::exec::NoMonitors;
use ferry_core::engine::machine::Machine;
use ferry_core::engine::redact::Redactor;
use ferry_core::journal::{Entry, Writer};
use ferry_core::runbook::load_str;
use ferry_core::vocab::Decision;
use ferry_core::vocab::{Actor, Event, RunStatus, StepState};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};

const RB: &str = r#"
[runbook]
name = "attach"
format = 1
[[phase]]
id = "p"
  [[phase.step]]
  id = "go"
  kind = "confirm"
  [[phase.step]]
  id = "after"
  kind = "confirm"
  confirm = "none"
"#;

// ---- a real driver, served --------------------------------------------------------------------

fn welcome() -> Welcome {
    Welcome {
        protocol: proto::PROTOCOL,
        ferry_version: "test".into(),
        runbook_path: "/nowhere/attach.toml".into(),
        runbook_sha256: String::new(),
        runbook_source: Some(RB.into()),
        vars: Default::default(),
        journal: "/nowhere/j.jsonl".into(),
        operator: "alice".into(),
        host: "h".into(),
        pid: 1,
        observer: false,
    }
}

struct Served {
    _dir: tempfile::TempDir,
    path: PathBuf,
    journal: PathBuf,
    local: Handles,
    server: server::Server,
    driver: tokio::task::JoinHandle<RunStatus>,
}

/// A real driver over `RB`, served at a socket; `local` are the run's own console's handles.
fn served(redactor: Redactor) -> Served {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rb = Arc::new(
        load_str("attach.toml", RB, Path::new("attach.toml"))
            .unwrap_or_else(|e| panic!("{}", e.render())),
    );
    let jpath = dir.path().join("j.jsonl");
    let journal =
        Writer::create(&jpath, Box::new(|s: &str| s.to_string())).unwrap_or_else(|e| panic!("{e}"));
    let mut r = Redactor::new();
    let conns = Connections::new(&rb, &|_| None, &mut r, RetryPolicy::default())
        .unwrap_or_else(|e| panic!("{e:?}"));
    let redactor = Arc::new(redactor);
    let env = ExecEnv {
        redactor: redactor.clone(),
        conns: Arc::new(conns),
        monitors: Arc::new(NoMonitors),
        env: Arc::new(|_: &str| None),
        run_id: "attach-test".into(),
    };
    let machine = Machine::new(&rb);
    let snap = initial_snapshot(&rb, &machine, &jpath, "alice");
    let actor = Actor {
        operator: "alice".into(),
        host: "h".into(),
        ..Default::default()
    };
    let (driver, handles) = Driver::new(rb, machine, journal, env, actor, snap);
    let path = dir.path().join("j.jsonl.sock");
    let (file, l) = socket::bind(&path, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    let l = tokio::net::UnixListener::from_std(l).unwrap_or_else(|e| panic!("{e}"));
    let info = RunInfo {
        welcome: welcome(),
        host: "h".into(),
        access: super::access::Access::for_run(None).unwrap_or_else(|e| panic!("{e}")),
    };
    let (local, server) = server::serve(file, l, handles, info, redactor);
    let driver = tokio::spawn(driver.run());
    Served {
        _dir: dir,
        path,
        journal: jpath,
        local,
        server,
        driver,
    }
}

/// A raw client: the lines it reads, and a way to send.
struct Raw {
    rd: LineReader<BufReader<tokio::net::unix::OwnedReadHalf>>,
    wr: tokio::net::unix::OwnedWriteHalf,
}

impl Raw {
    async fn connect(path: &Path) -> Raw {
        let s = UnixStream::connect(path)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (rd, wr) = s.into_split();
        Raw {
            rd: LineReader::new(BufReader::new(rd), proto::MAX_SERVER_LINE),
            wr,
        }
    }

    async fn send(&mut self, msg: &ClientMsg) {
        let l = proto::to_line(msg).unwrap_or_default();
        self.wr.write_all(l.as_bytes()).await.unwrap_or_default();
    }

    async fn hello(path: &Path, operator: &str, operate: bool) -> Raw {
        let mut c = Raw::connect(path).await;
        c.send(&ClientMsg::Hello {
            protocol: proto::PROTOCOL,
            ferry_version: "test".into(),
            operator: operator.into(),
            operate,
        })
        .await;
        match c.next().await {
            Some(ServerMsg::Welcome(w)) => assert_eq!(w.operator, "alice"),
            other => panic!("expected a welcome, got {other:?}"),
        }
        c
    }

    async fn next(&mut self) -> Option<ServerMsg> {
        let l = tokio::time::timeout(Duration::from_secs(10), self.rd.next())
            .await
            .unwrap_or_else(|_| panic!("no message within 10 s"))
            .unwrap_or_else(|e| panic!("{e}"))?;
        Some(serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}")))
    }

    /// Read until `pred` holds for a message; every message read is returned.
    async fn until(&mut self, pred: impl Fn(&ServerMsg) -> bool) -> Vec<ServerMsg> {
        let mut seen = Vec::new();
        while let Some(m) = self.next().await {
            let done = pred(&m);
            seen.push(m);
            if done {
                return seen;
            }
        }
        panic!("the server closed first; seen: {seen:?}");
    }
}

fn awaiting(m: &ServerMsg, step: &str) -> bool {
    matches!(m, ServerMsg::Snapshot { snapshot } if snapshot.step(step).map(|s| s.state) == Some(StepState::AwaitingConfirmation))
}

#[tokio::test]
async fn an_attached_operator_confirms_and_the_journal_names_him() {
    let s = served(Redactor::new());
    let mut carol = Raw::hello(&s.path, "carol", false).await;
    carol.until(|m| awaiting(m, "go")).await;

    // read-only: refused by the server, and nothing reaches the engine
    carol
        .send(&ClientMsg::Decide {
            decision: Decision::Confirm {
                step: "go".into(),
                typed: None,
                evidence: vec![],
                automatic: false,
            },
        })
        .await;
    let seen = carol.until(|m| matches!(m, ServerMsg::Denied { .. })).await;
    match seen.last() {
        Some(ServerMsg::Denied { reason }) => assert!(reason.contains("--operate"), "{reason}"),
        other => panic!("{other:?}"),
    }

    let mut bob = Raw::hello(&s.path, "bob", true).await;
    // both attendees are in the snapshot the run's own console renders
    let seen = bob
        .until(|m| matches!(m, ServerMsg::Snapshot { snapshot } if snapshot.attached.len() == 2))
        .await;
    if let Some(ServerMsg::Snapshot { snapshot }) = seen.last() {
        let who: Vec<(&str, bool)> = snapshot
            .attached
            .iter()
            .map(|a| (a.operator.as_str(), a.operate))
            .collect();
        assert_eq!(who, [("carol", false), ("bob", true)]);
    }
    bob.send(&ClientMsg::Decide {
        decision: Decision::Confirm {
            step: "go".into(),
            typed: None,
            evidence: vec![],
            automatic: false,
        },
    })
    .await;
    let seen = bob.until(|m| matches!(m, ServerMsg::End { .. })).await;
    assert!(
        seen.iter().any(|m| matches!(
            m,
            ServerMsg::End {
                status: RunStatus::Finished { ok: true }
            }
        )),
        "{seen:?}"
    );
    // the final snapshot follows or precedes the end: read to the close
    let mut last_snap = seen.iter().rev().find_map(|m| match m {
        ServerMsg::Snapshot { snapshot } => Some(snapshot.clone()),
        _ => None,
    });
    while let Some(m) = bob.next().await {
        if let ServerMsg::Snapshot { snapshot } = m {
            last_snap = Some(snapshot);
        }
    }
    let last = last_snap.unwrap_or_else(|| panic!("no snapshot"));
    assert_eq!(
        last.step("go")
            .and_then(|s| s.confirmed_by.clone())
            .as_deref(),
        Some("bob")
    );
    assert_eq!(
        last.step("after").map(|s| s.state),
        Some(StepState::Succeeded)
    );

    let status = s.driver.await.unwrap_or(RunStatus::Aborted);
    assert_eq!(status, RunStatus::Finished { ok: true });
    s.server.finish().await;
    assert!(!s.path.exists(), "the socket goes when the run ends");
    drop(s.local);

    // the journal: bob confirmed, from host h; carol's attempt left no trace but her visit
    let replay = ferry_core::journal::read_lenient(&s.journal).unwrap_or_else(|e| panic!("{e}"));
    let confirms: Vec<&Actor> = replay
        .records
        .iter()
        .filter_map(|r| match &r.entry {
            Entry::Event(Event::Decided {
                by,
                decision: Decision::Confirm { .. },
            }) => Some(by),
            _ => None,
        })
        .collect();
    // the name bob gave, and the uid the kernel gave for his socket
    let me = crate::identity::euid();
    assert_eq!(
        confirms,
        [&Actor::named("bob", "h").with_uid(me, crate::identity::login_name(me))]
    );
    let notes: Vec<&str> = replay
        .records
        .iter()
        .filter_map(|r| match &r.entry {
            Entry::Note { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("carol@h attached (read-only")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("bob@h attached (operating")),
        "{notes:?}"
    );
}

#[tokio::test]
async fn bad_hellos_are_refused_with_a_reason() {
    let s = served(Redactor::new());
    let cases: Vec<(String, &str)> = vec![
        (
            serde_json::json!({"type":"hello","protocol":99,"ferry_version":"9.9","operator":"bob","operate":true}).to_string(),
            "protocol",
        ),
        ("GET / HTTP/1.1".into(), "not a ferry attach hello"),
        (
            serde_json::json!({"type":"decide","decision":{"decision":"retry","step":"go"}}).to_string(),
            "must be a hello",
        ),
        (
            serde_json::json!({"type":"hello","protocol":proto::PROTOCOL,"ferry_version":"x","operator":"","operate":true}).to_string(),
            "empty",
        ),
        ("x".repeat(proto::MAX_CLIENT_LINE + 10), "longer than"),
    ];
    for (line, why) in cases {
        let mut c = Raw::connect(&s.path).await;
        c.wr.write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap_or_default();
        match c.next().await {
            Some(ServerMsg::Refused { reason }) => assert!(reason.contains(why), "{why}: {reason}"),
            other => panic!("{why}: {other:?}"),
        }
        assert!(c.next().await.is_none(), "{why}: the server closes");
    }
    // the run went on untouched
    assert!(!s.driver.is_finished());
    let _ = s.local.commands.send(Command::Shutdown);
    let _ = s.driver.await;
    s.server.finish().await;
}

#[tokio::test]
async fn secrets_never_cross_the_socket() {
    let mut r = Redactor::new();
    r.add("hunter2-secret");
    let s = served(r);
    let mut c = Raw::hello(&s.path, "bob", true).await;
    c.until(|m| awaiting(m, "go")).await;
    // a skip reason carrying the secret is journaled (redacted) and broadcast
    c.send(&ClientMsg::Decide {
        decision: Decision::Skip {
            step: "go".into(),
            reason: "pw hunter2-secret leaked? postgres://u:pa55word@db/x".into(),
        },
    })
    .await;
    let mut raw = String::new();
    loop {
        let l = tokio::time::timeout(Duration::from_secs(10), c.rd.next()).await;
        match l {
            Ok(Ok(Some(l))) => {
                let end = l.contains("\"type\":\"end\"");
                raw.push_str(&l);
                if end {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(raw.contains("skipped") || raw.contains("\"skip\""), "{raw}");
    assert!(
        !raw.contains("hunter2-secret"),
        "a secret crossed the socket"
    );
    assert!(
        !raw.contains("pa55word"),
        "a URL password crossed the socket"
    );
    let _ = s.driver.await;
    s.server.finish().await;
}

// ---- a client too slow to keep up ---------------------------------------------------------------

/// A stand-in engine (the real channel types, fed by the test) served at a socket.
struct StandIn {
    _dir: tempfile::TempDir,
    path: PathBuf,
    cmd_rx: mpsc::UnboundedReceiver<Command>,
    snap_tx: watch::Sender<Arc<ferry_core::engine::snapshot::EngineSnapshot>>,
    notice_tx: mpsc::UnboundedSender<Notice>,
    local: Handles,
    server: server::Server,
}

fn stand_in() -> StandIn {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("s.sock");
    let (file, l) = socket::bind(&path, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    let l = tokio::net::UnixListener::from_std(l).unwrap_or_else(|e| panic!("{e}"));
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let rb = load_str("attach.toml", RB, Path::new("attach.toml"))
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let snap = initial_snapshot(&rb, &Machine::new(&rb), &path, "alice");
    let (snap_tx, snap_rx) = watch::channel(Arc::new(snap));
    let (notice_tx, notice_rx) = mpsc::unbounded_channel();
    let handles = Handles {
        commands: cmd_tx,
        snapshot: snap_rx,
        notices: notice_rx,
    };
    let info = RunInfo {
        welcome: welcome(),
        host: "h".into(),
        access: super::access::Access::for_run(None).unwrap_or_else(|e| panic!("{e}")),
    };
    let (local, server) = server::serve(file, l, handles, info, Arc::new(Redactor::new()));
    StandIn {
        _dir: dir,
        path,
        cmd_rx,
        snap_tx,
        notice_tx,
        local,
        server,
    }
}

fn note(text: String) -> Notice {
    Notice::Journaled {
        ts: Utc::now(),
        entry: Box::new(Entry::Note { step: None, text }),
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_client_is_dropped_and_the_run_never_waits_for_it() {
    let mut e = stand_in();
    // a client that says hello and then never reads
    let _slow = Raw::hello(&e.path, "slowpoke", false).await;
    match e.cmd_rx.recv().await {
        Some(Command::Presence { note, .. }) => assert!(note.contains("attached"), "{note}"),
        other => panic!("{other:?}"),
    }
    // the run journals far more than a socket buffer holds
    let n = server::LAG_LIMIT * 4;
    let text = "y".repeat(1000);
    for i in 0..n {
        let _ = e.notice_tx.send(note(format!("{i} {text}")));
        if i % 256 == 0 {
            tokio::task::yield_now().await;
        }
    }
    // the run's own console got every notice, in order
    for i in 0..n {
        match e.local.notices.recv().await {
            Some(Notice::Journaled { entry, .. }) => match *entry {
                Entry::Note { text, .. } => assert!(text.starts_with(&format!("{i} ")), "{i}"),
                other => panic!("{other:?}"),
            },
            other => panic!("{i}: {other:?}"),
        }
    }
    // and the slow client was dropped, saying why
    let gone = tokio::time::timeout(Duration::from_secs(60), e.cmd_rx.recv()).await;
    match gone {
        Ok(Some(Command::Presence { attendees, note })) => {
            assert!(attendees.is_empty());
            assert!(
                note.contains("slowpoke@h detached: dropped: too slow"),
                "{note}"
            );
        }
        other => panic!("{other:?}"),
    }
    drop(e.snap_tx);
    drop(e.notice_tx);
    e.server.finish().await;
}

#[tokio::test]
async fn a_newcomer_gets_the_recent_journal_in_order_then_the_state() {
    let mut e = stand_in();
    for i in 0..(server::BACKLOG + 100) {
        let _ = e.notice_tx.send(note(format!("line {i}")));
    }
    // the tee has passed them all on once the run's own console has them
    for _ in 0..(server::BACKLOG + 100) {
        assert!(e.local.notices.recv().await.is_some());
    }
    let mut c = Raw::hello(&e.path, "bob", false).await;
    let mut texts = Vec::new();
    loop {
        match c.next().await {
            Some(ServerMsg::Notice { entry, .. }) => match *entry {
                Entry::Note { text, .. } => texts.push(text),
                other => panic!("{other:?}"),
            },
            Some(ServerMsg::Snapshot { snapshot }) => {
                assert_eq!(snapshot.operator, "alice");
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(texts.len(), server::BACKLOG);
    assert_eq!(texts.first().map(String::as_str), Some("line 100"));
    assert_eq!(texts.last().map(String::as_str), Some("line 599"));
    // a later change of state reaches the client too
    e.snap_tx
        .send_modify(|s| Arc::make_mut(s).status = RunStatus::Finished { ok: true });
    c.until(|m| matches!(m, ServerMsg::Snapshot { snapshot } if snapshot.status == RunStatus::Finished { ok: true }))
        .await;
    assert!(matches!(
        e.cmd_rx.recv().await,
        Some(Command::Presence { .. })
    ));
    drop(e.snap_tx);
    drop(e.notice_tx);
    let ends = c.until(|m| matches!(m, ServerMsg::End { .. })).await;
    assert!(!ends.is_empty());
    e.server.finish().await;
}

#[tokio::test]
async fn the_client_side_turns_the_link_into_console_handles() {
    let s = served(Redactor::new());
    let mut link = client::connect(&s.path, "bob", true)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(link.welcome.operator, "alice");
    let (first, _early) = client::first_snapshot(&mut link)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.runbook_name, "attach");
    // the console shows the journal's absolute path, as the run's welcome gave it
    assert_eq!(first.journal, PathBuf::from("/nowhere/j.jsonl"));
    let (mut h, task) = client::start(link, first, Vec::new());
    // the console asks the engine to stop when its operator leaves: never forwarded
    let _ = h.commands.send(Command::Shutdown);
    loop {
        let go = h.snapshot.borrow_and_update().step("go").map(|s| s.state);
        if go == Some(StepState::AwaitingConfirmation) {
            break;
        }
        tokio::time::timeout(Duration::from_secs(10), h.snapshot.changed())
            .await
            .unwrap_or_else(|_| panic!("`go` never awaited confirmation"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let _ = h.commands.send(Command::Decide(Decision::Confirm {
        step: "go".into(),
        typed: None,
        automatic: false,
        evidence: vec![],
    }));
    let mut detached = None;
    while let Some(n) = h.notices.recv().await {
        if let Notice::Detached(how) = n {
            detached = Some(how);
        }
    }
    assert_eq!(
        detached.as_deref(),
        Some("the run finished: every step succeeded")
    );
    let end = task.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        end,
        client::LinkEnd::RunEnded(RunStatus::Finished { ok: true })
    );
    assert_eq!(s.driver.await.ok(), Some(RunStatus::Finished { ok: true }));
    s.server.finish().await;
}

#[tokio::test]
async fn nothing_listening_is_unreachable_and_says_so() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let missing = dir.path().join("gone.sock");
    match client::connect(&missing, "bob", false).await {
        Err(e @ client::AttachError::Unreachable { .. }) => {
            assert_eq!(e.exit_code(), 3);
            assert!(e.to_string().contains("no such socket"), "{e}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("connected to nothing"),
    }
    let found = client::find(None, None, Some("nope"), &[dir.path().to_path_buf()]);
    match found {
        Err(e) => {
            assert_eq!(e.exit_code(), 3);
            assert!(
                e.to_string().contains("no live run of runbook `nope`"),
                "{e}"
            );
        }
        Ok(p) => panic!("found {}", p.display()),
    }
}

#[tokio::test]
async fn a_wrapped_shutdown_is_ignored_and_a_wrapped_decision_names_its_actor() {
    let s = served(Redactor::new());
    let bob = Actor {
        operator: "bob".into(),
        host: "elsewhere".into(),
        ..Default::default()
    };
    // a wrapped shutdown cannot be written: `Command::As` carries a decision
    let wrap = |decision: Decision| Command::As {
        actor: bob.clone(),
        decision,
    };
    let mut snap = s.local.snapshot.clone();
    let _ = s.local.commands.send(wrap(Decision::Abort {
        reason: "not yours".into(),
    }));
    loop {
        let go = snap.borrow_and_update().step("go").map(|x| x.state);
        if go == Some(StepState::AwaitingConfirmation) {
            break;
        }
        tokio::time::timeout(Duration::from_secs(10), snap.changed())
            .await
            .unwrap_or_else(|_| panic!("`go` never awaited"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let _ = s.local.commands.send(wrap(Decision::Confirm {
        step: "go".into(),
        typed: None,
        automatic: false,
        evidence: vec![],
    }));
    assert_eq!(s.driver.await.ok(), Some(RunStatus::Finished { ok: true }));
    s.server.finish().await;
    let replay = ferry_core::journal::read_lenient(&s.journal).unwrap_or_else(|e| panic!("{e}"));
    let events: Vec<&Event> = replay
        .records
        .iter()
        .filter_map(|r| match &r.entry {
            Entry::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert!(
        !events.iter().any(|e| matches!(
            e,
            Event::Decided {
                decision: Decision::Abort { .. },
                ..
            }
        )),
        "{events:?}"
    );
    assert!(events.iter().any(
        |e| matches!(e, Event::Decided { by, decision: Decision::Confirm { .. } } if *by == bob)
    ));
}

#[test]
fn a_snapshot_with_values_json_cannot_hold_still_crosses_the_wire() {
    let rb = load_str("attach.toml", RB, Path::new("attach.toml"))
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let mut snap = initial_snapshot(&rb, &Machine::new(&rb), Path::new("j"), "alice");
    Arc::make_mut(&mut snap.monitors)
        .lag
        .push(ferry_core::engine::snapshot::LagSeries {
            name: "replica".into(),
            warn_secs: Some(f64::INFINITY),
            samples: vec![ferry_core::engine::snapshot::Sample {
                at: Utc::now(),
                value: f64::NAN,
            }],
            ..Default::default()
        });
    let line = proto::to_line(&ServerMsg::Snapshot {
        snapshot: Arc::new(snap),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    match serde_json::from_str::<ServerMsg>(&line) {
        Ok(ServerMsg::Snapshot { snapshot }) => {
            let lag = &snapshot.monitors.lag[0];
            assert!(lag.samples[0].value.is_nan());
            assert_eq!(lag.warn_secs, None);
            assert_eq!(snapshot.steps.len(), 2);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_refusal_names_the_attached_operator_who_asked() {
    let s = served(Redactor::new());
    let mut bob = Raw::hello(&s.path, "bob", true).await;
    bob.until(|m| awaiting(m, "go")).await;
    // `after` is not awaiting anything: refused, and the note says who asked
    bob.send(&ClientMsg::Decide {
        decision: Decision::Retry {
            step: "after".into(),
        },
    })
    .await;
    let seen = bob
        .until(|m| matches!(m, ServerMsg::Notice { entry, .. } if matches!(&**entry, Entry::Refused { .. })))
        .await;
    match seen.last() {
        Some(ServerMsg::Notice { entry, .. }) => match &**entry {
            Entry::Refused { refusal, asked_by } => {
                let text = Entry::refused_text(refusal, asked_by.as_ref());
                // the name bob gave, and the uid the kernel gave for his socket
                let me = crate::identity::euid();
                assert!(text.contains("(asked by bob@h ("), "{text}");
                assert!(text.ends_with(&format!("uid {me}))")), "{text}");
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    let _ = s.local.commands.send(Command::Shutdown);
    let _ = s.driver.await;
    s.server.finish().await;
}
