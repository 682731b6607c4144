//! Checks that need the whole runbook: every reference resolves (with a "did
//! you mean"), ids are unique, dependencies form no cycle (the cycle is named),
//! and there is at least one step.

use super::diag::{did_you_mean, line_col, Diagnostic};
use super::model::*;
use super::parse::{Parsed, RefKind};
use super::reader::Reader;
use std::collections::{BTreeMap, BTreeSet};

pub fn validate(r: &mut Reader<'_>, p: &Parsed) {
    let rb = &p.runbook;

    // duplicate step ids
    let mut first: BTreeMap<&str, &Span> = BTreeMap::new();
    let mut duplicates = false;
    for (id, span) in &p.step_ids {
        if let Some(prev) = first.get(id.as_str()) {
            duplicates = true;
            let (line, _) = line_col(r.src, prev.start);
            r.error(
                Diagnostic::new(Some(span.clone()), format!("duplicate step id `{id}`")).expected(
                    format!("a step id not used before (`{id}` is first used on line {line})"),
                ),
            );
        } else {
            first.insert(id, span);
        }
    }

    // duplicate monitor names (lag and metric share one namespace on screen)
    let mut names = BTreeSet::new();
    for n in rb
        .monitors
        .lag
        .iter()
        .map(|m| &m.name)
        .chain(rb.monitors.metric.iter().map(|m| &m.name))
    {
        if !names.insert(n.as_str()) {
            r.error(
                Diagnostic::new(None, format!("duplicate monitor name `{n}`"))
                    .expected("unique monitor names"),
            );
        }
    }

    // references
    let step_names: Vec<&str> = p.step_ids.iter().map(|(s, _)| s.as_str()).collect();
    let conn_names: Vec<&str> = rb.connections.keys().map(|s| s.as_str()).collect();
    let lag_names: Vec<&str> = rb.monitors.lag.iter().map(|m| m.name.as_str()).collect();
    let metric_names: Vec<&str> = rb.monitors.metric.iter().map(|m| m.name.as_str()).collect();
    for rf in &p.refs {
        let (pool, what, define): (&[&str], &str, &str) = match rf.kind {
            RefKind::Connection => (&conn_names, "connection", "a [connections.NAME] table"),
            RefKind::LagMonitor => (
                &lag_names,
                "lag monitor",
                "a [[monitor.lag]] with this name",
            ),
            RefKind::MetricMonitor => (
                &metric_names,
                "metric monitor",
                "a [[monitor.metric]] with this name",
            ),
            RefKind::Step => (&step_names, "step", "the id of a step in this runbook"),
        };
        if pool.contains(&rf.name.as_str()) {
            continue;
        }
        let mut help = did_you_mean(&rf.name, pool.iter().copied());
        if help.is_none()
            && rf.kind == RefKind::LagMonitor
            && metric_names.contains(&rf.name.as_str())
        {
            help = Some(format!(
                "`{}` is a metric monitor: write `metric = \"{}\"`",
                rf.name, rf.name
            ));
        }
        if help.is_none()
            && rf.kind == RefKind::MetricMonitor
            && lag_names.contains(&rf.name.as_str())
        {
            help = Some(format!(
                "`{}` is a lag monitor: write `lag = \"{}\"`",
                rf.name, rf.name
            ));
        }
        let expected = if pool.is_empty() {
            format!("{define} (none is defined)")
        } else {
            format!("one of: {}", pool.join(", "))
        };
        r.error(
            Diagnostic::new(
                Some(rf.span.clone()),
                format!("unknown {what} `{}` in {}", rf.name, rf.from),
            )
            .expected(expected)
            .help_opt(help),
        );
    }

    // self-dependency and cycles
    let deps: BTreeMap<&str, Vec<&str>> = rb
        .steps()
        .map(|s| {
            (
                s.id.as_str(),
                s.depends_on.iter().map(|d| d.as_str()).collect(),
            )
        })
        .collect();
    // with duplicate ids the graph is ambiguous; the duplicate is the error to fix first
    let cycles = if duplicates {
        Vec::new()
    } else {
        find_cycles(&deps)
    };
    for cycle in cycles {
        let head = cycle[0];
        let span = p
            .dep_spans
            .get(head)
            .and_then(|list| {
                list.iter()
                    .find(|(d, _)| d == cycle[1 % cycle.len()])
                    .map(|(_, s)| s.clone())
            })
            .or_else(|| rb.step(head).map(|s| s.span.clone()));
        let mut path: Vec<&str> = cycle.clone();
        path.push(head);
        // depends_on points backwards; show it in execution terms "a needs b needs a"
        r.error(
            Diagnostic::new(span, format!("dependency cycle: {}", path.join(" -> ")))
                .expected("dependencies that lead back to a first step (no loop)")
                .help("each arrow reads \"depends on\"; remove one of these `depends_on` entries"),
        );
    }

    if rb.steps().next().is_none() && r.errors.is_empty() {
        r.error(
            Diagnostic::new(
                p.phases_span.clone().or(Some(p.file_span.clone())),
                "the runbook has no steps",
            )
            .expected("at least one `[[phase]]` with a `[[phase.step]]`"),
        );
    }

    // point_of_no_return with on_failure = rollback is a contradiction worth stopping
    for s in rb.steps() {
        if s.point_of_no_return && s.confirm == ConfirmMode::None {
            r.error(
                Diagnostic::new(
                    Some(s.span.clone()),
                    format!(
                        "step `{}` is a point of no return but has `confirm = \"none\"`",
                        s.id
                    ),
                )
                .expected("`confirm = \"operator\"` or `\"two-person\"` on a point of no return"),
            );
        }
    }
}

/// Each elementary cycle once, as the list of step ids in dependency order.
fn find_cycles<'a>(deps: &BTreeMap<&'a str, Vec<&'a str>>) -> Vec<Vec<&'a str>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark: BTreeMap<&str, Mark> = deps.keys().map(|k| (*k, Mark::New)).collect();
    let mut cycles = Vec::new();
    let mut stack: Vec<&str> = Vec::new();

    fn visit<'a>(
        n: &'a str,
        deps: &BTreeMap<&'a str, Vec<&'a str>>,
        mark: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
        cycles: &mut Vec<Vec<&'a str>>,
    ) {
        mark.insert(n, Mark::Active);
        stack.push(n);
        for &d in deps.get(n).map(|v| v.as_slice()).unwrap_or(&[]) {
            match mark.get(d).copied() {
                Some(Mark::New) => visit(d, deps, mark, stack, cycles),
                Some(Mark::Active) => {
                    let pos = stack.iter().position(|x| *x == d).unwrap_or(0);
                    cycles.push(stack[pos..].to_vec());
                }
                _ => {}
            }
        }
        stack.pop();
        mark.insert(n, Mark::Done);
    }

    let keys: Vec<&str> = deps.keys().copied().collect();
    for k in keys {
        if mark.get(k) == Some(&Mark::New) {
            visit(k, deps, &mut mark, &mut stack, &mut cycles);
        }
    }
    cycles
}

/// Steps in an order that respects dependencies, stable with respect to the
/// runbook order (Kahn's algorithm picking the earliest ready step).
pub fn execution_order(rb: &Runbook) -> Vec<&Step> {
    let steps: Vec<&Step> = rb.steps().collect();
    let index: BTreeMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut done = vec![false; steps.len()];
    let mut out = Vec::with_capacity(steps.len());
    while out.len() < steps.len() {
        let next = steps.iter().enumerate().find(|(i, s)| {
            !done[*i]
                && s.depends_on
                    .iter()
                    .all(|d| index.get(d.as_str()).is_none_or(|j| done[*j]))
        });
        match next {
            Some((i, s)) => {
                done[i] = true;
                out.push(*s);
            }
            None => break, // a cycle: validation reports it
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_three_cycle() {
        let deps: BTreeMap<&str, Vec<&str>> = [
            ("a", vec!["c"]),
            ("b", vec!["a"]),
            ("c", vec!["b"]),
            ("d", vec![]),
        ]
        .into_iter()
        .collect();
        let cycles = find_cycles(&deps);
        assert_eq!(cycles, vec![vec!["a", "c", "b"]]);
    }

    #[test]
    fn no_cycle_in_a_chain() {
        let deps: BTreeMap<&str, Vec<&str>> =
            [("a", vec![]), ("b", vec!["a"]), ("c", vec!["a", "b"])]
                .into_iter()
                .collect();
        assert!(find_cycles(&deps).is_empty());
    }
}
