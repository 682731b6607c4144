//! The caught-up proof's reads: who the primary and the follower are (so a
//! replica of another cluster or a missing slot is an error at once, not a wait
//! that never ends), the primary's position when the wait begins, and how far
//! the follower has applied since. Read-only; the `wait` executor drives it.

use super::lsn::Lsn;
use crate::db::sqltext::error_text;
use sqlx::PgPool;

/// Why a proof cannot go on. `Fatal` ends the step; `Retry` is a failed query
/// that may work the next time.
#[derive(Debug, Clone, PartialEq)]
pub enum ProofError {
    Fatal(String),
    Retry(String),
}

fn retry(e: sqlx::Error) -> ProofError {
    ProofError::Retry(error_text(&e))
}

/// What the follower is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follower {
    /// A physical standby, reached through connection `name`.
    Standby { name: String },
    /// A logical slot on the primary.
    Slot { name: String },
}

/// The start of a proof: the primary's position and identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Begun {
    pub primary_lsn: Lsn,
    pub system_identifier: String,
}

/// One look at the follower.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// None: the standby has replayed nothing yet (or the slot never confirmed).
    pub lsn: Option<Lsn>,
    pub seconds_behind: Option<f64>,
}

/// Check that `primary` is a primary and that the follower follows it, then
/// record the primary's current WAL position. `primary_name` names it in messages.
pub async fn begin(
    primary: &PgPool,
    primary_name: &str,
    follower: &Follower,
    replica: Option<&PgPool>,
) -> Result<Begun, ProofError> {
    let (in_recovery, sysid): (bool, Option<String>) = sqlx::query_as(
        "select pg_is_in_recovery(), (select system_identifier::text from pg_control_system())",
    )
    .fetch_one(primary)
    .await
    .map_err(|e| identity_error(e, primary_name))?;
    if in_recovery {
        return Err(ProofError::Fatal(format!(
            "`{primary_name}` is in recovery: the primary of a caught-up proof must be the database that takes the writes"
        )));
    }
    let sysid = sysid.unwrap_or_default();
    match follower {
        Follower::Standby { name } => {
            let pool = replica
                .ok_or_else(|| ProofError::Fatal(format!("no connection for replica `{name}`")))?;
            let (standby, theirs): (bool, Option<String>) = sqlx::query_as(
                "select pg_is_in_recovery(), (select system_identifier::text from pg_control_system())",
            )
            .fetch_one(pool)
            .await
            .map_err(|e| identity_error(e, name))?;
            let theirs = theirs.unwrap_or_default();
            if theirs != sysid {
                return Err(ProofError::Fatal(format!(
                    "`{name}` is not a replica of `{primary_name}`: its system identifier is {theirs}, the primary's is {sysid} (another cluster)"
                )));
            }
            if !standby {
                return Err(ProofError::Fatal(format!(
                    "`{name}` is not in recovery: it is no standby (promoted already, or the same server as `{primary_name}`), so it cannot prove it caught up"
                )));
            }
        }
        Follower::Slot { name } => {
            slot_row(primary, primary_name, name).await?;
        }
    }
    // the insert position, not the write position: with `synchronous_commit = off` a
    // transaction acknowledged as committed may not be written yet, and the write
    // position would leave it out of the proof
    let lsn: String = sqlx::query_scalar("select pg_current_wal_insert_lsn()::text")
        .fetch_one(primary)
        .await
        .map_err(retry)?;
    let primary_lsn = Lsn::parse(&lsn).ok_or_else(|| {
        ProofError::Fatal(format!(
            "`{primary_name}` returned an unreadable WAL position `{lsn}`"
        ))
    })?;
    Ok(Begun {
        primary_lsn,
        system_identifier: sysid,
    })
}

/// A failed identity query: a permission problem is fatal (waiting will not fix
/// it), anything else may be a blip.
fn identity_error(e: sqlx::Error, name: &str) -> ProofError {
    let text = error_text(&e);
    let denied = e
        .as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "42501");
    if denied {
        ProofError::Fatal(format!(
            "cannot read who `{name}` is (pg_control_system): {text}"
        ))
    } else {
        ProofError::Retry(format!("`{name}`: {text}"))
    }
}

/// The slot's confirmed flush position and the seconds its walsender reports
/// behind; a missing or physical slot is fatal.
async fn slot_row(primary: &PgPool, primary_name: &str, slot: &str) -> Result<Applied, ProofError> {
    let row: Option<(String, Option<String>, Option<f64>)> = sqlx::query_as(
        "select s.slot_type::text, s.confirmed_flush_lsn::text,
                (select extract(epoch from coalesce(r.flush_lag, r.write_lag))::float8
                   from pg_stat_replication r where r.pid = s.active_pid)
           from pg_replication_slots s where s.slot_name = $1",
    )
    .bind(slot)
    .fetch_optional(primary)
    .await
    .map_err(retry)?;
    let Some((kind, confirmed, secs)) = row else {
        let names: Vec<String> =
            sqlx::query_scalar("select slot_name::text from pg_replication_slots order by 1")
                .fetch_all(primary)
                .await
                .unwrap_or_default();
        let there = if names.is_empty() {
            "it has none".to_string()
        } else {
            format!("it has {}", names.join(", "))
        };
        return Err(ProofError::Fatal(format!(
            "there is no replication slot `{slot}` on `{primary_name}` ({there})"
        )));
    };
    if kind != "logical" {
        return Err(ProofError::Fatal(format!(
            "slot `{slot}` on `{primary_name}` is a {kind} slot: name the standby's connection with `replica = ...` instead"
        )));
    }
    Ok(Applied {
        lsn: confirmed.as_deref().and_then(Lsn::parse),
        seconds_behind: secs,
    })
}

/// How far the follower has applied now.
pub async fn applied(
    primary: &PgPool,
    primary_name: &str,
    follower: &Follower,
    replica: Option<&PgPool>,
) -> Result<Applied, ProofError> {
    match follower {
        Follower::Slot { name } => slot_row(primary, primary_name, name).await,
        Follower::Standby { name } => {
            let pool = replica
                .ok_or_else(|| ProofError::Fatal(format!("no connection for replica `{name}`")))?;
            // seconds behind as the lag monitor reads it: 0 once everything received is replayed
            let (lsn, secs): (Option<String>, Option<f64>) = sqlx::query_as(
                "select pg_last_wal_replay_lsn()::text,
                        case when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0::float8
                             else extract(epoch from (clock_timestamp() - pg_last_xact_replay_timestamp()))::float8 end",
            )
            .fetch_one(pool)
            .await
            .map_err(retry)?;
            Ok(Applied {
                lsn: lsn.as_deref().and_then(Lsn::parse),
                seconds_behind: secs.map(|s| s.max(0.0)),
            })
        }
    }
}
