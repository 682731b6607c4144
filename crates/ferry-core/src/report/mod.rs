//! Post-run reports from a journal alone: Markdown (default), a
//! self-contained HTML page with a timeline and monitor charts, and JSON
//! (`assets/report.schema.json`). Plus `stats` over several rehearsals.
//! The journal is verified first and the result stated in every format.

pub mod html;
pub mod markdown;
pub mod model;
pub mod rehearsal;
pub mod results;
pub mod stats;
pub mod svg;
#[cfg(test)]
pub(crate) mod testkit;

use crate::journal::{read_lenient, JournalError};
use std::path::Path;

/// The largest journal a report reads whole (a long run's journal is a few MB).
pub const MAX_JOURNAL_BYTES: u64 = 1 << 30;

/// Why a file gives no report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{path} is not a ferry journal: {why}")]
    NotAJournal { path: String, why: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
    Json,
}

/// Read and verify a journal, and build the report model. A journal whose
/// chain is broken still gives a report (that says so); a file with no
/// journal line at all, or one that is not a regular file, does not.
pub fn load(path: &Path) -> Result<model::ReportModel, ReportError> {
    let p = path.display().to_string();
    let not = |why: String| ReportError::NotAJournal {
        path: p.clone(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|source| JournalError::Io {
        path: p.clone(),
        source,
    })?;
    if meta.is_dir() {
        return Err(not("it is a directory".into()));
    }
    if !meta.is_file() {
        // a FIFO would block, /dev/zero would fill memory
        return Err(not("it is not a regular file".into()));
    }
    if meta.len() > MAX_JOURNAL_BYTES {
        return Err(not(format!(
            "it is {}, more than the {} a journal can reach",
            crate::units::bytes(meta.len()),
            crate::units::bytes(MAX_JOURNAL_BYTES)
        )));
    }
    let j = read_lenient(path)?;
    if j.records.is_empty() {
        return Err(not(match (&j.broken, j.torn) {
            _ if j.lines == 0 => "the file is empty".into(),
            (Some((line, problem)), _) => {
                format!("no line of it is a journal line (line {line}: {problem})")
            }
            (None, Some(line)) => format!("its only line ({line}) was cut short"),
            (None, None) => "no line of it is a journal line".into(),
        }));
    }
    Ok(model::build(&p, &j))
}

pub fn render(m: &model::ReportModel, format: Format) -> String {
    match format {
        Format::Markdown => markdown::render(m),
        Format::Html => html::render(m),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(m)
                .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
            s.push('\n');
            s
        }
    }
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        // rates and ratios: one decimal reads better than seventeen
        serde_json::Value::Number(n) if n.is_f64() => n
            .as_f64()
            .map(|x| format!("{x:.1}"))
            .unwrap_or_else(|| n.to_string()),
        serde_json::Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// A result shown as a table: column names, rows, and loose key/value pairs.
pub type ResultTable = (Vec<String>, Vec<Vec<String>>, Vec<(String, String)>);

/// A structured step result as a table: the first array of objects becomes
/// rows (columns in first-seen order); other scalar fields become key/values.
pub fn result_rows(data: &serde_json::Value) -> ResultTable {
    let mut cols: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    let mut extra = Vec::new();
    let Some(obj) = data.as_object() else {
        return (cols, rows, vec![("result".into(), scalar(data))]);
    };
    let mut table_done = false;
    for (k, v) in obj {
        match v {
            serde_json::Value::Array(items)
                if !table_done && items.iter().all(|i| i.is_object()) && !items.is_empty() =>
            {
                table_done = true;
                for it in items {
                    if let Some(o) = it.as_object() {
                        for key in o.keys() {
                            if !cols.contains(key) {
                                cols.push(key.clone());
                            }
                        }
                    }
                }
                // the naming column first (JSON objects come back in key order)
                if let Some(pos) = cols.iter().position(|c| c == "table" || c == "name") {
                    let c = cols.remove(pos);
                    cols.insert(0, c);
                }
                for it in items {
                    rows.push(
                        cols.iter()
                            .map(|c| it.get(c).map(scalar).unwrap_or_default())
                            .collect(),
                    );
                }
            }
            serde_json::Value::Array(items) => extra.push((
                k.clone(),
                items.iter().map(scalar).collect::<Vec<_>>().join("\n"),
            )),
            serde_json::Value::Object(_) => extra.push((k.clone(), v.to_string())),
            _ => extra.push((k.clone(), scalar(v))),
        }
    }
    (cols, rows, extra)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::report_duration as fmt_duration;

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(12.34), "12.3s");
        assert_eq!(fmt_duration(245.0), "4m 05s");
        assert_eq!(fmt_duration(3723.0), "1h 02m 03s");
    }

    #[test]
    fn results_become_tables() {
        let v = serde_json::json!({"tables": [{"table": "users", "rows": 3}, {"table": "m", "rows": 1, "bytes": 9}], "replica_role": true, "rows_per_sec": 2236.953805785434});
        let (cols, rows, extra) = result_rows(&v);
        assert_eq!(cols, vec!["table", "rows", "bytes"]);
        assert_eq!(rows[0], vec!["users", "3", ""]);
        assert_eq!(
            extra,
            vec![
                ("replica_role".to_string(), "true".to_string()),
                ("rows_per_sec".to_string(), "2237.0".to_string())
            ]
        );
    }
}
