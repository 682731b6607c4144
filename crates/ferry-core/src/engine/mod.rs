//! The engine: a pure state machine over the runbook's steps ([`machine`]),
//! its vocabulary ([`event`]), the driver that runs effects in tokio tasks
//! ([`driver`]), the executors of each step kind ([`exec`]), database
//! connections ([`connections`]), secret redaction ([`redact`]), the snapshot
//! front-ends render ([`snapshot`]) and resume from a journal ([`resume`]).

pub mod connections;
pub mod driver;
pub mod effect;
pub mod eta;
pub mod exec;
pub mod machine;
pub mod redact;
pub mod resume;
pub mod snapshot;
pub mod start;
pub mod timeline;
