//! Terminal safety: raw mode, the alternate screen and a hidden cursor are
//! entered through a [`TerminalGuard`] that restores all three when dropped —
//! on a normal exit, on an error, and on a panic: the panic hook first logs the
//! panic to the log file (so it is kept even if restoring or printing fails),
//! then restores the terminal, then lets the previous hook print. [`signals`] turns
//! SIGTERM, SIGHUP and SIGINT into a stream so the console can stop the engine
//! (running steps journaled as interrupted) before it restores the terminal.

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen,
};
use futures::Stream;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use tokio::signal::unix::{signal, SignalKind};

/// The terminal is in raw mode on the alternate screen.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// The panic hook ran (and restored the terminal): stop drawing.
static PANICKED: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// Leave raw mode and the alternate screen and show the cursor, once.
pub fn restore() -> io::Result<()> {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return Ok(());
    }
    let raw = disable_raw_mode();
    let screen = execute!(io::stdout(), Show, LeaveAlternateScreen);
    raw.and(screen)
}

/// Whether a panic restored the terminal behind the console's back.
pub fn panicked() -> bool {
    PANICKED.load(Ordering::SeqCst)
}

/// Restores the terminal when dropped.
#[derive(Debug)]
pub struct TerminalGuard {
    _private: (),
}

impl TerminalGuard {
    /// Raw mode, alternate screen, hidden cursor. On failure nothing stays changed.
    pub fn enter() -> io::Result<Self> {
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        // from here a failure drops the guard, which restores
        let guard = TerminalGuard { _private: () };
        execute!(
            io::stdout(),
            EnterAlternateScreen,
            Hide,
            Clear(ClearType::All)
        )?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = restore();
    }
}

/// Chain a panic hook that logs the panic, restores the terminal, then prints the panic.
pub fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            on_panic(
                panic_message(info.payload()),
                location.as_deref(),
                || {
                    let was_active = ACTIVE.load(Ordering::SeqCst);
                    let _ = restore();
                    if was_active {
                        PANICKED.store(true, Ordering::SeqCst);
                    }
                },
                || previous(info),
            );
        }));
    });
}

/// What a panic says: its `&str` or `String` payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic with no message)")
}

/// The panic hook's order: log the panic (the log file keeps it whatever the
/// terminal is in), restore the terminal, then print the panic where the
/// operator can read it.
fn on_panic(message: &str, location: Option<&str>, restore: impl FnOnce(), print: impl FnOnce()) {
    let location = location.unwrap_or("unknown location");
    tracing::error!(target: "ferry::panic", "panic at {location}: {message}");
    restore();
    print();
}

/// SIGTERM, SIGHUP and SIGINT as a stream of `()`. Must be called inside a tokio runtime.
pub fn signals() -> impl Stream<Item = ()> + Unpin {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for kind in [
        SignalKind::terminate(),
        SignalKind::hangup(),
        SignalKind::interrupt(),
    ] {
        if let Ok(mut s) = signal(kind) {
            let tx = tx.clone();
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(()).is_err() {
                        break;
                    }
                }
            });
        }
    }
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    /// Records each tracing event's level and message, in order, into a shared list.
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorder {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Message(String);
            impl tracing::field::Visit for Message {
                fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                    if f.name() == "message" {
                        self.0 = format!("{v:?}");
                    }
                }
            }
            let mut m = Message(String::new());
            event.record(&mut m);
            if let Ok(mut calls) = self.0.lock() {
                calls.push(format!("log {} {}", event.metadata().level(), m.0));
            }
        }
    }

    #[test]
    fn the_panic_is_logged_before_the_terminal_is_restored_and_then_printed() {
        let calls = Arc::new(Mutex::new(Vec::<String>::new()));
        let subscriber = tracing_subscriber::registry().with(Recorder(calls.clone()));
        let record = |what: &'static str| {
            let calls = calls.clone();
            move || calls.lock().unwrap().push(what.to_string())
        };
        tracing::subscriber::with_default(subscriber, || {
            let payload: Box<dyn std::any::Any + Send> =
                Box::new(String::from("index out of range"));
            on_panic(
                panic_message(payload.as_ref()),
                Some("src/tui/app.rs:12:5"),
                record("restore"),
                record("print"),
            );
        });
        assert_eq!(
            *calls.lock().unwrap(),
            [
                "log ERROR panic at src/tui/app.rs:12:5: index out of range",
                "restore",
                "print"
            ]
        );
    }

    #[test]
    fn a_panic_message_is_its_str_or_string_payload() {
        let s: Box<dyn std::any::Any + Send> = Box::new("boom");
        assert_eq!(panic_message(s.as_ref()), "boom");
        let s: Box<dyn std::any::Any + Send> = Box::new(String::from("bang"));
        assert_eq!(panic_message(s.as_ref()), "bang");
        let s: Box<dyn std::any::Any + Send> = Box::new(7);
        assert_eq!(panic_message(s.as_ref()), "(a panic with no message)");
    }
}
