//! Runbook format version 1: load a TOML file into typed structures, with
//! diagnostics that name file:line:column, show the line with a caret, say
//! what was expected and suggest the near match. See docs/runbook-format.md.

pub mod diag;
pub mod expand;
pub mod model;
mod parse;
mod reader;
mod steps;
mod validate;

pub use diag::{Diagnostic, Report};
pub use model::*;
pub use reader::{is_slug, parse_duration};
pub use validate::execution_order;

use std::path::Path;

/// Load and validate a runbook. On failure, every problem found is in the report.
pub fn load(path: &Path) -> Result<Runbook, Report> {
    let file = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            let what = match e.kind() {
                std::io::ErrorKind::NotFound => "the file does not exist".to_string(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                _ => e.to_string(),
            };
            let expected = if path.is_dir() {
                "a runbook file, not a directory"
            } else {
                "a readable TOML runbook file"
            };
            return Err(Report {
                file,
                source: String::new(),
                diagnostics: vec![
                    Diagnostic::new(None, format!("cannot read runbook: {what}"))
                        .expected(expected),
                ],
            });
        }
    };
    let source = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            return Err(Report {
                file,
                source: lossy,
                diagnostics: vec![Diagnostic::new(
                    Some(at..at + 1),
                    "the runbook is not valid UTF-8",
                )
                .expected("UTF-8 text")
                .help("re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)")],
            });
        }
    };
    load_str(&file, &source, path)
}

/// Parse runbook text; `file` names it in diagnostics.
pub fn load_str(file: &str, source: &str, path: &Path) -> Result<Runbook, Report> {
    use sha2::{Digest, Sha256};
    let report = |diagnostics| Report {
        file: file.to_string(),
        source: source.to_string(),
        diagnostics,
    };
    let doc = match toml_edit::ImDocument::parse(source) {
        Ok(d) => d,
        Err(e) => {
            let mut lines = e.message().trim().lines();
            let first = lines.next().unwrap_or("invalid TOML").trim().to_string();
            let rest: Vec<&str> = lines.map(str::trim).filter(|l| !l.is_empty()).collect();
            let mut d = Diagnostic::new(e.span(), format!("TOML syntax error: {first}"));
            if !rest.is_empty() {
                d = d.expected(rest.join("; ").trim_start_matches("expected ").to_string());
            } else if first.starts_with("duplicate key") {
                d = d.expected("each key only once in a table");
            } else if first.contains("string") {
                d = d.expected(
                    "a closing `\"` on the same line (write multi-line text between `\"\"\"`)",
                );
            } else {
                d = d.expected("valid TOML: `key = value`, `[table]` or `[[array.of.tables]]`");
            }
            return Err(report(vec![d]));
        }
    };
    let sha: String = Sha256::digest(source.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut r = reader::Reader::new(source);
    let parsed = parse::parse(&mut r, doc.as_table(), path, sha);
    validate::validate(&mut r, &parsed);
    if r.errors.is_empty() {
        Ok(parsed.runbook)
    } else {
        // file order, so the operator can work down the file
        let mut errors = r.errors;
        errors.sort_by_key(|d| d.span.as_ref().map(|s| s.start).unwrap_or(usize::MAX));
        Err(report(errors))
    }
}
