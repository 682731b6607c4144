//! `ferry report JOURNAL [--format md|html|json] [-o FILE]` and
//! `ferry stats JOURNAL...`.

use super::{EXIT_BAD_INPUT, EXIT_OK};
use ferry_core::report::{self, Format};
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

/// Why `-o FILE` must not be written: it is the journal itself, or another
/// journal. A report never costs a journal.
fn refuse_output(journal: &Path, out: &Path) -> Option<String> {
    use std::io::{BufRead as _, Read as _};
    use std::os::unix::fs::MetadataExt as _;
    let o = std::fs::metadata(out).ok()?;
    if let Ok(j) = std::fs::metadata(journal) {
        if (o.dev(), o.ino()) == (j.dev(), j.ino()) {
            return Some(format!(
                "{} is the journal itself: the report would overwrite it",
                out.display()
            ));
        }
    }
    if !o.is_file() {
        return None;
    }
    let f = std::fs::File::open(out).ok()?;
    let mut first = String::new();
    std::io::BufReader::new(f)
        .take(1 << 20)
        .read_line(&mut first)
        .ok()?;
    serde_json::from_str::<ferry_core::journal::Record>(first.trim_end())
        .is_ok()
        .then(|| {
            format!(
                "{} is a ferry journal: refusing to overwrite it with a report",
                out.display()
            )
        })
}

/// Write `text` to `p` through a temporary file beside it and a rename, so
/// a failed write (a full disk) leaves the previous report whole.
fn write_whole(p: &Path, text: &str) -> std::io::Result<()> {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = p.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let r = durable_write(&tmp, text.as_bytes()).and_then(|()| std::fs::rename(&tmp, p));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return r;
    }
    sync_dir(p)
}

/// Write `bytes` to a new file at `path` and fsync it before returning, so the
/// rename that follows never publishes a file whose data is still only in memory.
fn durable_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// fsync the directory holding `p`, so its new name survives a crash too.
fn sync_dir(p: &Path) -> std::io::Result<()> {
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

pub fn report(journal: &Path, format: Format, out: Option<&PathBuf>) -> i32 {
    if let Some(why) = out.and_then(|o| refuse_output(journal, o)) {
        complain!("error: -o {why}");
        return EXIT_BAD_INPUT;
    }
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
        Some(p) => match write_whole(p, &text) {
            Ok(()) => {
                complain!("wrote {}", p.display());
                EXIT_OK
            }
            Err(e) => {
                // -o names a place that cannot be written: a bad flag
                complain!("error: cannot write {}: {e}", p.display());
                EXIT_BAD_INPUT
            }
        },
    }
}

pub fn stats(journals: &[PathBuf], json: bool) -> i32 {
    use std::os::unix::fs::MetadataExt as _;
    let mut models = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for j in journals {
        // the same file twice (overlapping globs) would count a rehearsal twice
        if let Ok(m) = std::fs::metadata(j) {
            if !seen.insert((m.dev(), m.ino())) {
                complain!("note: {} was given twice; counted once", j.display());
                continue;
            }
        }
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
    if json {
        let v = report::stats::json(&models);
        say_raw!(
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_else(|_| "{}".into())
        );
    } else {
        say_raw!("{}", report::stats::render(&models));
    }
    EXIT_OK
}
