//! `ferry stats JOURNAL...`: rehearsal timing. Per step and in total: n,
//! median, p90, max and a 95% prediction interval (Student's t: where the next
//! run should land), set against the maintenance window, with the steps whose
//! spread costs the most time called out.
//!
//! What counts: a step's time in every journal where it succeeded, and the
//! total of every run that succeeded, both without the time no ferry was
//! running (a crash before its resume is not part of the procedure).

use super::model::{ReportModel, StepReport};
use crate::units::report_duration;
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
    pub mean: f64,
    /// Sample standard deviation (0 for one run).
    pub sd: f64,
    /// 95% prediction interval for one more run, clamped at 0; `None` with
    /// fewer than two runs.
    pub next95: Option<(f64, f64)>,
    /// Coefficient of variation (sd / mean).
    pub cv: f64,
}

/// Two-sided 95% Student t quantiles for 1..=30 degrees of freedom.
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The two-sided 95% t quantile for `df` degrees of freedom: the table up to
/// 30, then the Cornish-Fisher expansion around z (off by < 0.001 from 31 on).
pub fn t95(df: usize) -> f64 {
    if let Some(t) = df.checked_sub(1).and_then(|i| T95.get(i)) {
        return *t;
    }
    let z: f64 = 1.959_964;
    let v = df.max(1) as f64;
    z + (z.powi(3) + z) / (4.0 * v)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
}

/// Percentile by linear interpolation between closest ranks.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.len() == 1 {
        return sorted[0];
    }
    let rank = p * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

pub fn summarize(values: &[f64]) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n as f64;
    let var = if n > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    let sd = var.sqrt();
    let next95 = (n > 1).then(|| {
        let half = t95(n - 1) * sd * (1.0 + 1.0 / n as f64).sqrt();
        ((mean - half).max(0.0), mean + half)
    });
    Some(Summary {
        n,
        median: percentile(&v, 0.5),
        p90: percentile(&v, 0.9),
        max: v[n - 1],
        mean,
        sd,
        next95,
        cv: if mean > 0.0 { sd / mean } else { 0.0 },
    })
}

/// Seconds of the step's span in which a ferry process was running.
pub(super) fn active_secs(r: &ReportModel, s: &StepReport) -> Option<f64> {
    let (a, b) = (s.started?, s.ended?);
    let mut d = s.duration_secs?;
    for i in &r.interruptions {
        let Some(from) = i.stopped_at else { continue };
        let (lo, hi) = (from.max(a), i.at.min(b));
        if hi > lo {
            d -= (hi - lo).num_milliseconds() as f64 / 1000.0;
        }
    }
    Some(d.max(0.0))
}

/// How long a step's rollback took, when it finished well: from the operator's
/// `b` (or the step's failure, for `on_failure = "rollback"`) to its end.
fn rollback_secs(s: &StepReport) -> Option<f64> {
    if s.state != "rolled back" {
        return None;
    }
    let end = s.rollback_ended?;
    let start = s.rollback_started.or(s.ended)?;
    (end >= start).then(|| (end - start).num_milliseconds() as f64 / 1000.0)
}

/// The timing table over several reports of the same runbook.
pub fn render(reports: &[ReportModel]) -> String {
    let mut o = String::new();
    let t = Timings::gather(reports);
    heading(&mut o, reports.len(), &t.names);
    let varying = step_rows(&mut o, &t);
    let total = summarize(&t.totals);
    if let Some(s) = &total {
        row(&mut o, "TOTAL", s);
    }
    let rollback_p90 = rollback_rows(&mut o, &t);
    counted(&mut o, &t);
    if let Some(s) = &total {
        window_fit(&mut o, s, t.window);
        buffer(&mut o, s, rollback_p90, t.window);
    }
    varies_most(&mut o, varying, total.as_ref());
    let _ = writeln!(
        o,
        "95% next run: mean ± t(n-1)·sd·√(1+1/n), where one more rehearsal should end if runs are alike"
    );
    o
}

/// What the reports hold for the table: each succeeded step's times in plan
/// order, the totals of the runs that succeeded, and what was left out.
/// `report::rehearsal` reads the same figures for the console.
pub(super) struct Timings<'a> {
    pub(super) per_step: BTreeMap<String, Vec<f64>>,
    /// Each step's rollback times, where a rehearsal rolled it back.
    pub(super) rollbacks: BTreeMap<String, Vec<f64>>,
    /// Step ids in the order they first succeeded.
    pub(super) order: Vec<String>,
    pub(super) totals: Vec<f64>,
    /// Runs not counted in the total, by outcome.
    left_out: BTreeMap<&'a str, usize>,
    /// Runs that were stopped and resumed.
    resumed: usize,
    /// The planned window, in seconds (the last report that has one).
    window: Option<u64>,
    names: std::collections::BTreeSet<&'a str>,
}

impl<'a> Timings<'a> {
    pub(super) fn gather(reports: &'a [ReportModel]) -> Timings<'a> {
        let mut t = Timings {
            per_step: BTreeMap::new(),
            rollbacks: BTreeMap::new(),
            order: Vec::new(),
            totals: Vec::new(),
            left_out: BTreeMap::new(),
            resumed: 0,
            window: None,
            names: reports.iter().map(|r| r.runbook.name.as_str()).collect(),
        };
        for r in reports {
            if r.run.down_secs > 0.0 {
                t.resumed += 1;
            }
            match r.run.duration_secs {
                Some(d) if r.run.outcome == "succeeded" => {
                    t.totals.push((d - r.run.down_secs).max(0.0))
                }
                _ => *t.left_out.entry(r.run.outcome.as_str()).or_default() += 1,
            }
            if let Some(w) = &r.window {
                t.window = Some(w.planned_secs);
            }
            for s in r.steps.iter().filter(|s| s.state == "succeeded") {
                if let Some(d) = active_secs(r, s) {
                    if !t.order.contains(&s.id) {
                        t.order.push(s.id.clone());
                    }
                    t.per_step.entry(s.id.clone()).or_default().push(d);
                }
            }
            for s in &r.steps {
                if let Some(d) = rollback_secs(s) {
                    t.rollbacks.entry(s.id.clone()).or_default().push(d);
                }
            }
        }
        t
    }
}

/// What was read, and the table's column heads.
fn heading(o: &mut String, journals: usize, names: &std::collections::BTreeSet<&str>) {
    let _ = writeln!(
        o,
        "rehearsal timing over {} journal(s) of {}",
        journals,
        names.iter().copied().collect::<Vec<_>>().join(", ")
    );
    if names.len() > 1 {
        let _ = writeln!(
            o,
            "note: these are journals of {} different runbooks; steps are matched by id",
            names.len()
        );
    }
    let _ = writeln!(
        o,
        "{:<28} {:>3} {:>10} {:>10} {:>10} {:>23}",
        "step", "n", "median", "p90", "max", "95% next run"
    );
}

/// One line of the table: a step's (or the total's) n, median, p90, max and interval.
fn row(o: &mut String, label: &str, s: &Summary) {
    let ci = match s.next95 {
        Some((a, b)) => format!("{} – {}", report_duration(a), report_duration(b)),
        None => "— (one run)".to_string(),
    };
    let _ = writeln!(
        o,
        "{:<28} {:>3} {:>10} {:>10} {:>10} {:>23}",
        label,
        s.n,
        report_duration(s.median),
        report_duration(s.p90),
        report_duration(s.max),
        ci
    );
}

/// A row per step in plan order; returns the steps seen more than once, for
/// [`varies_most`].
fn step_rows(o: &mut String, t: &Timings) -> Vec<(String, Summary)> {
    let mut varying = Vec::new();
    for id in &t.order {
        if let Some(s) = t.per_step.get(id).and_then(|v| summarize(v)) {
            row(o, id, &s);
            if s.n > 1 {
                varying.push((id.clone(), s));
            }
        }
    }
    varying
}

/// A row per rehearsed rollback (`↶ step`); returns the rollback path's p90:
/// the sum of every rehearsed rollback's p90, what turning back from the last
/// step that can be undone costs (`None` when no rehearsal rolled back).
fn rollback_rows(o: &mut String, t: &Timings) -> Option<f64> {
    if t.rollbacks.is_empty() {
        let _ = writeln!(
            o,
            "rollbacks: none rehearsed (roll back in a rehearsal to time the way back)"
        );
        return None;
    }
    let mut path = 0.0;
    for (id, v) in &t.rollbacks {
        if let Some(s) = summarize(v) {
            row(o, &format!("↶ {id}"), &s);
            path += s.p90;
        }
    }
    let _ = writeln!(
        o,
        "rollback path (sum of the rehearsed rollbacks' p90): {}",
        report_duration(path)
    );
    Some(path)
}

/// The window the rehearsals call for: the median run, plus a buffer for a
/// slow night (the 95% next-run bound above the median, or p90 with one run)
/// and for turning back at the end (the rollback path's p90).
fn buffer(o: &mut String, s: &Summary, rollback_p90: Option<f64>, window: Option<u64>) {
    let slow = s.next95.map(|(_, hi)| hi).unwrap_or(s.p90) - s.median;
    let slow = slow.max(0.0);
    let back = rollback_p90.unwrap_or(0.0);
    let recommended = s.median + slow + back;
    let _ = write!(
        o,
        "buffer: {} recommended over the median {} ({} for a slow run{}) → a window of at least {}",
        report_duration(slow + back),
        report_duration(s.median),
        report_duration(slow),
        match rollback_p90 {
            Some(b) => format!(", {} to roll back", report_duration(b)),
            None => ", rollback not rehearsed: not counted".to_string(),
        },
        report_duration(recommended)
    );
    match window {
        Some(w) if (w as f64) < recommended => {
            let _ = writeln!(
                o,
                "; the planned {} is SHORT by {}",
                report_duration(w as f64),
                report_duration(recommended - w as f64)
            );
        }
        Some(w) => {
            let _ = writeln!(
                o,
                "; the planned {} leaves {} more",
                report_duration(w as f64),
                report_duration(w as f64 - recommended)
            );
        }
        None => {
            let _ = writeln!(o);
        }
    }
}

/// Which runs the total counts, and what it leaves out.
fn counted(o: &mut String, t: &Timings) {
    let mut counted = format!("TOTAL counts the {} run(s) that succeeded", t.totals.len());
    if !t.left_out.is_empty() {
        let why: Vec<String> = t.left_out.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let _ = write!(counted, "; left out: {}", why.join(", "));
    }
    if t.resumed > 0 {
        let _ = write!(
            counted,
            "; {} run(s) were stopped and resumed: the time no ferry ran is not counted",
            t.resumed
        );
    }
    let _ = writeln!(o, "{counted}");
}

/// The total set against the planned window, with a verdict.
fn window_fit(o: &mut String, s: &Summary, window: Option<u64>) {
    let Some(w) = window else {
        let _ = writeln!(o, "window: none planned in the runbook");
        return;
    };
    let w = w as f64;
    let upper = s.next95.map(|(_, hi)| hi);
    let verdict = if s.max > w {
        "the slowest rehearsal did NOT fit"
    } else if upper.is_some_and(|u| u > w) {
        "every rehearsal fit, but the next run may not (95% interval)"
    } else if s.p90 > w * 0.8 {
        "fits, but with less than 20% to spare at p90"
    } else {
        "fits"
    };
    let _ = writeln!(
        o,
        "window {}: p90 uses {:.0}% of it, max {:.0}%{} — {verdict}",
        report_duration(w),
        s.p90 / w * 100.0,
        s.max / w * 100.0,
        upper
            .map(|u| format!(", 95% next-run bound {:.0}%", u / w * 100.0))
            .unwrap_or_default()
    );
}

/// The (up to) three steps whose spread costs the most time.
fn varies_most(o: &mut String, mut varying: Vec<(String, Summary)>, total: Option<&Summary>) {
    // what makes the total uncertain is spread in seconds, not in percent:
    // a 0.01 s step that varies 80% does not matter
    let floor = total.map(|t| t.median * 0.01).unwrap_or(0.0).max(0.05);
    varying.sort_by(|a, b| b.1.sd.total_cmp(&a.1.sd));
    let top: Vec<String> = varying
        .iter()
        .filter(|(_, s)| s.sd >= floor)
        .take(3)
        .map(|(id, s)| format!("{id} (sd {}, ±{:.0}%)", report_duration(s.sd), s.cv * 100.0))
        .collect();
    if !top.is_empty() {
        let _ = writeln!(o, "varies most: {}", top.join(", "));
    }
}

/// The same figures as [`render`], for scripts (`ferry stats --format json`,
/// `assets/stats.schema.json`). Seconds throughout.
pub fn json(reports: &[ReportModel]) -> serde_json::Value {
    use serde_json::json;
    let t = Timings::gather(reports);
    let summary = |s: &Summary| {
        json!({
            "n": s.n,
            "median_secs": s.median,
            "p90_secs": s.p90,
            "max_secs": s.max,
            "mean_secs": s.mean,
            "sd_secs": s.sd,
            "next95_secs": s.next95.map(|(a, b)| vec![a, b]),
        })
    };
    let steps: Vec<serde_json::Value> = t
        .order
        .iter()
        .filter_map(|id| {
            let s = t.per_step.get(id).and_then(|v| summarize(v))?;
            let mut v = summary(&s);
            v["step"] = json!(id);
            Some(v)
        })
        .collect();
    let total = summarize(&t.totals);
    let window = t.window.map(|w| {
        let w = w as f64;
        json!({
            "planned_secs": w,
            "p90_share": total.as_ref().map(|s| s.p90 / w),
            "max_share": total.as_ref().map(|s| s.max / w),
            "next95_upper_share": total.as_ref().and_then(|s| s.next95.map(|(_, hi)| hi / w)),
        })
    });
    json!({
        "schema_version": 1,
        "journals": reports.len(),
        "runbooks": t.names.iter().collect::<Vec<_>>(),
        "steps": steps,
        "total": total.as_ref().map(summary),
        "runs_counted": t.totals.len(),
        "left_out": t.left_out,
        "resumed": t.resumed,
        "window": window,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_values() {
        let s = summarize(&[10.0, 20.0, 30.0, 40.0, 50.0]).unwrap();
        assert_eq!(s.n, 5);
        assert_eq!(s.median, 30.0);
        assert!((s.p90 - 46.0).abs() < 1e-9);
        assert_eq!(s.max, 50.0);
        // mean 30, sd 15.811, t(4) 2.776, sqrt(1 + 1/5) 1.0954
        // -> half width 2.776 * 15.811 * 1.0954 = 48.08
        let (lo, hi) = s.next95.unwrap();
        assert!((s.sd - 15.811).abs() < 0.001, "{}", s.sd);
        assert!(lo == 0.0 && (hi - 78.08).abs() < 0.01, "{lo} {hi}");
        // three rehearsals of 40, 42 and 47 minutes (in seconds):
        // mean 2580, deviations -180 -60 240, sd sqrt(93600 / 2) = 216.33,
        // t(2) 4.303, sqrt(4/3) 1.1547 -> ± 1074.9
        let s = summarize(&[2400.0, 2520.0, 2820.0]).unwrap();
        let (lo, hi) = s.next95.unwrap();
        assert!((s.sd - 216.33).abs() < 0.01, "{}", s.sd);
        assert!(
            (lo - 1505.1).abs() < 0.1 && (hi - 3654.9).abs() < 0.1,
            "{lo} {hi}"
        );
    }

    #[test]
    fn t_quantiles_beyond_the_table_stay_above_z() {
        assert_eq!(t95(1), 12.706);
        assert_eq!(t95(30), 2.042);
        // t(40) = 2.021, t(60) = 2.000, t(120) = 1.980 (tables)
        assert!((t95(40) - 2.021).abs() < 0.001, "{}", t95(40));
        assert!((t95(60) - 2.000).abs() < 0.001, "{}", t95(60));
        assert!((t95(120) - 1.980).abs() < 0.001, "{}", t95(120));
    }

    #[test]
    fn one_run_has_no_interval() {
        let s = summarize(&[7.0]).unwrap();
        assert_eq!((s.median, s.p90, s.max, s.next95), (7.0, 7.0, 7.0, None));
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn the_table_counts_what_a_rehearsal_is_and_names_the_steps_that_cost_time() {
        use crate::journal::Entry;
        use crate::report::testkit::*;
        use crate::vocab::{Event, Outcome};
        // three good runs: `copy` takes 60, 90 and 120 s, `tiny` 1, 2 and 1 s
        // (its ±43% is more than copy's ±33%, but of nothing); the third run
        // was killed during `copy` and resumed 100 s later
        let good = |copy: i64, tiny: i64, crash: bool| {
            let mut e = vec![(0, header("rb")), (0, session(false)), (0, started("tiny"))];
            e.push((tiny, finished("tiny", ok())));
            e.push((3, started("copy")));
            let mut end = 3 + copy;
            if crash {
                e.push((
                    13,
                    Entry::Note {
                        step: None,
                        text: "last line".into(),
                    },
                ));
                e.push((113, session(true)));
                e.push((
                    113,
                    ev(Event::Interrupted {
                        steps: vec!["copy".into()],
                    }),
                ));
                end += 100;
            }
            e.push((end, finished("copy", ok())));
            e.push((end, closed(true)));
            model(e)
        };
        let mut runs = vec![good(60, 1, false), good(90, 2, false), good(120, 1, true)];
        // a failed run: its copy failed after 5 s and it never finished
        runs.push(model(vec![
            (0, header("rb")),
            (0, session(false)),
            (1, started("copy")),
            (6, finished("copy", Outcome::Failed { error: "x".into() })),
        ]));
        let t = render(&runs);
        let row = |id: &str| {
            t.lines()
                .find(|l| l.starts_with(id))
                .unwrap_or_else(|| panic!("no {id} row:\n{t}"))
                .to_string()
        };
        // copy: 60, 90, 120 (the 100 s stop is not copy time), not the failed 5 s
        let copy = row("copy");
        assert!(
            copy.contains("  3 ") && copy.contains("1m 30s") && copy.contains("2m 00s"),
            "{t}"
        );
        // mean 90, sd 30, t(2) 4.303 * 30 * sqrt(4/3) = 149.1 -> 0 .. 239.1
        assert!(copy.contains("0.0s – 3m 59s"), "{t}");
        // totals: 63, 93, 123 s of work; the failed run is left out
        let total = row("TOTAL");
        assert!(
            total.contains("  3 ") && total.contains("1m 33s") && total.contains("2m 03s"),
            "{t}"
        );
        assert!(t.contains("left out: 1 halted (unfinished)"), "{t}");
        assert!(t.contains("1 run(s) were stopped and resumed"), "{t}");
        assert!(t.contains("varies most: copy (sd 30.0s, ±33%)"), "{t}");
        assert!(
            !t.contains("varies most: tiny") && !t.contains(", tiny"),
            "{t}"
        );
        assert!(!t.contains("different runbooks"), "{t}");
        runs.push(model(vec![(0, header("other")), (0, session(false))]));
        assert!(render(&runs).contains("journals of 2 different runbooks"));
    }
}
