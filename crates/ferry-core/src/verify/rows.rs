//! Row by row: pair the rows of both sides by key, and word each difference so that
//! it names the row and the column:
//!
//! ```text
//! app.users (id=42): missing on target
//! app.users (id=43): extra on target
//! app.users (id=7): changed: email "a@x.org" on source, "b@x.org" on target; bio NULL on source, "" on target
//! app.audit_log (no key): row (3, "login", NULL) 2× on source, 1× on target
//! ```
//!
//! Values are quoted with escapes (`\t`, `\n`, `\\`), NULL is `NULL`, long values are
//! cut (around the first differing character when both sides are long), and values of
//! columns whose name looks secret (password, secret, token, key, hash, salt…) are
//! `<redacted>`; a secret-looking key column shows `<redacted #1a2b3c>`, a short
//! fingerprint that tells rows apart without revealing them.

use super::norm::Class;
use super::sql::Values;
use super::tables::{ColPair, TableJob};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// Characters of a value shown at most.
const MAX_VALUE_CHARS: usize = 60;

/// One differing row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowDiff {
    Missing {
        key: String,
    },
    Extra {
        key: String,
    },
    Changed {
        key: String,
        cols: Vec<String>,
    },
    /// A table without a key: a row whose number of copies differs.
    Copies {
        row: String,
        src: i64,
        tgt: i64,
    },
}

impl RowDiff {
    pub fn line(&self, table: &str) -> String {
        match self {
            RowDiff::Missing { key } => format!("{table} {key}: missing on target"),
            RowDiff::Extra { key } => format!("{table} {key}: extra on target"),
            RowDiff::Changed { key, cols } => {
                format!("{table} {key}: changed: {}", cols.join("; "))
            }
            RowDiff::Copies { row, src, tgt } => {
                format!("{table} (no key): row {row} {src}× on source, {tgt}× on target")
            }
        }
    }

    /// Rows this difference stands for (a keyless row counts each missing copy).
    pub fn rows(&self) -> u64 {
        match self {
            RowDiff::Copies { src, tgt, .. } => src.abs_diff(*tgt),
            _ => 1,
        }
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `s` from character `start` on, at most [`MAX_VALUE_CHARS`], marked where cut.
fn excerpt(s: &str, start: usize) -> String {
    let total = s.chars().count();
    let body: String = s.chars().skip(start).take(MAX_VALUE_CHARS).collect();
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(&body);
    if start + MAX_VALUE_CHARS < total {
        out.push('…');
    }
    out
}

fn quoted(class: Class, s: &str, start: usize) -> String {
    let cut = excerpt(s, start);
    let long = s.chars().count() > MAX_VALUE_CHARS;
    let shown = if class == Class::Bytes || (class.numeric() && !long) {
        // bytes read as `\x87ab…` (hex has nothing to escape or quote)
        cut
    } else {
        format!("\"{}\"", escape(&cut))
    };
    if long {
        format!("{shown} ({} chars)", s.chars().count())
    } else {
        shown
    }
}

fn fingerprint(s: &str) -> String {
    let mut h = std::hash::DefaultHasher::new();
    s.hash(&mut h);
    format!("{:06x}", h.finish() & 0xff_ffff)
}

/// A value for display.
pub fn show(col: &ColPair, v: &Option<String>) -> String {
    match v {
        None => "NULL".into(),
        Some(_) if col.secret => "<redacted>".into(),
        Some(s) => quoted(col.class, s, 0),
    }
}

/// `(id=42)` or `(tenant=1, id=5)`.
pub fn key_text(job: &TableJob, row: &Values) -> String {
    let parts: Vec<String> = job
        .key
        .iter()
        .map(|&i| {
            let c = &job.cols[i];
            let v = row.get(i).cloned().flatten();
            let shown = match &v {
                Some(s) if c.secret => format!("<redacted #{}>", fingerprint(s)),
                _ => show(c, &v),
            };
            format!("{}={shown}", c.name)
        })
        .collect();
    format!("({})", parts.join(", "))
}

/// A whole row for display (tables without a key).
pub fn row_text(job: &TableJob, row: &Values) -> String {
    let parts: Vec<String> = job.cols.iter().zip(row).map(|(c, v)| show(c, v)).collect();
    format!("({})", parts.join(", "))
}

/// The differing columns of two rows with the same key, worded.
fn changed_cols(job: &TableJob, a: &Values, b: &Values) -> Vec<String> {
    let mut out = Vec::new();
    for (i, c) in job.cols.iter().enumerate() {
        let (x, y) = (a.get(i).cloned().flatten(), b.get(i).cloned().flatten());
        if x == y {
            continue;
        }
        let (sx, sy) = match (&x, &y) {
            _ if c.secret => ("<redacted>".to_string(), "<redacted>".to_string()),
            (Some(p), Some(q))
                if p.chars().count() > MAX_VALUE_CHARS || q.chars().count() > MAX_VALUE_CHARS =>
            {
                let same = p.chars().zip(q.chars()).take_while(|(m, n)| m == n).count();
                let start = same.saturating_sub(MAX_VALUE_CHARS / 4);
                (quoted(c.class, p, start), quoted(c.class, q, start))
            }
            _ => (show(c, &x), show(c, &y)),
        };
        let note = if c.secret { " (values differ)" } else { "" };
        out.push(format!("{} {sx} on source, {sy} on target{note}", c.name));
    }
    out
}

/// Compare the rows of one range (or the rows that differ by hash). Keyed tables
/// pair rows by key (an exactly equal row first, for duplicate keys); tables without
/// a key compare row multisets.
pub fn compare(job: &TableJob, src: Vec<Values>, tgt: Vec<Values>) -> Vec<RowDiff> {
    if job.key.is_empty() {
        return compare_multisets(job, src, tgt);
    }
    let key_of = |v: &Values| -> Vec<Option<String>> {
        job.key
            .iter()
            .map(|&i| v.get(i).cloned().flatten())
            .collect()
    };
    let mut by_key: HashMap<Vec<Option<String>>, Vec<Values>> = HashMap::new();
    let mut order: Vec<Vec<Option<String>>> = Vec::new();
    for t in tgt {
        let k = key_of(&t);
        let e = by_key.entry(k.clone()).or_default();
        if e.is_empty() {
            order.push(k);
        }
        e.push(t);
    }
    let mut out = Vec::new();
    for s in src {
        let k = key_of(&s);
        let candidates = by_key.get_mut(&k);
        match candidates {
            Some(list) if !list.is_empty() => {
                if let Some(pos) = list.iter().position(|t| *t == s) {
                    list.remove(pos);
                } else {
                    let t = list.remove(0);
                    out.push(RowDiff::Changed {
                        key: key_text(job, &s),
                        cols: changed_cols(job, &s, &t),
                    });
                }
            }
            _ => out.push(RowDiff::Missing {
                key: key_text(job, &s),
            }),
        }
    }
    for k in order {
        for t in by_key.remove(&k).unwrap_or_default() {
            out.push(RowDiff::Extra {
                key: key_text(job, &t),
            });
        }
    }
    out
}

fn compare_multisets(job: &TableJob, src: Vec<Values>, tgt: Vec<Values>) -> Vec<RowDiff> {
    let mut counts: HashMap<Values, (i64, i64)> = HashMap::new();
    let mut order = Vec::new();
    for (v, side) in src
        .into_iter()
        .map(|v| (v, 0))
        .chain(tgt.into_iter().map(|v| (v, 1)))
    {
        let e = counts.entry(v.clone()).or_insert_with(|| {
            order.push(v);
            (0, 0)
        });
        if side == 0 {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    order
        .into_iter()
        .filter_map(|v| {
            let (a, b) = counts.get(&v).copied().unwrap_or_default();
            (a != b).then(|| RowDiff::Copies {
                row: row_text(job, &v),
                src: a,
                tgt: b,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_cut() {
        assert_eq!(escape("a\tb\n\\\"c"), r#"a\tb\n\\\"c"#);
        let long = "x".repeat(100);
        let q = quoted(Class::Text, &long, 0);
        assert!(q.ends_with("…\" (100 chars)"), "{q}");
        assert_eq!(quoted(Class::Int, "42", 0), "42");
        assert_eq!(
            quoted(Class::Bytes, "\\x87ab", 0),
            "\\x87ab",
            "bytes as hex, once"
        );
        assert_eq!(quoted(Class::Text, "", 0), "\"\"");
    }
}
