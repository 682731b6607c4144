//! The result of an `rds` step, as journaled and as reports read it: the action, the
//! instance's state before and after, and what was waited for. Data only; the `rds`
//! executor fills it in.

use serde::{Deserialize, Serialize};

/// What DescribeDBInstances says of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceState {
    pub instance: String,
    pub status: String,
    pub engine: Option<String>,
    pub class: Option<String>,
    pub endpoint: Option<String>,
    pub port: Option<i32>,
    /// Set on a read replica: the instance it replicates from.
    pub replica_of: Option<String>,
    pub replicas: Vec<String>,
}

/// The structured result journaled for an `rds` step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionReport {
    pub action: String,
    pub instance: String,
    pub before: Option<InstanceState>,
    pub after: Option<InstanceState>,
    pub snapshot: Option<String>,
    pub snapshot_status: Option<String>,
    pub waited_for: Option<String>,
    pub waited_secs: Option<u64>,
}
