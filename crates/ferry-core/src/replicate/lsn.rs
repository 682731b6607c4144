//! PostgreSQL WAL positions (`pg_lsn`, written `16/B374D848`) as numbers, so
//! ferry compares and subtracts them itself instead of trusting text order.

use std::fmt;

/// A WAL position: the byte offset in the write-ahead log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// `HI/LO` in hexadecimal, as PostgreSQL prints a `pg_lsn`.
    pub fn parse(text: &str) -> Option<Lsn> {
        let (hi, lo) = text.trim().split_once('/')?;
        let hi = u32::from_str_radix(hi, 16).ok()?;
        let lo = u32::from_str_radix(lo, 16).ok()?;
        Some(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }

    /// Bytes from `self` up to `to` (0 when `self` is already there).
    pub fn bytes_to(self, to: Lsn) -> u64 {
        to.0.saturating_sub(self.0)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

#[cfg(test)]
mod tests {
    use super::Lsn;

    #[test]
    fn parses_and_prints_like_postgres() {
        let l = Lsn::parse("16/B374D848").expect("an lsn");
        assert_eq!(l.0, 0x16_B374_D848);
        assert_eq!(l.to_string(), "16/B374D848");
        assert_eq!(Lsn::parse("0/0"), Some(Lsn(0)));
        assert_eq!(Lsn::parse("nonsense"), None);
        assert_eq!(Lsn::parse("1/G"), None);
    }

    #[test]
    fn orders_numerically_not_as_text() {
        // as text "0/9" > "0/10"; as positions it is the other way round
        let a = Lsn::parse("0/9").expect("a");
        let b = Lsn::parse("0/10").expect("b");
        assert!(a < b);
        assert_eq!(a.bytes_to(b), 7);
        assert_eq!(b.bytes_to(a), 0);
    }
}
