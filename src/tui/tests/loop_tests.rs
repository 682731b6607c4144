//! The event loop over a `TestBackend` with injected key, signal and engine
//! streams: commands reach the engine, the screen follows the snapshots, a
//! signal stops the engine before the loop ends, and an idle console does not
//! redraw (time runs under `tokio::time::pause()`).

use super::*;
use crate::headless::Outcome;
use crate::tui::event_loop;
use crossterm::event::Event;
use ferry_core::engine::driver::{Command, Handles, Notice};
use futures::stream::{self, StreamExt};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::io;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

struct FakeEngine {
    snap: watch::Sender<Arc<EngineSnapshot>>,
    notices: mpsc::UnboundedSender<Notice>,
    commands: mpsc::UnboundedReceiver<Command>,
}

fn engine(first: EngineSnapshot) -> (FakeEngine, Handles) {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (snap_tx, snap_rx) = watch::channel(Arc::new(first));
    let (note_tx, note_rx) = mpsc::unbounded_channel();
    (
        FakeEngine {
            snap: snap_tx,
            notices: note_tx,
            commands: cmd_rx,
        },
        Handles {
            commands: cmd_tx,
            snapshot: snap_rx,
            notices: note_rx,
        },
    )
}

/// The fake engine ends (drops its channels) when asked to shut down.
fn end_on_shutdown(mut eng: FakeEngine) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(c) = eng.commands.recv().await {
            if matches!(c, Command::Shutdown) {
                break;
            }
        }
        drop(eng);
    })
}

fn terminal(w: u16, h: u16) -> Terminal<TestBackend> {
    match Terminal::new(TestBackend::new(w, h)) {
        Ok(t) => t,
        Err(e) => panic!("test backend: {e}"),
    }
}

fn keys_channel() -> (
    mpsc::UnboundedSender<KeyEvent>,
    impl futures::Stream<Item = io::Result<Event>> + Unpin,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<KeyEvent>();
    let s = stream::poll_fn(move |cx| rx.poll_recv(cx)).map(|k| Ok(Event::Key(k)));
    (tx, s)
}

/// A clock that moves with tokio's (paused) time.
fn tokio_clock() -> impl Fn() -> chrono::DateTime<Utc> {
    let t0 = tokio::time::Instant::now();
    move || now() + chrono::Duration::from_std(t0.elapsed()).unwrap_or_default()
}

#[tokio::test]
async fn a_confirmation_goes_to_the_engine_and_quitting_while_running_asks_first() {
    let (mut eng, handles) = engine(scenario("awaiting"));
    let (keys, events) = keys_channel();
    let mut term = terminal(80, 24);
    let mut app = app_for(scenario("awaiting"), Theme::MONO);
    let ui = tokio::spawn(async move {
        event_loop::run(&mut term, events, stream::pending(), &mut app, handles, now).await;
        (term, app)
    });
    // the fixture's rds-replica lag is stale: Tab acknowledges it
    for k in [key('c'), code(KeyCode::Tab), key('y')] {
        let _ = keys.send(k);
    }
    let first = tokio::time::timeout(Duration::from_secs(5), eng.commands.recv()).await;
    let Ok(Some(Command::Decide(Decision::Confirm {
        step: id,
        typed,
        automatic,
        evidence,
    }))) = first
    else {
        panic!("expected a confirm, got {first:?}")
    };
    assert_eq!((id.as_str(), typed, automatic), ("copy", None, false));
    assert!(evidence.iter().any(|e| e.label == "lag replica"));
    // the engine starts the step; `q` now asks first and sends nothing
    eng.snap.send_replace(Arc::new(scenario("running")));
    let _ = keys.send(key('q'));
    let nothing = tokio::time::timeout(Duration::from_millis(300), eng.commands.recv()).await;
    assert!(
        nothing.is_err(),
        "q while running must ask first: {nothing:?}"
    );
    let _ = keys.send(key('y'));
    let stop = tokio::time::timeout(Duration::from_secs(5), eng.commands.recv()).await;
    assert!(matches!(stop, Ok(Some(Command::Shutdown))), "{stop:?}");
    // the loop waits for the engine to end before it returns
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !ui.is_finished(),
        "the console left before the engine ended"
    );
    let mut stopped = scenario("running");
    step(&mut stopped, "copy").state = StepState::Interrupted;
    stopped.status = RunStatus::Waiting {
        steps: vec!["copy".into()],
    };
    eng.snap.send_replace(Arc::new(stopped));
    drop(eng);
    let (term, app) = match tokio::time::timeout(Duration::from_secs(5), ui).await {
        Ok(Ok(x)) => x,
        _ => panic!("the loop did not end"),
    };
    assert_eq!(app.outcome(), Outcome::Interrupted);
    let text = screen(term.backend().buffer());
    assert!(
        text.contains("! copy"),
        "the last frame shows the interrupted step:\n{text}"
    );
}

#[tokio::test]
async fn a_signal_stops_the_engine_then_the_loop_ends() {
    let (mut eng, handles) = engine(scenario("running"));
    let (_keys, events) = keys_channel();
    let mut term = terminal(80, 24);
    let mut app = app_for(scenario("running"), Theme::MONO);
    let (sig_tx, mut sig_rx) = mpsc::unbounded_channel::<()>();
    let signals = stream::poll_fn(move |cx| sig_rx.poll_recv(cx));
    let ui = tokio::spawn(async move {
        event_loop::run(&mut term, events, signals, &mut app, handles, now).await;
        app
    });
    let _ = sig_tx.send(());
    let stop = tokio::time::timeout(Duration::from_secs(5), eng.commands.recv()).await;
    assert!(matches!(stop, Ok(Some(Command::Shutdown))), "{stop:?}");
    drop(eng);
    let app = match tokio::time::timeout(Duration::from_secs(5), ui).await {
        Ok(Ok(a)) => a,
        _ => panic!("the loop did not end"),
    };
    assert_eq!(app.outcome(), Outcome::Interrupted);
}

#[tokio::test]
async fn a_refusal_notice_shows_and_q_leaves_once_the_engine_is_gone() {
    let (eng, handles) = engine(scenario("awaiting"));
    let (keys, events) = keys_channel();
    let mut term = terminal(80, 24);
    let mut app = app_for(scenario("awaiting"), Theme::MONO);
    let ui = tokio::spawn(async move {
        event_loop::run(&mut term, events, stream::pending(), &mut app, handles, now).await;
        (term, app)
    });
    let _ = eng.notices.send(Notice::Journaled {
        ts: now(),
        entry: Box::new(ferry_core::journal::Entry::Refused {
            refusal: ferry_core::vocab::Refusal::TypeTheId {
                step: "copy".into(),
                why: ferry_core::vocab::TypedReason::TwoPerson,
            },
            asked_by: None,
        }),
    });
    // the engine ends by itself (e.g. the run finished): the console stays until `q`
    drop(eng);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !ui.is_finished(),
        "the console must stay up after the engine ends"
    );
    let _ = keys.send(key('q'));
    let (term, app) = match tokio::time::timeout(Duration::from_secs(5), ui).await {
        Ok(Ok(x)) => x,
        _ => panic!("q did not leave"),
    };
    assert!(app.should_exit());
    let text = screen(term.backend().buffer());
    assert!(
        text.contains("refused: `copy` is a two-person step: type its id to confirm"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_console_redraws_only_when_the_clock_second_changes() {
    // 10 s idle with a fixed clock: one frame (plus two for the stop: "stopping…" and
    // the engine's end); with a moving clock: about one more per second
    for (moving, max_frames) in [(false, 3), (true, 14)] {
        let (eng, handles) = engine(scenario("awaiting"));
        let _eng = end_on_shutdown(eng);
        let (_keys, events) = keys_channel();
        let mut term = terminal(80, 24);
        let mut app = app_for(scenario("awaiting"), Theme::MONO);
        let signals = Box::pin(
            stream::once(tokio::time::sleep(Duration::from_secs(10))).chain(stream::pending()),
        );
        let clock = tokio_clock();
        let fixed = || now();
        let run = async {
            if moving {
                event_loop::run(&mut term, events, signals, &mut app, handles, clock).await
            } else {
                event_loop::run(&mut term, events, signals, &mut app, handles, fixed).await
            }
        };
        // after 10 s the signal asks the (fake) engine to stop, and it does
        let _ = tokio::time::timeout(Duration::from_secs(60), run).await;
        assert!(app.should_exit());
        let frames = term.get_frame().count();
        assert!(
            (1..=max_frames).contains(&frames),
            "moving clock {moving}: {frames} frames in 10 s idle"
        );
        if moving {
            assert!(frames >= 9, "the clock must tick: {frames} frames");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_snapshots_is_drained_into_few_frames() {
    let (eng, handles) = engine(scenario("running"));
    let (_keys, events) = keys_channel();
    let mut term = terminal(80, 24);
    let mut app = app_for(scenario("running"), Theme::MONO);
    let signals =
        Box::pin(stream::once(tokio::time::sleep(Duration::from_secs(1))).chain(stream::pending()));
    let feeder = tokio::spawn(async move {
        for i in 0..2000 {
            let mut s = scenario("running");
            Arc::make_mut(&mut step(&mut s, "copy").output).push_back(format!("line {i}"));
            eng.snap.send_replace(Arc::new(s));
            if i % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        eng
    });
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        event_loop::run(&mut term, events, signals, &mut app, handles, now),
    )
    .await;
    let _eng = feeder.await;
    let frames = term.get_frame().count();
    assert!(frames <= 35, "{frames} frames for 2000 snapshots in 1 s");
    let text = screen(term.backend().buffer());
    assert!(
        text.contains("line 1999"),
        "the last snapshot is on screen:\n{text}"
    );
}
