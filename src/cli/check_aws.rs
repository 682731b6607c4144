//! `ferry check --aws`: before the window opens, ask AWS about every instance
//! the runbook names (DescribeDBInstances) and report the missing ones and the
//! missing permissions. Instances a step will create must not exist yet;
//! snapshots a step will take must not exist yet either. Every DMS task the
//! runbook names is described (DescribeReplicationTasks): a task a step creates
//! must not exist yet, every other must.

use super::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE};
use ferry_core::aws::{self, rds, AwsError};
use ferry_core::runbook::{DmsAction, LagSource, RdsAction, Runbook, StepKind};
use std::collections::BTreeMap;

/// What the runbook expects of an instance before the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Exists,
    Absent,
}

fn expectations(rb: &Runbook) -> BTreeMap<String, (Expect, String)> {
    let mut out: BTreeMap<String, (Expect, String)> = BTreeMap::new();
    let mut want = |id: &str, e: Expect, why: String| {
        out.entry(id.to_string()).or_insert((e, why));
    };
    for s in rb.steps() {
        if let StepKind::Rds(r) = &s.kind {
            match &r.action {
                RdsAction::CreateReadReplica {
                    instance,
                    source_instance,
                    ..
                } => {
                    want(
                        source_instance,
                        Expect::Exists,
                        format!("source of step `{}`", s.id),
                    );
                    want(
                        instance,
                        Expect::Absent,
                        format!("created by step `{}`", s.id),
                    );
                }
                other => want(other.instance(), Expect::Exists, format!("step `{}`", s.id)),
            }
        }
    }
    for l in &rb.monitors.lag {
        if let LagSource::Cloudwatch { instance } = &l.source {
            want(
                instance,
                Expect::Exists,
                format!("lag monitor `{}`", l.name),
            );
        }
    }
    for c in rb.connections.values() {
        if let Some(a) = &c.iam_auth {
            want(
                &a.instance,
                Expect::Exists,
                format!("IAM auth of connection `{}`", c.name),
            );
        }
    }
    out
}

/// The DMS tasks the runbook names, by the name it uses (ARN or identifier):
/// whether each must exist before the run, and which step says so.
fn dms_expectations(rb: &Runbook) -> BTreeMap<String, (Expect, String)> {
    let mut out: BTreeMap<String, (Expect, String)> = BTreeMap::new();
    for s in rb.steps() {
        if let StepKind::Dms(d) = &s.kind {
            let e = match d.action {
                DmsAction::Create(_) => (Expect::Absent, format!("created by step `{}`", s.id)),
                _ => (Expect::Exists, format!("step `{}`", s.id)),
            };
            out.entry(d.task.clone()).or_insert(e);
        }
    }
    for m in &rb.monitors.dms {
        out.entry(m.task.clone())
            .or_insert((Expect::Exists, format!("dms monitor `{}`", m.name)));
    }
    out
}

/// Describe each DMS task; returns the problems found and whether AWS was unreachable.
async fn check_dms_tasks(
    clients: &aws::Clients,
    tasks: &BTreeMap<String, (Expect, String)>,
) -> (usize, bool) {
    let mut problems = 0;
    for (task, (expect, why)) in tasks {
        match (aws::dms::describe(&clients.dms, task).await, expect) {
            (Ok(t), Expect::Exists) => say!(
                "aws: ok       DMS task {task} is `{}` ({}{why})",
                t.status,
                t.migration_type
                    .as_ref()
                    .map(|m| format!("{m}, "))
                    .unwrap_or_default()
            ),
            (Ok(t), Expect::Absent) => {
                problems += 1;
                say!(
                    "aws: EXISTS   DMS task {task} already exists (status `{}`), but {why}",
                    t.status
                );
            }
            (Err(AwsError::NotFound(_)), Expect::Absent) => {
                say!("aws: ok       DMS task {task} does not exist yet ({why})")
            }
            (Err(AwsError::NotFound(_)), Expect::Exists) => {
                problems += 1;
                say!("aws: MISSING  DMS task {task} does not exist ({why})");
            }
            (Err(AwsError::Denied(m)), _) => {
                problems += 1;
                say!("aws: DENIED   DMS task {task}: dms:DescribeReplicationTasks is not allowed ({m})");
            }
            (Err(e @ AwsError::Unreachable(_)), _) => {
                say!("aws: UNREACHABLE DMS task {task}: {e}");
                return (problems, true);
            }
            (Err(e), _) => {
                problems += 1;
                say!("aws: ERROR    DMS task {task}: {e}");
            }
        }
    }
    (problems, false)
}

pub async fn run(rb: &Runbook) -> i32 {
    if !ferry_core::engine::start::uses_aws(rb) {
        say!("aws: the runbook makes no AWS call; nothing to check");
        return EXIT_OK;
    }
    let env = |k: &str| std::env::var(k).ok();
    let clients = match aws::connect(rb.aws.as_ref(), &env).await {
        Ok(c) => c,
        Err(e) => {
            say!("aws: cannot configure AWS: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    let expected = expectations(rb);
    let tasks = dms_expectations(rb);
    if expected.is_empty() && tasks.is_empty() {
        // CloudWatch only: at least know that the endpoint answers
        if let Err(e) = aws::preflight(&clients, false).await {
            say!("aws: UNREACHABLE {}: {e}", clients.endpoint());
            return EXIT_UNREACHABLE;
        }
        say!(
            "aws: {} answers; the runbook names no RDS instance to check",
            clients.endpoint()
        );
        return EXIT_OK;
    }
    let mut problems = 0;
    let mut unreachable = false;
    for (id, (expect, why)) in &expected {
        match (rds::describe(&clients.rds, id).await, expect) {
            (Ok(s), Expect::Exists) => say!("aws: ok       {id} is `{}` ({why})", s.status),
            (Ok(s), Expect::Absent) => {
                problems += 1;
                say!(
                    "aws: EXISTS   {id} already exists (status `{}`), but {why}",
                    s.status
                );
            }
            (Err(AwsError::NotFound(_)), Expect::Absent) => {
                say!("aws: ok       {id} does not exist yet ({why})")
            }
            (Err(AwsError::NotFound(_)), Expect::Exists) => {
                problems += 1;
                say!("aws: MISSING  {id} does not exist ({why})");
            }
            (Err(AwsError::Denied(m)), _) => {
                problems += 1;
                say!("aws: DENIED   {id}: rds:DescribeDBInstances is not allowed ({m})");
            }
            (Err(e @ AwsError::Unreachable(_)), _) => {
                // the same endpoint for every instance: asking on only waits longer
                unreachable = true;
                say!("aws: UNREACHABLE {id}: {e}");
                break;
            }
            (Err(e), _) => {
                problems += 1;
                say!("aws: ERROR    {id}: {e}");
            }
        }
    }
    for s in rb.steps().filter(|_| !unreachable) {
        if let StepKind::Rds(r) = &s.kind {
            if let RdsAction::CreateSnapshot { snapshot, .. } = &r.action {
                if let Ok(out) = clients
                    .rds
                    .describe_db_snapshots()
                    .db_snapshot_identifier(snapshot)
                    .send()
                    .await
                {
                    if !out.db_snapshots().is_empty() {
                        problems += 1;
                        say!("aws: EXISTS   snapshot {snapshot} already exists, but step `{}` creates it", s.id);
                    }
                }
            }
        }
    }
    if !unreachable {
        let (p, u) = check_dms_tasks(&clients, &tasks).await;
        problems += p;
        unreachable = u;
    }
    if unreachable {
        say!("aws: cannot reach AWS; nothing was verified");
        EXIT_UNREACHABLE
    } else if problems > 0 {
        say!("aws: {problems} problem(s) to fix before the window");
        EXIT_FAILED
    } else {
        say!("aws: every instance and DMS task is as the runbook expects");
        EXIT_OK
    }
}
