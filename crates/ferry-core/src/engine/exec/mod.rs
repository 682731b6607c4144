//! Step executors: run one step (or its shell/sql rollback) to an [`Outcome`].
//!
//! The driver calls [`execute`] and [`rollback`]; each streams the step's output as
//! redacted [`OutputLine`]s on `ctx.output` and returns promptly with
//! [`Outcome::Cancelled`] when `ctx.cancel` fires, after stopping whatever it started.
//! Timeouts are the driver's business: an executor never gives up on its own, except
//! that a database that cannot be reached is reported as [`Outcome::Unreachable`].

mod caught_up;
mod copy;
mod dms;
mod rds;
mod replicate;
mod shell;
mod sql;
mod verify;
mod wait;

use super::connections::{ConnError, Connections};
use super::redact::Redactor;
use crate::runbook::{Rollback, Step, StepKind};
use crate::vocab::{Outcome, OutputLine, Progress, Stream};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// Longest output line kept; the rest of a longer line is dropped.
pub const MAX_LINE_BYTES: usize = 4096;

/// Structured reports of a step besides its output lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum Report {
    Progress(Progress),
    /// The step's structured result (a copy's per-table figures, a verify's
    /// differences), journaled for the report and the screen.
    Result {
        data: serde_json::Value,
    },
    /// A step started a process group (shell steps). Journaled so that a
    /// resume after a crash can stop what the dead run left running.
    Process {
        pgid: i32,
        start_ticks: Option<u64>,
    },
}

/// The start time of process `pid` in clock ticks since boot (`/proc/PID/stat`
/// field 22): with the pid it identifies a process even after pids are reused.
pub fn process_start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

pub use crate::monitor::{MonitorView, NoMonitors};

/// Environment lookup for `${env:X}` in shell `run` and `env` values.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Everything an executor needs from the driver.
#[derive(Clone)]
pub struct ExecCtx {
    pub step: String,
    /// Output lines, already redacted.
    pub output: UnboundedSender<OutputLine>,
    /// Progress and results (redacted by the journal when written).
    pub reports: UnboundedSender<Report>,
    pub cancel: CancellationToken,
    /// The run's identity (the hash of its journal's first line).
    pub run_id: String,
    pub redactor: Arc<Redactor>,
    pub conns: Arc<Connections>,
    pub monitors: Arc<dyn MonitorView>,
    pub env: EnvLookup,
}

impl ExecCtx {
    /// Send a line (redacted with `redactor`, truncated to [`MAX_LINE_BYTES`]).
    /// A closed channel is not an error: nobody is listening any more.
    fn send_with(&self, redactor: &Redactor, stream: Stream, line: &str) {
        let line = truncate_line(&redactor.redact(line));
        let _ = self.output.send(OutputLine {
            step: self.step.clone(),
            stream,
            line,
        });
    }

    /// `${env:NAME}` expanded from the run's environment, or the failure naming
    /// what is unset.
    pub fn expand_env(&self, text: &str) -> Result<String, Outcome> {
        crate::runbook::expand::expand_env(text, |n| (self.env)(n)).map_err(|missing| {
            let names: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
            self.failed(if names.len() == 1 {
                format!("environment variable {} is not set", names[0])
            } else {
                format!("environment variables {} are not set", names.join(", "))
            })
        })
    }

    /// Report progress. A closed channel is not an error.
    pub fn progress(&self, p: Progress) {
        let _ = self.reports.send(Report::Progress(p));
    }

    /// Report a process group the step started.
    pub fn process_started(&self, pgid: i32) {
        let _ = self.reports.send(Report::Process {
            pgid,
            start_ticks: process_start_ticks(pgid),
        });
    }

    /// Report the step's structured result.
    pub fn result(&self, data: serde_json::Value) {
        let _ = self.reports.send(Report::Result { data });
    }

    /// A line from ferry about the step's progress.
    fn info(&self, line: impl AsRef<str>) {
        self.send_with(&self.redactor, Stream::Info, line.as_ref());
    }

    fn failed(&self, error: impl AsRef<str>) -> Outcome {
        Outcome::Failed {
            error: self.redactor.redact(error.as_ref()),
        }
    }
}

/// `line` cut to at most [`MAX_LINE_BYTES`] (at a character boundary), marked when cut.
fn truncate_line(line: &str) -> String {
    if line.len() <= MAX_LINE_BYTES {
        return line.to_string();
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} … (line truncated)", &line[..end])
}

/// A connection error as an outcome: unreachable stays unreachable, the rest fail.
fn conn_outcome(e: ConnError) -> Outcome {
    match e {
        ConnError::Unreachable(error) => Outcome::Unreachable { error },
        ConnError::Config(error) => Outcome::Failed { error },
    }
}

/// Run a step to completion (or until `ctx.cancel` fires).
pub async fn execute(step: &Step, ctx: &ExecCtx) -> Outcome {
    if ctx.cancel.is_cancelled() {
        return Outcome::Cancelled;
    }
    match &step.kind {
        StepKind::Confirm => Outcome::Succeeded {
            summary: "confirmed".to_string(),
        },
        StepKind::Shell(sh) => shell::run(ctx, &sh.run, &sh.env, sh.cwd.as_deref()).await,
        StepKind::Sql(s) => match ctx.expand_env(&s.sql) {
            Ok(text) => sql::run(ctx, &s.connection, &text, s.expect.as_ref()).await,
            Err(o) => o,
        },
        StepKind::Wait(w) => match &w.until {
            crate::runbook::Condition::Sql { connection, query } => match ctx.expand_env(query) {
                Ok(query) => {
                    let mut w = w.clone();
                    w.until = crate::runbook::Condition::Sql {
                        connection: connection.clone(),
                        query,
                    };
                    wait::run(ctx, &w).await
                }
                Err(o) => o,
            },
            crate::runbook::Condition::CaughtUp { primary, by } => {
                caught_up::run(ctx, primary, by, w.every).await
            }
            _ => wait::run(ctx, w).await,
        },
        StepKind::Copy(c) => copy::run(ctx, c).await,
        StepKind::Verify(v) => verify::run(ctx, v).await,
        StepKind::Rds(r) => rds::run(ctx, r).await,
        StepKind::Dms(d) => dms::run(ctx, d).await,
        StepKind::Replicate(r) => replicate::run(ctx, r).await,
    }
}

/// Run a step's shell or sql `rollback`. A rollback that names other steps is
/// the engine's job, so asking for one here fails.
pub async fn rollback(step: &Step, ctx: &ExecCtx) -> Outcome {
    if ctx.cancel.is_cancelled() {
        return Outcome::Cancelled;
    }
    match &step.rollback {
        Some(Rollback::Shell { run }) => shell::run(ctx, run, &Default::default(), None).await,
        Some(Rollback::Sql { sql, connection }) => match ctx.expand_env(sql) {
            Ok(text) => sql::run(ctx, connection, &text, None).await,
            Err(o) => o,
        },
        Some(Rollback::Steps(ids)) => Outcome::Failed {
            error: format!(
                "step `{}` rolls back by running steps {}; the engine runs those, not the executor",
                step.id,
                ids.iter()
                    .map(|i| format!("`{i}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        // a replication start undoes itself: subscription, slot and publication dropped
        None => match &step.kind {
            StepKind::Replicate(r) if r.action == crate::runbook::ReplicateAction::Start => {
                replicate::rollback(ctx, r).await
            }
            _ => Outcome::Failed {
                error: format!("step `{}` has no rollback", step.id),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_at_a_char_boundary() {
        let line = "é".repeat(MAX_LINE_BYTES);
        let cut = truncate_line(&line);
        assert!(cut.ends_with("(line truncated)"));
        assert!(cut.len() < MAX_LINE_BYTES + 40);
        assert_eq!(truncate_line("short"), "short");
    }

    #[test]
    fn stream_serialises_snake_case() {
        let l = OutputLine {
            step: "s".into(),
            stream: Stream::Stderr,
            line: "x".into(),
        };
        let json = serde_json::to_string(&l).unwrap_or_default();
        assert_eq!(json, r#"{"step":"s","stream":"stderr","line":"x"}"#);
    }
}
