//! `rds` steps: the action through the AWS SDK, then polling until the wanted
//! status; the instance's state before and after goes to the journal as the
//! step's result, and each status change as an info line.

use super::ExecCtx;
use crate::aws::{rds, AwsError};
use crate::runbook::RdsStep;
use crate::vocab::Outcome;
use std::time::Duration;

/// How often a waiting step asks RDS for the status (`FERRY_RDS_POLL_SECS` overrides, for tests).
fn poll_every() -> Duration {
    std::env::var("FERRY_RDS_POLL_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(10))
}

pub(super) async fn run(ctx: &ExecCtx, step: &RdsStep) -> Outcome {
    let Some(aws) = ctx.conns.aws() else {
        return ctx.failed(
            "this runbook has no AWS configuration: add an [aws] table (region) and credentials",
        );
    };
    let note = |s: String| ctx.info(s);
    let result = tokio::select! {
        r = rds::perform(&aws.rds, &step.action, step.wait.as_deref(), poll_every(), &ctx.cancel, &note) => r,
        _ = ctx.cancel.cancelled() => return Outcome::Cancelled,
    };
    match result {
        Ok(report) => {
            let summary = match &report.after {
                Some(a) => format!("{} {}: now `{}`", report.action, report.instance, a.status),
                None => format!("{} {} done", report.action, report.instance),
            };
            if let Ok(v) = serde_json::to_value(&report) {
                ctx.result(v);
            }
            Outcome::Succeeded { summary }
        }
        Err(AwsError::Unreachable(m)) => Outcome::Unreachable {
            error: format!("cannot reach {}: {m}", aws.endpoint()),
        },
        Err(e) if ctx.cancel.is_cancelled() => {
            let _ = e;
            Outcome::Cancelled
        }
        Err(e) => ctx.failed(format!(
            "{} {}: {e}",
            step.action.name(),
            step.action.instance()
        )),
    }
}
