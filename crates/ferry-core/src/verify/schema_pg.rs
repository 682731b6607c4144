//! The schema of PostgreSQL tables, read from `pg_catalog` inside the side's
//! read-only snapshot: columns, constraints, indexes (other than those backing a
//! primary-key, unique or exclusion constraint, which are compared as constraints),
//! the sequences owned by columns or named by their defaults, with their next values
//! and `max(column)`, the
//! partition key of a partitioned table, and the enum types the columns use (directly, as array elements or under a domain).

use super::schema::{ColInfo, Def, EnumType, Seq, TableSchema};
use crate::db::sqltext::ident;
use sqlx::postgres::PgConnection;
use sqlx::Row;

/// One table to read: its oid and its quoted `schema.name`.
pub struct PgTable {
    pub oid: u32,
    pub sql_name: String,
}

fn idx(tables: &[PgTable], oid: i64) -> Option<usize> {
    tables.iter().position(|t| t.oid as i64 == oid)
}

/// Read the schema of `tables` (server version `major`), in the same order.
pub async fn read(
    c: &mut PgConnection,
    tables: &[PgTable],
    major: u32,
) -> Result<Vec<TableSchema>, sqlx::Error> {
    let oids: Vec<i64> = tables.iter().map(|t| t.oid as i64).collect();
    let mut out = vec![TableSchema::default(); tables.len()];
    read_columns(c, tables, &oids, major, &mut out).await?;
    read_constraints(c, tables, &oids, &mut out).await?;
    read_indexes(c, tables, &oids, &mut out).await?;
    if major >= 10 {
        read_partitioning(c, tables, &oids, &mut out).await?;
    }
    read_sequences(c, tables, &oids, major, &mut out).await?;
    Ok(out)
}

/// Columns: type, nullability, default, identity, generated expression, collation.
async fn read_columns(
    c: &mut PgConnection,
    tables: &[PgTable],
    oids: &[i64],
    major: u32,
    out: &mut [TableSchema],
) -> Result<(), sqlx::Error> {
    let identity = if major >= 10 {
        "a.attidentity::text"
    } else {
        "''"
    };
    let generated = if major >= 12 {
        "a.attgenerated::text"
    } else {
        "''"
    };
    let cols = sqlx::query(&format!(
        "select a.attrelid::int8, a.attname::text, format_type(a.atttypid, a.atttypmod), \
                a.atttypid::int8, a.attnotnull, pg_get_expr(d.adbin, d.adrelid), {identity}, {generated}, \
                case when a.attcollation <> t.typcollation then co.collname::text end \
           from pg_attribute a \
           join pg_type t on t.oid = a.atttypid \
           left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum \
           left join pg_collation co on co.oid = a.attcollation \
          where a.attrelid::int8 = any($1) and a.attnum > 0 and not a.attisdropped \
          order by 1, a.attnum"
    ))
    .bind(oids)
    .fetch_all(&mut *c)
    .await?;
    for r in &cols {
        let Some(i) = idx(tables, r.try_get(0)?) else {
            continue;
        };
        let expr: Option<String> = r.try_get(5)?;
        let ident_kind: String = r.try_get(6)?;
        let gen_kind: String = r.try_get(7)?;
        let generated = (!gen_kind.is_empty()).then(|| expr.clone().unwrap_or_default());
        out[i].columns.push(ColInfo {
            name: r.try_get(1)?,
            type_name: r.try_get(2)?,
            type_oid: r.try_get::<i64, _>(3)? as u32,
            notnull: r.try_get(4)?,
            default: if generated.is_some() { None } else { expr },
            identity: match ident_kind.as_str() {
                "a" => Some("always".into()),
                "d" => Some("by default".into()),
                _ => None,
            },
            generated,
            collation: r.try_get(8)?,
        });
    }
    Ok(())
}

/// Primary keys, unique and exclusion constraints, foreign keys and checks.
async fn read_constraints(
    c: &mut PgConnection,
    tables: &[PgTable],
    oids: &[i64],
    out: &mut [TableSchema],
) -> Result<(), sqlx::Error> {
    let names = "coalesce((select array_agg(a.attname::text order by k.ord) \
                   from unnest({keys}) with ordinality k(n, ord) \
                   join pg_attribute a on a.attrelid = {rel} and a.attnum = k.n), '{}')";
    let cons = sqlx::query(&format!(
        "select conrelid::int8, conname::text, contype::text, pg_get_constraintdef(oid), {}, \
                case when confrelid <> 0 then (select relname::text from pg_class where oid = confrelid) end, {} \
           from pg_constraint where conrelid::int8 = any($1) and contype in ('p', 'u', 'f', 'c', 'x') \
          order by 1, 2",
        names.replace("{keys}", "conkey").replace("{rel}", "conrelid"),
        names.replace("{keys}", "confkey").replace("{rel}", "confrelid"),
    ))
    .bind(oids)
    .fetch_all(&mut *c)
    .await?;
    for r in &cons {
        let Some(i) = idx(tables, r.try_get(0)?) else {
            continue;
        };
        let kind: String = r.try_get(2)?;
        let d = Def {
            name: r.try_get(1)?,
            def: r.try_get(3)?,
            columns: r.try_get(4)?,
            unique: kind == "u",
            ref_table: r.try_get(5)?,
            ref_columns: r.try_get(6)?,
        };
        match kind.as_str() {
            "p" => out[i].pk = d.columns,
            "u" | "x" => out[i].uniques.push(d),
            "f" => out[i].fks.push(d),
            _ => out[i].checks.push(d),
        }
    }
    Ok(())
}

/// Indexes that back no constraint.
async fn read_indexes(
    c: &mut PgConnection,
    tables: &[PgTable],
    oids: &[i64],
    out: &mut [TableSchema],
) -> Result<(), sqlx::Error> {
    let ixs = sqlx::query(&format!(
        "select i.indrelid::int8, c.relname::text, pg_get_indexdef(i.indexrelid), i.indisunique, {} \
           from pg_index i join pg_class c on c.oid = i.indexrelid \
          where i.indrelid::int8 = any($1) \
            and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid \
                            and k.conrelid = i.indrelid and k.contype in ('p', 'u', 'x')) \
          order by 1, 2",
        "coalesce((select array_agg(coalesce(a.attname::text, '<expression>') order by k.ord) \
           from unnest(i.indkey::int2[]) with ordinality k(n, ord) \
           left join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.n), '{}')"
    ))
    .bind(oids)
    .fetch_all(&mut *c)
    .await?;
    for r in &ixs {
        let Some(i) = idx(tables, r.try_get(0)?) else {
            continue;
        };
        out[i].indexes.push(Def {
            name: r.try_get(1)?,
            def: r.try_get(2)?,
            unique: r.try_get(3)?,
            columns: r.try_get(4)?,
            ..Default::default()
        });
    }
    Ok(())
}

/// The partition key of partitioned tables (PostgreSQL 10 and later).
async fn read_partitioning(
    c: &mut PgConnection,
    tables: &[PgTable],
    oids: &[i64],
    out: &mut [TableSchema],
) -> Result<(), sqlx::Error> {
    let parts: Vec<(i64, String)> = sqlx::query_as(
        "select c.oid::int8, pg_get_partkeydef(c.oid) from pg_class c \
          where c.oid::int8 = any($1) and c.relkind = 'p'",
    )
    .bind(oids)
    .fetch_all(&mut *c)
    .await?;
    for (oid, key) in parts {
        if let Some(i) = idx(tables, oid) {
            out[i].partition_key = Some(key);
        }
    }
    Ok(())
}

/// Sequences tied to integer columns, with their next value, increment and the
/// column's maximum.
async fn read_sequences(
    c: &mut PgConnection,
    tables: &[PgTable],
    oids: &[i64],
    major: u32,
    out: &mut [TableSchema],
) -> Result<(), sqlx::Error> {
    let standby: bool = sqlx::query_scalar("select pg_is_in_recovery()")
        .fetch_one(&mut *c)
        .await?;
    // Owned by a column (serial, identity), or named by a column's default
    // (`nextval('shared_id')`, a sequence perhaps shared by several tables).
    let seqs = sqlx::query(
        "select d.refobjid::int8, a.attname::text, s.oid::int8, \
                quote_ident(n.nspname) || '.' || quote_ident(s.relname) \
           from pg_depend d \
           join pg_class s on s.oid = d.objid and s.relkind = 'S' \
           join pg_namespace n on n.oid = s.relnamespace \
           join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid \
          where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass \
            and d.deptype in ('a', 'i') and d.refobjid::int8 = any($1) \
            and a.atttypid in (20, 21, 23) \
         union \
         select ad.adrelid::int8, a.attname::text, s.oid::int8, \
                quote_ident(n.nspname) || '.' || quote_ident(s.relname) \
           from pg_attrdef ad \
           join pg_depend d on d.classid = 'pg_attrdef'::regclass and d.objid = ad.oid \
            and d.refclassid = 'pg_class'::regclass \
           join pg_class s on s.oid = d.refobjid and s.relkind = 'S' \
           join pg_namespace n on n.oid = s.relnamespace \
           join pg_attribute a on a.attrelid = ad.adrelid and a.attnum = ad.adnum \
          where ad.adrelid::int8 = any($1) and a.atttypid in (20, 21, 23) \
          order by 1, 2",
    )
    .bind(oids)
    .fetch_all(&mut *c)
    .await?;
    for r in &seqs {
        let Some(i) = idx(tables, r.try_get(0)?) else {
            continue;
        };
        let column: String = r.try_get(1)?;
        let seq_oid: i64 = r.try_get(2)?;
        let name: String = r.try_get(3)?;
        let (last, called): (i64, bool) =
            sqlx::query_as(&format!("select last_value::int8, is_called from {name}"))
                .fetch_one(&mut *c)
                .await?;
        let increment: i64 = if major >= 10 {
            sqlx::query_scalar("select seqincrement from pg_sequence where seqrelid::int8 = $1")
                .bind(seq_oid)
                .fetch_optional(&mut *c)
                .await?
                .unwrap_or(1)
        } else {
            1
        };
        let max: Option<i64> = sqlx::query_scalar(&format!(
            "select max({})::int8 from {}",
            ident(&column),
            tables[i].sql_name
        ))
        .fetch_one(&mut *c)
        .await?;
        out[i].sequences.push(Seq {
            name: name.replace('"', ""),
            column,
            next: Some(if called {
                last.saturating_add(increment)
            } else {
                last
            }),
            increment,
            max,
            // SEQ_LOG_VALS: a standby sees the value WAL-logged ahead of use
            slack: if standby {
                increment.saturating_abs().saturating_mul(32)
            } else {
                0
            },
        });
    }
    Ok(())
}

/// The enum types the columns of `tables` use.
pub async fn enums(c: &mut PgConnection, tables: &[PgTable]) -> Result<Vec<EnumType>, sqlx::Error> {
    let oids: Vec<i64> = tables.iter().map(|t| t.oid as i64).collect();
    let rows = sqlx::query(
        "with recursive ty(oid) as ( \
             select a.atttypid from pg_attribute a \
              where a.attrelid::int8 = any($1) and a.attnum > 0 and not a.attisdropped \
             union \
             select case when t.typelem <> 0 then t.typelem else t.typbasetype end \
               from pg_type t join ty on t.oid = ty.oid \
              where t.typelem <> 0 or t.typbasetype <> 0) \
         select format_type(t.oid, null), array_agg(e.enumlabel::text order by e.enumsortorder) \
           from pg_type t join pg_enum e on e.enumtypid = t.oid \
          where t.oid in (select oid from ty) group by t.oid order by 1",
    )
    .bind(&oids)
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        out.push(EnumType {
            name: r.try_get(0)?,
            labels: r.try_get(1)?,
        });
    }
    Ok(out)
}

/// Columns under a non-deterministic collation (PostgreSQL 12+): their text is
/// hashed as bytes, since such a collation's hash calls different strings equal.
pub async fn nondeterministic(
    c: &mut PgConnection,
    oids: &[u32],
    major: u32,
) -> Result<Vec<(u32, String)>, sqlx::Error> {
    if major < 12 {
        return Ok(Vec::new());
    }
    let oids: Vec<i64> = oids.iter().map(|o| *o as i64).collect();
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "select a.attrelid::int8, a.attname::text from pg_attribute a \
           join pg_collation co on co.oid = a.attcollation \
          where not co.collisdeterministic and a.attrelid::int8 = any($1) and a.attnum > 0",
    )
    .bind(&oids)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows.into_iter().map(|(o, n)| (o as u32, n)).collect())
}
