//! The report model: everything the review meeting asks, derived from the
//! journal alone (no runbook, no database). Serialises as the JSON report
//! (`assets/report.schema.json`, `schema_version` 1).

use crate::journal::StepMeta;
use crate::vocab::EvidenceItem;
use chrono::{DateTime, Utc};
use serde::Serialize;

mod fold;
pub use fold::build;

pub const SCHEMA_VERSION: u32 = 1;
/// Output lines kept for each failed step.
pub const FAILED_OUTPUT_LINES: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct ReportModel {
    pub schema_version: u32,
    pub generated_by: String,
    pub journal: JournalInfo,
    pub runbook: RunbookInfo,
    pub run: RunInfo,
    pub window: Option<WindowInfo>,
    pub steps: Vec<StepReport>,
    pub confirmations: Vec<Confirmation>,
    pub points_of_no_return: Vec<PointOfNoReturn>,
    pub interruptions: Vec<Interruption>,
    pub results: Vec<StepResult>,
    /// The caught-up proofs (absent when the run had none): both WAL positions each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub caught_up: Vec<CaughtUpProof>,
    /// Replication slots a teardown could not drop (absent when none): each still
    /// holds WAL on its source.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slots_left: Vec<SlotLeft>,
    pub series: Vec<Series>,
    pub notes: Vec<Note>,
    /// Each database connection the run opened and its TLS: encrypted, verified.
    /// Absent from journals written before ferry recorded it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<ConnectionReport>,
    /// What the run's forecast was based on (absent without `rehearsals`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forecast: Option<ForecastInfo>,
    /// The forecast as each step started: projected end and rollback budget
    /// (absent without `rehearsals`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub budget: Vec<BudgetPoint>,
}

/// The forecast journaled as a step started.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetPoint {
    pub at: DateTime<Utc>,
    pub step: String,
    pub end_median: DateTime<Utc>,
    pub end_p90: DateTime<Utc>,
    /// Window end − then − p90 of the rollback path (none when unknown).
    pub budget_secs: Option<f64>,
}

/// The rehearsal journals a run's forecast came from, as it journaled them.
#[derive(Debug, Clone, Serialize)]
pub struct ForecastInfo {
    pub at: DateTime<Utc>,
    pub journals: Vec<String>,
}

/// A step's rehearsed duration, as the run's forecast had it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Planned {
    /// How many rehearsals it comes from.
    pub n: usize,
    pub median_secs: f64,
    pub p90_secs: f64,
}

/// One database connection as journaled when it opened (repeats with the same
/// TLS, after a resume, are folded into the first).
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionReport {
    /// When it first opened.
    pub at: DateTime<Utc>,
    pub connection: String,
    /// `host:port`.
    pub address: String,
    /// The TLS mode in force (libpq's `sslmode` names).
    pub mode: String,
    pub encrypted: bool,
    /// The server's certificate was verified against `ca` (and its host name, for verify-full).
    pub verified: bool,
    pub ca: Option<String>,
    pub protocol: Option<String>,
    pub cipher: Option<String>,
    pub warning: Option<String>,
}

impl ConnectionReport {
    /// "verified", "encrypted, NOT verified" or "NOT encrypted".
    pub fn state(&self) -> &'static str {
        match (self.encrypted, self.verified) {
            (true, true) => "verified",
            (true, false) => "encrypted, NOT verified",
            (false, _) => "NOT encrypted",
        }
    }
}

/// A replication slot ferry could not drop, by the last teardown of its name.
#[derive(Debug, Clone, Serialize)]
pub struct SlotLeft {
    pub step: String,
    pub slot: String,
    pub at: DateTime<Utc>,
}

/// A caught-up proof's journaled result, with its step and time.
#[derive(Debug, Clone, Serialize)]
pub struct CaughtUpProof {
    pub step: String,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub proof: crate::results::caught_up::CaughtUpReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct JournalInfo {
    pub path: String,
    pub lines: usize,
    /// True when every line verified and chained.
    pub chain_ok: bool,
    /// The first line that failed verification, and why.
    pub broken_line: Option<usize>,
    pub problem: Option<String>,
    /// A last line cut short by a crash (dropped).
    pub torn_line: Option<usize>,
    /// The hash of the last verified line: the chain's head. Kept outside the
    /// journal (in the change ticket), it makes a later edit, a cut-off end or a
    /// re-chained forgery detectable, which the chain alone cannot.
    pub head: Option<String>,
    /// Its line number.
    pub head_line: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunbookInfo {
    pub name: String,
    pub title: String,
    pub path: String,
    pub sha256: String,
    pub ferry_version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub at: DateTime<Utc>,
    pub operator: String,
    pub host: String,
    pub resumed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub started: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
    pub duration_secs: Option<f64>,
    /// succeeded, failed, aborted, or unfinished (the journal was not closed).
    pub outcome: String,
    pub operators: Vec<String>,
    pub sessions: Vec<Session>,
    /// Seconds no ferry process was running: from each crash (the last line
    /// the dead process wrote) to its resume. Part of `duration_secs`.
    pub down_secs: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowInfo {
    pub planned_start: DateTime<Utc>,
    pub planned_end: DateTime<Utc>,
    pub planned_secs: u64,
    /// Seconds the run ended after the window closed (negative: before).
    pub overrun_secs: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub id: String,
    pub phase: String,
    pub title: String,
    pub kind: String,
    pub confirm: String,
    pub point_of_no_return: bool,
    pub rollback_only: bool,
    /// not run, running, succeeded, failed, skipped, interrupted, rolled back
    pub state: String,
    pub started: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
    pub duration_secs: Option<f64>,
    /// Who confirmed it (a two-person step: who proposed it), with the uid when
    /// the journal has it: `alice (uid 1001)`; "automatic (--yes)" for a
    /// rehearsal's confirmation, "none needed" for a step with `confirm = "none"`.
    pub confirmed_by: Option<String>,
    /// A two-person step's second operator, who approved the proposal.
    pub approved_by: Option<String>,
    /// The labels of the evidence that was stale when the step was confirmed
    /// (proposed), and whether the operator acknowledged confirming over it
    /// (never for `--yes`).
    pub stale_evidence: Vec<String>,
    pub stale_acknowledged: bool,
    pub attempts: u32,
    pub skip_reason: Option<String>,
    pub skipped_at: Option<DateTime<Utc>>,
    pub rollback: Option<String>,
    /// When a rollback was asked, and when it ended (done or failed).
    pub rollback_started: Option<DateTime<Utc>>,
    pub rollback_ended: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub interrupted: u32,
    /// The last output lines of a failed step.
    pub last_output: Vec<String>,
    /// The last progress it reported: units done (its total, when that was
    /// larger) and what they count. For the rehearsed step rates, not the report.
    #[serde(skip)]
    pub last_progress: Option<(u64, String)>,
    /// Its rehearsed median and p90, when the run had a forecast.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned: Option<Planned>,
}

impl StepReport {
    /// A step the header's plan does not list (an old journal): known only by its id.
    fn unplanned(id: &str) -> StepReport {
        StepReport {
            id: id.to_string(),
            phase: String::new(),
            title: id.to_string(),
            kind: String::new(),
            confirm: String::new(),
            point_of_no_return: false,
            rollback_only: false,
            state: "not run".into(),
            started: None,
            ended: None,
            duration_secs: None,
            confirmed_by: None,
            approved_by: None,
            stale_evidence: Vec::new(),
            stale_acknowledged: false,
            attempts: 0,
            skip_reason: None,
            skipped_at: None,
            rollback: None,
            rollback_started: None,
            rollback_ended: None,
            outcome: None,
            interrupted: 0,
            last_output: Vec::new(),
            last_progress: None,
            planned: None,
        }
    }

    fn planned(m: &StepMeta) -> StepReport {
        StepReport {
            phase: m.phase.clone(),
            title: m.title.clone(),
            kind: m.kind.clone(),
            confirm: format!("{:?}", m.confirm)
                .to_lowercase()
                .replace("twoperson", "two-person"),
            point_of_no_return: m.point_of_no_return,
            rollback_only: m.rollback_only,
            ..StepReport::unplanned(&m.id)
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Confirmation {
    pub step: String,
    /// "confirmed"; for a two-person step "proposed", "approved" or "withdrawn".
    pub action: String,
    pub at: DateTime<Utc>,
    pub operator: String,
    pub host: String,
    /// The kernel's view of who it was (absent in journals from before uids).
    pub uid: Option<u32>,
    pub login: Option<String>,
    pub automatic: bool,
    /// What was on screen: for an approval, the proposal's evidence it approved.
    pub evidence: Vec<EvidenceItem>,
    /// SHA-256 of the evidence's canonical JSON (what proposer and approver compare).
    pub evidence_sha256: String,
    /// The labels of the items that were stale when confirmed, and whether the
    /// operator acknowledged every one of them (an automatic confirmation never does).
    pub stale_evidence: Vec<String>,
    pub stale_acknowledged: bool,
}

/// The labels of `evidence`'s stale items, and whether every one was acknowledged.
pub fn stale_of(evidence: &[EvidenceItem]) -> (Vec<String>, bool) {
    let stale: Vec<&EvidenceItem> = evidence.iter().filter(|e| e.stale).collect();
    let acknowledged = !stale.is_empty() && stale.iter().all(|e| e.acknowledged);
    (
        stale.iter().map(|e| e.label.clone()).collect(),
        acknowledged,
    )
}

impl Confirmation {
    /// `alice@bastion (uid 1001)`, or `alice@bastion` without a uid.
    pub fn who(&self) -> String {
        crate::vocab::Actor {
            operator: self.operator.clone(),
            host: self.host.clone(),
            uid: self.uid,
            login: self.login.clone(),
        }
        .at()
    }

    /// Whether it belongs to a two-person step's proposal and approval.
    pub fn two_person(&self) -> bool {
        self.action != "confirmed"
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PointOfNoReturn {
    pub step: String,
    /// When it succeeded, if it did.
    pub passed_at: Option<DateTime<Utc>>,
    pub confirmed_by: Option<String>,
}

/// A resume: the process before it stopped (crash, kill, closed console)
/// and a later one took the journal up again.
#[derive(Debug, Clone, Serialize)]
pub struct Interruption {
    /// When the run was resumed.
    pub at: DateTime<Utc>,
    /// The steps that were running when it stopped (they come back interrupted).
    pub steps: Vec<String>,
    pub resumed_by: Option<String>,
    /// The last line the stopped process wrote: it ran at least until then.
    pub stopped_at: Option<DateTime<Utc>>,
    /// Seconds from `stopped_at` to the resume: no ferry was running.
    pub down_secs: Option<f64>,
}

/// A step's structured result (copy, verify, rds), as journaled.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub step: String,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub monitor: String,
    /// "lag" (seconds), "lag_bytes" (bytes behind) or "metric".
    pub series: String,
    pub unit: Option<String>,
    pub warn: Option<f64>,
    pub max: Option<f64>,
    pub points: Vec<(DateTime<Utc>, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Note {
    pub at: DateTime<Utc>,
    pub step: Option<String>,
    pub text: String,
}

#[cfg(test)]
mod tests {
    use crate::journal::Entry;
    use crate::report::testkit::{at, bob, ev, session};
    use crate::vocab::{Decision, Event, Outcome};

    #[test]
    fn skips_rollbacks_and_stops_carry_their_times() {
        let ok = Outcome::Succeeded {
            summary: "ok".into(),
        };
        let m = crate::report::testkit::model(vec![
            (0, session(false)),
            (
                1,
                ev(Event::Decided {
                    by: bob(),
                    decision: Decision::Skip {
                        step: "a".into(),
                        reason: "not needed".into(),
                    },
                }),
            ),
            (
                2,
                ev(Event::Started {
                    step: "b".into(),
                    attempt: 1,
                }),
            ),
            (
                3,
                ev(Event::Finished {
                    step: "b".into(),
                    attempt: 1,
                    outcome: ok.clone(),
                }),
            ),
            (
                4,
                ev(Event::Started {
                    step: "c".into(),
                    attempt: 1,
                }),
            ),
            // the process dies here; a resume 60 s later, with a note between
            (70, session(true)),
            (
                70,
                Entry::Note {
                    step: None,
                    text: "stopped leftovers".into(),
                },
            ),
            (
                70,
                ev(Event::Interrupted {
                    steps: vec!["c".into()],
                }),
            ),
            (
                80,
                ev(Event::Decided {
                    by: bob(),
                    decision: Decision::Rollback {
                        step: "b".into(),
                        override_point_of_no_return: false,
                    },
                }),
            ),
            (
                82,
                ev(Event::RollbackFinished {
                    step: "b".into(),
                    outcome: ok,
                }),
            ),
            // the console closed while nothing ran, and was opened again
            (100, session(true)),
        ]);
        let a = &m.steps[0];
        assert_eq!((a.id.as_str(), a.skipped_at), ("a", Some(at(1))));
        let b = &m.steps[1];
        assert_eq!(b.state, "rolled back");
        assert_eq!(
            (b.rollback_started, b.rollback_ended),
            (Some(at(80)), Some(at(82)))
        );
        assert_eq!(
            b.rollback.as_deref(),
            Some(format!(
                "asked by bob at {}; rolled back at {}",
                at(80).format("%H:%M:%S"),
                at(82).format("%H:%M:%S")
            ))
            .as_deref()
        );
        assert_eq!(m.interruptions.len(), 2, "{:?}", m.interruptions);
        let i = &m.interruptions[0];
        assert_eq!(i.steps, ["c"]);
        assert_eq!(
            (i.at, i.stopped_at, i.down_secs),
            (at(70), Some(at(4)), Some(66.0))
        );
        let i = &m.interruptions[1];
        assert!(i.steps.is_empty(), "nothing was running: {i:?}");
        assert_eq!(i.down_secs, Some(18.0));
        assert_eq!(m.run.down_secs, 84.0);
    }
}
