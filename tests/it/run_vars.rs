//! `--var KEY=VALUE` and `--vars FILE.toml` on the real binary: they override
//! `[vars]` in `ferry check` and `ferry run`, unknown names and bad files are
//! refused (the file at line:column), every value used is journaled with
//! secret-named ones masked (and kept out of the journal and the screen), and a
//! resume reuses the journaled values and refuses a changed one.

use crate::support;

use std::process::Command;
use support::headless::*;

const BODY: &str = r#"
[vars]
target = "prod-db"
api_token = "runbook-token-value"
greeting = "${env:GREETING}"

[[phase]]
id = "p"

  [[phase.step]]
  id = "a"
  kind = "shell"
  confirm = "none"
  run = "echo a target=${vars.target} >> out.txt; echo token=${vars.api_token}"

  [[phase.step]]
  id = "gate"
  kind = "confirm"

  [[phase.step]]
  id = "c"
  kind = "shell"
  run = "echo c target=${vars.target} >> out.txt"
"#;

const RIG_VARS: &str = "# the test rig\ntarget = \"rig-db\"\napi_token = \"s3cr3t-rig-token\"\n";

fn check(dir: &Dir, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(dir.path())
        .args(["check", "runbook.toml"])
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run ferry check");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn check_shows_the_values_in_force_and_where_they_came_from() {
    let dir = Dir::new();
    dir.runbook("vars", BODY);
    std::fs::write(dir.file("rig.toml"), RIG_VARS).unwrap();
    let out = check(&dir, &["--vars", "rig.toml", "--var", "target=cli-db"]);
    out.assert_code(0, "check with --vars and --var");
    let vars_line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no `{name}` line in\n{}", out.show()))
            .to_string()
    };
    assert!(
        vars_line("target").contains("= cli-db") && vars_line("target").contains("(--var)"),
        "{}",
        out.show()
    );
    assert!(
        vars_line("api_token").contains("masked")
            && vars_line("api_token").contains("(--vars rig.toml)"),
        "{}",
        out.show()
    );
    assert!(
        vars_line("greeting").contains("${env:GREETING}")
            && vars_line("greeting").contains("(runbook)"),
        "{}",
        out.show()
    );
    // nor in the commands the plan prints
    assert!(!out.stdout.contains("s3cr3t-rig-token"), "{}", out.show());
    assert!(out.stdout.contains("echo token=••••••"), "{}", out.show());
    // the runbook's own value without overrides
    let plain = check(&dir, &[]);
    plain.assert_code(0, "check without overrides");
    assert!(plain.stdout.contains("= prod-db"), "{}", plain.show());
}

#[test]
fn unknown_names_and_bad_files_are_refused_with_their_position() {
    let dir = Dir::new();
    dir.runbook("vars", BODY);
    std::fs::write(dir.file("typo.toml"), "target = \"x\"\ntarjet = \"y\"\n").unwrap();
    let out = check(&dir, &["--vars", "typo.toml"]);
    out.assert_code(2, "a vars file naming an unknown var");
    assert!(
        out.stderr.contains("typo.toml:2:1")
            && out.stderr.contains("unknown variable `tarjet`")
            && out.stderr.contains("did you mean `target`?"),
        "{}",
        out.show()
    );
    std::fs::write(dir.file("broken.toml"), "target = \"x\"\napi_token = \n").unwrap();
    let out = check(&dir, &["--vars", "broken.toml"]);
    out.assert_code(2, "a vars file that is not TOML");
    assert!(
        out.stderr.contains("broken.toml:2:") && out.stderr.contains("not a valid vars file"),
        "{}",
        out.show()
    );
    std::fs::write(dir.file("table.toml"), "[vars]\ntarget = \"x\"\n").unwrap();
    let out = check(&dir, &["--vars", "table.toml"]);
    out.assert_code(2, "a vars file with a table");
    assert!(out.stderr.contains("table.toml:1:1"), "{}", out.show());
    let out = check(&dir, &["--var", "targt=x"]);
    out.assert_code(2, "an unknown --var");
    assert!(
        out.stderr.contains("unknown variable `targt`")
            && out.stderr.contains("did you mean `target`?"),
        "{}",
        out.show()
    );
    let out = check(&dir, &["--var", "target"]);
    out.assert_code(2, "a --var without `=`");
    assert!(out.stderr.contains("has no `=`"), "{}", out.show());
    let out = check(&dir, &["--vars", "missing.toml"]);
    out.assert_code(2, "a missing vars file");
    assert!(
        out.stderr.contains("cannot read vars file missing.toml"),
        "{}",
        out.show()
    );
    // ferry run refuses the same way, before writing any journal
    let out = dir.run(&["--yes", "--var", "targt=x"]);
    out.assert_code(2, "ferry run with an unknown --var");
    assert!(
        out.stderr.contains("did you mean `target`?"),
        "{}",
        out.show()
    );
    assert!(dir.journals().is_empty(), "{:?}", dir.journals());
}

#[test]
fn a_run_journals_the_values_masks_secrets_and_a_resume_reuses_them() {
    let mut dir = Dir::new();
    dir.env("GREETING", "hello");
    dir.runbook("vars", BODY);
    std::fs::write(dir.file("rig.toml"), RIG_VARS).unwrap();
    // without --yes the run stops at `gate`, which needs a person
    let first = dir.run(&["--vars", "rig.toml", "--var", "target=cli-db"]);
    first.assert_code(1, "the first session stops at the gate");
    assert_eq!(dir.lines("out.txt"), vec!["a target=cli-db".to_string()]);
    let journal = dir.journal();
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(!text.contains("s3cr3t-rig-token"), "secret in the journal");
    assert!(
        !first.stdout.contains("s3cr3t-rig-token"),
        "{}",
        first.show()
    );
    let recs = entries(&journal);
    let vars = recs[0]["entry"]["vars"]
        .as_array()
        .unwrap_or_else(|| panic!("no vars in the header: {}", dump(&recs)))
        .clone();
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("{name} not journaled: {vars:?}"))
            .clone()
    };
    assert_eq!(var("target")["value"], "cli-db");
    assert_eq!(var("target")["from"], "command_line");
    assert_eq!(var("api_token")["masked"], true);
    assert!(var("api_token").get("value").is_none(), "{vars:?}");
    assert_eq!(var("api_token")["from"], "file");
    assert_eq!(var("api_token")["path"], "rig.toml");
    assert_eq!(var("greeting")["value"], "${env:GREETING}");
    assert_eq!(var("greeting")["from"], "runbook");
    // the step's output carried the token, masked before the journal
    let outputs: Vec<&str> = recs
        .iter()
        .filter(|r| kind(r) == "output")
        .filter_map(|r| r["entry"]["line"].as_str())
        .collect();
    assert!(
        outputs
            .iter()
            .any(|l| l.starts_with("token=") && !l.contains("s3cr3t")),
        "{outputs:?}"
    );

    // a changed value is refused on resume, and nothing is appended
    let lines_before = text.lines().count();
    std::fs::write(
        dir.file("secret.toml"),
        "api_token = \"s3cr3t-rig-token\"\n",
    )
    .unwrap();
    let changed = dir.run(&[
        "--resume",
        "--yes",
        "--vars",
        "secret.toml",
        "--var",
        "target=other-db",
    ]);
    changed.assert_code(2, "resume with a changed --var");
    assert!(
        changed.stderr.contains("this run began with `cli-db`"),
        "{}",
        changed.show()
    );
    assert_eq!(
        std::fs::read_to_string(&journal).unwrap().lines().count(),
        lines_before
    );
    // the secret was not journaled: it must be given again, not silently
    // replaced by the runbook's
    let forgot = dir.run(&["--resume", "--yes"]);
    forgot.assert_code(2, "resume without the masked var");
    assert!(
        forgot.stderr.contains("`api_token` is named like a secret")
            && forgot.stderr.contains("give it again"),
        "{}",
        forgot.show()
    );
    // the file sets `target` to rig-db, but the run began with cli-db (--var)
    let file_again = dir.run(&["--resume", "--yes", "--vars", "rig.toml"]);
    file_again.assert_code(2, "resume where the file's value is not the journaled one");
    assert!(
        file_again.stderr.contains("sets `target` to `rig-db`"),
        "{}",
        file_again.show()
    );
    // with the secret alone, the journaled value of `target` is used
    let resumed = dir.run(&["--resume", "--yes", "--vars", "secret.toml"]);
    resumed.assert_code(0, "resume reusing the journaled values");
    assert_eq!(
        dir.lines("out.txt"),
        vec!["a target=cli-db".to_string(), "c target=cli-db".to_string()]
    );
    assert!(
        resumed.stdout.contains("api_token masked in the journal"),
        "{}",
        resumed.show()
    );
    assert!(!resumed.stdout.contains("s3cr3t-rig-token"));
    assert_chain_intact(&journal);
}
