//! `ferry attach`: find the run, connect, check the runbook, and open the same
//! console `ferry run` shows, fed by the run's socket. Read-only unless
//! `--operate`. Leaving never stops the run. Exit 0 when the console was left
//! or the run ended, 2 for bad input (flags, a changed runbook, a refusal),
//! 3 when no run could be reached or the link to it was lost.

use super::{AttachArgs, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE};
use crate::attach::client::{self, AttachError, LinkEnd};
use crate::attach::proto;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub fn main(a: AttachArgs) -> i32 {
    let operator = match a.operator.clone() {
        Some(o) => match proto::check_operator(&o) {
            Ok(o) => o,
            Err(e) => {
                complain!("error: --operator: {e}");
                return EXIT_BAD_INPUT;
            }
        },
        None => super::run::default_operator(),
    };
    let name = match &a.runbook {
        Some(path) => match ferry_core::runbook::load(path) {
            Ok(rb) => Some(rb.name),
            Err(report) => {
                complain_raw!("{}", report.render());
                return EXIT_BAD_INPUT;
            }
        },
        None => None,
    };
    // where runs may be: as given; else ./runs, and runs/ beside the runbook
    // (an operator attaching from another folder than the run was started in)
    let mut places = match &a.runs_dir {
        Some(d) => vec![d.clone()],
        None => vec![PathBuf::from("runs")],
    };
    if let (None, Some(rb)) = (&a.runs_dir, &a.runbook) {
        let beside = rb.parent().unwrap_or(Path::new("")).join("runs");
        let same = |x: &Path, y: &Path| match (x.canonicalize(), y.canonicalize()) {
            (Ok(x), Ok(y)) => x == y,
            _ => x == y,
        };
        if !same(&beside, &places[0]) {
            places.push(beside);
        }
    }
    let found = client::find(
        a.socket.as_deref(),
        a.journal.as_deref(),
        name.as_deref(),
        &places,
    );
    let socket = match found {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    // said before the terminal check, so a script learns there is no run (exit 3)
    if !crate::attach::socket::is_live(&socket) {
        let probe = crate::attach::socket::reachable(&socket)
            .and_then(|(p, _dir)| std::os::unix::net::UnixStream::connect(p).map(|_| ()))
            .err();
        if let Some(e) = probe
            .as_ref()
            .filter(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
        {
            // the socket is there, but not for this user: a refusal, not a missing run
            return fail(&AttachError::Refused(client::why_at(&socket, e)));
        }
        return fail(&AttachError::Unreachable {
            path: socket.display().to_string(),
            why: probe
                .map(|e| client::why(&e))
                .unwrap_or_else(|| "nothing answers there".into()),
        });
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        complain!("error: ferry attach shows the run's console and needs a terminal");
        complain!("  = help: run it in a terminal (ssh -t, tmux); `ferry run --headless` prints events without one");
        return EXIT_BAD_INPUT;
    }
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(attach(socket, operator, a.operate)),
        Err(e) => {
            complain!("error: cannot start the async runtime: {e}");
            EXIT_FAILED
        }
    }
}

fn fail(e: &AttachError) -> i32 {
    complain!("error: {e}");
    if matches!(e, AttachError::Unreachable { .. }) {
        complain!("  = help: `ferry run` prints its socket when it starts; `ferry attach RUNBOOK` finds the newest live run");
    }
    e.exit_code()
}

async fn attach(socket: std::path::PathBuf, operator: String, operate: bool) -> i32 {
    let mut link = match client::connect(&socket, &operator, operate).await {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    let rb = match client::runbook(&link.welcome) {
        Ok(rb) => Arc::new(rb),
        Err(e) => return fail(&e),
    };
    let (first, early) = match client::first_snapshot(&mut link).await {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let journal = link.welcome.journal.clone();
    let observer = link.welcome.observer;
    tracing::info!(socket = %socket.display(), %operator, operate, "attached");
    let (handles, task) = client::start(link, first, early);
    // the console masks what this environment knows to be secret too (the server already did)
    let env_vars: Vec<(String, String)> = std::env::vars().collect();
    let redactor = Arc::new(ferry_core::engine::start::redactor_for(
        &rb,
        &|k: &str| std::env::var(k).ok(),
        &env_vars,
    ));
    let role = crate::tui::Role::Attached {
        operator,
        operate,
        observer,
        socket,
    };
    crate::tui::run(handles, rb, redactor, role, None).await;
    let end = if task.is_finished() {
        task.await.ok()
    } else {
        task.abort();
        None
    };
    match end {
        None | Some(LinkEnd::Left) => {
            say!("left the console; the run goes on · journal {journal}");
            EXIT_OK
        }
        Some(e @ LinkEnd::RunEnded(_)) => {
            say!("{} · journal {journal}", client::describe(&e));
            EXIT_OK
        }
        Some(e @ LinkEnd::Lost(_)) => {
            complain!("{} · journal {journal}", client::describe(&e));
            EXIT_UNREACHABLE
        }
    }
}
