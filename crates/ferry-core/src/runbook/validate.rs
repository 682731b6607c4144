//! Checks that need the whole runbook: every reference resolves (with a "did
//! you mean"), ids are unique, dependencies form no cycle (the cycle is named),
//! and there is at least one step.

use super::diag::{did_you_mean, line_col, list_names, Diagnostic};
use super::model::*;
use super::parse::{Parsed, Ref, RefKind};
use super::reader::Reader;
use std::collections::BTreeMap;

pub fn validate(r: &mut Reader<'_>, p: &Parsed) {
    let duplicates = duplicate_ids(r, p);
    check_refs(r, p);
    // with duplicate ids the graph is ambiguous; the duplicate is the error to fix first
    if !duplicates {
        rollback_only_checks(r, p);
        check_cycles(r, p);
    }
    check_has_steps(r, p);
    check_points_of_no_return(r, &p.runbook);
}

/// Step ids used twice, each pointing at its first use. True if there are any.
fn duplicate_ids(r: &mut Reader<'_>, p: &Parsed) -> bool {
    let mut first: BTreeMap<&str, &Span> = BTreeMap::new();
    let mut duplicates = false;
    for (id, span) in &p.step_ids {
        if let Some(prev) = first.get(id.as_str()) {
            duplicates = true;
            if r.is_full() {
                r.dropped += 1;
                continue;
            }
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
    duplicates
}

/// Every reference (to a connection, monitor or step) names something the
/// runbook defines; if not, say what it could have meant.
fn check_refs(r: &mut Reader<'_>, p: &Parsed) {
    let rb = &p.runbook;
    let step_names: Vec<&str> = p.step_ids.iter().map(|(s, _)| s.as_str()).collect();
    let step_set: std::collections::BTreeSet<&str> = step_names.iter().copied().collect();
    let conn_names: Vec<&str> = rb.connections.keys().map(|s| s.as_str()).collect();
    let lag_names: Vec<&str> = rb.monitors.lag.iter().map(|m| m.name.as_str()).collect();
    let metric_names: Vec<&str> = rb.monitors.metric.iter().map(|m| m.name.as_str()).collect();
    let mut dms_names: Vec<&str> = rb.monitors.dms.iter().map(|m| m.name.as_str()).collect();
    dms_names.sort_unstable();
    dms_names.dedup();
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
            RefKind::DmsMonitor => (
                &dms_names,
                "dms monitor",
                "a [[monitor.dms]] with this name",
            ),
            RefKind::Step => (&step_names, "step", "the id of a step in this runbook"),
        };
        let known = match rf.kind {
            RefKind::Step => step_set.contains(rf.name.as_str()),
            RefKind::Connection => rb.connections.contains_key(&rf.name),
            _ => pool.contains(&rf.name.as_str()),
        };
        if known {
            continue;
        }
        if r.is_full() {
            r.dropped += 1;
            continue;
        }
        let help = ref_help(rf, pool, &lag_names, &metric_names);
        let expected = if pool.is_empty() {
            format!("{define} (none is defined)")
        } else {
            format!("one of: {}", list_names(pool.iter().copied()))
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
}

/// The help line for an unknown reference: a near name, a connection to add,
/// or a monitor of the other kind.
fn ref_help(rf: &Ref, pool: &[&str], lag_names: &[&str], metric_names: &[&str]) -> Option<String> {
    let mut help = did_you_mean(&rf.name, pool.iter().copied());
    if help.is_none() && rf.kind == RefKind::Connection {
        let var = format!(
            "{}_DATABASE_URL",
            rf.name.to_ascii_uppercase().replace('-', "_")
        );
        help = Some(format!(
            "if it is a new database, add `[connections.{}]` with `url = \"${{env:{var}}}\"`",
            rf.name
        ));
    }
    if help.is_none() && rf.kind == RefKind::LagMonitor && metric_names.contains(&rf.name.as_str())
    {
        help = Some(format!(
            "`{}` is a metric monitor: write `metric = \"{}\"`",
            rf.name, rf.name
        ));
    }
    if help.is_none() && rf.kind == RefKind::MetricMonitor && lag_names.contains(&rf.name.as_str())
    {
        help = Some(format!(
            "`{}` is a lag monitor: write `lag = \"{}\"`",
            rf.name, rf.name
        ));
    }
    help
}

/// A step that depends on itself, or dependencies that loop, named as a path.
fn check_cycles(r: &mut Reader<'_>, p: &Parsed) {
    let rb = &p.runbook;
    let deps: BTreeMap<&str, Vec<&str>> = rb
        .steps()
        .map(|s| {
            (
                s.id.as_str(),
                s.depends_on.iter().map(|d| d.as_str()).collect(),
            )
        })
        .collect();
    for cycle in find_cycles(&deps) {
        let head = cycle[0];
        let span = p
            .dep_spans
            .deps
            .get(head)
            .and_then(|list| {
                list.iter()
                    .find(|(d, _)| d == cycle[1 % cycle.len()])
                    .map(|(_, s)| s.clone())
            })
            .or_else(|| rb.step(head).map(|s| s.span.clone()));
        if cycle.len() == 1 {
            r.error(
                Diagnostic::new(span, format!("step `{head}` depends on itself"))
                    .expected("the ids of steps that must finish before this one")
                    .help(format!("remove `{head}` from its own `depends_on`")),
            );
            continue;
        }
        let mut path: Vec<&str> = cycle.clone();
        path.push(head);
        // depends_on points backwards; show it in execution terms "a needs b needs a"
        r.error(
            Diagnostic::new(span, format!("dependency cycle: {}", path.join(" -> ")))
                .expected("dependencies that lead back to a first step (no loop)")
                .help("each arrow reads \"depends on\"; remove one of these `depends_on` entries"),
        );
    }
}

/// At least one step (said only when nothing else is wrong).
fn check_has_steps(r: &mut Reader<'_>, p: &Parsed) {
    let rb = &p.runbook;
    if rb.steps().next().is_none() && r.errors.is_empty() {
        r.error(
            Diagnostic::new(
                p.phases_span.clone().or(Some(p.file_span.clone())),
                "the runbook has no steps",
            )
            .expected("at least one `[[phase]]` with a `[[phase.step]]`"),
        );
    }
}

/// A point of no return must be confirmed by someone.
fn check_points_of_no_return(r: &mut Reader<'_>, rb: &Runbook) {
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

/// Steps named in a rollback list run only when that rollback is triggered
/// (see `Runbook::rollback_only`): nothing in the normal flow may wait for
/// them, a step cannot be its own undo, and something must run normally.
fn rollback_only_checks(r: &mut Reader<'_>, p: &Parsed) {
    let rb = &p.runbook;
    let only = rb.rollback_only();
    let mut undoes_itself = false;
    for (owner, list) in &p.dep_spans.rollbacks {
        for (id, span) in list {
            if id == owner {
                undoes_itself = true;
                r.error(
                    Diagnostic::new(Some(span.clone()), format!("step `{owner}` lists itself in its own rollback"))
                        .expected("the ids of other steps, which undo this one")
                        .help("a step named in a rollback list runs only as that rollback, so this step would never run"),
                );
            }
        }
    }
    for s in rb.steps() {
        if only.contains_key(s.id.as_str()) {
            continue;
        }
        for d in &s.depends_on {
            let Some(undoes) = only.get(d.as_str()) else {
                continue;
            };
            if undoes.iter().all(|u| u == d) {
                continue; // a step that undoes itself: reported above
            }
            let undoes = undoes
                .iter()
                .map(|u| format!("`{u}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let explicit = p
                .dep_spans
                .deps
                .get(&s.id)
                .and_then(|l| l.iter().find(|(x, _)| x == d).map(|(_, sp)| sp.clone()));
            match explicit {
                Some(span) => r.error(
                    Diagnostic::new(
                        Some(span),
                        format!("step `{}` depends on `{d}`, which runs only in the rollback of {undoes}", s.id),
                    )
                    .expected("a step of the normal flow")
                    .help(format!("`{}` would wait for `{d}` forever: remove it from `depends_on`", s.id)),
                ),
                None => r.error(
                    Diagnostic::new(
                        Some(s.span.clone()),
                        format!("step `{}` comes after `{d}` in the file, so it waits for it by default, but `{d}` runs only in the rollback of {undoes}", s.id),
                    )
                    .expected("rollback-only steps after the last step of the normal flow")
                    .help(format!("move the rollback steps to the end of the file, or give `{}` its own `depends_on`", s.id)),
                ),
            }
        }
    }
    let normal = rb
        .steps()
        .filter(|s| !only.contains_key(s.id.as_str()))
        .count();
    if normal == 0 && !undoes_itself && rb.steps().next().is_some() {
        r.error(
            Diagnostic::new(
                p.phases_span.clone().or(Some(p.file_span.clone())),
                "every step is named in a rollback list, so no step runs in the normal flow",
            )
            .expected("at least one step that is not only an undo"),
        );
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
    // Iterative depth-first search: a runbook of 100,000 chained steps (the
    // default dependency) would overflow the stack of a recursive one.
    let mut stack: Vec<&str> = Vec::new();
    let mut frames: Vec<(&str, usize)> = Vec::new(); // node, next dependency to visit
    let keys: Vec<&str> = deps.keys().copied().collect();
    for k in keys {
        if mark.get(k) != Some(&Mark::New) {
            continue;
        }
        mark.insert(k, Mark::Active);
        stack.push(k);
        frames.push((k, 0));
        while let Some(&(n, next)) = frames.last() {
            let list = deps.get(n).map(|v| v.as_slice()).unwrap_or(&[]);
            match list.get(next) {
                Some(&d) => {
                    if let Some(top) = frames.last_mut() {
                        top.1 += 1;
                    }
                    match mark.get(d).copied() {
                        Some(Mark::New) => {
                            mark.insert(d, Mark::Active);
                            stack.push(d);
                            frames.push((d, 0));
                        }
                        Some(Mark::Active) => {
                            let pos = stack.iter().rposition(|x| *x == d).unwrap_or(0);
                            cycles.push(stack[pos..].to_vec());
                        }
                        _ => {}
                    }
                }
                None => {
                    frames.pop();
                    stack.pop();
                    mark.insert(n, Mark::Done);
                }
            }
        }
    }
    cycles
}

/// Steps in an order that respects dependencies, stable with respect to the
/// runbook order (Kahn's algorithm picking the earliest ready step).
pub fn execution_order(rb: &Runbook) -> Vec<&Step> {
    use std::collections::BTreeSet;
    let steps: Vec<&Step> = rb.steps().collect();
    let index: BTreeMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    // waiting[i]: unfinished dependencies of step i; users[j]: steps that wait for j
    let mut waiting = vec![0usize; steps.len()];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        for d in &s.depends_on {
            if let Some(&j) = index.get(d.as_str()) {
                waiting[i] += 1;
                users[j].push(i);
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..steps.len()).filter(|&i| waiting[i] == 0).collect();
    let mut out = Vec::with_capacity(steps.len());
    while let Some(i) = ready.pop_first() {
        out.push(steps[i]);
        for &u in &users[i] {
            waiting[u] -= 1;
            if waiting[u] == 0 {
                ready.insert(u);
            }
        }
    }
    out // shorter than `steps` when there is a cycle: validation reports it
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
    fn a_very_long_chain_does_not_overflow_the_stack() {
        // 300,000 steps each depending on the one before: the default
        // dependency of a generated runbook. A recursive search crashed.
        let names: Vec<String> = (0..300_000).map(|i| format!("s{i}")).collect();
        let mut deps: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (i, n) in names.iter().enumerate() {
            let before = if i == 0 {
                vec![]
            } else {
                vec![names[i - 1].as_str()]
            };
            deps.insert(n.as_str(), before);
        }
        assert!(find_cycles(&deps).is_empty());
        deps.insert(names[0].as_str(), vec![names[299_999].as_str()]);
        let cycles = find_cycles(&deps);
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].len(), 300_000);
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
