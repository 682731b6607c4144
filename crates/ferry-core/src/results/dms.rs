//! The result of a `dms` step, as journaled and as reports read it: the action, the
//! replication task's state before and after, its tables' statistics, the settings a
//! `create` used, and every problem found (an errored or suspended table, failed
//! validation, a task stopped by a failure). Data only; the `dms` executor fills it in.

use serde::{Deserialize, Serialize};

/// What DescribeReplicationTasks says of a task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskState {
    /// The task's identifier.
    pub task: String,
    pub arn: String,
    pub status: String,
    pub migration_type: Option<String>,
    pub stop_reason: Option<String>,
    pub last_failure_message: Option<String>,
    pub full_load_percent: Option<i32>,
    pub tables_loaded: Option<i32>,
    pub tables_loading: Option<i32>,
    pub tables_queued: Option<i32>,
    pub tables_errored: Option<i32>,
    pub cdc_stop_position: Option<String>,
    /// The replication instance the task runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_arn: Option<String>,
    /// Where DMS would resume CDC from (the runbook's checkpoint log kept this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_checkpoint: Option<String>,
}

impl TaskState {
    /// The task's resource id, the end of its ARN: CloudWatch's
    /// `ReplicationTaskIdentifier` dimension.
    pub fn resource_id(&self) -> &str {
        self.arn.rsplit(':').next().unwrap_or(&self.arn)
    }
}

/// What DescribeTableStatistics says of one table of a task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStat {
    pub schema: String,
    pub table: String,
    /// "Before load", "Full load", "Table completed", "Table error", …
    pub state: String,
    pub full_load_rows: i64,
    pub inserts: i64,
    pub updates: i64,
    pub deletes: i64,
    pub validation_state: Option<String>,
    pub validation_failed: i64,
    pub validation_suspended: i64,
    pub validation_pending: i64,
}

impl TableStat {
    /// `schema.table`.
    pub fn name(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

/// The structured result journaled for a `dms` step.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DmsReport {
    pub action: String,
    /// The task as the runbook names it (identifier or ARN).
    pub task: String,
    pub before: Option<TaskState>,
    pub after: Option<TaskState>,
    /// The tables at the last look.
    pub tables: Vec<TableStat>,
    /// `create`: the ReplicationTaskSettings and TableMappings sent.
    pub settings: Option<serde_json::Value>,
    pub table_mappings: Option<serde_json::Value>,
    pub waited_for: Option<String>,
    pub waited_secs: Option<u64>,
    /// Why the step failed: each names the table (or the task) and the message.
    pub problems: Vec<String>,
}
