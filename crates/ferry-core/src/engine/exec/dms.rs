//! `dms` steps: the action on the replication task through the AWS SDK, then polling
//! the task and its table statistics until the wanted state. The task's state before
//! and after, its tables, the settings a `create` sent and every problem found go to
//! the journal as the step's result (also when the step fails), and each status change
//! as an info line. Any errored, suspended or validation-failing table, and any task
//! stop with a failure message, fails the step naming the table and the message.

use super::ExecCtx;
use crate::aws::{dms, AwsError};
use crate::runbook::DmsStep;
use crate::vocab::Outcome;
use std::time::Duration;

/// How often a waiting step asks DMS (`FERRY_DMS_POLL_SECS` overrides, for tests).
fn poll_every() -> Duration {
    std::env::var("FERRY_DMS_POLL_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(15))
}

pub(super) async fn run(ctx: &ExecCtx, step: &DmsStep) -> Outcome {
    let Some(aws) = ctx.conns.aws() else {
        return ctx.failed(
            "this runbook has no AWS configuration: add an [aws] table (region) and credentials",
        );
    };
    let note = |s: String| ctx.info(s);
    let done = tokio::select! {
        d = dms::perform(&aws.dms, step, poll_every(), &ctx.cancel, &note) => d,
        _ = ctx.cancel.cancelled() => return Outcome::Cancelled,
    };
    if let Ok(v) = serde_json::to_value(&done.report) {
        ctx.result(v);
    }
    for p in &done.report.problems {
        ctx.info(format!("PROBLEM: {p}"));
    }
    let what = format!("dms {} `{}`", step.action.name(), step.task);
    match done.result {
        Ok(()) => {
            let after = done.report.after.as_ref();
            Outcome::Succeeded {
                summary: format!(
                    "{what}: now `{}`, {} table(s) without errors",
                    after.map(|a| a.status.as_str()).unwrap_or("unknown"),
                    done.report.tables.len()
                ),
            }
        }
        Err(AwsError::Unreachable(m)) => Outcome::Unreachable {
            error: format!("cannot reach {}: {m}", aws.endpoint()),
        },
        Err(_) if ctx.cancel.is_cancelled() => Outcome::Cancelled,
        Err(e) => ctx.failed(format!("{what}: {e}")),
    }
}
