//! Which tables are compared, and how: the source tables selected by the step's
//! globs (minus `exclude`) paired with the target's table of the same name, the
//! columns both have, the key rows are named by, and the strategy.
//!
//! - **Key ranges** when both sides have the same primary key and its columns order
//!   the same way on both (integers; text under a byte-order collation; the same
//!   built-in type on the same engine): the copy planner's chunks, checksummed and
//!   bisected.
//! - **Row hashes** otherwise (no key, a key only one side has, or a key whose order
//!   may differ, such as text under a locale collation): the multiset of row hashes
//!   is compared, bucket by bucket, and the differing rows are fetched by hash; rows
//!   are still named by the source's key when there is one.
//!
//! A MySQL source is read and hashed by ferry (generic mode): each column pair gets
//! the copy's conversion ([`super::canon_mysql::MyCol`]); a pair the copy cannot
//! carry is left out of the comparison and reported as a difference. Only integer
//! keys (not `BIGINT UNSIGNED`) are ranged: a MySQL text key sorts by its collation
//! (case-insensitive, `PAD SPACE`), so text-keyed tables go by row hashes and rows
//! are paired by key values, never by position.

use super::canon_mysql::MyCol;
use super::norm::{pair_class, pg_expr, Class, PgExpr};
use super::session::Role;
use crate::db::catalog::select;
use crate::db::catalog::{Catalog, Column, Engine, OrderClass, Table};
use crate::db::sqltext::ident;
use crate::runbook::ZeroDates;
use std::collections::HashSet;

/// How PostgreSQL servers hash a row (chosen by the older server's version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFn {
    /// `hash_record_extended` (PG 14+).
    Record,
    /// `hashtextextended(row(...)::text)` (PG 11+).
    Text,
    /// 64 bits of `md5(row(...)::text)`.
    Md5,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Both sides PostgreSQL: checksums computed by the servers.
    Server(HashFn),
    /// SQLite on a side: rows read, normalised and hashed by ferry.
    Generic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Ranges,
    Hashed,
}

/// A column both sides have.
#[derive(Debug, Clone)]
pub struct ColPair {
    /// The source's name (shown in differences).
    pub name: String,
    pub src: Column,
    pub tgt: Column,
    pub class: Class,
    /// Its values are never shown.
    pub secret: bool,
    /// Server mode: the expression on each side.
    pub src_expr: Option<PgExpr>,
    pub tgt_expr: Option<PgExpr>,
    /// A MySQL source: how the copy carries the column, and the target's form.
    pub my: Option<MyCol>,
}

/// One table to compare.
#[derive(Debug, Clone)]
pub struct TableJob {
    /// The source's `schema.table`: names the table everywhere.
    pub name: String,
    pub src: Table,
    pub tgt: Table,
    pub src_engine: Engine,
    pub tgt_engine: Engine,
    pub cols: Vec<ColPair>,
    /// Key columns, as indexes into `cols` (empty: rows have no name but their content).
    pub key: Vec<usize>,
    pub strategy: Strategy,
    pub mode: Mode,
    /// Source columns the target lacks, and target columns the source lacks.
    pub missing_cols: Vec<String>,
    pub extra_cols: Vec<String>,
    /// A MySQL source: columns the copy cannot carry into the target's column, with
    /// why; their values are not compared.
    pub uncarried: Vec<String>,
    /// Why the table is compared by row hashes, when it is.
    pub why_hashed: Option<String>,
}

impl TableJob {
    pub fn table(&self, role: Role) -> &Table {
        match role {
            Role::Source => &self.src,
            Role::Target => &self.tgt,
        }
    }

    pub fn engine(&self, role: Role) -> Engine {
        match role {
            Role::Source => self.src_engine,
            Role::Target => self.tgt_engine,
        }
    }

    pub fn col(&self, i: usize, role: Role) -> &Column {
        match role {
            Role::Source => &self.cols[i].src,
            Role::Target => &self.cols[i].tgt,
        }
    }

    /// The key columns on `role`'s side.
    pub fn key_cols(&self, role: Role) -> Vec<&Column> {
        self.key.iter().map(|&i| self.col(i, role)).collect()
    }

    /// `order by` list of the key on `role`'s side (empty without a key).
    pub fn key_order(&self, role: Role) -> String {
        let engine = self.engine(role);
        let k: Vec<String> = self
            .key_cols(role)
            .iter()
            .map(|c| quote(engine, &c.name))
            .collect();
        k.join(", ")
    }

    pub fn est_rows(&self) -> u64 {
        self.src.est_rows.unwrap_or(0)
    }
}

/// `name` quoted for `engine` (backticks on MySQL, double quotes elsewhere).
pub fn quote(engine: Engine, name: &str) -> String {
    match engine {
        Engine::MySql => crate::db::mysql::ident(name),
        Engine::Postgres | Engine::Sqlite => ident(name),
    }
}

/// Column names whose values look like secrets: never shown.
pub fn looks_secret(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    if [
        "password",
        "passwd",
        "secret",
        "token",
        "hash",
        "salt",
        "apikey",
        "credential",
    ]
    .iter()
    .any(|w| l.contains(w))
    {
        return true;
    }
    // "key" as a word: api_key, private_key, key (not monkey, keyboard)
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let boundary =
            !c.is_alphanumeric() || (c.is_uppercase() && i > 0 && chars[i - 1].is_lowercase());
        if boundary && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        if c.is_alphanumeric() {
            cur.push(c.to_ascii_lowercase());
        }
    }
    words.push(cur);
    // a bare `key` names a row (key/value settings tables); `api_key`, `privateKey`,
    // `ssh_keys` hold one
    const QUALIFIERS: &[&str] = &[
        "api",
        "private",
        "secret",
        "access",
        "signing",
        "sign",
        "encryption",
        "encrypt",
        "enc",
        "ssh",
        "hmac",
        "master",
        "client",
        "license",
        "session",
        "auth",
        "crypto",
        "aes",
        "rsa",
        "gpg",
        "pgp",
    ];
    words.iter().any(|w| w == "pwd")
        || words
            .windows(2)
            .any(|p| (p[1] == "key" || p[1] == "keys") && QUALIFIERS.contains(&p[0].as_str()))
}

/// The tables to compare.
#[derive(Debug, Default)]
pub struct Pairing {
    pub jobs: Vec<TableJob>,
    /// Selected source tables the target does not have.
    pub missing: Vec<String>,
    /// Target tables the globs select that the source does not have (same engine only).
    pub extra: Vec<String>,
}

fn find_target<'a>(src: &Table, tgt: &'a Catalog, cross: bool) -> Option<&'a Table> {
    if let Some(t) = tgt.find(&src.qualified_name()) {
        return Some(t);
    }
    if !cross {
        return None;
    }
    let same: Vec<&Table> = tgt
        .tables
        .iter()
        .filter(|t| t.name.eq_ignore_ascii_case(&src.name))
        .collect();
    match same.as_slice() {
        [one] => Some(one),
        many => many.iter().copied().find(|t| t.schema == "public"),
    }
}

fn orders_match(a: &OrderClass, b: &OrderClass, same_engine: bool) -> bool {
    match (a, b) {
        (OrderClass::Unsafe, _) | (_, OrderClass::Unsafe) => false,
        (OrderClass::Typed(x), OrderClass::Typed(y)) => same_engine && x == y,
        (x, y) => x == y,
    }
}

/// Pair the selected tables. `nondet`: (side, table oid, column) with a
/// non-deterministic collation (PostgreSQL 12+). `zero_dates`: how a MySQL
/// source's zero dates were carried.
pub fn pair(
    include: &[String],
    exclude: &[String],
    src: &Catalog,
    tgt: &Catalog,
    nondet: &HashSet<(Role, u32, String)>,
    zero_dates: ZeroDates,
) -> Pairing {
    let cross = src.engine != tgt.engine;
    let mode = match (src.engine, tgt.engine) {
        (Engine::Postgres, Engine::Postgres) => {
            let v = src.major.min(tgt.major);
            Mode::Server(if v >= 14 {
                HashFn::Record
            } else if v >= 11 {
                HashFn::Text
            } else {
                HashFn::Md5
            })
        }
        _ => Mode::Generic,
    };
    let trim = src.major.min(tgt.major) >= 13;
    let mut out = Pairing::default();
    for s in select(src, include, exclude) {
        let Some(t) = find_target(s, tgt, cross) else {
            out.missing.push(s.qualified_name());
            continue;
        };
        let same_name = |a: &str, b: &str| {
            if cross {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        let mut cols = Vec::new();
        let mut missing_cols = Vec::new();
        let mut uncarried = Vec::new();
        for sc in &s.columns {
            let Some(tc) = t.columns.iter().find(|c| same_name(&c.name, &sc.name)) else {
                missing_cols.push(sc.name.clone());
                continue;
            };
            let my = if src.engine == Engine::MySql {
                match MyCol::new(sc, tc, zero_dates) {
                    Ok(m) => Some(m),
                    Err(why) => {
                        uncarried.push(why);
                        continue;
                    }
                }
            } else {
                None
            };
            let (src_expr, tgt_expr) = match mode {
                Mode::Server(_) => {
                    let nd_s = nondet.contains(&(Role::Source, s.oid, sc.name.clone()));
                    let nd_t = nondet.contains(&(Role::Target, t.oid, tc.name.clone()));
                    (
                        Some(pg_expr(&ident(&sc.name), sc, tc, nd_s, trim)),
                        Some(pg_expr(&ident(&tc.name), tc, sc, nd_t, trim)),
                    )
                }
                Mode::Generic => (None, None),
            };
            cols.push(ColPair {
                name: sc.name.clone(),
                class: pair_class(sc, src.engine, tc, tgt.engine),
                secret: looks_secret(&sc.name),
                src: sc.clone(),
                tgt: tc.clone(),
                src_expr,
                tgt_expr,
                my,
            });
        }
        let extra_cols: Vec<String> = t
            .columns
            .iter()
            .filter(|tc| !s.columns.iter().any(|sc| same_name(&sc.name, &tc.name)))
            .map(|c| c.name.clone())
            .collect();
        let src_key: Vec<&Column> = s.key_columns();
        let key: Vec<usize> = src_key
            .iter()
            .filter_map(|k| cols.iter().position(|c| c.name == k.name))
            .collect();
        let key = if key.len() == src_key.len() {
            key
        } else {
            Vec::new()
        };
        let tgt_key: Vec<&Column> = t.key_columns();
        let why_hashed = if key.is_empty() {
            Some("it has no primary key".to_string())
        } else if tgt_key.len() != key.len()
            || key
                .iter()
                .zip(&tgt_key)
                .any(|(&i, tk)| !same_name(&cols[i].tgt.name, &tk.name))
        {
            Some("its primary key differs on the target".to_string())
        } else if key
            .iter()
            .any(|&i| !orders_match(&cols[i].src.order, &cols[i].tgt.order, !cross))
        {
            Some("its key may sort differently on the two sides (locale collation or different types)".to_string())
        } else {
            None
        };
        out.jobs.push(TableJob {
            name: s.qualified_name(),
            src: s.clone(),
            tgt: t.clone(),
            src_engine: src.engine,
            tgt_engine: tgt.engine,
            cols,
            key,
            strategy: if why_hashed.is_some() {
                Strategy::Hashed
            } else {
                Strategy::Ranges
            },
            mode,
            missing_cols,
            extra_cols,
            uncarried,
            why_hashed,
        });
    }
    if !cross {
        for t in select(tgt, include, exclude) {
            if src.find(&t.qualified_name()).is_none() {
                out.extra.push(t.qualified_name());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for n in [
            "password",
            "password_hash",
            "api_key",
            "apiKey",
            "Secret",
            "reset_token",
            "salt",
            "private_key",
            "accessKey",
            "ssh_keys",
            "user_pwd",
        ] {
            assert!(looks_secret(n), "{n}");
        }
        for n in [
            "monkey",
            "keyboard",
            "email",
            "name",
            "keynote",
            "turkey_count",
            "key",
            "sort_key",
            "public_key",
        ] {
            assert!(!looks_secret(n), "{n}");
        }
    }
}
