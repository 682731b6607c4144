//! The sample check: `sample` random keys from the source (`TABLESAMPLE SYSTEM` on
//! a large PostgreSQL table, so only a few pages are read; `order by random()` on a
//! small one and on SQLite), their rows fetched from both sides by key, in batches,
//! and compared column by column. It finds rows missing on the target and rows that
//! changed; rows only the target has are the checksums' business.

use super::bisect::{record, Worker};
use super::ops;
use super::report::Findings;
use super::rows::compare;
use super::session::{Role, SideError};
use super::sql::SideSql;
use super::tables::TableJob;
use std::sync::Mutex;

/// Keys looked up per query.
const BATCH: usize = 200;

/// Sample table `t`: `n` rows, out of `of` rows in the table (for the fraction shown).
pub async fn sample_table(
    w: &mut Worker,
    job: &TableJob,
    t: usize,
    n: u64,
    of: u64,
    findings: &Mutex<Findings>,
) -> Result<(), SideError> {
    if job.key.is_empty() {
        if let Ok(mut f) = findings.lock() {
            if let Some(ts) = f.table(t) {
                ts.sample_note =
                    Some("not sampled: no primary key (checksums compare every row)".into());
            }
        }
        return Ok(());
    }
    let (s, g) = (
        SideSql::new(job, Role::Source),
        SideSql::new(job, Role::Target),
    );
    let keys = ops::sample_keys(&mut w.src, s, n).await.map_err(|e| {
        SideError::from_sql(Role::Source, &format!("sampling keys of {}", job.name), &e)
    })?;
    let mut differ = 0u64;
    for batch in keys.chunks(BATCH) {
        let (cs, cg) = (s.key_in(batch), g.key_in(batch));
        let (a, b) = tokio::join!(
            ops::rows(&mut w.src, s, &cs, None),
            ops::rows(&mut w.tgt, g, &cg, None)
        );
        let a = a.map_err(|e| {
            SideError::from_sql(
                Role::Source,
                &format!("reading sampled rows of {}", job.name),
                &e,
            )
        })?;
        let b = b.map_err(|e| {
            SideError::from_sql(
                Role::Target,
                &format!("reading sampled rows of {}", job.name),
                &e,
            )
        })?;
        let diffs = compare(job, a, b);
        differ += diffs.len() as u64;
        record(findings, job, t, diffs, None);
    }
    if let Ok(mut f) = findings.lock() {
        if let Some(ts) = f.table(t) {
            ts.sample = Some((keys.len() as u64, differ, of.max(keys.len() as u64)));
        }
    }
    Ok(())
}
