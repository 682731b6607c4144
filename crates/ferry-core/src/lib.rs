//! ferry's core: everything a cutover needs except a screen and a command line.
//!
//! The crate has no dependency on ratatui, crossterm or clap, so the compiler keeps the
//! front-ends (the `ferry` crate) on one side of the line. Inside it, layers depend only on
//! those listed before them (see ARCHITECTURE.md):
//! - leaves: [`vocab`] (what the engine, the journal and the front-ends say to each other),
//!   [`units`] (numbers as people read them), [`backoff`] (capped waits),
//!   [`runbook`] (the format, parsing, validation), [`results`] (step results, data only);
//! - [`db`]: the shared database layer (pools, connections, catalogs, chunk plans, SQL text);
//! - [`aws`], [`copy`], [`verify`], [`monitor`], [`replicate`]: the background workers;
//! - [`journal`]: the append-only, hash-chained record (it imports only leaves);
//! - [`engine`]: the pure state machine, its driver, the executors and `start`, the one
//!   way a run begins;
//! - [`report`]: post-run reports from a journal.

pub mod aws;
pub mod backoff;
pub mod copy;
pub mod db;
pub mod engine;
pub mod journal;
pub mod monitor;
pub mod replicate;
pub mod report;
pub mod results;
pub mod runbook;
pub mod units;
pub mod verify;
pub mod vocab;
