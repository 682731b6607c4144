//! The `rds` step actions: create_read_replica, promote_read_replica,
//! create_snapshot, reboot and wait_status, each followed (with `wait`) by
//! polling DescribeDBInstances / DescribeDBSnapshots until the status is
//! reached. The instance's state is captured before and after, for the journal.

use super::{classify, AwsError};
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

/// Poll every `every` until `probe` returns `want`, or cancel. Throttling and
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
    every: Duration,
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
    let mut backoff = every;
    let mut settling = reported.filter(|r| *r != want).map(str::to_string);
    let mut polls = 0u32;
    loop {
        polls += 1;
        if polls > SETTLE_POLLS {
            settling = None;
        }
        match probe().await {
            Ok(status) => {
                backoff = every;
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
                note(format!(
                    "{e}; retrying in {}",
                    humantime::format_duration(backoff)
                ));
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err(AwsError::Other("cancelled".into())),
            _ = tokio::time::sleep(backoff) => {}
        }
    }
}

/// How many polls a status the action's response contradicts is disbelieved.
pub const SETTLE_POLLS: u32 = 3;

/// Make one call, again after a capped, doubling backoff while AWS throttles it
/// (a throttled call did nothing, so calling again is safe).
async fn call<T, F, Fut>(
    what: &str,
    every: Duration,
    cancel: &CancellationToken,
    note: Note<'_>,
    mut f: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    let mut backoff = every;
    loop {
        match f().await {
            Err(e @ AwsError::Throttled(_)) => {
                note(format!(
                    "{what}: {e}; retrying in {}",
                    humantime::format_duration(backoff)
                ));
                tokio::select! {
                    _ = cancel.cancelled() => return Err(AwsError::Other("cancelled".into())),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
            other => return other,
        }
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
    let instance = action.instance().to_string();
    let before = match action {
        RdsAction::CreateReadReplica { .. } => None,
        _ => Some(
            call("DescribeDBInstances", every, cancel, note, || {
                describe(client, &instance)
            })
            .await?,
        ),
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
    let mut reported: Option<String> = None;
    match action {
        RdsAction::CreateReadReplica {
            source_instance,
            instance_class,
            ..
        } => {
            let src = call("DescribeDBInstances", every, cancel, note, || {
                describe(client, source_instance)
            })
            .await?;
            note(format!("source `{}` is `{}`", src.instance, src.status));
            let mut req = client
                .create_db_instance_read_replica()
                .db_instance_identifier(&instance)
                .source_db_instance_identifier(source_instance);
            if let Some(c) = instance_class {
                req = req.db_instance_class(c);
            }
            let out = call(
                "CreateDBInstanceReadReplica",
                every,
                cancel,
                note,
                || async { req.clone().send().await.map_err(|e| classify(&e)) },
            )
            .await?;
            reported = status_of(out.db_instance());
            note(format!(
                "CreateDBInstanceReadReplica `{instance}` from `{source_instance}` accepted"
            ));
        }
        RdsAction::PromoteReadReplica { .. } => {
            if report
                .before
                .as_ref()
                .is_some_and(|b| b.replica_of.is_none())
            {
                return Err(AwsError::Refused(format!("`{instance}` is not a read replica (it has no replication source); refusing to call PromoteReadReplica")));
            }
            let out = call("PromoteReadReplica", every, cancel, note, || async {
                client
                    .promote_read_replica()
                    .db_instance_identifier(&instance)
                    .send()
                    .await
                    .map_err(|e| classify(&e))
            })
            .await?;
            reported = status_of(out.db_instance());
            note(format!("PromoteReadReplica `{instance}` accepted"));
        }
        RdsAction::CreateSnapshot { snapshot, .. } => {
            let out = call("CreateDBSnapshot", every, cancel, note, || async {
                client
                    .create_db_snapshot()
                    .db_instance_identifier(&instance)
                    .db_snapshot_identifier(snapshot)
                    .send()
                    .await
                    .map_err(|e| classify(&e))
            })
            .await?;
            reported = out
                .db_snapshot()
                .and_then(|d| d.status())
                .map(str::to_string);
            note(format!(
                "CreateDBSnapshot `{snapshot}` of `{instance}` accepted"
            ));
            report.snapshot = Some(snapshot.clone());
        }
        RdsAction::Reboot { .. } => {
            let out = call("RebootDBInstance", every, cancel, note, || async {
                client
                    .reboot_db_instance()
                    .db_instance_identifier(&instance)
                    .send()
                    .await
                    .map_err(|e| classify(&e))
            })
            .await?;
            reported = status_of(out.db_instance());
            note(format!("RebootDBInstance `{instance}` accepted"));
        }
        RdsAction::WaitStatus { .. } => {}
    }
    // what to wait for: `wait`, or the status a wait_status step names
    let target = match (action, wait) {
        (RdsAction::WaitStatus { status, .. }, _) => Some(status.clone()),
        (_, Some(w)) => Some(w.to_string()),
        _ => None,
    };
    if let Some(want) = target {
        let secs = match action {
            RdsAction::CreateSnapshot { snapshot, .. } => {
                let s = snapshot.clone();
                let secs = poll_until(
                    &format!("snapshot `{s}`"),
                    &want,
                    reported.as_deref(),
                    every,
                    cancel,
                    note,
                    || snapshot_status(client, &s),
                )
                .await?;
                report.snapshot_status = Some(want.clone());
                secs
            }
            _ => {
                let id = instance.clone();
                poll_until(
                    &format!("`{id}`"),
                    &want,
                    reported.as_deref(),
                    every,
                    cancel,
                    note,
                    || async { describe(client, &id).await.map(|s| s.status) },
                )
                .await?
            }
        };
        report.waited_secs = Some(secs);
    }
    report.after = Some(
        call("DescribeDBInstances", every, cancel, note, || {
            describe(client, &instance)
        })
        .await?,
    );
    if let Some(a) = &report.after {
        note(format!("after: `{}` is `{}`", a.instance, a.status));
    }
    Ok(report)
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
            Duration::from_secs(10),
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
            Duration::from_secs(10),
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
            Duration::from_secs(10),
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
