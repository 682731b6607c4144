//! Step results as the review meeting reads them: the copy's per-table
//! figures, the verifier's verdict with every named difference, an RDS
//! instance before and after. Built once from the journaled JSON and drawn by
//! both the Markdown and the HTML renderer, from the engines' own result types
//! (data only: nothing here runs a copy or a check). A result of a shape this version
//! does not know (an older or newer ferry) falls back to a generic table, so
//! nothing journaled is ever hidden.

use super::result_rows;
use crate::results::caught_up::CaughtUpReport;
use crate::results::copy::{CopyReport, Method};
use crate::results::dms::{DmsReport, TaskState};
use crate::results::rds::{ActionReport, InstanceState};
use crate::results::replicate::ReplicateReport;
use crate::results::verify::{TableResult, VerifyReport};
use crate::units::{bytes, count};

/// What a renderer draws for one result: sentences, an optional table, and
/// titled lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultView {
    /// A verdict to show first and prominently: passed or not, and why.
    pub verdict: Option<(bool, String)>,
    pub lines: Vec<String>,
    pub table: Option<Table>,
    pub lists: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub head: Vec<String>,
    /// Right-align this column (numbers).
    pub right: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn new(cols: &[(&str, bool)]) -> Table {
        Table {
            head: cols.iter().map(|(h, _)| h.to_string()).collect(),
            right: cols.iter().map(|(_, r)| *r).collect(),
            rows: Vec::new(),
        }
    }

    /// Drop the columns whose every cell is empty.
    fn without_empty_columns(self) -> Table {
        let keep: Vec<bool> = (0..self.head.len())
            .map(|c| {
                self.rows
                    .iter()
                    .any(|r| r.get(c).is_some_and(|v| !v.is_empty()))
            })
            .collect();
        Table {
            head: kept(self.head, &keep),
            right: kept(self.right, &keep),
            rows: self.rows.into_iter().map(|r| kept(r, &keep)).collect(),
        }
    }
}

/// The items of `v` whose flag in `keep` is set.
fn kept<T>(v: Vec<T>, keep: &[bool]) -> Vec<T> {
    v.into_iter()
        .zip(keep)
        .filter_map(|(x, k)| k.then_some(x))
        .collect()
}

/// The view of a result of step kind `kind`.
pub fn view(kind: &str, data: &serde_json::Value) -> ResultView {
    let typed = match kind {
        "copy" => serde_json::from_value::<CopyReport>(data.clone())
            .ok()
            .map(copy_view),
        "verify" => serde_json::from_value::<VerifyReport>(data.clone())
            .ok()
            .map(verify_view),
        "rds" => serde_json::from_value::<ActionReport>(data.clone())
            .ok()
            .map(rds_view),
        "dms" => serde_json::from_value::<DmsReport>(data.clone())
            .ok()
            .map(dms_view),
        "replicate" => serde_json::from_value::<ReplicateReport>(data.clone())
            .ok()
            .map(replicate_view),
        "wait" => serde_json::from_value::<CaughtUpReport>(data.clone())
            .ok()
            .filter(|r| r.proof == CaughtUpReport::PROOF)
            .map(caught_up_view),
        _ => None,
    };
    typed.unwrap_or_else(|| generic(data))
}

/// A replicate step: what it re-attached to and created, each table's state, the
/// sequences it copied and what its teardown dropped. A slot left behind is the verdict.
fn replicate_view(r: ReplicateReport) -> ResultView {
    let mut v = ResultView::default();
    if let Some(slot) = r.slot_left() {
        v.verdict = Some((
            false,
            format!("REPLICATION SLOT {slot} WAS LEFT ON THE SOURCE, HOLDING WAL: drop it by hand"),
        ));
    }
    v.lines.push(format!("{} `{}`", r.action, r.name));
    if !r.reattached.is_empty() {
        v.lines
            .push(format!("re-attached to: {}", r.reattached.join(", ")));
    }
    if !r.created.is_empty() {
        v.lines.push(format!("created: {}", r.created.join(", ")));
    }
    if !r.tables.is_empty() {
        let mut t = Table::new(&[("table", false), ("state", false)]);
        for s in &r.tables {
            t.rows.push(vec![s.table.clone(), s.state.clone()]);
        }
        v.table = Some(t);
    }
    if !r.sequences.is_empty() {
        v.lists.push((
            "Sequences copied".into(),
            r.sequences
                .iter()
                .map(|s| match (s.value, &s.note) {
                    (Some(x), _) => format!("{} = {x}", s.sequence),
                    (None, Some(n)) => format!("{}: {n}", s.sequence),
                    (None, None) => s.sequence.clone(),
                })
                .collect(),
        ));
    }
    if let Some(td) = &r.teardown {
        if !td.dropped.is_empty() {
            v.lists.push(("Dropped".into(), td.dropped.clone()));
        }
        if !td.errors.is_empty() {
            v.lists.push(("Could not".into(), td.errors.clone()));
        }
    }
    v
}

/// A caught-up proof: passed or not, and both WAL positions.
fn caught_up_view(r: CaughtUpReport) -> ResultView {
    let mut lines = vec![
        format!(
            "primary `{}` at {} when the wait began",
            r.primary, r.primary_lsn
        ),
        format!(
            "{} applied {}",
            r.follower(),
            r.applied_lsn.as_deref().unwrap_or("nothing")
        ),
    ];
    if !r.caught_up {
        lines.push(format!(
            "{} behind when the wait ended",
            bytes(r.bytes_behind)
        ));
    }
    lines.push(format!("waited {:.1}s", r.waited_secs));
    if let Some(id) = &r.system_identifier {
        lines.push(format!("primary's system identifier {id}"));
    }
    ResultView {
        verdict: Some((r.caught_up, r.sentence())),
        lines,
        ..ResultView::default()
    }
}

fn generic(data: &serde_json::Value) -> ResultView {
    let (cols, rows, extra) = result_rows(data);
    let table = (!cols.is_empty()).then(|| Table {
        right: vec![false; cols.len()],
        head: cols,
        rows,
    });
    let mut v = ResultView {
        table,
        ..ResultView::default()
    };
    for (k, val) in extra {
        if val.contains('\n') {
            v.lists
                .push((k, val.lines().map(str::to_string).collect::<Vec<_>>()));
        } else {
            v.lines.push(format!("{k}: {val}"));
        }
    }
    v
}

// ---- copy ------------------------------------------------------------------

fn secs(ms: u64) -> String {
    crate::units::report_duration(ms as f64 / 1000.0)
}

fn rate(r: f64) -> String {
    if r.is_finite() && r >= 0.0 {
        count(r.round() as u64)
    } else {
        "—".into()
    }
}

/// How a table was cut into chunks, in words.
fn method_text(m: Method) -> &'static str {
    match m {
        Method::IntRange => "integer key ranges",
        Method::Sampled => "sampled key bounds",
        Method::Whole => "whole table",
    }
}

fn copy_view(c: CopyReport) -> ResultView {
    let mut lines = vec![format!(
        "{} rows · {} · {} · {} rows/s · {} chunks · {} worker{} · {} → {}",
        count(c.rows),
        bytes(c.bytes),
        secs(c.duration_ms),
        rate(c.rows_per_sec),
        count(c.chunks),
        c.workers,
        if c.workers == 1 { "" } else { "s" },
        c.source,
        c.target
    )];
    if c.chunks_resumed > 0 {
        lines.push(format!(
            "resumed: {} of the {} chunks were copied by an earlier run (the target's checkpoints say so); the time and rows/s are this run's, for the rest",
            count(c.chunks_resumed),
            count(c.chunks)
        ));
    }
    if c.truncated {
        lines.push("the target tables were emptied first (`truncate = true`)".into());
    }
    for m in &c.mapped {
        lines.push(format!(
            "mapped as the runbook says: {} value{} of {}.{}: {}",
            count(m.count),
            if m.count == 1 { "" } else { "s" },
            m.table,
            m.column,
            m.mapping
        ));
    }
    lines.push(if c.replica_role {
        "loaded with triggers and foreign-key checks off on the target".into()
    } else {
        "loaded with the target's triggers and foreign-key checks active (the role may not switch them off)".into()
    });
    let renamed = c
        .tables
        .iter()
        .any(|t| !t.target.is_empty() && t.target != t.table);
    let resumed = c.tables.iter().any(|t| t.chunks_resumed > 0);
    let mut t = Table::new(&[
        ("table", false),
        ("into", false),
        ("rows", true),
        ("size", true),
        ("time", true),
        ("rows/s", true),
        ("chunks", true),
        ("resumed", true),
        ("how", false),
    ]);
    for x in &c.tables {
        let how = format!("{}, {}", x.format, method_text(x.method));
        t.rows.push(vec![
            x.table.clone(),
            if renamed {
                x.target.clone()
            } else {
                String::new()
            },
            count(x.rows),
            bytes(x.bytes),
            secs(x.duration_ms),
            if x.chunks > 0 && x.chunks_resumed == x.chunks {
                // every chunk came from an earlier run: this run copied nothing
                "—".to_string()
            } else {
                rate(x.rows_per_sec)
            },
            count(x.chunks),
            if resumed {
                count(x.chunks_resumed)
            } else {
                String::new()
            },
            how,
        ]);
    }
    let mut lists = Vec::new();
    if !c.sequences.is_empty() {
        lists.push((
            "Sequences set to follow the data".to_string(),
            c.sequences
                .iter()
                .map(|s| {
                    let v = s
                        .value
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "its start".into());
                    let from = if s.from.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", s.from)
                    };
                    format!("{}.{}: `{}` → {v}{from}", s.table, s.column, s.sequence)
                })
                .collect(),
        ));
    }
    ResultView {
        verdict: None,
        lines,
        table: Some(t.without_empty_columns()),
        lists,
    }
}

// ---- verify ----------------------------------------------------------------

fn verify_view(v: VerifyReport) -> ResultView {
    let mut lines = vec![format!(
        "{} ↔ {} · checks: {} · {} rows compared in {}",
        v.source,
        v.target,
        v.checks.join(", "),
        count(v.rows_compared),
        crate::units::report_duration(v.elapsed_secs)
    )];
    if !v.coverage.is_empty() {
        lines.push(format!("coverage: {}", v.coverage));
    }
    if v.stopped_early {
        lines.push("the time limit ended the comparison before everything was checked".into());
    }
    let mut t = Table::new(&[
        ("table", false),
        ("result", false),
        ("schema", false),
        ("counts", false),
        ("checksums", false),
        ("sample", false),
    ]);
    // the tables that differ first: they are what the meeting asks about
    let mut tables: Vec<&TableResult> = v.tables.iter().collect();
    tables.sort_by_key(|x| x.ok);
    for x in tables {
        let result = if x.ok {
            "equal".to_string()
        } else if x.differences > 0 {
            format!(
                "{} difference{}",
                count(x.differences),
                if x.differences == 1 { "" } else { "s" }
            )
        } else {
            "not equal".to_string()
        };
        t.rows.push(vec![
            x.table.clone(),
            result,
            x.schema.clone().unwrap_or_default(),
            x.counts.clone().unwrap_or_default(),
            x.checksums.clone().unwrap_or_default(),
            x.sample.clone().unwrap_or_default(),
        ]);
    }
    let mut lists = Vec::new();
    if !v.differences.is_empty() {
        let mut d = v.differences.clone();
        if v.more_differences > 0 {
            d.push(format!(
                "… and {} more, not listed (`max_diffs`)",
                count(v.more_differences)
            ));
        }
        lists.push(("Differences".to_string(), d));
    }
    if !v.notes.is_empty() {
        lists.push(("Notes".to_string(), v.notes.clone()));
    }
    ResultView {
        verdict: Some((v.ok, v.summary)),
        lines,
        table: Some(t.without_empty_columns()),
        lists,
    }
}

// ---- rds -------------------------------------------------------------------

fn rds_view(r: ActionReport) -> ResultView {
    let mut lines = vec![format!("`{}` on `{}`", r.action, r.instance)];
    if let Some(s) = &r.snapshot {
        lines.push(format!(
            "snapshot `{s}`{}",
            r.snapshot_status
                .as_ref()
                .map(|st| format!(": {st}"))
                .unwrap_or_default()
        ));
    }
    type Field = (&'static str, fn(&InstanceState) -> String);
    let fields: [Field; 8] = [
        ("instance", |i| i.instance.clone()),
        ("status", |i| i.status.clone()),
        ("engine", |i| i.engine.clone().unwrap_or_default()),
        ("class", |i| i.class.clone().unwrap_or_default()),
        ("endpoint", |i| i.endpoint.clone().unwrap_or_default()),
        ("port", |i| {
            i.port.map(|p| p.to_string()).unwrap_or_default()
        }),
        ("replica of", |i| i.replica_of.clone().unwrap_or_default()),
        ("replicas", |i| i.replicas.join(", ")),
    ];
    let table = (r.before.is_some() || r.after.is_some()).then(|| {
        let mut t = Table::new(&[("", false), ("before", false), ("after", false)]);
        for (name, get) in fields {
            let b = r.before.as_ref().map(get).unwrap_or_default();
            let a = r.after.as_ref().map(get).unwrap_or_default();
            if b.is_empty() && a.is_empty() {
                continue;
            }
            let a = if a == b && !a.is_empty() {
                "(same)".to_string()
            } else {
                a
            };
            t.rows.push(vec![name.to_string(), b, a]);
        }
        t
    });
    ResultView {
        verdict: None,
        lines,
        table,
        lists: Vec::new(),
    }
}

// ---- dms -------------------------------------------------------------------

fn dms_view(r: DmsReport) -> ResultView {
    let verdict = Some(if r.problems.is_empty() {
        (
            true,
            format!(
                "no table errored, suspended or failing validation ({} table{})",
                r.tables.len(),
                if r.tables.len() == 1 { "" } else { "s" }
            ),
        )
    } else {
        (false, r.problems.join("; "))
    });
    let mut lines = vec![format!("`{}` on task `{}`", r.action, r.task)];
    if let Some(w) = &r.waited_for {
        lines.push(format!(
            "waited for `{w}`{}",
            r.waited_secs
                .map(|s| format!(" ({})", crate::units::report_duration(s as f64)))
                .unwrap_or_default()
        ));
    }
    type Field = (&'static str, fn(&TaskState) -> String);
    let fields: [Field; 11] = [
        ("status", |t| t.status.clone()),
        ("arn", |t| t.arn.clone()),
        ("migration", |t| {
            t.migration_type.clone().unwrap_or_default()
        }),
        ("stop reason", |t| t.stop_reason.clone().unwrap_or_default()),
        ("last failure", |t| {
            t.last_failure_message.clone().unwrap_or_default()
        }),
        ("full load %", |t| {
            t.full_load_percent
                .map(|x| x.to_string())
                .unwrap_or_default()
        }),
        ("tables loaded", |t| {
            t.tables_loaded.map(|x| x.to_string()).unwrap_or_default()
        }),
        ("tables loading", |t| {
            t.tables_loading.map(|x| x.to_string()).unwrap_or_default()
        }),
        ("tables errored", |t| {
            t.tables_errored.map(|x| x.to_string()).unwrap_or_default()
        }),
        ("CDC stop position", |t| {
            t.cdc_stop_position.clone().unwrap_or_default()
        }),
        ("recovery checkpoint", |t| {
            t.recovery_checkpoint.clone().unwrap_or_default()
        }),
    ];
    let mut task = Table::new(&[("task", false), ("before", false), ("after", false)]);
    for (name, get) in fields {
        let b = r.before.as_ref().map(get).unwrap_or_default();
        let a = r.after.as_ref().map(get).unwrap_or_default();
        if b.is_empty() && a.is_empty() {
            continue;
        }
        let a = if a == b && !a.is_empty() {
            "(same)".to_string()
        } else {
            a
        };
        task.rows.push(vec![name.to_string(), b, a]);
    }
    let mut lists = vec![(
        "Task before and after".to_string(),
        task.rows
            .iter()
            .map(|row| format!("{}: {} → {}", row[0], row[1], row[2]))
            .collect(),
    )];
    let mut t = Table::new(&[
        ("table", false),
        ("state", false),
        ("full-load rows", true),
        ("inserts", true),
        ("updates", true),
        ("deletes", true),
        ("validation", false),
        ("failed records", true),
    ]);
    // the tables in trouble first: they are what the meeting asks about
    let bad = |x: &crate::results::dms::TableStat| {
        let s = x.state.to_lowercase();
        !(s.contains("error")
            || s.contains("suspend")
            || x.validation_failed > 0
            || x.validation_suspended > 0)
    };
    let mut tables = r.tables.clone();
    tables.sort_by_key(|x| bad(x));
    for x in &tables {
        t.rows.push(vec![
            x.name(),
            x.state.clone(),
            count(x.full_load_rows.max(0) as u64),
            count(x.inserts.max(0) as u64),
            count(x.updates.max(0) as u64),
            count(x.deletes.max(0) as u64),
            x.validation_state.clone().unwrap_or_default(),
            count((x.validation_failed + x.validation_suspended).max(0) as u64),
        ]);
    }
    if let Some(s) = &r.settings {
        lists.push((
            "Task settings sent".to_string(),
            s.as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        ));
    }
    if let Some(m) = &r.table_mappings {
        lists.push((
            "Table mappings sent".to_string(),
            m["rules"]
                .as_array()
                .map(|rules| {
                    rules
                        .iter()
                        .map(|x| {
                            format!(
                                "{} {}.{}",
                                x["rule-action"].as_str().unwrap_or(""),
                                x["object-locator"]["schema-name"].as_str().unwrap_or(""),
                                x["object-locator"]["table-name"].as_str().unwrap_or("")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        ));
    }
    if !r.problems.is_empty() {
        lists.insert(0, ("Problems".to_string(), r.problems.clone()));
    }
    ResultView {
        verdict,
        lines,
        table: (!t.rows.is_empty()).then(|| t.without_empty_columns()),
        lists,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_dms_result_names_the_failing_table_first() {
        let v = view(
            "dms",
            &json!({"action":"wait","task":"orders-sync","before":null,
                "after":{"task":"orders-sync","arn":"arn:aws:dms:us-east-1:1:task:orders-sync","status":"running",
                    "migration_type":"full-load-and-cdc","stop_reason":null,"last_failure_message":"duplicate key",
                    "full_load_percent":50,"tables_loaded":1,"tables_loading":0,"tables_queued":0,"tables_errored":1,"cdc_stop_position":null},
                "tables":[{"schema":"public","table":"a","state":"Table completed","full_load_rows":10,"inserts":0,"updates":0,"deletes":0,
                           "validation_state":null,"validation_failed":0,"validation_suspended":0,"validation_pending":0},
                          {"schema":"public","table":"orders","state":"Table error","full_load_rows":3,"inserts":0,"updates":0,"deletes":0,
                           "validation_state":null,"validation_failed":0,"validation_suspended":0,"validation_pending":0}],
                "settings":null,"table_mappings":null,"waited_for":"full_load_done","waited_secs":null,
                "problems":["table public.orders is `Table error` (task's last failure: duplicate key)"]}),
        );
        let (ok, why) = v.verdict.expect("a verdict");
        assert!(!ok && why.contains("public.orders"), "{why}");
        let t = v.table.expect("a table");
        assert_eq!(t.rows[0][0], "public.orders");
        assert_eq!(v.lists[0].0, "Problems");
    }

    #[test]
    fn a_copy_result_reads_as_figures_per_table() {
        let v = view(
            "copy",
            &json!({"step":"c","source":"postgres","target":"postgres","rows":120000,"bytes":6754079,
                "chunks":27,"chunks_resumed":3,"duration_ms":704,"rows_per_sec":170454.5,"workers":2,
                "replica_role":true,"truncated":false,
                "sequences":[{"table":"public.users","column":"id","sequence":"public.users_id_seq","value":120001,"is_called":false,"from":"max + 1"}],
                "tables":[{"table":"public.users","target":"public.users","rows":120000,"bytes":6754079,"chunks":27,
                "chunks_resumed":3,"duration_ms":704,"rows_per_sec":170454.5,"method":"int_range","format":"copy binary","clears":"range"}]}),
        );
        assert_eq!(
            v.lines[0],
            "120,000 rows · 6.4 MiB · 0.7s · 170,455 rows/s · 27 chunks · 2 workers · postgres → postgres"
        );
        assert!(v.lines[1].starts_with("resumed: 3 of the 27 chunks"));
        assert!(v.lines[1].ends_with("the time and rows/s are this run's, for the rest"));
        let t = v.table.expect("a table");
        assert_eq!(
            t.head,
            ["table", "rows", "size", "time", "rows/s", "chunks", "resumed", "how"],
            "`into` is left out when no table is renamed"
        );
        assert_eq!(t.rows[0][7], "copy binary, integer key ranges");
        assert_eq!(
            v.lists[0].1,
            ["public.users.id: `public.users_id_seq` → 120001 (max + 1)"]
        );
    }

    #[test]
    fn a_table_an_earlier_run_copied_whole_has_no_speed_of_its_own() {
        let v = view(
            "copy",
            &json!({"step":"c","source":"sqlite","target":"sqlite","rows":550000,"bytes":31770000,
                "chunks":110,"chunks_resumed":110,"duration_ms":2300,"rows_per_sec":0.0,"workers":1,
                "replica_role":true,"truncated":false,"sequences":[],
                "tables":[{"table":"main.messages","target":"main.messages","rows":550000,"bytes":31770000,"chunks":110,
                "chunks_resumed":110,"duration_ms":0,"rows_per_sec":0.0,"method":"int_range","format":"rows","clears":"range"}]}),
        );
        let t = v.table.expect("a table");
        let col = t.head.iter().position(|h| h == "rows/s").expect("rows/s");
        assert_eq!(t.rows[0][col], "—", "not 0 rows/s: {:?}", t.rows[0]);
    }

    #[test]
    fn a_verify_result_puts_the_differing_tables_and_rows_first() {
        let v = view(
            "verify",
            &json!({"ok":false,"summary":"2 differences in 1 of 2 tables","source":"postgres","target":"postgres",
                "checks":["counts","checksums"],"differences":["public.users id=42: missing on target"],
                "more_differences":1,"stopped_early":false,"coverage":"all rows","rows_compared":10,"elapsed_secs":1.5,"notes":[],
                "tables":[{"table":"public.a","ok":true,"counts":"5 = 5","checksums":"equal","differences":0,"summary":"equal"},
                          {"table":"public.users","ok":false,"counts":"5 ≠ 4 (target -1)","checksums":"2 rows differ","differences":2,"summary":"x"}]}),
        );
        assert_eq!(
            v.verdict,
            Some((false, "2 differences in 1 of 2 tables".to_string()))
        );
        let t = v.table.expect("a table");
        assert_eq!(t.head, ["table", "result", "counts", "checksums"]);
        assert_eq!(t.rows[0][0], "public.users");
        assert_eq!(t.rows[0][1], "2 differences");
        assert_eq!(
            v.lists[0].1,
            [
                "public.users id=42: missing on target",
                "… and 1 more, not listed (`max_diffs`)"
            ]
        );
    }

    #[test]
    fn an_unknown_shape_falls_back_to_the_generic_table() {
        let v = view("copy", &json!({"tables":[{"table":"t","rows":1}],"x":true}));
        assert_eq!(v.table.expect("a table").head, ["table", "rows"]);
        assert_eq!(v.lines, ["x: true"]);
    }
}

#[cfg(test)]
mod replication_tests {
    use crate::journal::{Entry, StepMeta};
    use crate::report::testkit::{header, model};
    use crate::report::{markdown, Format};
    use crate::results::replicate::{ReplicateReport, Teardown};

    fn with_plan(kind: &str) -> Entry {
        let Entry::Header(mut h) = header("r") else {
            unreachable!("header() makes a header")
        };
        h.plan = vec![StepMeta {
            id: "start".into(),
            phase: "p".into(),
            title: "start".into(),
            kind: kind.into(),
            confirm: crate::runbook::ConfirmMode::Operator,
            point_of_no_return: false,
            rollback_only: false,
        }];
        Entry::Header(h)
    }

    fn teardown(slot_left: bool) -> Entry {
        let r = ReplicateReport {
            action: "rollback".into(),
            name: "ferry_cutover".into(),
            teardown: Some(Teardown {
                dropped: vec!["subscription ferry_cutover (target)".into()],
                errors: if slot_left {
                    vec!["REPLICATION SLOT ferry_cutover IS STILL ON THE SOURCE".into()]
                } else {
                    vec![]
                },
                slot_left,
            }),
            ..ReplicateReport::default()
        };
        Entry::Result {
            step: "start".into(),
            data: serde_json::to_value(r).unwrap_or_default(),
        }
    }

    #[test]
    fn a_slot_left_behind_is_named_at_the_top_of_the_report() {
        let m = model(vec![(0, with_plan("replicate")), (5, teardown(true))]);
        assert_eq!(m.slots_left.len(), 1);
        assert_eq!(m.slots_left[0].slot, "ferry_cutover");
        let md = markdown::render(&m);
        assert!(
            md.contains("**REPLICATION SLOT `ferry_cutover` WAS LEFT ON THE SOURCE, HOLDING WAL**"),
            "{md}"
        );
        let json = crate::report::render(&m, Format::Json);
        assert!(json.contains("\"slots_left\""), "{json}");
    }

    #[test]
    fn a_later_teardown_that_dropped_it_clears_the_slot() {
        let m = model(vec![
            (0, with_plan("replicate")),
            (5, teardown(true)),
            (9, teardown(false)),
        ]);
        assert!(m.slots_left.is_empty(), "{:?}", m.slots_left);
        let json = crate::report::render(&m, Format::Json);
        assert!(!json.contains("\"slots_left\""), "absent when none");
    }
}
