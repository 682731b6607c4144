//! The result of a verify step, as journaled and as reports read it.
//!
//! The JSON is what `ferry report` renders: `tables` (one object per table: `table`,
//! `ok`, one field per check that ran, `summary`), `differences` (the human-readable
//! lines, at most `max_diffs`), `more_differences` (how many more were found), and
//! scalars: `ok`, `summary`, `stopped_early`, `coverage`, … Data only; the verifier
//! fills it in.

use serde::{Deserialize, Serialize};

/// The result of one table.
#[derive(Debug, Clone, Serialize, PartialEq, Deserialize)]
pub struct TableResult {
    pub table: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksums: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<String>,
    /// Differences found in this table.
    pub differences: u64,
    pub summary: String,
}

/// The structured result of a verify step.
#[derive(Debug, Clone, Serialize, PartialEq, Deserialize)]
pub struct VerifyReport {
    /// Nothing differs and everything was checked.
    pub ok: bool,
    pub summary: String,
    pub source: String,
    pub target: String,
    pub checks: Vec<String>,
    pub tables: Vec<TableResult>,
    /// What differs, one line each, at most `max_diffs`.
    pub differences: Vec<String>,
    /// Differences found beyond those listed.
    pub more_differences: u64,
    /// The time limit ended the comparison before everything was checked.
    pub stopped_early: bool,
    /// How much of the data the checks covered.
    pub coverage: String,
    pub rows_compared: u64,
    pub elapsed_secs: f64,
    /// Decisions worth knowing (strategy per table, snapshots, skipped samples).
    pub notes: Vec<String>,
}
