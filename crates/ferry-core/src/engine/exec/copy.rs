//! `copy` steps: a thin adapter from the executor context to [`crate::copy::run`].
//! It opens both connections, turns the step's `throttle` into a check against the
//! live monitors, forwards progress (as [`Progress`]) and info lines, reports the
//! [`crate::copy::CopyReport`] as the step's result and maps errors to outcomes.

use super::{conn_outcome, ExecCtx};
use crate::copy::throttle::Look;
use crate::copy::{self, CopyError, CopyProgress, Hooks};
use crate::monitor::{Kind, Reading};
use crate::runbook::CopyStep;
use crate::vocab::Outcome;
use crate::vocab::{EtaBasis, Progress, ProgressItem};
use std::sync::Arc;

/// The screen's progress from the copy's.
fn progress(p: CopyProgress) -> Progress {
    let mut note = Vec::new();
    if let Some(paused) = &p.paused {
        note.push(paused.clone());
    }
    note.push(format!("chunks {}/{}", p.chunks_done, p.chunks_total));
    note.push(format!("{} of {} workers busy", p.workers_busy, p.workers));
    note.extend(p.notes.iter().cloned());
    Progress {
        done: p.rows_done,
        total: p.rows_total,
        unit: "rows".into(),
        rate: p.rows_per_sec,
        eta_secs: p.eta_secs,
        eta_basis: p.eta_secs.map(|_| EtaBasis::LiveRate),
        bytes: Some(p.bytes),
        items: p
            .tables
            .into_iter()
            .map(|t| ProgressItem {
                name: t.name,
                done: t.rows_done,
                total: t.rows_total,
                state: t.state.to_string(),
            })
            .collect(),
        note: Some(note.join(" · ")),
        catch_up: None,
    }
}

/// A monitor reading as the copy's throttle sees it.
fn look(r: Reading, monitor: &str) -> Look {
    match r {
        Reading::Value(v) => Look::Value(v),
        Reading::Pending => Look::Pending,
        stale @ Reading::Stale { .. } => Look::Stale(
            stale
                .explain(monitor)
                .unwrap_or_else(|| format!("monitor `{monitor}` is stale")),
        ),
    }
}

pub(super) async fn run(ctx: &ExecCtx, step: &CopyStep) -> Outcome {
    let source = match ctx.conns.get(&step.from).await {
        Ok(db) => db,
        Err(e) => return conn_outcome(e),
    };
    let target = match ctx.conns.get(&step.to).await {
        Ok(db) => db,
        Err(e) => return conn_outcome(e),
    };
    let for_progress = ctx.clone();
    let for_info = ctx.clone();
    let throttle = step.throttle.clone().map(|cond| {
        let lag_view = ctx.monitors.clone();
        let metric_view = ctx.monitors.clone();
        copy::throttle::from_looks(
            cond,
            move |m| look(lag_view.reading(Kind::Lag, m), m),
            move |m| look(metric_view.reading(Kind::Metric, m), m),
        )
    });
    let hooks = Hooks {
        cancel: ctx.cancel.clone(),
        progress: Arc::new(move |p| for_progress.progress(progress(p))),
        info: Arc::new(move |line| for_info.info(line)),
        throttle,
        run: Some(ctx.run_id.clone()),
    };
    match copy::run(&ctx.step, step, &source, &target, hooks).await {
        Ok(report) => {
            if let Ok(data) = serde_json::to_value(&report) {
                ctx.result(data);
            }
            Outcome::Succeeded {
                summary: report.summary(),
            }
        }
        Err(CopyError::Cancelled) => Outcome::Cancelled,
        Err(CopyError::Unreachable(error)) => Outcome::Unreachable {
            error: ctx.redactor.redact(&error),
        },
        Err(CopyError::Failed(error)) => ctx.failed(error),
    }
}
