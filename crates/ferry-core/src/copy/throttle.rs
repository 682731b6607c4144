//! The copy's `throttle`: a condition on a lag or metric monitor, checked between
//! chunks through a callback (the copy knows no monitors; whoever runs it passes in
//! how to read them). While it holds the workers pause; they resume when it clears.

use crate::runbook::{Compare, Condition};
use crate::units::{number, short_secs};
use std::sync::Arc;
use std::time::Duration;

/// One look at the throttle condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Throttle {
    /// Go on.
    Clear,
    /// Pause; why, e.g. "lag 42s > 30s".
    Hold(String),
    /// The monitor has no value yet: go on, and say so once.
    Unknown(String),
}

pub type ThrottleFn = Arc<dyn Fn() -> Throttle + Send + Sync>;

/// What the throttle reads of a monitor (the caller maps its monitors to this).
#[derive(Debug, Clone, PartialEq)]
pub enum Look {
    /// A current value: seconds for lag.
    Value(f64),
    /// The monitor has not produced a value yet.
    Pending,
    /// The monitor had values but its source stopped answering or its last
    /// value is too old: why. The copy pauses, as a gate would not pass.
    Stale(String),
}

fn sign(c: Compare) -> &'static str {
    match c {
        Compare::Above => ">",
        Compare::Below => "<",
    }
}

/// A throttle check for `cond` over monitors that either have a value or not
/// yet (see [`from_looks`] for monitors that can also be stale).
pub fn from_condition<L, M>(cond: Condition, lag: L, metric: M) -> ThrottleFn
where
    L: Fn(&str) -> Option<Duration> + Send + Sync + 'static,
    M: Fn(&str) -> Option<f64> + Send + Sync + 'static,
{
    from_looks(
        cond,
        move |m| lag(m).map_or(Look::Pending, |d| Look::Value(d.as_secs_f64())),
        move |m| metric(m).map_or(Look::Pending, Look::Value),
    )
}

/// A throttle check for `cond`, reading monitors through `lag` (seconds) and
/// `metric`. A stale monitor holds the copy (a number that is no longer true
/// cannot clear it); one with no value yet lets it go on, and says so.
/// A `sql` condition cannot throttle a copy (the runbook parser refuses it); it
/// never holds.
pub fn from_looks<L, M>(cond: Condition, lag: L, metric: M) -> ThrottleFn
where
    L: Fn(&str) -> Look + Send + Sync + 'static,
    M: Fn(&str) -> Look + Send + Sync + 'static,
{
    Arc::new(move || {
        let (monitor, compare, look, threshold, show): (_, _, _, f64, fn(f64) -> String) =
            match &cond {
                Condition::Lag {
                    monitor,
                    compare,
                    threshold,
                } => (
                    monitor,
                    *compare,
                    lag(monitor),
                    threshold.as_secs_f64(),
                    |v| {
                        short_secs(Duration::try_from_secs_f64(v.max(0.0)).unwrap_or(Duration::MAX))
                    },
                ),
                Condition::Metric {
                    monitor,
                    compare,
                    threshold,
                } => (monitor, *compare, metric(monitor), *threshold, number),
                Condition::Sql { .. } | Condition::CaughtUp { .. } | Condition::Dms { .. } => {
                    return Throttle::Clear
                }
            };
        let what = match &cond {
            Condition::Lag { .. } => "lag".to_string(),
            _ => monitor.clone(),
        };
        match look {
            Look::Pending => Throttle::Unknown(format!("monitor `{monitor}` has no value yet")),
            Look::Stale(why) => Throttle::Hold(why),
            Look::Value(v) => {
                let holds = match compare {
                    Compare::Above => v > threshold,
                    Compare::Below => v < threshold,
                };
                if holds {
                    Throttle::Hold(format!(
                        "{what} {} {} {}",
                        show(v),
                        sign(compare),
                        show(threshold)
                    ))
                } else {
                    Throttle::Clear
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::short_secs as secs;

    #[test]
    fn lag_throttle() {
        let cond = Condition::Lag {
            monitor: "replica".into(),
            compare: Compare::Above,
            threshold: Duration::from_secs(30),
        };
        let t = from_condition(cond.clone(), |_| Some(Duration::from_secs(42)), |_| None);
        assert_eq!(t(), Throttle::Hold("lag 42s > 30s".into()));
        let t = from_looks(cond.clone(), |_| Look::Value(1.5), |_| Look::Pending);
        assert_eq!(t(), Throttle::Clear);
        let t = from_condition(cond.clone(), |_| None, |_| None);
        assert!(matches!(t(), Throttle::Unknown(_)));
        let m = Condition::Metric {
            monitor: "cpu".into(),
            compare: Compare::Above,
            threshold: 90.0,
        };
        let t = from_condition(m.clone(), |_| None, |_| Some(95.5));
        assert_eq!(t(), Throttle::Hold("cpu 95.50 > 90".into()));
        let t = from_looks(m, |_| Look::Pending, |_| Look::Value(95.123456789));
        assert_eq!(t(), Throttle::Hold("cpu 95.12 > 90".into()));
        assert_eq!(secs(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn a_stale_monitor_holds_the_copy() {
        // the last value said "go", but it is no longer true: pause, and say why
        let cond = Condition::Lag {
            monitor: "replica".into(),
            compare: Compare::Above,
            threshold: Duration::from_secs(30),
        };
        let why = "monitor `replica` is stale: connection refused (last good value 12s ago)";
        let t = from_looks(cond, move |_| Look::Stale(why.into()), |_| Look::Pending);
        assert_eq!(t(), Throttle::Hold(why.into()));
    }
}
