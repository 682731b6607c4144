//! From the TOML tree to the typed [`Runbook`]: top-level tables and connections.
//! Monitors live in `monitors.rs`, steps in `steps.rs` and `kinds.rs`. References between parts are only
//! recorded here (see [`Refs`]) and checked by `validate.rs` once every
//! definition is known.

use super::diag::{did_you_mean, near_match, Diagnostic};
use super::model::*;
use super::monitors::parse_monitors;
use super::reader::{item_span, type_name, Node, Reader};
use super::steps::check_slug;
use std::collections::BTreeMap;
use toml_edit::{Item, Value};

/// What a reference points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Connection,
    LagMonitor,
    MetricMonitor,
    DmsMonitor,
    Step,
}

/// A name used somewhere, to be resolved after parsing.
#[derive(Debug, Clone)]
pub struct Ref {
    pub kind: RefKind,
    pub name: String,
    pub span: Span,
    /// Who refers: "step `copy`", "monitor `replica`".
    pub from: String,
}

/// The parse result plus what validation needs.
pub struct Parsed {
    pub runbook: Runbook,
    pub refs: Vec<Ref>,
    /// (step id, span of its `id` value) in file order.
    pub step_ids: Vec<(String, Span)>,
    /// Spans of each step's `depends_on` entries and rollback step ids, by step id.
    pub dep_spans: super::steps::StepSpans,
    /// Span of the first `[[phase]]` header, or the whole file.
    pub phases_span: Option<Span>,
    pub file_span: Span,
}

const TOP_KEYS: &[&str] = &[
    "runbook",
    "vars",
    "aws",
    "operators",
    "connections",
    "monitor",
    "phase",
];
const RUNBOOK_KEYS: &[&str] = &["name", "title", "format", "window", "notes", "rehearsals"];
const SUPPORTED_FORMAT: i64 = 1;

pub fn parse(
    r: &mut Reader<'_>,
    doc: &toml_edit::Table,
    path: &std::path::Path,
    sha: String,
    overrides: &BTreeMap<String, String>,
) -> Parsed {
    let root = Node::Table(doc);
    r.check_keys(root, "the runbook file (top level)", TOP_KEYS);
    explain_misplaced_keys(r, root);
    let mut refs = Vec::new();

    // [vars] first, so every later string can be expanded.
    let mut vars = parse_vars(r, root);
    for (k, v) in overrides {
        // unknown names are the caller's to refuse, with the vars file's position
        if let Some(slot) = vars.get_mut(k) {
            slot.clone_from(v);
        }
    }
    r.vars = vars.clone();

    let file_span = 0..r.src.len().min(1);
    let (name, title, notes, window, rehearsals) = parse_runbook_table(r, root, &file_span);
    let aws = parse_aws(r, root);
    let operators = parse_operators(r, root);
    let connections = parse_connections(r, root);
    let monitors = parse_monitors(r, root, &mut refs);
    let mut step_ids = Vec::new();
    let mut dep_spans = super::steps::StepSpans::default();
    let (phases, phases_span) =
        super::steps::parse_phases(r, root, &mut refs, &mut step_ids, &mut dep_spans);

    Parsed {
        runbook: Runbook {
            path: path.to_path_buf(),
            name,
            title,
            format: SUPPORTED_FORMAT as u32,
            notes,
            window,
            rehearsals,
            vars,
            aws,
            operators,
            connections,
            monitors,
            phases,
            source_sha256: sha,
        },
        refs,
        step_ids,
        dep_spans,
        phases_span,
        file_span,
    }
}

/// A top-level key that is misplaced rather than misspelt: the unknown-key
/// error says where it belongs.
fn explain_misplaced_keys(r: &mut Reader<'_>, root: Node<'_>) {
    // misplaced rather than misspelt: say where the key belongs
    for (key, span) in root.keys() {
        let home = match key.as_str() {
            "step" | "steps" => {
                "steps are `[[phase.step]]` tables, written after their `[[phase]]`".to_string()
            }
            k if RUNBOOK_KEYS.contains(&k) => format!("`{k}` belongs under [runbook]"),
            k if ["region", "profile", "endpoint_url"].contains(&k) => {
                format!("`{k}` belongs under [aws]")
            }
            k if !TOP_KEYS.contains(&k) && near_match(k, TOP_KEYS.iter().copied()).is_none() => {
                match near_match(k, RUNBOOK_KEYS.iter().copied()) {
                    Some(m) => format!("did you mean `{m}`? it belongs under [runbook]"),
                    None => continue,
                }
            }
            _ => continue,
        };
        if let Some(d) = r.errors.iter_mut().rev().find(|d| d.span == span) {
            d.help = Some(home);
        }
    }
}

/// `[vars]`: plain strings (with `${env:NAME}`, checked now), integers or booleans.
fn parse_vars(r: &mut Reader<'_>, root: Node<'_>) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    if let Some(t) = r.table_opt(root, "vars", "the top level") {
        for (k, span) in t.keys() {
            if !is_slug_var(&k) {
                r.error(
                    Diagnostic::new(span, format!("`{k}` is not a valid variable name"))
                        .expected("letters, digits and `_`"),
                );
            }
            match t.get(&k).map(|(_, i)| i) {
                Some(Item::Value(Value::String(s))) => {
                    if s.value().contains("${vars.") {
                        r.error(
                            Diagnostic::new(
                                s.span(),
                                format!("variable `{k}` refers to another variable"),
                            )
                            .expected("a plain string or `${env:NAME}`"),
                        );
                    } else if let Some(span) = s.span() {
                        // check its `${env:NAME}` and near misses now (no vars are known yet)
                        r.expand(s.value(), &span);
                    }
                    vars.insert(k, s.value().to_string());
                }
                Some(Item::Value(Value::Integer(i))) => {
                    vars.insert(k, i.value().to_string());
                }
                Some(Item::Value(Value::Boolean(b))) => {
                    vars.insert(k, b.value().to_string());
                }
                Some(item) => {
                    r.error(
                        Diagnostic::new(
                            item_span(item),
                            format!("wrong type for variable `{k}`: found {}", type_name(item)),
                        )
                        .expected("a string"),
                    );
                }
                None => {}
            }
        }
    }
    vars
}

/// name, title, notes, window, rehearsals.
type RunbookTable = (
    String,
    String,
    Option<String>,
    Option<Window>,
    Option<String>,
);

/// `[runbook]`: name, title, format, notes, window and rehearsals.
fn parse_runbook_table(r: &mut Reader<'_>, root: Node<'_>, file_span: &Span) -> RunbookTable {
    match r.table_opt(root, "runbook", "the top level") {
        None => {
            if root.get("runbook").is_none() {
                r.error(
                    Diagnostic::new(Some(file_span.clone()), "missing the [runbook] table")
                        .expected("a `[runbook]` table with `name`, `title` and `format = 1`"),
                );
            }
            (String::new(), String::new(), None, None, None)
        }
        Some(t) => {
            r.check_keys(t, "[runbook]", RUNBOOK_KEYS);
            let name = match r.str_req(t, "name", "[runbook]", "\"my-cutover\"") {
                Some((n, span)) => {
                    check_slug(r, &n, &span, "runbook name");
                    n
                }
                None => String::new(),
            };
            let title = r
                .string(t, "title", "[runbook]")
                .unwrap_or_else(|| name.clone());
            check_format(r, t);
            let notes = r.string(t, "notes", "[runbook]");
            let window = parse_window(r, t);
            // a glob of journals; relative to the runbook's folder
            let rehearsals = r.string(t, "rehearsals", "[runbook]");
            (name, title, notes, window, rehearsals)
        }
    }
}

/// `format` must be the one this ferry reads.
fn check_format(r: &mut Reader<'_>, t: Node<'_>) {
    match t.get("format") {
        None => r.missing(t, "format", "[runbook]", "1"),
        Some((_, item)) => match item.as_value() {
            Some(Value::Integer(i)) if *i.value() == SUPPORTED_FORMAT => {}
            Some(Value::Integer(i)) => r.error(
                Diagnostic::new(
                    i.span(),
                    format!("unsupported runbook format version {}", i.value()),
                )
                .expected(format!(
                    "`format = {SUPPORTED_FORMAT}` (this ferry reads format {SUPPORTED_FORMAT})"
                )),
            ),
            _ => r.error(
                Diagnostic::new(
                    item_span(item),
                    format!(
                        "wrong type for `format` in [runbook]: found {}",
                        type_name(item)
                    ),
                )
                .expected(format!("the integer {SUPPORTED_FORMAT}")),
            ),
        },
    }
}

/// `[aws]`: region, profile and endpoint for the AWS steps.
fn parse_aws(r: &mut Reader<'_>, root: Node<'_>) -> Option<AwsSettings> {
    r.table_opt(root, "aws", "the top level").map(|t| {
        r.check_keys(t, "[aws]", &["region", "profile", "endpoint_url"]);
        AwsSettings {
            region: r.string(t, "region", "[aws]"),
            profile: r.string(t, "profile", "[aws]"),
            endpoint_url: r.string(t, "endpoint_url", "[aws]"),
        }
    })
}

/// `[operators]`: `group` (an OS group name) and `operate` (OS login names).
/// Whether the group exists is asked when the run serves its socket, on the
/// host it runs on, not here.
fn parse_operators(r: &mut Reader<'_>, root: Node<'_>) -> Option<Operators> {
    let t = r.table_opt(root, "operators", "the top level")?;
    r.check_keys(t, "[operators]", &["group", "operate"]);
    let group = r.str_opt(t, "group", "[operators]").map(|(g, span)| {
        if !is_os_name(&g) {
            r.error(
                Diagnostic::new(Some(span), format!("`{g}` is not an OS group name"))
                    .expected("a group name like \"dba\" (letters, digits, `_`, `-`, `.`)"),
            );
        }
        g
    });
    let operate = r.str_list_opt(t, "operate", "[operators]").map(|users| {
        for (u, span) in &users {
            if !is_os_name(u) {
                r.error(
                    Diagnostic::new(Some(span.clone()), format!("`{u}` is not an OS user name"))
                        .expected("a login name like \"alice\""),
                );
            }
        }
        strip_spans(users)
    });
    Some(Operators { group, operate })
}

/// A user or group name as the system's tools accept it.
fn is_os_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'))
}

fn is_slug_var(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn parse_window(r: &mut Reader<'_>, t: Node<'_>) -> Option<Window> {
    let w = r.table_opt(t, "window", "[runbook]")?;
    r.check_keys(w, "the maintenance `window`", &["start", "duration"]);
    let start = match w.get("start") {
        None => {
            r.missing(
                w,
                "start",
                "the maintenance `window`",
                "\"2026-11-22T02:00:00Z\"",
            );
            None
        }
        Some((_, item)) => match item.as_value() {
            Some(Value::String(s)) => match chrono::DateTime::parse_from_rfc3339(s.value()) {
                Ok(t) => Some(t.with_timezone(&chrono::Utc)),
                Err(_) => {
                    r.error(
                        Diagnostic::new(s.span(), format!("bad window start `{}`", s.value()))
                            .expected(
                                "an RFC 3339 time with a zone, like \"2026-11-22T02:00:00Z\"",
                            ),
                    );
                    None
                }
            },
            Some(Value::Datetime(d)) => {
                match chrono::DateTime::parse_from_rfc3339(&d.value().to_string()) {
                    Ok(t) => Some(t.with_timezone(&chrono::Utc)),
                    Err(_) => {
                        r.error(
                            Diagnostic::new(d.span(), "window start has no time zone")
                                .expected("a time with a zone, like 2026-11-22T02:00:00Z"),
                        );
                        None
                    }
                }
            }
            _ => {
                r.error(
                    Diagnostic::new(
                        item_span(item),
                        format!(
                            "wrong type for `start` in the maintenance `window`: found {}",
                            type_name(item)
                        ),
                    )
                    .expected("an RFC 3339 time, like \"2026-11-22T02:00:00Z\""),
                );
                None
            }
        },
    };
    let duration = match w.get("duration") {
        None => {
            r.missing(w, "duration", "the maintenance `window`", "\"2h\"");
            None
        }
        Some(_) => r.duration_opt(w, "duration", "the maintenance `window`"),
    };
    Some(Window {
        start: start?,
        duration: duration?,
    })
}

const SCHEMES: &[&str] = &["postgres", "postgresql", "sqlite", "mysql", "mariadb"];

/// What `check_url` says it expected of a URL.
const EXPECTED_SCHEMES: &str = "postgres://, postgresql://, mysql://, mariadb:// or sqlite://";

fn parse_connections(r: &mut Reader<'_>, root: Node<'_>) -> BTreeMap<String, Connection> {
    let mut out = BTreeMap::new();
    let Some(conns) = r.table_opt(root, "connections", "the top level") else {
        return out;
    };
    for (name, span) in conns.keys() {
        let ctx = format!("connection `{name}`");
        if let Some(span) = span {
            check_slug(r, &name, &span, "connection name");
        }
        let Some(t) = r.table_opt(conns, &name, "[connections]") else {
            continue;
        };
        r.check_keys(t, &ctx, &["url", "iam_auth", "title", "tls", "ca"]);
        let url = r.str_req(t, "url", &ctx, "\"${env:SOURCE_DATABASE_URL}\"");
        if let Some((u, uspan)) = &url {
            check_url(r, &name, u, uspan);
        }
        if let (Some((u, _)), Some((kspan, _))) = (&url, t.get("iam_auth")) {
            let engine = if u.starts_with("sqlite:") {
                Some("SQLite")
            } else if u.starts_with("mysql:") || u.starts_with("mariadb:") {
                Some("MySQL")
            } else {
                None
            };
            if let Some(engine) = engine {
                r.error(
                    Diagnostic::new(
                        kspan,
                        format!("`iam_auth` on connection `{name}`, which is {engine}"),
                    )
                    .expected("`iam_auth` only on a postgres:// connection to RDS"),
                );
            }
        }
        let iam = r.table_opt(t, "iam_auth", &ctx).map(|a| {
            let actx = format!("`iam_auth` of {ctx}");
            r.check_keys(a, &actx, &["instance", "user", "enabled"]);
            let auth = IamAuth {
                instance: r
                    .str_req(a, "instance", &actx, "\"prod-v2\"")
                    .map(|x| x.0)
                    .unwrap_or_default(),
                user: r.string(a, "user", &actx),
            };
            (auth, iam_enabled(r, a, &actx))
        });
        let (iam_auth, iam_auth_off) = match iam {
            Some((a, true)) => (Some(a), None),
            Some((a, false)) => (None, Some(a)),
            None => (None, None),
        };
        let (tls, ca) = super::tls::parse_keys(r, t, &name, url.as_ref().map(|x| x.0.as_str()));
        out.insert(
            name.clone(),
            Connection {
                name,
                title: r.string(t, "title", &ctx),
                url: url.map(|x| x.0).unwrap_or_default(),
                iam_auth,
                iam_auth_off,
                tls,
                ca,
            },
        );
    }
    out
}

/// `iam_auth.enabled`: `true` (the default) or `false`, written as a boolean or as a
/// string so that a var can switch it (`enabled = "${vars.rds_iam_auth}"`): a rehearsal
/// on servers that cannot check an IAM token connects with a password instead.
fn iam_enabled(r: &mut Reader<'_>, a: Node<'_>, actx: &str) -> bool {
    let Some((_, item)) = a.get("enabled") else {
        return true;
    };
    if item.as_value().is_some_and(|v| v.as_str().is_some()) {
        let (text, span) = r.str_opt(a, "enabled", actx).unwrap_or_default();
        return match text.trim() {
            "true" => true,
            "false" => false,
            other => {
                r.error(
                    Diagnostic::new(
                        Some(span),
                        format!("bad value `{other}` for `enabled` in {actx}"),
                    )
                    .expected("`true` or `false` (or a var holding one of them)"),
                );
                true
            }
        };
    }
    r.bool_opt(a, "enabled", actx).unwrap_or(true)
}

fn check_url(r: &mut Reader<'_>, name: &str, url: &str, span: &Span) {
    if url.starts_with("${env:") {
        return; // known only at run time
    }
    // `sqlite:path` works without `//`; anything else needs `scheme://`
    let split = url
        .split_once("://")
        .or_else(|| url.split_once(':').filter(|(s, _)| SCHEMES.contains(s)));
    let Some((scheme, rest)) = split else {
        r.error(
            Diagnostic::new(
                Some(span.clone()),
                format!("the URL of connection `{name}` has no scheme"),
            )
            .expected(EXPECTED_SCHEMES),
        );
        return;
    };
    if !SCHEMES.contains(&scheme) {
        let help = did_you_mean(scheme, SCHEMES.iter().copied());
        r.error(
            Diagnostic::new(
                Some(span.clone()),
                format!("unsupported URL scheme `{scheme}` for connection `{name}`"),
            )
            .expected(EXPECTED_SCHEMES)
            .help_opt(help),
        );
        return;
    }
    let mysql = scheme == "mysql" || scheme == "mariadb";
    let help = if mysql {
        "take the password from the environment (`url = \"mysql://app:${env:MYSQL_PASSWORD}@host/db\"`), or the whole URL (`url = \"${env:SOURCE_DATABASE_URL}\"`)"
    } else {
        "take the whole URL from the environment (`url = \"${env:SOURCE_DATABASE_URL}\"`), or use ~/.pgpass or `iam_auth`"
    };
    if scheme.starts_with("postgres") || mysql {
        // ?password=... works in libpq and sqlx URLs too
        let query = rest.split_once('?').map(|(_, q)| q).unwrap_or("");
        let in_query = query.split('&').any(|kv| {
            kv.split_once('=').is_some_and(|(k, v)| {
                k.eq_ignore_ascii_case("password") && !v.is_empty() && !v.starts_with("${env:")
            })
        });
        if in_query {
            r.error(
                Diagnostic::new(
                    Some(span.clone()),
                    format!("the URL of connection `{name}` has a password written in the runbook"),
                )
                .expected("a URL without `password=`")
                .help(help),
            );
            return;
        }
        // user:password@host — a password written in the runbook is a leak waiting to happen.
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, pw)) = userinfo.split_once(':') {
                if !pw.is_empty() && !pw.starts_with("${env:") {
                    r.error(
                        Diagnostic::new(Some(span.clone()), format!("the URL of connection `{name}` has a password written in the runbook"))
                            .expected("a URL without a password")
                            .help(help),
                    );
                }
            }
        }
    }
}

pub fn table_globs(r: &mut Reader<'_>, t: Node<'_>, ctx: &str) -> (Vec<String>, Vec<String>) {
    let check = |r: &mut Reader<'_>, key: &str| -> Option<Vec<String>> {
        let list = r.str_list_opt(t, key, ctx)?;
        if key == "tables" && list.is_empty() {
            r.error(
                Diagnostic::new(
                    t.get(key).and_then(|(_, i)| item_span(i)),
                    format!("`tables` of {ctx} is empty: it selects no table"),
                )
                .expected("globs like [\"public.*\"]")
                .help("remove `tables` to select every table"),
            );
        }
        for (g, span) in &list {
            let empty_side = g
                .split_once('.')
                .is_some_and(|(schema, table)| schema.is_empty() || table.is_empty());
            if g.trim().is_empty() || empty_side {
                r.error(
                    Diagnostic::new(
                        Some(span.clone()),
                        format!("table glob `{g}` in `{key}` of {ctx} matches no table"),
                    )
                    .expected(
                        "`schema.table` with `*` for any run of characters, like \"public.*\"",
                    ),
                );
            }
        }
        Some(strip_spans(list))
    };
    let tables = check(r, "tables").unwrap_or_else(|| vec!["*.*".into()]);
    let exclude = check(r, "exclude").unwrap_or_default();
    (tables, exclude)
}

pub fn strip_spans(v: Vec<(String, Span)>) -> Vec<String> {
    v.into_iter().map(|(s, _)| s).collect()
}

/// `[[x]]` tables (also accepts `x = [{...}, {...}]`).
pub fn array_of_tables<'a>(
    r: &mut Reader<'_>,
    node: Node<'a>,
    key: &str,
    what: &str,
) -> Vec<Node<'a>> {
    let Some((_, item)) = node.get(key) else {
        return Vec::new();
    };
    match item {
        Item::ArrayOfTables(a) => a.iter().map(Node::Table).collect(),
        Item::Value(Value::Array(a)) if a.iter().all(|v| v.is_inline_table()) => a
            .iter()
            .filter_map(|v| v.as_inline_table())
            .map(Node::Inline)
            .collect(),
        Item::Table(t) if t.span().is_none() => {
            // implied by a `[[phase.step]]` (or `[monitor.lag.x]`) written
            // before any `[[phase]]`
            let inner = t
                .iter()
                .next()
                .map(|(k, _)| k.to_string())
                .unwrap_or_default();
            r.error(
                Diagnostic::new(
                    item_span(item),
                    format!("`[[{key}.{inner}]]` comes before any {what}"),
                )
                .expected(format!("a {what} table above it")),
            );
            Vec::new()
        }
        other => {
            r.error(
                Diagnostic::new(
                    item_span(other),
                    format!(
                        "`{key}` must be written as {what} tables: found {}",
                        type_name(other)
                    ),
                )
                .expected(format!("one or more `{what}` tables")),
            );
            Vec::new()
        }
    }
}

/// A required connection name; records the reference.
pub fn conn_ref(
    r: &mut Reader<'_>,
    t: Node<'_>,
    key: &str,
    ctx: &str,
    refs: &mut Vec<Ref>,
    from: &str,
) -> Option<String> {
    let example = if matches!(key, "to" | "target") {
        "\"target\""
    } else {
        "\"source\""
    };
    let (name, span) = r.str_req(t, key, ctx, example)?;
    refs.push(Ref {
        kind: RefKind::Connection,
        name: name.clone(),
        span,
        from: from.to_string(),
    });
    Some(name)
}
