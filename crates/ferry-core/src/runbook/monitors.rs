//! The `[[monitor.lag]]`, `[[monitor.metric]]` and `[monitor.rowcounts]` tables of a
//! runbook (`[[monitor.dms]]` is read by `dms.rs`): names, sources (SQL on a connection, or CloudWatch), thresholds and
//! polling intervals. References to connections are recorded for `validate.rs`.

use super::diag::{did_you_mean, Diagnostic};
use super::model::*;
use super::parse::{array_of_tables, conn_ref, table_globs, Ref};
use super::reader::{item_span, Node, Reader};
use super::steps::check_slug;
use std::collections::BTreeMap;
use std::time::Duration;
use toml_edit::{Item, Value};

pub(super) fn parse_monitors(r: &mut Reader<'_>, root: Node<'_>, refs: &mut Vec<Ref>) -> Monitors {
    let mut m = Monitors::default();
    let Some(mon) = r.table_opt(root, "monitor", "the top level") else {
        return m;
    };
    r.check_keys(mon, "[monitor]", &["lag", "metric", "rowcounts", "dms"]);
    // lag and metric monitors share one set of names (they share the screen)
    let mut seen: BTreeMap<String, Span> = BTreeMap::new();
    let mut unique = |r: &mut Reader<'_>, t: Node<'_>| {
        let Some((Some(span), Item::Value(Value::String(n)))) =
            t.get("name").map(|(_, i)| (item_span(i), i))
        else {
            return;
        };
        let name = n.value().to_string();
        match seen.get(&name) {
            Some(first) => {
                let (line, _) = super::diag::line_col(r.src, first.start);
                r.error(
                    Diagnostic::new(Some(span), format!("duplicate monitor name `{name}`"))
                        .expected(format!(
                            "a monitor name not used before (first used on line {line}; lag, metric and dms monitors share names)"
                        )),
                );
            }
            None => {
                seen.insert(name, span);
            }
        }
    };
    for t in array_of_tables(r, mon, "lag", "[[monitor.lag]]") {
        unique(r, t);
        if let Some(l) = parse_lag(r, t, refs) {
            m.lag.push(l);
        }
    }
    for t in array_of_tables(r, mon, "metric", "[[monitor.metric]]") {
        unique(r, t);
        if let Some(x) = parse_metric(r, t, refs) {
            m.metric.push(x);
        }
    }
    for t in array_of_tables(r, mon, "dms", "[[monitor.dms]]") {
        unique(r, t);
        if let Some(x) = super::dms::parse_monitor(r, t) {
            m.dms.push(x);
        }
    }
    if let Some(t) = r.table_opt(mon, "rowcounts", "[monitor]") {
        let ctx = "[monitor.rowcounts]";
        r.check_keys(t, ctx, &["source", "target", "tables", "exclude", "every"]);
        let source = conn_ref(r, t, "source", ctx, refs, "the row-count monitor");
        let target = conn_ref(r, t, "target", ctx, refs, "the row-count monitor");
        let (tables, exclude) = table_globs(r, t, ctx);
        let every = every_opt(r, t, ctx, Duration::from_secs(10));
        m.rowcounts = Some(RowCountMonitor {
            source: source.unwrap_or_default(),
            target: target.unwrap_or_default(),
            tables,
            exclude,
            every,
        });
    }
    m
}

/// `tables` (default every table) and `exclude` (default none): globs over
/// `schema.table`. An empty `tables` selects nothing, and a glob with an
/// empty side of the dot (`"public."`) matches nothing: both are mistakes.
/// The shortest polling interval a monitor may have: shorter hammers the source.
const MIN_EVERY: Duration = Duration::from_millis(100);

/// A monitor's `every`: `default` when absent; an error when shorter than [`MIN_EVERY`].
fn every_opt(r: &mut Reader<'_>, t: Node<'_>, ctx: &str, default: Duration) -> Duration {
    match r.duration_opt(t, "every", ctx) {
        Some(d) if d < MIN_EVERY => {
            r.error(
                Diagnostic::new(
                    t.get("every").and_then(|(s, _)| s),
                    format!(
                        "`every` of {ctx} is {}: a monitor that polls that often hammers its source",
                        humantime::format_duration(d)
                    ),
                )
                .expected("at least \"100ms\""),
            );
            default
        }
        Some(d) => d,
        None => default,
    }
}

fn named(r: &mut Reader<'_>, t: Node<'_>, ctx: &str) -> Option<(String, Span)> {
    let (name, span) = r.str_req(t, "name", ctx, "\"replica\"")?;
    check_slug(r, &name, &span, "monitor name");
    Some((name, span))
}

fn parse_lag(r: &mut Reader<'_>, t: Node<'_>, refs: &mut Vec<Ref>) -> Option<LagMonitor> {
    let ctx0 = "[[monitor.lag]]";
    r.check_keys(
        t,
        ctx0,
        &[
            "name",
            "title",
            "connection",
            "cloudwatch",
            "warn",
            "max",
            "every",
        ],
    );
    let (name, _) = named(r, t, ctx0)?;
    let ctx = format!("lag monitor `{name}`");
    let source = match (t.get("connection").is_some(), t.get("cloudwatch").is_some()) {
        (true, false) => LagSource::Connection(conn_ref(r, t, "connection", &ctx, refs, &ctx)?),
        (false, true) => {
            let cw = r.table_opt(t, "cloudwatch", &ctx)?;
            let cctx = format!("`cloudwatch` of {ctx}");
            r.check_keys(cw, &cctx, &["instance"]);
            LagSource::Cloudwatch {
                instance: r.str_req(cw, "instance", &cctx, "\"prod-v2-replica\"")?.0,
            }
        }
        (has_conn, _) => {
            r.error(
                Diagnostic::new(
                    t.span(),
                    format!(
                        "{ctx} needs exactly one source, found {}",
                        if has_conn { "two" } else { "none" }
                    ),
                )
                .expected("`connection = \"NAME\"` or `cloudwatch = { instance = \"...\" }`"),
            );
            return None;
        }
    };
    let warn = r.duration_opt(t, "warn", &ctx);
    let max = r.duration_opt(t, "max", &ctx);
    if let (Some(w), Some(m)) = (warn, max) {
        if w > m {
            r.error(
                Diagnostic::new(
                    t.get("warn").and_then(|(s, _)| s),
                    format!("{ctx}: `warn` is above `max`"),
                )
                .expected("warn <= max"),
            );
        }
    }
    Some(LagMonitor {
        title: r.string(t, "title", &ctx),
        every: every_opt(r, t, &ctx, Duration::from_secs(5)),
        name,
        source,
        warn,
        max,
    })
}

/// CloudWatch accepts a period of 1, 5, 10 or 30 seconds (high resolution)
/// or a multiple of 60; anything else fails every GetMetricData call.
fn cloudwatch_period(r: &mut Reader<'_>, cw: Node<'_>, c: &str) -> Duration {
    let period = r
        .duration_opt(cw, "period", c)
        .unwrap_or(Duration::from_secs(60));
    let secs = period.as_secs();
    let ok =
        period.subsec_nanos() == 0 && ([1, 5, 10, 30].contains(&secs) || secs.is_multiple_of(60));
    if !ok {
        let up = secs.div_ceil(60).max(1) * 60;
        r.error(
            Diagnostic::new(
                cw.get("period").and_then(|(_, i)| item_span(i)),
                format!("CloudWatch cannot use a period of {secs}s in {c}"),
            )
            .expected("1s, 5s, 10s, 30s or a multiple of 60s")
            .help(format!("write `period = \"{up}s\"`")),
        );
    }
    period
}

const STATS: &[&str] = &["Average", "Maximum", "Minimum", "Sum", "SampleCount"];

fn parse_metric(r: &mut Reader<'_>, t: Node<'_>, refs: &mut Vec<Ref>) -> Option<MetricMonitor> {
    let ctx0 = "[[monitor.metric]]";
    r.check_keys(
        t,
        ctx0,
        &["name", "title", "cloudwatch", "sql", "unit", "warn", "max"],
    );
    let (name, _) = named(r, t, ctx0)?;
    let ctx = format!("metric monitor `{name}`");
    let source = match (t.get("cloudwatch").is_some(), t.get("sql").is_some()) {
        (true, false) => cloudwatch_source(r, t, &ctx)?,
        (false, true) => sql_source(r, t, &ctx, refs)?,
        (has_cw, _) => {
            r.error(
                Diagnostic::new(
                    t.span(),
                    format!(
                        "{ctx} needs exactly one source, found {}",
                        if has_cw { "two" } else { "none" }
                    ),
                )
                .expected(
                    "`cloudwatch = { ... }` or `sql = { connection = \"...\", query = \"...\" }`",
                ),
            );
            return None;
        }
    };
    let warn = r.number_opt(t, "warn", &ctx);
    let max = r.number_opt(t, "max", &ctx);
    if let (Some(w), Some(m)) = (warn, max) {
        if w > m {
            r.error(
                Diagnostic::new(
                    t.get("warn").and_then(|(s, _)| s),
                    format!("{ctx}: `warn` ({w}) is above `max` ({m})"),
                )
                .expected("warn <= max"),
            );
        }
    }
    Some(MetricMonitor {
        title: r.string(t, "title", &ctx),
        unit: r.string(t, "unit", &ctx),
        warn,
        max,
        name,
        source,
    })
}

/// `cloudwatch = { namespace, metric, dimensions, stat, period, missing }`.
fn cloudwatch_source(r: &mut Reader<'_>, t: Node<'_>, ctx: &str) -> Option<MetricSource> {
    let cw = r.table_opt(t, "cloudwatch", ctx)?;
    let c = format!("`cloudwatch` of {ctx}");
    r.check_keys(
        cw,
        &c,
        &[
            "namespace",
            "metric",
            "dimensions",
            "stat",
            "period",
            "missing",
        ],
    );
    let missing_zero = missing_zero(r, cw, &c);
    let stat = statistic(r, cw, &c);
    Some(MetricSource::Cloudwatch(CloudwatchMetric {
        namespace: r
            .str_req(cw, "namespace", &c, "\"AWS/RDS\"")
            .map(|x| x.0)
            .unwrap_or_default(),
        metric: r
            .str_req(cw, "metric", &c, "\"CPUUtilization\"")
            .map(|x| x.0)
            .unwrap_or_default(),
        dimensions: r.str_map_opt(cw, "dimensions", &c),
        stat,
        period: cloudwatch_period(r, cw, &c),
        missing_zero,
    }))
}

/// `missing`: whether a period without datapoints counts as 0 (`"zero"`) or
/// leaves the monitor stale (`"stale"`, the default).
fn missing_zero(r: &mut Reader<'_>, cw: Node<'_>, c: &str) -> bool {
    match r.str_opt(cw, "missing", c) {
        None => false,
        Some((m, _)) if m == "zero" => true,
        Some((m, _)) if m == "stale" => false,
        Some((m, span)) => {
            r.error(
                Diagnostic::new(Some(span), format!("unknown `missing = \"{m}\"` in {c}"))
                    .expected(
                    "\"zero\" (a period without datapoints counts as 0) or \"stale\" (the default)",
                ),
            );
            false
        }
    }
}

/// `stat`: a CloudWatch statistic or a percentile like `p99` (Average by default).
fn statistic(r: &mut Reader<'_>, cw: Node<'_>, c: &str) -> String {
    match r.str_opt(cw, "stat", c) {
        None => "Average".to_string(),
        Some((s, span)) => {
            let ok = STATS.contains(&s.as_str())
                || (s.starts_with('p')
                    && s[1..]
                        .parse::<f64>()
                        .is_ok_and(|p| (0.0..=100.0).contains(&p)));
            if !ok {
                r.error(
                    Diagnostic::new(Some(span), format!("unknown statistic `{s}` in {c}"))
                        .expected(format!(
                            "one of: {}, or a percentile like p99",
                            STATS.join(", ")
                        ))
                        .help_opt(did_you_mean(&s, STATS.iter().copied())),
                );
            }
            s
        }
    }
}

/// `sql = { connection, query, rate, every }`: a query sampled on a timer.
fn sql_source(
    r: &mut Reader<'_>,
    t: Node<'_>,
    ctx: &str,
    refs: &mut Vec<Ref>,
) -> Option<MetricSource> {
    let s = r.table_opt(t, "sql", ctx)?;
    let c = format!("`sql` of {ctx}");
    r.check_keys(s, &c, &["connection", "query", "rate", "every"]);
    Some(MetricSource::Sql(SqlMetric {
        connection: conn_ref(r, s, "connection", &c, refs, ctx).unwrap_or_default(),
        query: r
            .text_req(s, "query", &c, "\"select count(*) from orders\"")
            .unwrap_or_default(),
        rate: r.bool_opt(s, "rate", &c).unwrap_or(false),
        every: every_opt(r, s, &c, Duration::from_secs(5)),
    }))
}
