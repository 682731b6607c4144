//! `ferry stats --format json` on the real binary validates against
//! `assets/stats.schema.json`: over five real rehearsals made here (one rolled
//! back), over the committed rehearsal and report journals alone and together
//! (no run counted, one run, a resumed run). The figures agree with the runs, and
//! the schema refuses output that breaks it (so it is not vacuous).

use crate::rehearsal::{body, rehearse};
use crate::support;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use support::headless::Dir;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stats_json(cwd: &Path, journals: &[PathBuf]) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(cwd)
        .arg("stats")
        .args(journals)
        .args(["--format", "json"])
        .env_remove("FERRY_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run ferry: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{journals:?}: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{journals:?}: not JSON ({e}):\n{text}"))
}

fn schema_errors(v: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("assets/stats.schema.json")).expect("schema"),
    )
    .expect("schema json");
    jsonschema::validator_for(&schema)
        .expect("a valid schema")
        .iter_errors(v)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

fn assert_valid(v: &Value, what: &str) {
    let errors = schema_errors(v);
    assert!(errors.is_empty(), "{what}: {errors:#?}\n{v:#}");
}

fn jsonl(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    out.sort();
    out
}

fn secs(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn five_real_rehearsals_give_stats_that_validate_and_agree_with_the_runs() {
    let dir = Dir::new();
    dir.runbook("rehearse", &body(3600));
    rehearse(&dir);
    let v = stats_json(dir.path(), &dir.journals());
    assert_valid(&v, "five rehearsals");

    assert_eq!(v["journals"], 5, "{v:#}");
    assert_eq!(v["runbooks"], json!(["rehearse"]), "{v:#}");
    // four succeeded; the one whose freeze failed and was rolled back did not finish
    assert_eq!(v["runs_counted"], 4, "{v:#}");
    assert_eq!(v["left_out"], json!({ "unfinished": 1 }), "{v:#}");
    assert_eq!(v["resumed"], 0, "{v:#}");
    let ids: Vec<&str> = v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["step"].as_str().expect("step"))
        .collect();
    assert_eq!(ids, ["freeze", "copy", "promote"], "{v:#}");
    for s in v["steps"].as_array().expect("steps") {
        assert_eq!(s["n"], 4, "{s:#}");
        let (median, p90, max) = (
            secs(&s["median_secs"]),
            secs(&s["p90_secs"]),
            secs(&s["max_secs"]),
        );
        assert!(median <= p90 && p90 <= max, "{s:#}");
        let ci = s["next95_secs"]
            .as_array()
            .expect("four runs have an interval");
        assert!(
            secs(&ci[0]) <= secs(&s["mean_secs"]) && secs(&s["mean_secs"]) <= secs(&ci[1]),
            "{s:#}"
        );
    }
    // freeze and copy each sleep 0.2 s: that, and a shell's start
    for s in &v["steps"].as_array().expect("steps")[..2] {
        let median = secs(&s["median_secs"]);
        assert!((0.2..2.0).contains(&median), "{s:#}");
    }
    let total = &v["total"];
    assert_eq!(total["n"], 4, "{v:#}");
    assert!((0.4..6.0).contains(&secs(&total["median_secs"])), "{v:#}");
    let window = &v["window"];
    assert_eq!(secs(&window["planned_secs"]), 3600.0, "{v:#}");
    let share = secs(&window["p90_share"]);
    assert!(
        (share - secs(&total["p90_secs"]) / 3600.0).abs() < 1e-12,
        "{v:#}"
    );

    // the schema holds the output to its shape: each of these breaks it
    let mut broken = Vec::new();
    let mut b = v.clone();
    b.as_object_mut().expect("object").remove("total");
    broken.push(("no total", b));
    let mut b = v.clone();
    b["steps"][0]["surprise"] = json!(1);
    broken.push(("a step with an unknown field", b));
    let mut b = v.clone();
    b["steps"][1]["next95_secs"] = json!([0.1]);
    broken.push(("an interval of one end", b));
    let mut b = v.clone();
    b["left_out"] = json!({ "succeeded": 1 });
    broken.push(("a success left out", b));
    let mut b = v.clone();
    b["total"]["median_secs"] = json!(-1.0);
    broken.push(("a negative duration", b));
    for (what, b) in broken {
        assert!(!schema_errors(&b).is_empty(), "the schema accepts {what}");
    }
}

#[test]
fn the_committed_journals_give_stats_that_validate() {
    let rehearsals = jsonl(&root().join("tests/fixtures/rehearsals/journals"));
    let reports = jsonl(&root().join("tests/fixtures/journals"));
    assert_eq!(rehearsals.len(), 5, "{rehearsals:?}");
    assert!(reports.len() >= 3, "{reports:?}");
    let j = |name: &str| root().join("tests/fixtures/journals").join(name);

    let v = stats_json(&root(), &rehearsals);
    assert_valid(&v, "the rehearsal fixtures");
    assert_eq!(
        (v["journals"].clone(), v["runs_counted"].clone()),
        (json!(5), json!(4)),
        "{v:#}"
    );

    // one failed run: no total, no interval, the window without shares
    let v = stats_json(&root(), &[j("failed.jsonl")]);
    assert_valid(&v, "failed.jsonl");
    assert_eq!(v["total"], Value::Null, "{v:#}");
    assert_eq!(v["runs_counted"], 0, "{v:#}");
    assert_eq!(v["steps"][0]["next95_secs"], Value::Null, "{v:#}");
    assert_eq!(v["window"]["p90_share"], Value::Null, "{v:#}");

    // a run stopped and resumed is counted as resumed
    let v = stats_json(&root(), &[j("clean.jsonl"), j("resumed.jsonl")]);
    assert_valid(&v, "clean and resumed");
    assert_eq!(v["resumed"], 1, "{v:#}");

    // every committed journal at once, of different runbooks
    let mut all = rehearsals.clone();
    all.extend(reports);
    let v = stats_json(&root(), &all);
    assert_valid(&v, "every committed journal");
    assert!(
        v["runbooks"].as_array().expect("runbooks").len() >= 2,
        "{v:#}"
    );
}
