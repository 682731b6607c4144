//! Numbers as people read them, shared by the console, the engine's and the
//! copy's texts, `ferry check` and the reports: counts (`1,234,567`), sizes
//! (`6.4 MiB`), metric values (`15.96`), durations (`2m03s`, `4m 05s`) and the
//! report's timestamps. Pure functions, the one place these are spelled.
//!
//! Durations have several shapes on purpose, each named for where it is read:
//! the console's columns are narrow ([`screen_duration`]), the reports are read
//! at leisure ([`report_duration`]), `ferry check` echoes runbook settings
//! exactly ([`plan_duration`]). Golden files, snapshots and tmux tests compare
//! their text, so a change here is a change users see.

use chrono::{DateTime, Utc};
use std::time::Duration;

/// An integer with thousands separators: `1,234,567`, `-12,000`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// [`thousands`] for unsigned counts (saturating past `i64::MAX`).
pub fn count(n: u64) -> String {
    thousands(i64::try_from(n).unwrap_or(i64::MAX))
}

/// A size in binary units: `512 B`, `6.4 MiB`, `1.2 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// A compact number for the console's narrow columns: `950`, `48.0k`, `1.2M`, `3.4G`.
pub fn si(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() {
        "?".into()
    } else if a >= 1e9 {
        format!("{:.1}G", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if a >= 100.0 || x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// A metric value in the gate's and the throttle's texts: whole numbers stay
/// whole, others get two decimals (`95`, `15.96`).
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Seconds with one decimal, always: `0.4s`, `12.0s`. The wait gate's lag and
/// hold texts, and the short end of [`report_duration`] and [`screen_lag`].
pub fn seconds(secs: f64) -> String {
    format!("{secs:.1}s")
}

/// Seconds, as short as is still exact enough: `42s`, `1.5s`. The copy's
/// throttle texts and its retry waits.
pub fn short_secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        seconds(d.as_secs_f64())
    }
}

/// A duration in the console's narrow columns, two units at most:
/// `45s`, `2m03s`, `1h18m`, `3d04h`. Negative reads as `0s`.
pub fn screen_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Seconds of lag in the console: `0.4s`, `12.0s`, then as
/// [`screen_duration`] from a minute on (`2m05s`); `?` when not a number.
pub fn screen_lag(secs: f64) -> String {
    if !secs.is_finite() {
        return "?".into();
    }
    if secs < 60.0 {
        seconds(secs)
    } else {
        screen_duration(secs.round() as i64)
    }
}

/// A clock-style duration for the console's ETAs: `00:41`, `12:05`, `1:02:03`.
pub fn clock(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, (secs % 3600) / 60, secs % 60)
    } else {
        format!("{:02}:{:02}", secs / 60, secs % 60)
    }
}

/// How old a monitor's last good value is, in its stale texts: `4s`, `2m05s`,
/// `5h03m`. As [`screen_duration`] but in hours past a day (`100h00m`), as the
/// journal has always recorded it.
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    if s < 86_400 {
        screen_duration(s as i64)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// A duration in the reports, read at leisure: `12.3s`, `4m 05s`, `1h 02m 03s`.
pub fn report_duration(secs: f64) -> String {
    if secs < 60.0 {
        return seconds(secs);
    }
    let s = secs.round() as u64;
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else {
        format!("{m}m {s:02}s")
    }
}

/// A runbook setting as `ferry check` echoes it, every unit that is there and
/// nothing rounded: `90s` is `1m 30s`, `1320h` is `55d`, `250ms` stays `250ms`
/// (humantime would say `1month 25days 13h 26m 24s` for `1320h`).
pub fn plan_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.subsec_millis());
    }
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            parts.push(format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    let ms = d.subsec_millis();
    if ms > 0 {
        parts.push(format!("{ms}ms"));
    }
    parts.join(" ")
}

/// A moment in the reports' headers and notes: `2026-03-01 02:00:00 UTC`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn counts_and_sizes_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-12_000), "-12,000");
        assert_eq!(count(u64::MAX), "9,223,372,036,854,775,807");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(6_754_079), "6.4 MiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[rstest]
    #[case(0, "0")]
    #[case(7, "7")]
    #[case(999, "999")]
    #[case(1_000, "1,000")]
    #[case(-1_200, "-1,200")]
    #[case(1_234_567, "1,234,567")]
    #[case(i64::MIN, "-9,223,372,036,854,775,808")]
    fn thousands_table(#[case] n: i64, #[case] want: &str) {
        assert_eq!(thousands(n), want);
    }

    #[rstest]
    #[case(0, "0")]
    #[case(12_345, "12,345")]
    #[case(u64::MAX, "9,223,372,036,854,775,807")]
    fn count_table(#[case] n: u64, #[case] want: &str) {
        assert_eq!(count(n), want);
    }

    #[rstest]
    #[case(0, "0 B")]
    #[case(1023, "1023 B")]
    #[case(1024, "1.0 KiB")]
    #[case(1536, "1.5 KiB")]
    #[case(6_754_079, "6.4 MiB")]
    #[case(3 * 1024 * 1024 * 1024, "3.0 GiB")]
    #[case(5 * 1024u64.pow(4), "5.0 TiB")]
    #[case(2 * 1024u64.pow(5), "2.0 PiB")]
    #[case(2048 * 1024u64.pow(5), "2048.0 PiB")]
    fn bytes_table(#[case] n: u64, #[case] want: &str) {
        assert_eq!(bytes(n), want);
    }

    #[rstest]
    #[case(0.0, "0")]
    #[case(950.0, "950")]
    #[case(12.5, "12.5")]
    #[case(150.4, "150")]
    #[case(9_999.0, "9999")]
    #[case(48_000.0, "48.0k")]
    #[case(1_234_567.0, "1.2M")]
    #[case(3.4e9, "3.4G")]
    #[case(-2.5e6, "-2.5M")]
    #[case(f64::NAN, "?")]
    #[case(f64::INFINITY, "?")]
    fn si_table(#[case] x: f64, #[case] want: &str) {
        assert_eq!(si(x), want);
    }

    #[rstest]
    #[case(0.0, "0")]
    #[case(95.0, "95")]
    #[case(-3.0, "-3")]
    #[case(95.5, "95.50")]
    #[case(15.962611859698635, "15.96")]
    #[case(95.123456789, "95.12")]
    #[case(1e15, "1000000000000000.00")]
    fn number_table(#[case] v: f64, #[case] want: &str) {
        assert_eq!(number(v), want);
    }

    #[rstest]
    #[case(0.0, "0.0s")]
    #[case(0.44, "0.4s")]
    #[case(12.0, "12.0s")]
    #[case(59.94, "59.9s")]
    #[case(125.0, "125.0s")]
    fn seconds_table(#[case] s: f64, #[case] want: &str) {
        assert_eq!(seconds(s), want);
    }

    #[rstest]
    #[case(Duration::ZERO, "0s")]
    #[case(Duration::from_secs(42), "42s")]
    #[case(Duration::from_millis(1500), "1.5s")]
    #[case(Duration::from_millis(1040), "1.0s")]
    #[case(Duration::from_millis(200), "0.2s")]
    #[case(Duration::from_secs(600), "600s")]
    #[case(Duration::new(3, 999_999), "3s")]
    fn short_secs_table(#[case] d: Duration, #[case] want: &str) {
        assert_eq!(short_secs(d), want);
    }

    #[rstest]
    #[case(-5, "0s")]
    #[case(0, "0s")]
    #[case(45, "45s")]
    #[case(59, "59s")]
    #[case(60, "1m00s")]
    #[case(123, "2m03s")]
    #[case(3599, "59m59s")]
    #[case(3600, "1h00m")]
    #[case(4680, "1h18m")]
    #[case(86_399, "23h59m")]
    #[case(86_400, "1d00h")]
    #[case(273_600, "3d04h")]
    fn screen_duration_table(#[case] s: i64, #[case] want: &str) {
        assert_eq!(screen_duration(s), want);
    }

    #[rstest]
    #[case(0.0, "0.0s")]
    #[case(1.44, "1.4s")]
    #[case(59.9, "59.9s")]
    #[case(60.0, "1m00s")]
    #[case(125.0, "2m05s")]
    #[case(7_300.4, "2h01m")]
    #[case(-1.0, "-1.0s")]
    #[case(f64::NAN, "?")]
    #[case(f64::INFINITY, "?")]
    fn screen_lag_table(#[case] s: f64, #[case] want: &str) {
        assert_eq!(screen_lag(s), want);
    }

    #[rstest]
    #[case(0, "00:00")]
    #[case(41, "00:41")]
    #[case(725, "12:05")]
    #[case(3599, "59:59")]
    #[case(3600, "1:00:00")]
    #[case(3723, "1:02:03")]
    #[case(90_000, "25:00:00")]
    fn clock_table(#[case] s: u64, #[case] want: &str) {
        assert_eq!(clock(s), want);
    }

    #[rstest]
    #[case(Duration::from_millis(900), "0s")]
    #[case(Duration::from_secs(4), "4s")]
    #[case(Duration::from_secs(125), "2m05s")]
    #[case(Duration::from_secs(5 * 3600 + 180), "5h03m")]
    #[case(Duration::from_secs(86_399), "23h59m")]
    #[case(Duration::from_secs(100 * 3600), "100h00m")]
    fn age_table(#[case] d: Duration, #[case] want: &str) {
        assert_eq!(age(d), want);
    }

    #[rstest]
    #[case(0.0, "0.0s")]
    #[case(12.34, "12.3s")]
    #[case(59.9, "59.9s")]
    #[case(60.0, "1m 00s")]
    #[case(245.0, "4m 05s")]
    #[case(3599.6, "1h 00m 00s")]
    #[case(3723.0, "1h 02m 03s")]
    #[case(90_061.0, "25h 01m 01s")]
    fn report_duration_table(#[case] s: f64, #[case] want: &str) {
        assert_eq!(report_duration(s), want);
    }

    #[rstest]
    #[case(Duration::ZERO, "0ms")]
    #[case(Duration::from_millis(250), "250ms")]
    #[case(Duration::from_secs(1), "1s")]
    #[case(Duration::from_secs(90), "1m 30s")]
    #[case(Duration::from_millis(90_500), "1m 30s 500ms")]
    #[case(Duration::from_secs(3600), "1h")]
    #[case(Duration::from_secs(3661), "1h 1m 1s")]
    #[case(Duration::from_secs(1320 * 3600), "55d")]
    #[case(Duration::from_secs(86_400 + 60), "1d 1m")]
    fn plan_duration_table(#[case] d: Duration, #[case] want: &str) {
        assert_eq!(plan_duration(d), want);
    }

    #[rstest]
    #[case("2026-03-01T02:00:00Z", "2026-03-01 02:00:00 UTC")]
    #[case("2026-12-31T23:59:59.999Z", "2026-12-31 23:59:59 UTC")]
    fn timestamp_table(#[case] t: &str, #[case] want: &str) {
        let t: DateTime<Utc> = t.parse().unwrap();
        assert_eq!(timestamp(t), want);
    }
}
