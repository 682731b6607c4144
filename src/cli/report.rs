//! `ferry report JOURNAL [--format md|html|json] [-o FILE]` and
//! `ferry stats JOURNAL...`.

use super::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK};
use crate::report::{self, Format};
use std::path::{Path, PathBuf};

pub fn parse_format(s: &str) -> Result<Format, String> {
    match s {
        "md" | "markdown" => Ok(Format::Markdown),
        "html" => Ok(Format::Html),
        "json" => Ok(Format::Json),
        other => Err(format!(
            "unknown format `{other}`: expected md, html or json"
        )),
    }
}

pub fn report(journal: &Path, format: Format, out: Option<&PathBuf>) -> i32 {
    let model = match report::load(journal) {
        Ok(m) => m,
        Err(e) => {
            complain!("error: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    if !model.journal.chain_ok {
        complain!(
            "warning: the journal's hash chain is broken at line {} ({}); the report says so prominently",
            model.journal.broken_line.unwrap_or(0),
            model.journal.problem.as_deref().unwrap_or("")
        );
    }
    let text = report::render(&model, format);
    match out {
        None => {
            say_raw!("{text}");
            EXIT_OK
        }
        Some(p) => match std::fs::write(p, text) {
            Ok(()) => {
                complain!("wrote {}", p.display());
                EXIT_OK
            }
            Err(e) => {
                complain!("error: cannot write {}: {e}", p.display());
                EXIT_FAILED
            }
        },
    }
}

pub fn stats(journals: &[PathBuf]) -> i32 {
    let mut models = Vec::new();
    for j in journals {
        match report::load(j) {
            Ok(m) => {
                if !m.journal.chain_ok {
                    complain!("warning: {}: hash chain broken at line {}; its timings are not trustworthy", j.display(), m.journal.broken_line.unwrap_or(0));
                }
                models.push(m);
            }
            Err(e) => {
                complain!("error: {e}");
                return EXIT_BAD_INPUT;
            }
        }
    }
    say_raw!("{}", report::stats::render(&models));
    EXIT_OK
}
