//! The copy planner against the rig's real PostgreSQL: how a big table with a
//! text or composite key is cut (the quantiles of a row sample), checked by
//! counting each chunk's rows with an independent query, and a copy over such a
//! plan compared by fingerprint. Tests fail, never skip, when the rig's variables
//! are unset.

use ferry_core::copy::{self, CopyFormat, Hooks};
use ferry_core::db::catalog;
use ferry_core::db::plan::{self, KeyVal, TablePlan};
use ferry_core::runbook::CopyStep;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::support;
use support::pg::{exec, fingerprint, scalar, DbPair};

/// Rows of `items` in each chunk of `plan`, counted by the test's own query.
async fn chunk_rows(url: &str, plan: &TablePlan) -> Vec<i64> {
    let cond = |b: &Option<Vec<KeyVal>>, op: &str| match b {
        None => "true".to_string(),
        Some(k) => {
            let v: Vec<String> = k
                .iter()
                .map(|x| match x {
                    KeyVal::Text(t) => format!("'{t}'"),
                    other => panic!("a text bound, got {other:?}"),
                })
                .collect();
            format!("(order_id, line) {op} ({}::bigint, {}::int)", v[0], v[1])
        }
    };
    let mut out = Vec::new();
    for c in &plan.chunks {
        let n: i64 = scalar(
            url,
            &format!(
                "select count(*)::text from items where {} and {}",
                cond(&c.lo, ">="),
                cond(&c.hi, "<")
            ),
        )
        .await
        .parse()
        .expect("a count");
        out.push(n);
    }
    out
}

/// A big table with a composite key is cut at the quantiles of a row sample: the
/// chunks tile the key space (every row in exactly one) and each holds about
/// `chunk_rows`; and a copy over such a plan is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_composite_key_table_is_cut_at_sampled_quantiles() {
    let pair = DbPair::new("ferry_quantiles").await;
    let schema =
        "create table items (order_id bigint, line int, sku text, primary key (order_id, line));";
    exec(
        &pair.src_url,
        &format!(
            "{schema} insert into items select 1 + i / 3, i % 3, 'sku-' || (i % 977) \
             from generate_series(0, 59999) i; analyze items;"
        ),
    )
    .await;
    exec(&pair.tgt_url, schema).await;
    let (s, t) = pair.pools().await;
    let cat = catalog::read(&s).await.expect("catalog");
    let table = cat.find("public.items").expect("the table");
    let plan = plan::plan(&s, table, 2_000).await.expect("plan");
    assert_eq!(plan.method, copy::Method::Sampled);
    assert!(
        (25..=35).contains(&plan.chunks.len()),
        "about 30 chunks, got {}",
        plan.chunks.len()
    );
    let counts = chunk_rows(&pair.src_url, &plan).await;
    for (c, n) in plan.chunks.iter().zip(&counts) {
        assert!(
            (1_000..=3_000).contains(n) || c.hi.is_none(),
            "chunk {c:?} holds {n} rows, far from 2,000"
        );
    }
    assert_eq!(
        counts.iter().sum::<i64>(),
        60_000,
        "every row in exactly one chunk"
    );
    // the exact row_number() pass would cut every chunk at exactly 2,000
    let exact = counts.iter().filter(|&&n| n == 2_000).count();
    assert!(
        exact < plan.chunks.len() - 1,
        "the sample's quantiles were used"
    );

    let step = CopyStep {
        from: "source".into(),
        to: "target".into(),
        tables: vec!["public.items".into()],
        exclude: vec![],
        chunk_rows: 2_000,
        parallel: 2,
        throttle: None,
        truncate: false,
        zero_dates: Default::default(),
        filters: BTreeMap::new(),
    };
    let hooks = Hooks {
        cancel: CancellationToken::new(),
        progress: Arc::new(|_| {}),
        info: Arc::new(|_| {}),
        throttle: None,
        run: None,
    };
    copy::run_with(
        "quantiles",
        &step,
        &s,
        &t,
        hooks,
        CopyFormat::BinaryWhereSafe,
    )
    .await
    .expect("the copy succeeds");
    assert_eq!(
        fingerprint(&pair.src_url, "items").await,
        fingerprint(&pair.tgt_url, "items").await
    );
}

/// Statistics from when the table was 12x smaller (no analyze since): the sample and
/// the chunk count follow the table's size today, not `reltuples`, so chunks stay
/// near `chunk_rows` (sized from the old count, each would hold ~12x as many rows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_statistics_do_not_make_huge_chunks() {
    let pair = DbPair::new("ferry_stale_stats").await;
    exec(
        &pair.src_url,
        "create table items (order_id bigint, line int, sku text, primary key (order_id, line)) \
           with (autovacuum_enabled = false); \
         insert into items select 1 + i / 3, i % 3, 'sku-' || (i % 977) from generate_series(0, 9999) i; \
         analyze items; \
         insert into items select 1 + i / 3, i % 3, 'sku-' || (i % 977) from generate_series(10000, 119999) i;",
    )
    .await;
    let (s, _t) = pair.pools().await;
    let cat = catalog::read(&s).await.expect("catalog");
    let table = cat.find("public.items").expect("the table");
    assert!(
        table.est_rows.is_some_and(|e| e <= 20_000),
        "the statistics are stale: {:?}",
        table.est_rows
    );
    let plan = plan::plan(&s, table, 1_000).await.expect("plan");
    let counts = chunk_rows(&pair.src_url, &plan).await;
    assert_eq!(
        counts.iter().sum::<i64>(),
        120_000,
        "every row in exactly one chunk"
    );
    let biggest = counts.iter().max().copied().unwrap_or_default();
    assert!(
        (90..=150).contains(&plan.chunks.len()) && biggest <= 2_500,
        "{} chunks, the biggest {biggest} rows: sized from stale statistics",
        plan.chunks.len()
    );
}
