//! The pre-checks of logical replication, read-only: everything that would make
//! `replicate` `action = "start"` fail or leave a broken subscription, found in
//! one pass so the operator sees every reason at once (the week before, with
//! `ferry check --live`, and again when the step starts).

use crate::db::catalog::{self, Catalog};
use crate::db::sqltext::error_text;
use crate::db::Db;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::fmt;

/// Slots and WAL senders the initial sync may use besides the subscription's
/// own: PostgreSQL's default `max_sync_workers_per_subscription`.
pub const SYNC_WORKERS: i64 = 2;

/// One reason replication cannot start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// The source's `wal_level` is not `logical`.
    WalLevel { level: String },
    /// The source role can neither replicate nor is a member of `rds_replication`.
    NoReplicationPrivilege { role: String },
    /// Fewer free replication slots on the source than the start needs.
    Slots { free: i64, needed: i64, max: i64 },
    /// Fewer free WAL senders on the source than the start needs.
    WalSenders { free: i64, needed: i64, max: i64 },
    /// The target cannot track one more subscription (`max_replication_slots`
    /// bounds replication origins on the subscriber).
    TargetOrigins { free: i64, max: i64 },
    /// The target runs too few logical replication workers for the apply and sync.
    TargetWorkers { max: i64, needed: i64 },
    /// A table whose updates and deletes could not be replicated.
    NoReplicaIdentity { table: String },
    /// A selected table that the target lacks.
    MissingOnTarget { table: String },
    /// The globs select no table on the source.
    NoTables { globs: String },
    /// A database that is not PostgreSQL.
    NotPostgres { connection: String, engine: String },
    /// A query the check needs failed.
    Unreadable { what: String, error: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::WalLevel { level } => write!(
                f,
                "the source's wal_level is `{level}`, logical replication needs `logical` (a restart; on RDS set rds.logical_replication = 1)"
            ),
            Problem::NoReplicationPrivilege { role } => write!(
                f,
                "role `{role}` on the source has neither REPLICATION nor membership in rds_replication"
            ),
            Problem::Slots { free, needed, max } => write!(
                f,
                "the source has {free} free replication slot(s) of {max}; starting needs {needed} (one for the subscription, up to {SYNC_WORKERS} for the initial sync)"
            ),
            Problem::WalSenders { free, needed, max } => write!(
                f,
                "the source has {free} free WAL sender(s) of {max}; starting needs {needed}"
            ),
            Problem::TargetOrigins { free, max } => write!(
                f,
                "the target can track {free} more subscription(s) (max_replication_slots = {max}); one more is needed"
            ),
            Problem::TargetWorkers { max, needed } => write!(
                f,
                "the target runs at most {max} logical replication worker(s); the subscription needs {needed}"
            ),
            Problem::NoReplicaIdentity { table } => write!(
                f,
                "table {table} has no primary key and no replica identity: its updates and deletes would fail on the source once published"
            ),
            Problem::MissingOnTarget { table } => {
                write!(f, "table {table} does not exist on the target")
            }
            Problem::NoTables { globs } => write!(f, "no table on the source matches {globs}"),
            Problem::NotPostgres { connection, engine } => write!(
                f,
                "`{connection}` is {engine}: logical replication is PostgreSQL to PostgreSQL"
            ),
            Problem::Unreadable { what, error } => write!(f, "cannot read {what}: {error}"),
        }
    }
}

/// What the checks found: the problems and the tables that would be published.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preflight {
    pub problems: Vec<Problem>,
    /// The selected source tables (`schema.table`).
    pub tables: Vec<String>,
}

impl Preflight {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What is already there for a run that resumes: its slot and subscription
/// need no new room.
#[derive(Debug, Clone, Copy, Default)]
pub struct Existing {
    pub slot: bool,
    pub subscription: bool,
}

/// Run every check. Nothing is changed on either side.
pub async fn preflight(
    source: (&str, &Db),
    target: (&str, &Db),
    include: &[String],
    exclude: &[String],
    existing: Existing,
) -> Preflight {
    let mut out = Preflight::default();
    let (src, tgt) = match (source.1, target.1) {
        (Db::Pg(s), Db::Pg(t)) => (s, t),
        _ => {
            for (name, db) in [source, target] {
                if !matches!(db, Db::Pg(_)) {
                    out.problems.push(Problem::NotPostgres {
                        connection: name.to_string(),
                        engine: db.engine().to_string(),
                    });
                }
            }
            return out;
        }
    };
    let src_cat = catalog::read(source.1).await;
    let tgt_cat = catalog::read(target.1).await;
    let (src_cat, tgt_cat) = match (src_cat, tgt_cat) {
        (Ok(s), Ok(t)) => (s, t),
        (s, t) => {
            for (side, r) in [("source", s.err()), ("target", t.err())] {
                if let Some(e) = r {
                    out.problems.push(Problem::Unreadable {
                        what: format!("the {side}'s tables"),
                        error: error_text(&e),
                    });
                }
            }
            return out;
        }
    };
    server(&mut out, src, tgt, existing).await;
    tables(&mut out, src, &src_cat, &tgt_cat, include, exclude).await;
    out
}

/// wal_level, privileges, slots and WAL senders on the source; origins and
/// workers on the target.
async fn server(out: &mut Preflight, src: &PgPool, tgt: &PgPool, existing: Existing) {
    let row: Result<(String, String, bool, i64, i64, i64, i64), _> = sqlx::query_as(
        "select current_setting('wal_level'), current_user::text,
                (select rolreplication or rolsuper from pg_roles where rolname = current_user)
                  or coalesce((select pg_has_role(current_user, oid, 'member') from pg_roles where rolname = 'rds_replication'), false),
                current_setting('max_replication_slots')::int8,
                (select count(*) from pg_replication_slots),
                current_setting('max_wal_senders')::int8,
                (select count(*) from pg_stat_replication)",
    )
    .fetch_one(src)
    .await;
    match row {
        Err(e) => out.problems.push(Problem::Unreadable {
            what: "the source's replication settings".into(),
            error: error_text(&e),
        }),
        Ok((level, role, may, max_slots, slots, max_senders, senders)) => {
            if level != "logical" {
                out.problems.push(Problem::WalLevel { level });
            }
            if !may {
                out.problems.push(Problem::NoReplicationPrivilege { role });
            }
            let needed = i64::from(!existing.slot) + SYNC_WORKERS;
            if max_slots - slots < needed {
                out.problems.push(Problem::Slots {
                    free: max_slots - slots,
                    needed,
                    max: max_slots,
                });
            }
            let needed = 1 + SYNC_WORKERS;
            if max_senders - senders < needed {
                out.problems.push(Problem::WalSenders {
                    free: max_senders - senders,
                    needed,
                    max: max_senders,
                });
            }
        }
    }
    let row: Result<(i64, i64, i64), _> = sqlx::query_as(
        "select current_setting('max_replication_slots')::int8,
                (select count(*) from pg_replication_origin),
                current_setting('max_logical_replication_workers')::int8",
    )
    .fetch_one(tgt)
    .await;
    match row {
        Err(e) => out.problems.push(Problem::Unreadable {
            what: "the target's replication settings".into(),
            error: error_text(&e),
        }),
        Ok((max, origins, workers)) => {
            if !existing.subscription && max - origins < 1 {
                out.problems.push(Problem::TargetOrigins {
                    free: max - origins,
                    max,
                });
            }
            // the apply worker and at least one table sync worker
            if workers < 2 {
                out.problems.push(Problem::TargetWorkers {
                    max: workers,
                    needed: 2,
                });
            }
        }
    }
}

/// Every selected table has a way to identify its rows, and exists on the target.
async fn tables(
    out: &mut Preflight,
    src: &PgPool,
    src_cat: &Catalog,
    tgt_cat: &Catalog,
    include: &[String],
    exclude: &[String],
) {
    let selected = catalog::select(src_cat, include, exclude);
    if selected.is_empty() {
        out.problems.push(Problem::NoTables {
            globs: include.join(", "),
        });
        return;
    }
    let oids: Vec<i64> = selected.iter().map(|t| i64::from(t.oid)).collect();
    // relreplident: d = the primary key, n = nothing, f = whole row, i = an index
    let idents: Result<Vec<(i64, String)>, _> = sqlx::query_as(
        "select oid::int8, relreplident::text from pg_class where oid::int8 = any($1)",
    )
    .bind(&oids)
    .fetch_all(src)
    .await;
    let idents = match idents {
        Ok(v) => v,
        Err(e) => {
            out.problems.push(Problem::Unreadable {
                what: "the source tables' replica identity".into(),
                error: error_text(&e),
            });
            Vec::new()
        }
    };
    for t in &selected {
        let name = t.qualified_name();
        let ident = idents
            .iter()
            .find(|(oid, _)| *oid == i64::from(t.oid))
            .map(|(_, i)| i.as_str());
        let identified = match ident {
            Some("f") | Some("i") => true,
            Some("d") => !t.key.is_empty(),
            _ => false,
        };
        if !identified && !idents.is_empty() {
            out.problems.push(Problem::NoReplicaIdentity {
                table: name.clone(),
            });
        }
        if tgt_cat.find(&name).is_none() {
            out.problems.push(Problem::MissingOnTarget {
                table: name.clone(),
            });
        }
        out.tables.push(name);
    }
}
