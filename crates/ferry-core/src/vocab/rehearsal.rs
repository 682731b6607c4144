//! Rehearsal timings as the engine carries them to every front-end: per step
//! the median and p90 of its duration in earlier runs of the runbook, and of
//! its rollback where a rehearsal rolled it back; the rates copies measured per
//! table, and long steps' rates as a whole, for ETAs. Computed from journals by
//! `report::rehearsal`; data only here, so the engine's snapshot can hold it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// n, median and p90 of a duration, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub n: usize,
    pub median_secs: f64,
    pub p90_secs: f64,
}

/// What the rehearsals of a runbook say about its steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rehearsal {
    /// How many journals were read.
    pub journals: usize,
    /// Each step's duration where it succeeded, by step id.
    pub steps: BTreeMap<String, Timing>,
    /// Each step's rollback duration where a rehearsal rolled it back.
    pub rollbacks: BTreeMap<String, Timing>,
    /// The whole run, over the rehearsals that succeeded.
    pub total: Option<Timing>,
    /// Copy steps' measured rates per table, by step id.
    #[serde(default)]
    pub copies: BTreeMap<String, CopyRates>,
    /// Long steps' rates over their whole duration (units of their progress per
    /// second), by step id: the ETA where no per-table figure exists.
    #[serde(default)]
    pub rates: BTreeMap<String, StepRate>,
}

/// One table of a copy as the rehearsals measured it (medians over the copies).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TableRate {
    /// How many rehearsed copies of it the figures come from.
    pub n: usize,
    /// Rows per second of this table's own copying (first chunk start to last chunk end).
    pub rows_per_sec: f64,
    pub bytes_per_sec: f64,
    /// Rows it had.
    pub rows: f64,
}

/// A copy step's rehearsed rates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CopyRates {
    /// By table, as the copy names it (`public.users`).
    pub tables: BTreeMap<String, TableRate>,
    /// How many tables were copied at once, on average: the tables' durations
    /// added up over the copy's duration (median over the rehearsals, at least 1).
    /// Tables copied in parallel overlap, so their times do not simply add up.
    pub overlap: f64,
}

/// A long step's rate over its whole duration in the rehearsals (median).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRate {
    pub n: usize,
    /// What its progress counts ("rows").
    pub unit: String,
    pub per_sec: f64,
}

/// Fewer rehearsals than seeds/000 asks for: the figures are rough.
pub const ENOUGH_REHEARSALS: usize = 5;
