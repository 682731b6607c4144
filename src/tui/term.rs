//! Terminal safety: raw mode, the alternate screen and a hidden cursor are
//! entered through a [`TerminalGuard`] that restores all three when dropped —
//! on a normal exit, on an error, and (through the panic hook, which restores
//! first and then lets the default hook print) on a panic. [`signals`] turns
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

/// Chain a panic hook that restores the terminal before the panic is printed.
pub fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let was_active = ACTIVE.load(Ordering::SeqCst);
            let _ = restore();
            if was_active {
                PANICKED.store(true, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
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
