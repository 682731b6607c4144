//! The caught-up proof (`wait` with `until = { caught_up = ... }`): record the
//! primary's WAL position when the wait begins, then look every `every` until
//! the standby's replay position (or the logical slot's confirmed flush
//! position) is past it. Bytes and seconds behind go to the front-ends as typed
//! progress; both positions are journaled as the step's result, also when the
//! wait is stopped. A replica of another cluster, a standby that is no standby,
//! or a missing slot fails the step at once.

use super::{conn_outcome, ExecCtx};
use crate::db::Db;
use crate::replicate::caught_up::{self, Applied, Follower, ProofError};
use crate::replicate::Lsn;
use crate::results::caught_up::CaughtUpReport;
use crate::runbook::CatchUpBy;
use crate::units;
use crate::vocab::{CatchUp, Outcome, Progress};
use sqlx::PgPool;
use std::time::Duration;
use tokio::time::Instant;

/// Status lines while waiting come at most this often.
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// Where the proof stands, for its result and its last words.
struct State {
    report: CaughtUpReport,
    started: Instant,
    /// The applied position when the wait began, for the progress bar.
    first_applied: Option<Lsn>,
}

impl State {
    fn finish(&mut self, ctx: &ExecCtx, applied: Option<Lsn>, target: Lsn) {
        self.report.applied_lsn = applied.map(|l| l.to_string());
        self.report.bytes_behind = applied.unwrap_or_default().bytes_to(target);
        self.report.caught_up = applied.is_some_and(|a| a >= target);
        self.report.waited_secs = self.started.elapsed().as_secs_f64();
        if let Ok(data) = serde_json::to_value(&self.report) {
            ctx.result(data);
        }
    }
}

async fn pg(ctx: &ExecCtx, name: &str) -> Result<PgPool, Outcome> {
    let db = tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => return Err(Outcome::Cancelled),
        db = ctx.conns.get(name) => db,
    };
    match db.map_err(conn_outcome)? {
        Db::Pg(p) => Ok(p),
        other => Err(ctx.failed(format!(
            "a caught-up proof reads PostgreSQL WAL positions; `{name}` is {}",
            other.engine()
        ))),
    }
}

pub(super) async fn run(ctx: &ExecCtx, primary: &str, by: &CatchUpBy, every: Duration) -> Outcome {
    let every = every.max(Duration::from_millis(50));
    let primary_pool = match pg(ctx, primary).await {
        Ok(p) => p,
        Err(o) => return o,
    };
    let (follower, replica_pool) = match by {
        CatchUpBy::Replica(name) => match pg(ctx, name).await {
            Ok(p) => (Follower::Standby { name: name.clone() }, Some(p)),
            Err(o) => return o,
        },
        CatchUpBy::Slot(name) => (Follower::Slot { name: name.clone() }, None),
    };
    let started = Instant::now();
    // the identity checks and the start position; a failed query is tried again
    let begun = loop {
        match caught_up::begin(&primary_pool, primary, &follower, replica_pool.as_ref()).await {
            Ok(b) => break b,
            Err(ProofError::Fatal(e)) => return ctx.failed(e),
            Err(ProofError::Retry(e)) => {
                ctx.info(format!("cannot start the proof yet (will try again): {e}"));
                tokio::select! {
                    biased;
                    _ = ctx.cancel.cancelled() => return Outcome::Cancelled,
                    _ = tokio::time::sleep(every.max(Duration::from_secs(1))) => {}
                }
            }
        }
    };
    let target = begun.primary_lsn;
    let mut st = State {
        report: CaughtUpReport {
            proof: CaughtUpReport::PROOF.to_string(),
            primary: primary.to_string(),
            replica: matches!(by, CatchUpBy::Replica(_)).then(|| name_of(by).to_string()),
            slot: matches!(by, CatchUpBy::Slot(_)).then(|| name_of(by).to_string()),
            primary_lsn: target.to_string(),
            applied_lsn: None,
            caught_up: false,
            bytes_behind: 0,
            waited_secs: 0.0,
            system_identifier: Some(begun.system_identifier.clone()),
        },
        started,
        first_applied: None,
    };
    let who = st.report.follower();
    ctx.info(format!(
        "primary `{primary}` is at {target} (system {}); waiting for {who} to apply past it",
        begun.system_identifier
    ));
    let mut last: Option<Lsn> = None;
    let mut last_status: Option<Instant> = None;
    let mut last_error: Option<String> = None;
    loop {
        let look = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => None,
            a = caught_up::applied(&primary_pool, primary, &follower, replica_pool.as_ref()) => Some(a),
        };
        let Some(look) = look else {
            return stopped(ctx, &mut st, last, target);
        };
        let now = Instant::now();
        let status_due = last_status.is_none_or(|t| now.duration_since(t) >= STATUS_EVERY);
        match look {
            Err(ProofError::Fatal(e)) => {
                st.finish(ctx, last, target);
                return ctx.failed(e);
            }
            Err(ProofError::Retry(e)) => {
                if status_due || last_error.as_deref() != Some(e.as_str()) {
                    ctx.info(format!("query failed (will try again): {e}"));
                    last_status = Some(now);
                }
                last_error = Some(e);
            }
            Ok(Applied {
                lsn,
                seconds_behind,
            }) => {
                last_error = None;
                last = lsn;
                let first = *st.first_applied.get_or_insert(lsn.unwrap_or_default());
                let behind = lsn.unwrap_or_default().bytes_to(target);
                ctx.progress(progress(target, lsn, first, behind, seconds_behind));
                if lsn.is_some_and(|l| l >= target) {
                    st.finish(ctx, lsn, target);
                    ctx.info(st.report.sentence());
                    return Outcome::Succeeded {
                        summary: st.report.sentence(),
                    };
                }
                if status_due {
                    ctx.info(format!(
                        "waiting: {who} at {} · {} behind primary {target}{}",
                        lsn.map_or("nothing yet".to_string(), |l| l.to_string()),
                        units::bytes(behind),
                        seconds_behind
                            .map(|s| format!(" · {} behind", units::seconds(s)))
                            .unwrap_or_default()
                    ));
                    last_status = Some(now);
                }
            }
        }
        tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return stopped(ctx, &mut st, last, target),
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Stopped by a timeout or an abort: journal where it stood and say so.
fn stopped(ctx: &ExecCtx, st: &mut State, last: Option<Lsn>, target: Lsn) -> Outcome {
    st.finish(ctx, last, target);
    ctx.info(format!(
        "stopped waiting; last seen: {}",
        st.report.sentence()
    ));
    Outcome::Cancelled
}

fn name_of(by: &CatchUpBy) -> &str {
    match by {
        CatchUpBy::Replica(n) | CatchUpBy::Slot(n) => n,
    }
}

/// The proof's progress: bytes applied since the wait began out of the bytes
/// that were missing then, with the typed positions.
fn progress(
    target: Lsn,
    applied: Option<Lsn>,
    first: Lsn,
    behind: u64,
    seconds_behind: Option<f64>,
) -> Progress {
    let total = first.bytes_to(target);
    Progress {
        done: total.saturating_sub(behind),
        total: Some(total),
        unit: "bytes".to_string(),
        rate: None,
        eta_secs: None,
        eta_basis: None,
        bytes: None,
        items: Vec::new(),
        note: Some(format!(
            "{} behind{}",
            units::bytes(behind),
            seconds_behind
                .map(|s| format!(" · {}", units::seconds(s)))
                .unwrap_or_default()
        )),
        catch_up: Some(CatchUp {
            primary_lsn: target.to_string(),
            applied_lsn: applied.map(|l| l.to_string()),
            bytes_behind: behind,
            seconds_behind,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_the_bytes_applied_since_the_start() {
        let target = Lsn(1_000);
        let p = progress(target, Some(Lsn(700)), Lsn(400), 300, Some(1.5));
        assert_eq!(p.total, Some(600));
        assert_eq!(p.done, 300);
        let c = p.catch_up.expect("typed positions");
        assert_eq!(c.bytes_behind, 300);
        assert_eq!(c.primary_lsn, "0/3E8");
        assert_eq!(c.applied_lsn.as_deref(), Some("0/2BC"));
    }
}
