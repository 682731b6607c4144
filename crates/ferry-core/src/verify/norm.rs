//! Normalisation: what makes two values "the same data" when they sit on different
//! servers. The rule is to normalise what differs between *servers* (time zone, date
//! style, float digits, type names, storage classes) and never what differs between
//! *data* (a trailing space, `NULL` vs `''`, one microsecond, a numeric's scale, a
//! JSON number's spelling).
//!
//! **PostgreSQL ↔ PostgreSQL** (checksums computed by the servers). Every session has
//! `TimeZone = 'UTC'`, `DateStyle = 'ISO, YMD'`, `IntervalStyle = 'postgres'`,
//! `extra_float_digits = 3` and `bytea_output = 'hex'`, so each type's text form is a
//! function of the value alone. Per column, on both sides:
//! - same type, and a type whose hash is exact (integers, `bool`, `bytea`, `"char"`,
//!   `name`, `oid`, `uuid`, `date`, `time`, `timestamp`, `timestamptz`, `inet`,
//!   `cidr`, `macaddr`, and `text`/`varchar`/`char(n)` under a deterministic
//!   collation): the value itself, hashed natively (`hash_record_extended`, PG 14+);
//! - `numeric`: its value hashed natively together with its `scale()`, so
//!   `1.50` ≠ `1.5` (the value's own hash calls them equal);
//! - same type otherwise (floats, `interval`, `jsonb`, `json`, enums, domains,
//!   arrays, composites, extension types such as `citext`): its text form, so
//!   `-0` ≠ `0`, `'1 day'` ≠ `'24 hours'`, `{"a": 1.0}` ≠ `{"a": 1}` and `'ABC'` ≠
//!   `'abc'` in `citext` (their hashes would call them equal), and enum labels are
//!   compared, not their server-specific oids; `xml` by its output form (`xml_out`,
//!   what COPY and clients see: `::text` would keep a `<?xml version="1.0"?>`
//!   declaration the output leaves out, so an exact copy would look changed);
//! - a different type on each side (a schema difference, reported by the schema
//!   check) compares the data through a common form: integers as `int8`;
//!   `timestamp`/`timestamptz` as the UTC `timestamp`; mixed numbers as `numeric`
//!   with trailing zeros trimmed (`trim_scale`, PG 13+); anything else as text.
//!
//! A row's hash is `hash_record_extended(row(…), 0)`; before PG 14 it is
//! `hashtextextended(row(…)::text, 0)` (PG 11+), before PG 11 64 bits of an md5.
//!
//! **SQLite on either side** (values read and hashed by ferry; the PostgreSQL side
//! is read with the settings above, integers as `int8`, floats as `float8`, `bool`
//! and `bytea` natively, everything else as text). Each column gets a class from the
//! PostgreSQL type when there is one, else from the SQLite declared type's affinity,
//! and each value becomes a canonical text:
//! - `NULL` stays `NULL` (never equal to `''`);
//! - integers, reals and numerics: decimal text with no exponent and no trailing
//!   fractional zeros (`2`, `2.0` and `2.00` are all `2`; `0.1` is `0.1`); `NaN`,
//!   `Infinity`, `-Infinity` spelled so;
//! - booleans: `1`/`0` (SQLite 0/1, PostgreSQL `t`/`f`, text `true`/`false`);
//! - blobs and `bytea`: `\x` and lower-case hex;
//! - timestamps: ISO `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC, with or without a zone
//!   on input (`+00`, `+05:30`, `Z`, `T` or space); text that is not a timestamp is
//!   kept as it is;
//! - JSON: parsed and re-serialised with sorted keys and no spaces;
//! - everything else: the text as stored.

use crate::db::catalog::{Column, Engine};

/// How a column's values are canonicalised on the generic path, and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Int,
    Real,
    Numeric,
    Bool,
    Bytes,
    Timestamp,
    Json,
    Text,
    /// SQLite with no telling affinity: by storage class.
    Any,
}

impl Class {
    /// Values of the class are shown without quotes.
    pub fn numeric(self) -> bool {
        matches!(
            self,
            Class::Int | Class::Real | Class::Numeric | Class::Bool
        )
    }
}

pub fn pg_class(oid: u32) -> Class {
    match oid {
        20 | 21 | 23 | 26 => Class::Int,
        700 | 701 => Class::Real,
        1700 => Class::Numeric,
        16 => Class::Bool,
        17 => Class::Bytes,
        1114 | 1184 => Class::Timestamp,
        114 | 3802 => Class::Json,
        _ => Class::Text,
    }
}

pub fn sqlite_class(decl: &str) -> Class {
    let d = decl.to_ascii_uppercase();
    if d.contains("BOOL") {
        Class::Bool
    } else if d.contains("INT") {
        Class::Int
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        Class::Text
    } else if d.contains("BLOB") || d.contains("BYTEA") {
        Class::Bytes
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        Class::Real
    } else if d.contains("TIMESTAMP") || d.contains("DATETIME") {
        Class::Timestamp
    } else if d.contains("JSON") {
        Class::Json
    } else if d.contains("NUM") || d.contains("DEC") {
        Class::Numeric
    } else {
        Class::Any
    }
}

/// The class of a column pair: the PostgreSQL side's type wins.
pub fn pair_class(src: &Column, se: Engine, tgt: &Column, te: Engine) -> Class {
    match (se, te) {
        (Engine::Postgres, _) => pg_class(src.type_oid),
        (_, Engine::Postgres) => pg_class(tgt.type_oid),
        _ => sqlite_class(&src.type_name),
    }
}

/// Types whose native hash is exact (equal hash input ⟺ equal text form).
fn exact_hash(oid: u32) -> bool {
    matches!(
        oid,
        16 | 17
            | 18
            | 19
            | 20
            | 21
            | 23
            | 25
            | 26
            | 1042
            | 1043
            | 1082
            | 1083
            | 1114
            | 1184
            | 2950
            | 869
            | 650
            | 829
    )
}

fn text_family(oid: u32) -> bool {
    matches!(oid, 25 | 1043 | 1042 | 19)
}

fn int_family(oid: u32) -> bool {
    matches!(oid, 20 | 21 | 23)
}

fn num_family(oid: u32) -> bool {
    matches!(oid, 20 | 21 | 23 | 1700 | 700 | 701)
}

/// A column as both PostgreSQL servers compute it: `hash` goes into the row hash,
/// `text` is fetched to compare rows one by one (equal `hash` inputs ⟺ equal `text`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgExpr {
    pub hash: String,
    pub text: String,
}

/// The expressions for column `q` (quoted) of type `col` on one side, given the
/// other side's column. `nondeterministic`: its collation is not deterministic.
/// `trim`: both servers have `trim_scale` (PG 13+).
pub fn pg_expr(
    q: &str,
    col: &Column,
    other: &Column,
    nondeterministic: bool,
    trim: bool,
) -> PgExpr {
    let text = |e: String| PgExpr {
        text: format!("({e})::text"),
        hash: e,
    };
    let (a, b) = (col.type_oid, other.type_oid);
    if col.type_name == other.type_name {
        if text_family(a) && nondeterministic {
            return PgExpr {
                hash: format!("textsend({q}::text)"),
                text: format!("{q}::text"),
            };
        }
        if exact_hash(a) {
            return PgExpr {
                hash: q.to_string(),
                text: format!("{q}::text"),
            };
        }
        if a == 142 {
            // `xml::text` is the stored text, with an XML declaration that the output
            // function (what COPY and every client see) leaves out: compare that.
            return text(format!("xml_out({q})::text"));
        }
        if a == 1700 {
            // the value's hash ignores trailing zeros: hash the scale with it
            return PgExpr {
                hash: format!("{q}, scale({q})"),
                text: format!("{q}::text"),
            };
        }
        return text(format!("{q}::text"));
    }
    if int_family(a) && int_family(b) {
        return PgExpr {
            hash: format!("{q}::int8"),
            text: format!("{q}::int8::text"),
        };
    }
    if matches!(a, 1114 | 1184) && matches!(b, 1114 | 1184) {
        return PgExpr {
            hash: format!("{q}::timestamp"),
            text: format!("{q}::timestamp::text"),
        };
    }
    if num_family(a) && num_family(b) {
        return text(if trim {
            format!("trim_scale({q}::numeric)::text")
        } else {
            format!("{q}::numeric::text")
        });
    }
    text(format!("{q}::text"))
}

/// How the generic path reads a PostgreSQL column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgRead {
    Int,
    Real,
    Bool,
    Bytes,
    Text,
}

impl PgRead {
    pub fn of(oid: u32) -> PgRead {
        match oid {
            20 | 21 | 23 | 26 => PgRead::Int,
            700 | 701 => PgRead::Real,
            16 => PgRead::Bool,
            17 => PgRead::Bytes,
            _ => PgRead::Text,
        }
    }

    pub fn expr(self, q: &str) -> String {
        match self {
            PgRead::Int => format!("{q}::int8"),
            PgRead::Real => format!("{q}::float8"),
            PgRead::Bool | PgRead::Bytes => q.to_string(),
            PgRead::Text => format!("{q}::text"),
        }
    }
}
