//! Rehearsals for a run (`rehearsals = GLOB` in `[runbook]`, `--rehearsals GLOB`):
//! the journals of earlier runs of the same runbook, read into the typed
//! [`Rehearsal`] the engine's snapshot carries. The figures are `ferry stats`'
//! ([`super::stats`]): the same steps counted, the same medians and p90s.
//!
//! A journal of another runbook is refused (the glob picked the wrong files);
//! one of an earlier version of this runbook is used, with a warning, its
//! steps matched by id. Fewer than five journals is a warning too (seeds/000).
//!
//! Besides the timings, the rates ETAs are worked out from: each copy's rows
//! and bytes per second per table (from its journaled result) and how much its
//! tables overlapped, and each long step's units per second over its duration.

use super::stats::{active_secs, summarize, Timings};
use super::ReportError;
use crate::results::copy::CopyReport;
use crate::runbook::globs::glob_match;
use crate::vocab::rehearsal::{
    CopyRates, Rehearsal, StepRate, TableRate, Timing, ENOUGH_REHEARSALS,
};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Why the rehearsals cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RehearsalError {
    #[error("rehearsals `{pattern}` match no journal")]
    NoMatch { pattern: String },
    #[error("{path} is a journal of runbook `{theirs}`, not `{ours}`: rehearsals must be runs of this runbook")]
    OtherRunbook {
        path: String,
        theirs: String,
        ours: String,
    },
    #[error("rehearsal {0}")]
    Unreadable(#[from] ReportError),
}

/// The rehearsals read, and what the operator should know about them.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub rehearsal: Rehearsal,
    pub journals: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

/// The files a glob names: `*` within a path component (any number of
/// components may have one), relative to `base` unless absolute. Sorted.
pub fn expand(pattern: &str, base: &Path) -> Vec<PathBuf> {
    let p = Path::new(pattern);
    let mut found = vec![if p.is_absolute() {
        PathBuf::from("/")
    } else {
        base.to_path_buf()
    }];
    for c in p.components() {
        let part = match c {
            Component::Normal(s) => s.to_string_lossy().into_owned(),
            Component::ParentDir => "..".into(),
            _ => continue,
        };
        found = found
            .into_iter()
            .flat_map(|dir| -> Vec<PathBuf> {
                if !part.contains('*') {
                    return vec![dir.join(&part)];
                }
                let Ok(rd) = std::fs::read_dir(&dir) else {
                    return Vec::new();
                };
                rd.filter_map(|e| e.ok())
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        // `*` does not match a hidden file, as in a shell
                        !n.starts_with('.') && glob_match(&part, &n)
                    })
                    .map(|e| e.path())
                    .collect()
            })
            .collect();
    }
    let mut files: Vec<PathBuf> = found.into_iter().filter(|f| f.is_file()).collect();
    files.sort();
    files
}

/// Read the journals `pattern` names (relative to `base`), leaving out `skip`
/// (the run's own journal), as rehearsals of runbook `name` whose text hashes
/// to `sha256`.
pub fn load(
    pattern: &str,
    base: &Path,
    name: &str,
    sha256: &str,
    skip: Option<&Path>,
) -> Result<Loaded, RehearsalError> {
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    };
    let files: Vec<PathBuf> = expand(pattern, base)
        .into_iter()
        .filter(|f| !skip.is_some_and(|s| same(f, s)))
        .collect();
    if files.is_empty() {
        return Err(RehearsalError::NoMatch {
            pattern: pattern.to_string(),
        });
    }
    let mut models = Vec::new();
    let mut older = 0;
    for f in &files {
        let m = super::load(f)?;
        if m.runbook.name != name {
            return Err(RehearsalError::OtherRunbook {
                path: f.display().to_string(),
                theirs: m.runbook.name.clone(),
                ours: name.to_string(),
            });
        }
        if m.runbook.sha256 != sha256 {
            older += 1;
        }
        models.push(m);
    }
    let mut warnings = Vec::new();
    if models.len() < ENOUGH_REHEARSALS {
        warnings.push(format!(
            "only {} rehearsal journal(s); seeds/000 asks for at least {ENOUGH_REHEARSALS}: the ETAs and the rollback budget are rough",
            models.len()
        ));
    }
    if older > 0 {
        warnings.push(format!(
            "{older} rehearsal(s) ran another version of the runbook: their steps are matched by id"
        ));
    }
    if let Some(broken) = models.iter().find(|m| !m.journal.chain_ok) {
        warnings.push(format!(
            "{}: hash chain broken at line {}; its timings are not trustworthy",
            broken.journal.path,
            broken.journal.broken_line.unwrap_or(0)
        ));
    }
    Ok(Loaded {
        rehearsal: from_reports(&models),
        journals: files,
        warnings,
    })
}

/// The typed figures of a set of reports of one runbook.
pub fn from_reports(reports: &[super::model::ReportModel]) -> Rehearsal {
    let t = Timings::gather(reports);
    let timings = |m: &BTreeMap<String, Vec<f64>>| -> BTreeMap<String, Timing> {
        m.iter()
            .filter_map(|(id, v)| summarize(v).map(|s| (id.clone(), timing(&s))))
            .collect()
    };
    Rehearsal {
        journals: reports.len(),
        steps: timings(&t.per_step),
        rollbacks: timings(&t.rollbacks),
        total: summarize(&t.totals).map(|s| timing(&s)),
        copies: copy_rates(reports),
        rates: step_rates(reports),
    }
}

fn median(v: &[f64]) -> Option<f64> {
    summarize(v).map(|s| s.median)
}

/// Per copy step, each table's rows/s, bytes/s and rows, and how much the
/// tables overlapped, from the copies' journaled results (medians).
fn copy_rates(reports: &[super::model::ReportModel]) -> BTreeMap<String, CopyRates> {
    /// Rows/s, bytes/s and rows of one table, one value per rehearsed copy.
    type Samples = (Vec<f64>, Vec<f64>, Vec<f64>);
    #[derive(Default)]
    struct Seen {
        tables: BTreeMap<String, Samples>,
        overlap: Vec<f64>,
    }
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    for res in reports.iter().flat_map(|r| &r.results) {
        if res.kind != "copy" {
            continue;
        }
        let Ok(c) = serde_json::from_value::<CopyReport>(res.data.clone()) else {
            continue;
        };
        let step = seen.entry(res.step.clone()).or_default();
        let mut busy_ms = 0;
        for t in c.tables.iter().filter(|t| t.duration_ms > 0) {
            busy_ms += t.duration_ms;
            let secs = t.duration_ms as f64 / 1000.0;
            let e = step.tables.entry(t.table.clone()).or_default();
            e.0.push(t.rows_per_sec);
            e.1.push(t.bytes as f64 / secs);
            e.2.push(t.rows as f64);
        }
        if c.duration_ms > 0 && busy_ms > 0 {
            step.overlap
                .push((busy_ms as f64 / c.duration_ms as f64).max(1.0));
        }
    }
    seen.into_iter()
        .map(|(step, s)| {
            let tables = s
                .tables
                .into_iter()
                .filter_map(|(name, (rows_s, bytes_s, rows))| {
                    Some((
                        name,
                        TableRate {
                            n: rows_s.len(),
                            rows_per_sec: median(&rows_s)?,
                            bytes_per_sec: median(&bytes_s)?,
                            rows: median(&rows)?,
                        },
                    ))
                })
                .collect();
            let overlap = median(&s.overlap).unwrap_or(1.0);
            (step, CopyRates { tables, overlap })
        })
        .collect()
}

/// Per step that reported progress and succeeded, its units over its duration (median).
fn step_rates(reports: &[super::model::ReportModel]) -> BTreeMap<String, StepRate> {
    let mut seen: BTreeMap<String, (String, Vec<f64>)> = BTreeMap::new();
    for r in reports {
        for s in r.steps.iter().filter(|s| s.state == "succeeded") {
            let (Some((units, unit)), Some(d)) = (&s.last_progress, active_secs(r, s)) else {
                continue;
            };
            if *units == 0 || d <= 0.0 {
                continue;
            }
            let e = seen
                .entry(s.id.clone())
                .or_insert_with(|| (unit.clone(), Vec::new()));
            // a rehearsal whose progress counted something else is left out
            if e.0 == *unit {
                e.1.push(*units as f64 / d);
            }
        }
    }
    seen.into_iter()
        .filter_map(|(id, (unit, v))| {
            Some((
                id,
                StepRate {
                    n: v.len(),
                    unit,
                    per_sec: median(&v)?,
                },
            ))
        })
        .collect()
}

fn timing(s: &super::stats::Summary) -> Timing {
    Timing {
        n: s.n,
        median_secs: s.median,
        p90_secs: s.p90,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_within_components_and_skip_hidden_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("runs/a")).unwrap();
        std::fs::create_dir_all(d.path().join("runs/b")).unwrap();
        for f in [
            "runs/a/1.jsonl",
            "runs/a/2.jsonl",
            "runs/b/3.jsonl",
            "runs/a/.x.jsonl",
            "runs/a/n.txt",
        ] {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        let names = |p: &str| -> Vec<String> {
            expand(p, d.path())
                .iter()
                .map(|f| f.strip_prefix(d.path()).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(
            names("runs/a/*.jsonl"),
            ["runs/a/1.jsonl", "runs/a/2.jsonl"]
        );
        assert_eq!(names("runs/*/*.jsonl").len(), 3);
        assert_eq!(names("runs/a/2.jsonl"), ["runs/a/2.jsonl"]);
        assert!(names("nothing/*.jsonl").is_empty());
    }
}
