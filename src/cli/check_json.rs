//! `ferry check RUNBOOK --format json`: the same verdict and plan as the text, for
//! scripts (CI gates, change tickets). The shape is `assets/check.schema.json`; a
//! runbook with errors gives `valid: false` and each error with its line and column.

use super::check::{aws_calls, connections, env_needed, plan_aws_calls, tls_text, what};
use super::{EXIT_BAD_INPUT, EXIT_OK};
use ferry_core::runbook::{self, diag, ConfirmMode, Report, Runbook, Step};
use serde_json::{json, Value};
use std::path::Path;

pub const SCHEMA_VERSION: u32 = 1;

pub fn run(path: &Path, vars: &runbook::vars::Overrides) -> i32 {
    let (text, code) = match runbook::load_with(path, &vars.values()) {
        Ok(rb) => {
            if let Err(e) = vars.check_declared(&rb.vars) {
                complain_raw!("{e}");
                return EXIT_BAD_INPUT;
            }
            // secret-named vars are masked wherever the plan echoes them
            let text =
                serde_json::to_string_pretty(&plan(path, &rb)).unwrap_or_else(|_| "{}".into());
            (super::check::secret_vars(&rb).redact(&text), EXIT_OK)
        }
        Err(report) => (
            serde_json::to_string_pretty(&errors(path, &report)).unwrap_or_else(|_| "{}".into()),
            EXIT_BAD_INPUT,
        ),
    };
    say_raw!("{text}");
    code
}

fn errors(path: &Path, report: &Report) -> Value {
    let list: Vec<Value> = report
        .diagnostics
        .iter()
        .map(|d| {
            let (line, column) = match &d.span {
                Some(s) => {
                    let (l, c) = diag::line_col(&report.source, s.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            json!({
                "line": line,
                "column": column,
                "message": d.message,
                "expected": d.expected,
                "help": d.help,
            })
        })
        .collect();
    json!({
        "schema_version": SCHEMA_VERSION,
        "file": path.display().to_string(),
        "valid": false,
        "errors": list,
        "omitted": report.omitted,
    })
}

fn confirm(c: ConfirmMode) -> &'static str {
    match c {
        ConfirmMode::Operator => "operator",
        ConfirmMode::TwoPerson => "two-person",
        ConfirmMode::None => "none",
    }
}

fn step(s: &Step, order: Option<usize>, rollback_only: bool) -> Value {
    json!({
        "order": order,
        "id": s.id,
        "phase": s.phase,
        "kind": s.kind.name(),
        "title": s.label(),
        "what": what(s),
        "confirm": confirm(s.confirm),
        "point_of_no_return": s.point_of_no_return,
        "rollback_only": rollback_only,
        "depends_on": s.depends_on,
        "connections": connections(s),
        "aws_calls": aws_calls(s),
        "timeout_secs": s.timeout.map(|t| t.as_secs_f64()),
        "retries": s.retries.max,
    })
}

fn plan(path: &Path, rb: &Runbook) -> Value {
    let steps: Vec<&Step> = rb.steps().collect();
    let rollback_only = rb.rollback_only();
    let mut out: Vec<Value> = runbook::execution_order(rb)
        .into_iter()
        .filter(|s| !rollback_only.contains_key(s.id.as_str()))
        .enumerate()
        .map(|(n, s)| step(s, Some(n + 1), false))
        .collect();
    out.extend(
        steps
            .iter()
            .filter(|s| rollback_only.contains_key(s.id.as_str()))
            .map(|s| step(s, None, true)),
    );
    let conns: Vec<Value> = rb
        .connections
        .values()
        .map(|c| {
            let url = runbook::tls::url_host(&c.url).map(|_| c.url.as_str()).unwrap_or("");
            let tls = if c.url.starts_with("sqlite:") {
                None
            } else {
                runbook::tls::resolve(c, url, &|_| None).ok()
            };
            json!({
                "name": c.name,
                "title": c.title,
                "from_environment": runbook::tls::url_host(&c.url).is_none() && !c.url.starts_with("sqlite:"),
                "iam_auth": c.iam_auth.as_ref().map(|a| a.instance.clone()),
                "iam_auth_off": c.iam_auth_off.as_ref().map(|a| a.instance.clone()),
                "tls": tls.as_ref().map(|t| t.mode.as_str()),
                "ca": tls.as_ref().and_then(|t| t.ca.clone()),
                "summary": tls_text(c).trim_start_matches(", ").to_string(),
            })
        })
        .collect();
    let warnings: Vec<String> = rb
        .connections
        .values()
        .flat_map(runbook::tls::check_warnings)
        .collect();
    let window = rb.window.as_ref().map(|w| {
        let end = w.start + chrono::Duration::from_std(w.duration).unwrap_or_default();
        json!({
            "start": w.start.to_rfc3339(),
            "end": end.to_rfc3339(),
            "duration_secs": w.duration.as_secs(),
        })
    });
    let ids = |pred: &dyn Fn(&Step) -> bool| -> Vec<String> {
        steps
            .iter()
            .filter(|s| pred(s))
            .map(|s| s.id.clone())
            .collect()
    };
    json!({
        "schema_version": SCHEMA_VERSION,
        "file": path.display().to_string(),
        "valid": true,
        "errors": [],
        "runbook": {
            "name": rb.name,
            "title": rb.title,
            "format": rb.format,
            "sha256": rb.source_sha256,
        },
        "window": window,
        "connections": conns,
        "steps": out,
        "two_person": ids(&|s| s.confirm == ConfirmMode::TwoPerson),
        "points_of_no_return": ids(&|s| s.point_of_no_return),
        "aws_calls": plan_aws_calls(rb, &steps).into_iter().collect::<Vec<_>>(),
        "environment": env_needed(rb, &steps).into_iter().collect::<Vec<_>>(),
        "warnings": warnings,
    })
}
