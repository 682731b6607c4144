//! Runbook format version 1: load a TOML file into typed structures, with
//! diagnostics that name file:line:column, show the line with a caret, say
//! what was expected and suggest the near match. See docs/runbook-format.md.

pub mod diag;
mod dms;
pub mod expand;
pub mod globs;
mod kinds;
pub mod model;
mod monitors;
mod online;
mod parse;
mod reader;
mod steps;
pub mod tls;
mod validate;
pub mod vars;

pub use diag::{Diagnostic, Report};
pub use model::*;
pub use online::is_slot_name;
pub use reader::{is_slug, parse_duration};
pub use validate::execution_order;

use std::collections::BTreeMap;
use std::path::Path;

/// Load and validate a runbook. On failure, every problem found is in the report.
pub fn load(path: &Path) -> Result<Runbook, Report> {
    load_with(path, &BTreeMap::new())
}

/// [`load`] with `[vars]` values overridden (`--var`, `--vars`); names the
/// runbook does not declare are ignored here (see [`vars::Overrides::check_declared`]).
pub fn load_with(path: &Path, vars: &BTreeMap<String, String>) -> Result<Runbook, Report> {
    let file = path.display().to_string();
    let cannot = |what: String, expected: &str| Report {
        file: file.clone(),
        omitted: 0,
        source: String::new(),
        diagnostics: vec![
            Diagnostic::new(None, format!("cannot read runbook: {what}")).expected(expected),
        ],
    };
    let bytes = match read_limited(path) {
        Ok(b) => b,
        Err(ReadError::Io(e)) => {
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
            return Err(cannot(what, expected));
        }
        Err(ReadError::NotAFile) => {
            return Err(cannot(
                "it is not a regular file (a pipe, a device or a socket)".into(),
                "a runbook file on disk",
            ))
        }
        Err(ReadError::TooBig) => {
            return Err(cannot(
                format!("it is larger than {} MiB", MAX_RUNBOOK_BYTES >> 20),
                "a runbook file of a sensible size",
            ))
        }
    };
    let source = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            return Err(Report {
                file,
                omitted: 0,
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
    load_str_with(&file, &source, path, vars)
}

/// A runbook is text a person wrote; anything bigger is the wrong file.
const MAX_RUNBOOK_BYTES: u64 = 8 << 20;

enum ReadError {
    Io(std::io::Error),
    NotAFile,
    TooBig,
}

/// Read a regular file of at most [`MAX_RUNBOOK_BYTES`]: a FIFO would block
/// `ferry check` forever and `/dev/zero` would fill the memory.
fn read_limited(path: &Path) -> Result<Vec<u8>, ReadError> {
    use std::io::Read as _;
    let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
    if meta.is_dir() {
        return Err(ReadError::Io(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "it is a directory",
        )));
    }
    if !meta.is_file() {
        return Err(ReadError::NotAFile);
    }
    if meta.len() > MAX_RUNBOOK_BYTES {
        return Err(ReadError::TooBig);
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_RUNBOOK_BYTES + 1).read_to_end(&mut bytes))
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > MAX_RUNBOOK_BYTES {
        return Err(ReadError::TooBig);
    }
    Ok(bytes)
}

/// A TOML syntax error, worded for the operator. `toml_edit` gives a first
/// line (what is wrong), sometimes more detail, and sometimes "expected ...".
fn syntax_error(e: &toml_edit::TomlError) -> Diagnostic {
    let text = e.message().trim();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid TOML").to_string();
    let mut detail = Vec::new();
    let mut expected = Vec::new();
    for l in lines {
        match l.strip_prefix("expected ") {
            Some(x) => expected.push(x.to_string()),
            None => detail.push(l.to_string()),
        }
    }
    let mut message = format!("TOML syntax error: {first}");
    if !detail.is_empty() {
        message = format!("{message}: {}", detail.join("; "));
    }
    let mut d = Diagnostic::new(e.span(), message);
    let all = text.to_string();
    d = if !expected.is_empty() {
        d.expected(expected.join("; "))
    } else if all.contains("duplicate key") {
        d.expected("each key and each [table] only once")
    } else if all.contains("too large") {
        d.expected("a whole number from -9223372036854775808 to 9223372036854775807")
    } else if first.contains("string") {
        d.expected("a closing `\"` on the same line (write multi-line text between `\"\"\"`)")
    } else {
        d.expected("valid TOML: `key = value`, `[table]` or `[[array.of.tables]]`")
    };
    if first.contains("inline table") {
        d = d.help("an inline table `{ ... }` must fit on one line, without a trailing comma");
    } else if all.contains("duplicate key") && first.contains("table header") {
        d = d.help("write each [table] once and put all its keys under it");
    }
    d
}

/// Parse runbook text; `file` names it in diagnostics.
pub fn load_str(file: &str, source: &str, path: &Path) -> Result<Runbook, Report> {
    load_str_with(file, source, path, &BTreeMap::new())
}

/// [`load_str`] with `[vars]` values overridden.
pub fn load_str_with(
    file: &str,
    source: &str,
    path: &Path,
    vars: &BTreeMap<String, String>,
) -> Result<Runbook, Report> {
    use sha2::{Digest, Sha256};
    let sha: String = Sha256::digest(source.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // Editors on Windows save a byte-order mark; it is not part of the text,
    // and counting it would put every column on line 1 one off.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let report = |diagnostics| Report {
        file: file.to_string(),
        omitted: 0,
        source: source.to_string(),
        diagnostics,
    };
    let doc = match toml_edit::ImDocument::parse(source) {
        Ok(d) => d,
        Err(e) => return Err(report(vec![syntax_error(&e)])),
    };
    let mut r = reader::Reader::new(source);
    let parsed = parse::parse(&mut r, doc.as_table(), path, sha, vars);
    validate::validate(&mut r, &parsed);
    if r.errors.is_empty() {
        Ok(parsed.runbook)
    } else {
        // file order, so the operator can work down the file
        let mut errors = r.errors;
        errors.sort_by_key(|d| d.span.as_ref().map(|s| s.start).unwrap_or(usize::MAX));

        Err(Report {
            omitted: r.dropped,
            ..report(errors)
        })
    }
}
