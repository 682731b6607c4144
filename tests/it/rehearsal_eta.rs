//! ETAs from rehearsals, on the real binary against the rig: three rehearsals
//! copy two tables (two workers) between the rig's PostgreSQL clusters; then a
//! run with `--rehearsals` starts the same copy held by its throttle, so no
//! live rate exists. Its ETA is worked out from the tables' rehearsed rows per
//! second and the rows left, says so (`rehearsed_rates` in the journal,
//! "(rehearsed rates)" in headless mode), and lies between the longest table's
//! time and the tables' times added up (they overlap as in the rehearsals).

use crate::support;
use serde_json::Value;
use support::headless::*;
use support::pg::{exec, rig_var};

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Drops the test's schema on both clusters, however the test ends.
struct Schemas(String);

impl Drop for Schemas {
    fn drop(&mut self) {
        let sql = format!("drop schema if exists {} cascade", self.0);
        support::pg::cleanup(
            ["FERRY_TEST_PG_PRIMARY", "FERRY_TEST_PG_TARGET"]
                .iter()
                .filter_map(|v| std::env::var(v).ok())
                .map(|url| (url, sql.clone()))
                .collect(),
        );
    }
}

fn body(schema: &str) -> String {
    format!(
        r#"
[connections.src]
url = "${{env:FERRY_TEST_PG_PRIMARY}}"
[connections.tgt]
url = "${{env:FERRY_TEST_PG_TARGET}}"
[[monitor.metric]]
name = "load"
sql = {{ connection = "src", query = "select v from {schema}.load", every = "200ms" }}
[[phase]]
id = "p"
  [[phase.step]]
  id = "copy"
  kind = "copy"
  confirm = "none"
  from = "src"
  to = "tgt"
  tables = ["{schema}.a", "{schema}.b"]
  chunk_rows = 5000
  parallel = 2
  truncate = true
  throttle = {{ metric = "load", above = 50 }}
  timeout = "60s"
"#
    )
}

/// Each table's rows/s in the rehearsals' journaled copy results, by table.
fn rehearsed_rates(
    journals: &[std::path::PathBuf],
) -> std::collections::BTreeMap<String, Vec<f64>> {
    let mut rates: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for j in journals {
        let recs = entries(j);
        let res = recs
            .iter()
            .find(|r| kind(r) == "result" && r["entry"]["step"] == "copy")
            .unwrap_or_else(|| panic!("no copy result in {}:\n{}", j.display(), dump(&recs)));
        for t in res["entry"]["data"]["tables"].as_array().expect("tables") {
            rates
                .entry(t["table"].as_str().expect("table").to_string())
                .or_default()
                .push(t["rows_per_sec"].as_f64().expect("rows_per_sec"));
        }
    }
    rates
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn a_copy_eta_comes_from_the_rehearsed_table_rates_and_says_so() {
    let schema = format!("eta_{}", std::process::id());
    let (src, tgt) = (
        rig_var("FERRY_TEST_PG_PRIMARY"),
        rig_var("FERRY_TEST_PG_TARGET"),
    );
    let _drop = Schemas(schema.clone());
    block(async {
        exec(
            &src,
            &format!(
                "create schema {schema};
                 create table {schema}.a (id bigint primary key, pad text);
                 insert into {schema}.a select g, repeat('a', 200) from generate_series(1, 60000) g;
                 create table {schema}.b (id bigint primary key, pad text);
                 insert into {schema}.b select g, repeat('b', 20) from generate_series(1, 30000) g;
                 analyze {schema}.a; analyze {schema}.b;
                 create table {schema}.load (v float8); insert into {schema}.load values (10)"
            ),
        )
        .await;
        exec(
            &tgt,
            &format!(
                "create schema {schema};
                 create table {schema}.a (id bigint primary key, pad text);
                 create table {schema}.b (id bigint primary key, pad text)"
            ),
        )
        .await;
    });
    let dir = Dir::new();
    dir.runbook("eta", &body(&schema));
    for _ in 0..3 {
        dir.run(&["--yes"]).assert_code(0, "a rehearsal");
    }
    let rehearsals = dir.journals();
    assert_eq!(rehearsals.len(), 3, "{rehearsals:?}");
    let rates = rehearsed_rates(&rehearsals);
    assert_eq!(rates.len(), 2, "{rates:?}");

    // the run: held by its throttle from the start, so only the rehearsals can say how long
    block(exec(&src, &format!("update {schema}.load set v = 90")));
    let mut run = dir.start(&["--yes", "--rehearsals", "runs/eta/*.jsonl"]);
    let journal = (0..500)
        .find_map(|_| {
            let js: Vec<_> = dir
                .journals()
                .into_iter()
                .filter(|j| !rehearsals.contains(j))
                .collect();
            if js.is_empty() {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            js.into_iter().next()
        })
        .expect("the run's journal");
    let with_eta = |recs: &[Value]| -> Option<Value> {
        recs.iter()
            .find(|r| kind(r) == "progress" && r["entry"]["progress"]["eta_basis"].is_string())
            .map(|r| r["entry"]["progress"].clone())
    };
    wait_for(&journal, &mut run, "a progress with an ETA", |recs| {
        with_eta(recs).is_some()
    });
    let p = with_eta(&complete_entries(&journal)).expect("found above");
    // held 3 s: longer than any rehearsal of it, for the report's planned against actual
    std::thread::sleep(std::time::Duration::from_secs(3));
    block(exec(&src, &format!("update {schema}.load set v = 10")));
    let out = run.finish();
    out.assert_code(0, "the run with rehearsals");

    assert_eq!(p["eta_basis"], "rehearsed_rates", "{p}");
    // nothing moved yet: no live rate could have given it
    assert_eq!(p["done"], 0, "{p}");
    let eta = p["eta_secs"].as_f64().expect("eta_secs");
    let (mut sum, mut longest) = (0.0_f64, 0.0_f64);
    for item in p["items"].as_array().expect("items") {
        let name = item["name"].as_str().expect("name");
        let left = item["total"].as_f64().expect("a total") - item["done"].as_f64().unwrap_or(0.0);
        let rate = median(&rates[name]);
        assert!(
            left > 0.0 && rate > 0.0,
            "{name}: {left} rows left at {rate}/s"
        );
        sum += left / rate;
        longest = longest.max(left / rate);
    }
    assert!(
        longest.floor() <= eta && eta <= sum.ceil(),
        "ETA {eta}s outside [{longest}, {sum}] from the rehearsed rates {rates:?} and {p}"
    );
    assert!(
        out.stdout.contains("(rehearsed rates)"),
        "headless mode names the basis:\n{}",
        out.show()
    );

    // the journal says what the forecast was based on, and the report sets it against the run
    let recs = entries(&journal);
    let forecast = recs
        .iter()
        .find(|r| kind(r) == "forecast")
        .map(|r| &r["entry"])
        .unwrap_or_else(|| panic!("no forecast entry:\n{}", dump(&recs)));
    assert_eq!(
        forecast["journals"].as_array().map(|j| j.len()),
        Some(3),
        "{forecast}"
    );
    let planned = forecast["steps"]["copy"]["p90_secs"]
        .as_f64()
        .expect("copy's p90");
    let report = |format: &str| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .current_dir(dir.path())
            .args(["report", &journal.to_string_lossy(), "--format", format])
            .output()
            .expect("ferry report");
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let md = report("md");
    assert!(
        md.contains("## Planned against actual")
            && md.contains("Forecast from 3 rehearsal journal(s)"),
        "{md}"
    );
    let row = md
        .lines()
        .find(|l| l.starts_with("| `copy` |"))
        .unwrap_or_else(|| panic!("no copy row:\n{md}"));
    // held by its throttle, the copy ran longer than any rehearsal of it
    assert!(row.contains("over by"), "{row}");
    let json: Value = serde_json::from_str(&report("json")).expect("json report");
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/report.schema.json"),
        )
        .expect("schema"),
    )
    .expect("schema json");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // the forecast as the copy started: a projected end from the rehearsals
    assert_eq!(json["budget"][0]["step"], "copy", "{}", json["budget"]);
    assert!(
        json["budget"][0]["end_p90"].is_string(),
        "{}",
        json["budget"]
    );
    assert!(md.contains("### The forecast as each step started"), "{md}");
    let copy = json["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == "copy"))
        .expect("copy step");
    assert_eq!(
        copy["planned"]["p90_secs"].as_f64(),
        Some(planned),
        "{copy}"
    );
    assert!(
        copy["duration_secs"].as_f64().expect("actual") > planned,
        "{copy}"
    );
    assert_eq!(
        json["forecast"]["journals"].as_array().map(|j| j.len()),
        Some(3)
    );
}
