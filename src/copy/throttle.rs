//! The copy's `throttle`: a condition on a lag or metric monitor, checked between
//! chunks through a callback (the copy knows no monitors; whoever runs it passes in
//! how to read them). While it holds the workers pause; they resume when it clears.

use crate::runbook::{Compare, Condition};
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

/// Seconds, as short as is still exact enough: "42s", "1.5s".
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{s:.1}s")
    }
}

fn sign(c: Compare) -> &'static str {
    match c {
        Compare::Above => ">",
        Compare::Below => "<",
    }
}

/// A throttle check for `cond`, reading monitors through `lag` and `metric`.
/// A `sql` condition cannot throttle a copy (the runbook parser refuses it); it
/// never holds.
pub fn from_condition<L, M>(cond: Condition, lag: L, metric: M) -> ThrottleFn
where
    L: Fn(&str) -> Option<Duration> + Send + Sync + 'static,
    M: Fn(&str) -> Option<f64> + Send + Sync + 'static,
{
    Arc::new(move || match &cond {
        Condition::Lag {
            monitor,
            compare,
            threshold,
        } => match lag(monitor) {
            None => Throttle::Unknown(format!("lag monitor `{monitor}` has no value yet")),
            Some(v) => {
                let holds = match compare {
                    Compare::Above => v > *threshold,
                    Compare::Below => v < *threshold,
                };
                if holds {
                    Throttle::Hold(format!(
                        "lag {} {} {}",
                        secs(v),
                        sign(*compare),
                        secs(*threshold)
                    ))
                } else {
                    Throttle::Clear
                }
            }
        },
        Condition::Metric {
            monitor,
            compare,
            threshold,
        } => match metric(monitor) {
            None => Throttle::Unknown(format!("metric `{monitor}` has no value yet")),
            Some(v) => {
                let holds = match compare {
                    Compare::Above => v > *threshold,
                    Compare::Below => v < *threshold,
                };
                if holds {
                    Throttle::Hold(format!("{monitor} {v} {} {threshold}", sign(*compare)))
                } else {
                    Throttle::Clear
                }
            }
        },
        Condition::Sql { .. } => Throttle::Clear,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_throttle() {
        let cond = Condition::Lag {
            monitor: "replica".into(),
            compare: Compare::Above,
            threshold: Duration::from_secs(30),
        };
        let t = from_condition(cond.clone(), |_| Some(Duration::from_secs(42)), |_| None);
        assert_eq!(t(), Throttle::Hold("lag 42s > 30s".into()));
        let t = from_condition(
            cond.clone(),
            |_| Some(Duration::from_millis(1500)),
            |_| None,
        );
        assert_eq!(t(), Throttle::Clear);
        let t = from_condition(cond, |_| None, |_| None);
        assert!(matches!(t(), Throttle::Unknown(_)));
        let m = Condition::Metric {
            monitor: "cpu".into(),
            compare: Compare::Above,
            threshold: 90.0,
        };
        let t = from_condition(m, |_| None, |_| Some(95.5));
        assert_eq!(t(), Throttle::Hold("cpu 95.5 > 90".into()));
        assert_eq!(secs(Duration::from_millis(1500)), "1.5s");
    }
}
