//! `[[phase]]` and `[[phase.step]]`: common step keys, then the keys of each
//! step kind. Unknown keys are reported against the kind's own key list, so
//! `tabels` in a copy step suggests `tables`, and `run` in a sql step says it
//! belongs to shell steps.

use super::diag::{did_you_mean, Diagnostic};
use super::model::*;
use super::parse::{array_of_tables, conn_ref, strip_spans, Ref, RefKind};
use super::reader::{is_slug, item_span, slugify, type_name, Node, Reader};
use std::collections::BTreeMap;
use std::time::Duration;
use toml_edit::Value;

const PHASE_KEYS: &[&str] = &["id", "title", "notes", "step"];
const COMMON: &[&str] = &[
    "id",
    "kind",
    "title",
    "notes",
    "confirm",
    "depends_on",
    "timeout",
    "retries",
    "on_failure",
    "rollback",
    "point_of_no_return",
];
pub const KINDS: &[&str] = &["confirm", "shell", "sql", "wait", "copy", "verify", "rds"];

fn kind_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "shell" => &["run", "env", "cwd"],
        "sql" => &["connection", "sql", "expect"],
        "wait" => &["until", "every"],
        "copy" => &[
            "from",
            "to",
            "tables",
            "exclude",
            "chunk_rows",
            "parallel",
            "throttle",
            "truncate",
            "where",
        ],
        "verify" => &[
            "source",
            "target",
            "tables",
            "exclude",
            "checks",
            "sample",
            "max_diffs",
            "time_limit",
        ],
        "rds" => &[
            "action",
            "instance",
            "source_instance",
            "instance_class",
            "snapshot",
            "status",
            "wait",
        ],
        _ => &[],
    }
}

pub type DepSpans = BTreeMap<String, Vec<(String, Span)>>;

pub fn parse_phases(
    r: &mut Reader<'_>,
    root: Node<'_>,
    refs: &mut Vec<Ref>,
    step_ids: &mut Vec<(String, Span)>,
    dep_spans: &mut DepSpans,
) -> (Vec<Phase>, Option<Span>) {
    let tables = array_of_tables(r, root, "phase", "[[phase]]");
    let first_span = tables.first().and_then(|t| t.span());
    let mut phases = Vec::new();
    let mut seen_phase: BTreeMap<String, Span> = BTreeMap::new();
    let mut previous: Option<String> = None;
    for (i, t) in tables.into_iter().enumerate() {
        let ctx0 = format!("phase #{}", i + 1);
        r.check_keys(t, &ctx0, PHASE_KEYS);
        let id = match r.str_req(t, "id", &ctx0, "\"precheck\"") {
            Some((id, span)) => {
                check_slug(r, &id, &span, "phase id");
                if let Some(first) = seen_phase.get(&id) {
                    let (line, _) = super::diag::line_col(r.src, first.start);
                    r.error(
                        Diagnostic::new(Some(span.clone()), format!("duplicate phase id `{id}`"))
                            .expected(format!(
                                "a phase id not used before (first used on line {line})"
                            )),
                    );
                }
                seen_phase.insert(id.clone(), span);
                id
            }
            None => format!("phase-{}", i + 1),
        };
        let ctx = format!("phase `{id}`");
        let mut steps = Vec::new();
        for st in array_of_tables(r, t, "step", "[[phase.step]]") {
            if let Some(step) = parse_step(r, st, &id, &mut previous, refs, step_ids, dep_spans) {
                steps.push(step);
            }
        }
        phases.push(Phase {
            title: r.string(t, "title", &ctx),
            notes: r.string(t, "notes", &ctx),
            id,
            steps,
        });
    }
    (phases, first_span)
}

fn check_slug(r: &mut Reader<'_>, id: &str, span: &Span, what: &str) {
    if !is_slug(id) {
        r.error(
            Diagnostic::new(Some(span.clone()), format!("{what} `{id}` is not a slug"))
                .expected("lowercase letters, digits, `-` and `_`, starting with a letter")
                .help(format!("try `{}`", slugify(id))),
        );
    }
}

fn parse_step(
    r: &mut Reader<'_>,
    t: Node<'_>,
    phase: &str,
    previous: &mut Option<String>,
    refs: &mut Vec<Ref>,
    step_ids: &mut Vec<(String, Span)>,
    dep_spans: &mut DepSpans,
) -> Option<Step> {
    let header = t.span().unwrap_or(0..0);
    let pctx = format!("a step of phase `{phase}`");
    let (id, id_span) = match r.str_req(t, "id", &pctx, "\"copy-data\"") {
        Some((id, span)) => {
            check_slug(r, &id, &span, "step id");
            (id, span)
        }
        None => (String::new(), header.clone()),
    };
    let ctx = if id.is_empty() {
        pctx
    } else {
        format!("step `{id}`")
    };
    if !id.is_empty() {
        step_ids.push((id.clone(), id_span));
    }

    // kind decides which keys are allowed
    let kind_name = match t.get("kind") {
        None => {
            r.error(
                Diagnostic::new(t.span(), format!("missing required key `kind` in {ctx}"))
                    .expected(format!("`kind = \"...\"`, one of: {}", KINDS.join(", "))),
            );
            None
        }
        Some((_, item)) => match item.as_value() {
            Some(Value::String(s)) if KINDS.contains(&s.value().as_str()) => {
                Some(s.value().clone())
            }
            Some(Value::String(s)) => {
                r.error(
                    Diagnostic::new(
                        s.span(),
                        format!("unknown step kind `{}` in {ctx}", s.value()),
                    )
                    .expected(format!("one of: {}", KINDS.join(", ")))
                    .help_opt(did_you_mean(s.value(), KINDS.iter().copied())),
                );
                None
            }
            _ => {
                r.error(
                    Diagnostic::new(
                        item_span(item),
                        format!("wrong type for `kind` in {ctx}: found {}", type_name(item)),
                    )
                    .expected(format!("a string, one of: {}", KINDS.join(", "))),
                );
                None
            }
        },
    };

    // unknown keys, with a kind-aware message
    let allowed: Vec<&str> = COMMON
        .iter()
        .chain(kind_name.as_deref().map(kind_keys).unwrap_or(&[]).iter())
        .copied()
        .collect();
    if kind_name.is_some() {
        for (key, span) in t.keys() {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            let owner = KINDS.iter().find(|k| kind_keys(k).contains(&key.as_str()));
            let kind = kind_name.as_deref().unwrap_or("");
            let mut d = Diagnostic::new(
                span,
                format!("unknown key `{key}` in {ctx} (kind `{kind}`)"),
            )
            .expected(format!("one of: {}", allowed.join(", ")));
            d = match (did_you_mean(&key, allowed.iter().copied()), owner) {
                (Some(h), _) => d.help(h),
                (None, Some(o)) => d.help(format!("`{key}` belongs to {o} steps")),
                _ => d,
            };
            r.error(d);
        }
    }

    let confirm = match r.str_opt(t, "confirm", &ctx) {
        None => ConfirmMode::Operator,
        Some((s, span)) => match s.as_str() {
            "operator" => ConfirmMode::Operator,
            "two-person" => ConfirmMode::TwoPerson,
            "none" => ConfirmMode::None,
            _ => {
                let opts = ["operator", "two-person", "none"];
                r.error(
                    Diagnostic::new(
                        Some(span),
                        format!("bad value `{s}` for `confirm` in {ctx}"),
                    )
                    .expected("one of: operator, two-person, none")
                    .help_opt(did_you_mean(&s, opts)),
                );
                ConfirmMode::Operator
            }
        },
    };
    let on_failure = match r.str_opt(t, "on_failure", &ctx) {
        None => OnFailure::Halt,
        Some((s, span)) => match s.as_str() {
            "halt" => OnFailure::Halt,
            "continue" => OnFailure::Continue,
            "rollback" => OnFailure::Rollback,
            _ => {
                r.error(
                    Diagnostic::new(
                        Some(span),
                        format!("bad value `{s}` for `on_failure` in {ctx}"),
                    )
                    .expected("one of: halt, continue, rollback")
                    .help_opt(did_you_mean(&s, ["halt", "continue", "rollback"])),
                );
                OnFailure::Halt
            }
        },
    };

    let depends_on_list = r.str_list_opt(t, "depends_on", &ctx);
    let depends_on_explicit = depends_on_list.is_some();
    let depends_on = match depends_on_list {
        Some(list) => {
            for (dep, span) in &list {
                refs.push(Ref {
                    kind: RefKind::Step,
                    name: dep.clone(),
                    span: span.clone(),
                    from: ctx.clone(),
                });
            }
            dep_spans.insert(id.clone(), list.clone());
            strip_spans(list)
        }
        None => previous.iter().cloned().collect(),
    };

    let retries = match r.table_opt(t, "retries", &ctx) {
        None => Retries::default(),
        Some(rt) => {
            let c = format!("`retries` of {ctx}");
            r.check_keys(rt, &c, &["max", "backoff"]);
            if rt.get("max").is_none() {
                r.missing(rt, "max", &c, "3");
            }
            Retries {
                max: r.uint_opt(rt, "max", &c, 0, 100).unwrap_or(0) as u32,
                backoff: r
                    .duration_opt(rt, "backoff", &c)
                    .unwrap_or(Duration::from_secs(5)),
            }
        }
    };
    let rollback = parse_rollback(r, t, &ctx, refs);
    if on_failure == OnFailure::Rollback && rollback.is_none() && t.get("rollback").is_none() {
        r.error(
            Diagnostic::new(t.get("on_failure").and_then(|(s, _)| s), format!("{ctx} has `on_failure = \"rollback\"` but no `rollback`"))
                .expected("a `rollback = { run = \"...\" }`, `{ sql = \"...\", connection = \"...\" }` or `{ steps = [...] }`"),
        );
    }

    let kind = match kind_name.as_deref() {
        Some(k) => parse_kind(r, t, k, &ctx, refs)?,
        None => return None,
    };
    *previous = Some(id.clone());
    Some(Step {
        title: r.string(t, "title", &ctx),
        notes: r.string(t, "notes", &ctx),
        timeout: r.duration_opt(t, "timeout", &ctx),
        point_of_no_return: r.bool_opt(t, "point_of_no_return", &ctx).unwrap_or(false),
        phase: phase.to_string(),
        id,
        confirm,
        depends_on,
        depends_on_explicit,
        retries,
        on_failure,
        rollback,
        kind,
        span: header,
    })
}

fn parse_rollback(
    r: &mut Reader<'_>,
    t: Node<'_>,
    ctx: &str,
    refs: &mut Vec<Ref>,
) -> Option<Rollback> {
    let (_, item) = t.get("rollback")?;
    let c = format!("`rollback` of {ctx}");
    if let Some(Value::Array(_)) = item.as_value() {
        let list = r.str_list_opt(t, "rollback", ctx)?;
        return Some(Rollback::Steps(step_refs(list, ctx, refs)));
    }
    let rb = r.table_opt(t, "rollback", ctx)?;
    r.check_keys(rb, &c, &["run", "sql", "connection", "steps"]);
    let has = |k: &str| rb.get(k).is_some();
    match (has("run"), has("sql"), has("steps")) {
        (true, false, false) => Some(Rollback::Shell {
            run: r.string(rb, "run", &c)?,
        }),
        (false, true, false) => {
            let sql = r.string(rb, "sql", &c)?;
            let connection = conn_ref(r, rb, "connection", &c, refs, ctx)?;
            Some(Rollback::Sql { sql, connection })
        }
        (false, false, true) => {
            let list = r.str_list_opt(rb, "steps", &c)?;
            Some(Rollback::Steps(step_refs(list, ctx, refs)))
        }
        _ => {
            r.error(
                Diagnostic::new(rb.span(), format!("{c} needs exactly one of `run`, `sql` or `steps`"))
                    .expected("`{ run = \"...\" }`, `{ sql = \"...\", connection = \"...\" }` or `{ steps = [\"id\", ...] }`"),
            );
            None
        }
    }
}

fn step_refs(list: Vec<(String, Span)>, ctx: &str, refs: &mut Vec<Ref>) -> Vec<String> {
    for (id, span) in &list {
        refs.push(Ref {
            kind: RefKind::Step,
            name: id.clone(),
            span: span.clone(),
            from: format!("the rollback of {ctx}"),
        });
    }
    strip_spans(list)
}

fn parse_kind(
    r: &mut Reader<'_>,
    t: Node<'_>,
    kind: &str,
    ctx: &str,
    refs: &mut Vec<Ref>,
) -> Option<StepKind> {
    let c = format!("{ctx} (kind `{kind}`)");
    Some(match kind {
        "confirm" => StepKind::Confirm,
        "shell" => {
            let run = r.str_req(t, "run", &c, "\"./scripts/maintenance.sh on\"");
            let env = r.str_map_opt(t, "env", &c);
            let cwd = r.string(t, "cwd", &c);
            StepKind::Shell(ShellStep {
                run: run?.0,
                env,
                cwd,
            })
        }
        "sql" => {
            let connection = conn_ref(r, t, "connection", &c, refs, ctx);
            let sql = r.str_req(t, "sql", &c, "\"select 1\"");
            let expect = t.get("expect").and_then(|(_, item)| match item.as_value() {
                Some(Value::String(s)) => Some(Expect::Text(s.value().clone())),
                Some(Value::Integer(i)) => Some(Expect::Integer(*i.value())),
                Some(Value::Float(f)) => Some(Expect::Float(*f.value())),
                Some(Value::Boolean(b)) => Some(Expect::Bool(*b.value())),
                _ => {
                    r.error(
                        Diagnostic::new(
                            item_span(item),
                            format!("wrong type for `expect` in {c}: found {}", type_name(item)),
                        )
                        .expected("a string, number or boolean"),
                    );
                    None
                }
            });
            StepKind::Sql(SqlStep {
                connection: connection?,
                sql: sql?.0,
                expect,
            })
        }
        "wait" => {
            if t.get("until").is_none() {
                r.missing(t, "until", &c, "{ lag = \"replica\", below = \"10s\" }");
                return None;
            }
            let u = r.table_opt(t, "until", &c)?;
            let uc = format!("`until` of {ctx}");
            let cond = parse_condition(r, u, &uc, refs, true)?;
            StepKind::Wait(WaitStep {
                until: cond.0,
                hold: cond.1,
                every: r
                    .duration_opt(t, "every", &c)
                    .unwrap_or(Duration::from_secs(2)),
            })
        }
        "copy" => {
            let from = conn_ref(r, t, "from", &c, refs, ctx);
            let to = conn_ref(r, t, "to", &c, refs, ctx);
            let throttle = match r.table_opt(t, "throttle", &c) {
                Some(th) => parse_condition(r, th, &format!("`throttle` of {ctx}"), refs, false)
                    .map(|x| x.0),
                None => None,
            };
            let filters = r.str_map_opt(t, "where", &c);
            StepKind::Copy(CopyStep {
                tables: r
                    .str_list_opt(t, "tables", &c)
                    .map(strip_spans)
                    .unwrap_or_else(|| vec!["*.*".into()]),
                exclude: r
                    .str_list_opt(t, "exclude", &c)
                    .map(strip_spans)
                    .unwrap_or_default(),
                chunk_rows: r
                    .uint_opt(t, "chunk_rows", &c, 1, 100_000_000)
                    .unwrap_or(50_000),
                parallel: r.uint_opt(t, "parallel", &c, 1, 64).unwrap_or(2) as u32,
                truncate: r.bool_opt(t, "truncate", &c).unwrap_or(false),
                throttle,
                filters,
                from: from?,
                to: to?,
            })
        }
        "verify" => {
            let source = conn_ref(r, t, "source", &c, refs, ctx);
            let target = conn_ref(r, t, "target", &c, refs, ctx);
            let checks = match r.str_list_opt(t, "checks", &c) {
                None => vec![
                    Check::Schema,
                    Check::Counts,
                    Check::Checksums,
                    Check::Sample,
                ],
                Some(list) => {
                    let names = ["schema", "counts", "checksums", "sample"];
                    let mut out = Vec::new();
                    for (s, span) in list {
                        let check = match s.as_str() {
                            "schema" => Check::Schema,
                            "counts" => Check::Counts,
                            "checksums" => Check::Checksums,
                            "sample" => Check::Sample,
                            _ => {
                                r.error(
                                    Diagnostic::new(
                                        Some(span),
                                        format!("unknown check `{s}` in {c}"),
                                    )
                                    .expected("one of: schema, counts, checksums, sample")
                                    .help_opt(did_you_mean(&s, names)),
                                );
                                continue;
                            }
                        };
                        if !out.contains(&check) {
                            out.push(check);
                        }
                    }
                    out
                }
            };
            StepKind::Verify(VerifyStep {
                tables: r
                    .str_list_opt(t, "tables", &c)
                    .map(strip_spans)
                    .unwrap_or_else(|| vec!["*.*".into()]),
                exclude: r
                    .str_list_opt(t, "exclude", &c)
                    .map(strip_spans)
                    .unwrap_or_default(),
                sample: r.uint_opt(t, "sample", &c, 0, 10_000_000).unwrap_or(1000),
                max_diffs: r.uint_opt(t, "max_diffs", &c, 1, 1_000_000).unwrap_or(100),
                time_limit: r.duration_opt(t, "time_limit", &c),
                checks,
                source: source?,
                target: target?,
            })
        }
        "rds" => parse_rds(r, t, &c)?,
        _ => return None,
    })
}

const RDS_ACTIONS: &[&str] = &[
    "create_read_replica",
    "promote_read_replica",
    "create_snapshot",
    "reboot",
    "wait_status",
];

/// Statuses RDS reports for instances and snapshots. A status ferry does not
/// know is accepted (AWS adds some), unless it is a typo of one of these: a
/// wait for `availble` would only ever end at its timeout, in the window.
const RDS_STATUSES: &[&str] = &[
    "available",
    "backing-up",
    "configuring-enhanced-monitoring",
    "configuring-iam-database-auth",
    "configuring-log-exports",
    "converting-to-vpc",
    "copying",
    "creating",
    "delete-precheck",
    "deleting",
    "failed",
    "inaccessible-encryption-credentials",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-parameters",
    "incompatible-restore",
    "insufficient-capacity",
    "maintenance",
    "modifying",
    "moving-to-vpc",
    "pending",
    "rebooting",
    "renaming",
    "resetting-master-credentials",
    "restore-error",
    "starting",
    "stopped",
    "stopping",
    "storage-full",
    "storage-initializing",
    "storage-optimization",
    "upgrading",
];

/// A known status `status` is a typo of (1–2 edits away), if it is not known itself.
fn status_typo(status: &str) -> Option<&'static str> {
    if RDS_STATUSES.contains(&status) {
        return None;
    }
    RDS_STATUSES
        .iter()
        .copied()
        .filter(|k| k.len() > 4)
        .map(|k| (strsim::levenshtein(status, k), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Refuse a status that is a typo of a known one (see [`RDS_STATUSES`]).
fn check_status(r: &mut Reader<'_>, t: Node<'_>, key: &str, status: Option<&str>, c: &str) {
    let Some(status) = status else {
        return;
    };
    if let Some(known) = status_typo(status) {
        r.error(
            Diagnostic::new(
                t.get(key).and_then(|(s, _)| s),
                format!("unknown RDS status `{status}` for `{key}` in {c}"),
            )
            .expected("a status RDS reports, e.g. \"available\"")
            .help(format!("did you mean `{known}`?")),
        );
    }
}

fn parse_rds(r: &mut Reader<'_>, t: Node<'_>, c: &str) -> Option<StepKind> {
    let (action, aspan) = r.str_req(t, "action", c, "\"promote_read_replica\"")?;
    let instance = r
        .str_req(t, "instance", c, "\"${vars.target_instance}\"")
        .map(|x| x.0);
    let req =
        |r: &mut Reader<'_>, key: &str, example: &str| r.str_req(t, key, c, example).map(|x| x.0);
    let action = match action.as_str() {
        "create_read_replica" => RdsAction::CreateReadReplica {
            source_instance: req(r, "source_instance", "\"legacy-primary\"")?,
            instance_class: r.string(t, "instance_class", c),
            instance: instance?,
        },
        "promote_read_replica" => RdsAction::PromoteReadReplica {
            instance: instance?,
        },
        "create_snapshot" => RdsAction::CreateSnapshot {
            snapshot: req(r, "snapshot", "\"pre-cutover-2026-11-22\"")?,
            instance: instance?,
        },
        "reboot" => RdsAction::Reboot {
            instance: instance?,
        },
        "wait_status" => RdsAction::WaitStatus {
            status: req(r, "status", "\"available\"")?,
            instance: instance?,
        },
        other => {
            r.error(
                Diagnostic::new(Some(aspan), format!("unknown rds action `{other}` in {c}"))
                    .expected(format!("one of: {}", RDS_ACTIONS.join(", ")))
                    .help_opt(did_you_mean(other, RDS_ACTIONS.iter().copied())),
            );
            return None;
        }
    };
    // keys that belong to another action are mistakes worth naming
    let used: &[&str] = match &action {
        RdsAction::CreateReadReplica { .. } => &["source_instance", "instance_class"],
        RdsAction::CreateSnapshot { .. } => &["snapshot"],
        RdsAction::WaitStatus { .. } => &["status"],
        _ => &[],
    };
    for key in ["source_instance", "instance_class", "snapshot", "status"] {
        if !used.contains(&key) {
            if let Some((span, _)) = t.get(key) {
                r.error(
                    Diagnostic::new(
                        span,
                        format!(
                            "`{key}` does not apply to rds action `{}` in {c}",
                            action.name()
                        ),
                    )
                    .expected(if used.is_empty() {
                        "no action-specific keys".to_string()
                    } else {
                        format!("one of: {}", used.join(", "))
                    }),
                );
            }
        }
    }
    let wait = r.string(t, "wait", c);
    check_status(r, t, "wait", wait.as_deref(), c);
    if let RdsAction::WaitStatus { status, .. } = &action {
        check_status(r, t, "status", Some(status), c);
    }
    Some(StepKind::Rds(RdsStep { wait, action }))
}

/// `{ lag = NAME, below|above = DURATION, for = DURATION }`,
/// `{ metric = NAME, below|above = NUMBER, for = ... }` or `{ sql = QUERY, connection = NAME, for = ... }`.
fn parse_condition(
    r: &mut Reader<'_>,
    u: Node<'_>,
    c: &str,
    refs: &mut Vec<Ref>,
    allow_sql: bool,
) -> Option<(Condition, Option<Duration>)> {
    let mut keys = vec!["lag", "metric", "below", "above", "for"];
    if allow_sql {
        keys.extend(["sql", "connection"]);
    }
    r.check_keys(u, c, &keys);
    let hold = r.duration_opt(u, "for", c);
    let compare = |r: &mut Reader<'_>| -> Option<(Compare, &'static str)> {
        match (u.get("below").is_some(), u.get("above").is_some()) {
            (true, false) => Some((Compare::Below, "below")),
            (false, true) => Some((Compare::Above, "above")),
            _ => {
                r.error(
                    Diagnostic::new(
                        u.span(),
                        format!("{c} needs exactly one of `below` or `above`"),
                    )
                    .expected("`below = ...` or `above = ...`"),
                );
                None
            }
        }
    };
    let which = ["lag", "metric", "sql"]
        .into_iter()
        .filter(|k| u.get(k).is_some())
        .collect::<Vec<_>>();
    match which.as_slice() {
        ["lag"] => {
            let (name, span) = r.str_opt(u, "lag", c)?;
            refs.push(Ref {
                kind: RefKind::LagMonitor,
                name: name.clone(),
                span,
                from: c.to_string(),
            });
            let (cmp, key) = compare(r)?;
            let threshold = r.duration_opt(u, key, c)?;
            Some((
                Condition::Lag {
                    monitor: name,
                    compare: cmp,
                    threshold,
                },
                hold,
            ))
        }
        ["metric"] => {
            let (name, span) = r.str_opt(u, "metric", c)?;
            refs.push(Ref {
                kind: RefKind::MetricMonitor,
                name: name.clone(),
                span,
                from: c.to_string(),
            });
            let (cmp, key) = compare(r)?;
            let threshold = r.number_opt(u, key, c)?;
            Some((
                Condition::Metric {
                    monitor: name,
                    compare: cmp,
                    threshold,
                },
                hold,
            ))
        }
        ["sql"] if allow_sql => {
            let query = r.string(u, "sql", c)?;
            let connection = conn_ref(r, u, "connection", c, refs, c)?;
            Some((Condition::Sql { connection, query }, hold))
        }
        _ => {
            let want = if allow_sql {
                "`{ lag = \"NAME\", below = \"10s\" }`, `{ metric = \"NAME\", above = 80 }` or `{ sql = \"...\", connection = \"NAME\" }`"
            } else {
                "`{ lag = \"NAME\", above = \"30s\" }` or `{ metric = \"NAME\", above = 80 }`"
            };
            r.error(
                Diagnostic::new(
                    u.span(),
                    format!("{c} needs exactly one condition, found {}", which.len()),
                )
                .expected(want),
            );
            None
        }
    }
}
