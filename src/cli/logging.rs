//! Logging: tracing goes to `<state dir>/ferry.log` (never to the screen),
//! filtered by `FERRY_LOG` (default `info`), and every line passes through
//! the run's redactor before it reaches the file, so secrets stay out of logs.
//!
//! The file is bounded: past `FERRY_LOG_MAX_MB` (default 10) it is renamed to
//! `ferry.log.1` (replacing the one before) and a new one is started, so ferry keeps
//! at most twice that on disk. A file already over the limit is rotated at start.

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

/// The log's size limit in bytes: `FERRY_LOG_MAX_MB` (whole MiB, at least 1), default 10.
pub fn max_bytes() -> u64 {
    const DEFAULT_MB: u64 = 10;
    let mb = std::env::var("FERRY_LOG_MAX_MB")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|v| *v >= 1)
        .unwrap_or(DEFAULT_MB);
    mb.saturating_mul(1024 * 1024)
}

/// The open log file, its size, and where it rotates.
struct Rotating {
    file: File,
    path: PathBuf,
    size: u64,
    max: u64,
}

impl Rotating {
    /// Open (append) `path`, rotating first when it is already over `max`.
    fn open(path: &Path, max: u64) -> std::io::Result<Rotating> {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if size >= max {
            std::fs::rename(path, old_path(path))?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Rotating {
            file,
            path: path.to_path_buf(),
            size,
            max,
        })
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.size > 0 && self.size + bytes.len() as u64 > self.max {
            self.file.flush()?;
            std::fs::rename(&self.path, old_path(&self.path))?;
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.size = 0;
        }
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }
}

/// `ferry.log` → `ferry.log.1`.
fn old_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".1");
    path.with_file_name(name)
}

#[derive(Clone)]
struct RedactingFile(Arc<Mutex<Rotating>>);

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
            Ok(mut f) => f.file.flush(),
            Err(_) => Ok(()),
        }
    }
}

/// Start logging to `<dir>/ferry.log`. Returns the path, or None when the file
/// cannot be opened (ferry then runs without a log rather than not at all).
pub fn init(dir: &Path) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    let path = dir.join("ferry.log");
    let file = Rotating::open(&path, max_bytes()).ok()?;
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
        let file = Rotating::open(&path, 1 << 20).unwrap();
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

    #[test]
    fn the_log_rotates_past_its_limit_and_keeps_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.log");
        let mut r = Rotating::open(&path, 100).unwrap();
        for i in 0..5 {
            r.write_all(format!("line {i} ......................................\n").as_bytes())
                .unwrap();
        }
        let now = std::fs::read_to_string(&path).unwrap();
        let old = std::fs::read_to_string(old_path(&path)).unwrap();
        assert!(now.len() <= 100 && old.len() <= 100, "{now:?} {old:?}");
        assert!(
            now.contains("line 4") && old.contains("line 2"),
            "{now:?} {old:?}"
        );
        assert!(
            !old.contains("line 0"),
            "only one old file is kept: {old:?}"
        );
        // a file already over the limit is rotated when opened
        drop(r);
        std::fs::write(&path, vec![b'x'; 200]).unwrap();
        let r = Rotating::open(&path, 100).unwrap();
        assert_eq!(r.size, 0);
        assert_eq!(std::fs::metadata(old_path(&path)).unwrap().len(), 200);
    }
}
