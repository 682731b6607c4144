//! The server side of `ferry attach`, inside every `ferry run`.
//!
//! [`serve`] sits between the driver and the run's own front-end: the front-end
//! gets [`Handles`] as before (every notice, in order, unbounded), while a tee
//! also hands each notice, serialized and redacted once, to a broadcast that
//! every attached client reads, with the last [`BACKLOG`] of them kept for
//! newcomers. Snapshots are serialized at most every [`SNAPSHOT_EVERY`], and
//! only while someone listens. Nothing here ever waits on a client: a client
//! that falls [`LAG_LIMIT`] lines behind, or whose socket does not take a line
//! within [`WRITE_TIMEOUT`], is dropped, and the run goes on.
//!
//! Who a client is comes from the kernel: the peer's uid on the socket
//! (`SO_PEERCRED`), resolved to a login with `getpwuid_r`; the name in its hello
//! is only shown. [`Access`] decides whether it may connect and act. Commands
//! from a client become `Command::As { actor, … }` so the journal names the
//! attached operator and its uid; a read-only client's are denied here, and an
//! observer's (`[operators] operate` does not list it) refused and journaled.

use super::access::{Access, Admission};
use super::proto::{self, ClientMsg, ServerMsg, Welcome};
use super::socket::SocketFile;
use ferry_core::engine::driver::{Command, Handles, Notice};
use ferry_core::engine::redact::Redactor;
use ferry_core::engine::snapshot::{Attendee, EngineSnapshot};
use ferry_core::vocab::{Actor, Refusal};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, watch, Notify};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Journal lines a newcomer is sent first: at most this many…
pub const BACKLOG: usize = 500;
/// …holding at most this many bytes (a verify result can be a large line).
pub const BACKLOG_BYTES: usize = 8 * 1024 * 1024;
/// How far a client may fall behind the journal before it is dropped.
pub const LAG_LIMIT: usize = 2048;
/// Snapshots go out at most this often (about 10 a second).
pub const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);
/// A client whose socket takes no line for this long is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// A client must say hello within this time.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server tells clients about the run.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub welcome: Welcome,
    /// Attached operators act from this host (a Unix socket is local).
    pub host: String,
    /// Who may connect and who may act.
    pub access: Access,
}

struct Lines {
    backlog: VecDeque<Arc<str>>,
    backlog_bytes: usize,
    /// `None` once the run ended: clients drain and close.
    tx: Option<broadcast::Sender<Arc<str>>>,
    /// The `end` line, once the run ended (a latecomer gets it after the last snapshot).
    end: Option<Arc<str>>,
}

struct Hub {
    lines: Mutex<Lines>,
    snap: watch::Sender<Option<Arc<str>>>,
    /// A newcomer wants the current snapshot even if nothing changed.
    wanted: Notify,
    presence: Mutex<(u64, Vec<(u64, Attendee)>)>,
    commands: mpsc::UnboundedSender<Command>,
    redactor: Arc<Redactor>,
    info: RunInfo,
}

/// The running server; [`Server::finish`] waits for clients to get the end.
pub struct Server {
    pub path: PathBuf,
    stop: CancellationToken,
    accept: tokio::task::JoinHandle<()>,
    tee: tokio::task::JoinHandle<()>,
    _file: SocketFile,
}

/// `msg` as a line with every string value redacted (the JSON stays valid).
fn redacted_line(msg: &ServerMsg, redactor: &Redactor) -> Option<Arc<str>> {
    let json = match proto::to_line(msg) {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!(error = %e, "cannot serialize an attach message");
            return None;
        }
    };
    let masked = ferry_core::journal::redact_json(json.trim_end(), &|t| redactor.redact(t), &|t| {
        serde_json::from_str::<ServerMsg>(t).is_ok()
    });
    Some(format!("{masked}\n").into())
}

impl Hub {
    fn publish(&self, msg: &ServerMsg) {
        let Some(line) = redacted_line(msg, &self.redactor) else {
            return;
        };
        let mut l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        l.backlog_bytes += line.len();
        l.backlog.push_back(line.clone());
        while l.backlog.len() > BACKLOG || (l.backlog_bytes > BACKLOG_BYTES && l.backlog.len() > 1)
        {
            if let Some(old) = l.backlog.pop_front() {
                l.backlog_bytes -= old.len();
            }
        }
        if let Some(tx) = &l.tx {
            let _ = tx.send(line);
        }
    }

    /// The backlog and a receiver of every later line, with no gap between
    /// them; or, once the run ended, the `end` line instead of a receiver.
    #[allow(clippy::type_complexity)]
    fn subscribe(
        &self,
    ) -> (
        Vec<Arc<str>>,
        Result<broadcast::Receiver<Arc<str>>, Option<Arc<str>>>,
    ) {
        let l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let live = match &l.tx {
            Some(t) => Ok(t.subscribe()),
            None => Err(l.end.clone()),
        };
        (l.backlog.iter().cloned().collect(), live)
    }

    /// The run ended: clients get `msg` after everything else, then the broadcast closes.
    fn close(&self, msg: &ServerMsg) {
        let line = redacted_line(msg, &self.redactor);
        let mut l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(tx), Some(line)) = (&l.tx, &line) {
            let _ = tx.send(line.clone());
        }
        l.tx = None;
        l.end = line;
    }

    fn snapshot_line(&self, s: Arc<EngineSnapshot>) -> Option<Arc<str>> {
        redacted_line(&ServerMsg::Snapshot { snapshot: s }, &self.redactor)
    }

    /// Someone came (`Some`) or went: the driver journals `note` and shows the list.
    fn presence(&self, id: u64, who: Option<Attendee>, note: String) {
        let mut p = self.presence.lock().unwrap_or_else(|p| p.into_inner());
        match who {
            Some(a) => p.1.push((id, a)),
            None => p.1.retain(|(i, _)| *i != id),
        }
        let attendees = p.1.iter().map(|(_, a)| a.clone()).collect();
        let _ = self.commands.send(Command::Presence { attendees, note });
    }

    fn next_id(&self) -> u64 {
        let mut p = self.presence.lock().unwrap_or_else(|p| p.into_inner());
        p.0 += 1;
        p.0
    }
}

/// Serve `listener` for the run behind `handles`; return the handles the run's
/// own front-end uses from now on, and the server.
pub fn serve(
    file: SocketFile,
    listener: UnixListener,
    handles: Handles,
    info: RunInfo,
    redactor: Arc<Redactor>,
) -> (Handles, Server) {
    let Handles {
        commands,
        snapshot,
        notices,
    } = handles;
    let hub = Arc::new(Hub::new(commands.clone(), redactor, info));
    let stop = CancellationToken::new();
    let (local_tx, local_rx) = mpsc::unbounded_channel();
    let tee = tokio::spawn(tee(hub.clone(), notices, local_tx, snapshot.clone()));
    let accept = tokio::spawn(accept(listener, hub, stop.clone()));
    let path = file.path.clone();
    (
        Handles {
            commands,
            snapshot,
            notices: local_rx,
        },
        Server {
            path,
            stop,
            accept,
            tee,
            _file: file,
        },
    )
}

impl Hub {
    fn new(
        commands: mpsc::UnboundedSender<Command>,
        redactor: Arc<Redactor>,
        info: RunInfo,
    ) -> Self {
        let (lines_tx, _) = broadcast::channel(LAG_LIMIT);
        Hub {
            lines: Mutex::new(Lines {
                backlog: VecDeque::new(),
                backlog_bytes: 0,
                tx: Some(lines_tx),
                end: None,
            }),
            snap: watch::Sender::new(None),
            wanted: Notify::new(),
            presence: Mutex::new((0, Vec::new())),
            commands,
            redactor,
            info,
        }
    }
}

/// Snapshots to the clients: serialized at most every [`SNAPSHOT_EVERY`], only while someone listens.
async fn snapshot_pump(hub: Arc<Hub>, mut rx: watch::Receiver<Arc<EngineSnapshot>>) {
    loop {
        tokio::select! {
            r = rx.changed() => if r.is_err() { break },
            _ = hub.wanted.notified() => {}
        }
        if hub.snap.receiver_count() == 0 {
            continue;
        }
        let s = rx.borrow_and_update().clone();
        if let Some(line) = hub.snapshot_line(s) {
            hub.snap.send_replace(Some(line));
        }
        tokio::time::sleep(SNAPSHOT_EVERY).await;
    }
}

/// Every notice to the local front-end, and to the clients; once the driver is
/// gone, the final snapshot and the end.
async fn tee(
    hub: Arc<Hub>,
    mut notices: mpsc::UnboundedReceiver<Notice>,
    local_tx: mpsc::UnboundedSender<Notice>,
    last: watch::Receiver<Arc<EngineSnapshot>>,
) {
    let pump = tokio::spawn(snapshot_pump(hub.clone(), last.clone()));
    while let Some(n) = notices.recv().await {
        match &n {
            Notice::Journaled { ts, entry } => hub.publish(&ServerMsg::Notice {
                ts: *ts,
                entry: entry.clone(),
            }),
            Notice::JournalFailed(e) => hub.publish(&ServerMsg::JournalFailed { error: e.clone() }),
            _ => {}
        }
        let _ = local_tx.send(n);
    }
    drop(local_tx);
    // the driver is gone: the final snapshot, the end, and close
    pump.abort();
    let s = last.borrow().clone();
    let status = s.status.clone();
    if let Some(line) = hub.snapshot_line(s) {
        hub.snap.send_replace(Some(line));
    }
    hub.close(&ServerMsg::End { status });
}

/// Accept clients until `stop`, then give them a moment to flush what is left.
async fn accept(listener: UnixListener, hub: Arc<Hub>, stop: CancellationToken) {
    let mut clients = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(_) = clients.join_next(), if !clients.is_empty() => {}
            conn = listener.accept() => match conn {
                Ok((stream, _)) => { clients.spawn(client(stream, hub.clone())); }
                Err(e) => {
                    tracing::warn!(error = %e, "attach socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    // the run ended: let clients flush what is left, briefly
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while clients.join_next().await.is_some() {}
    })
    .await;
    clients.abort_all();
}

impl Server {
    /// After the run: clients get the final snapshot and the end, then the socket goes.
    pub async fn finish(self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.tee).await;
        self.stop.cancel();
        let _ = self.accept.await;
    }
}

async fn write<W: AsyncWrite + Unpin>(w: &mut W, line: &str) -> Result<(), String> {
    match tokio::time::timeout(WRITE_TIMEOUT, w.write_all(line.as_bytes())).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("gone ({e})")),
        Err(_) => Err(format!(
            "dropped: too slow (its socket took nothing for {}s)",
            WRITE_TIMEOUT.as_secs()
        )),
    }
}

/// One client: hello, welcome, then journal lines, snapshots and its commands.
async fn client(stream: UnixStream, hub: Arc<Hub>) {
    let peer = stream.peer_cred();
    let (rd, mut wr) = stream.into_split();
    let mut rd = proto::LineReader::new(BufReader::new(rd), proto::MAX_CLIENT_LINE);
    let refuse = |reason: String| ServerMsg::Refused { reason };
    // the kernel says who this is; without its word nobody comes in
    let (uid, pid) = match &peer {
        Ok(c) => (c.uid(), c.pid()),
        Err(e) => {
            if let Ok(l) = proto::to_line(&refuse(format!(
                "the run cannot tell who you are (SO_PEERCRED: {e})"
            ))) {
                let _ = write(&mut wr, &l).await;
            }
            return;
        }
    };
    let login = crate::identity::login_name(uid);
    let admission = hub.info.access.admit(uid, login.as_deref());
    if let Admission::Refused(reason) = &admission {
        tracing::info!(uid, ?login, "attach refused: {reason}");
        if let Ok(l) = proto::to_line(&refuse(reason.clone())) {
            let _ = write(&mut wr, &l).await;
        }
        return;
    }
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, rd.next()).await {
        Ok(Ok(Some(l))) => serde_json::from_str::<ClientMsg>(&l)
            .map_err(|e| format!("the first message is not a ferry attach hello ({e})")),
        Ok(Ok(None)) => return,
        Ok(Err(e)) => Err(format!("cannot read the hello: {e}")),
        Err(_) => Err(format!("no hello within {}s", HELLO_TIMEOUT.as_secs())),
    };
    let hello = hello.and_then(|m| match m {
        ClientMsg::Hello {
            protocol,
            ferry_version,
            operator,
            operate,
        } => {
            if protocol != proto::PROTOCOL {
                return Err(format!(
                    "this run (ferry {}) speaks attach protocol {}, the client (ferry {ferry_version}) {protocol}: attach with the same ferry version",
                    env!("CARGO_PKG_VERSION"),
                    proto::PROTOCOL
                ));
            }
            proto::check_operator(&operator).map(|o| (o, operate))
        }
        _ => Err("the first message must be a hello".into()),
    });
    let (operator, operate) = match hello {
        Ok(h) => h,
        Err(reason) => {
            if let Ok(l) = proto::to_line(&refuse(reason)) {
                let _ = write(&mut wr, &l).await;
            }
            return;
        }
    };
    // an observer learns it at once: its console offers no action
    let mut welcome = hub.info.welcome.clone();
    welcome.observer = matches!(admission, Admission::Observer);
    let Ok(welcome) = proto::to_line(&ServerMsg::Welcome(welcome)) else {
        return;
    };
    if write(&mut wr, &welcome).await.is_err() {
        return;
    }
    let id = hub.next_id();
    // the hello's name is shown; the uid is what counts
    let actor = Actor::named(operator, hub.info.host.clone()).with_uid(uid, login.clone());
    let role = match (operate, &admission) {
        (false, _) => Role::ReadOnly,
        (true, Admission::Observer) => Role::Observer,
        (true, _) => Role::Operator,
    };
    let how = match role {
        Role::Operator => "operating",
        Role::ReadOnly => "read-only",
        Role::Observer => "observing: [operators] operate does not list them",
    };
    let login_text = login.as_deref().unwrap_or("no login name");
    let whence = match pid {
        Some(pid) => format!("{login_text}, uid {uid}, pid {pid}"),
        None => format!("{login_text}, uid {uid}"),
    };
    hub.presence(
        id,
        Some(Attendee {
            operator: actor.operator.clone(),
            host: actor.host.clone(),
            uid: Some(uid),
            login: login.clone(),
            operate: role == Role::Operator,
        }),
        format!(
            "{}@{} attached ({how}; {whence})",
            actor.operator, actor.host
        ),
    );
    let why = session(&mut rd, &mut wr, &hub, &actor, role).await;
    hub.presence(
        id,
        None,
        format!("{}@{} detached: {why}", actor.operator, actor.host),
    );
    let _ = wr.shutdown().await;
}

/// What an attached client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Attached with `--operate`, and allowed to act.
    Operator,
    /// Attached without `--operate`: its commands are denied before the run sees them.
    ReadOnly,
    /// Asked to operate, but `[operators] operate` does not list it: its
    /// decisions are refused, and the refusals journaled.
    Observer,
}

/// The attached part of a client's life; returns why it ended.
async fn session<R, W>(
    rd: &mut proto::LineReader<R>,
    wr: &mut W,
    hub: &Hub,
    actor: &Actor,
    role: Role,
) -> String
where
    R: tokio::io::AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (backlog, lines) = hub.subscribe();
    let mut snaps = hub.snap.subscribe();
    hub.wanted.notify_one();
    for l in backlog {
        if let Err(e) = write(wr, &l).await {
            return e;
        }
    }
    let mut lines = match lines {
        Ok(rx) => rx,
        Err(end) => {
            // the run ended before this client came: the last snapshot, and the end
            let last = snaps.borrow().clone();
            for l in [last, end].into_iter().flatten() {
                let _ = write(wr, &l).await;
            }
            return "the run had ended".into();
        }
    };
    loop {
        tokio::select! {
            biased;
            m = lines.recv() => match m {
                Ok(l) => if let Err(e) = write(wr, &l).await { return e },
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let reason = format!("dropped: too slow (fell {n} journal lines behind)");
                    if let Ok(l) = proto::to_line(&ServerMsg::Dropped { reason: reason.clone() }) {
                        let _ = write(wr, &l).await;
                    }
                    return reason;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    let last = snaps.borrow_and_update().clone();
                    if let Some(l) = last {
                        let _ = write(wr, &l).await;
                    }
                    return "the run ended".into();
                }
            },
            r = snaps.changed() => {
                if r.is_err() {
                    return "the server stopped".into();
                }
                let line = snaps.borrow_and_update().clone();
                if let Some(l) = line {
                    if let Err(e) = write(wr, &l).await { return e }
                }
            }
            l = rd.next() => match l {
                Ok(Some(l)) => {
                    if let Some(reason) = command(&l, hub, actor, role) {
                        if let Ok(l) = proto::to_line(&ServerMsg::Denied { reason }) {
                            if let Err(e) = write(wr, &l).await { return e }
                        }
                    }
                }
                Ok(None) => return "left".into(),
                Err(e) => return format!("dropped: {e}"),
            },
        }
    }
}

/// Pass a client's command on as done by `actor`; `Some(why)` when it is denied.
fn command(line: &str, hub: &Hub, actor: &Actor, role: Role) -> Option<String> {
    let msg = match serde_json::from_str::<ClientMsg>(line) {
        Ok(m) => m,
        Err(e) => return Some(format!("not a ferry attach message ({e})")),
    };
    let Some(decision) = msg.decision() else {
        return Some("already attached: a second hello is ignored".into());
    };
    match role {
        Role::ReadOnly => return Some("read-only: attach with --operate to act".into()),
        Role::Observer => {
            // journaled as the run's refusal: who tried to act, and why not
            let refusal = Refusal::NotAnOperator {
                step: decision.step().map(str::to_string),
                login: actor
                    .login
                    .clone()
                    .unwrap_or_else(|| actor.operator.clone()),
            };
            let _ = hub.commands.send(Command::Refuse {
                actor: actor.clone(),
                refusal,
            });
            return None;
        }
        Role::Operator => {}
    }
    if !decision.open_to_attached() {
        return Some("an attached console cannot stop the run".into());
    }
    let _ = hub.commands.send(Command::As {
        actor: actor.clone(),
        decision,
    });
    None
}
