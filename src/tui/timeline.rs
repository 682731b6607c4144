//! The rehearsal figures as people read them, the same words on the console's
//! timeline row, in its confirm dialog's evidence and in headless lines: each
//! step's rehearsed median/p90 and overrun, the projected end against the
//! window, and the rollback budget. The figures come from
//! [`ferry_core::engine::timeline`]; only the words are here.

use chrono::{DateTime, Utc};
use ferry_core::engine::timeline::{Budget, Projection, StepEta};
use ferry_core::units::screen_duration as dur;

/// How loudly a text should be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Quiet,
    Normal,
    Warn,
    Bad,
}

fn d(secs: f64) -> String {
    dur(secs.round() as i64)
}

fn at(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

/// A step's rehearsed median and p90: `~1m30s/2m00s`, and `⚠>p90` once it has
/// run longer than its p90.
pub fn step_text(e: &StepEta) -> Option<(String, Level)> {
    let t = e.timing?;
    let base = format!("~{}/{}", d(t.median_secs), d(t.p90_secs));
    Some(if e.overrun {
        (format!("{base} ⚠>p90"), Level::Bad)
    } else {
        (base, Level::Quiet)
    })
}

/// The projected end: `end ~02:41:10 (p90 02:55:00) · window ends 03:00:00`,
/// warning when the p90 end is past the window, bad when the median is.
pub fn end_text(p: &Projection) -> (String, Level) {
    let mut s = format!("end ~{} (p90 {})", at(p.end_median), at(p.end_p90));
    if !p.unrehearsed.is_empty() {
        s.push_str(&format!(" +{} unrehearsed", p.unrehearsed.len()));
    }
    let level = match p.window_end {
        Some(w) => {
            s.push_str(&format!(" · window ends {}", at(w)));
            if p.end_median > w {
                Level::Bad
            } else if p.end_p90 > w {
                Level::Warn
            } else {
                Level::Normal
            }
        }
        None => Level::Normal,
    };
    (s, level)
}

/// The rollback budget: window end − now − p90 of the rollback path from here.
pub fn budget_text(b: &Budget) -> (String, Level) {
    match b {
        Budget::NoWindow => ("rollback budget: no window planned".into(), Level::Quiet),
        Budget::PastPointOfNoReturn { step } => (
            format!("rollback budget: none, past the point of no return `{step}`"),
            Level::Quiet,
        ),
        Budget::Unknown { unrehearsed } => (
            format!(
                "rollback budget unknown: no rehearsal rolled back {}",
                unrehearsed
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Level::Warn,
        ),
        Budget::Known {
            secs,
            rollback_p90_secs,
            warn,
        } => {
            let path = format!("rollback p90 {}", d(*rollback_p90_secs));
            if *secs <= 0.0 {
                (
                    format!(
                        "✘ rollback no longer fits the window: short by {} ({path})",
                        d(-secs)
                    ),
                    Level::Bad,
                )
            } else if *warn {
                (
                    format!("⚠ rollback budget {} ({path})", d(*secs)),
                    Level::Warn,
                )
            } else {
                (
                    format!("rollback budget {} ({path})", d(*secs)),
                    Level::Normal,
                )
            }
        }
    }
}

/// The whole timeline in one line, for headless mode and the evidence.
pub fn line(p: &Projection) -> String {
    format!(
        "rehearsed ×{} · {} · {}",
        p.journals,
        end_text(p).0,
        budget_text(&p.budget).0
    )
}
