//! The socket file: where it lives, how it is bound (mode 0600, a stale one
//! from a crashed run replaced, a live one or a non-socket file never touched),
//! who may connect (the same user, or root), and its removal when the run ends.
//!
//! A Unix socket path holds at most 107 bytes. A longer one (a journal deep in a
//! tree) is reached through `/proc/self/fd/N/NAME`, N being its opened directory.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The longest path `sockaddr_un` holds (108 bytes with the terminating NUL).
const MAX_SUN_PATH: usize = 107;

/// The socket of a run whose journal is `journal`: `<journal>.sock`.
pub fn default_for(journal: &Path) -> PathBuf {
    let mut s: OsString = journal.as_os_str().to_owned();
    s.push(".sock");
    PathBuf::from(s)
}

/// `path` in a form short enough to bind or connect to, and the directory
/// handle that keeps a `/proc/self/fd` form valid (hold it until done).
pub fn reachable(path: &Path) -> io::Result<(PathBuf, Option<File>)> {
    use std::os::unix::ffi::OsStrExt;
    if path.as_os_str().as_bytes().len() <= MAX_SUN_PATH {
        return Ok((path.to_path_buf(), None));
    }
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let handle = File::open(dir)?;
    use std::os::fd::AsRawFd;
    let short = PathBuf::from(format!("/proc/self/fd/{}", handle.as_raw_fd())).join(name);
    if short.as_os_str().as_bytes().len() > MAX_SUN_PATH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the socket's file name is too long for a Unix socket",
        ));
    }
    Ok((short, Some(handle)))
}

/// Whether something answers at `path` right now.
pub fn is_live(path: &Path) -> bool {
    match reachable(path) {
        Ok((p, _dir)) => std::os::unix::net::UnixStream::connect(p).is_ok(),
        Err(_) => false,
    }
}

/// A bound socket file; removed on drop if it is still ours.
pub struct SocketFile {
    pub path: PathBuf,
    /// Device, inode and change time of our socket file, so a file that
    /// replaced it (even on a reused inode) is left alone.
    id: (u64, u64, i64, i64),
}

/// Why the socket could not be served.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("{path} is in use: another ferry run serves it (choose another --socket)")]
    Live { path: String },
    #[error(
        "{path} exists and is not a socket: ferry does not replace it (choose another --socket)"
    )]
    NotSocket { path: String },
    #[error("cannot serve {path}: {source}")]
    Io { path: String, source: io::Error },
}

/// Bind `path` with mode 0600. A socket nobody answers at (a crashed run's) is
/// replaced; a live one, or any other kind of file, is an error.
pub fn bind(path: &Path) -> Result<(SocketFile, std::os::unix::net::UnixListener), BindError> {
    let shown = path.display().to_string();
    let io_err = |source: io::Error| BindError::Io {
        path: shown.clone(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_socket() => return Err(BindError::NotSocket { path: shown }),
        Ok(_) if is_live(path) => return Err(BindError::Live { path: shown }),
        Ok(_) => {
            tracing::info!(path = %shown, "replacing a stale attach socket");
            std::fs::remove_file(path).map_err(io_err)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    // bound under a temporary name, made 0600, then renamed into place: the
    // socket is never reachable at `path` with looser permissions
    let mut tmp_name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let (short_tmp, _dir) = reachable(&tmp).map_err(io_err)?;
    let listener = std::os::unix::net::UnixListener::bind(&short_tmp).map_err(io_err)?;
    let placed = listener
        .set_nonblocking(true)
        .and_then(|()| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)))
        .and_then(|()| std::fs::rename(&tmp, path))
        .and_then(|()| std::fs::symlink_metadata(path));
    match placed {
        Ok(m) => Ok((
            SocketFile {
                path: path.to_path_buf(),
                id: file_id(&m),
            },
            listener,
        )),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(io_err(e))
        }
    }
}

fn file_id(m: &std::fs::Metadata) -> (u64, u64, i64, i64) {
    (m.dev(), m.ino(), m.ctime(), m.ctime_nsec())
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if file_id(&m) == self.id {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Whether a peer with user id `uid` may attach: the run's own user, or root.
pub fn peer_allowed(uid: u32) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    uid == me || uid == 0
}
