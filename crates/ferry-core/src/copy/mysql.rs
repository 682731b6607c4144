//! MySQL → PostgreSQL: one chunk read from MySQL in a consistent snapshot of its own
//! (`START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`), each row turned into
//! PostgreSQL `COPY` text by [`crate::db::mysql_values`] and streamed into
//! `COPY … FROM STDIN`, inside the target transaction that also clears the chunk's
//! range, records the values the runbook mapped and writes the chunk's checkpoint.
//!
//! Rows stream from the server one at a time and leave in buffers of
//! [`super::pg::BUFFER_BYTES`], so a worker's memory is bounded by a buffer and
//! the largest row, whatever the table's size. Nothing commits unless the target
//! loaded exactly as many rows as were read.

use super::checkpoint;
use super::pg::{statements, BUFFER_BYTES};
use super::prepare::TableSpec;
use super::progress::Meter;
use super::worker::{ChunkDone, ChunkError};
use crate::db::mysql::{ident, qualified};
use crate::db::mysql_values::{read, Carried, ColPlan};
use crate::db::plan::{Chunk, KeyVal};
use crate::db::sqltext::ident as pg_ident;
use crate::runbook::ZeroDates;
use futures::StreamExt;
use sqlx::mysql::{MySql, MySqlArguments, MySqlConnection, MySqlRow};
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor, Row};

/// The conversion plan of every copied column of `spec`, or every reason it cannot work.
pub(crate) fn plans(spec: &TableSpec, zero_dates: ZeroDates) -> Result<Vec<ColPlan>, String> {
    let mut out = Vec::with_capacity(spec.cols.len());
    let mut problems = Vec::new();
    for (s, t) in spec.cols.iter().zip(&spec.tgt_cols) {
        match ColPlan::new(s, t, zero_dates) {
            Ok(p) => out.push(p),
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(format!("table {}: {}", spec.name, problems.join("; ")))
    }
}

fn bind<'q>(
    q: sqlx::query::Query<'q, MySql, MySqlArguments>,
    k: &KeyVal,
) -> sqlx::query::Query<'q, MySql, MySqlArguments> {
    match k {
        KeyVal::Int(i) => q.bind(*i),
        KeyVal::Real(r) => q.bind(*r),
        KeyVal::Text(s) => q.bind(s.clone()),
        KeyVal::Blob { blob } => q.bind(crate::db::sqltext::unhex(blob).unwrap_or_default()),
    }
}

/// The chunk's rows as a MySQL query with `?` placeholders, and the values to bind.
fn select(spec: &TableSpec, plans: &[ColPlan], chunk: &Chunk) -> (String, Vec<KeyVal>) {
    let exprs: Vec<String> = plans.iter().map(|p| p.expr(&ident(&p.name))).collect();
    let key: Vec<String> = spec
        .src
        .key_columns()
        .iter()
        .map(|c| ident(&c.name))
        .collect();
    let tuple = |parts: Vec<String>| {
        if parts.len() == 1 {
            parts.join("")
        } else {
            format!("({})", parts.join(", "))
        }
    };
    let mut conds = Vec::new();
    let mut binds = Vec::new();
    if !key.is_empty() {
        for (b, op) in [(&chunk.lo, ">="), (&chunk.hi, "<")] {
            if let Some(vals) = b {
                conds.push(format!(
                    "{} {op} {}",
                    tuple(key.clone()),
                    tuple(vec!["?".into(); vals.len()])
                ));
                binds.extend(vals.iter().cloned());
            }
        }
    }
    let wher = super::where_clause(conds, spec.filter.as_deref());
    (
        format!(
            "select {} from {}{wher}",
            exprs.join(", "),
            qualified(&spec.src.schema, &spec.src.name)
        ),
        binds,
    )
}

/// `(id=7)` or `(a=1, b="x")`: the row's key, for messages.
fn key_text(spec: &TableSpec, row: &MySqlRow) -> String {
    let parts: Vec<String> = spec
        .src
        .key_columns()
        .iter()
        .map(|k| {
            let i = spec.cols.iter().position(|c| c.name == k.name);
            let v = i
                .and_then(|i| row.try_get_unchecked::<Option<String>, _>(i).ok().flatten())
                .unwrap_or_else(|| "?".into());
            format!("{}={v}", k.name)
        })
        .collect();
    if parts.is_empty() {
        "no primary key".into()
    } else {
        format!("({})", parts.join(", "))
    }
}

/// Copy one chunk. `src` and `tgt` must be thrown away after an error.
pub(crate) async fn copy_chunk(
    src: &mut MySqlConnection,
    tgt: &mut PgConnection,
    step: &str,
    spec: &TableSpec,
    chunk: &Chunk,
    meter: &mut Meter<'_>,
    zero_dates: ZeroDates,
) -> Result<ChunkDone, ChunkError> {
    let plans = plans(spec, zero_dates).map_err(ChunkError::Fatal)?;
    let mut tx = tgt.begin().await?;
    if let Some((rows, bytes)) = checkpoint::pg_done(&mut tx, step, &spec.name, chunk).await? {
        // Committed by an attempt whose acknowledgement was lost.
        tx.rollback().await?;
        return Ok(ChunkDone {
            rows: rows as u64,
            bytes: bytes as u64,
            resumed: true,
        });
    }
    if let Some(clear) = &statements(spec, chunk).clear {
        sqlx::query(clear).execute(&mut *tx).await?;
    }
    let tgt_cols: Vec<String> = spec.tgt_cols.iter().map(|c| pg_ident(&c.name)).collect();
    let copy_in_sql = format!(
        "copy {} ({}) from stdin",
        spec.tgt.sql_name(),
        tgt_cols.join(", ")
    );
    let (sql, binds) = select(spec, &plans, chunk);
    src.execute("start transaction with consistent snapshot, read only")
        .await?;
    let mut mapped = vec![0u64; plans.len()];
    let (rows, bytes) = {
        let mut copy_in = tx.copy_in_raw(&copy_in_sql).await?;
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = bind(q, b);
        }
        let mut stream = q.fetch(&mut *src);
        let mut buf: Vec<u8> = Vec::with_capacity(BUFFER_BYTES);
        let (mut rows, mut bytes, mut in_buf) = (0u64, 0u64, 0u64);
        while let Some(row) = stream.next().await {
            let row = row?;
            let start = buf.len();
            for (i, p) in plans.iter().enumerate() {
                if i > 0 {
                    buf.push(b'\t');
                }
                let carried = read(&row, i, p.read)
                    .map_err(ChunkError::from)
                    .and_then(|raw| p.write(raw, &mut buf).map_err(ChunkError::Fatal));
                match carried {
                    Ok(Carried::MappedNull) => mapped[i] += 1,
                    Ok(_) => {}
                    Err(ChunkError::Fatal(why)) => {
                        return Err(ChunkError::Fatal(format!(
                            "key {}, column {:?} (MySQL {} → PostgreSQL {}): {why}",
                            key_text(spec, &row),
                            p.name,
                            spec.cols[i].type_name,
                            spec.tgt_cols[i].type_name
                        )));
                    }
                    Err(e) => return Err(e),
                }
            }
            buf.push(b'\n');
            rows += 1;
            in_buf += 1;
            bytes += (buf.len() - start) as u64;
            if buf.len() >= BUFFER_BYTES {
                let n = buf.len() as u64;
                copy_in.send(std::mem::take(&mut buf)).await?;
                buf.reserve(BUFFER_BYTES);
                meter.add(std::mem::take(&mut in_buf), n);
            }
        }
        drop(stream);
        if !buf.is_empty() {
            let n = buf.len() as u64;
            copy_in.send(buf).await?;
            meter.add(in_buf, n);
        }
        let loaded = copy_in.finish().await?;
        if loaded != rows {
            return Err(ChunkError::Fatal(format!(
                "MySQL sent {rows} rows but the target loaded {loaded}; nothing was committed"
            )));
        }
        (rows, bytes)
    };
    src.execute("commit").await?;
    for (i, n) in mapped.iter().enumerate() {
        if *n > 0 {
            checkpoint::pg_mapped(
                &mut tx,
                step,
                &spec.name,
                chunk,
                &plans[i].name,
                plans[i].mapping(),
                *n,
            )
            .await?;
        }
    }
    checkpoint::pg_mark(&mut tx, step, &spec.name, chunk, rows, bytes).await?;
    tx.commit().await?;
    Ok(ChunkDone {
        rows,
        bytes,
        resumed: false,
    })
}
