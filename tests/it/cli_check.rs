//! `ferry check` over the repo's runbooks (all must pass) and over the bad
//! fixtures (each must fail with exit 2 and exactly the diagnostics in its
//! `.stderr` golden file). `FERRY_BLESS=1` rewrites the goldens; review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

fn ferry() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("SOURCE_DATABASE_URL");
    c
}

fn toml_files(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
        .collect();
    v.sort();
    v
}

#[test]
fn every_runbook_in_the_repo_is_valid() {
    let files = toml_files("runbooks");
    assert!(
        files.len() >= 7,
        "expected the seed runbooks, demo.toml and demo-postgres.toml, found {files:?}"
    );
    assert!(
        files.iter().any(|f| f.ends_with("demo-postgres.toml")),
        "the runbook of `ferry demo --postgres` is checked too: {files:?}"
    );
    for f in files {
        let out = ferry().arg("check").arg(&f).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{} should be valid:\n{}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("steps in execution order"), "{stdout}");
        assert!(stdout.contains("\nok: "), "{stdout}");
    }
}

#[test]
fn every_good_fixture_is_valid() {
    let files = toml_files("tests/fixtures/good");
    assert!(files.len() >= 2, "{files:?}");
    for f in files {
        let out = ferry().arg("check").arg(&f).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{} should be valid:\n{}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn bad_runbooks_get_exact_diagnostics() {
    let files = toml_files("tests/fixtures/bad");
    assert!(
        files.len() >= 20,
        "expected at least 20 bad fixtures, found {}",
        files.len()
    );
    let bless = std::env::var_os("FERRY_BLESS").is_some();
    let mut failures = Vec::new();
    for f in files {
        let out = ferry().arg("check").arg(&f).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{} must be rejected with exit 2:\n{stderr}",
            f.display()
        );
        assert!(
            out.stdout.is_empty(),
            "{}: nothing on stdout when invalid",
            f.display()
        );
        assert!(
            !stderr.contains("panicked"),
            "{}: panic!\n{stderr}",
            f.display()
        );
        let loc = format!("{}:", f.display());
        assert!(
            stderr.contains(&loc),
            "{}: diagnostics must name the file:\n{stderr}",
            f.display()
        );
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join(f.with_extension("stderr"));
        if bless {
            std::fs::write(&golden, &stderr).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("missing golden {}", golden.display()));
        if want != stderr {
            failures.push(format!(
                "--- {}\nexpected:\n{want}\nactual:\n{stderr}",
                f.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_diagnostic_names_line_and_column() {
    for f in toml_files("tests/fixtures/bad") {
        let out = ferry().arg("check").arg(&f).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let arrows: Vec<&str> = stderr
            .lines()
            .filter(|l| l.trim_start().starts_with("--> "))
            .collect();
        assert!(
            !arrows.is_empty(),
            "{}: no location line:\n{stderr}",
            f.display()
        );
        for a in arrows {
            let loc = a.trim_start().trim_start_matches("--> ");
            let parts: Vec<&str> = loc.rsplitn(3, ':').collect();
            assert!(
                parts.len() == 3
                    && parts[0].parse::<u32>().is_ok()
                    && parts[1].parse::<u32>().is_ok(),
                "{}: `{a}` is not file:line:column",
                f.display()
            );
        }
    }
}

#[test]
fn a_missing_file_is_bad_input() {
    let out = ferry()
        .args(["check", "runbooks/does-not-exist.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("runbooks/does-not-exist.toml"), "{stderr}");
    assert!(stderr.contains("the file does not exist"), "{stderr}");
}

#[test]
fn a_directory_is_bad_input() {
    let out = ferry().args(["check", "runbooks"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a directory"));
}

#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("runbook.toml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut child = ferry()
        .arg("check")
        .arg(&fifo)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            panic!("ferry check hangs on a FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a regular file"), "{stderr}");
}

#[test]
fn a_device_or_a_huge_file_is_refused() {
    let out = ferry().args(["check", "/dev/zero"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));

    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.toml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(64 << 20).unwrap(); // sparse: costs no disk
    let out = ferry().arg("check").arg(&big).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("larger than 8 MiB"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A generated runbook: `n` steps, each line of `step(i)` under one phase.
fn generated(dir: &Path, name: &str, n: usize, step: impl Fn(usize) -> String) -> PathBuf {
    let mut text = String::from("[runbook]\nname = \"big\"\nformat = 1\n\n[[phase]]\nid = \"p\"\n");
    for i in 0..n {
        text.push_str(&step(i));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn huge_generated_runbooks_neither_crash_nor_crawl() {
    let dir = tempfile::tempdir().unwrap();
    // 150,000 chained steps overflowed the stack of the cycle search (exit 134)
    let chain = generated(dir.path(), "chain.toml", 150_000, |i| {
        format!("[[phase.step]]\nid = \"s{i}\"\nkind = \"confirm\"\n")
    });
    let start = std::time::Instant::now();
    let out = ferry().arg("check").arg(&chain).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok: 150000 steps in 1 phases"));
    // 20,000 unknown dependencies: each got a "did you mean" search over
    // every step and a list of all 20,000 ids (minutes, megabytes of output)
    let unknown = generated(dir.path(), "unknown.toml", 20_000, |i| {
        format!("[[phase.step]]\nid = \"s{i}\"\nkind = \"confirm\"\ndepends_on = [\"x{i}\"]\n")
    });
    let out = ferry().arg("check").arg(&unknown).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("19800 more problems are not shown"),
        "{}",
        &stderr[stderr.len().saturating_sub(500)..]
    );
    assert!(stderr.contains("(20000 in all)"), "{}", &stderr[..2000]);
    assert!(
        stderr.len() < 200_000,
        "{} bytes of diagnostics",
        stderr.len()
    );
    // generous for a debug build on a loaded machine; it was minutes
    assert!(
        start.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn bad_flags_exit_2() {
    let out = ferry()
        .args(["check", "--no-such-flag", "x.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn plan_lists_connections_aws_calls_and_dangerous_steps() {
    let out = ferry()
        .args(["check", "tests/fixtures/good/full.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "runbook full-example — Full example (format 1)",
        "window  2026-11-22 02:00 → 2026-11-22 04:00 UTC (2h)",
        "two-person steps     promote",
        "points of no return  promote",
        "rds:PromoteReadReplica",
        "cloudwatch:GetMetricData",
        "connections source, target",
        "after maintenance-on",
        "note: not set in this shell (needed at run time): SOURCE_DATABASE_URL",
        // what a tired operator must not miss
        "[EMPTIES the target tables first]",
        "only matching rows of public.events",
        "on failure: roll back, then halt",
        "create_snapshot prod-v2 as snapshot pre-promote, wait for `available`",
        "lag replica < 10s (held for 1m)",
        "rollback of promote\n    1. maintenance-off",
    ] {
        assert!(stdout.contains(needle), "plan lacks `{needle}`:\n{stdout}");
    }
    // execution order follows depends_on, not file order
    let pos = |s: &str| {
        stdout
            .find(s)
            .unwrap_or_else(|| panic!("no {s} in\n{stdout}"))
    };
    assert!(pos(". snapshot-restored") < pos(". lag-low"));
    assert!(pos(". copy ") < pos(". verify "));
}
