//! The row-hash strategy, for tables that cannot be cut into key ranges that mean
//! the same rows on both sides (no primary key, a key only one side has, a key that
//! may sort differently). It compares the *multiset* of row hashes, cheapest first:
//! 1. the whole table's count and hash sum on each side (one scan): equal, done;
//! 2. count and hash sum per bucket of [`ops::BUCKETS`] (by the hash's low bits);
//! 3. for the differing buckets, how many rows have each hash;
//! 4. one row for each differing hash (at most [`HASH_FETCH_CAP`]), fetched by hash.
//!
//! A table with a key then pairs the rows that differ by key (a changed row is a hash
//! missing on the target plus one extra, with the same key); a table without one
//! reports each differing row with its number of copies on each side.

use super::bisect::{record, Worker};
use super::ops;
use super::report::{Findings, Kind};
use super::rows::{compare, row_text, RowDiff};
use super::session::{Role, SideError};
use super::sql::{SideSql, Values};
use super::tables::TableJob;
use crate::db::plan::Chunk;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// Differing row hashes fetched and named at most; the rest are counted.
const HASH_FETCH_CAP: usize = 10_000;
/// Copies of one row put into the key pairing at most.
const COPIES_CAP: i64 = 100;

fn err(role: Role, what: &str, job: &TableJob, e: &sqlx::Error) -> SideError {
    SideError::from_sql(role, &format!("{what} of {}", job.name), e)
}

/// Compare table `t` by row hashes. Returns the row counts of both sides.
pub async fn check_table(
    w: &mut Worker,
    job: &TableJob,
    t: usize,
    findings: &Mutex<Findings>,
) -> Result<(i64, i64), SideError> {
    let whole = Chunk {
        lo: None,
        hi: None,
        est_rows: 0,
    };
    let (a, b) = w.sums(job, &whole).await?;
    let rows = (a.count, b.count);
    if a == b {
        return Ok(rows);
    }
    let (s, g) = (
        SideSql::new(job, Role::Source),
        SideSql::new(job, Role::Target),
    );
    let (ba, bb) = tokio::join!(
        ops::bucket_sums(&mut w.src, s),
        ops::bucket_sums(&mut w.tgt, g)
    );
    let ba = ba.map_err(|e| err(Role::Source, "hashing rows", job, &e))?;
    let bb = bb.map_err(|e| err(Role::Target, "hashing rows", job, &e))?;
    let keys: BTreeSet<i32> = ba.keys().chain(bb.keys()).copied().collect();
    let buckets: Vec<i32> = keys
        .into_iter()
        .filter(|k| ba.get(k) != bb.get(k))
        .collect();
    let (ha, hb) = tokio::join!(
        ops::hash_counts(&mut w.src, s, &buckets),
        ops::hash_counts(&mut w.tgt, g, &buckets)
    );
    let ha = ha.map_err(|e| err(Role::Source, "hashing rows", job, &e))?;
    let hb = hb.map_err(|e| err(Role::Target, "hashing rows", job, &e))?;
    let hashes: BTreeSet<i64> = ha.keys().chain(hb.keys()).copied().collect();
    let differing: Vec<(i64, i64, i64)> = hashes
        .into_iter()
        .map(|h| {
            (
                h,
                ha.get(&h).copied().unwrap_or(0),
                hb.get(&h).copied().unwrap_or(0),
            )
        })
        .filter(|(_, x, y)| x != y)
        .collect();
    let (fetch, rest) = differing.split_at(differing.len().min(HASH_FETCH_CAP));
    let src_h: Vec<i64> = fetch.iter().filter(|d| d.1 > d.2).map(|d| d.0).collect();
    let tgt_h: Vec<i64> = fetch.iter().filter(|d| d.2 > d.1).map(|d| d.0).collect();
    let (ra, rb) = tokio::join!(
        ops::rows_by_hash(&mut w.src, s, &src_h),
        ops::rows_by_hash(&mut w.tgt, g, &tgt_h)
    );
    let ra = ra.map_err(|e| err(Role::Source, "reading differing rows", job, &e))?;
    let rb = rb.map_err(|e| err(Role::Target, "reading differing rows", job, &e))?;
    let diffs = pair_up(job, fetch, &ra, &rb);
    record(findings, job, t, diffs, None);
    if let Ok(mut f) = findings.lock() {
        let unlisted: u64 = rest.iter().map(|d| d.1.abs_diff(d.2)).sum();
        f.add_unlisted(t, Kind::Other, unlisted);
    }
    Ok(rows)
}

/// Differences from the differing hashes `(hash, source copies, target copies)`.
fn pair_up(
    job: &TableJob,
    fetch: &[(i64, i64, i64)],
    ra: &HashMap<i64, Values>,
    rb: &HashMap<i64, Values>,
) -> Vec<RowDiff> {
    if job.key.is_empty() {
        return fetch
            .iter()
            .filter_map(|(h, x, y)| {
                let row = ra.get(h).or_else(|| rb.get(h))?;
                Some(RowDiff::Copies {
                    row: row_text(job, row),
                    src: *x,
                    tgt: *y,
                })
            })
            .collect();
    }
    let mut src_rows = Vec::new();
    let mut tgt_rows = Vec::new();
    for (h, x, y) in fetch {
        let n = (x - y).abs().min(COPIES_CAP);
        let (side, from) = if x > y {
            (&mut src_rows, ra)
        } else {
            (&mut tgt_rows, rb)
        };
        if let Some(r) = from.get(h) {
            for _ in 0..n {
                side.push(r.clone());
            }
        }
    }
    compare(job, src_rows, tgt_rows)
}
