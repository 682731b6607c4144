//! Numbers as people read them, shared by the console, the verifier's texts and
//! the reports: `1,234,567`, `6.4 MiB`. Pure functions, no dependencies.

/// An integer with thousands separators: `1,234,567`, `-12,000`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
