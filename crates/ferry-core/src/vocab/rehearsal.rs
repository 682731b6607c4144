//! Rehearsal timings as the engine carries them to every front-end: per step
//! the median and p90 of its duration in earlier runs of the runbook, and of
//! its rollback where a rehearsal rolled it back. Computed from journals by
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
}

/// Fewer rehearsals than seeds/000 asks for: the figures are rough.
pub const ENOUGH_REHEARSALS: usize = 5;
