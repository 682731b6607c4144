//! Reading a journal back: verify every line's hash and the chain, tolerate a
//! torn last line (a crash mid-write), and refuse anything edited.

use super::{sha256_hex, Entry, Header, Record, GENESIS};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot read journal {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("journal {path} line {line}: {problem} — the journal was edited or corrupted; refusing to use it")]
    Broken {
        path: String,
        line: usize,
        problem: String,
    },
    #[error("journal {path} is empty or has no header line")]
    NoHeader { path: String },
}

/// A verified journal.
#[derive(Debug, Clone)]
pub struct Replay {
    pub records: Vec<Record>,
    /// Bytes of the file up to the end of the last good line.
    pub good_bytes: u64,
    /// Bytes of the whole file when it was read (a resume checks nobody wrote since).
    pub file_bytes: u64,
    /// A torn last line that was dropped: (line number, its text).
    pub torn: Option<(usize, String)>,
}

impl Replay {
    pub fn header(&self) -> Option<&Header> {
        self.records.iter().find_map(|r| match &r.entry {
            Entry::Header(h) => Some(h),
            _ => None,
        })
    }

    pub fn closed(&self) -> bool {
        self.records
            .iter()
            .any(|r| matches!(r.entry, Entry::Closed { .. }))
    }
}

/// Whether the last line of a journal is what a crash mid-write leaves: a
/// line whose newline never made it to disk, or one with NUL bytes where the
/// file grew before its data was written. Each line is written with its
/// newline in one `write`, so a complete line that fails verification was
/// edited, not torn.
fn is_torn(raw: &[u8]) -> bool {
    !raw.ends_with(b"\n") || raw.contains(&0)
}

/// Check one line; returns the parsed record.
fn check_line(line: &str, prev: &str, seq: u64) -> Result<Record, String> {
    let marker = ",\"hash\":\"";
    let at = line.rfind(marker).ok_or("no hash")?;
    let hash = line[at + marker.len()..]
        .strip_suffix("\"}")
        .ok_or("malformed hash field")?;
    let body = format!("{}}}", &line[..at]);
    if sha256_hex(body.as_bytes()) != hash {
        return Err("its hash does not match its content".into());
    }
    let rec: Record =
        serde_json::from_str(line).map_err(|e| format!("not a journal entry ({e})"))?;
    if rec.prev != prev {
        return Err(
            "it does not chain to the line before it (a line was removed, reordered or inserted)"
                .into(),
        );
    }
    if rec.seq != seq {
        return Err(format!(
            "sequence number {} where {} was expected",
            rec.seq, seq
        ));
    }
    Ok(rec)
}

pub fn read_journal(path: &Path) -> Result<Replay, JournalError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| JournalError::Io {
        path: p.clone(),
        source,
    })?;
    let mut records = Vec::new();
    let mut prev = GENESIS.to_string();
    let mut offset = 0usize;
    let mut torn = None;
    let mut lines = bytes
        .split_inclusive(|b| *b == b'\n')
        .enumerate()
        .peekable();
    while let Some((n, raw)) = lines.next() {
        let is_last = lines.peek().is_none();
        let complete = raw.ends_with(b"\n");
        let text = String::from_utf8_lossy(raw)
            .trim_end_matches('\n')
            .to_string();
        if text.trim().is_empty() && is_last {
            offset += raw.len();
            break;
        }
        let checked = check_line(&text, &prev, records.len() as u64);
        let looks_torn = is_last && is_torn(raw);
        match checked {
            Ok(rec) if complete => {
                prev = rec.hash.clone();
                records.push(rec);
                offset += raw.len();
            }
            // the last line, cut short by a crash: report and drop it
            _ if looks_torn => torn = Some((n + 1, text)),
            Ok(_) => torn = Some((n + 1, text)),
            Err(problem) => {
                return Err(JournalError::Broken {
                    path: p,
                    line: n + 1,
                    problem,
                })
            }
        }
    }
    if records.is_empty() || !matches!(records[0].entry, Entry::Header(_)) {
        return Err(JournalError::NoHeader { path: p });
    }
    Ok(Replay {
        records,
        good_bytes: offset as u64,
        file_bytes: bytes.len() as u64,
        torn,
    })
}

/// A journal read for a report: never refused. Lines after a broken link are
/// still parsed (when they parse) but counted as unverified.
#[derive(Debug, Clone)]
pub struct Lenient {
    pub records: Vec<Record>,
    /// Total lines in the file.
    pub lines: usize,
    /// The first line that failed verification, and why.
    pub broken: Option<(usize, String)>,
    pub torn: Option<usize>,
    /// Index into `records` of the first unverified record.
    pub verified_records: usize,
    /// The line number of the last verified record.
    pub verified_line: Option<usize>,
}

pub fn read_lenient(path: &Path) -> Result<Lenient, JournalError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| JournalError::Io { path: p, source })?;
    let text = String::from_utf8_lossy(&bytes);
    let mut out = Lenient {
        records: Vec::new(),
        lines: 0,
        broken: None,
        torn: None,
        verified_records: 0,
        verified_line: None,
    };
    let mut prev = GENESIS.to_string();
    let all: Vec<&str> = text.split_inclusive('\n').collect();
    for (n, raw) in all.iter().enumerate() {
        let line = raw.trim_end_matches('\n');
        if line.trim().is_empty() {
            continue;
        }
        out.lines = n + 1;
        let is_last = n + 1 == all.len();
        if out.broken.is_none() {
            match check_line(line, &prev, out.records.len() as u64) {
                Ok(rec) if raw.ends_with('\n') => {
                    prev = rec.hash.clone();
                    out.records.push(rec);
                    out.verified_records = out.records.len();
                    out.verified_line = Some(n + 1);
                    continue;
                }
                _ if is_last && is_torn(raw.as_bytes()) => {
                    out.torn = Some(n + 1);
                    continue;
                }
                Ok(_) => continue,
                Err(problem) => out.broken = Some((n + 1, problem)),
            }
        }
        if let Ok(rec) = serde_json::from_str::<Record>(line) {
            out.records.push(rec);
        }
    }
    Ok(out)
}
