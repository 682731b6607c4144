//! Values on the generic row path (any copy with SQLite on one side), and how types
//! map between SQLite's storage classes and PostgreSQL types.
//!
//! - PostgreSQL → SQLite: integers (and `oid`) as INTEGER, `float4`/`float8` as REAL
//!   (NaN refused: SQLite would store it as NULL), `bool` as 0/1, `bytea` as BLOB,
//!   everything else (numeric, timestamps, json, arrays, enums…) as its text form.
//! - SQLite → PostgreSQL: every value travels as text and is cast to the target
//!   column's type (without its type modifier, so a too-long value fails the
//!   assignment instead of being cut by an explicit cast). BLOBs become `\x…` for
//!   `bytea`; integers 0/1 become `false`/`true` for `bool`; REAL infinities and NaN
//!   become `Infinity`/`NaN`.
//! - SQLite → SQLite: each value keeps its storage class.

use crate::db::catalog::Column;
use crate::db::sqltext::{hex, ident};
use sqlx::{Row, ValueRef};

/// One value read from either engine.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Val {
    /// Bytes this value accounts for in progress figures.
    pub fn size(&self) -> usize {
        match self {
            Val::Null => 1,
            Val::Int(_) | Val::Real(_) => 8,
            Val::Text(s) => s.len(),
            Val::Blob(b) => b.len(),
        }
    }
}

/// How a PostgreSQL column is read for a SQLite target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PgRead {
    Int,
    Real,
    Bool,
    Bytes,
    Text,
}

impl PgRead {
    pub fn of(col: &Column) -> PgRead {
        match col.type_oid {
            20 | 21 | 23 | 26 => PgRead::Int,
            700 | 701 => PgRead::Real,
            16 => PgRead::Bool,
            17 => PgRead::Bytes,
            _ => PgRead::Text,
        }
    }

    /// The select-list expression for column `name`.
    pub fn expr(self, name: &str) -> String {
        let c = ident(name);
        match self {
            PgRead::Int => format!("{c}::int8"),
            PgRead::Real => format!("{c}::float8"),
            PgRead::Bool | PgRead::Bytes => c,
            PgRead::Text => format!("{c}::text"),
        }
    }
}

/// Column `i` of a PostgreSQL row read with `how`.
pub(crate) fn pg_val(r: &sqlx::postgres::PgRow, i: usize, how: PgRead) -> Result<Val, sqlx::Error> {
    Ok(match how {
        PgRead::Int => r.try_get::<Option<i64>, _>(i)?.map_or(Val::Null, Val::Int),
        PgRead::Real => r.try_get::<Option<f64>, _>(i)?.map_or(Val::Null, Val::Real),
        PgRead::Bool => r
            .try_get::<Option<bool>, _>(i)?
            .map_or(Val::Null, |b| Val::Int(b as i64)),
        PgRead::Bytes => r
            .try_get::<Option<Vec<u8>>, _>(i)?
            .map_or(Val::Null, Val::Blob),
        PgRead::Text => r
            .try_get::<Option<String>, _>(i)?
            .map_or(Val::Null, Val::Text),
    })
}

/// Column `i` of a SQLite row, by its storage class.
pub(crate) fn sqlite_val(r: &sqlx::sqlite::SqliteRow, i: usize) -> Result<Val, sqlx::Error> {
    let raw = r.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Val::Null);
    }
    let class = raw.type_info().to_string();
    Ok(match class.as_str() {
        "INTEGER" => Val::Int(r.try_get_unchecked::<i64, _>(i)?),
        "REAL" => Val::Real(r.try_get_unchecked::<f64, _>(i)?),
        "BLOB" => Val::Blob(r.try_get_unchecked::<Vec<u8>, _>(i)?),
        _ => Val::Text(r.try_get_unchecked::<String, _>(i)?),
    })
}

/// Check a value can be stored in SQLite column `col` as it is: SQLite turns NaN
/// into NULL, and a column of numeric affinity (declared INT…, REAL, NUMERIC, DECIMAL…)
/// turns a number written as text into an INTEGER or a REAL, which keeps about 15
/// significant digits of a `numeric` value.
pub(crate) fn check_for_sqlite(v: &Val, col: &Column) -> Result<(), String> {
    match v {
        Val::Real(f) if f.is_nan() => Err(format!(
            "column {} holds NaN, which SQLite cannot store (it would become NULL)",
            col.name
        )),
        Val::Text(s) if numeric_affinity(&col.type_name) => match lossy_in_sqlite(s) {
            Some(stored) => Err(format!(
                "column {} ({}) would store {s} as {stored}: SQLite keeps a number in a column \
                 of numeric affinity as a 64-bit REAL; declare the column TEXT in SQLite to keep \
                 the value exactly",
                col.name, col.type_name
            )),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// SQLite's affinity rules: INTEGER, REAL and NUMERIC affinities convert number texts.
fn numeric_affinity(decl: &str) -> bool {
    let d = decl.to_ascii_uppercase();
    if d.contains("INT") {
        return true;
    }
    if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        return false;
    }
    !(d.contains("BLOB") || d.trim().is_empty())
}

/// A plain decimal number text (what PostgreSQL prints for `numeric`), split into its
/// sign and digits with no leading or trailing zeros; None for anything else.
fn decimal_parts(s: &str) -> Option<(bool, String, String)> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int = int.trim_start_matches('0').to_string();
    let frac = frac.trim_end_matches('0').to_string();
    let zero = int.is_empty() && frac.is_empty();
    Some((neg && !zero, int, frac))
}

/// What SQLite would keep of number text `s` in a column of numeric affinity, when
/// that is not the same number (None: it keeps the value, or keeps the text as is).
fn lossy_in_sqlite(s: &str) -> Option<String> {
    let parts = decimal_parts(s)?;
    if s.parse::<i64>().is_ok() {
        return None; // an INTEGER: exact
    }
    let f: f64 = s.parse().ok()?;
    if !f.is_finite() {
        return Some(f.to_string());
    }
    let stored = format!("{f}");
    (decimal_parts(&stored)? != parts).then_some(stored)
}

/// A value as the text PostgreSQL casts to the target column's type.
pub(crate) fn pg_text(v: Val, col: &Column) -> Result<Option<String>, String> {
    let bytea = col.type_oid == 17;
    let boolean = col.type_oid == 16;
    Ok(match v {
        Val::Null => None,
        Val::Blob(b) if bytea => Some(format!("\\x{}", hex(&b))),
        Val::Blob(b) => Some(String::from_utf8(b).map_err(|_| {
            format!(
                "column {} ({}) cannot take a BLOB that is not UTF-8 text",
                col.name, col.type_name
            )
        })?),
        Val::Text(s) if bytea => Some(format!("\\x{}", hex(s.as_bytes()))),
        Val::Text(s) => Some(s),
        Val::Int(i) if boolean => Some(if i == 0 { "false" } else { "true" }.to_string()),
        Val::Int(i) => Some(i.to_string()),
        Val::Real(f) if f.is_nan() => Some("NaN".into()),
        Val::Real(f) if f.is_infinite() => {
            Some(if f > 0.0 { "Infinity" } else { "-Infinity" }.into())
        }
        Val::Real(f) => Some(f.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::catalog::OrderClass;

    fn col(oid: u32, ty: &str) -> Column {
        Column {
            name: "c".into(),
            type_name: ty.into(),
            cast_type: ty.into(),
            type_oid: oid,
            generated: false,
            identity_always: false,
            order: OrderClass::Unsafe,
        }
    }

    #[test]
    fn sqlite_values_as_postgres_text() {
        let bytea = col(17, "bytea");
        let b = col(16, "boolean");
        let t = col(25, "text");
        let f = col(701, "double precision");
        assert_eq!(
            pg_text(Val::Blob(vec![0, 255]), &bytea),
            Ok(Some("\\x00ff".into()))
        );
        assert_eq!(pg_text(Val::Int(1), &b), Ok(Some("true".into())));
        assert_eq!(pg_text(Val::Int(0), &b), Ok(Some("false".into())));
        assert_eq!(pg_text(Val::Null, &t), Ok(None));
        assert!(pg_text(Val::Blob(vec![0xff]), &t).is_err());
        assert_eq!(
            pg_text(Val::Real(f64::INFINITY), &f),
            Ok(Some("Infinity".into()))
        );
        assert_eq!(pg_text(Val::Real(0.1), &f), Ok(Some("0.1".into())));
        assert!(check_for_sqlite(&Val::Real(f64::NAN), &f).is_err());
        let n = col(1700, "NUMERIC");
        let ok = |s: &str| check_for_sqlite(&Val::Text(s.into()), &n).is_ok();
        assert!(ok("1.50") && ok("-0.000") && ok("123456789012345678") && ok("0.1") && ok("NaN"));
        assert!(
            !ok("0.14285714285714285714"),
            "more digits than a REAL keeps"
        );
        assert!(!ok("12345678901234567890"), "beyond 64-bit integers");
        assert!(check_for_sqlite(&Val::Text("0.14285714285714285714".into()), &t).is_ok());
        assert!(check_for_sqlite(&Val::Text("0.14285714285714285714".into()), &col(0, "")).is_ok());
    }
}
