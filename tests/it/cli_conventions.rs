//! The command-line conventions operators expect, on the real binary: `--version` names
//! the commit, `--help` lists the exit codes, the environment and the log file,
//! `ferry completions SHELL` and `ferry man` generate from the real flags, the log
//! file is size-bounded, and `report -o` fsyncs the file and its directory before and
//! after the rename (seen with strace).

use std::path::Path;
use std::process::{Command, Output};

fn ferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env_remove("FERRY_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run ferry {args:?}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = ferry(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let v = text(&out.stdout);
    let head = Command::new("git")
        .args(["rev-parse", "--short=10", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git");
    assert!(head.status.success(), "the tests run from a git checkout");
    let head = text(&head.stdout).trim().to_string();
    assert_eq!(
        v.trim(),
        format!("ferry {} (commit {head})", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_exit_codes_environment_and_the_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("--help")
        .env("XDG_STATE_HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let h = text(&out.stdout);
    for needle in [
        "Exit codes:",
        "  2  bad input",
        "  3  a required service",
        "FERRY_LOG ",
        "FERRY_LOG_MAX_MB",
        "PGSSLMODE, PGSSLROOTCERT",
        "Log file:",
        "completions",
        "man ",
    ] {
        assert!(h.contains(needle), "--help lacks `{needle}`:\n{h}");
    }
    let log = dir.path().join("ferry/ferry.log");
    assert!(
        h.contains(&log.display().to_string()),
        "the real log path:\n{h}"
    );
    // -h stays short
    let short = text(&ferry(&["-h"]).stdout);
    assert!(!short.contains("Exit codes:"), "{short}");
}

#[test]
fn completions_are_generated_for_each_shell_and_a_bad_shell_is_refused() {
    let bash = ferry(&["completions", "bash"]);
    assert_eq!(bash.status.code(), Some(0));
    let b = text(&bash.stdout);
    assert!(
        b.contains("_ferry()") && b.contains("complete -F _ferry"),
        "{b}"
    );
    assert!(b.contains("--resume"), "the real flags: {b}");
    // bash itself accepts it
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ferry.bash");
    std::fs::write(&f, &bash.stdout).unwrap();
    let ok = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p ferry", f.display()))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("_ferry"), "{}", text(&ok.stdout));
    let zsh = text(&ferry(&["completions", "zsh"]).stdout);
    assert!(zsh.starts_with("#compdef ferry"), "{zsh}");
    let fish = text(&ferry(&["completions", "fish"]).stdout);
    assert!(fish.contains("complete -c ferry"), "{fish}");
    let bad = ferry(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("tcsh"), "{}", text(&bad.stderr));
}

#[test]
fn the_man_page_renders_and_one_page_per_command_is_written() {
    let out = ferry(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = text(&out.stdout);
    assert!(page.contains(".TH ferry 1"), "{page}");
    assert!(page.contains("Exit codes:"), "{page}");
    // man(1) formats it
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ferry.1");
    std::fs::write(&f, &out.stdout).unwrap();
    let shown = Command::new("man")
        .arg("-l")
        .arg(&f)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("man is installed");
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    assert!(text(&shown.stdout).contains("database migration cutovers"));
    let pages = dir.path().join("pages");
    let w = ferry(&["man", "--dir", &pages.display().to_string()]);
    assert_eq!(w.status.code(), Some(0), "{}", text(&w.stderr));
    for p in [
        "ferry.1",
        "ferry-run.1",
        "ferry-check.1",
        "ferry-completions.1",
    ] {
        assert!(pages.join(p).is_file(), "{p} missing in {:?}", pages);
    }
}

#[test]
fn the_log_is_size_bounded_and_keeps_one_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let logdir = state.join("ferry");
    std::fs::create_dir_all(&logdir).unwrap();
    let log = logdir.join("ferry.log");
    // an old log already over the 1 MiB limit, and an older rotated one
    std::fs::write(&log, vec![b'o'; 1_100_000]).unwrap();
    std::fs::write(logdir.join("ferry.log.1"), b"oldest").unwrap();
    let demo = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["demo", "--headless", "--yes", "--rows", "100", "--dir"])
        .arg(&demo)
        .env("XDG_STATE_HOME", &state)
        .env("FERRY_LOG_MAX_MB", "1")
        .env("FERRY_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let old = std::fs::read(logdir.join("ferry.log.1")).unwrap();
    assert_eq!(
        old.len(),
        1_100_000,
        "the full log was rotated to ferry.log.1"
    );
    let now = std::fs::read_to_string(&log).unwrap();
    assert!(
        !now.is_empty() && !now.contains("ooo"),
        "a fresh log: {} bytes",
        now.len()
    );
    assert!(now.len() as u64 <= 1 << 20, "bounded: {}", now.len());
    let files = std::fs::read_dir(&logdir).unwrap().count();
    assert_eq!(files, 2, "ferry.log and one ferry.log.1 only");
}

#[test]
fn a_report_file_is_fsynced_before_the_rename_and_its_directory_after() {
    let journal = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/journals/clean.jsonl");
    assert!(journal.is_file(), "{journal:?}");
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("report.md");
    let trace = dir.path().join("trace.txt");
    let out = Command::new("strace")
        .args([
            "-f",
            "-e",
            "trace=openat,fsync,fdatasync,rename,renameat,renameat2",
            "-o",
        ])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_ferry"))
        .args(["report", "-o"])
        .arg(&out_file)
        .arg(&journal)
        .output()
        .expect("strace is installed");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out_file.is_file());
    let t = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = t.lines().collect();
    let find = |pred: &dyn Fn(&str) -> bool| lines.iter().position(|l| pred(l));
    let rename = find(&|l| l.contains("rename") && l.contains("report.md\""))
        .unwrap_or_else(|| panic!("no rename into report.md:\n{t}"));
    let fsyncs: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("fsync("))
        .map(|(i, _)| i)
        .collect();
    assert!(
        fsyncs.iter().any(|i| *i < rename),
        "file fsync before rename:\n{t}"
    );
    assert!(
        fsyncs.iter().any(|i| *i > rename),
        "directory fsync after rename:\n{t}"
    );
    let dir_open = find(&|l| {
        l.contains("openat(")
            && l.contains(&format!("\"{}\"", dir.path().display()))
            && l.contains("O_RDONLY")
    });
    assert!(
        dir_open.is_some_and(|i| i > rename),
        "the directory is opened (to fsync it) after the rename:\n{t}"
    );
}
