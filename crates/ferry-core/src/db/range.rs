//! Key ranges as SQL: a chunk's `lo <= key < hi` as a PostgreSQL condition with
//! inline literals cast to the column's type (COPY takes no parameters), or as a
//! SQLite condition with placeholders. Composite keys compare as row values, which
//! both engines evaluate in key (index) order.

use super::catalog::Column;
use super::plan::{Chunk, KeyVal};
use super::sqltext::{ident, pg_literal};

fn pg_value(v: &KeyVal, col: &Column) -> String {
    match v {
        KeyVal::Int(i) => format!("{i}::{}", col.cast_type),
        KeyVal::Real(r) => format!("{}::{}", pg_literal(&r.to_string()), col.cast_type),
        KeyVal::Text(s) => format!("{}::{}", pg_literal(s), col.cast_type),
        KeyVal::Blob { blob } => {
            format!("{}::{}", pg_literal(&format!("\\x{blob}")), col.cast_type)
        }
    }
}

fn tuple(parts: Vec<String>) -> String {
    if parts.len() == 1 {
        parts.join("")
    } else {
        format!("({})", parts.join(", "))
    }
}

/// The chunk's range as a PostgreSQL condition with inline literals (COPY takes no
/// parameters), or `None` when the chunk is unbounded.
pub fn pg_predicate(cols: &[&Column], chunk: &Chunk) -> Option<String> {
    let lhs = tuple(cols.iter().map(|c| ident(&c.name)).collect());
    let side = |b: &Option<Vec<KeyVal>>, op: &str| {
        b.as_ref().map(|vals| {
            let rhs = tuple(vals.iter().zip(cols).map(|(v, c)| pg_value(v, c)).collect());
            format!("{lhs} {op} {rhs}")
        })
    };
    let parts: Vec<String> = [side(&chunk.lo, ">="), side(&chunk.hi, "<")]
        .into_iter()
        .flatten()
        .collect();
    (!parts.is_empty()).then(|| parts.join(" and "))
}

/// The chunk's range as a SQLite condition with `?` placeholders, and the values to bind.
pub fn sqlite_predicate(cols: &[String], chunk: &Chunk) -> Option<(String, Vec<KeyVal>)> {
    let lhs = tuple(cols.iter().map(|c| ident(c)).collect());
    let mut binds = Vec::new();
    let mut parts = Vec::new();
    for (b, op) in [(&chunk.lo, ">="), (&chunk.hi, "<")] {
        if let Some(vals) = b {
            parts.push(format!(
                "{lhs} {op} {}",
                tuple(vec!["?".into(); vals.len()])
            ));
            binds.extend(vals.iter().cloned());
        }
    }
    (!parts.is_empty()).then(|| (parts.join(" and "), binds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::catalog::OrderClass;

    fn col(name: &str, ty: &str) -> Column {
        Column {
            name: name.into(),
            type_name: ty.into(),
            cast_type: ty.into(),
            type_oid: 0,
            generated: false,
            identity_always: false,
            order: OrderClass::Int,
        }
    }

    #[test]
    fn predicates() {
        let a = col("a", "integer");
        let b = col("B", "text");
        let chunk = Chunk {
            lo: Some(vec![KeyVal::Int(1), KeyVal::Text("x'y".into())]),
            hi: Some(vec![KeyVal::Int(9), KeyVal::Text("z".into())]),
            est_rows: 0,
        };
        assert_eq!(
            pg_predicate(&[&a, &b], &chunk).as_deref(),
            Some("(\"a\", \"B\") >= (1::integer, 'x''y'::text) and (\"a\", \"B\") < (9::integer, 'z'::text)")
        );
        let whole = Chunk {
            lo: None,
            hi: None,
            est_rows: 0,
        };
        assert_eq!(pg_predicate(&[&a], &whole), None);
        let (sql, binds) = sqlite_predicate(&["a".into(), "B".into()], &chunk).unwrap_or_default();
        assert_eq!(sql, "(\"a\", \"B\") >= (?, ?) and (\"a\", \"B\") < (?, ?)");
        assert_eq!(binds.len(), 4);
    }
}
