//! Which run a copy step's checkpoints on the target belong to. A resume (the same
//! journal, so the same run id) continues from them; a new run (another journal) must
//! not take an earlier run's checkpoints for its own work — after a rehearsal on the
//! same target, the night's copy would otherwise skip every chunk and leave the
//! rehearsal's rows in place. It starts over instead: the step's checkpoints and plan
//! are forgotten, and `truncate = true` applies again.
//!
//! PostgreSQL: `ferry.copy_run(step primary key, run, claimed_at)`; SQLite:
//! `ferry_copy_run`. Created with the checkpoint tables ([`super::checkpoint::ensure`]).

use crate::db::Db;
use sqlx::Row;

fn table(db: &Db) -> &'static str {
    match db {
        Db::Pg(_) => "ferry.copy_run",
        Db::Sqlite(_) => "ferry_copy_run",
        Db::MySql(_) => "",
    }
}

/// The run that owns `step`'s checkpoints on this target, if one is recorded.
pub async fn get(db: &Db, step: &str) -> Result<Option<String>, sqlx::Error> {
    let sql = format!(
        "select run from {} where step = {}",
        table(db),
        super::checkpoint::placeholder(db, 1)
    );
    let row = match db {
        Db::Pg(p) => sqlx::query(&sql)
            .bind(step)
            .fetch_optional(p)
            .await?
            .map(|r| r.try_get::<String, _>(0)),
        Db::Sqlite(p) => sqlx::query(&sql)
            .bind(step)
            .fetch_optional(p)
            .await?
            .map(|r| r.try_get::<String, _>(0)),
        Db::MySql(_) => return Err(super::not_a_target()),
    };
    row.transpose()
}

/// Record `run` as the owner of `step`; with `forget`, first drop the step's
/// checkpoints and plan (another run's), in the same transaction.
pub async fn claim(db: &Db, step: &str, run: &str, forget: bool) -> Result<(), sqlx::Error> {
    match db {
        Db::Pg(p) => {
            let mut tx = p.begin().await?;
            if forget {
                for t in [
                    "ferry.copy_checkpoint",
                    "ferry.copy_plan",
                    "ferry.copy_mapped",
                ] {
                    sqlx::query(&format!("delete from {t} where step = $1"))
                        .bind(step)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            sqlx::query(
                "insert into ferry.copy_run (step, run, claimed_at) values ($1, $2, now()) \
                 on conflict (step) do update set run = excluded.run, claimed_at = excluded.claimed_at",
            )
            .bind(step)
            .bind(run)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }
        Db::Sqlite(p) => {
            let mut tx = p.begin().await?;
            if forget {
                for t in ["ferry_copy_checkpoint", "ferry_copy_plan"] {
                    sqlx::query(&format!("delete from {t} where step = ?"))
                        .bind(step)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            sqlx::query(
                "insert into ferry_copy_run (step, run, claimed_at) values (?, ?, datetime('now')) \
                 on conflict (step) do update set run = excluded.run, claimed_at = excluded.claimed_at",
            )
            .bind(step)
            .bind(run)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }
        Db::MySql(_) => Err(super::not_a_target()),
    }
}
