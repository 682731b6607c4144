//! The engine: a pure state machine over the runbook's steps and its driver (issue 3).
//! Not built yet.
