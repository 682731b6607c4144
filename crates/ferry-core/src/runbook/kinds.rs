//! The keys of each step kind (`shell`, `sql`, `wait`, `copy`, `verify`,
//! `rds`, `dms`; `replicate` and the caught-up proof are in `online.rs`) and the
//! conditions of `wait.until` and `copy.throttle`. The keys
//! common to every step, phases and rollbacks are in `steps.rs`.

use super::diag::{did_you_mean, Diagnostic};
use super::model::*;
use super::parse::{conn_ref, table_globs, Ref, RefKind};
use super::reader::{item_span, type_name, Node, Reader};
use std::time::Duration;
use toml_edit::{Item, Value};

pub fn parse_kind(
    r: &mut Reader<'_>,
    t: Node<'_>,
    kind: &str,
    ctx: &str,
    refs: &mut Vec<Ref>,
) -> Option<StepKind> {
    let c = format!("{ctx} (kind `{kind}`)");
    match kind {
        "confirm" => Some(StepKind::Confirm),
        "shell" => parse_shell(r, t, &c),
        "sql" => parse_sql(r, t, &c, ctx, refs),
        "wait" => parse_wait(r, t, &c, ctx, refs),
        "copy" => parse_copy(r, t, &c, ctx, refs),
        "verify" => parse_verify(r, t, &c, ctx, refs),
        "rds" => parse_rds(r, t, &c),
        "dms" => parse_dms(r, t, &c),
        "replicate" => super::online::parse_replicate(r, t, &c, ctx, refs),
        _ => None,
    }
}

/// `kind = "shell"`: the command, its environment and working directory.
fn parse_shell(r: &mut Reader<'_>, t: Node<'_>, c: &str) -> Option<StepKind> {
    let run = r.text_req(t, "run", c, "\"./scripts/maintenance.sh on\"");
    let env = r.str_map_opt(t, "env", c);
    let cwd = r.string(t, "cwd", c);
    Some(StepKind::Shell(ShellStep {
        run: run?,
        env,
        cwd,
    }))
}

/// `kind = "sql"`: the statement, its connection and what it must return.
fn parse_sql(
    r: &mut Reader<'_>,
    t: Node<'_>,
    c: &str,
    ctx: &str,
    refs: &mut Vec<Ref>,
) -> Option<StepKind> {
    let connection = conn_ref(r, t, "connection", c, refs, ctx);
    let sql = r.text_req(t, "sql", c, "\"select 1\"");
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
    Some(StepKind::Sql(SqlStep {
        connection: connection?,
        sql: sql?,
        expect,
    }))
}

/// `kind = "wait"`: the condition to wait for, how long it must hold, how often to look.
fn parse_wait(
    r: &mut Reader<'_>,
    t: Node<'_>,
    c: &str,
    ctx: &str,
    refs: &mut Vec<Ref>,
) -> Option<StepKind> {
    let every = r
        .duration_opt(t, "every", c)
        .unwrap_or(Duration::from_secs(2));
    if t.get("until").is_none() {
        r.missing(t, "until", c, "{ lag = \"replica\", below = \"10s\" }");
        return None;
    }
    let u = r.table_opt(t, "until", c)?;
    let uc = format!("`until` of {ctx}");
    let cond = parse_condition(r, u, &uc, refs, true)?;
    Some(StepKind::Wait(WaitStep {
        until: cond.0,
        hold: cond.1,
        every,
    }))
}

/// `kind = "copy"`: from, to, which tables, how (chunks, workers, throttle, filters).
fn parse_copy(
    r: &mut Reader<'_>,
    t: Node<'_>,
    c: &str,
    ctx: &str,
    refs: &mut Vec<Ref>,
) -> Option<StepKind> {
    let from = conn_ref(r, t, "from", c, refs, ctx);
    let to = conn_ref(r, t, "to", c, refs, ctx);
    let throttle = match r.table_opt(t, "throttle", c) {
        Some(th) => {
            parse_condition(r, th, &format!("`throttle` of {ctx}"), refs, false).map(|x| x.0)
        }
        None => None,
    };
    let filters = r.str_map_opt(t, "where", c);
    same_connection(
        r,
        t,
        ("from", "to"),
        (&from, &to),
        c,
        "copy a database onto itself",
    );
    let (tables, exclude) = table_globs(r, t, c);
    let where_node = match t.get("where").map(|(_, i)| i) {
        Some(Item::Table(w)) => Some(Node::Table(w)),
        Some(Item::Value(Value::InlineTable(w))) => Some(Node::Inline(w)),
        _ => None,
    };
    for (key, span) in where_node.map(|w| w.keys()).unwrap_or_default() {
        let ok = key
            .split_once('.')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
            && !key.contains('*');
        if !ok {
            r.error(
                Diagnostic::new(span, format!("`where` of {c} names `{key}`, not one table"))
                    .expected("a table as `schema.table`, like \"public.users\" (no `*`)"),
            );
        }
    }
    Some(StepKind::Copy(CopyStep {
        tables,
        exclude,
        chunk_rows: r
            .uint_opt(t, "chunk_rows", c, 1, 100_000_000)
            .unwrap_or(50_000),
        parallel: r.uint_opt(t, "parallel", c, 1, 64).unwrap_or(2) as u32,
        truncate: r.bool_opt(t, "truncate", c).unwrap_or(false),
        zero_dates: zero_dates(r, t, c),
        throttle,
        filters,
        from: from?,
        to: to?,
    }))
}

/// `zero_dates` of a copy or a verify (MySQL sources): `"fail"` or `"null"`.
fn zero_dates(r: &mut Reader<'_>, t: Node<'_>, c: &str) -> ZeroDates {
    match r.str_opt(t, "zero_dates", c) {
        None => ZeroDates::Fail,
        Some((v, _)) if v == "fail" => ZeroDates::Fail,
        Some((v, _)) if v == "null" => ZeroDates::Null,
        Some((v, span)) => {
            r.error(
                Diagnostic::new(Some(span), format!("`zero_dates` of {c} is {v:?}"))
                    .expected("\"fail\" (the default) or \"null\""),
            );
            ZeroDates::Fail
        }
    }
}

/// `kind = "verify"`: source, target, which tables and which checks.
fn parse_verify(
    r: &mut Reader<'_>,
    t: Node<'_>,
    c: &str,
    ctx: &str,
    refs: &mut Vec<Ref>,
) -> Option<StepKind> {
    let source = conn_ref(r, t, "source", c, refs, ctx);
    let target = conn_ref(r, t, "target", c, refs, ctx);
    same_connection(
        r,
        t,
        ("source", "target"),
        (&source, &target),
        c,
        "compare a database with itself",
    );
    let checks = match r.str_list_opt(t, "checks", c) {
        None => vec![
            Check::Schema,
            Check::Counts,
            Check::Checksums,
            Check::Sample,
        ],
        Some(list) if list.is_empty() => {
            r.error(
                Diagnostic::new(
                    t.get("checks").and_then(|(_, i)| item_span(i)),
                    format!("`checks` of {c} is empty: the step would verify nothing"),
                )
                .expected("one or more of: schema, counts, checksums, sample")
                .help("remove `checks` to run all four"),
            );
            Vec::new()
        }
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
                            Diagnostic::new(Some(span), format!("unknown check `{s}` in {c}"))
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
    let (tables, exclude) = table_globs(r, t, c);
    Some(StepKind::Verify(VerifyStep {
        tables,
        exclude,
        sample: r.uint_opt(t, "sample", c, 0, 10_000_000).unwrap_or(1000),
        max_diffs: r.uint_opt(t, "max_diffs", c, 1, 1_000_000).unwrap_or(100),
        time_limit: r.duration_opt(t, "time_limit", c),
        zero_dates: zero_dates(r, t, c),
        checks,
        source: source?,
        target: target?,
    }))
}

/// `from`/`to` (or `source`/`target`) naming one connection is a typo that
/// would copy a database onto itself (with `truncate`, empty it first).
fn same_connection(
    r: &mut Reader<'_>,
    t: Node<'_>,
    keys: (&str, &str),
    names: (&Option<String>, &Option<String>),
    c: &str,
    would: &str,
) {
    if let (Some(a), Some(b)) = names {
        if a == b {
            r.error(
                Diagnostic::new(
                    t.get(keys.1).and_then(|(_, i)| item_span(i)),
                    format!("`{}` and `{}` of {c} are both `{a}`", keys.0, keys.1),
                )
                .expected(format!("two different connections: the step would {would}")),
            );
        }
    }
}

/// RDS identifiers: 1 to 63 (instances) or 255 (snapshots) letters, digits
/// and hyphens, starting with a letter, no `--`, no trailing hyphen. Checked
/// now so the night does not end on an InvalidParameterValue. Values that
/// come from the environment are checked by AWS.
fn check_rds_id(r: &mut Reader<'_>, t: Node<'_>, key: &str, value: &str, max: usize, c: &str) {
    if value.contains("${") {
        return;
    }
    let ok = value.len() <= max
        && value
            .chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_alphabetic())
        && value
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        && !value.contains("--")
        && !value.ends_with('-');
    if !ok {
        r.error(
            Diagnostic::new(
                t.get(key).and_then(|(_, i)| item_span(i)),
                format!("`{value}` is not a valid RDS identifier for `{key}` in {c}"),
            )
            .expected(format!(
                "1 to {max} letters, digits and hyphens, starting with a letter, without `--` or a trailing `-`"
            )),
        );
    }
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
                t.get(key).and_then(|(_, i)| item_span(i)),
                format!("unknown RDS status `{status}` for `{key}` in {c}"),
            )
            .expected("a status RDS reports, e.g. \"available\"")
            .help(format!("did you mean `{known}`?")),
        );
    }
}

fn parse_rds(r: &mut Reader<'_>, t: Node<'_>, c: &str) -> Option<StepKind> {
    // read every key before giving up on any, so one run reports them all
    let action = r.str_req(t, "action", c, "\"promote_read_replica\"");
    let instance = r
        .str_req(t, "instance", c, "\"${vars.target_instance}\"")
        .map(|x| x.0);
    let wait = r.string(t, "wait", c);
    if let Some(i) = &instance {
        check_rds_id(r, t, "instance", i, 63, c);
    }
    let req = |r: &mut Reader<'_>, key: &str, example: &str, max: usize| {
        let v = r.str_req(t, key, c, example).map(|x| x.0);
        if let Some(v) = &v {
            check_rds_id(r, t, key, v, max, c);
        }
        v
    };
    let (action, aspan) = action?;
    let action = match action.as_str() {
        "create_read_replica" => {
            let source_instance = req(r, "source_instance", "\"legacy-primary\"", 63);
            RdsAction::CreateReadReplica {
                instance_class: r.string(t, "instance_class", c),
                source_instance: source_instance?,
                instance: instance?,
            }
        }
        "promote_read_replica" => RdsAction::PromoteReadReplica {
            instance: instance?,
        },
        "create_snapshot" => {
            let snapshot = req(r, "snapshot", "\"pre-cutover-2026-11-22\"", 255);
            RdsAction::CreateSnapshot {
                snapshot: snapshot?,
                instance: instance?,
            }
        }
        "reboot" => RdsAction::Reboot {
            instance: instance?,
        },
        "wait_status" => RdsAction::WaitStatus {
            status: r.str_req(t, "status", c, "\"available\"").map(|x| x.0)?,
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
    check_status(r, t, "wait", wait.as_deref(), c);
    if let RdsAction::WaitStatus { status, .. } = &action {
        check_status(r, t, "status", Some(status), c);
    }
    Some(StepKind::Rds(RdsStep { wait, action }))
}

const DMS_ACTIONS: &[&str] = &["create", "start", "resume", "reload", "stop", "wait"];

/// A DMS task identifier: what `create` names (AWS assigns the ARN). The rules
/// are RDS's: letters, digits and hyphens, starting with a letter, up to 255.
fn check_dms_task_id(r: &mut Reader<'_>, t: Node<'_>, value: &str, c: &str) {
    if value.starts_with("arn:") {
        r.error(
            Diagnostic::new(
                t.get("task").and_then(|(_, i)| item_span(i)),
                format!("`task` of {c} is an ARN, but `create` makes a new task"),
            )
            .expected("the new task's identifier, like \"orders-sync\" (AWS assigns the ARN)")
            .help("later steps may name the task by this identifier or by its ARN"),
        );
        return;
    }
    check_rds_id(r, t, "task", value, 255, c);
}

/// An ARN key of a `create`: the replication instance and the endpoints exist
/// before the window, so they are named by ARN.
fn dms_arn(r: &mut Reader<'_>, t: Node<'_>, key: &str, kind: &str, c: &str) -> Option<String> {
    let (v, span) = r.str_req(
        t,
        key,
        c,
        &format!("\"arn:aws:dms:eu-west-1:123456789012:{kind}:EXAMPLE\""),
    )?;
    let ok = v.contains("${")
        || (v.starts_with("arn:") && v.contains(":dms:") && v.contains(&format!(":{kind}:")));
    if !ok {
        r.error(
            Diagnostic::new(
                Some(span),
                format!("`{key}` of {c} is not a DMS {kind} ARN: `{v}`"),
            )
            .expected(format!(
                "an ARN like \"arn:aws:dms:REGION:ACCOUNT:{kind}:ID\""
            )),
        );
        return None;
    }
    Some(v)
}

/// `kind = "dms"`: an action on an AWS DMS replication task, and what to wait for.
fn parse_dms(r: &mut Reader<'_>, t: Node<'_>, c: &str) -> Option<StepKind> {
    // read every key before giving up on any, so one run reports them all
    let action = r.str_req(t, "action", c, "\"start\"");
    let task = r.str_req(t, "task", c, "\"${vars.dms_task_arn}\"");
    if let Some((v, span)) = &task {
        r.not_blank_value(v, span, "task", c, "the task's ARN or identifier");
    }
    let wait = match r.str_opt(t, "wait", c) {
        Some((w, span)) => match w.as_str() {
            "running" => Some(DmsWait::Running),
            "full_load_done" => Some(DmsWait::FullLoadDone),
            "stopped" => Some(DmsWait::Stopped),
            other => {
                r.error(
                    Diagnostic::new(Some(span), format!("unknown DMS wait `{other}` in {c}"))
                        .expected(format!("one of: {}", DmsWait::NAMES.join(", ")))
                        .help_opt(did_you_mean(other, DmsWait::NAMES.iter().copied())),
                );
                None
            }
        },
        None => None,
    };
    let stop_at = r.string(t, "cdc_stop_position", c);
    let (action, aspan) = action?;
    let (task, _) = task?;
    let action = match action.as_str() {
        "create" => {
            check_dms_task_id(r, t, &task, c);
            let instance = dms_arn(r, t, "instance", "rep", c);
            let source = dms_arn(r, t, "source_endpoint", "endpoint", c);
            let target = dms_arn(r, t, "target_endpoint", "endpoint", c);
            if t.get("tables").is_none() {
                r.missing(t, "tables", c, "[\"public.*\"]");
            }
            let (tables, exclude) = table_globs(r, t, c);
            for g in tables.iter().chain(&exclude) {
                if g.contains('%') || g.contains('?') || g.contains('[') {
                    r.error(
                        Diagnostic::new(
                            t.get("tables").and_then(|(_, i)| item_span(i)),
                            format!("table glob `{g}` in {c} uses a wildcard DMS does not read the same way"),
                        )
                        .expected("`*` for any run of characters (ferry sends it to DMS as `%`)"),
                    );
                }
            }
            let migration = match r.str_req(t, "migration", c, "\"full-load-and-cdc\"") {
                Some((m, span)) => match m.as_str() {
                    "full-load" => Some(DmsMigration::FullLoad),
                    "full-load-and-cdc" => Some(DmsMigration::FullLoadAndCdc),
                    other => {
                        let names = ["full-load", "full-load-and-cdc"];
                        r.error(
                            Diagnostic::new(Some(span), format!("unknown DMS migration `{other}` in {c}"))
                                .expected("\"full-load\" or \"full-load-and-cdc\" (ferry does not create CDC-only tasks)")
                                .help_opt(did_you_mean(other, names.iter().copied())),
                        );
                        None
                    }
                },
                None => None,
            };
            if wait.is_some() {
                r.error(
                    Diagnostic::new(
                        t.get("wait").and_then(|(_, i)| item_span(i)),
                        format!("`wait` does not apply to dms action `create` in {c}"),
                    )
                    .expected("no `wait`: `create` always waits until the task is `ready`")
                    .help("start the task in a later step with `action = \"start\"`"),
                );
            }
            DmsAction::Create(DmsTaskSpec {
                instance: instance?,
                source_endpoint: source?,
                target_endpoint: target?,
                tables,
                exclude,
                migration: migration?,
            })
        }
        "start" => DmsAction::Start {
            cdc_stop_position: stop_at,
        },
        "resume" => DmsAction::Resume {
            cdc_stop_position: stop_at,
        },
        "reload" => DmsAction::Reload {
            cdc_stop_position: stop_at,
        },
        "stop" => DmsAction::Stop {
            cdc_stop_position: stop_at,
        },
        "wait" => {
            if wait.is_none() && t.get("wait").is_none() {
                r.missing(t, "wait", c, "\"full_load_done\"");
            }
            DmsAction::Wait
        }
        other => {
            r.error(
                Diagnostic::new(Some(aspan), format!("unknown dms action `{other}` in {c}"))
                    .expected(format!("one of: {}", DMS_ACTIONS.join(", ")))
                    .help_opt(did_you_mean(other, DMS_ACTIONS.iter().copied())),
            );
            return None;
        }
    };
    // keys that belong to another action are mistakes worth naming
    let used: &[&str] = match &action {
        DmsAction::Create(_) => &[
            "instance",
            "source_endpoint",
            "target_endpoint",
            "tables",
            "exclude",
            "migration",
        ],
        DmsAction::Start { .. }
        | DmsAction::Resume { .. }
        | DmsAction::Reload { .. }
        | DmsAction::Stop { .. } => &["cdc_stop_position"],
        DmsAction::Wait => &[],
    };
    for key in [
        "instance",
        "source_endpoint",
        "target_endpoint",
        "tables",
        "exclude",
        "migration",
        "cdc_stop_position",
    ] {
        if !used.contains(&key) {
            if let Some((span, _)) = t.get(key) {
                r.error(
                    Diagnostic::new(
                        span,
                        format!(
                            "`{key}` does not apply to dms action `{}` in {c}",
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
    if let Some((span, pos)) = t.get("cdc_stop_position").zip(action.cdc_stop_position()) {
        let ok = pos.contains("${")
            || pos.starts_with("server_time:")
            || pos.starts_with("commit_time:");
        if !ok {
            r.error(
                Diagnostic::new(
                    span.0,
                    format!("`cdc_stop_position` of {c} is not a DMS stop position: `{pos}`"),
                )
                .expected(
                    "\"server_time:2026-11-22T02:00:00\" or \"commit_time:2026-11-22T02:00:00\"",
                ),
            );
        }
    }
    Some(StepKind::Dms(DmsStep { task, action, wait }))
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
    if allow_sql && u.get("caught_up").is_some() {
        return super::online::parse_caught_up(r, u, c, refs).map(|cond| (cond, None));
    }
    if allow_sql && u.get("dms").is_some() {
        return super::dms::parse_gate(r, u, c, refs);
    }
    check_condition_keys(r, u, c, allow_sql);
    let hold = if allow_sql {
        r.duration_opt(u, "for", c)
    } else {
        None
    };
    let which = ["lag", "metric", "sql"]
        .into_iter()
        .filter(|k| u.get(k).is_some() && (allow_sql || *k != "sql"))
        .collect::<Vec<_>>();
    match which.as_slice() {
        ["lag"] => {
            let name = monitor_ref(r, u, "lag", RefKind::LagMonitor, c, refs)?;
            let (cmp, key) = condition_compare(r, u, c, allow_sql)?;
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
            let name = monitor_ref(r, u, "metric", RefKind::MetricMonitor, c, refs)?;
            let (cmp, key) = condition_compare(r, u, c, allow_sql)?;
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
            let (query, qspan) = r.str_opt(u, "sql", c)?;
            r.not_blank(&query, &qspan, "sql", c);
            let connection = conn_ref(r, u, "connection", c, refs, c)?;
            Some((Condition::Sql { connection, query }, hold))
        }
        [] if !allow_sql && u.get("sql").is_some() => None, // said above: a throttle has no `sql`
        [] if !allow_sql && u.get("dms").is_some() => None, // said above: a DMS gate is no throttle
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

/// Keys a condition does not take; a throttle's own mistakes (`below`, `for`,
/// `sql`) get a help line saying why.
fn check_condition_keys(r: &mut Reader<'_>, u: Node<'_>, c: &str, allow_sql: bool) {
    // a throttle pauses *while* its condition holds: only `above` makes sense,
    // and it has no `for` (the engine would ignore it)
    let keys: &[&str] = if allow_sql {
        &[
            "lag",
            "metric",
            "below",
            "above",
            "for",
            "sql",
            "connection",
            "caught_up",
            "dms",
        ]
    } else {
        &["lag", "metric", "above"]
    };
    for (key, span) in u.keys() {
        if keys.contains(&key.as_str()) {
            continue;
        }
        let mut d = Diagnostic::new(span, format!("unknown key `{key}` in {c}"))
            .expected(format!("one of: {}", keys.join(", ")));
        d = match key.as_str() {
            "below" if !allow_sql => d.help(
                "a throttle pauses the copy while the value is *above* the limit: write `above = ...`",
            ),
            "for" if !allow_sql => d.help("a throttle pauses at once and resumes as soon as the value is back under the limit; `for` is for `wait` steps"),
            "caught_up" if !allow_sql => d.help(
                "a caught-up proof is a `wait` step's `until`, not a throttle",
            ),
            "dms" if !allow_sql => d.help(
                "a DMS gate is a `wait` step's `until`, not a throttle",
            ),
            "sql" | "connection" if !allow_sql => d.help(
                "a throttle reads a monitor: sample the query with a [[monitor.metric]] `sql = { ... }` and throttle on that metric",
            ),
            _ => d.help_opt(did_you_mean(&key, keys.iter().copied())),
        };
        r.error(d);
    }
}

/// `below` or `above`, exactly one (a throttle: `above` only), and the key it used.
fn condition_compare(
    r: &mut Reader<'_>,
    u: Node<'_>,
    c: &str,
    allow_sql: bool,
) -> Option<(Compare, &'static str)> {
    match (
        u.get("below").is_some() && allow_sql,
        u.get("above").is_some(),
    ) {
        (true, false) => Some((Compare::Below, "below")),
        (false, true) => Some((Compare::Above, "above")),
        (false, false) if !allow_sql => {
            if u.get("below").is_none() {
                r.error(
                    Diagnostic::new(u.span(), format!("{c} needs `above`"))
                        .expected("`above = ...`: the copy pauses while the value is above it"),
                );
            }
            None
        }
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
}

/// The monitor a condition reads (`lag = NAME`, `metric = NAME`), recorded as a
/// reference to check once every monitor is known.
fn monitor_ref(
    r: &mut Reader<'_>,
    u: Node<'_>,
    key: &str,
    kind: RefKind,
    c: &str,
    refs: &mut Vec<Ref>,
) -> Option<String> {
    let (name, span) = r.str_opt(u, key, c)?;
    refs.push(Ref {
        kind,
        name: name.clone(),
        span,
        from: c.to_string(),
    });
    Some(name)
}
