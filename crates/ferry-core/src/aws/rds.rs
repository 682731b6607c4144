//! The `rds` step actions: create_read_replica, promote_read_replica,
//! create_snapshot, reboot and wait_status, each followed (with `wait`) by
//! polling DescribeDBInstances / DescribeDBSnapshots until the status is
//! reached. The instance's state is captured before and after, for the journal.

use super::{classify, AwsError};
use crate::backoff;
use crate::results::rds::{ActionReport, InstanceState};
use crate::runbook::RdsAction;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub async fn describe(client: &aws_sdk_rds::Client, id: &str) -> Result<InstanceState, AwsError> {
    let out = client
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .map_err(|e| match classify(&e) {
            AwsError::NotFound(_) | AwsError::Other(_)
                if format!("{e:?}").contains("DBInstanceNotFound") =>
            {
                AwsError::NotFound(format!("RDS instance `{id}` does not exist"))
            }
            other => other,
        })?;
    let d = out
        .db_instances()
        .first()
        .ok_or_else(|| AwsError::NotFound(format!("RDS instance `{id}` does not exist")))?;
    Ok(InstanceState {
        instance: id.to_string(),
        status: d.db_instance_status().unwrap_or("unknown").to_string(),
        engine: d.engine().map(str::to_string),
        class: d.db_instance_class().map(str::to_string),
        endpoint: d.endpoint().and_then(|e| e.address()).map(str::to_string),
        port: d.endpoint().and_then(|e| e.port()),
        replica_of: d
            .read_replica_source_db_instance_identifier()
            .map(str::to_string),
        replicas: d.read_replica_db_instance_identifiers().to_vec(),
    })
}

async fn snapshot_status(client: &aws_sdk_rds::Client, id: &str) -> Result<String, AwsError> {
    let out = client
        .describe_db_snapshots()
        .db_snapshot_identifier(id)
        .send()
        .await
        .map_err(|e| classify(&e))?;
    Ok(out
        .db_snapshots()
        .first()
        .and_then(|s| s.status())
        .unwrap_or("unknown")
        .to_string())
}

/// Progress messages for the operator while an action runs or waits.
pub type Note<'a> = &'a (dyn Fn(String) + Send + Sync);

/// The longest wait after a throttled call or an unreachable endpoint.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// How the calls of an `rds` step are spaced: a poll every `every`; after a throttled
/// call or an unreachable endpoint, a wait doubling from `every` up to
/// [`MAX_RETRY_WAIT`], with jitter (so that clients throttled together do not call
/// again together) unless `exact`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pace {
    every: Duration,
    exact: bool,
}

impl Pace {
    pub(super) fn jittered(every: Duration) -> Pace {
        Pace {
            every,
            exact: false,
        }
    }

    /// The time between two polls.
    pub(super) fn every(&self) -> Duration {
        self.every
    }

    #[cfg(test)]
    fn exact(every: Duration) -> Pace {
        Pace { every, exact: true }
    }

    /// The wait after `failures` (1-based) failed calls in a row.
    fn retry_wait(&self, failures: u32) -> Duration {
        if self.exact {
            backoff::capped(self.every, failures, MAX_RETRY_WAIT)
        } else {
            backoff::jittered(self.every, failures, MAX_RETRY_WAIT)
        }
    }
}

/// Poll every `pace.every` until `probe` returns `want`, or cancel. Throttling and
/// unreachable endpoints back off (capped) instead of failing at once.
///
/// `reported` is the status the action's own response gave (`rebooting`,
/// `modifying`, `creating`). RDS is eventually consistent: right after the
/// call, DescribeDBInstances may still say `available` (the state before
/// the action), or not know a new instance or snapshot yet. So when the
/// action reported a status other than `want`, `want` only counts once a
/// different status has been seen, or after [`SETTLE_POLLS`] polls; until then
/// "not found" is "not visible yet", not an error.
async fn poll_until<F, Fut>(
    what: &str,
    want: &str,
    reported: Option<&str>,
    pace: Pace,
    cancel: &CancellationToken,
    note: Note<'_>,
    mut probe: F,
) -> Result<u64, AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, AwsError>>,
{
    let started = tokio::time::Instant::now();
    let mut last = String::new();
    // failed polls in a row: the wait grows with them and a good answer resets it
    let mut failures = 0u32;
    let mut retrying: Option<AwsError> = None;
    let mut settling = reported.filter(|r| *r != want).map(str::to_string);
    let mut polls = 0u32;
    loop {
        polls += 1;
        if polls > SETTLE_POLLS {
            settling = None;
        }
        match probe().await {
            Ok(status) => {
                failures = 0;
                if status == want {
                    match &settling {
                        None => return Ok(started.elapsed().as_secs()),
                        Some(r) => {
                            if last != status {
                                note(format!("{what} still shows `{status}`, but the call reported `{r}`: waiting for the change to show"));
                                last = status;
                            }
                        }
                    }
                } else {
                    settling = None;
                    if status != last {
                        note(format!("{what} is `{status}`, waiting for `{want}`"));
                        last = status;
                    }
                }
            }
            Err(AwsError::NotFound(m)) if settling.is_some() => {
                if last != "not found" {
                    note(format!("{m}: not visible yet, waiting"));
                    last = "not found".into();
                }
            }
            Err(e) if e.is_retryable() => {
                failures += 1;
                retrying = Some(e);
            }
            Err(e) => return Err(e),
        }
        let wait = match failures {
            0 => pace.every,
            n => pace.retry_wait(n + 1),
        };
        if let Some(e) = retrying.take() {
            note(format!(
                "{e}; retrying in {}",
                humantime::format_duration(wait)
            ));
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err(AwsError::Other("cancelled".into())),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// How many polls a status the action's response contradicts is disbelieved.
pub const SETTLE_POLLS: u32 = 3;

/// Make one call, again after a capped, doubling backoff while AWS throttles it
/// (a throttled call did nothing, so calling again is safe).
pub(super) async fn call<T, F, Fut>(
    what: &str,
    pace: Pace,
    cancel: &CancellationToken,
    note: Note<'_>,
    mut f: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    let mut throttled = 0u32;
    loop {
        match f().await {
            Err(e @ AwsError::Throttled(_)) => {
                throttled += 1;
                let wait = pace.retry_wait(throttled);
                note(format!(
                    "{what}: {e}; retrying in {}",
                    humantime::format_duration(wait)
                ));
                tokio::select! {
                    _ = cancel.cancelled() => return Err(AwsError::Other("cancelled".into())),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            other => return other,
        }
    }
}

/// What every call of one `rds` step shares: the client, the pace, the cancel
/// token and where notes go.
struct Session<'a> {
    client: &'a aws_sdk_rds::Client,
    pace: Pace,
    cancel: &'a CancellationToken,
    note: Note<'a>,
}

impl Session<'_> {
    /// The instance's state, through a throttle.
    async fn describe(&self, id: &str) -> Result<InstanceState, AwsError> {
        call(
            "DescribeDBInstances",
            self.pace,
            self.cancel,
            self.note,
            || describe(self.client, id),
        )
        .await
    }

    /// Call `f` through a throttle as `what`.
    async fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsError>>,
    {
        call(what, self.pace, self.cancel, self.note, f).await
    }
}

/// Perform an action, then (with `wait`) poll until the status is reached.
pub async fn perform(
    client: &aws_sdk_rds::Client,
    action: &RdsAction,
    wait: Option<&str>,
    every: Duration,
    cancel: &CancellationToken,
    note: Note<'_>,
) -> Result<ActionReport, AwsError> {
    let s = Session {
        client,
        pace: Pace::jittered(every),
        cancel,
        note,
    };
    let instance = action.instance().to_string();
    let before = match action {
        RdsAction::CreateReadReplica { .. } => None,
        _ => Some(s.describe(&instance).await?),
    };
    if let Some(b) = &before {
        note(format!("before: `{}` is `{}`", b.instance, b.status));
    }
    let mut report = ActionReport {
        action: action.name().to_string(),
        instance: instance.clone(),
        before,
        after: None,
        snapshot: None,
        snapshot_status: None,
        waited_for: wait.map(str::to_string),
        waited_secs: None,
    };
    // the status the action's response reports, to see through stale describes
    let reported = act(&s, action, &mut report).await?;
    if let Some(want) = wait_target(action, wait) {
        report.waited_secs =
            Some(wait_for(&s, action, &want, reported.as_deref(), &mut report).await?);
    }
    let after = s.describe(&instance).await?;
    note(format!("after: `{}` is `{}`", after.instance, after.status));
    report.after = Some(after);
    Ok(report)
}

/// Make the action's call; returns the status its answer reports.
async fn act(
    s: &Session<'_>,
    action: &RdsAction,
    report: &mut ActionReport,
) -> Result<Option<String>, AwsError> {
    let instance = action.instance();
    match action {
        RdsAction::CreateReadReplica {
            source_instance,
            instance_class,
            ..
        } => create_read_replica(s, instance, source_instance, instance_class.as_deref()).await,
        RdsAction::PromoteReadReplica { .. } => {
            if report
                .before
                .as_ref()
                .is_some_and(|b| b.replica_of.is_none())
            {
                return Err(AwsError::Refused(format!("`{instance}` is not a read replica (it has no replication source); refusing to call PromoteReadReplica")));
            }
            let out = s
                .call("PromoteReadReplica", || async {
                    s.client
                        .promote_read_replica()
                        .db_instance_identifier(instance)
                        .send()
                        .await
                        .map_err(|e| classify(&e))
                })
                .await?;
            (s.note)(format!("PromoteReadReplica `{instance}` accepted"));
            Ok(status_of(out.db_instance()))
        }
        RdsAction::CreateSnapshot { snapshot, .. } => {
            let out = s
                .call("CreateDBSnapshot", || async {
                    s.client
                        .create_db_snapshot()
                        .db_instance_identifier(instance)
                        .db_snapshot_identifier(snapshot)
                        .send()
                        .await
                        .map_err(|e| classify(&e))
                })
                .await?;
            (s.note)(format!(
                "CreateDBSnapshot `{snapshot}` of `{instance}` accepted"
            ));
            report.snapshot = Some(snapshot.clone());
            Ok(out
                .db_snapshot()
                .and_then(|d| d.status())
                .map(str::to_string))
        }
        RdsAction::Reboot { .. } => {
            let out = s
                .call("RebootDBInstance", || async {
                    s.client
                        .reboot_db_instance()
                        .db_instance_identifier(instance)
                        .send()
                        .await
                        .map_err(|e| classify(&e))
                })
                .await?;
            (s.note)(format!("RebootDBInstance `{instance}` accepted"));
            Ok(status_of(out.db_instance()))
        }
        RdsAction::WaitStatus { .. } => Ok(None),
    }
}

/// Create read replica `instance` of `source`, after looking at the source.
async fn create_read_replica(
    s: &Session<'_>,
    instance: &str,
    source: &str,
    class: Option<&str>,
) -> Result<Option<String>, AwsError> {
    let src = s.describe(source).await?;
    (s.note)(format!("source `{}` is `{}`", src.instance, src.status));
    let mut req = s
        .client
        .create_db_instance_read_replica()
        .db_instance_identifier(instance)
        .source_db_instance_identifier(source);
    if let Some(c) = class {
        req = req.db_instance_class(c);
    }
    let out = s
        .call("CreateDBInstanceReadReplica", || async {
            req.clone().send().await.map_err(|e| classify(&e))
        })
        .await?;
    (s.note)(format!(
        "CreateDBInstanceReadReplica `{instance}` from `{source}` accepted"
    ));
    Ok(status_of(out.db_instance()))
}

/// What to wait for: `wait`, or the status a `wait_status` step names.
fn wait_target(action: &RdsAction, wait: Option<&str>) -> Option<String> {
    match (action, wait) {
        (RdsAction::WaitStatus { status, .. }, _) => Some(status.clone()),
        (_, Some(w)) => Some(w.to_string()),
        _ => None,
    }
}

/// Poll the snapshot (for `create_snapshot`) or the instance until it shows `want`;
/// returns the seconds waited.
async fn wait_for(
    s: &Session<'_>,
    action: &RdsAction,
    want: &str,
    reported: Option<&str>,
    report: &mut ActionReport,
) -> Result<u64, AwsError> {
    match action {
        RdsAction::CreateSnapshot { snapshot, .. } => {
            let secs = poll_until(
                &format!("snapshot `{snapshot}`"),
                want,
                reported,
                s.pace,
                s.cancel,
                s.note,
                || snapshot_status(s.client, snapshot),
            )
            .await?;
            report.snapshot_status = Some(want.to_string());
            Ok(secs)
        }
        _ => {
            let id = action.instance();
            poll_until(
                &format!("`{id}`"),
                want,
                reported,
                s.pace,
                s.cancel,
                s.note,
                || async { describe(s.client, id).await.map(|st| st.status) },
            )
            .await
        }
    }
}

/// The status an RDS call's answer reports for its instance.
fn status_of(d: Option<&aws_sdk_rds::types::DbInstance>) -> Option<String> {
    d.and_then(|d| d.db_instance_status()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test(start_paused = true)]
    async fn throttling_backs_off_and_the_wait_goes_on() {
        let answers = Mutex::new(vec![
            Ok("available".to_string()),
            Err(AwsError::Throttled("Rate exceeded".into())),
            Err(AwsError::Throttled("Rate exceeded".into())),
            Ok("backing-up".to_string()),
        ]);
        let notes = Mutex::new(Vec::new());
        let note = |s: String| notes.lock().unwrap().push(s);
        let started = tokio::time::Instant::now();
        let cancel = CancellationToken::new();
        let r = poll_until(
            "`db`",
            "available",
            None,
            Pace::exact(Duration::from_secs(10)),
            &cancel,
            &note,
            || {
                let next = answers
                    .lock()
                    .unwrap()
                    .pop()
                    .unwrap_or(Ok("available".into()));
                async move { next }
            },
        )
        .await;
        assert!(r.is_ok());
        // 10s after backing-up, then 20s and 40s of backoff for the two throttles
        assert_eq!(started.elapsed(), Duration::from_secs(70));
        let notes = notes.lock().unwrap();
        assert!(
            notes
                .iter()
                .any(|n| n.contains("throttled") && n.contains("retrying in 20s")),
            "{notes:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_denied_call_fails_at_once() {
        let cancel = CancellationToken::new();
        let note = |_s: String| {};
        let r = poll_until(
            "`db`",
            "available",
            None,
            Pace::exact(Duration::from_secs(10)),
            &cancel,
            &note,
            || async { Err::<String, _>(AwsError::Denied("no".into())) },
        )
        .await;
        assert_eq!(r, Err(AwsError::Denied("no".into())));
    }

    /// Run `poll_until` over scripted answers (first answer first), every 10 s.
    async fn scripted(
        reported: Option<&str>,
        answers: Vec<Result<&str, AwsError>>,
    ) -> (Result<u64, AwsError>, Duration, Vec<String>) {
        let answers = Mutex::new(
            answers
                .into_iter()
                .rev()
                .map(|a| a.map(str::to_string))
                .collect::<Vec<_>>(),
        );
        let notes = Mutex::new(Vec::new());
        let note = |s: String| notes.lock().unwrap().push(s);
        let cancel = CancellationToken::new();
        let started = tokio::time::Instant::now();
        let r = poll_until(
            "`db`",
            "available",
            reported,
            Pace::exact(Duration::from_secs(10)),
            &cancel,
            &note,
            || {
                let next = answers
                    .lock()
                    .unwrap()
                    .pop()
                    .unwrap_or(Ok("available".into()));
                async move { next }
            },
        )
        .await;
        let notes = notes.lock().unwrap().clone();
        (r, started.elapsed(), notes)
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_available_right_after_a_reboot_is_not_believed() {
        // RebootDBInstance answered `rebooting`; describe still says `available` twice
        let (r, took, notes) = scripted(
            Some("rebooting"),
            vec![
                Ok("available"),
                Ok("available"),
                Ok("rebooting"),
                Ok("available"),
            ],
        )
        .await;
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(took, Duration::from_secs(30), "{notes:?}");
        assert!(
            notes
                .iter()
                .any(|n| n.contains("still shows `available`") && n.contains("`rebooting`")),
            "{notes:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_settling_ends_after_a_few_polls() {
        // the change was too quick to be seen: believe `available` at the 4th poll
        let (r, took, _) = scripted(Some("modifying"), vec![]).await;
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(took, Duration::from_secs(10 * u64::from(SETTLE_POLLS)));
        // moto and any action whose answer already says `available`: no wait at all
        let (r, took, _) = scripted(Some("available"), vec![]).await;
        assert!(r.is_ok());
        assert_eq!(took, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_instance_not_visible_yet_is_waited_for() {
        let (r, took, notes) = scripted(
            Some("creating"),
            vec![
                Err(AwsError::NotFound(
                    "RDS instance `db` does not exist".into(),
                )),
                Ok("creating"),
                Ok("available"),
            ],
        )
        .await;
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(took, Duration::from_secs(20));
        assert!(
            notes.iter().any(|n| n.contains("not visible yet")),
            "{notes:?}"
        );
        // without an action that creates it, "not found" fails at once
        let (r, _, _) = scripted(
            None,
            vec![Err(AwsError::NotFound(
                "RDS instance `db` does not exist".into(),
            ))],
        )
        .await;
        assert!(matches!(r, Err(AwsError::NotFound(_))), "{r:?}");
    }
}
