//! The schema check: columns (name, type, nullability, default, identity, generated
//! expression, collation), the primary key, unique, foreign-key and check
//! constraints, indexes, the sequences that feed columns (with their next values: a
//! target sequence whose next value is not above `max(column)` would hand out keys
//! that already exist, and one behind the source's may reuse keys the source handed
//! out), and enum labels. Each difference is one line naming the object, e.g.
//!
//! ```text
//! app.conversations.started: timestamptz on source, timestamp on target
//! app.users: index users_email_idx missing on target (CREATE INDEX users_email_idx ON app.users USING btree (email))
//! app.users: sequence app.users_id_seq on target is behind the data: next value 11, max(id) = 1000
//! ```
//!
//! Between two PostgreSQL servers (or two SQLite files) definitions are compared as
//! the server prints them. Across engines only what both can express is compared:
//! column names, type *classes* (see [`super::norm`]), nullability, key columns,
//! unique and index column lists (by index name), foreign-key columns and the
//! referenced table; defaults, check constraints and sequence values are not (SQLite
//! spells them differently or has none), except that a target sequence behind its
//! data is always a difference. SQLite check constraints are not read.
//!
//! From a MySQL source: column names, nullability, the primary key; unique keys and
//! plain indexes by their column lists (names differ between engines; a MySQL unique
//! index and a PostgreSQL unique constraint or unique index are the same key), the
//! index MySQL makes for a foreign key's columns aside; foreign keys; and a target
//! sequence behind the source's `AUTO_INCREMENT` counter. Whether the types hold the
//! same values is the copy's mapping (docs/mysql.md): a column pair the copy cannot
//! carry is reported when the tables are paired, whatever the checks.

use super::norm::{pg_class, sqlite_class, Class};
use crate::db::catalog::Engine;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColInfo {
    pub name: String,
    pub type_name: String,
    /// PostgreSQL type oid (0 for SQLite).
    pub type_oid: u32,
    pub notnull: bool,
    pub default: Option<String>,
    pub identity: Option<String>,
    pub generated: Option<String>,
    pub collation: Option<String>,
}

/// A constraint or an index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Def {
    pub name: String,
    /// As the engine prints it.
    pub def: String,
    pub columns: Vec<String>,
    pub unique: bool,
    /// Foreign keys: the referenced table (unqualified) and columns.
    pub ref_table: Option<String>,
    pub ref_columns: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seq {
    pub name: String,
    pub column: String,
    /// The value the next call would return (`None`: unknown).
    pub next: Option<i64>,
    pub increment: i64,
    /// `max(column)` of the table.
    pub max: Option<i64>,
    /// How far `next` may run ahead of the value really next: a standby reads
    /// sequences as WAL-logged, up to 32 calls ahead of its primary.
    pub slack: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableSchema {
    pub columns: Vec<ColInfo>,
    pub pk: Vec<String>,
    pub uniques: Vec<Def>,
    pub fks: Vec<Def>,
    pub checks: Vec<Def>,
    pub indexes: Vec<Def>,
    pub sequences: Vec<Seq>,
    /// PostgreSQL: the partition key of a partitioned table (`RANGE (at)`).
    pub partition_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnumType {
    pub name: String,
    pub labels: Vec<String>,
}

/// A type name as people write it.
pub fn short_type(t: &str) -> String {
    let mut s = t.to_string();
    for (long, short) in [
        ("timestamp with time zone", "timestamptz"),
        ("timestamp without time zone", "timestamp"),
        ("time with time zone", "timetz"),
        ("time without time zone", "time"),
        ("character varying", "varchar"),
        ("double precision", "float8"),
    ] {
        s = s.replace(long, short);
    }
    if s.starts_with("timestamp(") && s.ends_with(") with time zone") {
        s = s
            .replace(") with time zone", ")")
            .replacen("timestamp", "timestamptz", 1);
    }
    s
}

fn class_of(c: &ColInfo, e: Engine) -> Class {
    match e {
        Engine::Postgres => pg_class(c.type_oid),
        Engine::Sqlite | Engine::MySql => sqlite_class(&c.type_name),
    }
}

/// Whether a PostgreSQL class is stored faithfully under a SQLite class.
fn classes_fit(pg: Class, lite: Class) -> bool {
    match pg {
        Class::Int | Class::Bool => {
            matches!(lite, Class::Int | Class::Bool | Class::Numeric | Class::Any)
        }
        Class::Real | Class::Numeric => {
            matches!(
                lite,
                Class::Real | Class::Numeric | Class::Text | Class::Any
            )
        }
        Class::Bytes => matches!(lite, Class::Bytes | Class::Any),
        _ => matches!(
            lite,
            Class::Text | Class::Timestamp | Class::Json | Class::Any | Class::Numeric
        ),
    }
}

fn list(v: &[String]) -> String {
    format!("({})", v.join(", "))
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "none".into())
}

/// Compare one table's schemas; each difference is a line (`table` is `schema.name`).
pub fn compare(
    table: &str,
    s: &TableSchema,
    t: &TableSchema,
    se: Engine,
    te: Engine,
) -> Vec<String> {
    let mut c = Comparison {
        table,
        s,
        t,
        se,
        te,
        same: se == te,
        out: Vec::new(),
    };
    c.columns();
    c.partitioning();
    c.primary_key();
    if se == Engine::MySql {
        c.mysql_keys();
    } else {
        c.constraints();
        c.indexes();
    }
    c.sequences();
    c.out
}

/// One table's schema comparison: both sides, their engines, and the differences
/// found so far. Across engines names compare without case and only what both
/// engines can express is compared.
struct Comparison<'a> {
    table: &'a str,
    s: &'a TableSchema,
    t: &'a TableSchema,
    se: Engine,
    te: Engine,
    same: bool,
    out: Vec<String>,
}

impl Comparison<'_> {
    fn eq(&self, a: &str, b: &str) -> bool {
        if self.same {
            a == b
        } else {
            a.eq_ignore_ascii_case(b)
        }
    }

    fn key_eq(&self, a: &[String], b: &[String]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| self.eq(x, y))
    }

    /// The same constraint or index: the same definition, or across engines the
    /// same columns, uniqueness and referenced table and columns.
    fn same_def(&self, a: &Def, b: &Def) -> bool {
        if self.same {
            a.def == b.def
        } else {
            self.key_eq(&a.columns, &b.columns)
                && a.unique == b.unique
                && a.ref_table.as_deref().map(str::to_ascii_lowercase)
                    == b.ref_table.as_deref().map(str::to_ascii_lowercase)
                && self.key_eq(&a.ref_columns, &b.ref_columns)
        }
    }

    /// Columns missing, extra or different on the target.
    fn columns(&mut self) {
        let (table, s, t) = (self.table, self.s, self.t);
        for sc in &s.columns {
            let Some(tc) = t.columns.iter().find(|c| self.eq(&c.name, &sc.name)) else {
                self.out.push(format!(
                    "{table}.{}: column missing on target ({})",
                    sc.name,
                    short_type(&sc.type_name)
                ));
                continue;
            };
            self.column(sc, tc);
        }
        for tc in &t.columns {
            if !s.columns.iter().any(|c| self.eq(&c.name, &tc.name)) {
                self.out.push(format!(
                    "{table}.{}: column extra on target ({})",
                    tc.name,
                    short_type(&tc.type_name)
                ));
            }
        }
    }

    /// How column `sc` of the source and `tc` of the target differ.
    fn column(&mut self, sc: &ColInfo, tc: &ColInfo) {
        let (same, se, te) = (self.same, self.se, self.te);
        let col = format!("{}.{}", self.table, sc.name);
        if same && sc.type_name != tc.type_name {
            self.out.push(format!(
                "{col}: {} on source, {} on target",
                short_type(&sc.type_name),
                short_type(&tc.type_name)
            ));
        } else if !same && se != Engine::MySql {
            let (pg, lite) = match se {
                Engine::Postgres => (class_of(sc, se), class_of(tc, te)),
                Engine::Sqlite | Engine::MySql => (class_of(tc, te), class_of(sc, se)),
            };
            if !classes_fit(pg, lite) {
                self.out.push(format!(
                    "{col}: {} on source, {} on target (types do not hold the same values)",
                    short_type(&sc.type_name),
                    short_type(&tc.type_name)
                ));
            }
        }
        // SQLite reports an INTEGER PRIMARY KEY as nullable; it never holds NULL
        let key_col = self.s.pk.iter().any(|k| self.eq(k, &sc.name))
            && self.t.pk.iter().any(|k| self.eq(k, &tc.name));
        if sc.notnull != tc.notnull && (same || !key_col) {
            let word = |n: bool| if n { "NOT NULL" } else { "nullable" };
            self.out.push(format!(
                "{col}: {} on source, {} on target",
                word(sc.notnull),
                word(tc.notnull)
            ));
        }
        if same {
            for (what, a, b) in [
                ("default", &sc.default, &tc.default),
                ("identity", &sc.identity, &tc.identity),
                ("generated as", &sc.generated, &tc.generated),
                ("collation", &sc.collation, &tc.collation),
            ] {
                if a != b {
                    self.out.push(format!(
                        "{col}: {what} {} on source, {} on target",
                        opt(a),
                        opt(b)
                    ));
                }
            }
        }
    }

    /// A partitioning that differs (same engine only).
    fn partitioning(&mut self) {
        let (s, t) = (self.s, self.t);
        if self.same && s.partition_key != t.partition_key {
            let word = |k: &Option<String>| match k {
                Some(k) => format!("partitioned by {k}"),
                None => "not partitioned".to_string(),
            };
            self.out.push(format!(
                "{}: {} on source, {} on target",
                self.table,
                word(&s.partition_key),
                word(&t.partition_key)
            ));
        }
    }

    /// A primary key missing, extra or different on the target.
    fn primary_key(&mut self) {
        let (table, s, t) = (self.table, self.s, self.t);
        match (s.pk.is_empty(), t.pk.is_empty()) {
            (false, true) => self.out.push(format!(
                "{table}: primary key {} missing on target",
                list(&s.pk)
            )),
            (true, false) => self.out.push(format!(
                "{table}: primary key {} on target only",
                list(&t.pk)
            )),
            _ if !self.key_eq(&s.pk, &t.pk) => self.out.push(format!(
                "{table}: primary key {} on source, {} on target",
                list(&s.pk),
                list(&t.pk)
            )),
            _ => {}
        }
    }

    /// Unique constraints, foreign keys and (same engine) check constraints on one
    /// side only.
    fn constraints(&mut self) {
        let (table, s, t) = (self.table, self.s, self.t);
        let mut defs = vec![
            ("unique constraint", &s.uniques, &t.uniques),
            ("foreign key", &s.fks, &t.fks),
        ];
        if self.same {
            defs.push(("check constraint", &s.checks, &t.checks));
        }
        let mut found = Vec::new();
        for (what, a, b) in defs {
            for d in a.iter().filter(|d| !b.iter().any(|e| self.same_def(d, e))) {
                found.push(format!(
                    "{table}: {what} {} {} missing on target",
                    d.name,
                    shown(d)
                ));
            }
            for d in b.iter().filter(|d| !a.iter().any(|e| self.same_def(d, e))) {
                found.push(format!(
                    "{table}: {what} {} {} extra on target",
                    d.name,
                    shown(d)
                ));
            }
        }
        self.out.extend(found);
    }

    /// Indexes missing, extra or defined differently on the target.
    fn indexes(&mut self) {
        let (table, s, t) = (self.table, self.s, self.t);
        for ix in &s.indexes {
            match t.indexes.iter().find(|i| self.eq(&i.name, &ix.name)) {
                None => self.out.push(format!(
                    "{table}: index {} missing on target ({})",
                    ix.name,
                    shown(ix)
                )),
                Some(ti) if !self.same_def(ix, ti) => self.out.push(format!(
                    "{table}: index {}: {} on source, {} on target",
                    ix.name,
                    shown(ix),
                    shown(ti)
                )),
                Some(_) => {}
            }
        }
        for ix in &t.indexes {
            if !s.indexes.iter().any(|i| self.eq(&i.name, &ix.name)) {
                self.out.push(format!(
                    "{table}: index {} extra on target ({})",
                    ix.name,
                    shown(ix)
                ));
            }
        }
    }

    /// Target sequences behind the target's data, and (same engine) sequences
    /// missing on the target or behind the source's.
    fn sequences(&mut self) {
        let (table, s, t) = (self.table, self.s, self.t);
        for ts in &t.sequences {
            if let (Some(next), Some(max)) = (ts.next, ts.max) {
                let behind = if ts.increment >= 0 {
                    next <= max
                } else {
                    false
                };
                if behind {
                    self.out.push(format!(
                        "{table}: sequence {} on target is behind the data: next value {next}, max({}) = {max}",
                        ts.name, ts.column
                    ));
                }
            }
        }
        if self.se == Engine::MySql {
            self.behind_auto_increment();
        }
        if !self.same {
            return;
        }
        for ss in &s.sequences {
            match t.sequences.iter().find(|q| q.column == ss.column) {
                None => self.out.push(format!(
                    "{table}: sequence {} (of column {}) missing on target",
                    ss.name, ss.column
                )),
                Some(ts) => {
                    if let (Some(a), Some(b)) = (ss.next, ts.next) {
                        if ss.increment > 0 && b < a.saturating_sub(ss.slack) {
                            let read_ahead = if ss.slack > 0 {
                                format!("; the source is a standby, whose sequences read up to {} ahead", ss.slack)
                            } else {
                                String::new()
                            };
                            self.out.push(format!(
                                "{table}: sequence {}: next value {a} on source, {b} on target (behind the source{read_ahead})",
                                ts.name
                            ));
                        }
                    }
                }
            }
        }
    }
}

impl Comparison<'_> {
    /// A MySQL source: unique keys, foreign keys and plain indexes by their columns.
    fn mysql_keys(&mut self) {
        let (table, s, t) = (self.table, self.s, self.t);
        let fk_cols: Vec<&Vec<String>> = s.fks.iter().map(|f| &f.columns).collect();
        let src_uniq: Vec<&Def> = s.uniques.iter().collect();
        let tgt_uniq: Vec<&Def> = t
            .uniques
            .iter()
            .chain(t.indexes.iter().filter(|i| i.unique))
            .collect();
        let src_plain: Vec<&Def> = s
            .indexes
            .iter()
            .filter(|i| {
                // MySQL's own index for a foreign key's columns
                !s.fks.iter().any(|f| f.name == i.name) && !fk_cols.contains(&&i.columns)
            })
            .collect();
        let tgt_plain: Vec<&Def> = t.indexes.iter().filter(|i| !i.unique).collect();
        let mut found = Vec::new();
        for (what, a, b) in [
            ("unique key", &src_uniq, &tgt_uniq),
            ("index", &src_plain, &tgt_plain),
        ] {
            for d in a
                .iter()
                .filter(|d| !b.iter().any(|e| self.key_eq(&d.columns, &e.columns)))
            {
                found.push(format!(
                    "{table}: {what} {} {} missing on target",
                    d.name,
                    list(&d.columns)
                ));
            }
            for d in b
                .iter()
                .filter(|d| !a.iter().any(|e| self.key_eq(&d.columns, &e.columns)))
            {
                found.push(format!(
                    "{table}: {what} {} {} extra on target",
                    d.name,
                    list(&d.columns)
                ));
            }
        }
        for d in s
            .fks
            .iter()
            .filter(|d| !t.fks.iter().any(|e| self.same_def(d, e)))
        {
            found.push(format!(
                "{table}: foreign key {} {} missing on target",
                d.name,
                shown(d)
            ));
        }
        for d in t
            .fks
            .iter()
            .filter(|d| !s.fks.iter().any(|e| self.same_def(d, e)))
        {
            found.push(format!(
                "{table}: foreign key {} {} extra on target",
                d.name,
                shown(d)
            ));
        }
        self.out.extend(found);
    }

    /// A target sequence whose next value is below the MySQL `AUTO_INCREMENT`
    /// counter of its column: once writes go to the target, it hands out keys the
    /// source already gave.
    fn behind_auto_increment(&mut self) {
        let (table, s, t) = (self.table, self.s, self.t);
        for ss in &s.sequences {
            let Some(ts) = t.sequences.iter().find(|q| self.eq(&q.column, &ss.column)) else {
                continue;
            };
            if let (Some(a), Some(b)) = (ss.next, ts.next) {
                if ts.increment > 0 && b < a {
                    self.out.push(format!(
                        "{table}: sequence {} on target is behind the source: next value {b}, \
                         AUTO_INCREMENT {a} on source",
                        ts.name
                    ));
                }
            }
        }
    }
}

/// A constraint or index as shown: its definition, or its columns.
fn shown(d: &Def) -> String {
    if d.def.is_empty() {
        list(&d.columns)
    } else {
        d.def.clone()
    }
}

/// Compare the enum types the compared columns use (same engine only).
pub fn compare_enums(s: &[EnumType], t: &[EnumType]) -> Vec<String> {
    let mut out = Vec::new();
    for e in s {
        match t.iter().find(|x| x.name == e.name) {
            None => out.push(format!("enum {} missing on target", e.name)),
            Some(x) if x.labels != e.labels => out.push(format!(
                "enum {}: labels {} on source, {} on target",
                e.name,
                list(&e.labels),
                list(&x.labels)
            )),
            Some(_) => {}
        }
    }
    out
}
