//! The catalog of a MySQL or MariaDB database, from `information_schema`: the base
//! tables of the connection's database (its name is the tables' schema), their
//! columns (`COLUMN_TYPE` as the type, `DATA_TYPE` as the bare type), primary keys,
//! foreign keys, the estimated rows and the `AUTO_INCREMENT` counter.
//!
//! Key order: integer columns order like PostgreSQL integers, except `BIGINT
//! UNSIGNED` (beyond `bigint`); text keys depend on a collation that PostgreSQL
//! does not share (case-insensitive, `PAD SPACE`), so they are never assumed to
//! order the same on both sides.

use super::catalog::{Catalog, Column, Engine, OrderClass, Table};
use sqlx::MySqlPool;
use sqlx::Row;
use std::collections::HashMap;

/// The bare MySQL types that are integers.
pub fn is_int(data_type: &str) -> bool {
    matches!(
        data_type,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint"
    )
}

fn order(data_type: &str, column_type: &str) -> OrderClass {
    if is_int(data_type) && !(data_type == "bigint" && column_type.contains("unsigned")) {
        OrderClass::Int
    } else {
        OrderClass::Unsafe
    }
}

/// Read the catalog of the pool's current database.
pub async fn read(pool: &MySqlPool) -> Result<Catalog, sqlx::Error> {
    let version: String = sqlx::query_scalar("select cast(version() as char)")
        .fetch_one(pool)
        .await?;
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let cols = sqlx::query(
        "select cast(c.table_schema as char), cast(c.table_name as char), \
                cast(c.column_name as char), cast(lower(c.column_type) as char), \
                cast(lower(c.data_type) as char), cast(c.extra as char), \
                cast(t.table_rows as signed) \
           from information_schema.columns c \
           join information_schema.tables t \
             on t.table_schema = c.table_schema and t.table_name = c.table_name \
          where c.table_schema = database() and t.table_type = 'BASE TABLE' \
          order by c.table_name, c.ordinal_position",
    )
    .fetch_all(pool)
    .await?;
    let mut tables: Vec<Table> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for r in &cols {
        let schema: String = r.try_get(0)?;
        let name: String = r.try_get(1)?;
        let idx = *by_name.entry(name.clone()).or_insert_with(|| {
            tables.push(Table {
                schema: schema.clone(),
                name: name.clone(),
                oid: 0,
                columns: Vec::new(),
                key: Vec::new(),
                int_key: false,
                rowid: false,
                est_rows: r
                    .try_get::<Option<i64>, _>(6)
                    .ok()
                    .flatten()
                    .map(|n| n.max(0) as u64),
                parents: Vec::new(),
                referenced: false,
                self_ref: false,
                has_triggers: false,
            });
            tables.len() - 1
        });
        let column_type: String = r.try_get(3)?;
        let data_type: String = r.try_get(4)?;
        let extra: String = r.try_get(5)?;
        tables[idx].columns.push(Column {
            name: r.try_get(2)?,
            order: order(&data_type, &column_type),
            type_name: column_type,
            cast_type: data_type,
            type_oid: 0,
            generated: extra.to_ascii_uppercase().contains("GENERATED"),
            identity_always: false,
        });
    }
    let keys = sqlx::query(
        "select cast(table_name as char), cast(column_name as char) \
           from information_schema.key_column_usage \
          where table_schema = database() and constraint_name = 'PRIMARY' \
          order by table_name, ordinal_position",
    )
    .fetch_all(pool)
    .await?;
    for r in &keys {
        let (t, c): (String, String) = (r.try_get(0)?, r.try_get(1)?);
        if let Some(table) = by_name.get(&t).and_then(|&i| tables.get_mut(i)) {
            if let Some(ci) = table.columns.iter().position(|x| x.name == c) {
                table.key.push(ci);
            }
        }
    }
    let fks = sqlx::query(
        "select distinct cast(table_name as char), cast(referenced_table_name as char) \
           from information_schema.key_column_usage \
          where table_schema = database() and referenced_table_name is not null \
            and referenced_table_schema = database()",
    )
    .fetch_all(pool)
    .await?;
    for r in &fks {
        let (child, parent): (String, String) = (r.try_get(0)?, r.try_get(1)?);
        let parent_name = by_name
            .get(&parent)
            .and_then(|&i| tables.get(i))
            .map(|t| t.qualified_name());
        if let Some(p) = by_name.get(&parent).and_then(|&i| tables.get_mut(i)) {
            p.referenced = true;
        }
        if let Some(t) = by_name.get(&child).and_then(|&i| tables.get_mut(i)) {
            if child == parent {
                t.self_ref = true;
            } else if let Some(n) = parent_name {
                if !t.parents.contains(&n) {
                    t.parents.push(n);
                }
            }
        }
    }
    for t in &mut tables {
        t.int_key = t.key.len() == 1 && t.key_columns().iter().all(|c| c.order == OrderClass::Int);
    }
    Ok(Catalog {
        engine: Engine::MySql,
        major,
        tables,
    })
}

/// The `AUTO_INCREMENT` column of each table of the current database that has one,
/// with the counter: the next value MySQL would give. Read on a connection of its
/// own that asks MySQL 8 for current statistics (it caches `information_schema`
/// sizes and counters for a day by default; MariaDB does not know the setting).
pub async fn auto_increments(
    pool: &MySqlPool,
) -> Result<HashMap<String, (String, u64)>, sqlx::Error> {
    let mut c = pool.acquire().await?;
    let _ = sqlx::query("set session information_schema_stats_expiry = 0")
        .execute(&mut *c)
        .await;
    let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "select cast(t.table_name as char), cast(c.column_name as char), \
                cast(t.auto_increment as signed) \
           from information_schema.tables t \
           join information_schema.columns c \
             on c.table_schema = t.table_schema and c.table_name = t.table_name \
          where t.table_schema = database() and lower(c.extra) like '%auto_increment%'",
    )
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(t, col, n)| (t, (col, n.unwrap_or(1).max(1) as u64)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order() {
        assert_eq!(order("int", "int(11)"), OrderClass::Int);
        assert_eq!(order("bigint", "bigint(20)"), OrderClass::Int);
        assert_eq!(order("bigint", "bigint(20) unsigned"), OrderClass::Unsafe);
        assert_eq!(order("varchar", "varchar(20)"), OrderClass::Unsafe);
    }
}
