//! Logging: tracing goes to `<state dir>/ferry.log` (never to the screen),
//! filtered by `FERRY_LOG` (default `info`), and every line passes through
//! the run's redactor before it reaches the file, so secrets stay out of logs.

use ferry_core::engine::redact::Redactor;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// The redactor the log writer uses; a run installs its own once it knows its secrets.
static REDACTOR: OnceLock<RwLock<Arc<Redactor>>> = OnceLock::new();

fn redactor() -> &'static RwLock<Arc<Redactor>> {
    REDACTOR.get_or_init(|| RwLock::new(Arc::new(Redactor::new())))
}

/// Use `r` for every log line from now on.
pub fn set_redactor(r: Arc<Redactor>) {
    if let Ok(mut g) = redactor().write() {
        *g = r;
    }
}

/// `$XDG_STATE_HOME/ferry` or `~/.local/state/ferry`.
pub fn state_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("ferry");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => PathBuf::from(h).join(".local/state/ferry"),
        None => std::env::temp_dir().join("ferry"),
    }
}

#[derive(Clone)]
struct RedactingFile(Arc<Mutex<File>>);

impl Write for RedactingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let clean = match redactor().read() {
            Ok(r) => r.redact(&text),
            Err(_) => text.into_owned(),
        };
        let mut f = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("log file lock poisoned"))?;
        f.write_all(clean.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.lock() {
            Ok(mut f) => f.flush(),
            Err(_) => Ok(()),
        }
    }
}

/// Start logging to `<dir>/ferry.log`. Returns the path, or None when the file
/// cannot be opened (ferry then runs without a log rather than not at all).
pub fn init(dir: &Path) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    let path = dir.join("ferry.log");
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()?;
    let writer = RedactingFile(Arc::new(Mutex::new(file)));
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ok = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .is_ok();
    ok.then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_redacted_before_they_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.log");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let mut r = Redactor::new();
        r.add("hunter2-secret");
        set_redactor(Arc::new(r));
        let mut w = RedactingFile(Arc::new(Mutex::new(file)));
        w.write_all(b"WARN connecting to postgres://app:hunter2-secret@db:5432/app failed\n")
            .unwrap();
        w.write_all(b"WARN token=hunter2-secret\n").unwrap();
        w.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("hunter2-secret"), "{text}");
        assert_eq!(text.matches("••••••").count(), 2, "{text}");
    }
}
