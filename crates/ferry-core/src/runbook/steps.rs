//! `[[phase]]` and `[[phase.step]]`: the keys common to every step and the
//! rollback forms; the keys of each kind are read in `kinds.rs`. Unknown keys
//! are reported against the kind's own key list, so `tabels` in a copy step
//! suggests `tables`, and `run` in a sql step says it belongs to shell steps.

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
pub const KINDS: &[&str] = &[
    "confirm",
    "shell",
    "sql",
    "wait",
    "copy",
    "verify",
    "rds",
    "dms",
    "replicate",
];

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
            "zero_dates",
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
            "zero_dates",
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
        "dms" => &[
            "action",
            "task",
            "wait",
            "instance",
            "source_endpoint",
            "target_endpoint",
            "tables",
            "exclude",
            "migration",
            "cdc_stop_position",
        ],
        "replicate" => &["action", "from", "to", "tables", "exclude", "name"],
        _ => &[],
    }
}

/// Where each step's `depends_on` entries and `rollback` step ids are, by
/// step id, for diagnostics that need the whole runbook (cycles, rollbacks).
#[derive(Default)]
pub struct StepSpans {
    pub deps: BTreeMap<String, Vec<(String, Span)>>,
    pub rollbacks: BTreeMap<String, Vec<(String, Span)>>,
}

pub fn parse_phases(
    r: &mut Reader<'_>,
    root: Node<'_>,
    refs: &mut Vec<Ref>,
    step_ids: &mut Vec<(String, Span)>,
    dep_spans: &mut StepSpans,
) -> (Vec<Phase>, Option<Span>) {
    let tables = array_of_tables(r, root, "phase", "[[phase]]");
    let first_span = tables.first().and_then(|t| t.span());
    // with a single empty phase, "the runbook has no steps" says it better
    let phase_count = tables.len();
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
        let step_tables = array_of_tables(r, t, "step", "[[phase.step]]");
        if step_tables.is_empty() && t.get("step").is_none() && phase_count > 1 {
            r.error(
                Diagnostic::new(t.span(), format!("{ctx} has no steps"))
                    .expected("`[[phase.step]]` tables after the `[[phase]]` they belong to")
                    .help("add its steps, or remove the empty phase"),
            );
        }
        for st in step_tables {
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

pub fn check_slug(r: &mut Reader<'_>, id: &str, span: &Span, what: &str) {
    if id.len() > 64 && id.get(..64).is_some_and(is_slug) {
        r.error(
            Diagnostic::new(
                Some(span.clone()),
                format!("{what} `{id}` is longer than 64 characters"),
            )
            .expected("a slug of at most 64 characters"),
        );
    } else if id.is_empty() {
        r.error(
            Diagnostic::new(Some(span.clone()), format!("{what} is empty"))
                .expected("a slug: lowercase letters, digits, `-` and `_`, starting with a letter"),
        );
    } else if !is_slug(id) {
        let help = if id.is_ascii() {
            format!("try `{}`", slugify(id))
        } else {
            "ids are ASCII: write `é` as `e`, `ß` as `ss`".to_string()
        };
        r.error(
            Diagnostic::new(Some(span.clone()), format!("{what} `{id}` is not a slug"))
                .expected("lowercase letters, digits, `-` and `_`, starting with a letter")
                .help(help),
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
    dep_spans: &mut StepSpans,
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
    let kind_name = step_kind(r, t, &ctx);
    check_step_keys(r, t, &ctx, kind_name.as_deref());
    let confirm = confirm_mode(r, t, &ctx);
    let on_failure = on_failure(r, t, &ctx);
    let (depends_on, depends_on_explicit) = depends_on(r, t, &ctx, &id, previous, refs, dep_spans);
    let retries = retries(r, t, &ctx);
    let (rollback, rb_list) = parse_rollback(r, t, &ctx, refs);
    if !rb_list.is_empty() {
        dep_spans.rollbacks.insert(id.clone(), rb_list);
    }
    // a replication start rolls back by itself (see `StepKind::undoes_itself`)
    let undoes_itself = kind_name.as_deref() == Some("replicate")
        && t.get("action")
            .and_then(|(_, i)| i.as_str())
            .is_some_and(|a| a == "start");
    if on_failure == OnFailure::Rollback
        && rollback.is_none()
        && t.get("rollback").is_none()
        && !undoes_itself
    {
        r.error(
            Diagnostic::new(t.get("on_failure").and_then(|(s, _)| s), format!("{ctx} has `on_failure = \"rollback\"` but no `rollback`"))
                .expected("a `rollback = { run = \"...\" }`, `{ sql = \"...\", connection = \"...\" }` or `{ steps = [...] }`"),
        );
    }

    // the common keys first: a mistake in the kind's own keys must not hide them
    let title = r.string(t, "title", &ctx);
    let notes = r.string(t, "notes", &ctx);
    let timeout = r.duration_opt(t, "timeout", &ctx);
    let point_of_no_return = r.bool_opt(t, "point_of_no_return", &ctx).unwrap_or(false);
    let kind = match kind_name.as_deref() {
        Some(k) => super::kinds::parse_kind(r, t, k, &ctx, refs)?,
        None => return None,
    };
    *previous = Some(id.clone());
    Some(Step {
        title,
        notes,
        timeout,
        point_of_no_return,
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

/// The step's `kind`, if it names one ferry knows.
fn step_kind(r: &mut Reader<'_>, t: Node<'_>, ctx: &str) -> Option<String> {
    match t.get("kind") {
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
    }
}

/// Unknown keys, with a kind-aware message. Without a kind, still name the
/// keys that no kind takes, so one run reports everything.
fn check_step_keys(r: &mut Reader<'_>, t: Node<'_>, ctx: &str, kind_name: Option<&str>) {
    let allowed: Vec<&str> = COMMON
        .iter()
        .chain(kind_name.map(kind_keys).unwrap_or(&[]).iter())
        .copied()
        .collect();
    if kind_name.is_none() {
        // still name keys that no kind takes, so one run reports everything
        let any: Vec<&str> = COMMON
            .iter()
            .chain(KINDS.iter().flat_map(|k| kind_keys(k).iter()))
            .copied()
            .collect();
        for (key, span) in t.keys() {
            if !any.contains(&key.as_str()) {
                r.error(
                    Diagnostic::new(span, format!("unknown key `{key}` in {ctx}"))
                        .expected("a key of a step (see docs/runbook-format.md)")
                        .help_opt(did_you_mean(&key, any.iter().copied())),
                );
            }
        }
    }
    if kind_name.is_some() {
        for (key, span) in t.keys() {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            let owner = KINDS.iter().find(|k| kind_keys(k).contains(&key.as_str()));
            let kind = kind_name.unwrap_or("");
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
}

/// `confirm`: who confirms the step before it runs (operator by default).
fn confirm_mode(r: &mut Reader<'_>, t: Node<'_>, ctx: &str) -> ConfirmMode {
    match r.str_opt(t, "confirm", ctx) {
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
    }
}

/// `on_failure`: halt (the default), continue or roll back.
fn on_failure(r: &mut Reader<'_>, t: Node<'_>, ctx: &str) -> OnFailure {
    match r.str_opt(t, "on_failure", ctx) {
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
    }
}

/// `depends_on`, each id once and recorded as a reference to check later; without
/// it, the step before. Returns the list and whether the runbook wrote it.
fn depends_on(
    r: &mut Reader<'_>,
    t: Node<'_>,
    ctx: &str,
    id: &str,
    previous: &Option<String>,
    refs: &mut Vec<Ref>,
    dep_spans: &mut StepSpans,
) -> (Vec<String>, bool) {
    let depends_on_list = r.str_list_opt(t, "depends_on", ctx);
    let depends_on_explicit = depends_on_list.is_some();
    let depends_on = match depends_on_list {
        Some(list) => {
            for (i, (dep, span)) in list.iter().enumerate() {
                if list[..i].iter().any(|(d, _)| d == dep) {
                    r.error(
                        Diagnostic::new(
                            Some(span.clone()),
                            format!("`{dep}` is listed twice in `depends_on` of {ctx}"),
                        )
                        .expected("each step id once")
                        .help("was another step meant here?"),
                    );
                    continue;
                }
                refs.push(Ref {
                    kind: RefKind::Step,
                    name: dep.clone(),
                    span: span.clone(),
                    from: ctx.to_string(),
                });
            }
            dep_spans.deps.insert(id.to_string(), list.clone());
            strip_spans(list)
        }
        None => previous.iter().cloned().collect(),
    };
    (depends_on, depends_on_explicit)
}

/// `retries`: how often and how far apart a failed step is tried again.
fn retries(r: &mut Reader<'_>, t: Node<'_>, ctx: &str) -> Retries {
    match r.table_opt(t, "retries", ctx) {
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
    }
}

fn parse_rollback(
    r: &mut Reader<'_>,
    t: Node<'_>,
    ctx: &str,
    refs: &mut Vec<Ref>,
) -> (Option<Rollback>, Vec<(String, Span)>) {
    let mut spans = Vec::new();
    let rollback = parse_rollback_inner(r, t, ctx, refs, &mut spans);
    (rollback, spans)
}

fn parse_rollback_inner(
    r: &mut Reader<'_>,
    t: Node<'_>,
    ctx: &str,
    refs: &mut Vec<Ref>,
    spans: &mut Vec<(String, Span)>,
) -> Option<Rollback> {
    let (_, item) = t.get("rollback")?;
    let c = format!("`rollback` of {ctx}");
    if let Some(Value::Array(_)) = item.as_value() {
        let list = r.str_list_opt(t, "rollback", ctx)?;
        if list.is_empty() {
            empty_rollback(r, item_span(item), &c);
            return None;
        }
        spans.extend(list.iter().cloned());
        return Some(Rollback::Steps(step_refs(list, ctx, refs)));
    }
    if let Some(Value::String(s)) = item.as_value() {
        let raw = s
            .span()
            .and_then(|sp| r.src.get(sp))
            .filter(|raw| !raw.contains('\n'))
            .unwrap_or("\"...\"")
            .to_string();
        r.error(
            Diagnostic::new(s.span(), format!("wrong type for `rollback` in {ctx}: found a string"))
                .expected("`{ run = \"...\" }`, `{ sql = \"...\", connection = \"...\" }` or a list of step ids")
                .help(format!("for a shell command write `rollback = {{ run = {raw} }}`")),
        );
        return None;
    }
    let rb = r.table_opt(t, "rollback", ctx)?;
    r.check_keys(rb, &c, &["run", "sql", "connection", "steps"]);
    let has = |k: &str| rb.get(k).is_some();
    if has("connection") && !has("sql") {
        r.error(
            Diagnostic::new(
                rb.get("connection").and_then(|(s, _)| s),
                format!("`connection` in {c} without `sql`"),
            )
            .expected("`connection` only with `sql = \"...\"`")
            .help("a `run` rollback is a shell command: it connects the way the command says"),
        );
    }
    match (has("run"), has("sql"), has("steps")) {
        (true, false, false) => {
            let (run, span) = r.str_opt(rb, "run", &c)?;
            r.not_blank(&run, &span, "run", &c);
            Some(Rollback::Shell { run })
        }
        (false, true, false) => {
            let (sql, span) = r.str_opt(rb, "sql", &c)?;
            r.not_blank(&sql, &span, "sql", &c);
            let connection = conn_ref(r, rb, "connection", &c, refs, &c)?;
            Some(Rollback::Sql { sql, connection })
        }
        (false, false, true) => {
            let list = r.str_list_opt(rb, "steps", &c)?;
            if list.is_empty() {
                empty_rollback(r, rb.get("steps").and_then(|(_, i)| item_span(i)), &c);
                return None;
            }
            spans.extend(list.iter().cloned());
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

fn empty_rollback(r: &mut Reader<'_>, span: Option<Span>, c: &str) {
    r.error(
        Diagnostic::new(span, format!("{c} lists no steps"))
            .expected("the ids of the steps that undo this one, like [\"rb-dns-back\"]")
            .help("remove `rollback` if the step has no undo"),
    );
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
