//! Checksums by key range, and the bisection that turns a differing range into
//! named rows.
//!
//! A worker holds one read-only connection per side. For a range (a whole table, or
//! a chunk of the copy planner) it asks both sides at once for `count(*)` and the sum
//! of the row hashes. Equal: done. Different:
//! - one side has no rows in the range: every row of the other side is missing (or
//!   extra) on the target; as many as the list has room for are fetched and named,
//!   the rest counted;
//! - more than [`ROW_LIMIT`] rows on a side: the range is cut into about [`PARTS`]
//!   runs of rows at keys taken from the side with more rows; the runs' checksums
//!   come from one grouped query per side (server mode) or one query per run
//!   (generic mode), and the differing runs go round again;
//! - otherwise the rows of the range are fetched from both sides and compared row by
//!   row ([`super::rows::compare`]). At most [`ROW_LIMIT`] rows per side are held.

use super::ops::{self, Sum};
use super::report::{Findings, Kind};
use super::rows::{self, key_text, RowDiff};
use super::session::{Conn, Role, SideError};
use super::sql::{SideSql, Values};
use super::tables::TableJob;
use crate::db::plan::{Chunk, KeyVal};
use std::sync::Mutex;

/// Ranges with at most this many rows on each side are compared row by row:
/// fetching a thousand rows costs less than another round of checksums.
pub const ROW_LIMIT: i64 = 1000;
/// Runs a differing range is cut into (a 50,000-row chunk: runs of ~800 rows).
const PARTS: i64 = 64;

/// One connection per side, used by one piece of work at a time.
pub struct Worker {
    pub src: Conn,
    pub tgt: Conn,
}

fn err(role: Role, what: &str, e: &sqlx::Error) -> SideError {
    SideError::from_sql(role, what, e)
}

impl Worker {
    pub fn conn(&mut self, role: Role) -> &mut Conn {
        match role {
            Role::Source => &mut self.src,
            Role::Target => &mut self.tgt,
        }
    }

    /// Set a savepoint on both sides before a piece of work.
    pub async fn begin(&mut self) -> Result<(), SideError> {
        self.src.savepoint(Role::Source).await?;
        self.tgt.savepoint(Role::Target).await
    }

    /// Keep (`ok`) or undo the work since [`Worker::begin`].
    pub async fn end(&mut self, ok: bool) -> Result<(), SideError> {
        self.src.settle(Role::Source, ok).await?;
        self.tgt.settle(Role::Target, ok).await
    }

    /// Both sides' checksums of `chunk`, computed at the same time.
    pub async fn sums(&mut self, job: &TableJob, chunk: &Chunk) -> Result<(Sum, Sum), SideError> {
        let (s, t) = (
            SideSql::new(job, Role::Source),
            SideSql::new(job, Role::Target),
        );
        let (cs, ct) = (s.range(chunk), t.range(chunk));
        let (a, b) = tokio::join!(
            ops::checksum(&mut self.src, s, &cs),
            ops::checksum(&mut self.tgt, t, &ct)
        );
        Ok((
            a.map_err(|e| err(Role::Source, &format!("checksum of {}", job.name), &e))?,
            b.map_err(|e| err(Role::Target, &format!("checksum of {}", job.name), &e))?,
        ))
    }

    /// Server mode: both sides' sums of the runs `points` cut `chunk` into, one
    /// query per side (`None` in generic mode: each run is checksummed alone).
    pub async fn grouped(
        &mut self,
        job: &TableJob,
        chunk: &Chunk,
        points: &[Vec<KeyVal>],
    ) -> Result<Option<Vec<(Sum, Sum)>>, SideError> {
        let (Conn::Pg(a), Conn::Pg(b)) = (&mut self.src, &mut self.tgt) else {
            return Ok(None);
        };
        if !matches!(job.mode, super::tables::Mode::Server(_)) {
            return Ok(None);
        }
        let (s, t) = (
            SideSql::new(job, Role::Source),
            SideSql::new(job, Role::Target),
        );
        let (cs, ct) = (s.range(chunk), t.range(chunk));
        let (x, y) = tokio::join!(
            ops::grouped_sums(a, s, &cs, points),
            ops::grouped_sums(b, t, &ct, points)
        );
        let x = x.map_err(|e| err(Role::Source, &format!("checksum of {}", job.name), &e))?;
        let y = y.map_err(|e| err(Role::Target, &format!("checksum of {}", job.name), &e))?;
        Ok(Some(x.into_iter().zip(y).collect()))
    }

    /// Both sides' rows of `chunk`, in key order.
    pub async fn rows(
        &mut self,
        job: &TableJob,
        chunk: &Chunk,
    ) -> Result<(Vec<Values>, Vec<Values>), SideError> {
        let (s, t) = (
            SideSql::new(job, Role::Source),
            SideSql::new(job, Role::Target),
        );
        let (cs, ct) = (s.range(chunk), t.range(chunk));
        let (a, b) = tokio::join!(
            ops::rows(&mut self.src, s, &cs, None),
            ops::rows(&mut self.tgt, t, &ct, None)
        );
        Ok((
            a.map_err(|e| err(Role::Source, &format!("reading rows of {}", job.name), &e))?,
            b.map_err(|e| err(Role::Target, &format!("reading rows of {}", job.name), &e))?,
        ))
    }
}

/// Record row differences of table `t`.
pub fn record(
    findings: &Mutex<Findings>,
    job: &TableJob,
    t: usize,
    diffs: Vec<RowDiff>,
    kind_override: Option<Kind>,
) {
    let Ok(mut f) = findings.lock() else { return };
    for d in diffs {
        let kind = kind_override.unwrap_or(match &d {
            RowDiff::Missing { .. } => Kind::Missing,
            RowDiff::Extra { .. } => Kind::Extra,
            RowDiff::Changed { .. } => Kind::Changed,
            RowDiff::Copies { src, tgt, .. } if src > tgt => Kind::Missing,
            RowDiff::Copies { .. } => Kind::Extra,
        });
        f.add(Some(t), kind, d.line(&job.name), d.rows());
    }
}

/// `chunk` cut at `points` (ascending keys inside it).
fn cut(chunk: &Chunk, points: Vec<Vec<KeyVal>>) -> Vec<Chunk> {
    let mut out = Vec::with_capacity(points.len() + 1);
    let mut lo = chunk.lo.clone();
    for p in points {
        out.push(Chunk {
            lo: lo.take(),
            hi: Some(p.clone()),
            est_rows: 0,
        });
        lo = Some(p);
    }
    out.push(Chunk {
        lo,
        hi: chunk.hi.clone(),
        est_rows: 0,
    });
    out
}

/// What one chunk came to.
#[derive(Debug, Clone, Copy)]
pub struct ChunkResult {
    /// Rows in the chunk on the source and on the target.
    pub rows: (i64, i64),
    pub differed: bool,
}

/// Compare `chunk` of table `t` (whose checksums may be `known` already),
/// bisecting down to the rows when it differs.
pub async fn check_chunk(
    w: &mut Worker,
    job: &TableJob,
    t: usize,
    chunk: Chunk,
    known: Option<(Sum, Sum)>,
    findings: &Mutex<Findings>,
) -> Result<ChunkResult, SideError> {
    let (a, b) = match known {
        Some(k) => k,
        None => w.sums(job, &chunk).await?,
    };
    let rows = (a.count, b.count);
    if a == b {
        return Ok(ChunkResult {
            rows,
            differed: false,
        });
    }
    let mut stack = vec![(chunk, a, b)];
    while let Some((c, a, b)) = stack.pop() {
        if a.count == 0 || b.count == 0 {
            one_sided(w, job, t, &c, &a, &b, findings).await?;
            continue;
        }
        let n = a.count.max(b.count);
        if n > ROW_LIMIT {
            let role = if a.count >= b.count {
                Role::Source
            } else {
                Role::Target
            };
            let s = SideSql::new(job, role);
            let every = (n + PARTS - 1) / PARTS;
            let points = ops::split(w.conn(role), s, &s.range(&c), every as u64)
                .await
                .map_err(|e| err(role, &format!("bisecting {}", job.name), &e))?;
            if !points.is_empty() {
                let sums = w.grouped(job, &c, &points).await?;
                let mut differing = Vec::new();
                for (i, sub) in cut(&c, points).into_iter().enumerate() {
                    let (x, y) = match &sums {
                        Some(s) => s.get(i).cloned().unwrap_or_default(),
                        None => w.sums(job, &sub).await?,
                    };
                    if x != y {
                        differing.push((sub, x, y));
                    }
                }
                // lowest keys first: the stack pops from the end
                stack.extend(differing.into_iter().rev());
                continue;
            }
        }
        let (sr, tr) = w.rows(job, &c).await?;
        let diffs = rows::compare(job, sr, tr);
        if diffs.is_empty() {
            if let Ok(mut f) = findings.lock() {
                f.add(
                    Some(t),
                    Kind::Other,
                    format!(
                        "{} rows {}: checksums differ ({} vs {} rows) but the rows compare equal",
                        job.name,
                        c.label(),
                        a.count,
                        b.count
                    ),
                    1,
                );
            }
        }
        record(findings, job, t, diffs, None);
    }
    Ok(ChunkResult {
        rows,
        differed: true,
    })
}

/// A range with rows on one side only: name as many as there is room for.
async fn one_sided(
    w: &mut Worker,
    job: &TableJob,
    t: usize,
    c: &Chunk,
    a: &Sum,
    b: &Sum,
    findings: &Mutex<Findings>,
) -> Result<(), SideError> {
    let (role, kind, n) = if b.count == 0 {
        (Role::Source, Kind::Missing, a.count.max(0) as u64)
    } else {
        (Role::Target, Kind::Extra, b.count.max(0) as u64)
    };
    let room = findings.lock().map(|f| f.room() as u64).unwrap_or(0).min(n);
    let mut listed = Vec::new();
    if room > 0 {
        let s = SideSql::new(job, role);
        listed = ops::rows(w.conn(role), s, &s.range(c), Some(room))
            .await
            .map_err(|e| err(role, &format!("reading rows of {}", job.name), &e))?;
    }
    let diffs: Vec<RowDiff> = listed
        .iter()
        .map(|r| {
            let key = key_text(job, r);
            if kind == Kind::Missing {
                RowDiff::Missing { key }
            } else {
                RowDiff::Extra { key }
            }
        })
        .collect();
    let shown = diffs.len() as u64;
    record(findings, job, t, diffs, None);
    if let Ok(mut f) = findings.lock() {
        f.add_unlisted(t, kind, n.saturating_sub(shown));
    }
    Ok(())
}
