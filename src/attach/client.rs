//! The client side of `ferry attach`: find the run's socket, say hello, check
//! the runbook, and turn the link into the same [`Handles`] the console drives
//! a local engine with, so the attached console is the one `ferry run` shows.
//!
//! Commands the console sends become protocol messages (shutdown and abort are
//! never forwarded: leaving an attached console does not stop the run). When the
//! link ends, the console gets a [`Notice::Detached`] saying why, then the
//! snapshot and notice channels close, as when a local engine ends.

use super::proto::{self, ClientMsg, ServerMsg, Welcome};
use super::socket;
use ferry_core::engine::driver::{Handles, Notice};
use ferry_core::engine::snapshot::EngineSnapshot;
use ferry_core::runbook::Runbook;
use ferry_core::vocab::RunStatus;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};

/// How long the server may take to answer the hello.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why attaching failed; [`AttachError::exit_code`] maps it to DESIGN.md's codes.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("cannot reach {path}: {why}")]
    Unreachable { path: String, why: String },
    #[error("{0}")]
    NotFound(String),
    #[error("the run refused to attach: {0}")]
    Refused(String),
    #[error("{0}")]
    Runbook(String),
}

impl AttachError {
    pub fn exit_code(&self) -> i32 {
        match self {
            AttachError::Unreachable { .. } | AttachError::NotFound(_) => 3,
            AttachError::Refused(_) | AttachError::Runbook(_) => 2,
        }
    }
}

/// An accepted link, before the console takes it over.
pub struct Link {
    pub welcome: Welcome,
    reader: proto::LineReader<BufReader<tokio::net::unix::OwnedReadHalf>>,
    writer: tokio::net::unix::OwnedWriteHalf,
}

/// What an error connecting to a socket means, in words.
pub fn why(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such socket (is the run still going?)".into(),
        std::io::ErrorKind::ConnectionRefused => {
            "nothing answers there (the run that made it has ended)".into()
        }
        std::io::ErrorKind::PermissionDenied => {
            "permission denied: a run's socket is for its own user, and for the OS group its runbook's [operators] names".into()
        }
        _ => e.to_string(),
    }
}

/// [`why`], naming who the socket at `path` is for when permission was denied:
/// its owner and group, and the user asking.
pub fn why_at(path: &Path, e: &std::io::Error) -> String {
    use std::os::unix::fs::MetadataExt;
    if e.kind() != std::io::ErrorKind::PermissionDenied {
        return why(e);
    }
    let me = crate::identity::my_login();
    match std::fs::metadata(path) {
        Ok(m) => {
            let owner =
                crate::identity::login_name(m.uid()).unwrap_or_else(|| format!("uid {}", m.uid()));
            let group =
                crate::identity::group_name(m.gid()).unwrap_or_else(|| format!("gid {}", m.gid()));
            if m.mode() & 0o070 == 0 {
                format!("permission denied: this run is {owner}'s alone (its runbook has no [operators] group), and you are {me}")
            } else {
                format!("permission denied: this run is open to {owner} and the members of the OS group `{group}`, and you ({me}) are not one of them")
            }
        }
        // the directory itself is closed to us
        Err(_) => format!("permission denied: {me} cannot reach the socket's directory"),
    }
}

/// Connect to `path` and say hello as `operator`.
pub async fn connect(path: &Path, operator: &str, operate: bool) -> Result<Link, AttachError> {
    let unreachable = |why: String| AttachError::Unreachable {
        path: path.display().to_string(),
        why,
    };
    let (short, _dir) = socket::reachable(path).map_err(|e| unreachable(why_at(path, &e)))?;
    let stream = match tokio::time::timeout(ANSWER_TIMEOUT, UnixStream::connect(&short)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(AttachError::Refused(why_at(path, &e)))
        }
        Ok(Err(e)) => return Err(unreachable(why(&e))),
        Err(_) => return Err(unreachable("no answer".into())),
    };
    let (rd, mut writer) = stream.into_split();
    let mut reader = proto::LineReader::new(BufReader::new(rd), proto::MAX_SERVER_LINE);
    let hello = ClientMsg::Hello {
        protocol: proto::PROTOCOL,
        ferry_version: env!("CARGO_PKG_VERSION").to_string(),
        operator: operator.to_string(),
        operate,
    };
    let line = proto::to_line(&hello).map_err(|e| unreachable(e.to_string()))?;
    writer
        .write_all(line.as_bytes())
        .await
        .map_err(|e| unreachable(why(&e)))?;
    let answer = match tokio::time::timeout(ANSWER_TIMEOUT, reader.next()).await {
        Ok(Ok(Some(l))) => l,
        Ok(Ok(None)) => return Err(unreachable("it closed without answering".into())),
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Err(_) => return Err(unreachable("no answer to the hello".into())),
    };
    match serde_json::from_str::<ServerMsg>(&answer) {
        Ok(ServerMsg::Welcome(welcome)) => Ok(Link {
            welcome,
            reader,
            writer,
        }),
        Ok(ServerMsg::Refused { reason }) => Err(AttachError::Refused(reason)),
        _ => Err(unreachable(
            "what answers there is not a ferry run (or another version of ferry)".into(),
        )),
    }
}

/// The runbook the run loaded: its text as the server sent it, or the file at
/// the path it names; either way its SHA-256 must be the run's.
pub fn runbook(w: &Welcome) -> Result<Runbook, AttachError> {
    let path = Path::new(&w.runbook_path);
    let loaded = match &w.runbook_source {
        Some(src) => ferry_core::runbook::load_str_with(&w.runbook_path, src, path, &w.vars),
        None => ferry_core::runbook::load_with(path, &w.vars),
    };
    let rb = loaded.map_err(|r| {
        AttachError::Runbook(format!(
            "cannot load the run's runbook {}:\n{}",
            w.runbook_path,
            r.render()
        ))
    })?;
    if rb.source_sha256 != w.runbook_sha256 {
        return Err(AttachError::Runbook(format!(
            "{} changed since the run started (SHA-256 {} now, {} when the run loaded it); the console needs the runbook the run uses: restore it",
            w.runbook_path,
            short(&rb.source_sha256),
            short(&w.runbook_sha256)
        )));
    }
    Ok(rb)
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// How the link ended, for the message after the console closes.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEnd {
    /// The run ended (its final status).
    RunEnded(RunStatus),
    /// The console was left while the run went on.
    Left,
    /// The server dropped this client, or the link broke.
    Lost(String),
}

/// Hand the link to a console, with the state and the journal lines that came
/// first: returns its handles and the task that says how the link ended.
pub fn start(
    link: Link,
    first: Arc<EngineSnapshot>,
    early: Vec<Notice>,
) -> (Handles, tokio::task::JoinHandle<LinkEnd>) {
    let Link {
        mut reader,
        mut writer,
        welcome,
    } = link;
    // the run's snapshot names its journal as the run was given it (maybe
    // relative to another folder): this console shows the absolute path
    let journal = PathBuf::from(&welcome.journal);
    let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel();
    let (snap_tx, snap_rx) = watch::channel(first);
    let (notice_tx, notice_rx) = mpsc::unbounded_channel();
    // set when the console is gone (its command sender dropped): an end of the
    // link after that is the server answering our leaving, not a lost run
    let left = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let leaving = left.clone();
    for n in early {
        let _ = notice_tx.send(n);
    }
    // the console's commands, as protocol messages; the task ends with the console
    tokio::spawn(async move {
        while let Some(c) = cmd_rx.recv().await {
            let Some(msg) = ClientMsg::from_command(c) else {
                continue;
            };
            let Ok(line) = proto::to_line(&msg) else {
                continue;
            };
            if writer.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
        leaving.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = writer.shutdown().await;
    });
    let task = tokio::spawn(async move {
        let mut end: Option<LinkEnd> = None;
        let mut dropped: Option<String> = None;
        loop {
            match reader.next().await {
                Ok(Some(l)) => match serde_json::from_str::<ServerMsg>(&l) {
                    Ok(ServerMsg::Snapshot { mut snapshot }) => {
                        // just parsed, so not shared: no copy is made
                        Arc::make_mut(&mut snapshot).journal = journal.clone();
                        snap_tx.send_replace(snapshot);
                    }
                    Ok(ServerMsg::Notice { ts, entry }) => {
                        let _ = notice_tx.send(Notice::Journaled { ts, entry });
                    }
                    Ok(ServerMsg::JournalFailed { error }) => {
                        let _ = notice_tx.send(Notice::JournalFailed(error));
                    }
                    Ok(ServerMsg::Denied { reason }) => {
                        let _ = notice_tx.send(Notice::Denied(reason));
                    }
                    Ok(ServerMsg::End { status }) => end = Some(LinkEnd::RunEnded(status)),
                    Ok(ServerMsg::Dropped { reason }) => dropped = Some(reason),
                    Ok(ServerMsg::Welcome(_) | ServerMsg::Refused { .. }) => {}
                    Err(e) => tracing::warn!(error = %e, "attach: a message that does not parse"),
                },
                Ok(None) => break,
                Err(e) => {
                    dropped.get_or_insert_with(|| format!("the link broke: {e}"));
                    break;
                }
            }
        }
        let end = match (end, dropped) {
            (Some(e), _) => e,
            (None, _) if left.load(std::sync::atomic::Ordering::SeqCst) => LinkEnd::Left,
            (None, Some(d)) => LinkEnd::Lost(d),
            (None, None) => {
                LinkEnd::Lost("the run's process went away without saying goodbye (killed?)".into())
            }
        };
        let _ = notice_tx.send(Notice::Detached(describe(&end)));
        end
    });
    (
        Handles {
            commands: cmd_tx,
            snapshot: snap_rx,
            notices: notice_rx,
        },
        task,
    )
}

/// One line about how the link ended.
pub fn describe(end: &LinkEnd) -> String {
    match end {
        LinkEnd::RunEnded(RunStatus::Finished { ok: true }) => {
            "the run finished: every step succeeded".into()
        }
        LinkEnd::RunEnded(RunStatus::Finished { ok: false }) => {
            "the run finished with failures".into()
        }
        LinkEnd::RunEnded(RunStatus::Aborted) => "the run was aborted".into(),
        LinkEnd::RunEnded(_) => {
            "the run was stopped from its own console (it can be resumed)".into()
        }
        LinkEnd::Left => "left the console; the run goes on".into(),
        LinkEnd::Lost(why) => format!("lost the run: {why}"),
    }
}

/// The first snapshot, which the server sends right after the journal backlog.
/// Backlog lines that come first are kept for the console.
pub async fn first_snapshot(
    link: &mut Link,
) -> Result<(Arc<EngineSnapshot>, Vec<Notice>), AttachError> {
    let mut early = Vec::new();
    let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
    loop {
        let next = tokio::time::timeout_at(deadline, link.reader.next()).await;
        let line = match next {
            Ok(Ok(Some(l))) => l,
            Ok(Ok(None)) => {
                return Err(AttachError::NotFound(
                    "the run ended before its state arrived".into(),
                ))
            }
            Ok(Err(e)) => return Err(AttachError::NotFound(format!("the link broke: {e}"))),
            Err(_) => return Err(AttachError::NotFound("the run sent no state".into())),
        };
        match serde_json::from_str::<ServerMsg>(&line) {
            Ok(ServerMsg::Snapshot { mut snapshot }) => {
                Arc::make_mut(&mut snapshot).journal = PathBuf::from(&link.welcome.journal);
                return Ok((snapshot, early));
            }
            Ok(ServerMsg::Notice { ts, entry }) => early.push(Notice::Journaled { ts, entry }),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "attach: a message that does not parse"),
        }
    }
}

/// Where to attach: `socket` as given; else the socket of `journal`; else the
/// newest live run of `runbook` (or of any runbook) under any of `runs_dirs`.
pub fn find(
    socket: Option<&Path>,
    journal: Option<&Path>,
    runbook_name: Option<&str>,
    runs_dirs: &[PathBuf],
) -> Result<PathBuf, AttachError> {
    if let Some(s) = socket {
        return Ok(s.to_path_buf());
    }
    if let Some(j) = journal {
        if !j.is_file() {
            return Err(AttachError::NotFound(format!(
                "no journal at {}",
                j.display()
            )));
        }
        return Ok(socket_of(j));
    }
    let dirs: Vec<PathBuf> = runs_dirs
        .iter()
        .flat_map(|runs_dir| match runbook_name {
            Some(n) => vec![runs_dir.join(n)],
            None => std::fs::read_dir(runs_dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.is_dir())
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    let mut journals: Vec<(std::time::SystemTime, PathBuf)> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    journals.sort();
    let count = journals.len();
    // the newest first; the default socket is cheap to try, a journal's record of
    // a chosen --socket means reading it, so only the few newest are read
    for (i, (_, j)) in journals.iter().rev().enumerate() {
        let default = socket::default_for(j);
        if socket::is_live(&default) {
            return Ok(default);
        }
        if i < 20 && !closed(j) {
            let s = socket_of(j);
            if s != default && socket::is_live(&s) {
                return Ok(s);
            }
        }
    }
    let shown: Vec<String> = runs_dirs
        .iter()
        .map(|d| match runbook_name {
            Some(n) => d.join(n).display().to_string(),
            None => d.display().to_string(),
        })
        .collect();
    let place = match runbook_name {
        Some(n) => format!("of runbook `{n}` under {}", shown.join(" or ")),
        None => format!("under {}", shown.join(" or ")),
    };
    Err(AttachError::NotFound(format!(
        "no live run {place} ({count} journal{} found, none of them serving a console): start one with `ferry run`, or pass --socket PATH (a run prints its socket when it starts)",
        if count == 1 { "" } else { "s" }
    )))
}

/// The socket a journal's newest session served, or the default beside it.
/// Only `session` lines are parsed (a copy's journal can be gigabytes), and
/// nothing is verified: this only says where to knock.
pub fn socket_of(journal: &Path) -> PathBuf {
    use std::io::BufRead;
    let mut recorded: Option<String> = None;
    if let Ok(f) = std::fs::File::open(journal) {
        for line in std::io::BufReader::new(f)
            .split(b'\n')
            .map_while(Result::ok)
        {
            if !contains(&line, b"\"kind\":\"session\"") {
                continue;
            }
            let v: Option<serde_json::Value> = serde_json::from_slice(&line).ok();
            if let Some(s) = v.as_ref().and_then(|v| v["entry"]["socket"].as_str()) {
                recorded = Some(s.to_string());
            }
        }
    }
    recorded
        .map(PathBuf::from)
        .unwrap_or_else(|| socket::default_for(journal))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether a journal's last lines say its run ended (nothing to attach to).
fn closed(journal: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(journal) else {
        return false;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut tail = Vec::new();
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let _ = f.take(4096).read_to_end(&mut tail);
    contains(&tail, b"\"kind\":\"closed\"")
}
