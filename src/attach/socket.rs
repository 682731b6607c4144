//! The socket file: where it lives, how it is bound (mode 0600, or 0660 with the
//! `[operators]` group after its directory was checked; a stale one from a
//! crashed run replaced, a live one or a non-socket file never touched), and its
//! removal when the run ends. Who may connect is [`super::access`]'s business.
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
    #[error("cannot serve {path} to the group `{group}`: {why}")]
    Directory {
        path: String,
        group: String,
        why: String,
    },
}

/// Who the socket is for: its owner only (mode 0600), or also an OS group
/// (name, gid: mode 0660, the file's group set to it).
#[derive(Debug, Clone, Default)]
pub struct Audience {
    pub group: Option<(String, u32)>,
}

/// Whether the members of group `gid` can reach a socket in `dir`, and nobody
/// else can replace it there: every directory up to `/` must be searchable by
/// them, and `dir` writable by nobody but its owner (or sticky, like /tmp),
/// since whoever can write `dir` could put a socket of their own in its place.
pub fn check_dir(dir: &Path, gid: u32) -> Result<(), String> {
    let dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let m = std::fs::metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mode = m.mode();
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(format!(
            "{} is writable by others than its owner (mode {:o}), who could replace the socket: make it writable by its owner only (chmod go-w), or choose another --socket",
            dir.display(),
            mode & 0o7777
        ));
    }
    for d in dir.ancestors() {
        let m = std::fs::metadata(d).map_err(|e| format!("{}: {e}", d.display()))?;
        let mode = m.mode();
        let searchable = mode & 0o001 != 0 || (m.gid() == gid && mode & 0o010 != 0);
        if !searchable {
            return Err(format!(
                "its members cannot reach {} (mode {:o}, group {}): give the group search rights there (chgrp and chmod g+x), or choose another --socket",
                d.display(),
                mode & 0o7777,
                m.gid()
            ));
        }
    }
    Ok(())
}

/// Bind `path` with mode 0600, or 0660 with the audience's group. A socket
/// nobody answers at (a crashed run's) is replaced; a live one, or any other
/// kind of file, is an error.
pub fn bind(
    path: &Path,
    audience: &Audience,
) -> Result<(SocketFile, std::os::unix::net::UnixListener), BindError> {
    let shown = path.display().to_string();
    if let Some((group, gid)) = &audience.group {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        check_dir(dir, *gid).map_err(|why| BindError::Directory {
            path: shown.clone(),
            group: group.clone(),
            why,
        })?;
    }
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
    // bound under a temporary name, given its group and mode, then renamed into
    // place: the socket is never reachable at `path` with looser permissions
    let mut tmp_name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let (short_tmp, _dir) = reachable(&tmp).map_err(io_err)?;
    let listener = std::os::unix::net::UnixListener::bind(&short_tmp).map_err(io_err)?;
    let mode = if audience.group.is_some() {
        0o660
    } else {
        0o600
    };
    let placed = listener
        .set_nonblocking(true)
        .and_then(|()| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)))
        .and_then(|()| match &audience.group {
            Some((_, gid)) => std::os::unix::fs::chown(&tmp, None, Some(*gid)),
            None => Ok(()),
        })
        .and_then(|()| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)))
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
