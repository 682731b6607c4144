//! `ferry check RUNBOOK`: validate, then print the plan — phases, steps in
//! execution order with their dependencies, the connections and AWS calls of
//! each step, two-person steps, points of no return and the window.

use super::{EXIT_BAD_INPUT, EXIT_OK};
use ferry_core::runbook::{self, expand, Condition, ConfirmMode, Runbook, Step, StepKind};
use ferry_core::units::plan_duration as dur;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

pub fn run(path: &Path, vars: &runbook::vars::Overrides) -> i32 {
    match runbook::load_with(path, &vars.values()) {
        Ok(rb) => {
            if let Err(e) = vars.check_declared(&rb.vars) {
                complain_raw!("{e}");
                return EXIT_BAD_INPUT;
            }
            say_raw!(
                "{}",
                secret_vars(&rb).redact(&plan(&rb, &vars.used(&rb.vars)))
            );
            EXIT_OK
        }
        Err(report) => {
            complain_raw!("{}", report.render());
            EXIT_BAD_INPUT
        }
    }
}

/// A redactor for the values of secret-named vars, masked wherever a plan echoes them.
pub(super) fn secret_vars(rb: &Runbook) -> ferry_core::engine::redact::Redactor {
    let mut secrets = ferry_core::engine::redact::Redactor::new();
    for (k, v) in &rb.vars {
        if runbook::vars::is_masked(k) && expand::env_refs(v).is_empty() {
            secrets.add(v);
        }
    }
    secrets
}

fn scheme(url: &str) -> &str {
    if url.starts_with("${env:") {
        "from the environment"
    } else if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    }
}

/// The connections a step touches.
pub(super) fn connections(step: &Step) -> Vec<&str> {
    let mut out: Vec<&str> = match &step.kind {
        StepKind::Sql(s) => vec![&s.connection],
        StepKind::Wait(w) => match &w.until {
            Condition::Sql { connection, .. } => vec![connection],
            Condition::CaughtUp { primary, by } => match by {
                runbook::CatchUpBy::Replica(r) => vec![primary, r],
                runbook::CatchUpBy::Slot(_) => vec![primary],
            },
            _ => vec![],
        },
        StepKind::Copy(c) => vec![&c.from, &c.to],
        StepKind::Replicate(r) => vec![&r.from, &r.to],
        StepKind::Verify(v) => vec![&v.source, &v.target],
        _ => vec![],
    };
    if let Some(runbook::Rollback::Sql { connection, .. }) = &step.rollback {
        out.push(connection);
    }
    out.dedup();
    out
}

pub(super) fn aws_calls(step: &Step) -> Vec<&'static str> {
    match &step.kind {
        StepKind::Rds(r) => r.action.api_calls(r.wait.is_some()),
        StepKind::Dms(d) => d.action.api_calls(),
        _ => vec![],
    }
}

pub(super) fn what(step: &Step) -> String {
    match &step.kind {
        StepKind::Confirm => "operator confirms".into(),
        StepKind::Shell(s) => format!("sh -c {}", one_line(&s.run, 60)),
        StepKind::Sql(s) => {
            let mut t = one_line(&s.sql, 60);
            if let Some(e) = &s.expect {
                let _ = write!(t, "  expect {e}");
            }
            t
        }
        StepKind::Wait(w) => {
            let mut t = condition(&w.until);
            if let Some(h) = w.hold {
                let _ = write!(t, " (held for {})", dur(h));
            }
            t
        }
        StepKind::Copy(c) => {
            format!(
                "{} -> {}  tables {}{}  chunk {} rows, {} workers{}",
                c.from,
                c.to,
                c.tables.join(", "),
                if c.exclude.is_empty() {
                    String::new()
                } else {
                    format!(" except {}", c.exclude.join(", "))
                },
                c.chunk_rows,
                c.parallel,
                c.throttle
                    .as_ref()
                    .map(|t| format!(", pauses while {}", condition(t)))
                    .unwrap_or_default()
            ) + &if c.filters.is_empty() {
                String::new()
            } else {
                format!(
                    ", only matching rows of {}",
                    c.filters.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }
        }
        StepKind::Verify(v) => format!(
            "{} vs {}  tables {}  checks {}",
            v.source,
            v.target,
            v.tables.join(", "),
            v.checks
                .iter()
                .map(|c| format!("{c:?}").to_lowercase())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        StepKind::Rds(r) => {
            let extra = match &r.action {
                runbook::RdsAction::CreateReadReplica {
                    source_instance,
                    instance_class,
                    ..
                } => format!(
                    " from {source_instance}{}",
                    instance_class
                        .as_ref()
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default()
                ),
                runbook::RdsAction::CreateSnapshot { snapshot, .. } => {
                    format!(" as snapshot {snapshot}")
                }
                runbook::RdsAction::WaitStatus { status, .. } => {
                    format!(" until `{status}`")
                }
                _ => String::new(),
            };
            format!(
                "{} {}{extra}{}",
                r.action.name(),
                r.action.instance(),
                r.wait
                    .as_ref()
                    .map(|w| format!(", wait for `{w}`"))
                    .unwrap_or_default()
            )
        }
        StepKind::Dms(d) => {
            let extra = match &d.action {
                runbook::DmsAction::Create(c) => format!(
                    " ({}) tables {}{}",
                    c.migration.api_name(),
                    c.tables.join(", "),
                    if c.exclude.is_empty() {
                        String::new()
                    } else {
                        format!(" except {}", c.exclude.join(", "))
                    }
                ),
                other => other
                    .cdc_stop_position()
                    .map(|p| format!(" at {p}"))
                    .unwrap_or_default(),
            };
            let wait = match &d.action {
                runbook::DmsAction::Create(_) => "ready",
                _ => ferry_core::aws::dms::wait_target(d)
                    .map(|w| w.name())
                    .unwrap_or("-"),
            };
            format!(
                "dms {} {}{extra}, wait for `{wait}`; fails on any errored, suspended or validation-failing table",
                d.action.name(),
                d.task
            )
        }
        StepKind::Replicate(r) => format!(
            "{} {} -> {}  {} `{}`",
            match r.action {
                runbook::ReplicateAction::Start => "start replication",
                runbook::ReplicateAction::Stop => "stop replication",
            },
            r.from,
            r.to,
            match r.action {
                runbook::ReplicateAction::Start => format!("tables {}", r.tables.join(", ")),
                runbook::ReplicateAction::Stop => "sequences copied, then drop".to_string(),
            },
            r.name
        ),
    }
}

fn condition(c: &Condition) -> String {
    match c {
        Condition::Lag {
            monitor,
            compare,
            threshold,
        } => {
            format!("lag {monitor} {} {}", cmp(*compare), dur(*threshold))
        }
        Condition::Metric {
            monitor,
            compare,
            threshold,
        } => format!("metric {monitor} {} {threshold}", cmp(*compare)),
        Condition::Sql { connection, query } => {
            format!("sql on {connection}: {}", one_line(query, 50))
        }
        Condition::CaughtUp { primary, by } => match by {
            runbook::CatchUpBy::Replica(r) => format!("caught up: {r} replayed past {primary}"),
            runbook::CatchUpBy::Slot(s) => format!("caught up: slot {s} on {primary}"),
        },
        Condition::Dms { monitor, gate } => match gate {
            runbook::DmsGate::FullLoadDone => format!("dms {monitor} full load done"),
            runbook::DmsGate::LatencyBelow(d) => format!("dms {monitor} CDC latency < {}", dur(*d)),
        },
    }
}

fn cmp(c: runbook::Compare) -> &'static str {
    match c {
        runbook::Compare::Above => ">",
        runbook::Compare::Below => "<",
    }
}

fn one_line(s: &str, max: usize) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() > max {
        let cut: String = joined.chars().take(max - 1).collect();
        format!("{cut}…")
    } else {
        joined
    }
}

/// One step of the plan: the numbered line (id, kind, what it does, flags),
/// then its dependencies, connections, AWS calls, limits and undo. `deps` is
/// `Some(is_first_step)` in the normal flow, `None` for rollback-only steps
/// (they run in the order of their rollback list, whatever they depend on).
fn step_lines(o: &mut String, s: &Step, number: &str, width: usize, deps: Option<bool>) {
    let mut flags = Vec::new();
    match s.confirm {
        ConfirmMode::TwoPerson => flags.push("TWO-PERSON".to_string()),
        ConfirmMode::None => flags.push("automatic".to_string()),
        ConfirmMode::Operator => {}
    }
    if s.point_of_no_return {
        flags.push("POINT OF NO RETURN".into());
    }
    if let StepKind::Copy(c) = &s.kind {
        if c.truncate {
            flags.push(format!("EMPTIES the {} tables first", c.to));
        }
    }
    let _ = writeln!(
        o,
        "  {number} {:<width$} {:<7} {}{}",
        s.id,
        s.kind.name(),
        what(s),
        if flags.is_empty() {
            String::new()
        } else {
            format!("  [{}]", flags.join(", "))
        }
    );
    let mut details = Vec::new();
    match deps {
        Some(_) if !s.depends_on.is_empty() => {
            details.push(format!("after {}", s.depends_on.join(", ")))
        }
        Some(false) => details.push("no dependencies: ready from the start".to_string()),
        _ => {}
    }
    let conns = connections(s);
    if !conns.is_empty() {
        details.push(format!("connections {}", conns.join(", ")));
    }
    let calls = aws_calls(s);
    if !calls.is_empty() {
        details.push(format!("aws {}", calls.join(", ")));
    }
    if let Some(t) = s.timeout {
        details.push(format!("timeout {}", dur(t)));
    }
    if s.retries.max > 0 {
        details.push(format!(
            "retries {} (backoff {})",
            s.retries.max,
            dur(s.retries.backoff)
        ));
    }
    match s.on_failure {
        runbook::OnFailure::Halt => {}
        runbook::OnFailure::Continue => details.push("on failure: continue".into()),
        runbook::OnFailure::Rollback => details.push("on failure: roll back, then halt".into()),
    }
    if let Some(rbk) = &s.rollback {
        details.push(match rbk {
            runbook::Rollback::Shell { .. } => "rollback: shell".to_string(),
            runbook::Rollback::Sql { connection, .. } => {
                format!("rollback: sql on {connection}")
            }
            runbook::Rollback::Steps(ids) => format!("rollback: steps {}", ids.join(", ")),
        });
    }
    if !details.is_empty() {
        let _ = writeln!(o, "       {:<width$} {}", "", details.join(" · "));
    }
}

/// The plan text printed by `ferry check`: the header, connections, monitors,
/// the steps in order, the rollback-only steps, the summary and the environment.
pub fn plan(rb: &Runbook, vars: &[runbook::vars::VarUsed]) -> String {
    let mut o = String::new();
    let steps: Vec<&Step> = rb.steps().collect();
    plan_header(&mut o, rb);
    plan_vars(&mut o, vars);
    plan_connections(&mut o, rb);
    plan_monitors(&mut o, rb);
    let width = steps.iter().map(|s| s.id.len()).max().unwrap_or(4).min(28);
    plan_steps(&mut o, rb, width);
    plan_rollback_only(&mut o, rb, &steps, width);
    let _ = writeln!(o);
    plan_summary(&mut o, rb, &steps);
    plan_environment(&mut o, &env_needed(rb, &steps));
    let _ = writeln!(
        o,
        "\nok: {} steps in {} phases",
        steps.len(),
        rb.phases.len()
    );
    o
}

/// The runbook's name, title and format, and its window.
fn plan_header(o: &mut String, rb: &Runbook) {
    let _ = writeln!(
        o,
        "runbook {} — {} (format {})",
        rb.name, rb.title, rb.format
    );
    match &rb.window {
        Some(w) => {
            let end = w.start + chrono::Duration::from_std(w.duration).unwrap_or_default();
            let _ = writeln!(
                o,
                "window  {} → {} UTC ({})",
                w.start.format("%Y-%m-%d %H:%M"),
                end.format("%Y-%m-%d %H:%M"),
                dur(w.duration)
            );
        }
        None => {
            let _ = writeln!(o, "window  none set");
        }
    }
}

/// The `[vars]` values in force, where each came from; secret-named ones masked
/// (the same values a run journals).
fn plan_vars(o: &mut String, vars: &[runbook::vars::VarUsed]) {
    if vars.is_empty() {
        return;
    }
    let w = vars.iter().map(|v| v.name.len()).max().unwrap_or(0).max(14);
    let _ = writeln!(o, "\nvars");
    for v in vars {
        let _ = writeln!(o, "  {:<w$} = {}   ({})", v.name, v.shown(), v.source);
    }
}

/// Each connection: its scheme, and IAM auth when it has it.
fn plan_connections(o: &mut String, rb: &Runbook) {
    let cw = rb
        .connections
        .keys()
        .map(|n| n.len())
        .max()
        .unwrap_or(0)
        .max(14);
    if !rb.connections.is_empty() {
        let _ = writeln!(o, "\nconnections");
        for c in rb.connections.values() {
            let iam = c
                .iam_auth
                .as_ref()
                .map(|a| format!(", RDS IAM auth for {}", a.instance))
                .or_else(|| {
                    c.iam_auth_off.as_ref().map(|a| {
                        format!(", RDS IAM auth for {} switched off: password", a.instance)
                    })
                })
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  {:<cw$} {}{}{}",
                c.name,
                scheme(&c.url),
                iam,
                tls_text(c)
            );
        }
        for w in rb
            .connections
            .values()
            .flat_map(runbook::tls::check_warnings)
        {
            let _ = writeln!(o, "  warning: {w}");
        }
    }
}

/// `, tls verify-full (CA /path)` as far as the file says (the URL may add to it at run time).
pub(super) fn tls_text(c: &runbook::Connection) -> String {
    if c.url.starts_with("sqlite:") {
        return String::new();
    }
    let url = if runbook::tls::url_host(&c.url).is_some() {
        c.url.as_str()
    } else {
        ""
    };
    match runbook::tls::resolve(c, url, &|_| None) {
        Ok(r) => format!(
            ", tls {}{}",
            r.mode,
            r.ca.map(|ca| format!(" (CA {ca})")).unwrap_or_default()
        ),
        Err(e) => format!(", tls: {e}"),
    }
}

/// Each lag and metric monitor with its source and thresholds, and the row counts.
fn plan_monitors(o: &mut String, rb: &Runbook) {
    let m = &rb.monitors;
    let mw = m
        .lag
        .iter()
        .map(|l| l.name.len())
        .chain(m.metric.iter().map(|x| x.name.len()))
        .chain(m.dms.iter().map(|x| x.name.len()))
        .max()
        .unwrap_or(0)
        .max(14);
    if m.lag.is_empty() && m.metric.is_empty() && m.rowcounts.is_none() && m.dms.is_empty() {
        return;
    }
    let _ = writeln!(o, "\nmonitors");
    for l in &m.lag {
        let src = match &l.source {
            runbook::LagSource::Connection(c) => format!("sql on {c}"),
            runbook::LagSource::Cloudwatch { instance } => {
                format!("cloudwatch ReplicaLag of {instance}")
            }
        };
        let th = [("warn", l.warn), ("max", l.max)]
            .iter()
            .filter_map(|(k, v)| v.map(|d| format!("{k} {}", dur(d))))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            o,
            "  lag     {:<mw$} {src}{}",
            l.name,
            if th.is_empty() {
                String::new()
            } else {
                format!(" ({th})")
            }
        );
    }
    for x in &m.metric {
        let src = match &x.source {
            runbook::MetricSource::Cloudwatch(c) => {
                format!("cloudwatch {} {} {}", c.namespace, c.metric, c.stat)
            }
            runbook::MetricSource::Sql(s) => format!(
                "sql on {} every {}{}",
                s.connection,
                dur(s.every),
                if s.rate { " (rate)" } else { "" }
            ),
        };
        let _ = writeln!(o, "  metric  {:<mw$} {src}", x.name);
    }
    for d in &m.dms {
        let _ = writeln!(
            o,
            "  dms     {:<mw$} task {} every {}: status, tables, CDC latency; any errored, suspended or validation-failing table fails the running step",
            d.name,
            d.task,
            dur(d.every)
        );
    }
    if let Some(rc) = &m.rowcounts {
        let _ = writeln!(
            o,
            "  rows    {} → {}  {}",
            rc.source,
            rc.target,
            rc.tables.join(", ")
        );
    }
}

/// The normal-flow steps in execution order, under their phases.
fn plan_steps(o: &mut String, rb: &Runbook, width: usize) {
    let _ = writeln!(
        o,
        "\nsteps in execution order (each waits for an operator's confirmation unless marked automatic)"
    );
    let rollback_only = rb.rollback_only();
    let order: Vec<&Step> = runbook::execution_order(rb)
        .into_iter()
        .filter(|s| !rollback_only.contains_key(s.id.as_str()))
        .collect();
    let mut phase = "";
    for (n, s) in order.iter().enumerate() {
        if s.phase != phase {
            phase = &s.phase;
            let title = rb
                .phases
                .iter()
                .find(|p| p.id == phase)
                .and_then(|p| p.title.clone())
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  phase {phase}{}",
                if title.is_empty() {
                    String::new()
                } else {
                    format!(" — {title}")
                }
            );
        }
        step_lines(o, s, &format!("{:>3}.", n + 1), width, Some(n == 0));
    }
}

/// The rollback-only steps, under the step whose rollback runs them.
fn plan_rollback_only(o: &mut String, rb: &Runbook, steps: &[&Step], width: usize) {
    if rb.rollback_only().is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "\nrollback-only steps (run only when a rollback asks for them, in the order listed)"
    );
    for owner in steps.iter() {
        let Some(runbook::Rollback::Steps(ids)) = &owner.rollback else {
            continue;
        };
        let _ = writeln!(o, "  rollback of {}", owner.id);
        for (k, id) in ids.iter().enumerate() {
            if let Some(s) = rb.step(id) {
                step_lines(o, s, &format!("{:>3}.", k + 1), width, None);
            }
        }
    }
}

/// Every AWS call ferry itself makes: the steps', the CloudWatch monitors', IAM auth's.
pub(super) fn plan_aws_calls<'a>(rb: &Runbook, steps: &[&'a Step]) -> BTreeSet<&'a str> {
    let m = &rb.monitors;
    let mut calls: BTreeSet<&str> = steps.iter().flat_map(|s| aws_calls(s)).collect();
    for l in &m.lag {
        if matches!(l.source, runbook::LagSource::Cloudwatch { .. }) {
            calls.insert("cloudwatch:GetMetricData");
        }
    }
    for x in &m.metric {
        if matches!(x.source, runbook::MetricSource::Cloudwatch(_)) {
            calls.insert("cloudwatch:GetMetricData");
        }
    }
    if !m.dms.is_empty() {
        calls.extend([
            "dms:DescribeReplicationTasks",
            "dms:DescribeTableStatistics",
            "dms:DescribeReplicationInstances",
            "cloudwatch:GetMetricData",
        ]);
    }
    for c in rb.connections.values() {
        if c.iam_auth.is_some() {
            // the token is signed for the instance's endpoint, looked up first
            calls.insert("rds:DescribeDBInstances");
            calls.insert("rds-db:connect (IAM auth token)");
        }
    }
    calls
}

/// Two-person steps, points of no return, AWS calls and AWS settings.
fn plan_summary(o: &mut String, rb: &Runbook, steps: &[&Step]) {
    let two: Vec<&str> = steps
        .iter()
        .filter(|s| s.confirm == ConfirmMode::TwoPerson)
        .map(|s| s.id.as_str())
        .collect();
    let ponr: Vec<&str> = steps
        .iter()
        .filter(|s| s.point_of_no_return)
        .map(|s| s.id.as_str())
        .collect();
    let calls = plan_aws_calls(rb, steps);
    let or_none = |v: Vec<&str>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let _ = writeln!(o, "two-person steps     {}", or_none(two));
    let _ = writeln!(o, "points of no return  {}", or_none(ponr));
    let _ = writeln!(
        o,
        "AWS calls            {}",
        or_none(calls.into_iter().collect())
    );
    if steps.iter().any(|s| match &s.kind {
        StepKind::Shell(sh) => sh.run.contains("aws "),
        _ => false,
    }) {
        let _ = writeln!(
            o,
            "                     (made by ferry; the `aws` commands of shell steps are not included)"
        );
    }
    if let Some(aws) = &rb.aws {
        let mut parts = Vec::new();
        if let Some(r) = &aws.region {
            parts.push(format!("region {r}"));
        }
        if let Some(p) = &aws.profile {
            parts.push(format!("profile {p}"));
        }
        if let Some(e) = &aws.endpoint_url {
            parts.push(format!("endpoint {e}"));
        }
        if !parts.is_empty() {
            let _ = writeln!(o, "AWS settings         {}", parts.join(", "));
        }
    }
}

/// The environment variables the run will need: those its connections, vars,
/// AWS settings, step texts and rollbacks refer to.
pub(super) fn env_needed(rb: &Runbook, steps: &[&Step]) -> BTreeSet<String> {
    let mut env: BTreeSet<String> = BTreeSet::new();
    for c in rb.connections.values() {
        env.extend(expand::env_refs(&c.url));
    }
    for v in rb.vars.values() {
        env.extend(expand::env_refs(v));
    }
    if let Some(aws) = &rb.aws {
        for v in [&aws.region, &aws.profile, &aws.endpoint_url]
            .into_iter()
            .flatten()
        {
            env.extend(expand::env_refs(v));
        }
    }
    for s in steps {
        match &s.kind {
            StepKind::Shell(sh) => {
                env.extend(expand::env_refs(&sh.run));
                for v in sh.env.values() {
                    env.extend(expand::env_refs(v));
                }
            }
            StepKind::Sql(q) => env.extend(expand::env_refs(&q.sql)),
            StepKind::Wait(w) => {
                if let Condition::Sql { query, .. } = &w.until {
                    env.extend(expand::env_refs(query));
                }
            }
            _ => {}
        }
        match &s.rollback {
            Some(runbook::Rollback::Shell { run }) => env.extend(expand::env_refs(run)),
            Some(runbook::Rollback::Sql { sql, .. }) => env.extend(expand::env_refs(sql)),
            _ => {}
        }
    }
    env
}

/// The environment variables the run will need, and those not set in this shell.
fn plan_environment(o: &mut String, env: &BTreeSet<String>) {
    if env.is_empty() {
        return;
    }
    let unset: Vec<&String> = env
        .iter()
        .filter(|n| std::env::var_os(n).is_none())
        .collect();
    let _ = writeln!(
        o,
        "environment          {}",
        env.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    if !unset.is_empty() {
        let _ = writeln!(
            o,
            "note: not set in this shell (needed at run time): {}",
            unset
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
