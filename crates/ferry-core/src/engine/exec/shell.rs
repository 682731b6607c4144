//! `shell` steps and shell rollbacks: `sh -c RUN` in a process group of its own.
//!
//! stdout and stderr are read line by line, concurrently, and sent as redacted
//! output lines. Cancelling sends SIGTERM to the whole group, then SIGKILL after 3s;
//! dropping the future mid-run SIGKILLs the group (see [`GroupGuard`]), so nothing a
//! step started outlives it by accident.

use super::{ExecCtx, MAX_LINE_BYTES};
use crate::engine::redact::Redactor;
use crate::runbook::expand::{env_refs, expand_env, is_secret_name};
use crate::vocab::Outcome;
use crate::vocab::Stream;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long the group gets to exit after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(3);
/// After the shell exits, how long to keep reading output that background
/// processes it left behind may still be writing.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Run `run` with `sh -c`. `${env:X}` in `run` and in `env` values is expanded
/// from `ctx.env`; secret-looking values are added to the redactor for this run.
pub(super) async fn run(
    ctx: &ExecCtx,
    run: &str,
    env: &BTreeMap<String, String>,
    cwd: Option<&str>,
) -> Outcome {
    let mut redactor = (*ctx.redactor).clone();
    let lookup = |name: &str| (ctx.env)(name);
    let mut missing = Vec::new();
    let run_text = match expand_env(run, lookup) {
        Ok(t) => t,
        Err(m) => {
            missing.extend(m);
            String::new()
        }
    };
    let mut vars = Vec::with_capacity(env.len());
    for (key, template) in env {
        match expand_env(template, lookup) {
            Ok(value) => {
                if is_secret_name(key) {
                    redactor.add(&value);
                }
                vars.push((key.clone(), value));
            }
            Err(m) => missing.extend(m),
        }
    }
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        let names: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
        return ctx.failed(match names.as_slice() {
            [one] => format!("environment variable {one} is not set"),
            many => format!("environment variables {} are not set", many.join(", ")),
        });
    }
    let refs = std::iter::once(run).chain(env.values().map(String::as_str));
    for name in refs.flat_map(env_refs).filter(|n| is_secret_name(n)) {
        if let Some(v) = (ctx.env)(&name) {
            redactor.add(&v);
        }
    }
    if let Some(dir) = cwd {
        if !std::path::Path::new(dir).is_dir() {
            return ctx.failed(format!("cwd `{dir}` is not a directory"));
        }
    }

    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(&run_text)
        .envs(vars)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return ctx.failed(format!("cannot start `sh -c {run}`: {e}")),
    };
    let Some(pid) = child.id() else {
        return ctx.failed("the shell exited before it could be watched");
    };
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return ctx.failed(format!("process id {pid} is out of range"));
    };
    let mut guard = GroupGuard { pgid, armed: true };
    ctx.process_started(pgid);
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return ctx.failed("the shell's output pipes were not set up");
    };

    let last_stderr = Mutex::new(None::<String>);
    let pumps = async {
        tokio::join!(
            pump(ctx, &redactor, BufReader::new(stdout), Stream::Stdout, None),
            pump(
                ctx,
                &redactor,
                BufReader::new(stderr),
                Stream::Stderr,
                Some(&last_stderr)
            ),
        )
    };
    tokio::pin!(pumps);
    let mut pumps_done = false;
    let status = loop {
        tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => {
                terminate(&mut child, pgid).await;
                guard.armed = false;
                return Outcome::Cancelled;
            }
            _ = &mut pumps, if !pumps_done => pumps_done = true,
            status = child.wait() => break status,
        }
    };
    if !pumps_done {
        tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => {
                terminate(&mut child, pgid).await;
                guard.armed = false;
                return Outcome::Cancelled;
            }
            _ = &mut pumps => {}
            _ = tokio::time::sleep(DRAIN_GRACE) => ctx.info(
                "the shell exited but processes it started still hold its output open; no longer reading it",
            ),
        }
    }
    // The shell is done; anything it deliberately left running in the background is its business.
    guard.armed = false;
    let last = last_stderr.lock().ok().and_then(|mut l| l.take());
    match status {
        Ok(status) => outcome(status, last, &redactor),
        Err(e) => ctx.failed(format!("cannot wait for the shell: {e}")),
    }
}

fn outcome(status: ExitStatus, last_stderr: Option<String>, redactor: &Redactor) -> Outcome {
    if let Some(code) = status.code() {
        if code == 0 {
            return Outcome::Succeeded {
                summary: "exit 0".to_string(),
            };
        }
        let error = match last_stderr {
            Some(line) => format!("exit status {code}: {line}"),
            None => format!("exit status {code}"),
        };
        return Outcome::Failed {
            error: redactor.redact(&error),
        };
    }
    let error = match status.signal() {
        Some(sig) => format!("killed by signal {sig} ({})", signal_name(sig)),
        None => format!("ended without an exit status ({status})"),
    };
    Outcome::Failed { error }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        _ => "unknown signal",
    }
}

/// Send each line of `reader` as output; remember the last non-empty one in `last`.
async fn pump<R: AsyncBufRead + Unpin>(
    ctx: &ExecCtx,
    redactor: &Redactor,
    mut reader: R,
    stream: Stream,
    last: Option<&Mutex<Option<String>>>,
) {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match read_line_capped(&mut reader, &mut buf, MAX_LINE_BYTES).await {
            Ok(None) => return,
            Ok(Some(truncated)) => {
                let mut line = String::from_utf8_lossy(&buf).into_owned();
                if truncated {
                    line.push_str(" … (line truncated)");
                }
                ctx.send_with(redactor, stream, &line);
                if let Some(last) = last.filter(|_| !line.trim().is_empty()) {
                    if let Ok(mut l) = last.lock() {
                        *l = Some(redactor.redact(&line));
                    }
                }
            }
            Err(e) => {
                ctx.info(format!("cannot read the shell's output ({stream:?}): {e}"));
                return;
            }
        }
    }
}

/// Read one line (without its `\n` or `\r\n`) into `buf`, keeping at most `max`
/// bytes and skipping the rest. `None` at end of input; `Some(true)` when cut.
async fn read_line_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    let mut truncated = false;
    let mut seen_any = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            break;
        }
        seen_any = true;
        let (part, used, end) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], i + 1, true),
            None => (chunk, chunk.len(), false),
        };
        let room = max.saturating_sub(buf.len());
        if part.len() > room {
            truncated = true;
        }
        buf.extend_from_slice(&part[..part.len().min(room)]);
        reader.consume(used);
        if end {
            break;
        }
    }
    if !seen_any {
        return Ok(None);
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(truncated))
}

/// SIGTERM the group, give it [`TERM_GRACE`], then SIGKILL whatever is left.
async fn terminate(child: &mut Child, pgid: libc::pid_t) {
    signal_group(pgid, libc::SIGTERM);
    let _ = tokio::time::timeout(TERM_GRACE, child.wait()).await;
    // The shell may be gone while its children ignore SIGTERM: kill the group regardless.
    signal_group(pgid, libc::SIGKILL);
    let _ = tokio::time::timeout(TERM_GRACE, child.wait()).await;
}

fn signal_group(pgid: libc::pid_t, sig: libc::c_int) {
    if pgid > 1 {
        // SAFETY: kill(2) has no memory-safety preconditions; a negative pid targets the
        // process group, which the step's shell leads (spawned with process_group(0)).
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// SIGKILLs the step's process group if the future running it is dropped mid-run.
struct GroupGuard {
    pgid: libc::pid_t,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            signal_group(self.pgid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn capped_lines() {
        let data = b"short\r\nxxxxxxxxxx\nlast".to_vec();
        let mut r = BufReader::with_capacity(3, &data[..]);
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        while let Ok(Some(cut)) = read_line_capped(&mut r, &mut buf, 6).await {
            lines.push((String::from_utf8_lossy(&buf).into_owned(), cut));
            buf.clear();
        }
        assert_eq!(
            lines,
            vec![
                ("short".to_string(), false),
                ("xxxxxx".to_string(), true),
                ("last".to_string(), false)
            ]
        );
    }
}
