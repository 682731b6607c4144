//! The DMS supervision keys: `[[monitor.dms]]` (`name`, `task`, `every`) and the
//! `wait` gates that read it, `until = { dms = NAME, full_load = "done" }` and
//! `until = { dms = NAME, latency_below = DURATION }` (each with an optional `for`).
//! The `kind = "dms"` step keys are in `kinds.rs`.

use super::diag::{did_you_mean, Diagnostic};
use super::model::{Condition, DmsGate, DmsMonitor};
use super::parse::{Ref, RefKind};
use super::reader::{Node, Reader};
use std::time::Duration;

/// How often a DMS monitor asks DMS by default: DescribeTableStatistics is
/// throttled per account, and a table's state changes on the scale of minutes.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(30);

/// The shortest `every`: DMS's API rate limits would throttle anything faster.
const MIN_EVERY: Duration = Duration::from_secs(1);

/// The keys of a `{ dms = ... }` condition.
const GATE_KEYS: &[&str] = &["dms", "full_load", "latency_below", "for"];

/// `[[monitor.dms]]`: `name` (a slug, shared with the other monitors), `task`
/// (ARN or identifier), `every` (default 30s, at least 1s).
pub(super) fn parse_monitor(r: &mut Reader<'_>, t: Node<'_>) -> Option<DmsMonitor> {
    let ctx0 = "[[monitor.dms]]";
    r.check_keys(t, ctx0, &["name", "task", "every"]);
    let (name, span) = r.str_req(t, "name", ctx0, "\"cdc\"")?;
    super::steps::check_slug(r, &name, &span, "monitor name");
    let ctx = format!("dms monitor `{name}`");
    let task = r.str_req(t, "task", &ctx, "\"${vars.dms_task_arn}\"");
    if let Some((v, span)) = &task {
        r.not_blank_value(v, span, "task", &ctx, "the task's ARN or identifier");
        if v.starts_with("arn:") && !v.contains("${") && !v.contains(":task:") {
            r.error(
                Diagnostic::new(
                    Some(span.clone()),
                    format!("`task` of {ctx} is an ARN, but not a DMS task's: `{v}`"),
                )
                .expected("\"arn:aws:dms:REGION:ACCOUNT:task:ID\" or the task's identifier"),
            );
        }
    }
    let every = match r.duration_opt(t, "every", &ctx) {
        Some(d) if d < MIN_EVERY => {
            r.error(
                Diagnostic::new(
                    t.get("every").and_then(|(s, _)| s),
                    format!(
                        "`every` of {ctx} is {}: DMS throttles callers that poll that often",
                        humantime::format_duration(d)
                    ),
                )
                .expected("at least \"1s\" (the default is \"30s\")"),
            );
            DEFAULT_EVERY
        }
        Some(d) => d,
        None => DEFAULT_EVERY,
    };
    Some(DmsMonitor {
        name,
        task: task?.0,
        every,
    })
}

/// `{ dms = NAME, full_load = "done" }` or `{ dms = NAME, latency_below = DURATION }`,
/// each with an optional `for`. `u` is the `until` table; `c` names it.
pub(super) fn parse_gate(
    r: &mut Reader<'_>,
    u: Node<'_>,
    c: &str,
    refs: &mut Vec<Ref>,
) -> Option<(Condition, Option<Duration>)> {
    for (key, span) in u.keys() {
        if GATE_KEYS.contains(&key.as_str()) {
            continue;
        }
        let mut d = Diagnostic::new(span, format!("`{key}` does not go with `dms` in {c}"))
            .expected(format!("one of: {}", GATE_KEYS.join(", ")));
        d = match key.as_str() {
            "below" => d.help("a DMS gate's threshold is `latency_below = \"30s\"`"),
            _ => d.help_opt(did_you_mean(&key, GATE_KEYS.iter().copied())),
        };
        r.error(d);
    }
    let monitor = r.str_opt(u, "dms", c).map(|(name, span)| {
        refs.push(Ref {
            kind: RefKind::DmsMonitor,
            name: name.clone(),
            span,
            from: c.to_string(),
        });
        name
    });
    let hold = r.duration_opt(u, "for", c);
    let gate = match (
        u.get("full_load").is_some(),
        u.get("latency_below").is_some(),
    ) {
        (true, false) => match r.str_opt(u, "full_load", c) {
            Some((v, _)) if v == "done" => Some(DmsGate::FullLoadDone),
            Some((v, span)) => {
                r.error(
                    Diagnostic::new(Some(span), format!("unknown `full_load = \"{v}\"` in {c}"))
                        .expected("\"done\": every table of the task loaded"),
                );
                None
            }
            None => None,
        },
        (false, true) => r
            .duration_opt(u, "latency_below", c)
            .map(DmsGate::LatencyBelow),
        (both, _) => {
            r.error(
                Diagnostic::new(
                    u.span(),
                    format!(
                        "{c} needs exactly one of `full_load` or `latency_below`, found {}",
                        if both { "both" } else { "neither" }
                    ),
                )
                .expected("`full_load = \"done\"` or `latency_below = \"30s\"`"),
            );
            None
        }
    };
    Some((
        Condition::Dms {
            monitor: monitor?,
            gate: gate?,
        },
        hold,
    ))
}
