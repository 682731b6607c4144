//! `wait` steps: evaluate a condition every `every` until it holds (for `for`, when
//! given, continuously). Never gives up on its own: the driver enforces the timeout.
//!
//! Output stays readable: a line when the condition becomes true or false, and a
//! status line at most every 10s while waiting. Timing uses `tokio::time`, so tests
//! can run it under `tokio::time::pause()`.

use super::{conn_outcome, sql, ExecCtx};
use crate::monitor::{DmsTaskView, Kind, Reading};
use crate::runbook::{Compare, Condition, DmsGate, DmsWait, WaitStep};
use crate::units;
use crate::vocab::Outcome;
use std::time::Duration;
use tokio::time::Instant;

/// Status lines while waiting come at most this often.
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// One evaluation of the condition.
enum Eval {
    /// Evaluated: whether it holds, and what was seen ("lag replica 12.0s").
    Seen { ok: bool, what: String },
    /// A monitor has no current value: `key` changes only when the reason
    /// does (not with the age), `text` says why ("monitor `x` is stale: …").
    NoValue { key: String, text: String },
    /// The query failed; keep waiting.
    QueryError(String),
    /// The connection cannot be had at all.
    Stop(Outcome),
}

pub(super) async fn run(ctx: &ExecCtx, step: &WaitStep) -> Outcome {
    let need = need_text(&step.until);
    let every = step.every.max(Duration::from_millis(10));
    let mut held_since: Option<Instant> = None;
    let mut last_status: Option<Instant> = None;
    let mut told_no_value: Option<String> = None;
    let mut last_error: Option<String> = None;
    // the last thing seen, journaled when the wait is stopped (timeout, abort) as its evidence
    let mut last_seen = String::from("nothing measured yet");
    let stopped = |last: &str| {
        ctx.info(format!(
            "stopped waiting; last seen: {last} (needed {need})"
        ));
        Outcome::Cancelled
    };
    loop {
        // `evaluate` watches the cancellation itself, so that a condition query
        // in flight is cancelled on the server and not merely abandoned
        let eval = evaluate(ctx, &step.until).await;
        if ctx.cancel.is_cancelled() {
            return stopped(&last_seen);
        }
        last_seen = match &eval {
            Eval::Seen { what, .. } => what.clone(),
            Eval::NoValue { key, .. } if key == PENDING => {
                format!("monitor `{}` had no current value", monitor_of(&step.until))
            }
            Eval::NoValue { text, .. } => text.clone(),
            Eval::QueryError(e) => format!("the query failed: {e}"),
            Eval::Stop(_) => last_seen,
        };
        let now = Instant::now();
        let status_due = last_status.is_none_or(|t| now.duration_since(t) >= STATUS_EVERY);
        let mut wake_in = every;
        match eval {
            Eval::Stop(outcome) => return outcome,
            Eval::Seen { ok: true, what } => {
                last_error = None;
                told_no_value = None;
                let since = *held_since.get_or_insert(now);
                let held = now.duration_since(since);
                let hold = step.hold.unwrap_or_default();
                if held.is_zero() {
                    ctx.info(match step.hold {
                        Some(h) => format!(
                            "condition met: {what} ({need}); it must hold for {}",
                            humantime::format_duration(h)
                        ),
                        None => format!("condition met: {what} ({need})"),
                    });
                    last_status = Some(now);
                }
                if held >= hold {
                    return Outcome::Succeeded {
                        summary: match step.hold {
                            Some(h) => format!(
                                "{what} ({need}) held for {}",
                                humantime::format_duration(h)
                            ),
                            None => format!("{what} ({need})"),
                        },
                    };
                }
                if !held.is_zero() && status_due {
                    ctx.info(format!(
                        "holding: {what}, {} of {}",
                        units::seconds(held.as_secs_f64()),
                        humantime::format_duration(hold)
                    ));
                    last_status = Some(now);
                }
                // Look again exactly when the hold would be complete.
                wake_in = every.min(hold - held);
            }
            Eval::Seen { ok: false, what } => {
                last_error = None;
                told_no_value = None;
                if held_since.take().is_some() {
                    ctx.info(format!("condition no longer met: {what}, need {need}"));
                    last_status = Some(now);
                } else if status_due {
                    ctx.info(format!("waiting: {what}, need {need}"));
                    last_status = Some(now);
                }
            }
            Eval::NoValue { key, text } => {
                // a gate never passes on a stale value: say why, when the reason
                // changes and then with each status line (the age grows)
                if held_since.take().is_some() {
                    ctx.info(format!("condition no longer known: {text}"));
                    last_status = Some(now);
                } else if told_no_value.as_deref() != Some(key.as_str())
                    || (status_due && key != PENDING)
                {
                    ctx.info(text);
                    last_status = Some(now);
                }
                told_no_value = Some(key);
            }
            Eval::QueryError(error) => {
                held_since = None;
                if status_due || last_error.as_deref() != Some(error.as_str()) {
                    ctx.info(format!("query failed (will try again): {error}"));
                    last_status = Some(now);
                }
                last_error = Some(error);
            }
        }
        tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return stopped(&last_seen),
            _ = tokio::time::sleep(wake_in) => {}
        }
    }
}

async fn evaluate(ctx: &ExecCtx, cond: &Condition) -> Eval {
    match cond {
        Condition::Lag {
            monitor,
            compare,
            threshold,
        } => match ctx.monitors.reading(Kind::Lag, monitor) {
            Reading::Value(v) => {
                let lag = Duration::try_from_secs_f64(v.max(0.0)).unwrap_or(Duration::MAX);
                Eval::Seen {
                    ok: compares(*compare, lag.as_secs_f64(), threshold.as_secs_f64()),
                    what: format!("lag {monitor} {}", units::seconds(lag.as_secs_f64())),
                }
            }
            other => no_value(monitor, &other),
        },
        Condition::Metric {
            monitor,
            compare,
            threshold,
        } => match ctx.monitors.reading(Kind::Metric, monitor) {
            Reading::Value(v) => Eval::Seen {
                ok: compares(*compare, v, *threshold),
                what: format!("metric {monitor} {}", units::number(v)),
            },
            other => no_value(monitor, &other),
        },
        Condition::Sql { connection, query } => {
            let db = tokio::select! {
                biased;
                _ = ctx.cancel.cancelled() => return Eval::QueryError("stopped".to_string()),
                db = ctx.conns.get(connection) => db,
            };
            let db = match db {
                Ok(db) => db,
                Err(e) => return Eval::Stop(conn_outcome(e)),
            };
            match sql::query(&db, query, &ctx.cancel).await {
                // the wait loop sees the cancellation itself and says what it saw last
                None => Eval::QueryError("stopped".to_string()),
                Some(Ok(results)) => match results.first {
                    Some(v) => Eval::Seen {
                        ok: v.is_truthy(),
                        what: ctx.redactor.redact(&format!("the query returned {v}")),
                    },
                    None => Eval::Seen {
                        ok: false,
                        what: "the query returned no rows".to_string(),
                    },
                },
                Some(Err(e)) => Eval::QueryError(ctx.redactor.redact(&sql::error_text(&e))),
            }
        }
        Condition::Dms { monitor, gate } => match ctx.monitors.dms(monitor) {
            Ok(view) => dms_gate(ctx, monitor, *gate, &view),
            Err(other) => no_value(monitor, &other),
        },
        // `execute` hands a caught-up proof to its own executor
        Condition::CaughtUp { .. } => Eval::Stop(Outcome::Failed {
            error: "a caught-up proof is not a polled condition".to_string(),
        }),
    }
}

/// A DMS gate: any problem of the task or a table fails the step (a gate never
/// passes over an errored, suspended or validation-failing table); otherwise the
/// full load is done, or the CDC latency is below the threshold.
fn dms_gate(ctx: &ExecCtx, monitor: &str, gate: DmsGate, v: &DmsTaskView) -> Eval {
    if v.failing() {
        return Eval::Stop(ctx.failed(format!(
            "dms monitor `{monitor}`: {}",
            v.problems.join("; ")
        )));
    }
    let Some(task) = &v.state else {
        return no_value(monitor, &Reading::Pending);
    };
    match gate {
        DmsGate::FullLoadDone => {
            let done = v
                .tables
                .iter()
                .filter(|t| t.state == "Table completed")
                .count();
            Eval::Seen {
                ok: crate::aws::dms::reached(DmsWait::FullLoadDone, task, &v.tables),
                what: format!(
                    "dms {monitor}: task `{}` `{}`, full load {}, {done} of {} table(s) completed",
                    task.task,
                    task.status,
                    task.full_load_percent
                        .map(|p| format!("{p}%"))
                        .unwrap_or_else(|| "?%".into()),
                    v.tables.len()
                ),
            }
        }
        DmsGate::LatencyBelow(limit) => match &v.latency {
            Some(l) => Eval::Seen {
                ok: l.value < limit.as_secs_f64(),
                what: format!(
                    "dms {monitor} CDC latency {}",
                    units::seconds(l.value.max(0.0))
                ),
            },
            None => {
                let why = v
                    .latency_note
                    .clone()
                    .unwrap_or_else(|| "no datapoints".into());
                Eval::NoValue {
                    key: format!("latency: {why}"),
                    text: format!("monitor `{monitor}` has no CDC latency: {why}"),
                }
            }
        },
    }
}

/// The `NoValue` key of a monitor that has not produced a value yet: said once.
const PENDING: &str = "pending";

/// The monitor a lag or metric condition reads.
fn monitor_of(cond: &Condition) -> &str {
    match cond {
        Condition::Lag { monitor, .. }
        | Condition::Metric { monitor, .. }
        | Condition::Dms { monitor, .. } => monitor,
        Condition::Sql { .. } | Condition::CaughtUp { .. } => "",
    }
}

fn no_value(monitor: &str, r: &Reading) -> Eval {
    let key = match r {
        Reading::Stale { why, .. } => format!("stale: {why}"),
        _ => PENDING.to_string(),
    };
    let text = r
        .explain(monitor)
        .unwrap_or_else(|| format!("monitor `{monitor}` has no value"));
    Eval::NoValue { key, text }
}

fn compares(compare: Compare, value: f64, threshold: f64) -> bool {
    match compare {
        Compare::Below => value < threshold,
        Compare::Above => value > threshold,
    }
}

/// What the condition needs, as text: "< 10s", "> 80", "true or non-zero".
fn need_text(cond: &Condition) -> String {
    let op = |c: Compare| match c {
        Compare::Below => "<",
        Compare::Above => ">",
    };
    match cond {
        Condition::Lag {
            compare, threshold, ..
        } => format!(
            "{} {}",
            op(*compare),
            humantime::format_duration(*threshold)
        ),
        Condition::Metric {
            compare, threshold, ..
        } => format!("{} {threshold}", op(*compare)),
        Condition::Sql { .. } => "true or non-zero".to_string(),
        Condition::CaughtUp { .. } => "the replica past the primary's position".to_string(),
        Condition::Dms {
            gate: DmsGate::FullLoadDone,
            ..
        } => "every table of the task loaded".to_string(),
        Condition::Dms {
            gate: DmsGate::LatencyBelow(d),
            ..
        } => format!("CDC latency < {}", humantime::format_duration(*d)),
    }
}
