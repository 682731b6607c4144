//! `ferry check --live`: connect to the databases and run, read-only, the checks
//! the online steps make when they start, so they can run the week before:
//! every `replicate` start's pre-checks (wal_level, privileges, free slots and
//! WAL senders, tables without a key or replica identity, tables missing on the
//! target) and every caught-up proof's identity check (is the replica a standby
//! of that primary, does the slot exist), and every copy from MySQL's pre-flight
//! (tables without a primary key, values that will not fit, unique keys that would
//! collide). Nothing is created or changed.

use super::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE};
use ferry_core::db::Db;
use ferry_core::engine::connections::{ConnError, Connections, RetryPolicy};
use ferry_core::engine::redact::Redactor;
use ferry_core::replicate::caught_up::{self, Follower, ProofError};
use ferry_core::replicate::checks::{self, Existing};
use ferry_core::replicate::logical;
use ferry_core::runbook::{CatchUpBy, Condition, ReplicateAction, Runbook, StepKind};
use std::time::Duration;

/// How each check ended, for the exit code.
#[derive(Default)]
struct Tally {
    problems: usize,
    unreachable: bool,
    checked: usize,
}

pub async fn run(rb: &Runbook) -> i32 {
    let env = |k: &str| std::env::var(k).ok();
    let mut redactor = Redactor::new();
    let policy = RetryPolicy {
        attempts: 2,
        first_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(1),
    };
    let conns = match Connections::new(rb, &env, &mut redactor, policy) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                say!("live: {e}");
            }
            return EXIT_BAD_INPUT;
        }
    };
    let mut tally = Tally::default();
    for s in rb.steps() {
        match &s.kind {
            StepKind::Replicate(r) if r.action == ReplicateAction::Start => {
                tally.checked += 1;
                replicate(&conns, &s.id, r, &mut tally).await;
            }
            StepKind::Copy(c) if is_mysql(&conns, &c.from) => {
                tally.checked += 1;
                copy(&conns, &s.id, c, &mut tally).await;
            }
            StepKind::Wait(w) => {
                if let Condition::CaughtUp { primary, by } = &w.until {
                    tally.checked += 1;
                    // a slot a replicate step of this runbook creates need not exist yet
                    let made_by = rb.steps().find(|x| {
                        matches!((&x.kind, by), (StepKind::Replicate(r), CatchUpBy::Slot(slot))
                            if r.action == ReplicateAction::Start && &r.name == slot)
                    });
                    proof(
                        &conns,
                        &s.id,
                        primary,
                        by,
                        made_by.map(|x| x.id.as_str()),
                        &mut tally,
                    )
                    .await;
                }
            }
            _ => {}
        }
    }
    conns.close().await;
    if tally.checked == 0 {
        say!("live: the runbook has no replicate start, no caught-up proof and no copy from MySQL; nothing to check");
        return EXIT_OK;
    }
    if tally.unreachable {
        EXIT_UNREACHABLE
    } else if tally.problems > 0 {
        say!("live: {} problem(s); nothing was changed", tally.problems);
        EXIT_FAILED
    } else {
        say!("live: every check passed; nothing was changed");
        EXIT_OK
    }
}

async fn pool(conns: &Connections, name: &str, step: &str, tally: &mut Tally) -> Option<Db> {
    match conns.get(name).await {
        Ok(db) => Some(db),
        Err(ConnError::Unreachable(e)) => {
            tally.unreachable = true;
            say!("live: UNREACHABLE step `{step}`: connection `{name}`: {e}");
            None
        }
        Err(ConnError::Config(e)) => {
            tally.problems += 1;
            say!("live: PROBLEM step `{step}`: connection `{name}`: {e}");
            None
        }
    }
}

async fn replicate(
    conns: &Connections,
    step: &str,
    r: &ferry_core::runbook::ReplicateStep,
    tally: &mut Tally,
) {
    let (Some(src), Some(tgt)) = (
        pool(conns, &r.from, step, tally).await,
        pool(conns, &r.to, step, tally).await,
    ) else {
        return;
    };
    let existing = match (&src, &tgt) {
        (Db::Pg(s), Db::Pg(t)) => logical::find(s, t, &r.name).await.unwrap_or_default(),
        _ => Default::default(),
    };
    let pre = checks::preflight(
        (&r.from, &src),
        (&r.to, &tgt),
        &r.tables,
        &r.exclude,
        Existing {
            slot: existing.slot,
            subscription: existing.subscription,
        },
    )
    .await;
    if pre.ok() {
        say!(
            "live: ok       step `{step}`: {} table(s) can replicate {} -> {}",
            pre.tables.len(),
            r.from,
            r.to
        );
    }
    for p in &pre.problems {
        tally.problems += 1;
        say!("live: PROBLEM  step `{step}`: {p}");
    }
    let there: Vec<&str> = [
        (existing.publication, "publication"),
        (existing.slot, "slot"),
        (existing.subscription, "subscription"),
    ]
    .iter()
    .filter(|(b, _)| *b)
    .map(|(_, n)| *n)
    .collect();
    if !there.is_empty() {
        say!(
            "live: note     step `{step}`: {} `{}` exist(s) already; the step will re-attach to them",
            there.join(", "),
            r.name
        );
    }
}

/// The connection is a MySQL or MariaDB one (by its URL's scheme).
fn is_mysql(conns: &Connections, name: &str) -> bool {
    conns
        .url_for_display(name)
        .is_some_and(|u| u.starts_with("mysql://") || u.starts_with("mariadb://"))
}

/// The pre-flight a copy from MySQL runs at its start.
async fn copy(
    conns: &Connections,
    step: &str,
    c: &ferry_core::runbook::CopyStep,
    tally: &mut Tally,
) {
    let (Some(src), Some(tgt)) = (
        pool(conns, &c.from, step, tally).await,
        pool(conns, &c.to, step, tally).await,
    ) else {
        return;
    };
    match ferry_core::copy::preflight::check(c, &src, &tgt).await {
        Ok(pre) => {
            for w in &pre.warnings {
                say!("live: warning  step `{step}`: {w}");
            }
            for p in &pre.problems {
                tally.problems += 1;
                say!("live: PROBLEM  step `{step}`: {p}");
            }
            if pre.problems.is_empty() {
                say!(
                    "live: ok       step `{step}`: {} table(s) pass the copy's pre-flight {} -> {}",
                    pre.tables,
                    c.from,
                    c.to
                );
            }
        }
        Err(ferry_core::copy::CopyError::Unreachable(e)) => {
            tally.unreachable = true;
            say!("live: UNREACHABLE step `{step}`: {e}");
        }
        Err(e) => {
            tally.problems += 1;
            say!("live: PROBLEM  step `{step}`: {e}");
        }
    }
}

async fn proof(
    conns: &Connections,
    step: &str,
    primary: &str,
    by: &CatchUpBy,
    made_by: Option<&str>,
    tally: &mut Tally,
) {
    let Some(Db::Pg(p)) = pool(conns, primary, step, tally).await else {
        return;
    };
    let (follower, replica) = match by {
        CatchUpBy::Replica(name) => match pool(conns, name, step, tally).await {
            Some(Db::Pg(r)) => (Follower::Standby { name: name.clone() }, Some(r)),
            _ => return,
        },
        CatchUpBy::Slot(name) => (Follower::Slot { name: name.clone() }, None),
    };
    match caught_up::begin(&p, primary, &follower, replica.as_ref()).await {
        Ok(b) => say!(
            "live: ok       step `{step}`: {} follows `{primary}` (system {}; now at {})",
            match &follower {
                Follower::Standby { name } => format!("standby `{name}`"),
                Follower::Slot { name } => format!("slot `{name}`"),
            },
            b.system_identifier,
            b.primary_lsn
        ),
        Err(ProofError::Fatal(e))
            if made_by.is_some() && e.starts_with("there is no replication slot") =>
        {
            say!(
                "live: note     step `{step}`: the slot does not exist yet; step `{}` creates it",
                made_by.unwrap_or_default()
            );
        }
        Err(ProofError::Fatal(e)) | Err(ProofError::Retry(e)) => {
            tally.problems += 1;
            say!("live: PROBLEM  step `{step}`: {e}");
        }
    }
}
