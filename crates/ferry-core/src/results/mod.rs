//! Step results (copy, verify, rds, dms) as they are journaled and as reports read them: plain serde data
//! (one file per kind of step) that the workers fill in and the report renders. The
//! module sits below copy, verify, aws and report and imports nothing of ferry's but
//! [`crate::units`], so a report never reaches into the code that produced a result.

pub mod caught_up;
pub mod copy;
pub mod dms;
pub mod rds;
pub mod replicate;
pub mod verify;
