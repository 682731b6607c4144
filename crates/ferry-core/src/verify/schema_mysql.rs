//! The schema of MySQL and MariaDB tables, from `information_schema` on the verify
//! session: columns (`COLUMN_TYPE`, nullability, default, generated expression),
//! the primary key, unique and plain indexes (`STATISTICS`; an expression part is
//! `<expression>`), foreign keys with the referenced table and columns, and the
//! `AUTO_INCREMENT` counter as the source's "sequence" of its column (MySQL 8 is
//! asked for current statistics, not its day-old cache).
//!
//! Values are decoded unchecked: the session's `utf8mb4_bin` collation makes the
//! driver call every text column `VARBINARY`.

use super::schema::{ColInfo, Def, Seq, TableSchema};
use sqlx::mysql::MySqlConnection;
use sqlx::Row;

/// Read the schema of `tables` (names in the connection's database), in order.
pub async fn read(
    c: &mut MySqlConnection,
    tables: &[String],
) -> Result<Vec<TableSchema>, sqlx::Error> {
    // MySQL 8 only; MariaDB does not know the variable
    let _ = sqlx::query("set session information_schema_stats_expiry = 0")
        .execute(&mut *c)
        .await;
    let mut out = Vec::with_capacity(tables.len());
    for t in tables {
        let mut s = TableSchema::default();
        read_columns(c, t, &mut s).await?;
        read_indexes(c, t, &mut s).await?;
        read_foreign_keys(c, t, &mut s).await?;
        read_auto_increment(c, t, &mut s).await?;
        out.push(s);
    }
    Ok(out)
}

async fn read_columns(
    c: &mut MySqlConnection,
    table: &str,
    out: &mut TableSchema,
) -> Result<(), sqlx::Error> {
    let rows = sqlx::query(
        "select cast(column_name as char), cast(lower(column_type) as char), \
                cast(is_nullable as char), cast(column_default as char), cast(extra as char), \
                cast(generation_expression as char) \
           from information_schema.columns \
          where table_schema = database() and table_name = ? order by ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *c)
    .await?;
    for r in &rows {
        let extra: Option<String> = r.try_get_unchecked(4)?;
        let generated = extra
            .as_deref()
            .is_some_and(|e| e.to_ascii_uppercase().contains("GENERATED"))
            .then(|| r.try_get_unchecked::<Option<String>, _>(5).ok().flatten())
            .map(Option::unwrap_or_default);
        out.columns.push(ColInfo {
            name: r.try_get_unchecked(0)?,
            type_name: r.try_get_unchecked(1)?,
            notnull: r.try_get_unchecked::<String, _>(2)? == "NO",
            default: r.try_get_unchecked(3)?,
            generated,
            ..Default::default()
        });
    }
    Ok(())
}

/// The primary key, unique indexes (as unique constraints) and other indexes.
async fn read_indexes(
    c: &mut MySqlConnection,
    table: &str,
    out: &mut TableSchema,
) -> Result<(), sqlx::Error> {
    let rows = sqlx::query(
        "select cast(index_name as char), cast(non_unique as signed), \
                cast(coalesce(column_name, '<expression>') as char) \
           from information_schema.statistics \
          where table_schema = database() and table_name = ? \
          order by index_name, seq_in_index",
    )
    .bind(table)
    .fetch_all(&mut *c)
    .await?;
    let mut defs: Vec<Def> = Vec::new();
    for r in &rows {
        let name: String = r.try_get_unchecked(0)?;
        let non_unique: i64 = r.try_get_unchecked(1)?;
        let col: String = r.try_get_unchecked(2)?;
        if name == "PRIMARY" {
            out.pk.push(col);
            continue;
        }
        match defs.last_mut() {
            Some(d) if d.name == name => d.columns.push(col),
            _ => defs.push(Def {
                name,
                unique: non_unique == 0,
                columns: vec![col],
                ..Default::default()
            }),
        }
    }
    for d in defs {
        if d.unique {
            out.uniques.push(d);
        } else {
            out.indexes.push(d);
        }
    }
    Ok(())
}

async fn read_foreign_keys(
    c: &mut MySqlConnection,
    table: &str,
    out: &mut TableSchema,
) -> Result<(), sqlx::Error> {
    let rows = sqlx::query(
        "select cast(constraint_name as char), cast(column_name as char), \
                cast(referenced_table_name as char), cast(referenced_column_name as char) \
           from information_schema.key_column_usage \
          where table_schema = database() and table_name = ? \
            and referenced_table_name is not null \
          order by constraint_name, ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *c)
    .await?;
    for r in &rows {
        let name: String = r.try_get_unchecked(0)?;
        let col: String = r.try_get_unchecked(1)?;
        let parent: String = r.try_get_unchecked(2)?;
        let ref_col: String = r.try_get_unchecked(3)?;
        match out.fks.last_mut() {
            Some(d) if d.name == name => {
                d.columns.push(col);
                d.ref_columns.push(ref_col);
            }
            _ => out.fks.push(Def {
                name,
                columns: vec![col],
                ref_table: Some(parent),
                ref_columns: vec![ref_col],
                ..Default::default()
            }),
        }
    }
    Ok(())
}

/// The `AUTO_INCREMENT` counter: the next value MySQL would give its column.
async fn read_auto_increment(
    c: &mut MySqlConnection,
    table: &str,
    out: &mut TableSchema,
) -> Result<(), sqlx::Error> {
    let row = sqlx::query(
        "select cast(c.column_name as char), cast(t.auto_increment as signed) \
           from information_schema.tables t \
           join information_schema.columns c \
             on c.table_schema = t.table_schema and c.table_name = t.table_name \
          where t.table_schema = database() and t.table_name = ? \
            and lower(c.extra) like '%auto_increment%'",
    )
    .bind(table)
    .fetch_optional(&mut *c)
    .await?;
    if let Some(r) = row {
        let column: String = r.try_get_unchecked(0)?;
        let next: Option<i64> = r.try_get_unchecked(1)?;
        out.sequences.push(Seq {
            name: format!("AUTO_INCREMENT of {table}"),
            column,
            next: Some(next.unwrap_or(1).max(1)),
            increment: 1,
            max: None,
            slack: 0,
        });
    }
    Ok(())
}
