//! The attach socket of `ferry run`: where it goes (`--socket PATH`, else
//! `<journal>.sock`) and what the server tells attaching consoles about the run.

use crate::attach::access::Access;
use crate::attach::proto::{Welcome, PROTOCOL};
use crate::attach::server::RunInfo;
use crate::attach::socket::{self, SocketFile};
use ferry_core::runbook::Runbook;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// `path` made absolute against the working directory (an attaching console
/// may run elsewhere), without resolving links.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Bind the run's socket for `access` (its group, when `[operators]` names one).
/// An explicit `--socket` that cannot be served is an error, and so is any socket
/// of a run whose `[operators]` opens it to a group (its two-person steps need a
/// second person to attach); otherwise only a warning (the run matters more).
pub fn open(
    explicit: Option<&Path>,
    journal: &Path,
    access: &Access,
) -> Result<Option<(SocketFile, UnixListener)>, String> {
    let audience = socket::Audience {
        group: access.group.clone(),
    };
    match explicit {
        Some(p) => socket::bind(&absolute(p), &audience)
            .map(Some)
            .map_err(|e| e.to_string()),
        None => {
            let p = socket::default_for(&absolute(journal));
            match socket::bind(&p, &audience) {
                Ok(b) => Ok(Some(b)),
                Err(e) if audience.group.is_some() => Err(e.to_string()),
                Err(e) => {
                    complain!("warning: {e}; ferry attach will not reach this run");
                    tracing::warn!(error = %e, "no attach socket");
                    Ok(None)
                }
            }
        }
    }
}

/// What an attaching console is told: the runbook (path, hash, text), the journal, who runs it.
pub fn run_info(
    rb: &Runbook,
    journal: &Path,
    operator: &str,
    host: &str,
    access: Access,
    vars: &ferry_core::runbook::vars::Overrides,
) -> RunInfo {
    let path = absolute(&rb.path);
    // the text as loaded, if the file still holds it (its hash says so)
    let source = std::fs::read_to_string(&path)
        .ok()
        .filter(|t| ferry_core::journal::sha256_hex(t.as_bytes()) == rb.source_sha256);
    RunInfo {
        welcome: Welcome {
            protocol: PROTOCOL,
            ferry_version: env!("CARGO_PKG_VERSION").to_string(),
            runbook_path: path.display().to_string(),
            runbook_sha256: rb.source_sha256.clone(),
            runbook_source: source,
            vars: vars
                .values()
                .into_iter()
                .filter(|(k, _)| !ferry_core::runbook::vars::is_masked(k))
                .collect(),
            journal: absolute(journal).display().to_string(),
            operator: operator.to_string(),
            host: host.to_string(),
            pid: std::process::id(),
            observer: false,
        },
        host: host.to_string(),
        access,
    }
}
