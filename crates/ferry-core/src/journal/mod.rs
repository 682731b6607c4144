//! The journal: JSON lines, one entry per line, each with a sequence number, a
//! UTC timestamp, the entry, the previous line's hash and its own hash, so any
//! later edit breaks the chain and is caught on replay. Lines are redacted
//! before they are hashed and written: secrets never reach the disk.
//!
//! Line format: `{"seq":N,"ts":"…","entry":{…},"prev":"<hex>","hash":"<hex>"}`
//! where `hash` = SHA-256 of the line up to (not including) `,"hash":…` plus `}`.

mod read;
mod redact;

pub use read::{read_journal, read_lenient, JournalError, Lenient, Replay};

use crate::vocab::{Actor, Event, OutputLine, Progress, Refusal, RunStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The first line of every journal: what ran, by whom, from which runbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub ferry_version: String,
    pub runbook_name: String,
    pub runbook_title: String,
    pub runbook_path: String,
    pub runbook_sha256: String,
    /// step id -> fingerprint, so a resume can name the steps that changed.
    pub steps: BTreeMap<String, String>,
    pub operator: String,
    pub host: String,
    /// The kernel's view of who started the run (absent in older journals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    pub window_start: Option<DateTime<Utc>>,
    pub window_secs: Option<u64>,
    /// The steps as planned, so a report needs nothing but the journal.
    #[serde(default)]
    pub plan: Vec<StepMeta>,
    /// The `[vars]` values the run used and where each came from (`--var`,
    /// `--vars`, the runbook); secret-named ones masked. A resume reuses them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vars: Vec<crate::runbook::vars::VarUsed>,
}

/// What the journal records of each step's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMeta {
    pub id: String,
    pub phase: String,
    pub title: String,
    pub kind: String,
    pub confirm: crate::runbook::ConfirmMode,
    pub point_of_no_return: bool,
    pub rollback_only: bool,
}

impl StepMeta {
    /// The plan of a runbook, in runbook order.
    pub fn plan(rb: &crate::runbook::Runbook) -> Vec<StepMeta> {
        let rollback_only = rb.rollback_only();
        rb.steps()
            .map(|s| StepMeta {
                id: s.id.clone(),
                phase: s.phase.clone(),
                title: s.label().to_string(),
                kind: s.kind.name().to_string(),
                confirm: s.confirm,
                point_of_no_return: s.point_of_no_return,
                rollback_only: rollback_only.contains_key(s.id.as_str()),
            })
            .collect()
    }
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    Header(Header),
    /// A process (re)attached to this journal: the first run or a resume.
    Session {
        operator: String,
        host: String,
        /// The kernel's view of who runs this session (absent in older journals).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        login: Option<String>,
        resumed: bool,
        pid: u32,
        /// The socket `ferry attach` reaches this session at (absent when none was served).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        socket: Option<String>,
    },
    Event(Event),
    Output(OutputLine),
    /// Progress of a long step, downsampled (at most one every few seconds per step).
    Progress {
        step: String,
        progress: Progress,
    },
    /// A step started a process group (`start_ticks` identifies the leader
    /// across pid reuse). Resume stops groups an interrupted step left running.
    Process {
        step: String,
        pgid: i32,
        start_ticks: Option<u64>,
    },
    /// A step's structured result (copy figures, verify differences).
    Result {
        step: String,
        data: serde_json::Value,
    },
    /// One monitor sample, downsampled into the journal (about one per 10 s per series).
    Sample {
        monitor: String,
        /// "lag" (seconds), "lag_bytes" (bytes behind) or "metric".
        series: String,
        value: f64,
        unit: Option<String>,
        warn: Option<f64>,
        max: Option<f64>,
    },
    /// A database connection opened: its TLS mode, whether the session is
    /// encrypted and whether the server's certificate was verified.
    Connection(crate::vocab::ConnectionTls),
    /// A message for the record (retries scheduled, connection problems…).
    Note {
        step: Option<String>,
        text: String,
    },
    /// The machine refused an operator's decision: why, and who asked when it was an
    /// operator attached from another terminal (the run's own operator otherwise).
    Refused {
        refusal: Refusal,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        asked_by: Option<Actor>,
    },
    /// What the run's forecast is based on (`rehearsals`): the rehearsal journals
    /// read, and each step's rehearsed median and p90 (and its rollback's).
    Forecast {
        journals: Vec<String>,
        steps: std::collections::BTreeMap<String, crate::vocab::rehearsal::Timing>,
        #[serde(default)]
        rollbacks: std::collections::BTreeMap<String, crate::vocab::rehearsal::Timing>,
    },
    /// The forecast as a step started (runs with rehearsals): the projected end
    /// (median, p90) and the rollback budget in seconds (absent when unknown,
    /// without a window, or past a point of no return).
    Projection {
        step: String,
        end_median: DateTime<Utc>,
        end_p90: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        budget_secs: Option<f64>,
    },
    /// The run ended for good (finished or aborted): it cannot be resumed.
    Closed {
        status: RunStatus,
    },
}

impl Entry {
    /// The line a refusal reads as in logs, reports and the console:
    /// `refused: WHY`, with `(asked by OPERATOR@HOST)` for an attached operator's.
    pub fn refused_text(refusal: &Refusal, asked_by: Option<&Actor>) -> String {
        match asked_by {
            Some(a) => format!("refused: {refusal} (asked by {})", a.at()),
            None => format!("refused: {refusal}"),
        }
    }

    /// Entries after which the journal is fsynced: step boundaries and confirmations.
    pub fn is_boundary(&self) -> bool {
        match self {
            Entry::Output(_)
            | Entry::Note { .. }
            | Entry::Refused { .. }
            | Entry::Progress { .. }
            | Entry::Sample { .. } => false,
            Entry::Event(Event::Started { .. }) => true,
            _ => true,
        }
    }
}

/// A stored line, parsed.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub ts: DateTime<Utc>,
    pub entry: Entry,
    pub prev: String,
    pub hash: String,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Appends entries to a journal file.
pub struct Writer {
    path: PathBuf,
    file: File,
    seq: u64,
    prev: String,
    /// The hash of the journal's first line: the run's identity, the same across resumes.
    first: Option<String>,
    redact: Box<dyn Fn(&str) -> String + Send>,
}

impl Writer {
    /// Start a new journal at `path` (parent folders are created). Fails if it exists.
    /// The writer holds the file's lock until it is dropped (see [`Writer::resume`]).
    pub fn create(
        path: &Path,
        redact: Box<dyn Fn(&str) -> String + Send>,
    ) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)?;
        lock(&file)?;
        Ok(Writer {
            path: path.to_path_buf(),
            file,
            seq: 0,
            prev: GENESIS.to_string(),
            first: None,
            redact,
        })
    }

    /// Continue an existing journal after a verified replay. A torn last line
    /// (found by the replay) is cut off first.
    ///
    /// Refused while another ferry process writes the journal (it holds an
    /// exclusive `flock`, which the kernel drops when that process dies, even by
    /// `kill -9`): a second resume of a live run would take it for crashed,
    /// stop its running steps, run them again and interleave two chains.
    pub fn resume(
        path: &Path,
        replay: &Replay,
        redact: Box<dyn Fn(&str) -> String + Send>,
    ) -> std::io::Result<Self> {
        let file = OpenOptions::new().append(true).open(path)?;
        lock(&file)?;
        if file.metadata()?.len() != replay.file_bytes {
            return Err(std::io::Error::other(
                "the journal grew while it was being read (another ferry process was writing it); run the resume again",
            ));
        }
        file.set_len(replay.good_bytes)?;
        Ok(Writer {
            path: path.to_path_buf(),
            file,
            seq: replay.records.last().map(|r| r.seq + 1).unwrap_or(0),
            prev: replay
                .records
                .last()
                .map(|r| r.hash.clone())
                .unwrap_or_else(|| GENESIS.to_string()),
            first: replay.records.first().map(|r| r.hash.clone()),
            redact,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run's identity: the hash of the journal's first line (none before it is
    /// written). A resume continues the same run; a new journal is a new run.
    pub fn run_id(&self) -> Option<&str> {
        self.first.as_deref()
    }

    /// Append one entry; fsync when it is a boundary. Returns the timestamp written.
    pub fn append(&mut self, entry: &Entry, now: DateTime<Utc>) -> std::io::Result<DateTime<Utc>> {
        // Only the entry's string values are redacted, each decoded first: a
        // secret that is also a key, `true` or a piece of the timestamp must not
        // break the line, and one that JSON escapes (`"`, `\`) is still found.
        let json = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        let json = redact::string_values_keeping(&json, &*self.redact, &|t| {
            serde_json::from_str::<Entry>(t).is_ok()
        });
        let ts = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let body = format!(
            "{{\"seq\":{},\"ts\":\"{ts}\",\"entry\":{json},\"prev\":\"{}\"}}",
            self.seq, self.prev
        );
        let hash = sha256_hex(body.as_bytes());
        let mut line = String::with_capacity(body.len() + 80);
        line.push_str(&body[..body.len() - 1]);
        line.push_str(",\"hash\":\"");
        line.push_str(&hash);
        line.push_str("\"}\n");
        self.file.write_all(line.as_bytes())?;
        if entry.is_boundary() {
            self.file.sync_data()?;
        }
        if self.first.is_none() {
            self.first = Some(hash.clone());
        }
        self.seq += 1;
        self.prev = hash;
        Ok(now)
    }
}

/// `json` (compact) with `redact` applied to each string value, keeping the
/// values whose masking would make `valid` refuse it (ferry's own enum tags).
/// The attach server sends nothing that has not been through this.
pub fn redact_json(
    json: &str,
    redact: &dyn Fn(&str) -> String,
    valid: &dyn Fn(&str) -> bool,
) -> String {
    redact::string_values_keeping(json, redact, valid)
}

/// Take the journal's exclusive lock, or say who has it.
fn lock(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this function borrows; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        return Err(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            "another ferry process is running this journal right now (it holds the journal's lock); let it finish, or stop it and then resume",
        ));
    }
    Err(e)
}

/// `runs/<runbook-name>/<UTC timestamp>.jsonl` under `base`; a `-2`, `-3`…
/// suffix when a journal of the same second exists already.
pub fn default_path(base: &Path, runbook_name: &str, now: DateTime<Utc>) -> PathBuf {
    let dir = base.join(runbook_name);
    let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    let mut path = dir.join(format!("{stamp}.jsonl"));
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{stamp}-{n}.jsonl"));
        n += 1;
    }
    path
}

/// The newest journal of a runbook that was not closed (finished or aborted).
pub fn newest_unfinished(base: &Path, runbook_name: &str) -> Option<PathBuf> {
    let dir = base.join(runbook_name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    // "<stamp>.jsonl" before "<stamp>-2.jsonl" before "<stamp>-3.jsonl"
    let key = |p: &PathBuf| {
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match stem.rsplit_once('-') {
            Some((stamp, n)) if n.parse::<u32>().is_ok() => {
                (stamp.to_string(), n.parse::<u32>().unwrap_or(1))
            }
            _ => (stem, 1),
        }
    };
    files.sort_by_key(key);
    files.into_iter().rev().find(|p| match read_journal(p) {
        Ok(r) => !r.closed(),
        Err(_) => true, // a broken journal is "unfinished": resume will explain what is wrong
    })
}

#[cfg(test)]
mod tests;
