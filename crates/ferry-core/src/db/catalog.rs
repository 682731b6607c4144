//! What a database holds, read from its catalogs: tables, their columns (types,
//! generated and identity columns), primary keys, foreign keys, estimated sizes, and
//! how each key column orders (which decides whether a key range means the same rows
//! on both sides). PostgreSQL reads `pg_catalog`; SQLite reads `sqlite_master` and its
//! pragmas, with every table in schema `main`.

use super::sqltext::qualified;
use crate::db::Db;
use serde::Serialize;
use sqlx::Row;
use std::collections::HashMap;

/// How a key column's values are ordered, for deciding whether a key range on the
/// source selects the same rows as the same range on the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderClass {
    /// Integers: the same order everywhere.
    Int,
    /// Text compared byte by byte (PostgreSQL `C`/`POSIX`, SQLite `BINARY`).
    Bytewise,
    /// A type whose order is fixed by the type itself (`numeric`, `uuid`, ...): equal
    /// only to the same type on the same engine.
    Typed(String),
    /// Depends on a locale, a collation or user code: never assumed equal.
    Unsafe,
}

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    /// PostgreSQL: `format_type(...)` with the type modifier (`character varying(20)`);
    /// SQLite: the declared type.
    pub type_name: String,
    /// The type without its modifier (`character varying`), for casts that must not
    /// cut or round a value (assignment to the column applies the modifier and fails).
    pub cast_type: String,
    /// PostgreSQL type oid (0 for SQLite).
    pub type_oid: u32,
    pub generated: bool,
    /// `GENERATED ALWAYS AS IDENTITY` (an INSERT needs `OVERRIDING SYSTEM VALUE`).
    pub identity_always: bool,
    pub order: OrderClass,
}

#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub schema: String,
    pub name: String,
    /// PostgreSQL relation oid (0 for SQLite).
    pub oid: u32,
    pub columns: Vec<Column>,
    /// Primary-key columns, as indexes into `columns`, in key order. Empty: no key.
    pub key: Vec<usize>,
    /// A single integer key, chunked by min..max ranges.
    pub int_key: bool,
    /// SQLite: the table has a rowid (pages of a table without a key go by rowid).
    pub rowid: bool,
    pub est_rows: Option<u64>,
    /// Tables this one's foreign keys reference (qualified names, itself excluded).
    pub parents: Vec<String>,
    /// Some foreign key references this table.
    pub referenced: bool,
    /// One of its foreign keys references the table itself (a tree: parent rows).
    pub self_ref: bool,
    pub has_triggers: bool,
}

impl Table {
    /// `schema.name`, unquoted: how runbooks, checkpoints and messages name it.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// The quoted name for SQL.
    pub fn sql_name(&self) -> String {
        qualified(&self.schema, &self.name)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn key_columns(&self) -> Vec<&Column> {
        self.key
            .iter()
            .filter_map(|&i| self.columns.get(i))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Postgres,
    Sqlite,
    /// MySQL or MariaDB.
    MySql,
}

#[derive(Debug, Clone, Serialize)]
pub struct Catalog {
    pub engine: Engine,
    /// PostgreSQL major version (e.g. 16), MySQL's or MariaDB's (8, 10, 11); 0 for SQLite.
    pub major: u32,
    pub tables: Vec<Table>,
}

impl Catalog {
    pub fn find(&self, qualified_name: &str) -> Option<&Table> {
        self.tables
            .iter()
            .find(|t| t.qualified_name() == qualified_name)
    }
}

/// Read the catalog of `db`.
pub async fn read(db: &Db) -> Result<Catalog, sqlx::Error> {
    match db {
        Db::Pg(pool) => read_pg(pool).await,
        Db::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            super::catalog_sqlite::read(&mut conn).await
        }
        Db::MySql(pool) => super::catalog_mysql::read(pool).await,
    }
}

/// Collation names whose order is plain byte order.
fn bytewise_collation(name: &str) -> bool {
    matches!(name, "C" | "POSIX" | "ucs_basic" | "pg_c_utf8")
}

fn pg_order(type_oid: u32, typtype: &str, collation: &str, type_name: &str) -> OrderClass {
    match type_oid {
        20 | 21 | 23 => OrderClass::Int,
        // text, varchar, name
        25 | 1043 | 19 if bytewise_collation(collation) => OrderClass::Bytewise,
        16 | 17 | 26 | 700 | 701 | 1082 | 1083 | 1114 | 1184 | 1186 | 1700 | 2950
            if typtype == "b" =>
        {
            OrderClass::Typed(format!("pg:{type_name}"))
        }
        _ => OrderClass::Unsafe,
    }
}

async fn read_pg(pool: &sqlx::PgPool) -> Result<Catalog, sqlx::Error> {
    let version: i32 = sqlx::query_scalar("select current_setting('server_version_num')::int4")
        .fetch_one(pool)
        .await?;
    let (mut tables, by_oid) = pg_columns(pool, version).await?;
    pg_keys(pool, &mut tables, &by_oid).await?;
    pg_references(pool, &mut tables, &by_oid).await?;
    pg_triggers(pool, &mut tables, &by_oid).await?;
    for t in &mut tables {
        t.int_key = t.key.len() == 1 && t.key_columns().iter().all(|c| c.order == OrderClass::Int);
    }
    Ok(Catalog {
        engine: Engine::Postgres,
        major: (version / 10000) as u32,
        tables,
    })
}

/// Index of each table in the catalog's list, by oid.
type ByOid = HashMap<u32, usize>;

/// The user tables (no partitions, no extension tables) with their columns and how
/// each column orders; and where each table is in the list, by oid.
async fn pg_columns(pool: &sqlx::PgPool, version: i32) -> Result<(Vec<Table>, ByOid), sqlx::Error> {
    let generated = if version >= 120000 {
        "a.attgenerated::text <> ''"
    } else {
        "false"
    };
    let identity = if version >= 100000 {
        "a.attidentity::text = 'a'"
    } else {
        "false"
    };
    let not_partition = if version >= 100000 {
        "not c.relispartition"
    } else {
        "true"
    };
    // The database's default collation, for columns that use "default".
    let db_coll: (String, String) = sqlx::query_as(
        "select datcollate::text, coalesce(to_jsonb(d) ->> 'datlocprovider', 'c') \
         from pg_database d where datname = current_database()",
    )
    .fetch_one(pool)
    .await?;
    let default_bytewise = db_coll.1 == "c" && bytewise_collation(&db_coll.0);
    let cols = sqlx::query(&format!(
        "select n.nspname::text, c.relname::text, c.oid::int8, c.reltuples::float8, \
                a.attname::text, format_type(a.atttypid, a.atttypmod), a.atttypid::int8, \
                t.typtype::text, {generated}, {identity}, coalesce(co.collname::text, ''), \
                format_type(a.atttypid, null) \
           from pg_class c \
           join pg_namespace n on n.oid = c.relnamespace \
           join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped \
           join pg_type t on t.oid = a.atttypid \
           left join pg_collation co on co.oid = a.attcollation \
          where c.relkind in ('r', 'p') and {not_partition} \
            and n.nspname not in ('pg_catalog', 'information_schema', 'ferry') \
            and n.nspname !~ '^pg_(toast|temp)' \
            and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass \
                            and d.objid = c.oid and d.deptype = 'e') \
          order by 1, 2, a.attnum"
    ))
    .fetch_all(pool)
    .await?;
    let mut tables: Vec<Table> = Vec::new();
    let mut by_oid: ByOid = HashMap::new();
    for r in &cols {
        let oid = r.try_get::<i64, _>(2)? as u32;
        let idx = *by_oid.entry(oid).or_insert_with(|| {
            tables.push(Table {
                schema: r.try_get(0).unwrap_or_default(),
                name: r.try_get(1).unwrap_or_default(),
                oid,
                columns: Vec::new(),
                key: Vec::new(),
                int_key: false,
                rowid: false,
                est_rows: r
                    .try_get::<f64, _>(3)
                    .ok()
                    .filter(|x| *x >= 0.0)
                    .map(|x| x as u64),
                parents: Vec::new(),
                referenced: false,
                self_ref: false,
                has_triggers: false,
            });
            tables.len() - 1
        });
        let type_name: String = r.try_get(5)?;
        let type_oid = r.try_get::<i64, _>(6)? as u32;
        let typtype: String = r.try_get(7)?;
        let mut collation: String = r.try_get(10)?;
        if collation == "default" && default_bytewise {
            collation = "C".into();
        }
        tables[idx].columns.push(Column {
            name: r.try_get(4)?,
            order: pg_order(type_oid, &typtype, &collation, &type_name),
            cast_type: r.try_get(11)?,
            type_name,
            type_oid,
            generated: r.try_get(8)?,
            identity_always: r.try_get(9)?,
        });
    }
    Ok((tables, by_oid))
}

/// Primary key columns, in key order.
async fn pg_keys(
    pool: &sqlx::PgPool,
    tables: &mut [Table],
    by_oid: &ByOid,
) -> Result<(), sqlx::Error> {
    let keys = sqlx::query(
        "select con.conrelid::int8, a.attname::text \
           from pg_constraint con \
           cross join lateral unnest(con.conkey) with ordinality as k(attnum, ord) \
           join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum \
          where con.contype = 'p' order by con.conrelid, k.ord",
    )
    .fetch_all(pool)
    .await?;
    for r in &keys {
        let oid = r.try_get::<i64, _>(0)? as u32;
        let col: String = r.try_get(1)?;
        if let Some(t) = by_oid.get(&oid).and_then(|&i| tables.get_mut(i)) {
            if let Some(ci) = t.columns.iter().position(|c| c.name == col) {
                t.key.push(ci);
            }
        }
    }
    Ok(())
}

/// Foreign keys: which tables are referenced, which reference themselves, and each
/// table's parents.
async fn pg_references(
    pool: &sqlx::PgPool,
    tables: &mut [Table],
    by_oid: &ByOid,
) -> Result<(), sqlx::Error> {
    let fks = sqlx::query(
        "select conrelid::int8, confrelid::int8 from pg_constraint where contype = 'f'",
    )
    .fetch_all(pool)
    .await?;
    for r in &fks {
        let (child, parent) = (
            r.try_get::<i64, _>(0)? as u32,
            r.try_get::<i64, _>(1)? as u32,
        );
        let parent_name = by_oid
            .get(&parent)
            .and_then(|&i| tables.get(i))
            .map(|t| t.qualified_name());
        if let Some(p) = by_oid.get(&parent).and_then(|&i| tables.get_mut(i)) {
            p.referenced = true;
        }
        if child == parent {
            if let Some(t) = by_oid.get(&child).and_then(|&i| tables.get_mut(i)) {
                t.self_ref = true;
            }
        } else {
            if let (Some(t), Some(name)) = (
                by_oid.get(&child).and_then(|&i| tables.get_mut(i)),
                parent_name,
            ) {
                if !t.parents.contains(&name) {
                    t.parents.push(name);
                }
            }
        }
    }
    Ok(())
}

/// Tables with user triggers (they fire for copied rows).
async fn pg_triggers(
    pool: &sqlx::PgPool,
    tables: &mut [Table],
    by_oid: &ByOid,
) -> Result<(), sqlx::Error> {
    let triggers: Vec<i64> =
        sqlx::query_scalar("select distinct tgrelid::int8 from pg_trigger where not tgisinternal")
            .fetch_all(pool)
            .await?;
    for oid in triggers {
        if let Some(t) = by_oid.get(&(oid as u32)).and_then(|&i| tables.get_mut(i)) {
            t.has_triggers = true;
        }
    }
    Ok(())
}

/// The tables of `cat` that the globs `include` select and `exclude` do not, in catalog order.
pub fn select<'a>(cat: &'a Catalog, include: &[String], exclude: &[String]) -> Vec<&'a Table> {
    cat.tables
        .iter()
        .filter(|t| crate::runbook::globs::selected(include, exclude, &t.qualified_name()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_classes() {
        assert_eq!(pg_order(23, "b", "", "integer"), OrderClass::Int);
        assert_eq!(pg_order(25, "b", "C", "text"), OrderClass::Bytewise);
        assert_eq!(pg_order(25, "b", "en_US", "text"), OrderClass::Unsafe);
        assert_eq!(
            pg_order(2950, "b", "", "uuid"),
            OrderClass::Typed("pg:uuid".into())
        );
    }
}
