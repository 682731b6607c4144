//! ferry: a terminal console for database migration cutovers.
//!
//! Layers, each depending only on those above it in this list (see ARCHITECTURE.md):
//! - [`runbook`]: the runbook format, parsing and validation; [`db`]: open pools;
//!   [`units`]: numbers as people read them;
//! - [`journal`], [`engine`]: the append-only journal and the pure state machine;
//! - [`copy`], [`verify`], [`monitor`], [`aws`]: the background workers;
//! - [`report`]: post-run reports from a journal; [`attach`]: the socket a run
//!   serves and the link `ferry attach` drives a second console over;
//! - [`tui`], [`cli`]: the front-ends (the only modules that touch ratatui, crossterm or clap).

pub mod attach;
pub mod aws;
pub mod cli;
pub mod copy;
pub mod db;
pub mod demo;
pub mod engine;
pub mod journal;
pub mod monitor;
pub mod report;
pub mod runbook;
pub mod tui;
pub mod units;
pub mod verify;
