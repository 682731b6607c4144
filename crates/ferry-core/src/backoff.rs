//! Capped exponential backoff, the one rule every retry loop of ferry waits by: the
//! first wait after a failure, doubled after each further failure, never more than a
//! cap. [`jittered`] takes a random part off each wait, for calls to AWS: clients
//! that failed together (a throttle, an endpoint coming back) then do not all call
//! again at the same instant (AWS's advice on retries). The randomness needs no
//! crate: a xorshift generator seeded from the clock and the process id, which is
//! plenty to spread a few callers apart.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The wait after failed attempt `n` (1-based; 0 counts as 1): `first`, doubled
/// after each further failure, at most `cap`.
pub fn capped(first: Duration, n: u32, cap: Duration) -> Duration {
    let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
    first.checked_mul(factor).unwrap_or(cap).min(cap)
}

/// [`capped`] less a random part of up to half of it: between half the capped wait
/// and the capped wait, in whole milliseconds.
pub fn jittered(first: Duration, n: u32, cap: Duration) -> Duration {
    jitter(capped(first, n, cap), next_random())
}

/// `wait` less up to half of it, by `random` (0 takes off half, `u64::MAX` nothing),
/// rounded down to whole milliseconds but never below half of `wait`.
pub fn jitter(wait: Duration, random: u64) -> Duration {
    let half = wait / 2;
    let span = wait - half;
    let extra = (span.as_nanos() * u128::from(random)) >> 64;
    let ms = (half.as_nanos() + extra) / 1_000_000;
    let rounded = Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
    rounded.max(half).min(wait)
}

/// The generator's state; 0 until the first call seeds it.
static STATE: AtomicU64 = AtomicU64::new(0);

/// The next number of a xorshift64 generator. Two threads racing may draw the same
/// number, which only makes two waits equal: harmless for spreading retries.
fn next_random() -> u64 {
    let mut x = STATE.load(Relaxed);
    if x == 0 {
        x = seed();
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Relaxed);
    x
}

/// A nonzero seed from the current time and the process id.
fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (nanos ^ (u64::from(std::process::id()) << 32)) | 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[rstest]
    #[case::first_attempt(500, 1, 10_000, 500)]
    #[case::zero_counts_as_first(500, 0, 10_000, 500)]
    #[case::doubles(500, 2, 10_000, 1_000)]
    #[case::doubles_again(500, 4, 10_000, 4_000)]
    #[case::reaches_the_cap(500, 6, 10_000, 10_000)]
    #[case::stays_at_the_cap(500, 7, 10_000, 10_000)]
    #[case::no_overflow_on_a_huge_attempt(500, u32::MAX, 10_000, 10_000)]
    #[case::a_first_wait_over_the_cap_is_capped(120_000, 1, 60_000, 60_000)]
    #[case::zero_stays_zero(0, 9, 60_000, 0)]
    fn capped_doubles_from_first_up_to_the_cap(
        #[case] first: u64,
        #[case] n: u32,
        #[case] cap: u64,
        #[case] want: u64,
    ) {
        assert_eq!(capped(MS(first), n, MS(cap)), MS(want));
    }

    #[rstest]
    #[case::nothing_taken_off(u64::MAX, 20_000)]
    #[case::half_taken_off(0, 10_000)]
    #[case::about_a_quarter_off(u64::MAX / 2, 15_000)]
    fn jitter_takes_off_up_to_half(#[case] random: u64, #[case] want_ms: u64) {
        let got = jitter(Duration::from_secs(20), random);
        assert!(
            got.as_millis().abs_diff(u128::from(want_ms)) <= 1,
            "{got:?}"
        );
    }

    #[test]
    fn jittered_waits_stay_within_half_and_all_of_the_capped_wait() {
        let mut seen = std::collections::HashSet::new();
        for n in 1..=8 {
            let full = capped(Duration::from_secs(10), n, Duration::from_secs(60));
            for _ in 0..200 {
                let w = jittered(Duration::from_secs(10), n, Duration::from_secs(60));
                assert!(
                    w >= full / 2 && w <= full,
                    "{w:?} outside [{:?}, {full:?}]",
                    full / 2
                );
                assert_eq!(
                    w.subsec_nanos() % 1_000_000,
                    0,
                    "{w:?} is not whole milliseconds"
                );
                seen.insert(w);
            }
        }
        assert!(
            seen.len() > 50,
            "the waits hardly vary: {} distinct",
            seen.len()
        );
    }

    #[test]
    fn odd_and_tiny_waits_stay_within_bounds() {
        for ns in [0u64, 1, 3, 999_999, 1_000_001, 1_500_000] {
            let wait = Duration::from_nanos(ns);
            for r in [0, 1, u64::MAX / 3, u64::MAX] {
                let w = jitter(wait, r);
                assert!(w >= wait / 2 && w <= wait, "{w:?} for {wait:?}");
            }
        }
    }
}
