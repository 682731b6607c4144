//! The reads one side answers: exact counts, checksums of a key range (computed by
//! PostgreSQL in server mode, by ferry over canonical rows in generic mode), the rows
//! of a range or of a list of keys, bisection points, random sample keys, and the
//! bucketed row-hash multisets of the row-hash strategy.

use super::canon::row_hash;
use super::session::Conn;
use super::sql::{bind_all, bind_mysql, sqlite_key, Cond, SideSql, Values};
use super::tables::Mode;
use crate::db::plan::KeyVal;
use futures::TryStreamExt;
use sqlx::{Executor, Row};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Row-hash buckets of the row-hash strategy.
pub const BUCKETS: i64 = 4096;

/// A range's row count and the sum of its row hashes (exact, as decimal text).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sum {
    pub count: i64,
    pub sum: String,
}

/// Accumulates a generic-mode sum.
#[derive(Default)]
struct Acc {
    count: i64,
    sum: i128,
}

impl Acc {
    fn add(&mut self, h: i64) {
        self.count += 1;
        self.sum += h as i128;
    }

    fn sum(&self) -> Sum {
        Sum {
            count: self.count,
            sum: self.sum.to_string(),
        }
    }
}

fn bucket(h: i64) -> i32 {
    (h & (BUCKETS - 1)) as i32
}

/// Stream the canonical values of the rows matching `cond` (in key order when
/// `ordered`), at most `limit`, into `f`.
async fn each_row(
    conn: &mut Conn,
    s: SideSql<'_>,
    cond: &Cond,
    ordered: bool,
    limit: Option<u64>,
    mut f: impl FnMut(Values),
) -> Result<(), sqlx::Error> {
    let order = s.job.key_order(s.role);
    let mut sql = format!(
        "select {} from {}{}",
        s.values_list(),
        s.table(),
        cond.where_clause()
    );
    if ordered && !order.is_empty() {
        sql.push_str(&format!(" order by {order}"));
    }
    if let Some(l) = limit {
        sql.push_str(&format!(" limit {l}"));
    }
    match conn {
        Conn::Pg(c) => {
            let mut rows = c.fetch(sqlx::raw_sql(&sql));
            while let Some(r) = rows.try_next().await? {
                f(s.pg_values(&r)?);
            }
        }
        Conn::Sqlite(c) => {
            let mut rows = bind_all(sqlx::query(&sql), &cond.binds).fetch(&mut *c);
            while let Some(r) = rows.try_next().await? {
                f(s.sqlite_values(&r)?);
            }
        }
        Conn::MySql(c) => {
            let mut rows = bind_mysql(sqlx::query(&sql), &cond.binds).fetch(&mut *c);
            while let Some(r) = rows.try_next().await? {
                f(s.mysql_values(&r)?);
            }
        }
    }
    Ok(())
}

/// Exact `count(*)` of the whole table.
pub async fn count(conn: &mut Conn, s: SideSql<'_>) -> Result<i64, sqlx::Error> {
    let sql = format!("select count(*) from {}", s.table());
    match conn {
        Conn::Pg(c) => c.fetch_one(sqlx::raw_sql(&sql)).await?.try_get(0),
        Conn::Sqlite(c) => sqlx::query_scalar::<_, i64>(&sql).fetch_one(&mut *c).await,
        Conn::MySql(c) => sqlx::query_scalar::<_, i64>(&sql).fetch_one(&mut *c).await,
    }
}

/// Server mode: the sums of the runs that `points` (ascending keys inside the range
/// `cond`) cut it into, in one scan: each row finds its run by a binary search
/// over the points (a nested `CASE` of key comparisons).
pub async fn grouped_sums(
    c: &mut sqlx::PgConnection,
    s: SideSql<'_>,
    cond: &Cond,
    points: &[Vec<KeyVal>],
) -> Result<Vec<Sum>, sqlx::Error> {
    let cols = s.job.key_cols(s.role);
    let lhs = super::sql::tuple(
        cols.iter()
            .map(|c| crate::db::sqltext::ident(&c.name))
            .collect(),
    );
    let lits: Vec<String> = points
        .iter()
        .map(|p| {
            super::sql::tuple(
                p.iter()
                    .zip(&cols)
                    .map(|(v, c)| super::sql::lit(v, c))
                    .collect(),
            )
        })
        .collect();
    fn case(lhs: &str, lits: &[String], lo: usize, hi: usize) -> String {
        if lo == hi {
            return lo.to_string();
        }
        let mid = (lo + hi).div_ceil(2);
        format!(
            "case when {lhs} < {} then {} else {} end",
            lits[mid - 1],
            case(lhs, lits, lo, mid - 1),
            case(lhs, lits, mid, hi)
        )
    }
    let sql = format!(
        "select g::int4, count(*)::int8, coalesce(sum(h), 0)::text from \
         (select {} as g, {} as h from {}{}) s group by g",
        case(&lhs, &lits, 0, lits.len()),
        s.hash_expr(),
        s.table(),
        cond.where_clause()
    );
    let mut out = vec![
        Sum {
            count: 0,
            sum: "0".into()
        };
        points.len() + 1
    ];
    for r in c.fetch_all(sqlx::raw_sql(&sql)).await? {
        let g: i32 = r.try_get(0)?;
        if let Some(slot) = out.get_mut(g.max(0) as usize) {
            *slot = Sum {
                count: r.try_get(1)?,
                sum: r.try_get(2)?,
            };
        }
    }
    Ok(out)
}

/// Count and hash sum of the rows matching `cond`.
pub async fn checksum(conn: &mut Conn, s: SideSql<'_>, cond: &Cond) -> Result<Sum, sqlx::Error> {
    if let (Mode::Server(_), Conn::Pg(c)) = (s.job.mode, &mut *conn) {
        let sql = format!(
            "select count(*)::int8, coalesce(sum({}), 0)::text from {}{}",
            s.hash_expr(),
            s.table(),
            cond.where_clause()
        );
        let r = c.fetch_one(sqlx::raw_sql(&sql)).await?;
        return Ok(Sum {
            count: r.try_get(0)?,
            sum: r.try_get(1)?,
        });
    }
    let mut acc = Acc::default();
    each_row(conn, s, cond, false, None, |v| acc.add(row_hash(&v) as i64)).await?;
    Ok(acc.sum())
}

/// The rows matching `cond`, in key order, at most `limit`.
pub async fn rows(
    conn: &mut Conn,
    s: SideSql<'_>,
    cond: &Cond,
    limit: Option<u64>,
) -> Result<Vec<Values>, sqlx::Error> {
    let mut out = Vec::new();
    each_row(conn, s, cond, true, limit, |v| out.push(v)).await?;
    Ok(out)
}

/// Keys that cut the rows matching `cond` into runs of `every` rows (in key order).
pub async fn split(
    conn: &mut Conn,
    s: SideSql<'_>,
    cond: &Cond,
    every: u64,
) -> Result<Vec<Vec<KeyVal>>, sqlx::Error> {
    let order = s.job.key_order(s.role);
    let n = s.job.key.len();
    let every = every.max(1) as i64;
    let inner = format!(
        "select {order}, row_number() over (order by {order}) as ferry_rn from {}{}",
        s.table(),
        cond.where_clause()
    );
    let mut out = Vec::new();
    match conn {
        Conn::Pg(c) => {
            let sql = format!(
                "select {} from ({inner}) s where (ferry_rn - 1) % {every} = 0 and ferry_rn > 1 \
                 order by ferry_rn",
                s.key_list()
            );
            for r in c.fetch_all(sqlx::raw_sql(&sql)).await? {
                let mut k = Vec::with_capacity(n);
                for i in 0..n {
                    k.push(KeyVal::Text(r.try_get::<String, _>(i)?));
                }
                out.push(k);
            }
        }
        Conn::Sqlite(c) => {
            let sql = format!(
                "select {order} from ({inner}) where (ferry_rn - 1) % {every} = 0 and ferry_rn > 1 \
                 order by ferry_rn"
            );
            for r in bind_all(sqlx::query(&sql), &cond.binds)
                .fetch_all(&mut *c)
                .await?
            {
                let mut k = Vec::with_capacity(n);
                for i in 0..n {
                    k.push(sqlite_key(&r, i)?);
                }
                out.push(k);
            }
        }
        Conn::MySql(c) => {
            let sql = format!(
                "select {} from ({inner}) s where (ferry_rn - 1) % {every} = 0 and ferry_rn > 1 \
                 order by ferry_rn",
                s.key_list()
            );
            for r in bind_mysql(sqlx::query(&sql), &cond.binds)
                .fetch_all(&mut *c)
                .await?
            {
                let mut k = Vec::with_capacity(n);
                for i in 0..n {
                    k.push(s.mysql_key(&r, i)?);
                }
                out.push(k);
            }
        }
    }
    Ok(out)
}

/// Up to `n` random keys: `TABLESAMPLE SYSTEM` on a large PostgreSQL table (pages,
/// not rows: cheap), `order by random()` on a small one and on SQLite.
pub async fn sample_keys(
    conn: &mut Conn,
    s: SideSql<'_>,
    n: u64,
) -> Result<Vec<Vec<KeyVal>>, sqlx::Error> {
    let k = s.job.key.len();
    let est = s.job.est_rows();
    let mut out = Vec::new();
    match conn {
        Conn::Pg(c) => {
            let from = if est > 20 * n && est > 50_000 {
                let pct = (300.0 * n as f64 / est as f64).clamp(0.001, 100.0);
                format!("{} tablesample system ({pct:.4})", s.table())
            } else {
                s.table()
            };
            let sql = format!(
                "select {} from {from} order by random() limit {n}",
                s.key_list()
            );
            for r in c.fetch_all(sqlx::raw_sql(&sql)).await? {
                let mut key = Vec::with_capacity(k);
                for i in 0..k {
                    key.push(KeyVal::Text(r.try_get::<String, _>(i)?));
                }
                out.push(key);
            }
        }
        Conn::Sqlite(c) => {
            let sql = format!(
                "select {} from {} order by random() limit {n}",
                s.key_list(),
                s.table()
            );
            for r in sqlx::query(&sql).fetch_all(&mut *c).await? {
                let mut key = Vec::with_capacity(k);
                for i in 0..k {
                    key.push(sqlite_key(&r, i)?);
                }
                out.push(key);
            }
        }
        Conn::MySql(c) => {
            let sql = format!(
                "select {} from {} order by rand() limit {n}",
                s.key_list(),
                s.table()
            );
            for r in sqlx::query(&sql).fetch_all(&mut *c).await? {
                let mut key = Vec::with_capacity(k);
                for i in 0..k {
                    key.push(s.mysql_key(&r, i)?);
                }
                out.push(key);
            }
        }
    }
    Ok(out)
}

/// Count and hash sum per row-hash bucket of the whole table.
pub async fn bucket_sums(
    conn: &mut Conn,
    s: SideSql<'_>,
) -> Result<BTreeMap<i32, Sum>, sqlx::Error> {
    let mut out = BTreeMap::new();
    if let (Mode::Server(_), Conn::Pg(c)) = (s.job.mode, &mut *conn) {
        let sql = format!(
            "select (h & {m})::int4, count(*)::int8, sum(h)::text from (select {} as h from {}) s group by 1",
            s.hash_expr(),
            s.table(),
            m = BUCKETS - 1
        );
        for (b, count, sum) in sqlx::query_as::<_, (i32, i64, String)>(&sql)
            .fetch_all(&mut *c)
            .await?
        {
            out.insert(b, Sum { count, sum });
        }
        return Ok(out);
    }
    let mut accs: HashMap<i32, Acc> = HashMap::new();
    each_row(conn, s, &Cond::default(), false, None, |v| {
        let h = row_hash(&v) as i64;
        accs.entry(bucket(h)).or_default().add(h);
    })
    .await?;
    Ok(accs.into_iter().map(|(b, a)| (b, a.sum())).collect())
}

/// How many rows have each row hash, for the rows in `buckets`.
pub async fn hash_counts(
    conn: &mut Conn,
    s: SideSql<'_>,
    buckets: &[i32],
) -> Result<HashMap<i64, i64>, sqlx::Error> {
    let mut out = HashMap::new();
    if let (Mode::Server(_), Conn::Pg(c)) = (s.job.mode, &mut *conn) {
        let sql = format!(
            "select h, count(*)::int8 from (select {} as h from {}) s where (h & {})::int4 = any($1) group by h",
            s.hash_expr(),
            s.table(),
            BUCKETS - 1
        );
        for (h, n) in sqlx::query_as::<_, (i64, i64)>(&sql)
            .bind(buckets)
            .fetch_all(&mut *c)
            .await?
        {
            out.insert(h, n);
        }
        return Ok(out);
    }
    let want: HashSet<i32> = buckets.iter().copied().collect();
    each_row(conn, s, &Cond::default(), false, None, |v| {
        let h = row_hash(&v) as i64;
        if want.contains(&bucket(h)) {
            *out.entry(h).or_insert(0) += 1;
        }
    })
    .await?;
    Ok(out)
}

/// One row for each of `hashes` (rows with equal hashes are equal).
pub async fn rows_by_hash(
    conn: &mut Conn,
    s: SideSql<'_>,
    hashes: &[i64],
) -> Result<HashMap<i64, Values>, sqlx::Error> {
    let mut out = HashMap::new();
    if hashes.is_empty() {
        return Ok(out);
    }
    if let (Mode::Server(_), Conn::Pg(c)) = (s.job.mode, &mut *conn) {
        let sql = format!(
            "select * from (select {} as ferry_h, {} from {}) s where ferry_h = any($1)",
            s.hash_expr(),
            s.values_list(),
            s.table()
        );
        let mut rows = sqlx::query(&sql).bind(hashes).fetch(&mut *c);
        while let Some(r) = rows.try_next().await? {
            let h: i64 = r.try_get(0)?;
            let mut v = Vec::with_capacity(s.job.cols.len());
            for i in 0..s.job.cols.len() {
                v.push(r.try_get::<Option<String>, _>(i + 1)?);
            }
            out.entry(h).or_insert(v);
        }
        return Ok(out);
    }
    let want: HashSet<i64> = hashes.iter().copied().collect();
    each_row(conn, s, &Cond::default(), false, None, |v| {
        let h = row_hash(&v) as i64;
        if want.contains(&h) {
            out.entry(h).or_insert(v);
        }
    })
    .await?;
    Ok(out)
}
