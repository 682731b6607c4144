//! The schema of SQLite tables, from its pragmas: columns (`pragma_table_xinfo`;
//! hidden 2 and 3 are generated columns), the primary key, indexes and unique
//! constraints (`pragma_index_list`/`pragma_index_info`, with the `CREATE INDEX` text
//! from `sqlite_master`), foreign keys, and the `AUTOINCREMENT` counter
//! (`sqlite_sequence`) with `max(rowid)`. Check constraints are not read (SQLite
//! keeps them only inside the `CREATE TABLE` text).

use super::schema::{ColInfo, Def, Seq, TableSchema};
use crate::db::sqltext::ident;
use sqlx::sqlite::SqliteConnection;
use sqlx::Row;

pub async fn read(c: &mut SqliteConnection, table: &str) -> Result<TableSchema, sqlx::Error> {
    let mut out = TableSchema::default();
    read_columns(c, table, &mut out).await?;
    read_indexes(c, table, &mut out).await?;
    read_foreign_keys(c, table, &mut out).await?;
    read_sequence(c, table, &mut out).await?;
    Ok(out)
}

/// Columns (generated ones marked, hidden ones skipped) and the primary key.
async fn read_columns(
    c: &mut SqliteConnection,
    table: &str,
    out: &mut TableSchema,
) -> Result<(), sqlx::Error> {
    let cols = sqlx::query(
        "select name, type, \"notnull\", dflt_value, pk, hidden from pragma_table_xinfo(?) order by cid",
    )
    .bind(table)
    .fetch_all(&mut *c)
    .await?;
    let mut pk: Vec<(i64, String)> = Vec::new();
    for r in &cols {
        let hidden: i64 = r.try_get(5)?;
        if hidden == 1 {
            continue;
        }
        let name: String = r.try_get(0)?;
        let pos: i64 = r.try_get(4)?;
        if pos > 0 {
            pk.push((pos, name.clone()));
        }
        out.columns.push(ColInfo {
            name,
            type_name: r.try_get(1)?,
            notnull: r.try_get::<i64, _>(2)? != 0,
            default: r.try_get(3)?,
            generated: (hidden == 2 || hidden == 3).then(|| "generated".to_string()),
            ..Default::default()
        });
    }
    pk.sort();
    out.pk = pk.into_iter().map(|(_, n)| n).collect();
    Ok(())
}

/// Indexes and unique constraints (the primary key's own index aside).
async fn read_indexes(
    c: &mut SqliteConnection,
    table: &str,
    out: &mut TableSchema,
) -> Result<(), sqlx::Error> {
    let ixs =
        sqlx::query("select name, \"unique\", origin from pragma_index_list(?) order by name")
            .bind(table)
            .fetch_all(&mut *c)
            .await?;
    for r in &ixs {
        let name: String = r.try_get(0)?;
        let unique = r.try_get::<i64, _>(1)? != 0;
        let origin: String = r.try_get(2)?;
        if origin == "pk" {
            continue;
        }
        let columns: Vec<Option<String>> =
            sqlx::query_scalar("select name from pragma_index_info(?) order by seqno")
                .bind(&name)
                .fetch_all(&mut *c)
                .await?;
        let columns: Vec<String> = columns
            .into_iter()
            .map(|n| n.unwrap_or_else(|| "<expression>".into()))
            .collect();
        let def: Option<String> =
            sqlx::query_scalar("select sql from sqlite_master where type = 'index' and name = ?")
                .bind(&name)
                .fetch_optional(&mut *c)
                .await?
                .flatten();
        let d = Def {
            name: name.clone(),
            def: def.unwrap_or_else(|| format!("UNIQUE ({})", columns.join(", "))),
            columns,
            unique,
            ..Default::default()
        };
        if origin == "u" {
            out.uniques.push(d);
        } else {
            out.indexes.push(d);
        }
    }
    Ok(())
}

/// Foreign keys, one per constraint id, with their columns in order.
async fn read_foreign_keys(
    c: &mut SqliteConnection,
    table: &str,
    out: &mut TableSchema,
) -> Result<(), sqlx::Error> {
    let fks = sqlx::query(
        "select id, \"table\", \"from\", \"to\" from pragma_foreign_key_list(?) order by id, seq",
    )
    .bind(table)
    .fetch_all(&mut *c)
    .await?;
    let mut last: Option<i64> = None;
    for r in &fks {
        let id: i64 = r.try_get(0)?;
        let parent: String = r.try_get(1)?;
        let from: String = r.try_get(2)?;
        let to: Option<String> = r.try_get(3)?;
        if last != Some(id) {
            out.fks.push(Def {
                name: format!("fk{id}"),
                ref_table: Some(parent),
                ..Default::default()
            });
            last = Some(id);
        }
        if let Some(d) = out.fks.last_mut() {
            d.columns.push(from);
            d.ref_columns.push(to.unwrap_or_default());
        }
    }
    for d in &mut out.fks {
        d.def = format!(
            "FOREIGN KEY ({}) REFERENCES {}({})",
            d.columns.join(", "),
            d.ref_table.clone().unwrap_or_default(),
            d.ref_columns.join(", ")
        );
    }
    Ok(())
}

/// The AUTOINCREMENT counter of a single-column key, with the largest rowid.
async fn read_sequence(
    c: &mut SqliteConnection,
    table: &str,
    out: &mut TableSchema,
) -> Result<(), sqlx::Error> {
    let has_seq: Option<String> = sqlx::query_scalar(
        "select name from sqlite_master where type = 'table' and name = 'sqlite_sequence'",
    )
    .fetch_optional(&mut *c)
    .await?;
    if has_seq.is_some() {
        let seq: Option<i64> = sqlx::query_scalar("select seq from sqlite_sequence where name = ?")
            .bind(table)
            .fetch_optional(&mut *c)
            .await?;
        if let (Some(seq), [key]) = (seq, out.pk.as_slice()) {
            let max: Option<i64> =
                sqlx::query_scalar(&format!("select max(rowid) from {}", ident(table)))
                    .fetch_one(&mut *c)
                    .await?;
            out.sequences.push(Seq {
                name: format!("sqlite_sequence({table})"),
                column: key.clone(),
                next: Some(seq.saturating_add(1)),
                increment: 1,
                max,
                slack: 0,
            });
        }
    }
    Ok(())
}
