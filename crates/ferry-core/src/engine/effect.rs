//! What the pure machine asks the driver to do: run, cancel, retry later, roll back,
//! tell an operator why a command was refused, or settle.

use crate::vocab::{Refusal, RunStatus};
use std::time::Duration;

/// What the machine asks the driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Execute the step (the driver journals `Started`, enforces the timeout, and
    /// reports `Finished`).
    Execute {
        step: String,
        attempt: u32,
        timeout: Option<Duration>,
    },
    /// Stop an execution in flight; it reports `Finished` with `Cancelled`.
    Cancel { step: String },
    /// Send `RetryDue` after `after`.
    ScheduleRetry { step: String, after: Duration },
    /// Run the step's shell or sql rollback and report `RollbackFinished`.
    RunRollback { step: String },
    /// A decision was refused; journal why, so the operator who asked sees it.
    Rejected(Refusal),
    /// Nothing more will happen without an operator command (or ever).
    Settled(RunStatus),
}
