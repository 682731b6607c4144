//! The SQLite half of [`super::catalog`]: tables from `sqlite_master`, columns from
//! `pragma_table_xinfo` (hidden 2 and 3 are generated columns), the primary key and
//! its collations from the key's index, foreign keys from `pragma_foreign_key_list`,
//! and exact row counts. Every table is in schema `main`.

use super::catalog::{Catalog, Column, Engine, OrderClass, Table};
use super::sqltext::ident;
use sqlx::{Row, SqliteConnection};
use std::collections::HashMap;

/// SQLite's type affinity rules, for the order of key columns.
fn sqlite_order(decl: &str, collation: &str) -> OrderClass {
    let d = decl.to_ascii_uppercase();
    if d.contains("INT") {
        OrderClass::Int
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        if collation.eq_ignore_ascii_case("BINARY") {
            OrderClass::Bytewise
        } else {
            OrderClass::Unsafe
        }
    } else {
        OrderClass::Typed(format!("sqlite:{d}:{}", collation.to_ascii_uppercase()))
    }
}

pub(crate) async fn read(conn: &mut SqliteConnection) -> Result<Catalog, sqlx::Error> {
    let rows = sqlx::query(
        "select name, coalesce(sql, '') from sqlite_master where type = 'table' \
           and name not like 'sqlite\\_%' escape '\\' and name not like 'ferry\\_copy\\_%' escape '\\' \
         order by name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let trigger_tables: Vec<String> =
        sqlx::query_scalar("select distinct tbl_name from sqlite_master where type = 'trigger'")
            .fetch_all(&mut *conn)
            .await?;
    let mut tables = Vec::new();
    let mut referenced: Vec<String> = Vec::new();
    for r in &rows {
        let name: String = r.try_get(0)?;
        let sql: String = r.try_get(1)?;
        let upper = sql.to_ascii_uppercase();
        if upper.starts_with("CREATE VIRTUAL") {
            continue;
        }
        let without_rowid = upper.contains("WITHOUT ROWID");
        // Collations of the primary key's columns, from its index (none for a rowid alias).
        let mut key_coll: HashMap<String, String> = HashMap::new();
        let indexes = sqlx::query("select name, origin from pragma_index_list(?)")
            .bind(&name)
            .fetch_all(&mut *conn)
            .await?;
        for ix in &indexes {
            if ix.try_get::<String, _>(1)? == "pk" {
                let ix_name: String = ix.try_get(0)?;
                let cols = sqlx::query(
                    "select name, coll from pragma_index_xinfo(?) where key = 1 and name is not null",
                )
                .bind(&ix_name)
                .fetch_all(&mut *conn)
                .await?;
                for c in &cols {
                    key_coll.insert(c.try_get(0)?, c.try_get(1)?);
                }
            }
        }
        let info =
            sqlx::query("select name, type, pk, hidden from pragma_table_xinfo(?) order by cid")
                .bind(&name)
                .fetch_all(&mut *conn)
                .await?;
        let mut columns = Vec::new();
        let mut pk: Vec<(i64, usize)> = Vec::new();
        for c in &info {
            let col: String = c.try_get(0)?;
            let decl: String = c.try_get(1)?;
            let pk_pos: i64 = c.try_get(2)?;
            let hidden: i64 = c.try_get(3)?;
            if hidden == 1 {
                continue;
            }
            if pk_pos > 0 {
                pk.push((pk_pos, columns.len()));
            }
            let coll = key_coll
                .get(&col)
                .cloned()
                .unwrap_or_else(|| "BINARY".into());
            columns.push(Column {
                order: sqlite_order(&decl, &coll),
                name: col,
                cast_type: decl.clone(),
                type_name: decl,
                type_oid: 0,
                generated: hidden == 2 || hidden == 3,
                identity_always: false,
            });
        }
        pk.sort();
        let key: Vec<usize> = pk.into_iter().map(|(_, i)| i).collect();
        let rowid_alias = !without_rowid
            && key.len() == 1
            && columns
                .get(key[0])
                .is_some_and(|c| c.type_name.eq_ignore_ascii_case("INTEGER"));
        let fks: Vec<String> =
            sqlx::query_scalar("select distinct \"table\" from pragma_foreign_key_list(?)")
                .bind(&name)
                .fetch_all(&mut *conn)
                .await?;
        let est: i64 = sqlx::query_scalar(&format!("select count(*) from {}", ident(&name)))
            .fetch_one(&mut *conn)
            .await?;
        referenced.extend(fks.iter().cloned());
        tables.push(Table {
            schema: "main".into(),
            oid: 0,
            int_key: rowid_alias,
            rowid: !without_rowid,
            est_rows: Some(est.max(0) as u64),
            parents: fks
                .iter()
                .filter(|p| **p != name)
                .map(|p| format!("main.{p}"))
                .collect(),
            referenced: false,
            self_ref: false,
            has_triggers: trigger_tables.contains(&name),
            name,
            columns,
            key,
        });
    }
    for t in &mut tables {
        t.referenced = referenced.iter().any(|r| r.eq_ignore_ascii_case(&t.name));
    }
    Ok(Catalog {
        engine: Engine::Sqlite,
        major: 0,
        tables,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_orders() {
        assert_eq!(sqlite_order("INTEGER", "BINARY"), OrderClass::Int);
        assert_eq!(sqlite_order("text", "BINARY"), OrderClass::Bytewise);
        assert_eq!(sqlite_order("TEXT", "NOCASE"), OrderClass::Unsafe);
    }
}
