//! `ferry report` and `ferry stats` on files that are not good journals, and
//! `-o` pointed at a journal: clear errors with exit 2, never a panic, never
//! a report of nothing, and never a journal overwritten.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/journals")
        .join(format!("{name}.jsonl"))
}

fn ferry(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .output()
        .expect("run ferry");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn files_that_are_not_journals_are_refused_by_report_and_stats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let cases: Vec<(PathBuf, &str)> = vec![
        (d.join("empty.jsonl"), "the file is empty"),
        (d.join("blank.jsonl"), "the file is empty"),
        (
            d.join("text.jsonl"),
            "no line of it is a journal line (line 1:",
        ),
        (
            d.join("json.jsonl"),
            "no line of it is a journal line (line 1:",
        ),
        (d.join("binary.jsonl"), "no line of it is a journal line"),
        (d.join("torn-only.jsonl"), "its only line (1) was cut short"),
        (d.to_path_buf(), "it is a directory"),
        (PathBuf::from("/dev/zero"), "it is not a regular file"),
    ];
    std::fs::write(d.join("empty.jsonl"), "").expect("write");
    std::fs::write(d.join("blank.jsonl"), "\n\n  \n").expect("write");
    std::fs::write(d.join("text.jsonl"), "hello\nworld\n").expect("write");
    std::fs::write(d.join("json.jsonl"), "{\"a\":1}\n").expect("write");
    std::fs::write(
        d.join("binary.jsonl"),
        (0..=255u8).cycle().take(4096).collect::<Vec<u8>>(),
    )
    .expect("write");
    let first = std::fs::read_to_string(fixture("clean")).expect("fixture");
    let first = first.lines().next().expect("a header line");
    std::fs::write(d.join("torn-only.jsonl"), &first[..first.len() / 2]).expect("write");
    for (path, why) in &cases {
        let (code, out, err) = ferry(&["report", &s(path)]);
        assert_eq!(code, 2, "report {}: {err}", path.display());
        assert!(
            err.contains("is not a ferry journal") && err.contains(why),
            "report {}: {err}",
            path.display()
        );
        assert!(out.is_empty(), "no report of nothing: {out}");
        assert!(!err.contains("panicked"), "{err}");
        let (code, out, err) = ferry(&["stats", &s(&fixture("clean")), &s(path)]);
        assert_eq!(code, 2, "stats {}: {err}", path.display());
        assert!(err.contains(why), "stats {}: {err}", path.display());
        assert!(out.is_empty(), "no table with a non-journal in it: {out}");
    }
    let (code, _, err) = ferry(&["report", &s(&d.join("missing.jsonl"))]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read journal"), "{err}");
}

#[test]
fn a_report_never_overwrites_a_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = dir.path().join("run.jsonl");
    std::fs::copy(fixture("clean"), &j).expect("copy");
    let before = std::fs::read(&j).expect("read");
    let other = dir.path().join("other.jsonl");
    std::fs::copy(fixture("failed"), &other).expect("copy");
    let link = dir.path().join("hard-link.txt");
    std::fs::hard_link(&j, &link).expect("link");
    for (out, why) in [
        (&j, "is the journal itself"),
        (&link, "is the journal itself"),
        (&other, "is a ferry journal"),
    ] {
        for format in ["md", "html", "json"] {
            let (code, _, err) = ferry(&["report", &s(&j), "--format", format, "-o", &s(out)]);
            assert_eq!(code, 2, "-o {}: {err}", out.display());
            assert!(err.contains(why), "-o {}: {err}", out.display());
        }
    }
    assert_eq!(std::fs::read(&j).expect("read"), before, "journal intact");
    assert_eq!(
        std::fs::read(&other).expect("read"),
        std::fs::read(fixture("failed")).expect("read"),
        "the other journal is intact"
    );
    // a place that cannot be written is a bad flag, and leaves nothing behind
    let (code, _, err) = ferry(&[
        "report",
        &s(&j),
        "-o",
        &s(&dir.path().join("no/such/dir/r.md")),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot write"), "{err}");
    let (code, _, err) = ferry(&["report", &s(&j), "-o", &s(dir.path())]);
    assert_eq!(code, 2, "-o a directory: {err}");
    assert!(dir.path().is_dir());
    // an earlier report is replaced as before
    let html = dir.path().join("report.html");
    std::fs::write(&html, "old").expect("write");
    let (code, _, err) = ferry(&["report", &s(&j), "--format", "html", "-o", &s(&html)]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read_to_string(&html)
        .expect("read")
        .starts_with("<!DOCTYPE html>"));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("ls")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn a_monitor_that_reads_infinity_leaves_a_journal_that_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("rb.toml"),
        r#"
[runbook]
name = "inf"
format = 1
[connections.db]
url = "sqlite://${env:DB_FILE}"
[[monitor.metric]]
name = "huge"
sql = { connection = "db", query = "select 1e999", every = "1s" }
[[phase]]
id = "p"
  [[phase.step]]
  id = "wait-a-bit"
  kind = "shell"
  confirm = "none"
  run = "sleep 2"
"#,
    )
    .expect("write runbook");
    let run = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(dir.path())
        .args(["run", "rb.toml", "--headless", "--yes"])
        .env("DB_FILE", dir.path().join("x.db"))
        .output()
        .expect("ferry run");
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let journal = std::fs::read_dir(dir.path().join("runs/inf"))
        .expect("runs dir")
        .next()
        .expect("a journal")
        .expect("entry")
        .path();
    // an infinity was journaled as `"value":null`, which no reader accepts:
    // the report called the journal tampered with
    let (code, md, err) = ferry(&["report", &s(&journal)]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("broken"), "{err}");
    assert!(md.contains("Journal integrity: verified"), "{md}");
    assert!(
        md.contains("not a finite number"),
        "the stale note says why:\n{md}"
    );
}

#[test]
fn stats_counts_a_journal_given_twice_once() {
    let clean = fixture("clean");
    let rel = PathBuf::from("tests/fixtures/journals/../journals/clean.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["stats", &s(&clean), &s(&rel), &s(&fixture("failed"))])
        .output()
        .expect("run ferry stats");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(text.contains("over 2 journal(s)"), "{text}");
    assert!(err.contains("was given twice; counted once"), "{err}");
}

/// The report names the chain's head (the last verified line's hash) so that it can be
/// kept outside the journal: cutting the last line off, which the chain alone cannot
/// show, changes it. Checked against the file's own `hash` fields, read here.
#[test]
fn the_report_names_the_chain_head_and_a_cut_off_end_changes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let full = std::fs::read_to_string(fixture("clean")).expect("fixture");
    let lines: Vec<&str> = full.lines().collect();
    let hash_of = |line: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        v["hash"].as_str().expect("a hash field").to_string()
    };
    let head = |text: &str| -> (String, u64) {
        let p = dir.path().join("j.jsonl");
        std::fs::write(&p, text).expect("write");
        let (code, out, err) = ferry(&["report", &s(&p), "--format", "json"]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
        (
            v["journal"]["head"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            v["journal"]["head_line"].as_u64().unwrap_or_default(),
        )
    };
    let whole = head(&full);
    assert_eq!(
        whole,
        (hash_of(lines[lines.len() - 1]), lines.len() as u64),
        "the head is the last line's hash"
    );
    let cut = lines[..lines.len() - 1].join("\n") + "\n";
    let shorter = head(&cut);
    assert_eq!(
        shorter,
        (hash_of(lines[lines.len() - 2]), lines.len() as u64 - 1)
    );
    assert_ne!(whole.0, shorter.0, "a cut-off end changes the head");
    let (_, md, _) = ferry(&["report", &s(&fixture("clean"))]);
    assert!(
        md.contains(&format!("| Journal head | `{}` (line {}", whole.0, whole.1)),
        "{md}"
    );
}
