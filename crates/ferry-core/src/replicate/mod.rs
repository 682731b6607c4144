//! PostgreSQL replication driven and watched by ferry: WAL positions ([`lsn`]), the
//! caught-up proof at the freeze ([`caught_up`]) and the read-only pre-checks of
//! logical replication ([`checks`]) and the publication, slot and subscription
//! themselves ([`logical`]). Below the engine, beside
//! copy and verify; it talks to databases through [`crate::db`] only.

pub mod caught_up;
pub mod checks;
pub mod logical;
pub mod lsn;

pub use lsn::Lsn;
