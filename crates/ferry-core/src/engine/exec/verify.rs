//! `verify` steps: a thin adapter from the executor context to [`crate::verify::run`].
//! It opens both connections, forwards progress (as [`Progress`]) and info lines,
//! journals the [`crate::verify::VerifyReport`] as the step's result, and maps the
//! outcome: succeeded when nothing differs, failed (with a one-line summary naming the
//! first difference) when anything differs or the time limit stopped it early.

use super::{conn_outcome, ExecCtx};
use crate::runbook::VerifyStep;
use crate::verify::{self, Hooks, VerifyError, VerifyProgress};
use crate::vocab::Outcome;
use crate::vocab::{Progress, ProgressItem};
use std::sync::Arc;

/// The screen's progress from the verifier's.
fn progress(p: VerifyProgress) -> Progress {
    Progress {
        done: p.rows_done,
        total: (p.rows_total > 0).then_some(p.rows_total),
        unit: "rows".into(),
        rate: None,
        eta_secs: None,
        eta_basis: None,
        bytes: None,
        items: p
            .tables
            .into_iter()
            .map(|t| ProgressItem {
                name: t.name,
                done: t.rows_done,
                total: t.rows_total,
                state: t.state,
            })
            .collect(),
        note: Some(format!("{} · {} differences", p.phase, p.differences)),
        catch_up: None,
    }
}

pub(super) async fn run(ctx: &ExecCtx, step: &VerifyStep) -> Outcome {
    let source = match ctx.conns.get(&step.source).await {
        Ok(db) => db,
        Err(e) => return conn_outcome(e),
    };
    let target = match ctx.conns.get(&step.target).await {
        Ok(db) => db,
        Err(e) => return conn_outcome(e),
    };
    let for_progress = ctx.clone();
    let for_info = ctx.clone();
    let hooks = Hooks {
        cancel: ctx.cancel.clone(),
        progress: Arc::new(move |p| for_progress.progress(progress(p))),
        info: Arc::new(move |line| for_info.info(line)),
    };
    match verify::run(step, &source, &target, hooks).await {
        Ok(report) => {
            if let Ok(data) = serde_json::to_value(&report) {
                ctx.result(data);
            }
            if report.ok {
                Outcome::Succeeded {
                    summary: report.summary,
                }
            } else {
                ctx.failed(report.summary)
            }
        }
        Err(VerifyError::Cancelled) => Outcome::Cancelled,
        Err(VerifyError::Unreachable(error)) => Outcome::Unreachable {
            error: ctx.redactor.redact(&error),
        },
        Err(VerifyError::Failed(error)) => ctx.failed(error),
    }
}
