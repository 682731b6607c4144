//! ferry: a terminal console for database migration cutovers.
//!
//! This crate holds the front-ends over [`ferry_core`]: the command line ([`cli`]), the
//! full-screen console ([`tui`]), the socket a run serves and the link `ferry attach` drives
//! ([`attach`]), and the embedded demo ([`demo`]). Only this crate uses ratatui, crossterm
//! and clap.

#[macro_use]
mod say;

pub mod attach;
pub mod cli;
pub mod demo;
pub mod headless;
pub mod identity;
pub mod quote;
pub mod tui;
