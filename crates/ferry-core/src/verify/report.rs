//! What a verification found, while it runs ([`Findings`], shared by the workers),
//! and each table's [`TableResult`] for the step's
//! [`VerifyReport`](crate::results::verify::VerifyReport).

use crate::results::verify::TableResult;
use crate::units::{count, thousands};
use std::collections::HashSet;

/// Row differences of a table by kind.
#[derive(Debug, Clone, Default)]
pub struct RowCounts {
    pub missing: u64,
    pub extra: u64,
    pub changed: u64,
}

/// Everything known about one table so far.
#[derive(Debug, Clone, Default)]
pub struct TableState {
    pub name: String,
    pub schema_diffs: Option<u64>,
    pub counts: Option<(i64, i64)>,
    pub chunks_total: u64,
    pub chunks_done: u64,
    pub chunks_differ: u64,
    /// Source rows covered by finished checksum ranges.
    pub rows_checked: u64,
    pub checksums_done: bool,
    /// Row counts of both sides: of the whole table when it was checksummed whole
    /// first, and summed over the finished chunks.
    pub root_counts: Option<(i64, i64)>,
    pub sides: (i64, i64),
    pub hashed: bool,
    pub rows: RowCounts,
    /// Sample: rows compared, rows that differ, rows in the table.
    pub sample: Option<(u64, u64, u64)>,
    pub sample_note: Option<String>,
    pub other_diffs: u64,
    /// Differences recorded for this table (listed or not).
    pub diffs: u64,
    pub errors: Vec<String>,
}

impl TableState {
    pub fn differences(&self) -> u64 {
        self.diffs + self.errors.len() as u64
    }

    pub fn state(&self) -> &'static str {
        if !self.errors.is_empty() {
            "failed"
        } else if self.differences() > 0 {
            "differs"
        } else {
            "equal"
        }
    }
}

/// The kind of a difference, for per-table accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Schema,
    Counts,
    Missing,
    Extra,
    Changed,
    Sample,
    Other,
}

/// Findings shared by the workers (behind a mutex; never held across an await).
#[derive(Debug, Default)]
pub struct Findings {
    max: usize,
    pub lines: Vec<String>,
    seen: HashSet<String>,
    pub more: u64,
    pub tables: Vec<TableState>,
    pub notes: Vec<String>,
}

impl Findings {
    pub fn new(max: usize, names: &[String]) -> Findings {
        Findings {
            max: max.max(1),
            tables: names
                .iter()
                .map(|n| TableState {
                    name: n.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Room left in the list of differences.
    pub fn room(&self) -> usize {
        self.max.saturating_sub(self.lines.len())
    }

    pub fn table(&mut self, i: usize) -> Option<&mut TableState> {
        self.tables.get_mut(i)
    }

    /// Record a difference of table `t` (`None`: not about one table) that stands for
    /// `rows` rows (1 but for a table without a key, whose row may have several copies).
    /// The same line twice (a checksum and the sample finding the same row) counts once.
    pub fn add(&mut self, t: Option<usize>, kind: Kind, line: String, rows: u64) {
        if !self.seen.insert(line.clone()) {
            return;
        }
        if let Some(ts) = t.and_then(|i| self.tables.get_mut(i)) {
            ts.diffs += rows;
            match kind {
                Kind::Schema => *ts.schema_diffs.get_or_insert(0) += 1,
                Kind::Missing => ts.rows.missing += rows,
                Kind::Extra => ts.rows.extra += rows,
                Kind::Changed => ts.rows.changed += rows,
                Kind::Counts | Kind::Sample => {}
                Kind::Other => ts.other_diffs += rows,
            }
        }
        if self.lines.len() < self.max {
            self.lines.push(line);
        } else {
            self.more += 1;
        }
    }

    /// Differences counted but not listed (rows beyond what was worth fetching).
    pub fn add_unlisted(&mut self, t: usize, kind: Kind, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(ts) = self.tables.get_mut(t) {
            ts.diffs += n;
            match kind {
                Kind::Missing => ts.rows.missing += n,
                Kind::Extra => ts.rows.extra += n,
                Kind::Changed => ts.rows.changed += n,
                _ => ts.other_diffs += n,
            }
        }
        self.more += n;
    }

    pub fn error(&mut self, t: usize, text: String) {
        let name = self
            .tables
            .get(t)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let line = format!("{name}: could not compare: {text}");
        if let Some(ts) = self.tables.get_mut(t) {
            ts.errors.push(text);
        }
        if self.seen.insert(line.clone()) {
            if self.lines.len() < self.max {
                self.lines.push(line);
            } else {
                self.more += 1;
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.lines.len() as u64 + self.more
    }
}

/// Per-check texts and a summary of one table.
pub fn table_result(t: &TableState, checks: &[&str]) -> TableResult {
    let has = |c: &str| checks.contains(&c);
    let schema = has("schema").then(|| match t.schema_diffs {
        Some(0) => "equal".to_string(),
        Some(n) => format!("{n} differences"),
        None => "not checked".into(),
    });
    let counts = has("counts").then(|| match t.counts {
        Some((a, b)) if a == b => format!("{} = {}", thousands(a), thousands(b)),
        Some((a, b)) => format!("{} ≠ {} (target {:+})", thousands(a), thousands(b), b - a),
        None => "not counted".into(),
    });
    let checksums = has("checksums").then(|| {
        let how = if t.hashed { "row hashes" } else { "chunks" };
        let rows = t.rows.missing + t.rows.extra + t.rows.changed + t.other_diffs;
        if !t.checksums_done {
            if t.hashed {
                "not finished".to_string()
            } else {
                format!(
                    "{} of {} chunks checked (not finished)",
                    t.chunks_done, t.chunks_total
                )
            }
        } else if rows == 0 && t.chunks_differ == 0 {
            if t.hashed {
                "equal (row hashes)".to_string()
            } else if t.chunks_total <= 1 {
                "equal".to_string()
            } else {
                format!("{} chunks equal", t.chunks_total)
            }
        } else {
            let mut parts = Vec::new();
            for (n, what) in [
                (t.rows.missing, "missing"),
                (t.rows.extra, "extra"),
                (t.rows.changed, "changed"),
            ] {
                if n > 0 {
                    parts.push(format!("{n} {what}"));
                }
            }
            if t.other_diffs > 0 {
                parts.push(format!("{} other", t.other_diffs));
            }
            if t.hashed {
                format!("rows differ ({how}): {}", parts.join(", "))
            } else {
                format!(
                    "{} of {} chunks differ: {}",
                    t.chunks_differ,
                    t.chunks_total,
                    parts.join(", ")
                )
            }
        }
    });
    let sample = has("sample").then(|| match (t.sample, &t.sample_note) {
        (_, Some(note)) => note.clone(),
        (Some((n, d, of)), _) => {
            let pct = if of > 0 {
                format!(" ({:.2}% of {})", 100.0 * n as f64 / of as f64, count(of))
            } else {
                String::new()
            };
            if d == 0 {
                format!("{n} rows{pct} equal")
            } else {
                format!("{d} of {n} rows{pct} differ")
            }
        }
        (None, _) => "not sampled".into(),
    });
    let diffs = t.differences();
    let complete = (!has("counts") || t.counts.is_some())
        && (!has("checksums") || t.checksums_done)
        && (!has("schema") || t.schema_diffs.is_some())
        && (!has("sample") || t.sample.is_some() || t.sample_note.is_some());
    let summary = if let Some(e) = t.errors.first() {
        format!("could not compare: {e}")
    } else if diffs > 0 {
        let mut parts = Vec::new();
        if let Some(n) = t.schema_diffs.filter(|n| *n > 0) {
            parts.push(format!("schema {n}"));
        }
        if let Some((a, b)) = t.counts.filter(|(a, b)| a != b) {
            parts.push(format!("counts {a} vs {b}"));
        }
        for (n, what) in [
            (t.rows.missing, "missing on target"),
            (t.rows.extra, "extra on target"),
            (t.rows.changed, "changed"),
        ] {
            if n > 0 {
                parts.push(format!("{n} rows {what}"));
            }
        }
        if let Some((_, d, _)) = t.sample.filter(|s| s.1 > 0) {
            parts.push(format!("sample {d} rows differ"));
        }
        format!("{diffs} differences: {}", parts.join(", "))
    } else if complete {
        "equal".into()
    } else {
        "no differences in what was checked before the time limit".into()
    };
    TableResult {
        table: t.name.clone(),
        ok: diffs == 0 && complete,
        schema,
        counts,
        checksums,
        sample,
        differences: diffs,
        summary,
    }
}
