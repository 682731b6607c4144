//! Shared helpers of the integration tests.

pub mod headless;
pub mod mysql;
pub mod pg;
pub mod tmux;
