//! ETAs of long steps from what the rehearsals measured, not catalog estimates:
//! a copy's rows left per table over that table's rehearsed rows per second,
//! the tables overlapping as much as they did in the rehearsals; where no
//! rehearsal copied a table, the live rate; where no per-table figure exists
//! at all (a verify, a copy of other tables), the step's rehearsed rate over
//! its whole duration; with no rehearsal, the live rate the step reported.
//!
//! Pure: the driver applies it to each progress a step reports, so the screen,
//! headless mode and the journal carry the same figure and its [`EtaBasis`].

use crate::vocab::rehearsal::{CopyRates, Rehearsal};
use crate::vocab::{EtaBasis, Progress};

/// An ETA and what it was worked out from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eta {
    pub secs: u64,
    pub basis: EtaBasis,
}

/// Set `p`'s ETA (and its basis) for step `step` from the rehearsals, when they
/// have a figure for it; otherwise keep the step's own (live) one.
pub fn apply(step: &str, p: &mut Progress, r: Option<&Rehearsal>) {
    if let Some(e) = estimate(step, p, r) {
        p.eta_secs = Some(e.secs);
        p.eta_basis = Some(e.basis);
    } else if p.eta_secs.is_some() && p.eta_basis.is_none() {
        p.eta_basis = Some(EtaBasis::LiveRate);
    }
}

/// The ETA of `p` from the rehearsals, or `None` when they have no figure for it.
pub fn estimate(step: &str, p: &Progress, r: Option<&Rehearsal>) -> Option<Eta> {
    let r = r?;
    if let Some(e) = r.copies.get(step).and_then(|c| per_table(p, c)) {
        return Some(e);
    }
    let rate = r.rates.get(step)?;
    let total = p.total?;
    (rate.unit == p.unit && rate.per_sec > 0.0).then(|| Eta {
        secs: whole(total.saturating_sub(p.done) as f64 / rate.per_sec),
        basis: EtaBasis::RehearsedStepRate,
    })
}

/// Seconds, rounded up: an unfinished step never shows 0.
fn whole(s: f64) -> u64 {
    if s.is_finite() {
        s.max(0.0).ceil() as u64
    } else {
        u64::MAX
    }
}

/// A copy's ETA from its tables' rehearsed rates: each table left alone would
/// take `rows left / rows per second`; copied `overlap` at a time they take
/// their sum over `overlap`, and never less than the longest of them.
fn per_table(p: &Progress, c: &CopyRates) -> Option<Eta> {
    let (mut sum, mut longest) = (0.0_f64, 0.0_f64);
    let (mut rehearsed, mut live) = (false, false);
    for item in p.items.iter().filter(|i| i.state != "done") {
        let known = c.tables.get(&item.name).filter(|t| t.rows_per_sec > 0.0);
        // the live total is a catalog estimate until the table is done; with none,
        // the rows the rehearsals copied
        let total = item
            .total
            .or_else(|| known.map(|t| t.rows.round() as u64))
            .unwrap_or(item.done);
        let left = total.saturating_sub(item.done) as f64;
        if left == 0.0 {
            continue;
        }
        let secs = match (known, p.rate.filter(|r| *r > 0.0)) {
            (Some(t), _) => {
                rehearsed = true;
                left / t.rows_per_sec
            }
            (None, Some(rate)) => {
                live = true;
                left / rate
            }
            // a table with neither figure: no honest ETA from the tables
            (None, None) => return None,
        };
        sum += secs;
        longest = longest.max(secs);
    }
    if !rehearsed {
        return None;
    }
    Some(Eta {
        secs: whole(longest.max(sum / c.overlap.max(1.0))),
        basis: if live {
            EtaBasis::Mixed
        } else {
            EtaBasis::RehearsedRates
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::rehearsal::{StepRate, TableRate};
    use crate::vocab::ProgressItem;
    use rstest::rstest;

    fn item(name: &str, done: u64, total: Option<u64>, state: &str) -> ProgressItem {
        ProgressItem {
            name: name.into(),
            done,
            total,
            state: state.into(),
        }
    }

    fn progress(items: Vec<ProgressItem>, rate: Option<f64>) -> Progress {
        let done = items.iter().map(|i| i.done).sum();
        let total = items.iter().map(|i| i.total.unwrap_or(i.done)).sum();
        Progress {
            done,
            total: Some(total),
            unit: "rows".into(),
            rate,
            eta_secs: rate.map(|r| ((total - done) as f64 / r) as u64),
            eta_basis: None,
            bytes: None,
            items,
            note: None,
            catch_up: None,
        }
    }

    fn rate(rows_per_sec: f64) -> TableRate {
        TableRate {
            n: 5,
            rows_per_sec,
            bytes_per_sec: rows_per_sec * 100.0,
            rows: 10_000.0,
        }
    }

    fn rehearsal(overlap: f64) -> Rehearsal {
        Rehearsal {
            journals: 5,
            copies: [(
                "copy".to_string(),
                CopyRates {
                    tables: [
                        ("public.a".to_string(), rate(1000.0)),
                        ("public.b".to_string(), rate(500.0)),
                    ]
                    .into_iter()
                    .collect(),
                    overlap,
                },
            )]
            .into_iter()
            .collect(),
            rates: [(
                "verify".to_string(),
                StepRate {
                    n: 5,
                    unit: "rows".into(),
                    per_sec: 2000.0,
                },
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        }
    }

    /// a: 10 s left at 1000 rows/s, b: 20 s left at 500 rows/s.
    #[rstest]
    // copied one after the other in the rehearsals: the times add up
    #[case(1.0, 30)]
    // two at a time: the sum halves, but never below the longest table
    #[case(2.0, 20)]
    #[case(1.5, 20)]
    // overlap under 1 is read as 1
    #[case(0.5, 30)]
    fn parallel_tables_overlap_as_they_did_in_the_rehearsals(
        #[case] overlap: f64,
        #[case] want: u64,
    ) {
        let p = progress(
            vec![
                item("public.a", 0, Some(10_000), "running"),
                item("public.b", 5_000, Some(15_000), "running"),
                item("public.c", 7, Some(7), "done"),
            ],
            // a live rate that says otherwise is not used
            Some(50.0),
        );
        assert_eq!(
            estimate("copy", &p, Some(&rehearsal(overlap))),
            Some(Eta {
                secs: want,
                basis: EtaBasis::RehearsedRates
            })
        );
    }

    #[test]
    fn a_table_no_rehearsal_copied_takes_the_live_rate_and_says_mixed() {
        let p = progress(
            vec![
                item("public.a", 5_000, Some(10_000), "running"),
                item("public.new", 0, Some(4_000), "pending"),
            ],
            Some(200.0),
        );
        // 5 s + 20 s, one at a time
        assert_eq!(
            estimate("copy", &p, Some(&rehearsal(1.0))),
            Some(Eta {
                secs: 25,
                basis: EtaBasis::Mixed
            })
        );
        // without a live rate there is no per-table figure for it: no ETA from the tables
        let mut still = p.clone();
        still.rate = None;
        assert_eq!(estimate("copy", &still, Some(&rehearsal(1.0))), None);
    }

    #[test]
    fn a_table_without_a_live_total_is_sized_by_the_rehearsals() {
        let p = progress(vec![item("public.a", 4_000, None, "running")], None);
        // 10 000 rows rehearsed, 4 000 done, 1000 rows/s
        assert_eq!(
            estimate("copy", &p, Some(&rehearsal(1.0))).map(|e| e.secs),
            Some(6)
        );
    }

    #[test]
    fn a_step_with_no_table_figure_takes_the_rehearsed_step_rate() {
        let mut p = progress(vec![item("public.a", 1_000, Some(10_000), "running")], None);
        // 9 000 rows left at 2000 rows/s
        apply("verify", &mut p, Some(&rehearsal(1.0)));
        assert_eq!(
            (p.eta_secs, p.eta_basis),
            (Some(5), Some(EtaBasis::RehearsedStepRate))
        );
        // a rate of another unit says nothing about this progress
        let mut chunks = p.clone();
        chunks.unit = "chunks".into();
        assert_eq!(estimate("verify", &chunks, Some(&rehearsal(1.0))), None);
    }

    #[test]
    fn without_rehearsals_the_live_eta_stays_and_says_so() {
        let mut p = progress(
            vec![item("public.a", 1_000, Some(3_000), "running")],
            Some(100.0),
        );
        apply("copy", &mut p, None);
        assert_eq!(
            (p.eta_secs, p.eta_basis),
            (Some(20), Some(EtaBasis::LiveRate))
        );
        // a step the rehearsals have nothing on keeps it too
        let mut other = p.clone();
        apply("elsewhere", &mut other, Some(&rehearsal(1.0)));
        assert_eq!(other, p);
        // and no ETA at all stays none
        let mut none = progress(vec![item("public.a", 0, Some(3_000), "running")], None);
        apply("copy-x", &mut none, Some(&rehearsal(1.0)));
        assert_eq!((none.eta_secs, none.eta_basis), (None, None));
    }

    #[test]
    fn a_finished_copy_has_nothing_left() {
        let p = progress(
            vec![
                item("public.a", 10_000, Some(10_000), "done"),
                item("public.b", 9_000, Some(9_000), "running"),
            ],
            None,
        );
        // only zero-row remainders: nothing rehearsed is used, nothing claimed
        assert_eq!(estimate("copy", &p, Some(&rehearsal(1.0))), None);
    }
}
