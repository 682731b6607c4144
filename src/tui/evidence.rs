//! The evidence journaled with a confirmation: what the monitors show at that
//! moment (lag per monitor, row-count differences) and the last verify result,
//! or a plain statement that the runbook has no such monitor.

use super::fmt;
use chrono::{DateTime, Utc};
use ferry_core::engine::snapshot::{EngineSnapshot, LagSeries, RowCounts};
use ferry_core::runbook::{Runbook, StepKind};
use ferry_core::vocab::{EvidenceItem, StepState};

/// Row-count tables named one by one at most (the rest are summed up).
const MAX_TABLE_ITEMS: usize = 10;

fn item(label: impl Into<String>, value: impl Into<String>) -> EvidenceItem {
    EvidenceItem {
        label: label.into(),
        value: value.into(),
    }
}

/// A lag series in words: `1.4s (warn 5s, max 30s)`, `stale 42s: …`, the note, or "no value yet".
pub fn lag_value(s: Option<&LagSeries>, now: DateTime<Utc>) -> String {
    let Some(s) = s else {
        return "no value yet".into();
    };
    if let Some(note) = &s.note {
        return note.clone();
    }
    if let Some(st) = &s.stale {
        return match st.last_good {
            Some(t) => format!(
                "stale for {}: {}",
                fmt::dur((now - t).num_seconds()),
                st.error
            ),
            None => format!("stale, never measured: {}", st.error),
        };
    }
    let Some(last) = s.samples.last() else {
        return "no value yet".into();
    };
    let mut v = fmt::lag(last.value);
    let mut limits = Vec::new();
    if let Some(w) = s.warn_secs {
        limits.push(format!("warn {}", fmt::lag(w)));
    }
    if let Some(m) = s.max_secs {
        limits.push(format!("max {}", fmt::lag(m)));
    }
    if !limits.is_empty() {
        v.push_str(&format!(" ({})", limits.join(", ")));
    }
    v
}

fn rowcount_items(rc: Option<&RowCounts>, now: DateTime<Utc>) -> Vec<EvidenceItem> {
    let Some(rc) = rc else {
        return vec![item("row counts", "no value yet")];
    };
    if rc.tables.is_empty() && rc.updated.is_none() {
        // before the first count: "0 tables · source 0 · target 0" would read as empty databases
        let why = rc
            .stale
            .as_ref()
            .map(|st| format!(" · stale: {}", st.error))
            .unwrap_or_default();
        return vec![item(
            format!("row counts {} → {}", rc.source, rc.target),
            format!("not counted yet{why}"),
        )];
    }
    let mut out = Vec::new();
    let known: Vec<_> = rc
        .tables
        .iter()
        .filter_map(|t| Some((t, t.source?, t.target?)))
        .collect();
    // a table on one side only differs too: its rows are all missing on the other
    let one_sided: Vec<_> = rc
        .tables
        .iter()
        .filter(|t| t.source.is_some() != t.target.is_some())
        .collect();
    let differ: Vec<_> = known.iter().filter(|(_, s, t)| s != t).collect();
    let mut summary = format!(
        "{} tables · {} differ · source {} · target {}",
        rc.tables.len(),
        differ.len() + one_sided.len(),
        fmt::thousands(known.iter().map(|(_, s, _)| s).sum()),
        fmt::thousands(known.iter().map(|(_, _, t)| t).sum()),
    );
    if !one_sided.is_empty() {
        summary.push_str(&format!(" · {} on one side only", one_sided.len()));
    }
    let estimated = rc.tables.iter().filter(|t| !t.exact).count();
    if estimated > 0 {
        summary.push_str(&format!(" · {estimated} estimated"));
    }
    if let Some(st) = &rc.stale {
        summary.push_str(&format!(" · stale: {}", st.error));
    } else if let Some(u) = rc.updated {
        summary.push_str(&format!(
            " · counted {} ago",
            fmt::dur((now - u).num_seconds())
        ));
    }
    out.push(item(
        format!("row counts {} → {}", rc.source, rc.target),
        summary,
    ));
    for (t, s, g) in differ.iter().take(MAX_TABLE_ITEMS) {
        // an estimate is marked as on the pane: `~` before each figure
        let e = if t.exact { "" } else { "~" };
        out.push(item(
            format!("rows {}", t.table),
            format!(
                "source {e}{} · target {e}{} · Δ {e}{}{}",
                fmt::thousands(*s),
                fmt::thousands(*g),
                fmt::thousands(s - g),
                if t.exact { "" } else { " (estimates)" }
            ),
        ));
    }
    let room = MAX_TABLE_ITEMS.saturating_sub(differ.len());
    for t in one_sided.iter().take(room) {
        let side = |v: Option<i64>| v.map_or("missing".to_string(), fmt::thousands);
        out.push(item(
            format!("rows {}", t.table),
            format!("source {} · target {}", side(t.source), side(t.target)),
        ));
    }
    let total = differ.len() + one_sided.len();
    if total > MAX_TABLE_ITEMS {
        out.push(item(
            "rows …",
            format!("{} more tables differ", total - MAX_TABLE_ITEMS),
        ));
    }
    out
}

fn verify_item(rb: &Runbook, snap: &EngineSnapshot) -> EvidenceItem {
    let verify_ids: Vec<&str> = rb
        .steps()
        .filter(|s| matches!(s.kind, StepKind::Verify(_)))
        .map(|s| s.id.as_str())
        .collect();
    if verify_ids.is_empty() {
        return item("verify", "no verify step in this runbook");
    }
    let last = snap
        .steps
        .iter()
        .filter(|s| verify_ids.contains(&s.id.as_str()))
        .filter(|s| matches!(s.state, StepState::Succeeded | StepState::Failed))
        .max_by_key(|s| s.finished);
    match last {
        None => item("verify", "no verify step has finished yet"),
        Some(s) => item(
            format!("verify {}", s.id),
            format!(
                "{}{}",
                s.state.name(),
                s.outcome_text()
                    .map(|o| format!(": {o}"))
                    .unwrap_or_default()
            ),
        ),
    }
}

/// Everything on screen that a confirmation records, in a stable order.
pub fn gather(rb: &Runbook, snap: &EngineSnapshot, now: DateTime<Utc>) -> Vec<EvidenceItem> {
    let mut out = Vec::new();
    if rb.monitors.lag.is_empty() {
        out.push(item("lag", "no lag monitor in this runbook"));
    }
    for m in &rb.monitors.lag {
        let series = snap.monitors.lag.iter().find(|s| s.name == m.name);
        out.push(item(format!("lag {}", m.name), lag_value(series, now)));
    }
    if rb.monitors.rowcounts.is_some() {
        out.extend(rowcount_items(snap.monitors.rowcounts.as_ref(), now));
    } else {
        out.push(item("row counts", "no row-count monitor in this runbook"));
    }
    out.push(verify_item(rb, snap));
    // with rehearsals: where the run is heading, and whether a rollback still fits
    // (a point of no return is confirmed knowing what turning back would cost)
    if let Some(p) = ferry_core::engine::timeline::project(snap, now) {
        out.push(item("projected", super::timeline::end_text(&p).0));
        out.push(item("window", super::timeline::budget_text(&p.budget).0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::engine::snapshot::RowCount;

    fn count(table: &str, source: Option<i64>, target: Option<i64>) -> RowCount {
        RowCount {
            table: table.into(),
            source,
            target,
            exact: true,
        }
    }

    #[test]
    fn row_counts_before_the_first_count_do_not_read_as_empty_databases() {
        let rc = RowCounts {
            source: "src".into(),
            target: "tgt".into(),
            tables: vec![],
            updated: None,
            stale: None,
        };
        let items = rowcount_items(Some(&rc), Utc::now());
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].value, "not counted yet", "{items:?}");
    }

    #[test]
    fn a_table_missing_on_the_target_is_a_difference() {
        let now = Utc::now();
        let rc = RowCounts {
            source: "src".into(),
            target: "tgt".into(),
            tables: vec![
                count("public.items", Some(200_000), Some(200_000)),
                count("public.orders", Some(50_000), None),
            ],
            updated: Some(now),
            stale: None,
        };
        let items = rowcount_items(Some(&rc), now);
        assert!(
            items[0].value.starts_with("2 tables · 1 differ")
                && items[0].value.contains("1 on one side only"),
            "{items:?}"
        );
        assert!(
            items
                .iter()
                .any(|i| i.label == "rows public.orders"
                    && i.value == "source 50,000 · target missing"),
            "{items:?}"
        );
    }

    #[test]
    fn estimated_counts_are_marked_in_the_evidence() {
        let now = Utc::now();
        let mut est = count("public.messages", Some(66_000), Some(66_403));
        est.exact = false;
        let rc = RowCounts {
            source: "src".into(),
            target: "tgt".into(),
            tables: vec![count("public.users", Some(12_000), Some(12_000)), est],
            updated: Some(now),
            stale: None,
        };
        let items = rowcount_items(Some(&rc), now);
        assert!(
            items[0].value.contains("1 estimated"),
            "the summary says how many are estimates: {items:?}"
        );
        assert!(
            items.iter().any(|i| i.label == "rows public.messages"
                && i.value == "source ~66,000 · target ~66,403 · Δ ~-403 (estimates)"),
            "{items:?}"
        );
    }
}
