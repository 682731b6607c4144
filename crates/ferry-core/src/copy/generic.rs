//! The generic row path, for copies with SQLite on either side: rows are read from
//! the source (a SQLite source page by page in key order — keyset pagination by the
//! primary key, or by rowid for a table without one; a PostgreSQL source as one
//! streamed query per chunk) and written with batched multi-row INSERTs, inside the
//! target transaction that also clears the chunk's range and writes its checkpoint.
//! Type mapping: see [`super::values`].

use super::checkpoint;
use super::conn::Conn;
use super::prepare::{Clear, TableSpec};
use super::progress::Meter;
use super::values::{check_for_sqlite, pg_text, pg_val, sqlite_val, PgRead, Val};
use super::worker::{ChunkDone, ChunkError};
use crate::db::plan::{Chunk, KeyVal};
use crate::db::range::{pg_predicate, sqlite_predicate};
use crate::db::sqltext::ident;
use crate::db::sqltext::unhex;
use futures::StreamExt;
use sqlx::{Connection, Postgres, Sqlite, Transaction};

/// Rows read per page from a SQLite source.
const PAGE_ROWS: usize = 2000;
/// Rows per INSERT into PostgreSQL (one array parameter per column).
const PG_INSERT_ROWS: usize = 1000;
/// SQLite's default limit on bound parameters is 32766.
const SQLITE_MAX_PARAMS: usize = 32000;

/// The open target transaction of a chunk.
enum Sink<'c> {
    Pg(Transaction<'c, Postgres>),
    Sqlite(Transaction<'c, Sqlite>),
}

fn bind_key<'q>(
    q: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    k: &KeyVal,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    match k {
        KeyVal::Int(i) => q.bind(*i),
        KeyVal::Real(r) => q.bind(*r),
        KeyVal::Text(s) => q.bind(s.clone()),
        KeyVal::Blob { blob } => q.bind(unhex(blob).unwrap_or_default()),
    }
}

impl Sink<'_> {
    /// The chunk's checkpoint, when an earlier attempt committed it.
    async fn done(
        &mut self,
        step: &str,
        spec: &TableSpec,
        chunk: &Chunk,
    ) -> Result<Option<(i64, i64)>, sqlx::Error> {
        match self {
            Sink::Pg(tx) => checkpoint::pg_done(tx, step, &spec.name, chunk).await,
            Sink::Sqlite(tx) => checkpoint::sqlite_done(tx, step, &spec.name, chunk).await,
        }
    }

    async fn mark(
        &mut self,
        step: &str,
        spec: &TableSpec,
        chunk: &Chunk,
        rows: u64,
        bytes: u64,
    ) -> Result<(), sqlx::Error> {
        match self {
            Sink::Pg(tx) => checkpoint::pg_mark(tx, step, &spec.name, chunk, rows, bytes).await,
            Sink::Sqlite(tx) => {
                checkpoint::sqlite_mark(tx, step, &spec.name, chunk, rows, bytes).await
            }
        }
    }

    async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Sink::Pg(tx) => tx.commit().await,
            Sink::Sqlite(tx) => tx.commit().await,
        }
    }

    /// Make room for the chunk, as `spec.clear` says.
    async fn clear(&mut self, spec: &TableSpec, chunk: &Chunk) -> Result<(), sqlx::Error> {
        let t = spec.tgt.sql_name();
        match (self, spec.clear) {
            (_, Clear::Nothing) => Ok(()),
            (Sink::Pg(tx), clear) => {
                let sql = match (clear, pg_predicate(&spec.tgt.key_columns(), chunk)) {
                    (Clear::Range, Some(p)) => format!("delete from {t} where {p}"),
                    _ => format!("delete from {t}"),
                };
                sqlx::query(&sql).execute(&mut **tx).await.map(|_| ())
            }
            (Sink::Sqlite(tx), clear) => {
                let names: Vec<String> = spec
                    .tgt
                    .key_columns()
                    .iter()
                    .map(|c| c.name.clone())
                    .collect();
                match (clear, sqlite_predicate(&names, chunk)) {
                    (Clear::Range, Some((p, binds))) => {
                        let sql = format!("delete from {t} where {p}");
                        let mut q = sqlx::query(&sql);
                        for b in &binds {
                            q = bind_key(q, b);
                        }
                        q.execute(&mut **tx).await.map(|_| ())
                    }
                    _ => sqlx::query(&format!("delete from {t}"))
                        .execute(&mut **tx)
                        .await
                        .map(|_| ()),
                }
            }
        }
    }

    /// Insert `rows` (values in `spec.cols` order).
    async fn insert(&mut self, spec: &TableSpec, rows: Vec<Vec<Val>>) -> Result<(), ChunkError> {
        let t = spec.tgt.sql_name();
        let names: Vec<String> = spec.tgt_cols.iter().map(|c| ident(&c.name)).collect();
        match self {
            Sink::Pg(tx) => {
                let n = spec.tgt_cols.len();
                let mut columns: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(rows.len()); n];
                for row in rows {
                    for (i, v) in row.into_iter().enumerate() {
                        let col = &spec.tgt_cols[i];
                        columns[i].push(pg_text(v, col).map_err(ChunkError::Fatal)?);
                    }
                }
                let overriding = if spec.tgt_cols.iter().any(|c| c.identity_always) {
                    " overriding system value"
                } else {
                    ""
                };
                let casts: Vec<String> = spec
                    .tgt_cols
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("u.c{i}::{}", c.cast_type))
                    .collect();
                let arrays: Vec<String> = (1..=n).map(|i| format!("${i}::text[]")).collect();
                let aliases: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
                let sql = format!(
                    "insert into {t} ({}){overriding} select {} from unnest({}) as u({})",
                    names.join(", "),
                    casts.join(", "),
                    arrays.join(", "),
                    aliases.join(", ")
                );
                let mut q = sqlx::query(&sql).persistent(false);
                for c in columns {
                    q = q.bind(c);
                }
                q.execute(&mut **tx).await?;
            }
            Sink::Sqlite(tx) => {
                let per = (SQLITE_MAX_PARAMS / names.len().max(1)).clamp(1, 500);
                let one = format!("({})", vec!["?"; names.len()].join(", "));
                for batch in rows.chunks(per) {
                    let sql = format!(
                        "insert into {t} ({}) values {}",
                        names.join(", "),
                        vec![one.as_str(); batch.len()].join(", ")
                    );
                    let mut q = sqlx::query(&sql);
                    for row in batch {
                        for (i, v) in row.iter().enumerate() {
                            check_for_sqlite(v, &spec.tgt_cols[i]).map_err(ChunkError::Fatal)?;
                            q = match v {
                                Val::Null => q.bind(None::<i64>),
                                Val::Int(x) => q.bind(*x),
                                Val::Real(x) => q.bind(*x),
                                Val::Text(s) => q.bind(s.clone()),
                                Val::Blob(b) => q.bind(b.clone()),
                            };
                        }
                    }
                    q.execute(&mut **tx).await?;
                }
            }
        }
        Ok(())
    }
}

/// Copy one chunk on the row path. `src` and `tgt` must be thrown away after an error.
pub(crate) async fn copy_chunk(
    src: &mut Conn,
    tgt: &mut Conn,
    step: &str,
    spec: &TableSpec,
    chunk: &Chunk,
    meter: &mut Meter<'_>,
) -> Result<ChunkDone, ChunkError> {
    let mut sink = match tgt {
        Conn::Pg(c) => Sink::Pg(c.begin().await?),
        Conn::Sqlite(c) => Sink::Sqlite(c.begin_with("BEGIN IMMEDIATE").await?),
        Conn::MySql(_) => return Err(ChunkError::Fatal(super::not_a_target().to_string())),
    };
    if let Some((rows, bytes)) = sink.done(step, spec, chunk).await? {
        return Ok(ChunkDone {
            rows: rows as u64,
            bytes: bytes as u64,
            resumed: true,
        });
    }
    sink.clear(spec, chunk).await?;
    let rows = match src {
        Conn::Pg(c) => from_pg(c, spec, chunk, &mut sink, meter).await?,
        Conn::Sqlite(c) => from_sqlite(c, spec, chunk, &mut sink, meter).await?,
        // MySQL sources go through `super::mysql`
        Conn::MySql(_) => {
            return Err(ChunkError::Fatal(
                "a MySQL source copies into PostgreSQL only".into(),
            ))
        }
    };
    let bytes = meter.bytes;
    sink.mark(step, spec, chunk, rows, bytes).await?;
    sink.commit().await?;
    Ok(ChunkDone {
        rows,
        bytes,
        resumed: false,
    })
}

/// Stream the chunk's rows from a PostgreSQL source into `sink` in batches; returns
/// the rows loaded.
async fn from_pg(
    c: &mut sqlx::PgConnection,
    spec: &TableSpec,
    chunk: &Chunk,
    sink: &mut Sink<'_>,
    meter: &mut Meter<'_>,
) -> Result<u64, ChunkError> {
    let batch_rows = match sink {
        Sink::Pg(_) => PG_INSERT_ROWS,
        Sink::Sqlite(_) => PAGE_ROWS,
    };
    let mut rows = 0u64;
    let reads: Vec<PgRead> = spec.cols.iter().map(PgRead::of).collect();
    let exprs: Vec<String> = spec
        .cols
        .iter()
        .zip(&reads)
        .map(|(c, r)| r.expr(&c.name))
        .collect();
    let conds: Vec<String> = pg_predicate(&spec.src.key_columns(), chunk)
        .into_iter()
        .collect();
    let wher = super::where_clause(conds, spec.filter.as_deref());
    let sql = format!(
        "select {} from {}{wher}",
        exprs.join(", "),
        spec.src.sql_name()
    );
    let mut stream = sqlx::query(&sql).persistent(false).fetch(&mut *c);
    let mut batch = Vec::with_capacity(batch_rows);
    let mut bytes = 0u64;
    while let Some(row) = stream.next().await {
        let row = row?;
        let mut vals = Vec::with_capacity(reads.len());
        for (i, how) in reads.iter().enumerate() {
            let v = pg_val(&row, i, *how)?;
            bytes += v.size() as u64;
            vals.push(v);
        }
        batch.push(vals);
        if batch.len() >= batch_rows {
            let n = batch.len() as u64;
            sink.insert(spec, std::mem::take(&mut batch)).await?;
            rows += n;
            meter.add(n, std::mem::take(&mut bytes));
        }
    }
    if !batch.is_empty() {
        let n = batch.len() as u64;
        sink.insert(spec, batch).await?;
        rows += n;
        meter.add(n, bytes);
    }
    Ok(rows)
}

/// Read the chunk's rows from a SQLite source page by page in key order (keyset
/// pagination) into `sink`; returns the rows loaded.
async fn from_sqlite(
    c: &mut sqlx::SqliteConnection,
    spec: &TableSpec,
    chunk: &Chunk,
    sink: &mut Sink<'_>,
    meter: &mut Meter<'_>,
) -> Result<u64, ChunkError> {
    let mut rows = 0u64;
    let key: Vec<String> = if spec.src.key.is_empty() {
        vec!["rowid".to_string()]
    } else {
        spec.src
            .key_columns()
            .iter()
            .map(|c| c.name.clone())
            .collect()
    };
    let key_list = key.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", ");
    let key_tuple = if key.len() == 1 {
        key_list.clone()
    } else {
        format!("({key_list})")
    };
    let marks = if key.len() == 1 {
        "?".to_string()
    } else {
        format!("({})", vec!["?"; key.len()].join(", "))
    };
    let range = sqlite_predicate(&key, chunk).filter(|_| !spec.src.key.is_empty());
    let cols: Vec<String> = spec.cols.iter().map(|c| ident(&c.name)).collect();
    let mut last: Option<Vec<KeyVal>> = None;
    loop {
        let mut conds = Vec::new();
        let mut binds: Vec<KeyVal> = Vec::new();
        if let Some((p, b)) = &range {
            conds.push(p.clone());
            binds.extend(b.iter().cloned());
        }
        if let Some(l) = &last {
            conds.push(format!("{key_tuple} > {marks}"));
            binds.extend(l.iter().cloned());
        }
        let wher = super::where_clause(conds, spec.filter.as_deref());
        let sql = format!(
            "select {}, {key_list} from {}{wher} order by {key_list} limit {PAGE_ROWS}",
            cols.join(", "),
            spec.src.sql_name()
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = bind_key(q, b);
        }
        let page = q.fetch_all(&mut *c).await?;
        let Some(tail) = page.last() else { break };
        let n = cols.len();
        let mut next = Vec::with_capacity(key.len());
        for i in 0..key.len() {
            next.push(crate::db::plan::sqlite_key(tail, n + i)?);
        }
        let mut batch = Vec::with_capacity(page.len());
        let mut bytes = 0u64;
        for row in &page {
            let mut vals = Vec::with_capacity(n);
            for i in 0..n {
                let v = sqlite_val(row, i)?;
                bytes += v.size() as u64;
                vals.push(v);
            }
            batch.push(vals);
        }
        let count = batch.len() as u64;
        sink.insert(spec, batch).await?;
        rows += count;
        meter.add(count, bytes);
        if page.len() < PAGE_ROWS {
            break;
        }
        last = Some(next);
    }
    Ok(rows)
}
