//! The typed runbook: what the parser produces and every other module reads.
//! No stringly-typed maps survive past the parser; references between parts
//! (connections, monitors, step ids) have been checked by the validator.

use serde::Serialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

/// Byte range in the runbook source, kept so later checks can point at it.
pub type Span = Range<usize>;

#[derive(Debug, Clone, Serialize)]
pub struct Runbook {
    #[serde(skip)]
    pub path: PathBuf,
    pub name: String,
    pub title: String,
    pub format: u32,
    pub notes: Option<String>,
    pub window: Option<Window>,
    /// `rehearsals = GLOB`: journals of earlier runs, relative to the runbook's folder.
    pub rehearsals: Option<String>,
    pub vars: BTreeMap<String, String>,
    pub aws: Option<AwsSettings>,
    /// `[operators]`: who may join the run with `ferry attach`, and who may act.
    pub operators: Option<Operators>,
    pub connections: BTreeMap<String, Connection>,
    pub monitors: Monitors,
    pub phases: Vec<Phase>,
    /// SHA-256 of the source text, journaled so a resume can tell the file changed.
    pub source_sha256: String,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Window {
    pub start: chrono::DateTime<chrono::Utc>,
    #[serde(with = "duration_text")]
    pub duration: Duration,
}

/// `[operators]`: the OS group whose members may attach (the socket is made
/// mode 0660 with that group), and the OS users who may act; other members of
/// the group observe. Identified by the kernel (the socket peer's uid), never
/// by a name a client gives.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Operators {
    pub group: Option<String>,
    /// Login names; `None` when `operate` is not given (then every member may act).
    pub operate: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Connection {
    pub name: String,
    pub title: Option<String>,
    /// The URL template as written: `${env:X}` is expanded at run time, `${vars.X}` already was.
    pub url: String,
    pub iam_auth: Option<IamAuth>,
    /// An `iam_auth` written with `enabled = false` (a rehearsal's vars switch it off):
    /// the connection authenticates with its URL's password, `iam_auth` is None, and
    /// `ferry check` says so. Still implies `verify-full`, like `iam_auth`.
    pub iam_auth_off: Option<IamAuth>,
    /// `tls`: the TLS mode written in the runbook (None: from the URL's `sslmode`,
    /// else `verify-full` with `ca` or IAM auth, else libpq's `prefer`).
    pub tls: Option<crate::vocab::TlsMode>,
    /// `ca`: the CA file a `verify-*` mode checks the server's certificate against.
    pub ca: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IamAuth {
    pub instance: String,
    pub user: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Monitors {
    pub lag: Vec<LagMonitor>,
    pub metric: Vec<MetricMonitor>,
    pub rowcounts: Option<RowCountMonitor>,
    /// `[[monitor.dms]]`: AWS DMS replication tasks watched for the whole run.
    pub dms: Vec<DmsMonitor>,
}

/// `[[monitor.dms]]`: a replication task polled for its status, its tables'
/// statistics and its CDC latency (CloudWatch `AWS/DMS`).
#[derive(Debug, Clone, Serialize)]
pub struct DmsMonitor {
    pub name: String,
    /// The task's ARN or identifier.
    pub task: String,
    #[serde(with = "duration_text")]
    pub every: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct LagMonitor {
    pub name: String,
    pub title: Option<String>,
    pub source: LagSource,
    #[serde(with = "opt_duration_text")]
    pub warn: Option<Duration>,
    #[serde(with = "opt_duration_text")]
    pub max: Option<Duration>,
    #[serde(with = "duration_text")]
    pub every: Duration,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LagSource {
    Connection(String),
    Cloudwatch { instance: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricMonitor {
    pub name: String,
    pub title: Option<String>,
    pub unit: Option<String>,
    pub warn: Option<f64>,
    pub max: Option<f64>,
    pub source: MetricSource,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricSource {
    Cloudwatch(CloudwatchMetric),
    Sql(SqlMetric),
}

#[derive(Debug, Clone, Serialize)]
pub struct CloudwatchMetric {
    pub namespace: String,
    pub metric: String,
    pub dimensions: BTreeMap<String, String>,
    pub stat: String,
    #[serde(with = "duration_text")]
    pub period: Duration,
    /// `missing = "zero"`: a period with no datapoint counts as 0 (count
    /// metrics such as HTTPCode_Target_5XX_Count are not published when zero).
    /// By default such a series is stale, and gates on it never pass.
    pub missing_zero: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SqlMetric {
    pub connection: String,
    pub query: String,
    pub rate: bool,
    #[serde(with = "duration_text")]
    pub every: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct RowCountMonitor {
    pub source: String,
    pub target: String,
    pub tables: Vec<String>,
    pub exclude: Vec<String>,
    #[serde(with = "duration_text")]
    pub every: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub id: String,
    pub title: Option<String>,
    pub notes: Option<String>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfirmMode {
    Operator,
    TwoPerson,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    Halt,
    Continue,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Retries {
    pub max: u32,
    #[serde(with = "duration_text")]
    pub backoff: Duration,
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            max: 0,
            backoff: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rollback {
    Shell { run: String },
    Sql { sql: String, connection: String },
    Steps(Vec<String>),
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub id: String,
    pub phase: String,
    pub title: Option<String>,
    pub notes: Option<String>,
    pub confirm: ConfirmMode,
    pub depends_on: Vec<String>,
    /// `depends_on` was written in the runbook (not the default "previous step"): these
    /// steps need their dependencies to succeed, even past `on_failure = "continue"`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub depends_on_explicit: bool,
    #[serde(with = "opt_duration_text")]
    pub timeout: Option<Duration>,
    pub retries: Retries,
    pub on_failure: OnFailure,
    pub rollback: Option<Rollback>,
    pub point_of_no_return: bool,
    pub kind: StepKind,
    /// Where the step's `[[phase.step]]` header is, for later diagnostics.
    #[serde(skip)]
    pub span: Span,
}

impl Step {
    /// The title, or the id when there is none.
    pub fn label(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.id)
    }

    /// A stable digest of everything that defines the step, so a resume can
    /// tell which steps changed since the journal was started.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let json = serde_json::to_string(self).unwrap_or_default();
        let digest = Sha256::digest(json.as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    Confirm,
    Shell(ShellStep),
    Sql(SqlStep),
    Wait(WaitStep),
    Copy(CopyStep),
    Verify(VerifyStep),
    Rds(RdsStep),
    Dms(DmsStep),
    Replicate(ReplicateStep),
}

impl StepKind {
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Confirm => "confirm",
            StepKind::Shell(_) => "shell",
            StepKind::Sql(_) => "sql",
            StepKind::Wait(_) => "wait",
            StepKind::Copy(_) => "copy",
            StepKind::Verify(_) => "verify",
            StepKind::Rds(_) => "rds",
            StepKind::Dms(_) => "dms",
            StepKind::Replicate(_) => "replicate",
        }
    }

    /// A step whose rollback is built in (a `replicate` start drops its
    /// subscription, slot and publication), used when it has no `rollback` of its own.
    pub fn undoes_itself(&self) -> bool {
        matches!(self, StepKind::Replicate(r) if r.action == ReplicateAction::Start)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ShellStep {
    pub run: String,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Expect {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Text(s) => write!(f, "{s:?}"),
            Expect::Integer(i) => write!(f, "{i}"),
            Expect::Float(x) => write!(f, "{x}"),
            Expect::Bool(b) => write!(f, "{b}"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SqlStep {
    pub connection: String,
    pub sql: String,
    pub expect: Option<Expect>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    Above,
    Below,
}

/// A condition a `wait` step waits for, or a copy `throttle` pauses on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Lag of a lag monitor compared with a duration.
    Lag {
        monitor: String,
        compare: Compare,
        #[serde(with = "duration_text")]
        threshold: Duration,
    },
    /// The latest value of a metric monitor compared with a number.
    Metric {
        monitor: String,
        compare: Compare,
        threshold: f64,
    },
    /// True when the first column of the first row is true or non-zero.
    Sql { connection: String, query: String },
    /// The proof at the freeze: the replica (or the slot's subscriber) applied
    /// everything `primary` had written when the wait began.
    CaughtUp { primary: String, by: CatchUpBy },
    /// A gate on a `[[monitor.dms]]` task: its full load done, or its CDC latency
    /// below a duration. Any errored, suspended or validation-failing table fails it.
    Dms { monitor: String, gate: DmsGate },
}

/// What a `{ dms = NAME, ... }` condition waits for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DmsGate {
    /// `full_load = "done"`: every table `Table completed` (or a full-load-only task
    /// stopped with FULL_LOAD_ONLY_FINISHED).
    FullLoadDone,
    /// `latency_below = DURATION`: the CDC latency (the larger of CloudWatch's
    /// CDCLatencySource and CDCLatencyTarget) below it.
    LatencyBelow(#[serde(with = "duration_text")] Duration),
}

/// What a caught-up proof reads to know how far the other side has applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUpBy {
    /// A physical standby (a connection): its replay position.
    Replica(String),
    /// A logical replication slot on the primary: its confirmed flush position.
    Slot(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct WaitStep {
    pub until: Condition,
    #[serde(with = "opt_duration_text")]
    pub hold: Option<Duration>,
    #[serde(with = "duration_text")]
    pub every: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct CopyStep {
    pub from: String,
    pub to: String,
    pub tables: Vec<String>,
    pub exclude: Vec<String>,
    pub chunk_rows: u64,
    pub parallel: u32,
    pub throttle: Option<Condition>,
    pub truncate: bool,
    pub filters: BTreeMap<String, String>,
    /// What a MySQL zero date (`0000-00-00`, or a zero month or day) becomes.
    pub zero_dates: ZeroDates,
}

/// `zero_dates` of a copy from MySQL: PostgreSQL has no zero date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ZeroDates {
    /// The step fails, naming the table, the key and the column.
    #[default]
    Fail,
    /// NULL, counted per column in the copy's report.
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Schema,
    Counts,
    Checksums,
    Sample,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyStep {
    pub source: String,
    pub target: String,
    pub tables: Vec<String>,
    pub exclude: Vec<String>,
    pub checks: Vec<Check>,
    pub sample: u64,
    pub max_diffs: u64,
    #[serde(with = "opt_duration_text")]
    pub time_limit: Option<Duration>,
    /// A MySQL source: how the copy carried zero dates (`"null"`: a zero date on the
    /// source and NULL on the target are the same data).
    pub zero_dates: ZeroDates,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RdsAction {
    CreateReadReplica {
        instance: String,
        source_instance: String,
        instance_class: Option<String>,
    },
    PromoteReadReplica {
        instance: String,
    },
    CreateSnapshot {
        instance: String,
        snapshot: String,
    },
    Reboot {
        instance: String,
    },
    WaitStatus {
        instance: String,
        status: String,
    },
}

impl RdsAction {
    pub fn name(&self) -> &'static str {
        match self {
            RdsAction::CreateReadReplica { .. } => "create_read_replica",
            RdsAction::PromoteReadReplica { .. } => "promote_read_replica",
            RdsAction::CreateSnapshot { .. } => "create_snapshot",
            RdsAction::Reboot { .. } => "reboot",
            RdsAction::WaitStatus { .. } => "wait_status",
        }
    }

    pub fn instance(&self) -> &str {
        match self {
            RdsAction::CreateReadReplica { instance, .. }
            | RdsAction::PromoteReadReplica { instance }
            | RdsAction::CreateSnapshot { instance, .. }
            | RdsAction::Reboot { instance }
            | RdsAction::WaitStatus { instance, .. } => instance,
        }
    }

    /// The AWS API calls this action makes, for `ferry check`.
    pub fn api_calls(&self, waits: bool) -> Vec<&'static str> {
        let mut calls = vec!["rds:DescribeDBInstances"];
        match self {
            RdsAction::CreateReadReplica { .. } => calls.push("rds:CreateDBInstanceReadReplica"),
            RdsAction::PromoteReadReplica { .. } => calls.push("rds:PromoteReadReplica"),
            RdsAction::CreateSnapshot { .. } => {
                calls.push("rds:CreateDBSnapshot");
                if waits {
                    calls.push("rds:DescribeDBSnapshots");
                }
            }
            RdsAction::Reboot { .. } => calls.push("rds:RebootDBInstance"),
            RdsAction::WaitStatus { .. } => {}
        }
        calls
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RdsStep {
    #[serde(flatten)]
    pub action: RdsAction,
    pub wait: Option<String>,
}

/// What a `dms` step's `create` builds: a replication task from the runbook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DmsTaskSpec {
    /// The replication instance's ARN.
    pub instance: String,
    pub source_endpoint: String,
    pub target_endpoint: String,
    /// Table globs (`public.*`), sent as selection rules.
    pub tables: Vec<String>,
    pub exclude: Vec<String>,
    pub migration: DmsMigration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DmsMigration {
    FullLoad,
    FullLoadAndCdc,
}

impl DmsMigration {
    /// The MigrationType value of the DMS API.
    pub fn api_name(self) -> &'static str {
        match self {
            DmsMigration::FullLoad => "full-load",
            DmsMigration::FullLoadAndCdc => "full-load-and-cdc",
        }
    }
}

/// What a `dms` step does to its task.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum DmsAction {
    /// CreateReplicationTask, then wait until it is `ready`.
    Create(DmsTaskSpec),
    /// StartReplicationTask with start type start-replication, resume-processing or
    /// reload-target; `cdc_stop_position` makes the task stop itself there.
    Start {
        cdc_stop_position: Option<String>,
    },
    Resume {
        cdc_stop_position: Option<String>,
    },
    Reload {
        cdc_stop_position: Option<String>,
    },
    /// StopReplicationTask now; with `cdc_stop_position`, no call: the task was
    /// started with that stop position and ferry waits for it to stop there.
    Stop {
        cdc_stop_position: Option<String>,
    },
    /// Only watch the task until `wait` is reached.
    Wait,
}

impl DmsAction {
    pub fn name(&self) -> &'static str {
        match self {
            DmsAction::Create(_) => "create",
            DmsAction::Start { .. } => "start",
            DmsAction::Resume { .. } => "resume",
            DmsAction::Reload { .. } => "reload",
            DmsAction::Stop { .. } => "stop",
            DmsAction::Wait => "wait",
        }
    }

    /// The start type of StartReplicationTask, for start, resume and reload.
    pub fn start_type(&self) -> Option<&'static str> {
        match self {
            DmsAction::Start { .. } => Some("start-replication"),
            DmsAction::Resume { .. } => Some("resume-processing"),
            DmsAction::Reload { .. } => Some("reload-target"),
            _ => None,
        }
    }

    pub fn cdc_stop_position(&self) -> Option<&str> {
        match self {
            DmsAction::Start { cdc_stop_position }
            | DmsAction::Resume { cdc_stop_position }
            | DmsAction::Reload { cdc_stop_position }
            | DmsAction::Stop { cdc_stop_position } => cdc_stop_position.as_deref(),
            _ => None,
        }
    }

    /// The AWS API calls this action makes, for `ferry check`.
    pub fn api_calls(&self) -> Vec<&'static str> {
        let mut calls = vec![
            "dms:DescribeReplicationTasks",
            "dms:DescribeTableStatistics",
        ];
        match self {
            DmsAction::Create(_) => calls.push("dms:CreateReplicationTask"),
            DmsAction::Start { .. } | DmsAction::Resume { .. } | DmsAction::Reload { .. } => {
                calls.push("dms:StartReplicationTask")
            }
            DmsAction::Stop {
                cdc_stop_position: None,
            } => calls.push("dms:StopReplicationTask"),
            DmsAction::Stop { .. } | DmsAction::Wait => {}
        }
        calls
    }
}

/// What a `dms` step waits for after its action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DmsWait {
    /// Status `running`.
    Running,
    /// Every table loaded: a full-load task stopped with FULL_LOAD_ONLY_FINISHED, or a
    /// full-load-and-cdc task running with every table `Table completed`.
    FullLoadDone,
    /// Status `stopped`.
    Stopped,
}

impl DmsWait {
    pub const NAMES: &'static [&'static str] = &["running", "full_load_done", "stopped"];

    pub fn name(self) -> &'static str {
        match self {
            DmsWait::Running => "running",
            DmsWait::FullLoadDone => "full_load_done",
            DmsWait::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DmsStep {
    /// The task: its ARN, or its identifier (which `create` must use).
    pub task: String,
    #[serde(flatten)]
    pub action: DmsAction,
    pub wait: Option<DmsWait>,
}

/// `kind = "replicate"`: PostgreSQL logical replication from `from` to `to`.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicateStep {
    pub action: ReplicateAction,
    pub from: String,
    pub to: String,
    pub tables: Vec<String>,
    pub exclude: Vec<String>,
    /// The publication's, the slot's and the subscription's name.
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicateAction {
    /// Check, then create the publication, the slot and the subscription; done
    /// when every table is ready.
    Start,
    /// Copy the sequences, then drop the subscription, the slot and the publication.
    Stop,
}

impl Runbook {
    /// Every step in runbook order.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.phases.iter().flat_map(|p| p.steps.iter())
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps().find(|s| s.id == id)
    }

    /// Steps named in another step's `rollback` list: they run only when that
    /// rollback is triggered, never in the normal flow. Maps id -> the steps they undo.
    pub fn rollback_only(&self) -> std::collections::BTreeMap<&str, Vec<&str>> {
        let mut out: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for s in self.steps() {
            if let Some(Rollback::Steps(ids)) = &s.rollback {
                for id in ids {
                    out.entry(id.as_str()).or_default().push(s.id.as_str());
                }
            }
        }
        out
    }
}

/// Durations serialise as humantime text ("1m 30s") so journals stay readable.
pub mod duration_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    /// The text `serialize` writes, read back (the attach protocol's snapshots carry a window).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

pub mod opt_duration_text {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }
}
