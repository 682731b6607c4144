//! The console's event loop: one `select! { biased; … }` over signals, terminal
//! input, journal notices, snapshot changes and a clock tick. Everything pending
//! is drained before a frame is drawn; frames are drawn only when something
//! changed (or the clock's second did), at most ~30 per second, so an idle
//! console uses no CPU. Snapshots are cloned (never borrowed) right before a
//! frame, so the engine's watch channel is never held while drawing.
//!
//! Generic over the backend and the input stream, so tests feed keys into a
//! `TestBackend` and read the screen.

use super::app::{Action, App};
use super::render;
use chrono::{DateTime, Utc};
use crossterm::event::Event;
use ferry_core::engine::driver::{Command, Handles, Notice};
use ferry_core::engine::snapshot::EngineSnapshot;
use futures::{Stream, StreamExt};
use ratatui::backend::Backend;
use ratatui::Terminal;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};

/// Shortest time between two frames (~30 fps).
pub const FRAME: Duration = Duration::from_millis(33);
/// How long to wait for the engine after asking it to stop.
pub const STOP_WAIT: Duration = Duration::from_secs(20);
/// Inputs handled at most before a frame is drawn.
const BATCH: usize = 512;

enum In {
    Term(Event),
    TermError,
    Signal,
    Notice(Notice),
    NoticesEnd,
    Snapshot,
    SnapshotEnd,
    Tick,
    Frame,
    Deadline,
}

struct Sources<S, G> {
    events: S,
    signals: G,
    snapshot: watch::Receiver<Arc<EngineSnapshot>>,
    notices: mpsc::UnboundedReceiver<Notice>,
    input_open: bool,
    notices_open: bool,
    snap_open: bool,
}

impl<S, G> Sources<S, G>
where
    S: Stream<Item = io::Result<Event>> + Unpin,
    G: Stream<Item = ()> + Unpin,
{
    /// The next input; with `block` false, `None` at once when nothing is pending.
    async fn next(
        &mut self,
        block: bool,
        tick_at: Instant,
        frame_at: Option<Instant>,
        stop_at: Option<Instant>,
    ) -> Option<In> {
        let far = Instant::now() + Duration::from_secs(86_400);
        tokio::select! {
            biased;
            Some(()) = self.signals.next() => Some(In::Signal),
            ev = self.events.next(), if self.input_open => match ev {
                Some(Ok(e)) => Some(In::Term(e)),
                Some(Err(_)) => Some(In::TermError),
                None => {
                    self.input_open = false;
                    None
                }
            },
            n = self.notices.recv(), if self.notices_open => Some(match n {
                Some(n) => In::Notice(n),
                None => In::NoticesEnd,
            }),
            r = self.snapshot.changed(), if self.snap_open => Some(match r {
                Ok(()) => In::Snapshot,
                Err(_) => In::SnapshotEnd,
            }),
            _ = sleep_until(stop_at.unwrap_or(far)), if block && stop_at.is_some() => Some(In::Deadline),
            _ = sleep_until(tick_at), if block => Some(In::Tick),
            _ = sleep_until(frame_at.unwrap_or(far)), if block && frame_at.is_some() => Some(In::Frame),
            _ = std::future::ready(()), if !block => None,
        }
    }
}

/// The next whole second of `now`, as a tokio instant.
fn next_second(now: DateTime<Utc>) -> Instant {
    let ms = 1000 - u64::from(now.timestamp_subsec_millis().min(999));
    Instant::now() + Duration::from_millis(ms)
}

/// Loop state besides the app: what is pending, when to draw, when to give up.
struct Flags {
    snap_pending: bool,
    dirty: bool,
    broken: bool,
    ended: bool,
    second: i64,
    tick_at: Instant,
    stop_at: Option<Instant>,
    give_up: bool,
}

/// Apply the newest snapshot to the app (shared; the watch borrow ends at once).
fn refresh<S, G>(src: &mut Sources<S, G>, app: &mut App, f: &mut Flags) {
    let s = src.snapshot.borrow_and_update().clone();
    app.update(Action::Snapshot(s));
    f.snap_pending = false;
}

/// Handle one input at once (never batched behind later ones: a key must see the
/// newest snapshot, and `changed()` consumes the change it reports).
fn handle<S, G, C>(
    input: In,
    src: &mut Sources<S, G>,
    app: &mut App,
    f: &mut Flags,
    send: &impl Fn(Vec<Command>),
    clock: &C,
) where
    C: Fn() -> DateTime<Utc>,
{
    match input {
        In::Term(Event::Key(k)) => {
            // a key acts on the newest state (a step may have started meanwhile)
            if f.snap_pending || src.snapshot.has_changed().unwrap_or(false) {
                refresh(src, app, f);
            }
            send(app.update(Action::Key(k)));
            f.dirty = true;
        }
        In::Term(Event::Resize(w, h)) => {
            app.update(Action::Resize(w, h));
            f.dirty = true;
        }
        In::Term(_) | In::Frame => {}
        In::TermError => {
            src.input_open = false;
            f.broken = true;
            send(app.update(Action::Signal));
        }
        In::Signal => {
            send(app.update(Action::Signal));
            f.dirty = true;
        }
        In::Notice(n) => {
            app.update(Action::Notice(n));
            f.dirty = true;
        }
        In::NoticesEnd => src.notices_open = false,
        In::Snapshot => {
            f.snap_pending = true;
            f.dirty = true;
        }
        In::SnapshotEnd => {
            src.snap_open = false;
            f.snap_pending = true;
            f.dirty = true;
        }
        In::Tick => {
            let now = clock();
            f.tick_at = next_second(now);
            if now.timestamp() != f.second {
                f.second = now.timestamp();
                app.update(Action::Tick(now));
                f.dirty = true;
            }
        }
        In::Deadline => f.give_up = true,
    }
}

/// Run the console until the app asks to exit (or the engine does not stop in time).
pub async fn run<B, S, G, C>(
    terminal: &mut Terminal<B>,
    events: S,
    signals: G,
    app: &mut App,
    handles: Handles,
    clock: C,
) where
    B: Backend,
    S: Stream<Item = io::Result<Event>> + Unpin,
    G: Stream<Item = ()> + Unpin,
    C: Fn() -> DateTime<Utc>,
{
    let Handles {
        commands,
        snapshot,
        notices,
    } = handles;
    let send = |cmds: Vec<Command>| {
        for c in cmds {
            let _ = commands.send(c);
        }
    };
    let mut src = Sources {
        events,
        signals,
        snapshot,
        notices,
        input_open: true,
        notices_open: true,
        snap_open: true,
    };
    if let Ok(size) = terminal.size() {
        app.update(Action::Resize(size.width, size.height));
    }
    let start = clock();
    app.update(Action::Tick(start));
    let mut f = Flags {
        snap_pending: true,
        dirty: true,
        broken: false,
        ended: false,
        second: start.timestamp(),
        tick_at: next_second(start),
        stop_at: None,
        give_up: false,
    };
    let mut last_draw: Option<Instant> = None;
    while !app.should_exit() && !f.give_up {
        if !f.broken && super::term::panicked() {
            f.broken = true;
            send(app.update(Action::Signal));
        }
        if app.stopping && f.stop_at.is_none() {
            f.stop_at = Some(Instant::now() + STOP_WAIT);
        }
        let due = last_draw.is_none_or(|t| t.elapsed() >= FRAME);
        if f.dirty && due && !f.broken {
            if f.snap_pending {
                refresh(&mut src, app, &mut f);
            }
            if terminal.draw(|fr| render::draw(fr, app)).is_err() {
                // the terminal is gone: stop the engine, then leave
                f.broken = true;
                send(app.update(Action::Signal));
            }
            f.dirty = false;
            last_draw = Some(Instant::now());
        }
        let frame_at = match (f.dirty && !f.broken, last_draw) {
            (true, Some(t)) => Some(t + FRAME),
            _ => None,
        };
        if let Some(first) = src.next(true, f.tick_at, frame_at, f.stop_at).await {
            handle(first, &mut src, app, &mut f, &send, &clock);
        }
        // drain whatever else is pending before the next frame
        for _ in 0..BATCH {
            match src.next(false, f.tick_at, None, None).await {
                Some(i) => handle(i, &mut src, app, &mut f, &send, &clock),
                None => break,
            }
        }
        if !f.ended && !src.notices_open && !src.snap_open {
            f.ended = true;
            refresh(&mut src, app, &mut f);
            app.update(Action::EngineEnded);
            f.dirty = true;
        }
    }
    if f.dirty && !f.broken {
        if f.snap_pending {
            refresh(&mut src, app, &mut f);
        }
        let _ = terminal.draw(|fr| render::draw(fr, app));
    }
}
