//! One canonical text per value across MySQL and PostgreSQL, computed by ferry on
//! both sides (the engines' own hashes and text forms have nothing in common).
//!
//! - **The MySQL side** is read as the copy reads it and turned into the text the
//!   copy writes into PostgreSQL ([`crate::db::mysql_values::ColPlan::write`], the
//!   mapping of docs/mysql.md), then made canonical by the PostgreSQL column's
//!   type. A value the copy refuses (a zero date, an unsigned BIGINT beyond
//!   `bigint`, more digits than the target's scale) keeps MySQL's own text followed
//!   by `(cannot be carried: why)`, so it never equals what the target holds.
//! - **The PostgreSQL side** is read as text under the verify session's settings
//!   (UTC, ISO dates, `extra_float_digits = 3`, hex `bytea`), and made canonical by
//!   the same rules.
//!
//! The canonical form removes what differs between engines, never what differs
//! between data ([`Form::canon`]): trailing fractional zeros of a decimal, a
//! timestamp's fraction zeros and zone (both read in UTC), a float's spelling (both
//! parsed to the same bits: `3.4028235e38` and `3.4028235e+38` are one `real`), a
//! `char(n)` column's padding (PostgreSQL ignores it), `t` and `true`, JSON key
//! order and spacing, `{"a","b"}` and `{a,b}` for arrays, hex case of bytes and
//! uuids, and `00:00:01.000000` against `00:00:01` for times and intervals.

use super::canon::{decimal_text, timestamp_text};
use crate::db::catalog::Column;
use crate::db::mysql_values::{Carried, ColPlan, Raw};
use crate::runbook::ZeroDates;

/// How a PostgreSQL column's text is made canonical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Int,
    Bool,
    Numeric,
    Real,
    Double,
    Text,
    /// `character(n)`: trailing spaces are padding.
    Char,
    Timestamp,
    /// `time`, `interval`: a signed duration.
    Duration,
    Json,
    Bytes,
    Uuid,
    TextArray,
    /// Anything else (`date`, `bit`, enums, `citext`...): the text as it is.
    Other,
}

impl Form {
    /// The form of PostgreSQL column `pg`.
    pub fn of(pg: &Column) -> Form {
        match pg.cast_type.as_str() {
            "smallint" | "integer" | "bigint" => Form::Int,
            "boolean" => Form::Bool,
            "numeric" => Form::Numeric,
            "real" => Form::Real,
            "double precision" => Form::Double,
            "character" => Form::Char,
            "text" | "character varying" => Form::Text,
            "timestamp without time zone" | "timestamp with time zone" => Form::Timestamp,
            "time without time zone" | "interval" => Form::Duration,
            "json" | "jsonb" => Form::Json,
            "bytea" => Form::Bytes,
            "uuid" => Form::Uuid,
            "text[]" | "character varying[]" => Form::TextArray,
            _ => Form::Other,
        }
    }

    /// The canonical text of `t` (a value of this form); text that is not what the
    /// form expects is kept as it is.
    pub fn canon(self, t: String) -> String {
        match self {
            Form::Int | Form::Numeric => decimal_text(&t).unwrap_or(t),
            Form::Bool => match t.as_str() {
                "t" | "true" => "true".into(),
                "f" | "false" => "false".into(),
                _ => t,
            },
            Form::Real => float(&t, |s| s.parse::<f32>().ok().map(|x| format!("{x:?}"))),
            Form::Double => float(&t, |s| s.parse::<f64>().ok().map(|x| format!("{x:?}"))),
            Form::Char => t.trim_end_matches(' ').to_string(),
            Form::Timestamp => {
                let full = if t.len() == 10 && t.as_bytes().get(4) == Some(&b'-') {
                    format!("{t} 00:00:00")
                } else {
                    t.clone()
                };
                timestamp_text(&full).unwrap_or(t)
            }
            Form::Duration => duration(&t).map(duration_text).unwrap_or(t),
            Form::Json => match serde_json::from_str::<serde_json::Value>(&t) {
                Ok(v) => {
                    let mut out = String::new();
                    json(&v, &mut out);
                    out
                }
                Err(_) => t,
            },
            Form::Bytes | Form::Uuid => t.to_ascii_lowercase(),
            Form::TextArray => array(&t).map(array_text).unwrap_or(t),
            Form::Text | Form::Other => t,
        }
    }
}

/// A float's text through its bits (`NaN`, `Infinity`, `-Infinity` as PostgreSQL
/// spells them).
fn float(t: &str, parse: impl Fn(&str) -> Option<String>) -> String {
    match t {
        "NaN" => "NaN".into(),
        "Infinity" | "inf" => "Infinity".into(),
        "-Infinity" | "-inf" => "-Infinity".into(),
        _ => parse(t).unwrap_or_else(|| t.to_string()),
    }
}

/// Microseconds of `[-]H:MM:SS[.f]`, with PostgreSQL's `N day(s)` before it.
fn duration(t: &str) -> Option<i128> {
    let mut total: i128 = 0;
    let mut words = t.split_whitespace().peekable();
    let mut seen = false;
    while let Some(w) = words.next() {
        if let Some(unit) = words.peek().copied() {
            if unit == "day" || unit == "days" {
                let days: i128 = w.parse().ok()?;
                total += days * 86_400_000_000;
                words.next();
                seen = true;
                continue;
            }
        }
        let (neg, body) = match w.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, w.strip_prefix('+').unwrap_or(w)),
        };
        let mut parts = body.split(':');
        let h: i128 = parts.next()?.parse().ok()?;
        let m: i128 = parts.next()?.parse().ok()?;
        let sec = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let (s, frac) = sec.split_once('.').unwrap_or((sec, ""));
        let s: i128 = s.parse().ok()?;
        if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let us: i128 = format!("{frac:0<6}").parse().ok()?;
        let v = ((h * 60 + m) * 60 + s) * 1_000_000 + us;
        total += if neg { -v } else { v };
        seen = true;
    }
    seen.then_some(total)
}

fn duration_text(us: i128) -> String {
    let sign = if us < 0 { "-" } else { "" };
    let a = us.abs();
    let (secs, frac) = (a / 1_000_000, a % 1_000_000);
    let mut out = format!(
        "{sign}{}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac != 0 {
        out.push('.');
        out.push_str(format!("{frac:06}").trim_end_matches('0'));
    }
    out
}

/// JSON with object keys sorted, no spaces, numbers by value.
fn json(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push(':');
                if let Some(x) = m.get(k) {
                    json(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json(x, out);
            }
            out.push(']');
        }
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else if let Some(f) = n.as_f64() {
                out.push_str(&format!("{f:?}"));
            } else {
                out.push_str(&n.to_string());
            }
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The elements of a one-dimensional PostgreSQL array literal (`NULL`: `None`).
fn array(t: &str) -> Option<Vec<Option<String>>> {
    let body = t.strip_prefix('{')?.strip_suffix('}')?;
    let mut out = Vec::new();
    if body.is_empty() {
        return Some(out);
    }
    let mut chars = body.chars().peekable();
    loop {
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next()? {
                    '\\' => s.push(chars.next()?),
                    '"' => break,
                    c => s.push(c),
                }
            }
            out.push(Some(s));
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '{' || c == '"' {
                    return None;
                }
                s.push(c);
                chars.next();
            }
            out.push((s != "NULL").then_some(s));
        }
        match chars.next() {
            None => return Some(out),
            Some(',') => continue,
            Some(_) => return None,
        }
    }
}

fn array_text(items: Vec<Option<String>>) -> String {
    let parts: Vec<String> = items
        .into_iter()
        .map(|i| match i {
            None => "NULL".into(),
            Some(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// COPY text back to the value it stands for (`\\`, `\n`, `\r`, `\t`).
fn unescape(copy: &[u8]) -> String {
    let mut out = Vec::with_capacity(copy.len());
    let mut it = copy.iter();
    while let Some(&b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match it.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b't') => out.push(b'\t'),
            Some(&o) => out.push(o),
            None => out.push(b'\\'),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// MySQL's own text of a value, for a value the copy would refuse.
fn raw_text(raw: &Raw) -> String {
    match raw {
        Raw::Null => "NULL".into(),
        Raw::Text(t) => t.clone(),
        Raw::F32(x) => format!("{x:?}"),
        Raw::F64(x) => format!("{x:?}"),
        Raw::Bytes(b) => format!("\\x{}", crate::db::sqltext::hex(b)),
    }
}

/// One compared column of a MySQL source and a PostgreSQL target.
#[derive(Debug, Clone)]
pub struct MyCol {
    pub(crate) plan: ColPlan,
    pub form: Form,
}

impl MyCol {
    /// The pair `src` (MySQL) → `tgt` (PostgreSQL), or why the copy cannot carry it.
    pub fn new(src: &Column, tgt: &Column, zero_dates: ZeroDates) -> Result<MyCol, String> {
        Ok(MyCol {
            plan: ColPlan::new(src, tgt, zero_dates)?,
            form: Form::of(tgt),
        })
    }

    /// A MySQL value, canonical (`None`: NULL, or a zero date the runbook maps to NULL).
    pub(crate) fn source(&self, raw: Raw) -> Option<String> {
        if matches!(raw, Raw::Null) {
            return None;
        }
        let shown = raw_text(&raw);
        let mut buf = Vec::new();
        match self.plan.write(raw, &mut buf) {
            Ok(Carried::Null | Carried::MappedNull) => None,
            Ok(Carried::Value) => Some(self.form.canon(unescape(&buf))),
            Err(why) => Some(format!("{shown} (cannot be carried: {why})")),
        }
    }

    /// A PostgreSQL value read as text, canonical.
    pub fn target(&self, text: Option<String>) -> Option<String> {
        text.map(|t| self.form.canon(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::catalog::OrderClass;

    fn col(type_name: &str, cast: &str) -> Column {
        Column {
            name: "c".into(),
            type_name: type_name.into(),
            cast_type: cast.into(),
            type_oid: 0,
            generated: false,
            identity_always: false,
            order: OrderClass::Unsafe,
        }
    }

    fn pair(src: (&str, &str), tgt: (&str, &str)) -> MyCol {
        MyCol::new(&col(src.0, src.1), &col(tgt.0, tgt.1), ZeroDates::Fail).expect("pair")
    }

    fn same(c: &MyCol, raw: Raw, pg: &str) {
        let a = c.source(raw);
        let b = c.target(Some(pg.to_string()));
        assert_eq!(a, b, "{pg}");
    }

    fn t(s: &str) -> Raw {
        Raw::Text(s.into())
    }

    #[test]
    fn formatting_is_not_a_difference() {
        let dec = pair(("decimal(65,30)", "decimal"), ("numeric(65,30)", "numeric"));
        same(&dec, t("1.500000000000000000000000000000"), "1.5");
        same(
            &dec,
            t("-0.000000000000000000000000000001"),
            "-0.000000000000000000000000000001",
        );
        let f = pair(("float", "float"), ("real", "real"));
        same(&f, Raw::F32(3.402_823_5e38), "3.4028235e+38");
        same(&f, Raw::F32(0.1), "0.1");
        same(&f, Raw::F32(-0.0), "-0");
        let d = pair(
            ("double", "double"),
            ("double precision", "double precision"),
        );
        same(&d, Raw::F64(5e-324), "5e-324");
        same(&d, Raw::F64(f64::MAX), "1.7976931348623157e+308");
        let ts = pair(
            ("timestamp(6)", "timestamp"),
            ("timestamp with time zone", "timestamp with time zone"),
        );
        same(
            &ts,
            t("2024-03-01 07:00:00.500000"),
            "2024-03-01 07:00:00.5+00",
        );
        let ch = pair(("char(10)", "char"), ("character(10)", "character"));
        same(&ch, t("ab"), "ab        ");
        let b = pair(("tinyint(1)", "tinyint"), ("boolean", "boolean"));
        same(&b, t("1"), "true");
        let time = pair(("time(6)", "time"), ("interval", "interval"));
        same(&time, t("838:59:59.000000"), "838:59:59");
        same(&time, t("-838:59:59.000000"), "-838:59:59");
        same(&time, t("00:00:01.500000"), "00:00:01.5");
        let j = pair(("json", "json"), ("jsonb", "jsonb"));
        same(
            &j,
            t("{\"n\": [0, -1e-7], \"k\": \"tab\\there\"}"),
            "{\"k\": \"tab\\there\", \"n\": [0, -0.0000001]}",
        );
        let s = pair(("set('a','b','c')", "set"), ("text[]", "text[]"));
        same(&s, t("a,c"), "{a,c}");
        same(&s, t(""), "{}");
        let blob = pair(("blob", "blob"), ("bytea", "bytea"));
        same(&blob, Raw::Bytes(vec![0x5c, 0x6e, 0x0d]), "\\x5c6e0d");
        let txt = pair(("varchar(20)", "varchar"), ("text", "text"));
        same(&txt, t("a\\b\tc\nd  "), "a\\b\tc\nd  ");
    }

    #[test]
    fn data_is_a_difference() {
        let txt = pair(("varchar(20)", "varchar"), ("text", "text"));
        assert_ne!(txt.source(t("a ")), txt.target(Some("a".into())));
        let dec = pair(("decimal(10,2)", "decimal"), ("numeric(10,2)", "numeric"));
        assert_ne!(dec.source(t("1.50")), dec.target(Some("1.51".into())));
        let d = pair(("double", "double"), ("real", "real"));
        // 0.1 as a DOUBLE is not the real 0.1: the copy refuses it, verify says so
        let a = d.source(Raw::F64(0.1)).unwrap_or_default();
        assert!(a.contains("cannot be carried"), "{a}");
        assert_ne!(Some(a), d.target(Some("0.1".into())));
        let z = pair(("date", "date"), ("date", "date"));
        assert_ne!(z.source(t("0000-00-00")), None);
        let zn =
            MyCol::new(&col("date", "date"), &col("date", "date"), ZeroDates::Null).expect("pair");
        assert_eq!(zn.source(t("0000-00-00")), None);
        let ts = pair(
            ("datetime(6)", "datetime"),
            ("timestamp without time zone", "timestamp without time zone"),
        );
        assert_ne!(
            ts.source(t("2024-03-01 07:00:00.000001")),
            ts.target(Some("2024-03-01 07:00:00".into()))
        );
        assert_eq!(txt.source(Raw::Null), None);
    }

    #[test]
    fn durations_and_arrays_parse() {
        assert_eq!(duration("1 day 02:00:00"), Some(26 * 3_600_000_000));
        assert_eq!(duration("-00:00:00.5"), Some(-500_000));
        assert_eq!(duration("1 mon"), None);
        assert_eq!(duration_text(-500_000), "-0:00:00.5");
        assert_eq!(
            array("{a,\"b c\",NULL,\"x\\\"y\"}"),
            Some(vec![
                Some("a".into()),
                Some("b c".into()),
                None,
                Some("x\"y".into())
            ])
        );
        assert_eq!(array("{{1,2}}"), None);
    }
}
