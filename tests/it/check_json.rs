//! `ferry check --format json` on the real binary: every runbook of the repository and
//! every good fixture gives a plan that validates against `assets/check.schema.json`
//! and lists each of its steps; a bad runbook gives `valid: false` with each error's
//! line and column (exit 2); a secret-named var's value never appears in the JSON.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn check_json(path: &Path, extra: &[&str]) -> (Option<i32>, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("check")
        .arg(path)
        .args(["--format", "json"])
        .args(extra)
        .current_dir(root())
        .env_remove("FERRY_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run ferry: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}):\n{stdout}", path.display()));
    (out.status.code(), v, stdout)
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("assets/check.schema.json")).expect("schema"),
    )
    .expect("schema json");
    jsonschema::validator_for(&schema).expect("a valid schema")
}

fn schema_errors(v: &Value) -> Vec<String> {
    validator()
        .iter_errors(v)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    out.sort();
    out
}

#[test]
fn every_good_runbook_gives_a_plan_that_validates() {
    let mut files = toml_files(&root().join("runbooks"));
    files.extend(toml_files(&root().join("tests/fixtures/good")));
    assert!(files.len() >= 8, "the runbooks are found: {files:?}");
    for f in files {
        let (code, v, text) = check_json(&f, &[]);
        assert_eq!(code, Some(0), "{}:\n{text}", f.display());
        assert_eq!(v["valid"], true, "{}", f.display());
        let errors = schema_errors(&v);
        assert!(errors.is_empty(), "{}: {errors:#?}", f.display());
        // every step of the runbook is in the plan, once
        let rb = ferry_core::runbook::load(&f).unwrap_or_else(|e| panic!("{}", e.render()));
        let mut want: Vec<String> = rb.steps().map(|s| s.id.clone()).collect();
        let mut got: Vec<String> = v["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| s["id"].as_str().expect("id").to_string())
            .collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{}", f.display());
    }
}

#[test]
fn a_bad_runbook_gives_each_error_with_line_and_column() {
    let f = root().join("tests/fixtures/bad/03-unknown-kind.toml");
    let (code, v, text) = check_json(&f, &[]);
    assert_eq!(code, Some(2), "{text}");
    assert_eq!(v["valid"], false, "{text}");
    let errors = schema_errors(&v);
    assert!(errors.is_empty(), "{errors:#?}");
    let first = &v["errors"][0];
    assert_eq!(first["line"], 15, "{text}");
    assert_eq!(first["column"], 10, "{text}");
    assert!(
        first["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown step kind `shel`")),
        "{text}"
    );
    assert!(
        first["expected"]
            .as_str()
            .is_some_and(|m| m.contains("confirm, shell, sql")),
        "{text}"
    );
}

#[test]
fn a_secret_var_never_reaches_the_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rb = dir.path().join("secret.toml");
    std::fs::write(
        &rb,
        r#"[runbook]
name = "secret-json"
title = "Secret in JSON"
format = 1

[vars]
api_token = "s3cr3t-json-token"

[[phase]]
id = "p"
title = "P"

  [[phase.step]]
  id = "call"
  kind = "shell"
  run = "echo token=${vars.api_token}"
"#,
    )
    .expect("write");
    let (code, v, text) = check_json(&rb, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("s3cr3t-json-token"), "{text}");
    assert!(
        v["steps"][0]["what"]
            .as_str()
            .is_some_and(|w| w.contains("echo token=••••••")),
        "{text}"
    );
    // an override from --var is masked too
    let (code, _, text) = check_json(&rb, &["--var", "api_token=other-s3cr3t"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("other-s3cr3t"), "{text}");
}

#[test]
fn seed_003_checks_with_and_without_its_rig_vars_and_says_when_iam_auth_is_off() {
    let rb = root().join("runbooks/self-hosted-to-managed.toml");
    let rds = |v: &Value| {
        v["connections"]
            .as_array()
            .expect("connections")
            .iter()
            .find(|c| c["name"] == "rds")
            .cloned()
            .expect("the rds connection")
    };
    // production: IAM auth on
    let (code, v, text) = check_json(&rb, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(schema_errors(&v).is_empty(), "{:#?}", schema_errors(&v));
    let c = rds(&v);
    assert_eq!(c["iam_auth"], "app-pg-prod", "{c}");
    assert_eq!(c["iam_auth_off"], Value::Null, "{c}");
    assert_eq!(c["tls"], "verify-full", "{c}");
    // the rig's vars: IAM auth switched off, still verify-full, and a warning says so
    let (code, v, text) = check_json(
        &rb,
        &["--vars", "runbooks/rig/self-hosted-to-managed.vars.toml"],
    );
    assert_eq!(code, Some(0), "{text}");
    let errors = schema_errors(&v);
    assert!(errors.is_empty(), "{errors:#?}");
    let c = rds(&v);
    assert_eq!(c["iam_auth"], Value::Null, "{c}");
    assert_eq!(c["iam_auth_off"], "app-pg-prod", "{c}");
    assert_eq!(c["tls"], "verify-full", "{c}");
    assert!(
        text.contains("connection `rds` has `iam_auth` switched off"),
        "{text}"
    );
}
