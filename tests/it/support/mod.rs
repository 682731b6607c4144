//! Shared helpers of the integration tests.

pub mod dms_data_plane;
pub mod dms_standin;
pub mod headless;
pub mod mysql;
pub mod pg;
pub mod tmux;
