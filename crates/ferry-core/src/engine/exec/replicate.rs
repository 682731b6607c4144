//! `replicate` steps: PostgreSQL logical replication from `from` to `to`.
//!
//! `start`: find what exists by name (a resumed run re-attaches, nothing is
//! created twice), run the pre-checks and refuse with every reason before
//! anything is created, create the publication, the slot and the subscription,
//! then succeed once every table is ready; replication keeps running after.
//! Stopped while starting (abort, timeout), it drops what it created: a slot
//! must not be left holding WAL. `stop`: copy the sequences, then drop the
//! subscription, the slot and the publication. The rollback of a `start` is the
//! same teardown. A slot that cannot be dropped fails the step loudly, and the
//! journaled result names it for the report.

use super::{conn_outcome, ExecCtx};
use crate::db::catalog;
use crate::db::sqltext::error_text;
use crate::db::Db;
use crate::replicate::checks::{self, Existing};
use crate::replicate::logical::{self, Found, SubState};
use crate::results::replicate::{ReplicateReport, Teardown};
use crate::runbook::{ReplicateAction, ReplicateStep};
use crate::vocab::{Outcome, Progress, ProgressItem};
use sqlx::PgPool;
use std::time::Duration;

/// How often the subscription's state is read while the tables sync.
const POLL: Duration = Duration::from_millis(500);

async fn pg(ctx: &ExecCtx, name: &str) -> Result<PgPool, Outcome> {
    let db = tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => return Err(Outcome::Cancelled),
        db = ctx.conns.get(name) => db,
    };
    match db.map_err(conn_outcome)? {
        Db::Pg(p) => Ok(p),
        other => Err(ctx.failed(format!(
            "logical replication is PostgreSQL to PostgreSQL; `{name}` is {}",
            other.engine()
        ))),
    }
}

pub(super) async fn run(ctx: &ExecCtx, step: &ReplicateStep) -> Outcome {
    let (src, tgt) = match (pg(ctx, &step.from).await, pg(ctx, &step.to).await) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(o), _) | (_, Err(o)) => return o,
    };
    match step.action {
        ReplicateAction::Start => start(ctx, step, &src, &tgt).await,
        ReplicateAction::Stop => stop(ctx, step, &src, &tgt).await,
    }
}

/// The rollback of a `start`: drop the subscription, the slot and the publication.
pub(super) async fn rollback(ctx: &ExecCtx, step: &ReplicateStep) -> Outcome {
    let (src, tgt) = match (pg(ctx, &step.from).await, pg(ctx, &step.to).await) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(o), _) | (_, Err(o)) => return o,
    };
    let mut report = ReplicateReport {
        action: "rollback".into(),
        name: step.name.clone(),
        ..ReplicateReport::default()
    };
    let t = logical::teardown(&src, &tgt, &step.name).await;
    finish_teardown(ctx, &mut report, t, "rolled back")
}

fn journal(ctx: &ExecCtx, report: &ReplicateReport) {
    if let Ok(v) = serde_json::to_value(report) {
        ctx.result(v);
    }
}

/// Journal a teardown and turn it into the outcome: any error fails the step,
/// a slot left behind in capitals.
fn finish_teardown(
    ctx: &ExecCtx,
    report: &mut ReplicateReport,
    t: Teardown,
    done: &str,
) -> Outcome {
    for d in &t.dropped {
        ctx.info(format!("dropped {d}"));
    }
    for e in &t.errors {
        ctx.info(e);
    }
    let ok = t.errors.is_empty();
    let errors = t.errors.join("; ");
    report.teardown = Some(t);
    journal(ctx, report);
    if ok {
        Outcome::Succeeded {
            summary: format!(
                "{done}: publication, slot and subscription `{}` dropped",
                report.name
            ),
        }
    } else {
        ctx.failed(errors)
    }
}

async fn start(ctx: &ExecCtx, step: &ReplicateStep, src: &PgPool, tgt: &PgPool) -> Outcome {
    let name = &step.name;
    let found = match logical::find(src, tgt, name).await {
        Ok(f) => f,
        Err(e) => return ctx.failed(format!("cannot look for `{name}`: {}", error_text(&e))),
    };
    let mut report = ReplicateReport {
        action: "start".into(),
        name: name.clone(),
        reattached: described(found),
        ..ReplicateReport::default()
    };
    if !report.reattached.is_empty() {
        ctx.info(format!(
            "re-attaching to what exists already: {}",
            report.reattached.join(", ")
        ));
    }
    let pre = checks::preflight(
        (&step.from, &Db::Pg(src.clone())),
        (&step.to, &Db::Pg(tgt.clone())),
        &step.tables,
        &step.exclude,
        Existing {
            slot: found.slot,
            subscription: found.subscription,
        },
    )
    .await;
    if !pre.ok() {
        journal(ctx, &report);
        return ctx.failed(logical::refusal(&pre.problems));
    }
    ctx.info(format!(
        "pre-checks passed: {} table(s) to publish",
        pre.tables.len()
    ));
    let Some(conninfo) = ctx.conns.url_with_secret(&step.from).map(str::to_string) else {
        return ctx.failed(format!(
            "connection `{}` has no password the subscription could keep (IAM tokens expire): give it a URL with a password for replication",
            step.from
        ));
    };
    if !found.publication {
        if let Err(e) = logical::create_publication(src, name, &pre.tables).await {
            return ctx.failed(format!(
                "cannot create publication `{name}` on `{}`: {}",
                step.from,
                error_text(&e)
            ));
        }
        report
            .created
            .push(format!("publication {name} ({})", step.from));
        ctx.info(format!("created publication {name} on `{}`", step.from));
    }
    if !found.subscription {
        if let Err(e) = logical::create_subscription(tgt, name, &conninfo, !found.slot).await {
            let why = ctx.redactor.redact(&error_text(&e));
            return undo(
                ctx,
                src,
                tgt,
                &mut report,
                format!(
                    "cannot create subscription `{name}` on `{}`: {why}",
                    step.to
                ),
            )
            .await;
        }
        if !found.slot {
            report.created.push(format!("slot {name} ({})", step.from));
        }
        report
            .created
            .push(format!("subscription {name} ({})", step.to));
        ctx.info(format!(
            "created subscription {name} on `{}`{}",
            step.to,
            if found.slot {
                " on the existing slot"
            } else {
                " and its slot"
            }
        ));
    } else if let Ok(true) = logical::enable(tgt, name).await {
        ctx.info(format!("enabled subscription {name}, found disabled"));
    }
    wait_ready(ctx, src, tgt, &mut report).await
}

/// Poll the subscription until every table is ready; fail when it disables
/// itself after an error; on cancellation drop what this attempt created.
async fn wait_ready(
    ctx: &ExecCtx,
    src: &PgPool,
    tgt: &PgPool,
    report: &mut ReplicateReport,
) -> Outcome {
    let name = report.name.clone();
    let mut last_states = String::new();
    loop {
        let state = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => None,
            s = logical::sub_state(tgt, &name) => Some(s),
        };
        let Some(state) = state else {
            return cancelled(ctx, src, tgt, report).await;
        };
        match state {
            Ok(Some(s)) => {
                ctx.progress(progress(&s));
                let states = summary(&s);
                if states != last_states {
                    ctx.info(format!("tables: {states}"));
                    last_states = states;
                }
                report.tables = s.tables.clone();
                if !s.enabled {
                    let waiting: Vec<&str> = s
                        .tables
                        .iter()
                        .filter(|t| t.state != "ready")
                        .map(|t| t.table.as_str())
                        .collect();
                    journal(ctx, report);
                    return ctx.failed(format!(
                        "subscription `{name}` disabled itself after an error (apply errors {}, sync errors {}){}; the target's server log names the row; fix it, then retry this step",
                        s.apply_errors,
                        s.sync_errors,
                        if waiting.is_empty() { String::new() } else { format!("; not ready: {}", waiting.join(", ")) }
                    ));
                }
                if s.all_ready() {
                    journal(ctx, report);
                    return Outcome::Succeeded {
                        summary: format!(
                            "replicating `{name}`: {} table(s) ready; replication goes on in the background",
                            s.tables.len()
                        ),
                    };
                }
            }
            Ok(None) => {
                journal(ctx, report);
                return ctx.failed(format!("subscription `{name}` disappeared from the target"));
            }
            Err(e) => ctx.info(format!(
                "cannot read the subscription (will try again): {}",
                error_text(&e)
            )),
        }
        tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return cancelled(ctx, src, tgt, report).await,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Stopped while starting: drop what exists under the name, so no slot is left.
async fn cancelled(
    ctx: &ExecCtx,
    src: &PgPool,
    tgt: &PgPool,
    report: &mut ReplicateReport,
) -> Outcome {
    ctx.info("stopped while starting: dropping the subscription, the slot and the publication");
    let t = logical::teardown(src, tgt, &report.name).await;
    let _ = finish_teardown(ctx, report, t, "stopped");
    Outcome::Cancelled
}

/// A creation failed half-way: drop what this attempt created, then fail.
async fn undo(
    ctx: &ExecCtx,
    src: &PgPool,
    tgt: &PgPool,
    report: &mut ReplicateReport,
    error: String,
) -> Outcome {
    ctx.info(&error);
    let t = logical::teardown(src, tgt, &report.name).await;
    let _ = finish_teardown(ctx, report, t, "undone");
    ctx.failed(error)
}

async fn stop(ctx: &ExecCtx, step: &ReplicateStep, src: &PgPool, tgt: &PgPool) -> Outcome {
    let mut report = ReplicateReport {
        action: "stop".into(),
        name: step.name.clone(),
        ..ReplicateReport::default()
    };
    let tables = match catalog::read(&Db::Pg(src.clone())).await {
        Ok(cat) => catalog::select(&cat, &step.tables, &step.exclude)
            .iter()
            .map(|t| t.qualified_name())
            .collect::<Vec<_>>(),
        Err(e) => {
            return ctx.failed(format!(
                "cannot read the source's tables: {}",
                error_text(&e)
            ))
        }
    };
    match logical::copy_sequences(src, tgt, &tables).await {
        Ok(seqs) => {
            for s in &seqs {
                ctx.info(match (s.value, &s.note) {
                    (Some(v), _) => format!("sequence {} set to {v}", s.sequence),
                    (None, Some(n)) => format!("sequence {}: {n}", s.sequence),
                    (None, None) => format!("sequence {}", s.sequence),
                });
            }
            let missing: Vec<String> = seqs
                .iter()
                .filter(|s| s.note.as_deref().is_some_and(|n| n.starts_with("missing")))
                .map(|s| s.sequence.clone())
                .collect();
            report.sequences = seqs;
            if !missing.is_empty() {
                journal(ctx, &report);
                return ctx.failed(format!(
                    "sequences missing on the target, replication left running: {}",
                    missing.join(", ")
                ));
            }
        }
        Err(e) => {
            return ctx.failed(format!(
                "cannot copy the sequences (replication left running): {}",
                error_text(&e)
            ))
        }
    }
    let t = logical::teardown(src, tgt, &step.name).await;
    finish_teardown(ctx, &mut report, t, "stopped")
}

/// What was found, as the result lists it.
fn described(f: Found) -> Vec<String> {
    let mut out = Vec::new();
    if f.publication {
        out.push("publication".to_string());
    }
    if f.slot {
        out.push("slot".to_string());
    }
    if f.subscription {
        out.push("subscription".to_string());
    }
    out
}

/// "2 ready, 1 copying".
fn summary(s: &SubState) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for t in &s.tables {
        match counts.iter_mut().find(|(k, _)| *k == t.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((t.state.clone(), 1)),
        }
    }
    counts
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn progress(s: &SubState) -> Progress {
    let ready = s.tables.iter().filter(|t| t.state == "ready").count() as u64;
    Progress {
        done: ready,
        total: Some(s.tables.len() as u64),
        unit: "tables".into(),
        rate: None,
        eta_secs: None,
        eta_basis: None,
        bytes: None,
        items: s
            .tables
            .iter()
            .map(|t| ProgressItem {
                name: t.table.clone(),
                done: t.rows.unwrap_or(0).max(0) as u64,
                total: None,
                state: match t.state.as_str() {
                    "ready" => "done".into(),
                    "copying" | "copied" | "synchronized" => "running".into(),
                    "init" => "pending".into(),
                    other => other.into(),
                },
            })
            .collect(),
        note: Some(format!(
            "{}{}",
            summary(s),
            if s.apply_errors + s.sync_errors > 0 {
                format!(
                    " · errors: apply {}, sync {}",
                    s.apply_errors, s.sync_errors
                )
            } else {
                String::new()
            }
        )),
        catch_up: None,
    }
}
