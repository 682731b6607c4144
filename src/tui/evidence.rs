//! The evidence journaled with a confirmation: what the monitors show at that
//! moment (lag per monitor, row-count differences) and the last verify result,
//! or a plain statement that the runbook has no such monitor. Each item carries
//! its age, and is stale when older than twice its monitor's interval or when its
//! monitor is failing. [`material`] is what must not change between opening a
//! confirm dialog and pressing `y`.

use super::fmt;
use chrono::{DateTime, Utc};
use ferry_core::engine::snapshot::{EngineSnapshot, LagSeries, RowCounts};
use ferry_core::runbook::{Condition, Runbook, StepKind};
use ferry_core::vocab::{EvidenceItem, StepState};

/// Row-count tables named one by one at most (the rest are summed up).
const MAX_TABLE_ITEMS: usize = 10;

fn item(label: impl Into<String>, value: impl Into<String>) -> EvidenceItem {
    EvidenceItem {
        label: label.into(),
        value: value.into(),
        ..Default::default()
    }
}

/// `it` measured at `at`: its age, and stale when its source is failing or the
/// value is older than twice the source's interval `every`.
fn aged(
    mut it: EvidenceItem,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    every: Option<std::time::Duration>,
    failing: bool,
) -> EvidenceItem {
    let age = at.map(|t| u64::try_from((now - t).num_seconds()).unwrap_or(0));
    it.age_secs = age;
    let too_old = match (age, every) {
        (Some(a), Some(e)) => a as f64 > 2.0 * e.as_secs_f64().max(1.0),
        _ => false,
    };
    it.stale = failing || too_old;
    it
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

fn verify_item(rb: &Runbook, snap: &EngineSnapshot, now: DateTime<Utc>) -> EvidenceItem {
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
        Some(s) => {
            let it = item(
                format!("verify {}", s.id),
                format!(
                    "{}{}",
                    s.state.name(),
                    s.outcome_text()
                        .map(|o| format!(": {o}"))
                        .unwrap_or_default()
                ),
            );
            // a verify result has an age, but no interval to go stale against
            aged(it, s.finished, now, None, false)
        }
    }
}

/// The caught-up proofs of the runbook (`wait` with `until = { caught_up = ... }`):
/// each one's state with both WAL positions, from its last progress.
fn caught_up_items(rb: &Runbook, snap: &EngineSnapshot) -> Vec<EvidenceItem> {
    rb.steps()
        .filter(|s| {
            matches!(&s.kind, StepKind::Wait(w) if matches!(w.until, Condition::CaughtUp { .. }))
        })
        .map(|s| {
            let snap_step = snap.step(&s.id);
            let state = snap_step.map_or(StepState::Pending, |x| x.state);
            let pos = snap_step
                .and_then(|x| x.progress.as_ref())
                .and_then(|p| p.catch_up.as_ref());
            let value = match pos {
                None => format!("{}: no position read yet", state.name()),
                Some(c) => format!(
                    "{}: primary at {} when the wait began · applied {} · {} behind{}",
                    state.name(),
                    c.primary_lsn,
                    c.applied_lsn.as_deref().unwrap_or("nothing yet"),
                    ferry_core::units::bytes(c.bytes_behind),
                    c.seconds_behind
                        .map(|s| format!(" ({})", fmt::lag(s)))
                        .unwrap_or_default()
                ),
            };
            item(format!("caught-up {}", s.id), value)
        })
        .collect()
}

/// Everything on screen that a confirmation records, in a stable order.
pub fn gather(rb: &Runbook, snap: &EngineSnapshot, now: DateTime<Utc>) -> Vec<EvidenceItem> {
    let mut out = Vec::new();
    if rb.monitors.lag.is_empty() {
        out.push(item("lag", "no lag monitor in this runbook"));
    }
    for m in &rb.monitors.lag {
        let series = snap.monitors.lag.iter().find(|s| s.name == m.name);
        let it = item(format!("lag {}", m.name), lag_value(series, now));
        let at = series.and_then(|s| s.samples.last()).map(|x| x.at);
        let failing = series.is_some_and(|s| s.stale.is_some());
        out.push(aged(it, at, now, Some(m.every), failing));
    }
    match &rb.monitors.rowcounts {
        Some(m) => {
            let rc = snap.monitors.rowcounts.as_ref();
            let at = rc.and_then(|r| r.updated);
            let failing = rc.is_some_and(|r| r.stale.is_some());
            out.extend(
                rowcount_items(rc, now)
                    .into_iter()
                    .map(|it| aged(it, at, now, Some(m.every), failing)),
            );
        }
        None => out.push(item("row counts", "no row-count monitor in this runbook")),
    }
    out.push(verify_item(rb, snap, now));
    out.extend(caught_up_items(rb, snap));
    // with rehearsals: where the run is heading, and whether a rollback still fits
    // (a point of no return is confirmed knowing what turning back would cost)
    if let Some(p) = ferry_core::engine::timeline::project(snap, now) {
        out.push(item("projected", super::timeline::end_text(&p).0));
        out.push(item("window", super::timeline::budget_text(&p.budget).0));
    }
    out
}

/// What a confirmation must not see change between its dialog opening and `y`:
/// each lag monitor's side of its `max` (or that it is stale), how many tables'
/// row counts differ, and the last verify result.
pub fn material(rb: &Runbook, snap: &EngineSnapshot, now: DateTime<Utc>) -> Vec<String> {
    let mut out = Vec::new();
    for m in &rb.monitors.lag {
        let series = snap.monitors.lag.iter().find(|s| s.name == m.name);
        let class = match series {
            Some(s) if s.stale.is_some() => "stale".to_string(),
            Some(s) => match (s.samples.last(), s.max_secs) {
                (None, _) => "no value".into(),
                (Some(x), Some(max)) if x.value > max => format!("over its max {}", fmt::lag(max)),
                (Some(_), _) => "within its max".into(),
            },
            None => "no value".into(),
        };
        out.push(format!("lag {}: {class}", m.name));
    }
    if rb.monitors.rowcounts.is_some() {
        let rc = snap.monitors.rowcounts.as_ref();
        let differ = rc.map_or(0, |rc| {
            rc.tables.iter().filter(|t| t.source != t.target).count()
        });
        let stale = rc.is_some_and(|r| r.stale.is_some());
        out.push(format!(
            "row counts: {differ} tables differ{}",
            if stale { ", stale" } else { "" }
        ));
    }
    let v = verify_item(rb, snap, now);
    out.push(format!("{}: {}", v.label, v.value));
    // a proof's state, not its moving byte count
    for it in caught_up_items(rb, snap) {
        let state = it.value.split(':').next().unwrap_or_default().to_string();
        out.push(format!("{}: {state}", it.label));
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
