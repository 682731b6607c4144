//! The `rds` step actions: create_read_replica, promote_read_replica,
//! create_snapshot, reboot and wait_status, each followed (with `wait`) by
//! polling DescribeDBInstances / DescribeDBSnapshots until the status is
//! reached. The instance's state is captured before and after, for the journal.

use super::{classify, AwsError};
use crate::runbook::RdsAction;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
async fn poll_until<F, Fut>(
    what: &str,
    want: &str,
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
    loop {
        match probe().await {
            Ok(status) => {
                backoff = every;
                if status == want {
                    return Ok(started.elapsed().as_secs());
                }
                if status != last {
                    note(format!("{what} is `{status}`, waiting for `{want}`"));
                    last = status;
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
        _ => Some(describe(client, &instance).await?),
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
    match action {
        RdsAction::CreateReadReplica {
            source_instance,
            instance_class,
            ..
        } => {
            let src = describe(client, source_instance).await?;
            note(format!("source `{}` is `{}`", src.instance, src.status));
            let mut req = client
                .create_db_instance_read_replica()
                .db_instance_identifier(&instance)
                .source_db_instance_identifier(source_instance);
            if let Some(c) = instance_class {
                req = req.db_instance_class(c);
            }
            req.send().await.map_err(|e| classify(&e))?;
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
                return Err(AwsError::Other(format!("`{instance}` is not a read replica (it has no replication source); refusing to call PromoteReadReplica")));
            }
            client
                .promote_read_replica()
                .db_instance_identifier(&instance)
                .send()
                .await
                .map_err(|e| classify(&e))?;
            note(format!("PromoteReadReplica `{instance}` accepted"));
        }
        RdsAction::CreateSnapshot { snapshot, .. } => {
            client
                .create_db_snapshot()
                .db_instance_identifier(&instance)
                .db_snapshot_identifier(snapshot)
                .send()
                .await
                .map_err(|e| classify(&e))?;
            note(format!(
                "CreateDBSnapshot `{snapshot}` of `{instance}` accepted"
            ));
            report.snapshot = Some(snapshot.clone());
        }
        RdsAction::Reboot { .. } => {
            client
                .reboot_db_instance()
                .db_instance_identifier(&instance)
                .send()
                .await
                .map_err(|e| classify(&e))?;
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
                poll_until(&format!("`{id}`"), &want, every, cancel, note, || async {
                    describe(client, &id).await.map(|s| s.status)
                })
                .await?
            }
        };
        report.waited_secs = Some(secs);
    }
    report.after = Some(describe(client, &instance).await?);
    if let Some(a) = &report.after {
        note(format!("after: `{}` is `{}`", a.instance, a.status));
    }
    Ok(report)
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
            Duration::from_secs(10),
            &cancel,
            &note,
            || async { Err::<String, _>(AwsError::Denied("no".into())) },
        )
        .await;
        assert_eq!(r, Err(AwsError::Denied("no".into())));
    }
}
