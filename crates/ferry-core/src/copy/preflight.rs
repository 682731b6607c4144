//! The pre-flight of a copy from MySQL, before any row moves: every problem at once.
//!
//! - **Tables without a primary key**: a warning, not a refusal. Such a table is one
//!   chunk, committed with its checkpoint in one target transaction, so it is still
//!   copied exactly once; what it loses is resuming part-way and parallelism (a failure
//!   restarts it from its first row).
//! - **Values that will not fit** the target column: one aggregate query per table on
//!   the source (`max(char_length(…))`, `min`/`max`, counts of fractions, of zero
//!   dates, of TINYINT values other than 0 and 1, of TIMEs beyond a day), and only for
//!   the columns whose *declared* MySQL type can hold a value the target cannot; a
//!   table whose declared types all fit is not read at all.
//! - **Unique keys that collide** under PostgreSQL's comparison. The copy carries
//!   values exactly, so PostgreSQL equality of two carried values implies MySQL
//!   equality, except where the target compares more coarsely than the bytes: a
//!   `citext` column or a nondeterministic collation (case folded here), and
//!   `character(n)` from a MySQL `VARCHAR`/`TEXT` (trailing spaces ignored). A target
//!   unique key is proven safe by a MySQL unique key on a subset of its columns none
//!   of which is such a column; any other target unique key is checked by a `GROUP BY`
//!   on the source over the values as PostgreSQL will compare them (docs/mysql.md
//!   gives the reasoning).
//!
//! The source is read without a snapshot and may change before its rows are copied:
//! the pre-flight finds what is there now, and the copy still checks every value.

use super::prepare::TableSpec;
use super::{match_tables, mysql, CopyError, CopyFormat};
use crate::db::mysql::{ident, qualified};
use crate::db::mysql_values::{ColPlan, Src, Tgt};
use crate::db::Db;
use crate::runbook::{CopyStep, ZeroDates};
use sqlx::{MySqlPool, PgPool, Row};

/// What the pre-flight found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Preflight {
    /// Each makes the copy fail before any row moves.
    pub problems: Vec<String>,
    /// Worth saying; the copy goes on.
    pub warnings: Vec<String>,
    /// How many tables were looked at.
    pub tables: usize,
}

/// The pre-flight of `step` (a MySQL source into PostgreSQL), read-only: what the
/// copy checks at its start, for `ferry check --live`.
pub async fn check(step: &CopyStep, source: &Db, target: &Db) -> Result<Preflight, CopyError> {
    let (Db::MySql(_), Db::Pg(_)) = (source, target) else {
        return Ok(Preflight::default());
    };
    let specs = match_tables(step, source, target, CopyFormat::Text).await?;
    run(&specs, step.zero_dates, source, target).await
}

/// The pre-flight over matched tables.
pub(crate) async fn run(
    specs: &[TableSpec],
    zero_dates: ZeroDates,
    source: &Db,
    target: &Db,
) -> Result<Preflight, CopyError> {
    let (Db::MySql(my), Db::Pg(pg)) = (source, target) else {
        return Ok(Preflight::default());
    };
    let mut out = Preflight {
        tables: specs.len(),
        ..Default::default()
    };
    for spec in specs {
        let plans = match mysql::plans(spec, zero_dates) {
            Ok(p) => p,
            Err(e) => {
                out.problems.push(e);
                continue;
            }
        };
        if spec.src.key.is_empty() {
            out.warnings.push(format!(
                "table {} has no primary key: it is copied as one chunk in one target \
                 transaction{}, without parallelism; a failure restarts it from its first row \
                 (declare a primary key on MySQL to get resumable chunks)",
                spec.name,
                spec.src
                    .est_rows
                    .map(|n| format!(" (about {n} rows)"))
                    .unwrap_or_default()
            ));
        }
        fits(my, spec, &plans, zero_dates, &mut out.problems)
            .await
            .map_err(|e| CopyError::sql(&format!("pre-flight of {}", spec.name), &e))?;
        uniques(my, pg, spec, &plans, zero_dates, &mut out)
            .await
            .map_err(|e| CopyError::sql(&format!("pre-flight of {}", spec.name), &e))?;
    }
    Ok(out)
}

/// The values a declared MySQL integer type can hold.
fn int_range(type_name: &str, src: Src) -> Option<(i128, i128)> {
    let unsigned = type_name.contains("unsigned");
    let bits = match src {
        Src::Bit(n) => return Some((0, (1i128 << n.min(64)) - 1)),
        Src::Year => return Some((0, 2155)),
        Src::Tiny1 => 8,
        Src::Int => match type_name.split(['(', ' ']).next().unwrap_or("") {
            "tinyint" => 8,
            "smallint" => 16,
            "mediumint" => 24,
            "int" | "integer" => 32,
            _ => 64,
        },
        _ => return None,
    };
    Some(if unsigned {
        (0, (1i128 << bits) - 1)
    } else {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    })
}

/// `(p, s)` of `decimal(p,s)`.
fn decimal_ps(type_name: &str) -> (u32, u32) {
    let m: Vec<u32> = type_name
        .split_once('(')
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(a, _)| a.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    match m.as_slice() {
        [p, s] => (*p, *s),
        [p] => (*p, 0),
        _ => (10, 0),
    }
}

/// The most characters a declared MySQL text type can hold (an upper bound).
fn max_chars(type_name: &str, data_type: &str) -> u64 {
    match data_type {
        "char" | "varchar" => decimal_ps(type_name).0 as u64,
        "tinytext" => 255,
        "text" => 65_535,
        "mediumtext" => 16_777_215,
        // ENUM and SET: no label, nor the list of all of them, is longer than the type
        "enum" | "set" => type_name.chars().count() as u64,
        _ => u64::MAX,
    }
}

/// One check of one column: the rows whose value would not fit, and why.
struct Probe {
    col: usize,
    /// A predicate true for a row whose value the copy would refuse.
    bad: String,
    why: String,
}

const ZERO: &str = "(year({c}) = 0 or month({c}) = 0 or dayofmonth({c}) = 0)";

/// The probes of `spec`'s columns: only where the declared MySQL type can hold a value
/// the target column cannot.
fn probes(spec: &TableSpec, plans: &[ColPlan], zero_dates: ZeroDates) -> Vec<Probe> {
    let mut out = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        let s = &spec.cols[i];
        let t = &spec.tgt_cols[i].type_name;
        let c = ident(&p.name);
        let (src, tgt) = p.kinds();
        let mut add = |bad: String, why: String| out.push(Probe { col: i, bad, why });
        match (src, tgt) {
            (Src::Text | Src::Set, Tgt::Text(Some(max)))
                if max_chars(&s.type_name, &s.cast_type) > *max as u64 =>
            {
                add(
                    format!("char_length({c}) > {max}"),
                    format!("have more than the {max} characters of PostgreSQL {t}"),
                );
            }
            (Src::Int | Src::Tiny1 | Src::Year | Src::Bit(_), Tgt::Int { min, max }) => {
                if let Some((lo, hi)) = int_range(&s.type_name, src) {
                    if lo < *min || hi > *max {
                        let v = format!("({c} + 0)");
                        let hint = if hi > i64::MAX.into() {
                            ": make the target column numeric(20) (an unsigned BIGINT reaches \
                             18446744073709551615)"
                        } else {
                            ""
                        };
                        add(
                            format!("{v} < {min} or {v} > {max}"),
                            format!("are outside PostgreSQL {t} ({min} to {max}){hint}"),
                        );
                    }
                }
            }
            (Src::Int | Src::Tiny1 | Src::Year | Src::Bit(_), Tgt::Numeric(Some((d, _)))) => {
                if let Some((lo, hi)) = int_range(&s.type_name, src) {
                    if lo.abs().max(hi).to_string().len() as u32 > *d {
                        add(
                            format!("abs({c} + 0) >= 1{}", "0".repeat(*d as usize)),
                            format!("need more than the {d} digits before the point of {t}"),
                        );
                    }
                }
            }
            (Src::Decimal, Tgt::Int { min, max }) => {
                let (p, sc) = decimal_ps(&s.type_name);
                if sc > 0 {
                    add(
                        format!("{c} <> truncate({c}, 0)"),
                        format!("have a fraction (PostgreSQL {t} would round it)"),
                    );
                }
                if 10i128
                    .checked_pow(p.saturating_sub(sc))
                    .is_none_or(|x| x - 1 > *max)
                {
                    add(
                        format!("truncate({c}, 0) < {min} or truncate({c}, 0) > {max}"),
                        format!("are outside PostgreSQL {t} ({min} to {max})"),
                    );
                }
            }
            (Src::Decimal, Tgt::Numeric(Some((d, scale)))) => {
                let (p, sc) = decimal_ps(&s.type_name);
                if sc > *scale {
                    add(
                        format!("{c} <> round({c}, {scale})"),
                        format!("have more than the {scale} fractional digits of {t}"),
                    );
                }
                if p.saturating_sub(sc) > *d {
                    add(
                        format!("abs({c}) >= 1{}", "0".repeat(*d as usize)),
                        format!("need more than the {d} digits before the point of {t}"),
                    );
                }
            }
            (Src::Int | Src::Tiny1 | Src::Bit(_), Tgt::Bool) => {
                add(
                    format!("{c} + 0 not in (0, 1)"),
                    "are neither 0 nor 1, so not booleans".into(),
                );
            }
            (Src::Date | Src::DateTime | Src::Timestamp, _) if zero_dates == ZeroDates::Fail => {
                add(
                    ZERO.replace("{c}", &c),
                    "are zero dates, which PostgreSQL has not: set `zero_dates = \"null\"` on \
                     the step to carry them as NULL (the report counts them)"
                        .into(),
                );
            }
            (Src::Time, Tgt::Time) => {
                add(
                    format!("{c} < '00:00:00' or {c} > '24:00:00'"),
                    "are not times of day (make the target column `interval`)".into(),
                );
            }
            _ => {}
        }
    }
    out
}

/// `(id=7)`, `(a=1, b=x)`: the key of a row, as the copy names it, in SQL.
fn key_sql(spec: &TableSpec) -> String {
    let parts: Vec<String> = spec
        .src
        .key_columns()
        .iter()
        .map(|k| {
            format!(
                "concat('{}=', cast({} as char))",
                k.name.replace('\'', "''"),
                ident(&k.name)
            )
        })
        .collect();
    if parts.is_empty() {
        "'no primary key'".into()
    } else {
        format!("concat('(', concat_ws(', ', {}), ')')", parts.join(", "))
    }
}

/// Count, in one aggregate query over the table, the values of each probe that would
/// not fit; name the first such row of each.
async fn fits(
    my: &MySqlPool,
    spec: &TableSpec,
    plans: &[ColPlan],
    zero_dates: ZeroDates,
    problems: &mut Vec<String>,
) -> Result<(), sqlx::Error> {
    let probes = probes(spec, plans, zero_dates);
    if probes.is_empty() {
        return Ok(());
    }
    let table = qualified(&spec.src.schema, &spec.src.name);
    let filter = spec.filter.as_ref().map(|f| format!("({f})"));
    let exprs: Vec<String> = probes
        .iter()
        .map(|p| {
            format!(
                "cast(coalesce(sum(case when {} then 1 else 0 end), 0) as char)",
                p.bad
            )
        })
        .collect();
    let sql = format!(
        "select {} from {table}{}",
        exprs.join(", "),
        filter
            .as_ref()
            .map(|f| format!(" where {f}"))
            .unwrap_or_default()
    );
    let row = sqlx::query(&sql).fetch_one(my).await?;
    let key: Vec<String> = spec
        .src
        .key_columns()
        .iter()
        .map(|k| ident(&k.name))
        .collect();
    let order_by = if key.is_empty() {
        String::new()
    } else {
        format!(" order by {}", key.join(", "))
    };
    for (k, p) in probes.iter().enumerate() {
        let n: u64 = row
            .try_get::<Option<String>, _>(k)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if n == 0 {
            continue;
        }
        let c = ident(&spec.cols[p.col].name);
        let first: Option<(Option<String>, Option<String>)> = sqlx::query_as(&format!(
            "select cast({} as char), cast({c} as char) from {table} where ({}){}{} limit 1",
            key_sql(spec),
            p.bad,
            filter
                .as_ref()
                .map(|f| format!(" and {f}"))
                .unwrap_or_default(),
            order_by
        ))
        .fetch_optional(my)
        .await?;
        let example = match first {
            Some((key, v)) => format!(
                ", the first at key {}: {}",
                key.unwrap_or_default(),
                v.map(|v| format!("{v:?}")).unwrap_or_else(|| "NULL".into())
            ),
            None => String::new(),
        };
        problems.push(format!(
            "table {} column {:?} (MySQL {} → PostgreSQL {}): {n} value(s) {}{example}",
            spec.name,
            spec.cols[p.col].name,
            spec.cols[p.col].type_name,
            spec.tgt_cols[p.col].type_name,
            p.why
        ));
    }
    Ok(())
}

/// How PostgreSQL compares a target column, as far as uniqueness goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    /// Equal carried values are equal MySQL values.
    Exact,
    /// Case-insensitive (`citext`, a nondeterministic collation).
    Fold,
    /// `character(n)`: trailing spaces ignored.
    Pad,
    /// Both.
    FoldPad,
}

/// One target unique index: its name, its columns, and whether NULLs collide.
struct TargetKey {
    name: String,
    cols: Vec<String>,
    nulls_not_distinct: bool,
}

async fn target_keys(pg: &PgPool, oid: u32) -> Result<Vec<TargetKey>, sqlx::Error> {
    let rows = sqlx::query(
        "select i.indexrelid::regclass::text, \
                array(select a.attname::text from unnest(i.indkey::int2[]) with ordinality k(n, o) \
                        join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.n \
                       order by k.o), \
                coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::bool, false) \
           from pg_index i \
          where i.indrelid = $1 and i.indisunique and i.indexprs is null and i.indpred is null \
          order by 1",
    )
    .bind(oid as i64)
    .fetch_all(pg)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TargetKey {
                name: r.try_get(0)?,
                cols: r.try_get(1)?,
                nulls_not_distinct: r.try_get(2)?,
            })
        })
        .collect()
}

/// How PostgreSQL compares each column of table `oid`, by name.
async fn target_cmp(pg: &PgPool, oid: u32) -> Result<Vec<(String, Cmp)>, sqlx::Error> {
    let rows: Vec<(String, String, bool)> = sqlx::query_as(
        "select a.attname::text, coalesce(bt.typname, t.typname)::text, \
                coalesce(c.collisdeterministic, true) \
           from pg_attribute a join pg_type t on t.oid = a.atttypid \
           left join pg_type bt on t.typtype = 'd' and bt.oid = t.typbasetype \
           left join pg_collation c on c.oid = a.attcollation \
          where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped",
    )
    .bind(oid as i64)
    .fetch_all(pg)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(n, typ, det)| {
            let fold = typ == "citext" || !det;
            let pad = typ == "bpchar";
            let cmp = match (fold, pad) {
                (true, true) => Cmp::FoldPad,
                (true, false) => Cmp::Fold,
                (false, true) => Cmp::Pad,
                _ => Cmp::Exact,
            };
            (n, cmp)
        })
        .collect())
}

/// The source's unique keys (the primary key included), as column lists.
async fn source_keys(my: &MySqlPool, table: &str) -> Result<Vec<Vec<String>>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select cast(index_name as char), cast(column_name as char) \
           from information_schema.statistics \
          where table_schema = database() and table_name = ? and non_unique = 0 \
          order by index_name, seq_in_index",
    )
    .bind(table)
    .fetch_all(my)
    .await?;
    let mut keys: Vec<(String, Vec<String>)> = Vec::new();
    for (idx, col) in rows {
        match keys.last_mut() {
            Some((n, cols)) if *n == idx => cols.push(col),
            _ => keys.push((idx, vec![col])),
        }
    }
    Ok(keys.into_iter().map(|(_, c)| c).collect())
}

async fn uniques(
    my: &MySqlPool,
    pg: &PgPool,
    spec: &TableSpec,
    plans: &[ColPlan],
    zero_dates: ZeroDates,
    out: &mut Preflight,
) -> Result<(), sqlx::Error> {
    let keys = target_keys(pg, spec.tgt.oid).await?;
    if keys.is_empty() {
        return Ok(());
    }
    let cmps = target_cmp(pg, spec.tgt.oid).await?;
    let src_keys = source_keys(my, &spec.src.name).await?;
    for key in keys {
        // each key column: (index into the copied columns, how PostgreSQL compares it)
        let mut cols = Vec::new();
        for name in &key.cols {
            let Some(i) = spec.tgt_cols.iter().position(|c| &c.name == name) else {
                out.warnings.push(format!(
                    "table {}: unique key {} of the target includes column {name:?}, which the \
                     copy does not fill: not checked",
                    spec.name, key.name
                ));
                cols.clear();
                break;
            };
            let (src, tgt) = plans[i].kinds();
            let texty = matches!(src, Src::Text | Src::Set | Src::Json | Src::Bytes);
            let cmp = cmps
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, c)| *c)
                .unwrap_or(Cmp::Exact);
            let cmp = if texty { cmp } else { Cmp::Exact };
            if texty && *tgt == Tgt::Other && cmp == Cmp::Exact {
                out.warnings.push(format!(
                    "table {}: unique key {} of the target: column {name:?} is {} parsed from \
                     MySQL text; PostgreSQL may find two different texts equal: not checked",
                    spec.name, key.name, spec.tgt_cols[i].type_name
                ));
            }
            cols.push((i, cmp));
        }
        if cols.is_empty() {
            continue;
        }
        let exact_src: Vec<&str> = cols
            .iter()
            .filter(|(_, c)| *c == Cmp::Exact)
            .map(|(i, _)| spec.cols[*i].name.as_str())
            .collect();
        let proven = !key.nulls_not_distinct
            && src_keys
                .iter()
                .any(|u| u.iter().all(|c| exact_src.contains(&c.as_str())));
        if proven {
            continue;
        }
        collisions(my, spec, plans, &key, &cols, zero_dates, &mut out.problems).await?;
    }
    Ok(())
}

/// The source's rows that share a target unique key's values as PostgreSQL compares them.
async fn collisions(
    my: &MySqlPool,
    spec: &TableSpec,
    plans: &[ColPlan],
    key: &TargetKey,
    cols: &[(usize, Cmp)],
    zero_dates: ZeroDates,
    problems: &mut Vec<String>,
) -> Result<(), sqlx::Error> {
    let mut exprs = Vec::new();
    let mut shown = Vec::new();
    for (i, cmp) in cols {
        let c = ident(&spec.cols[*i].name);
        let (src, _) = plans[*i].kinds();
        let e = match (src, cmp) {
            (Src::Text | Src::Set | Src::Json | Src::Bytes, cmp) => {
                let t = format!("convert({c} using utf8mb4)");
                let t = match cmp {
                    Cmp::Exact => t,
                    Cmp::Fold => format!("lower({t})"),
                    Cmp::Pad => format!("trim(trailing ' ' from {t})"),
                    Cmp::FoldPad => format!("lower(trim(trailing ' ' from {t}))"),
                };
                if src == Src::Bytes {
                    format!("cast({c} as binary)")
                } else {
                    format!("cast({t} as binary)")
                }
            }
            (Src::Date | Src::DateTime | Src::Timestamp, _) if zero_dates == ZeroDates::Null => {
                format!(
                    "case when {} then null else {c} end",
                    ZERO.replace("{c}", &c)
                )
            }
            _ => c.clone(),
        };
        exprs.push(e);
        shown.push(format!("cast({c} as char)"));
    }
    let mut conds: Vec<String> = Vec::new();
    if !key.nulls_not_distinct {
        conds.extend(exprs.iter().map(|e| format!("({e}) is not null")));
    }
    let wher = super::where_clause(conds, spec.filter.as_deref());
    let show = format!("concat_ws(', ', {})", shown.join(", "));
    let sql = format!(
        "select convert(min(cast({show} as binary)) using utf8mb4), \
                convert(max(cast({show} as binary)) using utf8mb4), count(*) from {}{wher} \
          group by {} having count(*) > 1 limit 4",
        qualified(&spec.src.schema, &spec.src.name),
        exprs.join(", ")
    );
    let rows: Vec<(Option<String>, Option<String>, i64)> =
        sqlx::query_as(&sql).fetch_all(my).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = cols
        .iter()
        .map(|(i, _)| spec.tgt_cols[*i].name.as_str())
        .collect();
    let examples: Vec<String> = rows
        .iter()
        .take(3)
        .map(|(a, b, n)| {
            let (a, b) = (a.clone().unwrap_or_default(), b.clone().unwrap_or_default());
            if a == b {
                format!("{n} rows ({a:?})")
            } else {
                format!("{n} rows ({a:?} … {b:?})")
            }
        })
        .collect();
    problems.push(format!(
        "table {}: unique key {} ({}) of the target: {}{} groups of source rows are equal as \
         PostgreSQL compares them ({}): {}",
        spec.name,
        key.name,
        names.join(", "),
        if rows.len() > 3 { "at least " } else { "" },
        rows.len().min(3),
        why(cols, key),
        examples.join("; ")
    ));
    Ok(())
}

fn why(cols: &[(usize, Cmp)], key: &TargetKey) -> &'static str {
    if key.nulls_not_distinct {
        "NULLS NOT DISTINCT: NULLs are equal"
    } else if cols
        .iter()
        .any(|(_, c)| matches!(c, Cmp::Fold | Cmp::FoldPad))
    {
        "case-insensitive: citext or a nondeterministic collation"
    } else if cols.iter().any(|(_, c)| *c == Cmp::Pad) {
        "character(n) ignores trailing spaces"
    } else {
        "the source has no unique key on these columns"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_ranges() {
        assert_eq!(
            int_range("int(11)", Src::Int),
            Some((-2147483648, 2147483647))
        );
        assert_eq!(
            int_range("bigint(20) unsigned", Src::Int),
            Some((0, 18446744073709551615))
        );
        assert_eq!(int_range("tinyint(1)", Src::Tiny1), Some((-128, 127)));
        assert_eq!(int_range("bit(3)", Src::Bit(3)), Some((0, 7)));
        assert_eq!(decimal_ps("decimal(65,30)"), (65, 30));
        assert_eq!(max_chars("varchar(20)", "varchar"), 20);
        assert_eq!(max_chars("enum('a','bb')", "enum"), 14);
    }
}
