//! Rehearsals for a run (`rehearsals = GLOB` in `[runbook]`, `--rehearsals GLOB`):
//! the journals of earlier runs of the same runbook, read into the typed
//! [`Rehearsal`] the engine's snapshot carries. The figures are `ferry stats`'
//! ([`super::stats`]): the same steps counted, the same medians and p90s.
//!
//! A journal of another runbook is refused (the glob picked the wrong files);
//! one of an earlier version of this runbook is used, with a warning, its
//! steps matched by id. Fewer than five journals is a warning too (seeds/000).

use super::stats::{summarize, Timings};
use super::ReportError;
use crate::runbook::globs::glob_match;
use crate::vocab::rehearsal::{Rehearsal, Timing, ENOUGH_REHEARSALS};
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
    }
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
