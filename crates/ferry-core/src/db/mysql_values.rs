//! MySQL values as PostgreSQL `COPY` text, exactly or not at all (docs/mysql.md has
//! the table, one row per MySQL type).
//!
//! Each copied column gets a [`ColPlan`] before the first row moves: how to read it
//! from MySQL (as the server's own text, `CAST(col AS CHAR)`, which is exact for
//! integers, DECIMAL, dates and text in any character set; floating-point and binary
//! columns as binary values) and what the target column can hold. A pair that
//! cannot work (a DATETIME into `timestamptz`, a BLOB into `integer`) refuses the
//! copy before it starts. A value that does not fit its target column (a zero
//! date, an unsigned BIGINT beyond `bigint`, a TINYINT(1) of 2 into `boolean`, a
//! NUL character in text, more digits than the target's scale) fails the step,
//! never gets rounded, cut or replaced, unless the runbook maps it
//! (`zero_dates = "null"`), and then it is counted.
//!
//! It lives in `db` because two readers share it: the copy writes what
//! [`ColPlan::write`] gives, and verify compares the same text with what PostgreSQL
//! holds, so a MySQL value means one thing to both.

use crate::db::catalog::Column;
use crate::runbook::ZeroDates;
use sqlx::mysql::MySqlRow;
use sqlx::{Row, ValueRef};
use std::fmt::Write;

/// How a column is read from MySQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// `CAST(col AS CHAR)`: the server's exact text, in UTF-8.
    Text,
    /// `CAST(col + 0 AS CHAR)`: a BIT column as its integer.
    BitInt,
    F32,
    F64,
    Bytes,
}

/// What the MySQL column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Src {
    Int,
    /// TINYINT(1), MySQL's BOOLEAN.
    Tiny1,
    Decimal,
    Float,
    Double,
    Date,
    DateTime,
    Timestamp,
    Time,
    Year,
    Bit(u32),
    Text,
    Set,
    Json,
    Bytes,
}

/// What the PostgreSQL column takes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tgt {
    Int {
        min: i128,
        max: i128,
    },
    Bool,
    /// `numeric(p, s)`: digits before the point and after; `None`: unconstrained.
    Numeric(Option<(u32, u32)>),
    Real,
    Double,
    /// Text with at most this many characters.
    Text(Option<usize>),
    Date,
    Timestamp,
    Timestamptz,
    Time,
    Interval,
    Json,
    Bytea,
    Bit,
    TextArray,
    /// Anything else (an enum type, `citext`, `uuid`...): the text as MySQL gives it;
    /// PostgreSQL parses it and rejects what it cannot take.
    Other,
}

/// One column's reading and conversion.
#[derive(Debug, Clone)]
pub(crate) struct ColPlan {
    pub name: String,
    pub read: Read,
    src: Src,
    tgt: Tgt,
    src_type: String,
    tgt_type: String,
    zero_dates: ZeroDates,
}

/// A value as read from MySQL.
pub(crate) enum Raw {
    Null,
    Text(String),
    F32(f32),
    F64(f64),
    Bytes(Vec<u8>),
}

/// Column `i` of `row`, read as `how` says (the row was selected with [`ColPlan::expr`]).
pub(crate) fn read(row: &MySqlRow, i: usize, how: Read) -> Result<Raw, sqlx::Error> {
    if row.try_get_raw(i)?.is_null() {
        return Ok(Raw::Null);
    }
    Ok(match how {
        Read::Text | Read::BitInt => Raw::Text(row.try_get_unchecked::<String, _>(i)?),
        Read::F32 => Raw::F32(row.try_get_unchecked::<f32, _>(i)?),
        Read::F64 => Raw::F64(row.try_get_unchecked::<f64, _>(i)?),
        Read::Bytes => Raw::Bytes(row.try_get_unchecked::<Vec<u8>, _>(i)?),
    })
}

/// What became of one value.
#[derive(Debug, PartialEq)]
pub(crate) enum Carried {
    Value,
    Null,
    /// NULL because the runbook maps it so (`zero_dates = "null"`).
    MappedNull,
}

/// What [`ColPlan::mapping`] names in the report.
pub(crate) const ZERO_DATE_TO_NULL: &str = "zero date → NULL (zero_dates = \"null\")";

fn modifier(type_name: &str) -> Vec<u32> {
    type_name
        .split_once('(')
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(args, _)| {
            args.split(',')
                .filter_map(|a| a.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn src_kind(c: &Column) -> Result<Src, String> {
    let t = c.cast_type.as_str();
    let full = c.type_name.as_str();
    Ok(match t {
        "tinyint" if full.starts_with("tinyint(1)") && !full.contains("unsigned") => Src::Tiny1,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => Src::Int,
        "decimal" | "numeric" => Src::Decimal,
        "float" => Src::Float,
        "double" | "real" | "double precision" => Src::Double,
        "date" => Src::Date,
        "datetime" => Src::DateTime,
        "timestamp" => Src::Timestamp,
        "time" => Src::Time,
        "year" => Src::Year,
        "bit" => Src::Bit(modifier(full).first().copied().unwrap_or(1)),
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" => Src::Text,
        "set" => Src::Set,
        "json" => Src::Json,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Src::Bytes,
        other => {
            return Err(format!(
                "MySQL type {other} is not carried by ferry (see docs/mysql.md); leave the column \
                 out of the target table or the table out of the step"
            ))
        }
    })
}

fn tgt_kind(c: &Column) -> Tgt {
    let m = modifier(&c.type_name);
    match c.cast_type.as_str() {
        "smallint" => Tgt::Int {
            min: i16::MIN.into(),
            max: i16::MAX.into(),
        },
        "integer" => Tgt::Int {
            min: i32::MIN.into(),
            max: i32::MAX.into(),
        },
        "bigint" => Tgt::Int {
            min: i64::MIN.into(),
            max: i64::MAX.into(),
        },
        "boolean" => Tgt::Bool,
        "numeric" => Tgt::Numeric(match m.as_slice() {
            [p] => Some((*p, 0)),
            [p, s] => Some((p.saturating_sub(*s), *s)),
            _ => None,
        }),
        "real" => Tgt::Real,
        "double precision" => Tgt::Double,
        "text" | "character varying" | "character" => Tgt::Text(m.first().map(|n| *n as usize)),
        "date" => Tgt::Date,
        "timestamp without time zone" => Tgt::Timestamp,
        "timestamp with time zone" => Tgt::Timestamptz,
        "time without time zone" => Tgt::Time,
        "interval" => Tgt::Interval,
        "json" | "jsonb" => Tgt::Json,
        "bytea" => Tgt::Bytea,
        "bit" | "bit varying" => Tgt::Bit,
        "text[]" | "character varying[]" => Tgt::TextArray,
        _ => Tgt::Other,
    }
}

impl ColPlan {
    /// The plan for source column `s` into target column `t`, or why the pair cannot work.
    pub(crate) fn new(s: &Column, t: &Column, zero_dates: ZeroDates) -> Result<ColPlan, String> {
        let src = src_kind(s)?;
        let tgt = tgt_kind(t);
        let read = match src {
            Src::Float => Read::F32,
            Src::Double => Read::F64,
            Src::Bytes => Read::Bytes,
            Src::Bit(_) => Read::BitInt,
            _ => Read::Text,
        };
        use Src as S;
        use Tgt as T;
        let ok = match (&src, &tgt) {
            (_, T::Other | T::Text(_)) => !matches!(src, S::Bytes),
            (S::Int | S::Tiny1 | S::Year | S::Bit(_), T::Int { .. } | T::Numeric(_)) => true,
            (S::Int | S::Tiny1 | S::Bit(_), T::Bool) => true,
            (S::Int | S::Tiny1 | S::Decimal | S::Float | S::Double, T::Real | T::Double) => true,
            (S::Decimal, T::Numeric(_) | T::Int { .. }) => true,
            (S::Float | S::Double, T::Numeric(_)) => true,
            (S::Date, T::Date | T::Timestamp) => true,
            (S::DateTime, T::Timestamp) => true,
            (S::Timestamp, T::Timestamp | T::Timestamptz) => true,
            (S::Time, T::Time | T::Interval) => true,
            (S::Bit(_), T::Bit) => true,
            (S::Json | S::Text, T::Json) => true,
            (S::Set, T::TextArray) => true,
            (S::Bytes | S::Text | S::Json, T::Bytea) => true,
            _ => false,
        };
        if !ok {
            let why = if src == S::DateTime && tgt == T::Timestamptz {
                " (DATETIME has no time zone: ferry will not guess one; make the target column \
                 `timestamp without time zone`, or convert after the copy)"
            } else {
                ""
            };
            return Err(format!(
                "column {:?}: MySQL {} cannot be carried exactly into PostgreSQL {}{why}",
                s.name, s.type_name, t.type_name
            ));
        }
        Ok(ColPlan {
            name: s.name.clone(),
            read,
            src,
            tgt,
            src_type: s.type_name.clone(),
            tgt_type: t.type_name.clone(),
            zero_dates,
        })
    }

    /// What the MySQL column holds and what the PostgreSQL column takes (the copy's
    /// pre-flight asks the source about the values that would not fit).
    pub(crate) fn kinds(&self) -> (Src, &Tgt) {
        (self.src, &self.tgt)
    }

    /// The SELECT expression for column `quoted`.
    pub(crate) fn expr(&self, quoted: &str) -> String {
        match self.read {
            Read::Text => format!("cast({quoted} as char)"),
            Read::BitInt => format!("cast({quoted} + 0 as char)"),
            Read::F32 | Read::F64 | Read::Bytes => quoted.to_string(),
        }
    }

    /// Append `raw` as one COPY text field to `out`; an error says why the value
    /// cannot be carried.
    pub(crate) fn write(&self, raw: Raw, out: &mut Vec<u8>) -> Result<Carried, String> {
        let text = match raw {
            Raw::Null => {
                out.extend_from_slice(b"\\N");
                return Ok(Carried::Null);
            }
            Raw::F32(x) => {
                let v = match self.tgt {
                    Tgt::Real | Tgt::Numeric(_) | Tgt::Text(_) | Tgt::Other => format!("{x:?}"),
                    // every f32 is exactly an f64
                    _ => format!("{:?}", f64::from(x)),
                };
                return self.finish_number(&v, out);
            }
            Raw::F64(x) => {
                if self.tgt == Tgt::Real && f64::from(x as f32) != x {
                    return Err(format!(
                        "DOUBLE {x:?} does not fit PostgreSQL real without rounding"
                    ));
                }
                return self.finish_number(&format!("{x:?}"), out);
            }
            Raw::Bytes(b) => return self.write_bytes(b, out),
            Raw::Text(t) => t,
        };
        match self.src {
            Src::Date | Src::DateTime | Src::Timestamp => self.write_date(&text, out),
            Src::Time => {
                if self.tgt == Tgt::Time && !time_of_day(&text) {
                    return Err(format!(
                        "TIME {text:?} is not a time of day (PostgreSQL time is 00:00:00 to 24:00:00); \
                         make the target column `interval`"
                    ));
                }
                escape(&text, out);
                Ok(Carried::Value)
            }
            Src::Int | Src::Tiny1 | Src::Year | Src::Bit(_) | Src::Decimal => {
                self.finish_number(&text, out)
            }
            Src::Set if self.tgt == Tgt::TextArray => {
                let mut arr = String::from("{");
                for (i, part) in text.split(',').filter(|p| !p.is_empty()).enumerate() {
                    if i > 0 {
                        arr.push(',');
                    }
                    arr.push('"');
                    arr.push_str(&part.replace('\\', "\\\\").replace('"', "\\\""));
                    arr.push('"');
                }
                arr.push('}');
                self.check_text(&text)?;
                escape(&arr, out);
                Ok(Carried::Value)
            }
            Src::Text | Src::Set | Src::Json | Src::Float | Src::Double | Src::Bytes => {
                if self.tgt == Tgt::Bytea {
                    return self.write_bytes(text.into_bytes(), out);
                }
                self.check_text(&text)?;
                escape(&text, out);
                Ok(Carried::Value)
            }
        }
    }

    /// Text that PostgreSQL stores as it is: no NUL, not longer than the column.
    fn check_text(&self, text: &str) -> Result<(), String> {
        if text.contains('\0') {
            return Err(
                "the text holds a NUL character, which PostgreSQL text cannot store".into(),
            );
        }
        if let Tgt::Text(Some(max)) = self.tgt {
            let n = text.chars().count();
            if n > max {
                // PostgreSQL would cut trailing spaces beyond the length without a word
                return Err(format!(
                    "{n} characters do not fit {} (at most {max})",
                    self.tgt_type
                ));
            }
        }
        Ok(())
    }

    fn write_bytes(&self, b: Vec<u8>, out: &mut Vec<u8>) -> Result<Carried, String> {
        if self.tgt == Tgt::Bytea {
            out.extend_from_slice(b"\\\\x");
            out.extend_from_slice(crate::db::sqltext::hex(&b).as_bytes());
            return Ok(Carried::Value);
        }
        let text = String::from_utf8(b).map_err(|e| {
            format!(
                "the bytes are not UTF-8 (at byte {}); PostgreSQL {} holds text only: make the \
                 target column bytea",
                e.utf8_error().valid_up_to(),
                self.tgt_type
            )
        })?;
        self.check_text(&text)?;
        escape(&text, out);
        Ok(Carried::Value)
    }

    fn write_date(&self, text: &str, out: &mut Vec<u8>) -> Result<Carried, String> {
        if is_zero_date(text) {
            return match self.zero_dates {
                ZeroDates::Null => {
                    out.extend_from_slice(b"\\N");
                    Ok(Carried::MappedNull)
                }
                ZeroDates::Fail => Err(format!(
                    "zero date {text:?} cannot be carried: PostgreSQL has no such date; set \
                     `zero_dates = \"null\"` on the step to carry zero dates as NULL (the report \
                     counts them)"
                )),
            };
        }
        escape(text, out);
        if self.tgt == Tgt::Timestamptz {
            // the source session's time zone is UTC: TIMESTAMP text is UTC
            out.extend_from_slice(b"+00");
        }
        Ok(Carried::Value)
    }

    /// A number (as exact decimal text) into the target column, checked to fit.
    fn finish_number(&self, v: &str, out: &mut Vec<u8>) -> Result<Carried, String> {
        match &self.tgt {
            Tgt::Int { min, max } => {
                let n: i128 = match v.split_once('.') {
                    Some((whole, frac)) if frac.bytes().all(|b| b == b'0') => whole.parse(),
                    Some(_) => {
                        return Err(format!(
                            "{v} has a fraction; PostgreSQL {} would round it",
                            self.tgt_type
                        ))
                    }
                    None => v.parse(),
                }
                .map_err(|_| format!("{v} is not an integer"))?;
                if n < *min || n > *max {
                    return Err(format!(
                        "{v} does not fit PostgreSQL {} ({min} to {max}); make the target column \
                         numeric(20) (an unsigned BIGINT reaches 18446744073709551615)",
                        self.tgt_type
                    ));
                }
                let _ = write!(Fmt(out), "{n}");
            }
            Tgt::Bool => match v {
                "0" => out.push(b'f'),
                "1" => out.push(b't'),
                _ => {
                    return Err(format!(
                        "{} value {v} is not 0 or 1, so it is not a boolean",
                        self.src_type
                    ))
                }
            },
            Tgt::Numeric(Some((int_digits, scale))) => {
                let digits = v.trim_start_matches('-');
                let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
                let frac_used = frac.trim_end_matches('0').len() as u32;
                let whole_used = whole.trim_start_matches('0').len() as u32;
                if v.contains(['e', 'E']) || frac_used > *scale || whole_used > *int_digits {
                    return Err(format!(
                        "{v} does not fit PostgreSQL {} without rounding",
                        self.tgt_type
                    ));
                }
                out.extend_from_slice(v.as_bytes());
            }
            Tgt::Real | Tgt::Double if matches!(self.src, Src::Decimal) => {
                let exact = if self.tgt == Tgt::Real {
                    v.parse::<f32>()
                        .ok()
                        .map(|x| same_decimal(&format!("{x}"), v))
                } else {
                    v.parse::<f64>()
                        .ok()
                        .map(|x| same_decimal(&format!("{x}"), v))
                };
                if exact != Some(true) {
                    return Err(format!(
                        "DECIMAL {v} is not exactly a PostgreSQL {} value",
                        self.tgt_type
                    ));
                }
                out.extend_from_slice(v.as_bytes());
            }
            Tgt::Real if matches!(self.src, Src::Int | Src::Tiny1) => {
                let exact = v
                    .parse::<f32>()
                    .ok()
                    .map(|x| same_decimal(&format!("{x}"), v));
                if exact != Some(true) {
                    return Err(format!("{v} is not exactly a PostgreSQL real value"));
                }
                out.extend_from_slice(v.as_bytes());
            }
            Tgt::Double if matches!(self.src, Src::Int | Src::Tiny1) => {
                let exact = v
                    .parse::<f64>()
                    .ok()
                    .map(|x| same_decimal(&format!("{x}"), v));
                if exact != Some(true) {
                    return Err(format!(
                        "{v} is not exactly a PostgreSQL double precision value"
                    ));
                }
                out.extend_from_slice(v.as_bytes());
            }
            Tgt::Bit => {
                let n: u64 = v.parse().map_err(|_| format!("{v} is not a bit string"))?;
                let width = match self.src {
                    Src::Bit(w) => w as usize,
                    _ => 64,
                };
                let _ = write!(Fmt(out), "{n:0width$b}");
            }
            _ => escape(v, out),
        }
        Ok(Carried::Value)
    }

    /// What the report says this column's mapping did.
    pub(crate) fn mapping(&self) -> &'static str {
        ZERO_DATE_TO_NULL
    }
}

/// `a` and `b` are the same decimal number (`1.50` and `1.5`, `-0` and `0`).
fn same_decimal(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> (bool, String, String) {
        let neg = s.starts_with('-');
        let d = s.trim_start_matches(['-', '+']);
        let (w, f) = d.split_once('.').unwrap_or((d, ""));
        let w = w.trim_start_matches('0').to_string();
        let f = f.trim_end_matches('0').to_string();
        let zero = w.is_empty() && f.is_empty();
        (neg && !zero, w, f)
    }
    norm(a) == norm(b)
}

/// MySQL's zero date, or a date with a zero year, month or day: none is a
/// PostgreSQL date.
pub(crate) fn is_zero_date(text: &str) -> bool {
    let date = text.split([' ', 'T']).next().unwrap_or("");
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next(), parts.next(), parts.next());
    [y, m, d]
        .iter()
        .any(|p| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b == b'0')))
}

/// `HH:MM:SS[.frac]` within a day (PostgreSQL `time` takes up to 24:00:00).
fn time_of_day(text: &str) -> bool {
    if text.starts_with('-') {
        return false;
    }
    let hours: Option<u32> = text.split(':').next().and_then(|h| h.parse().ok());
    match hours {
        Some(h) if h < 24 => true,
        Some(24) => text[2..].bytes().all(|b| matches!(b, b':' | b'0' | b'.')),
        _ => false,
    }
}

/// `text` as a COPY text field (backslash, newline, carriage return and tab escaped).
pub(crate) fn escape(text: &str, out: &mut Vec<u8>) {
    for &b in text.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(b),
        }
    }
}

/// `write!` into a byte buffer.
struct Fmt<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Fmt<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
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

    fn carry(src: (&str, &str), tgt: (&str, &str), raw: Raw) -> Result<String, String> {
        let p = ColPlan::new(&col(src.0, src.1), &col(tgt.0, tgt.1), ZeroDates::Fail)?;
        let mut out = Vec::new();
        p.write(raw, &mut out)?;
        Ok(String::from_utf8(out).unwrap_or_default())
    }

    fn t(s: &str) -> Raw {
        Raw::Text(s.into())
    }

    #[test]
    fn integers_fit_or_fail() {
        let ubig = ("bigint(20) unsigned", "bigint");
        let max = "18446744073709551615";
        assert!(carry(ubig, ("bigint", "bigint"), t(max)).is_err());
        assert_eq!(
            carry(ubig, ("numeric(20,0)", "numeric"), t(max)).unwrap(),
            max
        );
        assert_eq!(carry(ubig, ("bigint", "bigint"), t("42")).unwrap(), "42");
        let b = ("tinyint(1)", "tinyint");
        assert_eq!(carry(b, ("boolean", "boolean"), t("1")).unwrap(), "t");
        assert!(carry(b, ("boolean", "boolean"), t("2")).is_err());
    }

    #[test]
    fn decimals_are_never_rounded() {
        let d = ("decimal(65,30)", "decimal");
        let v = "12345678901234567890123456789012345.123456789012345678901234567890";
        assert_eq!(carry(d, ("numeric(65,30)", "numeric"), t(v)).unwrap(), v);
        assert!(carry(d, ("numeric(10,2)", "numeric"), t("1.005")).is_err());
        assert_eq!(
            carry(d, ("numeric(10,2)", "numeric"), t("1.500")).unwrap(),
            "1.500"
        );
        assert!(carry(d, ("double precision", "double precision"), t("0.1")).is_ok());
        assert!(carry(
            d,
            ("double precision", "double precision"),
            t("0.10000000000000000001")
        )
        .is_err());
    }

    #[test]
    fn floats_round_trip() {
        let f = ("float", "float");
        assert_eq!(carry(f, ("real", "real"), Raw::F32(0.1)).unwrap(), "0.1");
        assert_eq!(
            carry(f, ("double precision", "double precision"), Raw::F32(0.1)).unwrap(),
            "0.10000000149011612"
        );
        let d = ("double", "double");
        assert_eq!(
            carry(
                d,
                ("double precision", "double precision"),
                Raw::F64(f64::MAX)
            )
            .unwrap(),
            "1.7976931348623157e308"
        );
        assert!(carry(d, ("real", "real"), Raw::F64(0.1)).is_err());
    }

    #[test]
    fn dates_and_zero_dates() {
        let dt = ("datetime", "datetime");
        let ts = ("timestamp", "timestamp");
        let tstz = ("timestamp with time zone", "timestamp with time zone");
        let tsz = ("timestamp without time zone", "timestamp without time zone");
        assert_eq!(
            carry(ts, tstz, t("2024-03-01 10:00:00")).unwrap(),
            "2024-03-01 10:00:00+00"
        );
        assert_eq!(
            carry(dt, tsz, t("2024-03-01 10:00:00.5")).unwrap(),
            "2024-03-01 10:00:00.5"
        );
        assert!(carry(dt, tstz, t("2024-03-01 10:00:00")).is_err());
        let e = carry(("date", "date"), ("date", "date"), t("0000-00-00")).unwrap_err();
        assert!(e.contains("zero date") && e.contains("zero_dates"), "{e}");
        assert!(is_zero_date("2024-00-10"));
        assert!(!is_zero_date("2024-01-10 00:00:00"));
        let p = ColPlan::new(&col("date", "date"), &col("date", "date"), ZeroDates::Null).unwrap();
        let mut out = Vec::new();
        assert_eq!(p.write(t("0000-00-00"), &mut out), Ok(Carried::MappedNull));
        assert_eq!(out, b"\\N");
        let time = ("time", "time");
        assert!(carry(
            time,
            ("time without time zone", "time without time zone"),
            t("838:59:59")
        )
        .is_err());
        assert_eq!(
            carry(time, ("interval", "interval"), t("-838:59:59")).unwrap(),
            "-838:59:59"
        );
    }

    #[test]
    fn text_is_escaped_and_checked() {
        let v = ("varchar(10)", "varchar");
        assert_eq!(
            carry(v, ("text", "text"), t("a\\b\tc\nd  ")).unwrap(),
            "a\\\\b\\tc\\nd  "
        );
        assert!(carry(v, ("text", "text"), t("a\0b")).is_err());
        assert!(carry(v, ("character varying(3)", "character varying"), t("ab  ")).is_err());
        assert_eq!(
            carry(("set('a','b')", "set"), ("text[]", "text[]"), t("a,b")).unwrap(),
            "{\"a\",\"b\"}"
        );
        let blob = ("blob", "blob");
        assert_eq!(
            carry(blob, ("bytea", "bytea"), Raw::Bytes(vec![0, 255])).unwrap(),
            "\\\\x00ff"
        );
        assert!(carry(blob, ("integer", "integer"), Raw::Bytes(vec![1])).is_err());
        assert_eq!(
            carry(("bit(4)", "bit"), ("bit(4)", "bit"), t("5")).unwrap(),
            "0101"
        );
    }
}
