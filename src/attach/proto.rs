//! The attach protocol: JSON lines over a Unix socket, one message a line.
//!
//! ```text
//! client                                   server (the `ferry run` process)
//! {"type":"hello",…}            ──►
//!                               ◄──        {"type":"welcome",…}  or {"type":"refused",…} and close
//!                               ◄──        {"type":"notice",…}   the recent journal lines, then live ones
//!                               ◄──        {"type":"snapshot",…} when it changed, at most ~10 a second
//! {"type":"decide",…}           ──►        (--operate only; else {"type":"denied",…})
//!                               ◄──        {"type":"end",…}      the run ended; the server closes
//! ```
//! Every line the server writes passed through the run's redactor. A line longer
//! than the reader's limit is an error that ends the link, never a partial read.

use chrono::{DateTime, Utc};
use ferry_core::engine::driver::Command;
use ferry_core::engine::snapshot::EngineSnapshot;
use ferry_core::journal::Entry;
use ferry_core::vocab::{Decision, RunStatus};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Bumped whenever a message changes shape: both sides must speak the same one.
pub const PROTOCOL: u32 = 3;
/// The longest line a client may send (a confirmation with its evidence fits many times).
pub const MAX_CLIENT_LINE: usize = 64 * 1024;
/// The longest line a server may send (a snapshot holds every step's output tail).
pub const MAX_SERVER_LINE: usize = 256 * 1024 * 1024;
/// The longest operator name accepted.
pub const MAX_OPERATOR: usize = 64;
/// At most this many evidence items travel with a confirmation.
pub const MAX_EVIDENCE: usize = 64;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    Hello {
        protocol: u32,
        ferry_version: String,
        operator: String,
        /// May confirm, skip, retry and roll back (`ferry attach --operate`).
        operate: bool,
    },
    /// A decision about a step (`--operate` only; an abort is never passed on).
    Decide { decision: Decision },
}

impl ClientMsg {
    /// The engine's decision an operator's message carries (`None` for a hello). A
    /// confirmation from a client is never automatic, and carries at most
    /// [`MAX_EVIDENCE`] items.
    pub fn decision(self) -> Option<Decision> {
        match self {
            ClientMsg::Hello { .. } => None,
            ClientMsg::Decide {
                decision:
                    Decision::Confirm {
                        step,
                        typed,
                        mut evidence,
                        ..
                    },
            } => {
                evidence.truncate(MAX_EVIDENCE);
                Some(Decision::Confirm {
                    step,
                    automatic: false,
                    typed,
                    evidence,
                })
            }
            ClientMsg::Decide { decision } => Some(decision),
        }
    }

    /// The message for one of the console's commands; `None` for what an
    /// attached console never forwards (shutdown, abort, presence).
    pub fn from_command(c: Command) -> Option<ClientMsg> {
        match c {
            Command::Decide(decision) if decision.open_to_attached() => {
                Some(ClientMsg::Decide { decision })
            }
            Command::Decide(_)
            | Command::Shutdown
            | Command::As { .. }
            | Command::Refuse { .. }
            | Command::Presence { .. } => None,
        }
    }
}

/// What the server says once the hello is accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol: u32,
    pub ferry_version: String,
    /// The runbook as the run loaded it: absolute path, SHA-256 of its text,
    /// and the text itself when the file still held it when the server started.
    pub runbook_path: String,
    pub runbook_sha256: String,
    pub runbook_source: Option<String>,
    /// The `[vars]` values the run loaded the runbook with (`--var`, `--vars`);
    /// secret-named ones are not sent (the console shows the runbook's own).
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, String>,
    pub journal: String,
    /// The operator who started the run, on which host, in which process.
    pub operator: String,
    pub host: String,
    pub pid: u32,
    /// This client observes: `[operators] operate` does not list its user, so
    /// the run refuses whatever it decides (and the console offers no action).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub observer: bool,
}

/// What a server sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Welcome(Welcome),
    /// The hello was refused (the server closes next).
    Refused {
        reason: String,
    },
    Snapshot {
        snapshot: Arc<EngineSnapshot>,
    },
    /// A journaled entry.
    Notice {
        ts: DateTime<Utc>,
        entry: Box<Entry>,
    },
    JournalFailed {
        error: String,
    },
    /// A command of this client was not passed on (read-only, malformed).
    Denied {
        reason: String,
    },
    /// The run ended (finished, aborted, or stopped from its own console).
    End {
        status: RunStatus,
    },
    /// This client is being disconnected (the server closes next).
    Dropped {
        reason: String,
    },
}

/// Why a line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("a line longer than {0} bytes")]
    TooLong(usize),
    #[error("a line that is not UTF-8")]
    NotUtf8,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads lines of at most `max` bytes (without the newline). Cancel-safe: a
/// partly read line stays in the reader, so `next` may sit in a `select!`.
pub struct LineReader<R> {
    inner: R,
    partial: Vec<u8>,
    max: usize,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            partial: Vec::new(),
            max,
        }
    }

    /// The next non-empty line; `None` at the end of the stream (a last line
    /// without its newline counts).
    pub async fn next(&mut self) -> Result<Option<String>, FrameError> {
        loop {
            // the only await: nothing is taken from the stream before it completes
            let chunk = self.inner.fill_buf().await?;
            if chunk.is_empty() {
                if self.partial.is_empty() {
                    return Ok(None);
                }
                let line = std::mem::take(&mut self.partial);
                return finish(line).map(Some);
            }
            let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let body = if done { take - 1 } else { take };
            if self.partial.len() + body > self.max {
                return Err(FrameError::TooLong(self.max));
            }
            self.partial.extend_from_slice(&chunk[..body]);
            self.inner.consume(take);
            if done {
                let line = std::mem::take(&mut self.partial);
                if line.is_empty() || line == b"\r" {
                    continue;
                }
                return finish(line).map(Some);
            }
        }
    }
}

fn finish(mut line: Vec<u8>) -> Result<String, FrameError> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| FrameError::NotUtf8)
}

/// One message as a line (with its newline).
pub fn to_line<T: Serialize>(msg: &T) -> Result<String, serde_json::Error> {
    let mut s = serde_json::to_string(msg)?;
    s.push('\n');
    Ok(s)
}

/// An operator name as given in a hello: trimmed, 1 to [`MAX_OPERATOR`]
/// characters, no control characters; else why not.
pub fn check_operator(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("the operator name is empty".into());
    }
    if name.chars().count() > MAX_OPERATOR {
        return Err(format!(
            "the operator name is longer than {MAX_OPERATOR} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("the operator name holds control characters".into());
    }
    Ok(name.to_string())
}
