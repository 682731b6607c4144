//! `ferry demo --headless --yes` end to end in a temporary folder: it seeds,
//! copies and verifies for real, the journal is complete and closed, the app's
//! writes stop at the freeze, and a second run in the same folder works too.

use std::path::Path;
use std::process::Command;

fn demo(dir: &Path, rows: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["demo", "--headless", "--yes", "--rows", rows, "--dir"])
        .arg(dir)
        .env_remove("FERRY_DEMO_DIR")
        .output()
        .expect("run ferry demo");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn journals(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("runs/demo"))
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn the_demo_runs_twice_in_the_same_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    for round in 1..=2 {
        let (code, out, err) = demo(dir.path(), "20000");
        assert_eq!(code, 0, "round {round}:\n{out}\n{err}");
        for needle in [
            "✔ copy-all: succeeded",
            "✔ verify-all: succeeded",
            "✔ switch-app: succeeded",
            "run finished: all steps done",
            "report:  ferry report",
        ] {
            assert!(
                out.contains(needle),
                "round {round} lacks `{needle}`:\n{out}\n{err}"
            );
        }
        assert!(
            !out.contains("resume:"),
            "no resume hint after a run that finished:\n{out}"
        );
        let js = journals(dir.path());
        assert_eq!(js.len(), round, "one journal per run: {js:?}");
        let text = std::fs::read_to_string(js.last().expect("journal")).expect("read");
        assert!(
            text.lines()
                .last()
                .is_some_and(|l| l.contains("\"kind\":\"closed\"")),
            "the journal is closed"
        );
        assert!(
            text.contains("\"kind\":\"result\",\"step\":\"copy-all\""),
            "copy results are journaled"
        );
        assert!(
            text.contains("\"kind\":\"result\",\"step\":\"verify-all\""),
            "verify results are journaled"
        );
        let config = std::fs::read_to_string(dir.path().join("app-config.env"))
            .expect("the switch wrote the app config");
        assert!(config.contains("target.db"), "{config}");
    }
    // the report of a demo journal renders in all three formats
    let j = journals(dir.path()).pop().expect("journal");
    let report = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["report", "--format", format])
            .arg(&j)
            .output()
            .expect("report");
        assert_eq!(out.status.code(), Some(0), "{format}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let md = report("md");
    for needle in [
        "**succeeded**",
        "`copy-all` confirmed automatically (rehearsal, for",
        "| main.messages |",
        "**PASSED**: no differences: 5 tables",
        "| source-messages | metric |",
    ] {
        assert!(md.contains(needle), "the md report lacks `{needle}`:\n{md}");
    }
    // a demo run is shorter than the 10 s between journaled samples: the
    // chart still shows them (a one-point line drew nothing)
    let html = report("html");
    assert!(html.contains("<circle"), "the metric's samples are drawn");
    let json: serde_json::Value = serde_json::from_str(&report("json")).expect("json");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/report.schema.json"),
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
    assert_eq!(json["run"]["outcome"], "succeeded");
}

fn demo_args(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("demo")
        .args(args)
        .env_remove("FERRY_DEMO_DIR")
        .output()
        .expect("run ferry demo");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_demo_flags_are_refused_before_anything_is_made() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("d");
    let ds = d.display().to_string();
    for rows in ["0", "99", "18446744073709551615", "10000001"] {
        let (code, err) = demo_args(&["--headless", "--yes", "--rows", rows, "--dir", &ds]);
        assert_eq!(code, 2, "--rows {rows}: {err}");
        assert!(
            err.contains("--rows must be between 100 and 10,000,000"),
            "--rows {rows}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!d.exists(), "--rows {rows} made the folder");
    }
    let (code, err) = demo_args(&["--headless", "--yes", "--operator", " ", "--dir", &ds]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--operator needs a name"), "{err}");
    assert!(!d.exists(), "an empty operator made the folder");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").expect("write");
    let (code, err) = demo_args(&[
        "--headless",
        "--yes",
        "--rows",
        "100",
        "--dir",
        &file.display().to_string(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot create the demo folder"), "{err}");
}

#[test]
fn a_stopped_demo_resumes_with_the_command_it_prints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = dir.path().display().to_string();
    // headless without --yes stops at the first confirmation, like a closed console
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["demo", "--headless", "--rows", "1000", "--dir", &ds])
        .env_remove("FERRY_DEMO_DIR")
        .output()
        .expect("run ferry demo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let hint = format!(
        "ferry demo --dir {} --resume",
        dir.path().canonicalize().expect("dir").display()
    );
    assert!(text.contains(&format!("resume with: {hint}")), "{text}");
    assert!(text.contains(&format!("resume:  {hint}")), "{text}");
    assert!(
        !text.contains("FERRY_DEMO_DIR") && !text.contains("ferry run"),
        "no hint that fails without the demo's environment:\n{text}"
    );
    // the printed command, from another working directory and without the variable
    let (code, out, err) = {
        let o = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .current_dir(std::env::temp_dir())
            .args(["demo", "--dir", &ds, "--resume", "--headless", "--yes"])
            .env_remove("FERRY_DEMO_DIR")
            .output()
            .expect("resume");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("✔ verify-all: succeeded"), "{out}");
    assert!(
        !err.contains("seeding"),
        "a resume does not seed again: {err}"
    );
    let js = journals(dir.path());
    assert_eq!(js.len(), 1, "the same journal goes on: {js:?}");
    let report = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["report"])
        .arg(&js[0])
        .output()
        .expect("report");
    let md = String::from_utf8_lossy(&report.stdout);
    assert!(md.contains("## Interruptions and resumes"), "{md}");
    assert!(md.contains("while no step was running"), "{md}");
    // a run that ended is not resumed, and nothing is written meanwhile
    let (code, err) = demo_args(&["--dir", &ds, "--resume", "--headless", "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already ended"), "{err}");
    assert!(!err.contains("the app wrote"), "{err}");
}
