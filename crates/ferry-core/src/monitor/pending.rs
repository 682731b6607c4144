//! Which tables the change a subscription could not apply touches. PostgreSQL
//! 15 names the relation of an apply error only in the target's server log
//! (`CONTEXT: processing remote data ... for replication target relation
//! "public.items"`), which ferry cannot read, and `pg_stat_subscription_stats`
//! only counts. But the change is still in the slot: the target confirmed
//! nothing past it. Once the subscription stopped (`disable_on_error`), its
//! WAL sender lets go of the slot, and peeking the slot on the source (which
//! consumes nothing) with the same output plugin (`pgoutput`) shows the
//! transactions the target has not applied. The first one whose commit
//! position is past what the target's replication origin applied
//! (`pg_replication_origin_status.remote_lsn`) is the one that failed; its
//! Relation messages name its tables.

use crate::db::sqltext::error_text;
use sqlx::PgPool;

/// How many decoded messages one peek may return at most (several small
/// transactions the target applied but did not yet confirm come first).
const PEEK_CHANGES: i32 = 10_000;

/// A failed transaction as the slot shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Where it commits on the source.
    pub commit_lsn: u64,
    /// `schema.table` of every relation it changes.
    pub tables: Vec<String>,
}

/// A NUL-terminated string at `at`; the position after it.
fn cstring(b: &[u8], at: usize) -> Option<(String, usize)> {
    let rest = b.get(at..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    Some((
        String::from_utf8_lossy(&rest[..end]).into_owned(),
        at + end + 1,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The first transaction committing after `applied` in a stream of pgoutput
/// (protocol 1) messages: Begin `B` (final LSN), Relation `R` (OID, namespace
/// and name; an empty namespace is `pg_catalog`), Insert `I`, Update `U`,
/// Delete `D` (each starting with the relation's OID), Truncate `T` (a list of
/// OIDs), Commit `C`. A relation is described once per decoding session, before
/// its first change, so the names are collected from the whole stream.
pub fn first_pending(messages: &[Vec<u8>], applied: Option<u64>) -> Option<Pending> {
    let mut names: std::collections::HashMap<u32, String> = Default::default();
    let mut current: Option<(u64, Vec<u32>)> = None;
    let mut found: Option<(u64, Vec<u32>)> = None;
    for m in messages {
        match m.first() {
            Some(b'B') if found.is_none() => {
                let lsn = u64::from_be_bytes(m.get(1..9)?.try_into().ok()?);
                current = applied.is_none_or(|a| lsn > a).then(|| (lsn, Vec::new()));
            }
            Some(b'R') => {
                let oid = u32_at(m, 1)?;
                let (ns, next) = cstring(m, 5)?;
                let (rel, _) = cstring(m, next)?;
                let ns = if ns.is_empty() {
                    "pg_catalog".into()
                } else {
                    ns
                };
                names.insert(oid, format!("{ns}.{rel}"));
            }
            Some(b'I' | b'U' | b'D') => {
                if let Some((_, oids)) = current.as_mut() {
                    let oid = u32_at(m, 1)?;
                    if !oids.contains(&oid) {
                        oids.push(oid);
                    }
                }
            }
            Some(b'T') => {
                if let Some((_, oids)) = current.as_mut() {
                    let n = u32_at(m, 1)? as usize;
                    for i in 0..n {
                        let oid = u32_at(m, 6 + 4 * i)?;
                        if !oids.contains(&oid) {
                            oids.push(oid);
                        }
                    }
                }
            }
            Some(b'C') => {
                if let Some(c) = current.take() {
                    if found.is_none() && !c.1.is_empty() {
                        found = Some(c);
                    }
                }
            }
            _ => {}
        }
    }
    let (lsn, oids) = found.or(current.filter(|c| !c.1.is_empty()))?;
    Some(Pending {
        commit_lsn: lsn,
        tables: oids
            .iter()
            .map(|o| {
                names
                    .get(o)
                    .cloned()
                    .unwrap_or_else(|| format!("relation {o}"))
            })
            .collect(),
    })
}

/// What the target's replication origin for subscription `oid` applied (the
/// commit end position of its last transaction), when it may be read.
pub async fn applied(tgt: &PgPool, oid: i64) -> Option<u64> {
    sqlx::query_scalar::<_, Option<i64>>(
        "select (remote_lsn - '0/0'::pg_lsn)::int8 from pg_replication_origin_status
          where external_id = 'pg_' || $1::text",
    )
    .bind(oid)
    .fetch_optional(tgt)
    .await
    .ok()
    .flatten()
    .flatten()
    .map(|v| v.max(0) as u64)
}

/// Peek `slot` on the source for the first transaction past `applied`.
/// Fails while a WAL sender still holds the slot.
pub async fn peek(
    src: &PgPool,
    slot: &str,
    publication: &str,
    applied: Option<u64>,
) -> Result<Option<Pending>, String> {
    let text = |e: sqlx::Error| error_text(&e);
    let mut tx = src.begin().await.map_err(text)?;
    sqlx::query("set local statement_timeout = '20s'")
        .execute(&mut *tx)
        .await
        .map_err(text)?;
    // Begin, Relation, Commit and Truncate whole; of Insert, Update and Delete
    // only the kind and the relation's OID cross the wire
    let rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "select case when get_byte(data, 0) in (73, 85, 68) then substr(data, 1, 5) else data end
           from pg_logical_slot_peek_binary_changes($1, null, $2,
                'proto_version', '1', 'publication_names', $3)
          where get_byte(data, 0) in (66, 82, 67, 73, 85, 68, 84)",
    )
    .bind(slot)
    .bind(if applied.is_some() { PEEK_CHANGES } else { 1 })
    .bind(publication)
    .fetch_all(&mut *tx)
    .await
    .map_err(text)?;
    let _ = tx.rollback().await;
    Ok(first_pending(&rows, applied))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn begin(lsn: u64) -> Vec<u8> {
        let mut m = vec![b'B'];
        m.extend(lsn.to_be_bytes());
        m.extend(0i64.to_be_bytes());
        m.extend(740u32.to_be_bytes());
        m
    }

    fn relation(oid: u32, ns: &str, rel: &str) -> Vec<u8> {
        let mut m = vec![b'R'];
        m.extend(oid.to_be_bytes());
        m.extend(ns.as_bytes());
        m.push(0);
        m.extend(rel.as_bytes());
        m.push(0);
        m.push(b'd');
        m.extend(2u16.to_be_bytes());
        m
    }

    fn change(kind: u8, oid: u32) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend(oid.to_be_bytes());
        m
    }

    #[test]
    fn the_first_transaction_past_what_was_applied_names_its_tables() {
        let mut truncate = vec![b'T'];
        truncate.extend(2u32.to_be_bytes());
        truncate.push(0);
        truncate.extend(3u32.to_be_bytes());
        truncate.extend(1u32.to_be_bytes());
        let stream = vec![
            begin(100),
            relation(1, "public", "items"),
            change(b'I', 1),
            relation(2, "public", "ledger"),
            change(b'U', 2),
            vec![b'C'],
            // items is not described again in this session
            begin(200),
            change(b'I', 1),
            relation(3, "", "pg_thing"),
            change(b'D', 3),
            change(b'I', 1),
            vec![b'C'],
            begin(300),
            truncate,
            vec![b'C'],
        ];
        assert_eq!(
            first_pending(&stream, Some(100)),
            Some(Pending {
                commit_lsn: 200,
                tables: vec!["public.items".into(), "pg_catalog.pg_thing".into()]
            })
        );
        assert_eq!(
            first_pending(&stream, None).map(|p| p.tables),
            Some(vec![
                "public.items".to_string(),
                "public.ledger".to_string()
            ]),
            "nothing known applied: the first transaction"
        );
        assert_eq!(
            first_pending(&stream, Some(200)).map(|p| p.tables),
            Some(vec![
                "pg_catalog.pg_thing".to_string(),
                "public.items".to_string()
            ]),
            "a truncate names its relations"
        );
        assert_eq!(first_pending(&stream, Some(300)), None);
        assert_eq!(first_pending(&[vec![b'R', 1]], None), None, "cut short");
    }
}
