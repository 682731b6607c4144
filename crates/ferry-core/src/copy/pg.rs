//! PostgreSQL → PostgreSQL: one chunk streamed from `COPY (SELECT …) TO STDOUT` on the
//! source into `COPY … FROM STDIN` on the target, inside the target transaction that
//! also clears the chunk's range and writes its checkpoint.
//!
//! The source sends one COPY message per row; a reader coalesces them into buffers of
//! [`BUFFER_BYTES`] and hands them through a channel of at most [`IN_FLIGHT_BYTES`] to
//! the writer, so reading and writing overlap. A bigger row is never copied: it travels
//! as `BUFFER_BYTES` slices of the message the source sent (the COPY stream need not be
//! cut at row boundaries), so the target connection's write buffer never grows to the
//! row's size. Memory per worker stays bounded by about two of the largest rows (the one
//! being written, the next one being read) whatever the table's size. When either side fails, the other stops too. Nothing commits unless the source stream ended cleanly and,
//! in text format, the target loaded exactly as many rows as the source sent.

use super::checkpoint;
use super::prepare::{Clear, TableSpec};
use super::progress::Meter;
use super::worker::{ChunkDone, ChunkError};
use crate::db::plan::Chunk;
use crate::db::range::pg_predicate;
use crate::db::sqltext::ident;
use bytes::Bytes;
use futures::StreamExt;
use sqlx::postgres::PgConnection;
use sqlx::Connection;
use tokio::sync::{mpsc, Semaphore};

/// Bytes per buffer sent to the target (one CopyData message each).
pub const BUFFER_BYTES: usize = 256 * 1024;
/// Buffers in flight between reader and writer.
pub const CHANNEL_BUFFERS: usize = 4;
/// Bytes in flight between reader and writer (a single bigger row still passes, alone).
pub const IN_FLIGHT_BYTES: usize = CHANNEL_BUFFERS * BUFFER_BYTES;

/// The statements for one chunk.
pub(crate) struct Statements {
    pub copy_out: String,
    pub copy_in: String,
    pub clear: Option<String>,
}

/// Build the COPY and clearing statements of `chunk` of `spec`.
pub(crate) fn statements(spec: &TableSpec, chunk: &Chunk) -> Statements {
    let format = if spec.binary {
        " with (format binary)"
    } else {
        ""
    };
    let src_cols: Vec<String> = spec.cols.iter().map(|c| ident(&c.name)).collect();
    let tgt_cols: Vec<String> = spec.tgt_cols.iter().map(|c| ident(&c.name)).collect();
    let src_key = spec.src.key_columns();
    let conds: Vec<String> = pg_predicate(&src_key, chunk).into_iter().collect();
    // Always the query form: `COPY table TO` refuses partitioned tables.
    let wher = super::where_clause(conds, spec.filter.as_deref());
    let copy_out = format!(
        "copy (select {} from {}{wher}) to stdout{format}",
        src_cols.join(", "),
        spec.src.sql_name()
    );
    let copy_in = format!(
        "copy {} ({}) from stdin{format}",
        spec.tgt.sql_name(),
        tgt_cols.join(", ")
    );
    let clear = match spec.clear {
        Clear::Nothing => None,
        Clear::All if spec.tgt.referenced => Some(format!("delete from {}", spec.tgt.sql_name())),
        Clear::All => Some(format!("truncate {}", spec.tgt.sql_name())),
        Clear::Range => {
            let tgt_key = spec.tgt.key_columns();
            Some(match pg_predicate(&tgt_key, chunk) {
                Some(p) => format!("delete from {} where {p}", spec.tgt.sql_name()),
                None => format!("delete from {}", spec.tgt.sql_name()),
            })
        }
    };
    Statements {
        copy_out,
        copy_in,
        clear,
    }
}

/// Hand a buffer to the writer once the bytes in flight allow it. False when the
/// writer has stopped.
async fn hand_over(
    sender: &mpsc::Sender<(Bytes, u64, u32)>,
    budget: &Semaphore,
    data: Bytes,
    rows: u64,
) -> bool {
    let permits = data.len().clamp(1, IN_FLIGHT_BYTES) as u32;
    match budget.acquire_many(permits).await {
        Ok(p) => p.forget(),
        Err(_) => return false,
    }
    sender.send((data, rows, permits)).await.is_ok()
}

/// Copy one chunk. `src` and `tgt` must be thrown away after an error.
pub(crate) async fn copy_chunk(
    src: &mut PgConnection,
    tgt: &mut PgConnection,
    step: &str,
    spec: &TableSpec,
    chunk: &Chunk,
    meter: &mut Meter<'_>,
) -> Result<ChunkDone, ChunkError> {
    let st = statements(spec, chunk);
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
    if let Some(clear) = &st.clear {
        sqlx::query(clear).execute(&mut *tx).await?;
    }
    let mut copy_in = tx.copy_in_raw(&st.copy_in).await?;
    let out = src.copy_out_raw(&st.copy_out).await?;
    let (sender, receiver) = mpsc::channel(CHANNEL_BUFFERS);
    // Bytes in the channel, so that MB-sized rows cannot pile up by the handful.
    let budget = Semaphore::new(IN_FLIGHT_BYTES);

    // Reader: coalesce row messages into large buffers. Returns (messages, bytes), or
    // None when the writer stopped (its error says why).
    let reader = async {
        // Owned here: dropping it when the source is done ends the writer's loop.
        let sender = sender;
        let mut out = out;
        let mut buf: Vec<u8> = Vec::with_capacity(BUFFER_BYTES);
        let (mut messages, mut bytes, mut in_buf) = (0u64, 0u64, 0u64);
        while let Some(item) = out.next().await {
            let data = item?;
            messages += 1;
            bytes += data.len() as u64;
            if !buf.is_empty() && buf.len() + data.len() > BUFFER_BYTES {
                let full = std::mem::replace(&mut buf, Vec::with_capacity(BUFFER_BYTES));
                let rows = std::mem::take(&mut in_buf);
                if !hand_over(&sender, &budget, Bytes::from(full), rows).await {
                    return Ok::<_, sqlx::Error>(None);
                }
            }
            if data.len() >= BUFFER_BYTES {
                // A big row goes alone, in slices of the message itself: appending it
                // to a buffer, or handing it whole to the target connection, would
                // hold it twice or more.
                let mut at = 0;
                while at < data.len() {
                    let end = (at + BUFFER_BYTES).min(data.len());
                    let rows = u64::from(at == 0);
                    if !hand_over(&sender, &budget, data.slice(at..end), rows).await {
                        return Ok(None);
                    }
                    at = end;
                }
            } else {
                buf.extend_from_slice(&data);
                in_buf += 1;
            }
        }
        if !buf.is_empty() && !hand_over(&sender, &budget, Bytes::from(buf), in_buf).await {
            return Ok(None);
        }
        Ok(Some((messages, bytes)))
    };
    let binary = spec.binary;
    let writer = async {
        // Owned here, so that a writer that stops drops it and the reader stops too
        // (a reader left blocked on a full channel would hang the copy for ever).
        let mut receiver = receiver;
        let result = async {
            // Rows count one message each (in binary format the trailer counts too;
            // the exact figure comes from the target at the end).
            while let Some((data, rows, permits)) = receiver.recv().await {
                let n = data.len() as u64;
                copy_in.send(data).await?;
                budget.add_permits(permits as usize);
                meter.add(rows, n);
            }
            Ok::<_, sqlx::Error>(())
        }
        .await;
        budget.close();
        result
    };
    let (read, written) = tokio::join!(reader, writer);
    written?;
    let Some((messages, bytes)) = read? else {
        return Err(ChunkError::Retry("the target stopped taking data".into()));
    };
    let rows = copy_in.finish().await?;
    // One message per row; in binary format the header travels with the first row and
    // the trailer in a message of its own.
    let sent = if binary {
        messages.saturating_sub(1)
    } else {
        messages
    };
    if rows != sent {
        return Err(ChunkError::Fatal(format!(
            "the source sent {sent} rows but the target loaded {rows}; nothing was committed"
        )));
    }
    checkpoint::pg_mark(&mut tx, step, &spec.name, chunk, rows, bytes).await?;
    tx.commit().await?;
    Ok(ChunkDone {
        rows,
        bytes,
        resumed: false,
    })
}
