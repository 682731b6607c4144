//! Canonical values of the generic path (SQLite on either side): each value read
//! from either engine becomes one text per column class, by the rules listed in
//! [`super::norm`], and rows of canonical values are hashed in this process.

use super::norm::Class;
use chrono::{DateTime, NaiveDateTime, Timelike};
use std::hash::{Hash, Hasher};

/// A value as read on the generic path.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(String),
    Blob(Vec<u8>),
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("\\x");
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A float as canonical decimal text.
pub fn real_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if f == 0.0 {
        "0".into()
    } else {
        format!("{f}")
    }
}

/// `-?digits[.digits]` with leading integer zeros and trailing fraction zeros
/// removed (`-0` is `0`), or `None` when `s` is not such a number.
pub fn decimal_text(s: &str) -> Option<String> {
    let t = s.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let mut out = String::new();
    if neg && !(int.is_empty() && frac.is_empty()) {
        out.push('-');
    }
    out.push_str(if int.is_empty() { "0" } else { int });
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    Some(out)
}

fn ts_text(n: NaiveDateTime) -> String {
    let mut s = n.format("%Y-%m-%d %H:%M:%S").to_string();
    let ns = n.nanosecond() % 1_000_000_000;
    if ns != 0 {
        let f = format!("{ns:09}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s
}

/// A timestamp text as ISO UTC without a zone, or `None` when it is not one.
pub fn timestamp_text(s: &str) -> Option<String> {
    let t = s.trim();
    let zoned = match t.strip_suffix(['Z', 'z']) {
        Some(x) => format!("{x}+00"),
        None => t.to_string(),
    };
    for f in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(dt) = DateTime::parse_from_str(&zoned, f) {
            return Some(ts_text(dt.naive_utc()));
        }
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return Some(ts_text(n));
        }
    }
    None
}

fn number(v: &Val) -> Option<String> {
    match v {
        Val::Int(i) => Some(i.to_string()),
        Val::Real(f) => Some(real_text(*f)),
        Val::Bool(b) => Some(if *b { "1" } else { "0" }.into()),
        _ => None,
    }
}

fn blob_as_text(b: Vec<u8>) -> String {
    match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => hex(e.as_bytes()),
    }
}

/// The canonical text of `v` in a column of class `class` (`None`: SQL NULL).
pub fn canon(class: Class, v: Val) -> Option<String> {
    if v == Val::Null {
        return None;
    }
    if let Some(n) = number(&v) {
        return Some(match (class, &v) {
            (Class::Bool, Val::Int(i)) => if *i != 0 { "1" } else { "0" }.into(),
            (Class::Bool, Val::Real(f)) => if *f != 0.0 { "1" } else { "0" }.into(),
            _ => n,
        });
    }
    Some(match (class, v) {
        (Class::Bytes, Val::Blob(b)) => hex(&b),
        (Class::Bytes, Val::Text(s)) => hex(s.as_bytes()),
        (Class::Int | Class::Numeric, Val::Text(s)) => decimal_text(&s).unwrap_or(s),
        (Class::Real, Val::Text(s)) => match s.trim().parse::<f64>() {
            Ok(f) => real_text(f),
            Err(_) => s,
        },
        (Class::Bool, Val::Text(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "on" | "1" => "1".into(),
            "f" | "false" | "no" | "off" | "0" => "0".into(),
            _ => s,
        },
        (Class::Timestamp, Val::Text(s)) => timestamp_text(&s).unwrap_or(s),
        (Class::Json, Val::Text(s)) => serde_json::from_str::<serde_json::Value>(&s)
            .map(|j| j.to_string())
            .unwrap_or(s),
        (Class::Any, Val::Blob(b)) => hex(&b),
        (_, Val::Blob(b)) => blob_as_text(b),
        (_, Val::Text(s)) => s,
        (_, _) => String::new(),
    })
}

/// The hash of a canonical row (generic path; both sides are hashed in this process).
pub fn row_hash(row: &[Option<String>]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    row.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lose_only_their_spelling() {
        assert_eq!(decimal_text("1.50").as_deref(), Some("1.5"));
        assert_eq!(decimal_text("-0.00").as_deref(), Some("0"));
        assert_eq!(decimal_text("007").as_deref(), Some("7"));
        assert_eq!(decimal_text("abc"), None);
        assert_eq!(decimal_text("1e5"), None);
        assert_eq!(canon(Class::Numeric, Val::Real(0.1)), Some("0.1".into()));
        assert_eq!(canon(Class::Real, Val::Real(2.0)), Some("2".into()));
        assert_eq!(
            canon(Class::Real, Val::Real(1e21)),
            Some("1000000000000000000000".into())
        );
        assert_eq!(
            canon(Class::Real, Val::Text("Infinity".into())),
            Some("Infinity".into())
        );
        assert_eq!(canon(Class::Real, Val::Real(f64::NAN)), Some("NaN".into()));
        assert_eq!(canon(Class::Int, Val::Text("12".into())), Some("12".into()));
    }

    #[test]
    fn booleans_blobs_nulls() {
        assert_eq!(canon(Class::Bool, Val::Bool(true)), Some("1".into()));
        assert_eq!(canon(Class::Bool, Val::Int(0)), Some("0".into()));
        assert_eq!(canon(Class::Bool, Val::Text("t".into())), Some("1".into()));
        assert_eq!(
            canon(Class::Bytes, Val::Blob(vec![0, 255])),
            Some("\\x00ff".into())
        );
        assert_eq!(canon(Class::Text, Val::Null), None);
        assert_eq!(
            canon(Class::Text, Val::Text(String::new())),
            Some(String::new())
        );
    }

    #[test]
    fn timestamps_become_utc_iso() {
        let want = Some("2024-03-01 10:00:00.5".to_string());
        assert_eq!(timestamp_text("2024-03-01 10:00:00.5+00"), want);
        assert_eq!(timestamp_text("2024-03-01T12:00:00.500+02:00"), want);
        assert_eq!(timestamp_text("2024-03-01T10:00:00.5Z"), want);
        assert_eq!(timestamp_text("2024-03-01 10:00:00.500"), want);
        assert_eq!(
            timestamp_text("2024-03-01 10:00:00.000001").as_deref(),
            Some("2024-03-01 10:00:00.000001")
        );
        assert_eq!(timestamp_text("infinity"), None);
    }

    #[test]
    fn json_is_reserialised() {
        assert_eq!(
            canon(Class::Json, Val::Text("{\"b\": 1, \"a\": [1, 2]}".into())),
            Some("{\"a\":[1,2],\"b\":1}".into())
        );
    }
}
