//! SQL text for one side of a table: the row hash, the compared values, key ranges
//! and key lists as conditions (PostgreSQL literals cast to the side's own column
//! types; SQLite and MySQL placeholders with their values, an integer MySQL key's
//! cast to `signed` or `unsigned` so that a key read as text compares as the
//! number), and decoding rows into canonical texts. Every query here is a plain
//! `select`.

use super::canon::{canon, Val};
use super::norm::{Class, PgRead};
use super::session::Role;
use super::tables::{quote, HashFn, Mode, TableJob};
use crate::db::catalog::{Column, Engine};
use crate::db::plan::{Chunk, KeyVal};
use crate::db::range::{pg_predicate, sqlite_predicate};
use crate::db::sqltext::{ident, pg_literal};
use sqlx::mysql::{MySql, MySqlArguments, MySqlRow};
use sqlx::postgres::PgRow;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Row, Sqlite, ValueRef};

/// One row's compared values, canonical (`None`: NULL), in `TableJob::cols` order.
pub type Values = Vec<Option<String>>;

/// A condition and the values its SQLite placeholders take.
#[derive(Debug, Clone, Default)]
pub struct Cond {
    pub sql: Option<String>,
    pub binds: Vec<KeyVal>,
}

impl Cond {
    pub fn where_clause(&self) -> String {
        match &self.sql {
            Some(s) => format!(" where {s}"),
            None => String::new(),
        }
    }
}

/// One side of a job: the SQL pieces for that side's table.
#[derive(Clone, Copy)]
pub struct SideSql<'a> {
    pub job: &'a TableJob,
    pub role: Role,
}

impl<'a> SideSql<'a> {
    pub fn new(job: &'a TableJob, role: Role) -> Self {
        SideSql { job, role }
    }

    pub fn engine(&self) -> Engine {
        self.job.engine(self.role)
    }

    pub fn table(&self) -> String {
        let t = self.job.table(self.role);
        match self.engine() {
            Engine::MySql => crate::db::mysql::qualified(&t.schema, &t.name),
            Engine::Postgres | Engine::Sqlite => t.sql_name(),
        }
    }

    /// The other side of a MySQL source is read as text and canonicalised by
    /// [`super::canon_mysql`].
    fn mysql_pair(&self) -> bool {
        self.job.src_engine == Engine::MySql
    }

    fn col(&self, i: usize) -> &Column {
        self.job.col(i, self.role)
    }

    /// The server-side row hash (int8) of server mode.
    pub fn hash_expr(&self) -> String {
        let parts: Vec<&str> = self
            .job
            .cols
            .iter()
            .filter_map(|c| match self.role {
                Role::Source => c.src_expr.as_ref(),
                Role::Target => c.tgt_expr.as_ref(),
            })
            .map(|e| e.hash.as_str())
            .collect();
        if parts.is_empty() {
            return "0::int8".into();
        }
        let row = format!("row({})", parts.join(", "));
        match self.job.mode {
            Mode::Server(HashFn::Record) => format!("hash_record_extended({row}, 0)"),
            Mode::Server(HashFn::Text) => format!("hashtextextended({row}::text, 0)"),
            _ => format!("('x' || substr(md5({row}::text), 1, 16))::bit(64)::int8"),
        }
    }

    /// The select list that reads the compared values (server mode: texts; generic:
    /// values to canonicalise).
    pub fn values_list(&self) -> String {
        let parts: Vec<String> = (0..self.job.cols.len())
            .map(|i| {
                let c = &self.job.cols[i];
                let q = ident(&self.col(i).name);
                match (self.job.mode, self.engine()) {
                    (Mode::Server(_), _) => match self.role {
                        Role::Source => c.src_expr.as_ref(),
                        Role::Target => c.tgt_expr.as_ref(),
                    }
                    .map(|e| e.text.clone())
                    .unwrap_or_else(|| format!("{q}::text")),
                    (Mode::Generic, Engine::Postgres) if self.mysql_pair() => format!("{q}::text"),
                    (Mode::Generic, Engine::Postgres) => PgRead::of(self.col(i).type_oid).expr(&q),
                    (Mode::Generic, Engine::MySql) => {
                        let q = quote(Engine::MySql, &self.col(i).name);
                        match &c.my {
                            Some(m) => m.plan.expr(&q),
                            None => q,
                        }
                    }
                    (Mode::Generic, Engine::Sqlite) => q,
                }
            })
            .collect();
        if parts.is_empty() {
            "null".into()
        } else {
            parts.join(", ")
        }
    }

    /// The key columns' select list (PostgreSQL: as text, cast back by [`Self::lit`]).
    pub fn key_list(&self) -> String {
        let k: Vec<String> = self
            .job
            .key_cols(self.role)
            .iter()
            .map(|c| match self.engine() {
                Engine::Postgres => format!("{}::text", ident(&c.name)),
                Engine::MySql if mysql_binary(c) => quote(Engine::MySql, &c.name),
                Engine::MySql => format!("cast({} as char)", quote(Engine::MySql, &c.name)),
                Engine::Sqlite => ident(&c.name),
            })
            .collect();
        k.join(", ")
    }

    /// A chunk's key range as a condition on this side.
    pub fn range(&self, chunk: &Chunk) -> Cond {
        let cols = self.job.key_cols(self.role);
        match self.engine() {
            Engine::Postgres => Cond {
                sql: pg_predicate(&cols, chunk),
                binds: Vec::new(),
            },
            Engine::MySql => {
                let lhs = tuple(cols.iter().map(|c| quote(Engine::MySql, &c.name)).collect());
                let rhs = tuple(cols.iter().map(|c| mysql_placeholder(c)).collect());
                let mut parts = Vec::new();
                let mut binds = Vec::new();
                for (b, op) in [(&chunk.lo, ">="), (&chunk.hi, "<")] {
                    if let Some(vals) = b {
                        parts.push(format!("{lhs} {op} {rhs}"));
                        binds.extend(vals.iter().cloned());
                    }
                }
                Cond {
                    sql: (!parts.is_empty()).then(|| parts.join(" and ")),
                    binds,
                }
            }
            Engine::Sqlite => {
                let names: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
                match sqlite_predicate(&names, chunk) {
                    Some((sql, binds)) => Cond {
                        sql: Some(sql),
                        binds: self.sqlite_keys(&binds),
                    },
                    None => Cond::default(),
                }
            }
        }
    }

    /// Rows whose key is one of `keys`.
    pub fn key_in(&self, keys: &[Vec<KeyVal>]) -> Cond {
        let cols = self.job.key_cols(self.role);
        let lhs = tuple(cols.iter().map(|c| ident(&c.name)).collect());
        match self.engine() {
            Engine::Postgres => {
                let items: Vec<String> = keys
                    .iter()
                    .map(|k| tuple(k.iter().zip(&cols).map(|(v, c)| lit(v, c)).collect()))
                    .collect();
                Cond {
                    sql: Some(format!("{lhs} in ({})", items.join(", "))),
                    binds: Vec::new(),
                }
            }
            Engine::MySql => {
                let lhs = tuple(cols.iter().map(|c| quote(Engine::MySql, &c.name)).collect());
                let one = tuple(cols.iter().map(|c| mysql_placeholder(c)).collect());
                let list = vec![one; keys.len()].join(", ");
                Cond {
                    sql: Some(format!("{lhs} in ({list})")),
                    binds: keys.iter().flatten().cloned().collect(),
                }
            }
            Engine::Sqlite => {
                let one = tuple(vec!["?".to_string(); cols.len()]);
                let list = if cols.len() == 1 {
                    vec![one; keys.len()].join(", ")
                } else {
                    format!("values {}", vec![one; keys.len()].join(", "))
                };
                let flat: Vec<KeyVal> = keys.iter().flatten().cloned().collect();
                Cond {
                    sql: Some(format!("{lhs} in ({list})")),
                    binds: self.sqlite_keys(&flat),
                }
            }
        }
    }

    /// Key values bound on SQLite: text that is an integer becomes one for integer
    /// columns (PostgreSQL keys travel as text).
    fn sqlite_keys(&self, vals: &[KeyVal]) -> Vec<KeyVal> {
        let cols = self.job.key_cols(self.role);
        vals.iter()
            .enumerate()
            .map(|(i, v)| match v {
                KeyVal::Text(s)
                    if cols
                        .get(i % cols.len().max(1))
                        .is_some_and(|c| super::norm::sqlite_class(&c.type_name) == Class::Int) =>
                {
                    s.parse::<i64>()
                        .map(KeyVal::Int)
                        .unwrap_or_else(|_| v.clone())
                }
                _ => v.clone(),
            })
            .collect()
    }

    /// Decode a row read with [`Self::values_list`] into canonical values.
    pub fn pg_values(&self, r: &PgRow) -> Result<Values, sqlx::Error> {
        let mut out = Vec::with_capacity(self.job.cols.len());
        for (i, c) in self.job.cols.iter().enumerate() {
            out.push(match self.job.mode {
                Mode::Server(_) => r.try_get::<Option<String>, _>(i)?,
                Mode::Generic if self.mysql_pair() => {
                    let text = r.try_get::<Option<String>, _>(i)?;
                    match &c.my {
                        Some(m) => m.target(text),
                        None => text,
                    }
                }
                Mode::Generic => canon(c.class, pg_val(r, i, PgRead::of(self.col(i).type_oid))?),
            });
        }
        Ok(out)
    }

    /// Decode a MySQL row read with [`Self::values_list`]: each value as the copy
    /// writes it, canonical.
    pub fn mysql_values(&self, r: &MySqlRow) -> Result<Values, sqlx::Error> {
        let mut out = Vec::with_capacity(self.job.cols.len());
        for (i, c) in self.job.cols.iter().enumerate() {
            out.push(match &c.my {
                Some(m) => m.source(crate::db::mysql_values::read(r, i, m.plan.read)?),
                None => r.try_get_unchecked::<Option<String>, _>(i)?,
            });
        }
        Ok(out)
    }

    /// Column `i` of a MySQL row read with [`Self::key_list`], as a key value.
    pub fn mysql_key(&self, r: &MySqlRow, i: usize) -> Result<KeyVal, sqlx::Error> {
        let cols = self.job.key_cols(self.role);
        let Some(c) = cols.get(i) else {
            return Ok(KeyVal::Text(String::new()));
        };
        if mysql_binary(c) {
            let b: Vec<u8> = r.try_get_unchecked(i)?;
            return Ok(KeyVal::Blob {
                blob: crate::db::sqltext::hex(&b),
            });
        }
        let text: String = r.try_get_unchecked(i)?;
        Ok(match text.parse::<i64>() {
            Ok(n) if crate::db::catalog_mysql::is_int(&c.cast_type) => KeyVal::Int(n),
            _ => KeyVal::Text(text),
        })
    }

    pub fn sqlite_values(&self, r: &SqliteRow) -> Result<Values, sqlx::Error> {
        let mut out = Vec::with_capacity(self.job.cols.len());
        for (i, c) in self.job.cols.iter().enumerate() {
            out.push(canon(c.class, sqlite_val(r, i)?));
        }
        Ok(out)
    }
}

pub fn tuple(parts: Vec<String>) -> String {
    if parts.len() == 1 {
        parts.join("")
    } else {
        format!("({})", parts.join(", "))
    }
}

/// A key value as a PostgreSQL literal of `col`'s type.
pub fn lit(v: &KeyVal, col: &Column) -> String {
    let text = match v {
        KeyVal::Int(i) => return format!("{i}::{}", col.cast_type),
        KeyVal::Real(r) => r.to_string(),
        KeyVal::Text(s) => s.clone(),
        KeyVal::Blob { blob } => format!("\\x{blob}"),
    };
    format!("{}::{}", pg_literal(&text), col.cast_type)
}

/// A MySQL key column's placeholder: integers cast, so that a key that travelled
/// as text compares as the number (an unsigned BIGINT beyond `bigint` included).
fn mysql_placeholder(c: &Column) -> String {
    if crate::db::catalog_mysql::is_int(&c.cast_type) {
        if c.type_name.contains("unsigned") {
            "cast(? as unsigned)".into()
        } else {
            "cast(? as signed)".into()
        }
    } else {
        "?".into()
    }
}

/// A MySQL column of bytes (its keys travel as hex).
fn mysql_binary(c: &Column) -> bool {
    matches!(
        c.cast_type.as_str(),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
    )
}

pub type MySqlQuery<'q> = sqlx::query::Query<'q, MySql, MySqlArguments>;

pub fn bind_mysql<'q>(mut q: MySqlQuery<'q>, binds: &[KeyVal]) -> MySqlQuery<'q> {
    for k in binds {
        q = match k {
            KeyVal::Int(i) => q.bind(*i),
            KeyVal::Real(r) => q.bind(*r),
            KeyVal::Text(s) => q.bind(s.clone()),
            KeyVal::Blob { blob } => q.bind(unhex(blob)),
        };
    }
    q
}

pub type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

pub fn bind_all<'q>(mut q: SqliteQuery<'q>, binds: &[KeyVal]) -> SqliteQuery<'q> {
    for k in binds {
        q = match k {
            KeyVal::Int(i) => q.bind(*i),
            KeyVal::Real(r) => q.bind(*r),
            KeyVal::Text(s) => q.bind(s.clone()),
            KeyVal::Blob { blob } => q.bind(unhex(blob)),
        };
    }
    q
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| s.get(2 * i..2 * i + 2))
        .filter_map(|p| u8::from_str_radix(p, 16).ok())
        .collect()
}

/// Column `i` of a PostgreSQL row read with `how`.
pub fn pg_val(r: &PgRow, i: usize, how: PgRead) -> Result<Val, sqlx::Error> {
    Ok(match how {
        PgRead::Int => r.try_get::<Option<i64>, _>(i)?.map_or(Val::Null, Val::Int),
        PgRead::Real => r.try_get::<Option<f64>, _>(i)?.map_or(Val::Null, Val::Real),
        PgRead::Bool => r
            .try_get::<Option<bool>, _>(i)?
            .map_or(Val::Null, Val::Bool),
        PgRead::Bytes => r
            .try_get::<Option<Vec<u8>>, _>(i)?
            .map_or(Val::Null, Val::Blob),
        PgRead::Text => r
            .try_get::<Option<String>, _>(i)?
            .map_or(Val::Null, Val::Text),
    })
}

/// Column `i` of a SQLite row, by its storage class.
pub fn sqlite_val(r: &SqliteRow, i: usize) -> Result<Val, sqlx::Error> {
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

/// Column `i` of a SQLite row as a key value.
pub fn sqlite_key(r: &SqliteRow, i: usize) -> Result<KeyVal, sqlx::Error> {
    Ok(match sqlite_val(r, i)? {
        Val::Int(v) => KeyVal::Int(v),
        Val::Real(v) => KeyVal::Real(v),
        Val::Blob(b) => KeyVal::Blob {
            blob: super::canon::hex(&b).trim_start_matches("\\x").to_string(),
        },
        Val::Text(s) => KeyVal::Text(s),
        Val::Bool(b) => KeyVal::Int(b as i64),
        Val::Null => KeyVal::Text(String::new()),
    })
}
