//! `ferry stats JOURNAL...`: rehearsal timing. Per step and in total: n,
//! median, p90, max and a 95% interval for the mean (Student's t), set against
//! the maintenance window, with the steps that vary most called out.

use super::fmt_duration;
use super::model::ReportModel;
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
    pub mean: f64,
    /// 95% interval for the mean; `None` with fewer than two runs.
    pub ci95: Option<(f64, f64)>,
    /// Coefficient of variation (sd / mean).
    pub cv: f64,
}

/// Two-sided 95% Student t quantiles for 1..=30 degrees of freedom.
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

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
    let ci95 = (n > 1).then(|| {
        let t = T95.get(n - 2).copied().unwrap_or(1.96);
        let half = t * sd / (n as f64).sqrt();
        ((mean - half).max(0.0), mean + half)
    });
    Some(Summary {
        n,
        median: percentile(&v, 0.5),
        p90: percentile(&v, 0.9),
        max: v[n - 1],
        mean,
        ci95,
        cv: if mean > 0.0 { sd / mean } else { 0.0 },
    })
}

/// The timing table over several reports of the same runbook.
pub fn render(reports: &[ReportModel]) -> String {
    let mut o = String::new();
    let mut per_step: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut totals = Vec::new();
    let mut window: Option<u64> = None;
    let names: std::collections::BTreeSet<&str> =
        reports.iter().map(|r| r.runbook.name.as_str()).collect();
    for r in reports {
        if let Some(d) = r.run.duration_secs {
            totals.push(d);
        }
        if let Some(w) = &r.window {
            window = Some(w.planned_secs);
        }
        for s in &r.steps {
            if let Some(d) = s.duration_secs {
                if !order.contains(&s.id) {
                    order.push(s.id.clone());
                }
                per_step.entry(s.id.clone()).or_default().push(d);
            }
        }
    }
    let _ = writeln!(
        o,
        "rehearsal timing over {} journal(s) of {}",
        reports.len(),
        names.into_iter().collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(
        o,
        "{:<28} {:>3} {:>10} {:>10} {:>10} {:>23}",
        "step", "n", "median", "p90", "max", "95% interval (mean)"
    );
    let fmt_ci = |s: &Summary| match s.ci95 {
        Some((a, b)) => format!("{} – {}", fmt_duration(a), fmt_duration(b)),
        None => "— (one run)".to_string(),
    };
    let mut varying: Vec<(String, f64)> = Vec::new();
    for id in &order {
        if let Some(s) = per_step.get(id).and_then(|v| summarize(v)) {
            let _ = writeln!(
                o,
                "{:<28} {:>3} {:>10} {:>10} {:>10} {:>23}",
                id,
                s.n,
                fmt_duration(s.median),
                fmt_duration(s.p90),
                fmt_duration(s.max),
                fmt_ci(&s)
            );
            if s.n > 1 {
                varying.push((id.clone(), s.cv));
            }
        }
    }
    if let Some(s) = summarize(&totals) {
        let _ = writeln!(
            o,
            "{:<28} {:>3} {:>10} {:>10} {:>10} {:>23}",
            "TOTAL",
            s.n,
            fmt_duration(s.median),
            fmt_duration(s.p90),
            fmt_duration(s.max),
            fmt_ci(&s)
        );
        match window {
            Some(w) => {
                let w = w as f64;
                let verdict = if s.max > w {
                    "the slowest rehearsal did NOT fit"
                } else if s.p90 > w * 0.8 {
                    "fits, but with less than 20% to spare at p90"
                } else {
                    "fits"
                };
                let _ = writeln!(
                    o,
                    "window {}: p90 uses {:.0}% of it, max {:.0}% — {verdict}",
                    fmt_duration(w),
                    s.p90 / w * 100.0,
                    s.max / w * 100.0
                );
            }
            None => {
                let _ = writeln!(o, "window: none planned in the runbook");
            }
        }
    }
    varying.sort_by(|a, b| b.1.total_cmp(&a.1));
    let top: Vec<String> = varying
        .iter()
        .take(3)
        .filter(|(_, cv)| *cv > 0.0)
        .map(|(id, cv)| format!("{id} (±{:.0}%)", cv * 100.0))
        .collect();
    if !top.is_empty() {
        let _ = writeln!(o, "varies most: {}", top.join(", "));
    }
    o
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
        // mean 30, sd 15.81, t(4) 2.776 -> half width 19.63
        let (lo, hi) = s.ci95.unwrap();
        assert!(
            (lo - 10.37).abs() < 0.01 && (hi - 49.63).abs() < 0.01,
            "{lo} {hi}"
        );
    }

    #[test]
    fn one_run_has_no_interval() {
        let s = summarize(&[7.0]).unwrap();
        assert_eq!((s.median, s.p90, s.max, s.ci95), (7.0, 7.0, 7.0, None));
        assert!(summarize(&[]).is_none());
    }
}
