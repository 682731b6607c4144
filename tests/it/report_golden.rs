//! `ferry report` golden tests. Four fixture journals (a clean run, a failed
//! run, a resumed run, a run with verify differences) are built with the real
//! journal writer at fixed times, compared with the checked-in copies under
//! tests/fixtures/journals/, and rendered by the real binary to Markdown and
//! JSON, which must equal the goldens. `FERRY_BLESS=1` rewrites them all.
//! The JSON must validate against assets/report.schema.json.

use chrono::{DateTime, Duration, TimeZone, Utc};
use ferry_core::journal::{Entry, Header, StepMeta, Writer};
use ferry_core::results::copy::{CopyReport, Method, SequenceReset, TableReport};
use ferry_core::results::verify::{TableResult, VerifyReport};
use ferry_core::runbook::ConfirmMode;
use ferry_core::vocab::{Actor, Decision, Event, EvidenceItem, Outcome, RunStatus};
use ferry_core::vocab::{OutputLine, Stream};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bless() -> bool {
    std::env::var_os("FERRY_BLESS").is_some()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 2, 0, 0)
        .single()
        .expect("valid time")
}

fn meta(id: &str, phase: &str, kind: &str, confirm: ConfirmMode, ponr: bool) -> StepMeta {
    StepMeta {
        id: id.into(),
        phase: phase.into(),
        title: format!("Step {id}"),
        kind: kind.into(),
        confirm,
        point_of_no_return: ponr,
        rollback_only: false,
    }
}

fn header() -> Header {
    Header {
        ferry_version: "0.1.0".into(),
        runbook_name: "legacy-to-prod".into(),
        runbook_title: "Legacy → prod cutover".into(),
        runbook_path: "runbooks/legacy-to-prod.toml".into(),
        runbook_sha256: "5f0c".repeat(16),
        steps: Default::default(),
        operator: "alice".into(),
        host: "bastion-1".into(),
        uid: None,
        login: None,
        window_start: Some(t0()),
        window_secs: Some(7200),
        plan: vec![
            meta(
                "snapshot-ok",
                "precheck",
                "confirm",
                ConfirmMode::Operator,
                false,
            ),
            meta("freeze", "cutover", "sql", ConfirmMode::Operator, false),
            meta("copy", "cutover", "copy", ConfirmMode::None, false),
            meta("verify", "cutover", "verify", ConfirmMode::None, false),
            meta("promote", "cutover", "shell", ConfirmMode::TwoPerson, true),
        ],
        vars: Vec::new(),
    }
}

fn alice() -> Actor {
    Actor {
        operator: "alice".into(),
        host: "bastion-1".into(),
        ..Default::default()
    }
}

/// Appends entries at t0 + offset seconds.
struct J {
    w: Writer,
}

impl J {
    fn new(path: &Path) -> J {
        let _ = std::fs::remove_file(path);
        let mut w =
            Writer::create(path, Box::new(|s: &str| s.to_string())).expect("create journal");
        w.append(&Entry::Header(header()), t0()).expect("append");
        w.append(
            &Entry::Session {
                operator: "alice".into(),
                host: "bastion-1".into(),
                uid: None,
                login: None,
                resumed: false,
                pid: 4242,
                socket: None,
            },
            t0(),
        )
        .expect("append");
        J { w }
    }
    fn at(&mut self, secs: i64, e: Entry) -> &mut Self {
        self.w
            .append(&e, t0() + Duration::seconds(secs))
            .expect("append");
        self
    }
    fn ev(&mut self, secs: i64, e: Event) -> &mut Self {
        self.at(secs, Entry::Event(e))
    }
    fn run_step(&mut self, at: i64, len: i64, id: &str, confirm: bool, ok: bool) -> &mut Self {
        if confirm {
            self.ev(
                at,
                Event::Decided {
                    by: alice(),
                    decision: Decision::Confirm {
                        step: id.into(),
                        automatic: false,
                        typed: None,
                        evidence: vec![EvidenceItem {
                            label: "replica lag".into(),
                            value: "0.4s".into(),
                            ..Default::default()
                        }],
                    },
                },
            );
        }
        self.ev(
            at,
            Event::Started {
                step: id.into(),
                attempt: 1,
            },
        );
        let outcome = if ok {
            Outcome::Succeeded {
                summary: "exit 0".into(),
            }
        } else {
            Outcome::Failed {
                error: "exit status 2".into(),
            }
        };
        self.ev(
            at + len,
            Event::Finished {
                step: id.into(),
                attempt: 1,
                outcome,
            },
        )
    }
}

/// A copy result as the copy engine journals it (its own type, so the goldens
/// follow the real shape).
fn copy_result() -> serde_json::Value {
    let table = |name: &str, rows: u64, bytes: u64, ms: u64, chunks: u64| TableReport {
        table: name.into(),
        target: name.into(),
        rows,
        bytes,
        chunks,
        chunks_resumed: 0,
        duration_ms: ms,
        rows_per_sec: rows as f64 * 1000.0 / ms as f64,
        method: Method::IntRange,
        format: "copy binary".into(),
        clears: "range".into(),
    };
    let r = CopyReport {
        step: "copy".into(),
        source: "postgres".into(),
        target: "postgres".into(),
        tables: vec![
            table("public.users", 120_000, 15_728_640, 2_100, 3),
            table("public.messages", 2_400_000, 402_653_184, 31_000, 48),
        ],
        sequences: vec![SequenceReset {
            table: "public.users".into(),
            column: "id".into(),
            sequence: "public.users_id_seq".into(),
            value: Some(120_000),
            is_called: true,
            from: "source".into(),
        }],
        rows: 2_520_000,
        bytes: 418_381_824,
        chunks: 51,
        chunks_resumed: 0,
        duration_ms: 31_400,
        rows_per_sec: 80_254.8,
        workers: 2,
        replica_role: true,
        truncated: false,
        mapped: Vec::new(),
    };
    serde_json::to_value(r).expect("a copy report serialises")
}

/// A verify result as the verifier journals it.
fn verify_result(ok: bool) -> serde_json::Value {
    let users = TableResult {
        table: "public.users".into(),
        ok,
        schema: Some("equal".into()),
        counts: Some(
            if ok {
                "120,000 = 120,000"
            } else {
                "120,000 ≠ 119,999 (target -1)"
            }
            .into(),
        ),
        checksums: Some(
            if ok {
                "equal"
            } else {
                "2 rows differ: 1 missing, 1 changed"
            }
            .into(),
        ),
        sample: None,
        differences: if ok { 0 } else { 2 },
        summary: if ok { "equal" } else { "2 rows differ" }.into(),
    };
    let messages = TableResult {
        table: "public.messages".into(),
        ok: true,
        schema: Some("equal".into()),
        counts: Some("2,400,000 = 2,400,000".into()),
        checksums: Some("equal".into()),
        sample: None,
        differences: 0,
        summary: "equal".into(),
    };
    let differences: Vec<String> = if ok {
        vec![]
    } else {
        vec![
            "public.users id=42: changed email: 'a@x.io' on source, 'a@x.io ' on target".into(),
            "public.users id=77: missing on target".into(),
        ]
    };
    let r = VerifyReport {
        ok,
        summary: if ok {
            "no differences: 2 tables, 2,520,000 rows (schema, counts, checksums)".into()
        } else {
            "2 differences in 1 of 2 tables".into()
        },
        source: "postgres".into(),
        target: "postgres".into(),
        checks: vec!["schema".into(), "counts".into(), "checksums".into()],
        tables: vec![users, messages],
        differences,
        more_differences: 0,
        stopped_early: false,
        coverage: "checksums covered all 2,520,000 rows of 2 tables".into(),
        rows_compared: 2_520_000,
        elapsed_secs: 118.0,
        notes: vec![],
    };
    serde_json::to_value(r).expect("a verify report serialises")
}

fn build(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let path = std::env::temp_dir().join(format!(
        "ferry-report-golden-{}-{n}-{name}.jsonl",
        std::process::id()
    ));
    let mut j = J::new(&path);
    match name {
        "clean" => clean_run(&mut j),
        "failed" => failed_run(&mut j),
        "resumed" => resumed_run(&mut j),
        "verify-diffs" => verify_diffs_run(&mut j),
        "forecast" => forecast_run(&mut j),
        other => panic!("no fixture {other}"),
    }
    path
}

/// The clean run, with rehearsals: the forecast it was based on (copy's p90
/// is 800 s, the run's copy takes 900 s) and the forecast as its first step started.
fn forecast_run(j: &mut J) {
    let t = |median: f64, p90: f64| ferry_core::vocab::rehearsal::Timing {
        n: 5,
        median_secs: median,
        p90_secs: p90,
    };
    j.at(
        1,
        Entry::Forecast {
            journals: (1..=5)
                .map(|n| format!("runs/cutover/r{n}.jsonl"))
                .collect(),
            steps: [
                ("snapshot-ok", t(25.0, 40.0)),
                ("freeze", t(4.0, 6.0)),
                ("copy", t(600.0, 800.0)),
                ("verify", t(250.0, 320.0)),
            ]
            .into_iter()
            .map(|(id, t)| (id.to_string(), t))
            .collect(),
            rollbacks: Default::default(),
        },
    )
    .at(
        10,
        Entry::Projection {
            step: "snapshot-ok".into(),
            end_median: t0() + Duration::seconds(10 + 879),
            end_p90: t0() + Duration::seconds(10 + 1166),
            budget_secs: Some(2400.0),
        },
    );
    clean_run(j);
}

/// What alice saw when she proposed the promote: a fresh lag, and row counts
/// gone stale that she acknowledged confirming over.
fn promote_evidence() -> Vec<EvidenceItem> {
    vec![
        EvidenceItem {
            label: "replica lag".into(),
            value: "0.2s".into(),
            age_secs: Some(2),
            ..Default::default()
        },
        EvidenceItem {
            label: "row counts legacy → target".into(),
            value: "3 tables · 0 differ · stale: connection refused".into(),
            age_secs: Some(95),
            stale: true,
            acknowledged: true,
        },
    ]
}

/// A run that went through every step: confirmations, copy and verify results, the
/// typed promote proposed by alice and approved by bob, closed ok.
fn clean_run(j: &mut J) {
    j.run_step(10, 30, "snapshot-ok", true, true)
        .run_step(60, 5, "freeze", true, true)
        .run_step(65, 900, "copy", false, true)
        .at(
            965,
            Entry::Result {
                step: "copy".into(),
                data: copy_result(),
            },
        )
        .run_step(965, 300, "verify", false, true)
        .at(
            1265,
            Entry::Result {
                step: "verify".into(),
                data: verify_result(true),
            },
        )
        // the two-person promote: alice (uid 1001) proposes, bob (uid 1002) approves
        .ev(
            1290,
            Event::Decided {
                by: alice().with_uid(1001, Some("alice".into())),
                decision: Decision::Confirm {
                    step: "promote".into(),
                    automatic: false,
                    typed: Some("promote".into()),
                    evidence: promote_evidence(),
                },
            },
        )
        .ev(
            1300,
            Event::Decided {
                by: Actor::named("bob", "bastion-2").with_uid(1002, Some("bob".into())),
                decision: Decision::Approve {
                    step: "promote".into(),
                    evidence_sha256: ferry_core::vocab::evidence_sha256(&promote_evidence()),
                },
            },
        )
        .ev(
            1300,
            Event::Started {
                step: "promote".into(),
                attempt: 1,
            },
        )
        .ev(
            1420,
            Event::Finished {
                step: "promote".into(),
                attempt: 1,
                outcome: Outcome::Succeeded {
                    summary: "exit 0".into(),
                },
            },
        )
        .at(
            1420,
            Entry::Closed {
                status: RunStatus::Finished { ok: true },
            },
        );
}

/// A run whose copy failed with stderr output, a refused command noted, then aborted.
fn failed_run(j: &mut J) {
    j.run_step(10, 30, "snapshot-ok", true, true)
        // a rehearsal's `--yes` confirmed freeze over a stale lag: nobody acknowledged it
        .ev(
            60,
            Event::Decided {
                by: alice(),
                decision: Decision::Confirm {
                    step: "freeze".into(),
                    automatic: true,
                    typed: None,
                    evidence: vec![EvidenceItem {
                        label: "replica lag".into(),
                        value: "stale for 2m10s: connection refused".into(),
                        age_secs: Some(130),
                        stale: true,
                        acknowledged: false,
                    }],
                },
            },
        )
        .run_step(60, 5, "freeze", false, true);
    j.ev(
        65,
        Event::Started {
            step: "copy".into(),
            attempt: 1,
        },
    );
    for (i, l) in [
        "copying public.users",
        "copying public.messages",
        "ERROR: duplicate key value violates unique constraint \"messages_pkey\"",
    ]
    .iter()
    .enumerate()
    {
        j.at(
            70 + i as i64,
            Entry::Output(OutputLine {
                step: "copy".into(),
                stream: if i == 2 { Stream::Stderr } else { Stream::Info },
                line: l.to_string(),
            }),
        );
    }
    j.ev(
        80,
        Event::Finished {
            step: "copy".into(),
            attempt: 1,
            outcome: Outcome::Failed {
                error: "public.messages chunk 1..50000: duplicate key".into(),
            },
        },
    )
    .at(
        81,
        Entry::Note {
            step: Some("copy".into()),
            text: "refused: `promote` is pending, not awaiting confirmation".into(),
        },
    )
    .ev(
        90,
        Event::Decided {
            by: alice(),
            decision: Decision::Abort {
                reason: "no-go: copy failed".into(),
            },
        },
    )
    .at(
        90,
        Entry::Closed {
            status: RunStatus::Aborted,
        },
    );
}

/// A run whose process died mid-copy and a second operator resumed: the copy retried
/// and succeeded, verify skipped, with replica-lag samples.
fn resumed_run(j: &mut J) {
    j.run_step(10, 30, "snapshot-ok", true, true)
        .run_step(60, 5, "freeze", true, true);
    j.ev(
        65,
        Event::Started {
            step: "copy".into(),
            attempt: 1,
        },
    );
    // the process died here; a second operator resumed
    j.at(
        400,
        Entry::Session {
            operator: "bob".into(),
            host: "bastion-2".into(),
            uid: None,
            login: None,
            resumed: true,
            pid: 5151,
            socket: None,
        },
    )
    .ev(
        400,
        Event::Interrupted {
            steps: vec!["copy".into()],
        },
    )
    .ev(
        410,
        Event::Decided {
            by: Actor {
                operator: "bob".into(),
                host: "bastion-2".into(),
                ..Default::default()
            },
            decision: Decision::Retry {
                step: "copy".into(),
            },
        },
    )
    .ev(
        410,
        Event::Started {
            step: "copy".into(),
            attempt: 2,
        },
    )
    .ev(
        1000,
        Event::Finished {
            step: "copy".into(),
            attempt: 2,
            outcome: Outcome::Succeeded {
                summary: "2520000 rows".into(),
            },
        },
    )
    .ev(
        1000,
        Event::Decided {
            by: Actor {
                operator: "bob".into(),
                host: "bastion-2".into(),
                ..Default::default()
            },
            decision: Decision::Skip {
                step: "verify".into(),
                reason: "verified by DMS validation".into(),
            },
        },
    );
    for (i, v) in [0.5, 1.2, 4.8, 2.0, 0.3].iter().enumerate() {
        j.at(
            60 + 200 * i as i64,
            Entry::Sample {
                monitor: "replica".into(),
                series: "lag".into(),
                value: *v,
                unit: Some("s".into()),
                warn: Some(5.0),
                max: Some(30.0),
            },
        );
    }
}

/// A run whose verify failed and journaled its differences.
fn verify_diffs_run(j: &mut J) {
    j.run_step(10, 30, "snapshot-ok", true, true)
        .run_step(60, 5, "freeze", true, true)
        .run_step(65, 600, "copy", false, true)
        .run_step(665, 120, "verify", false, false)
        .at(
            785,
            Entry::Result {
                step: "verify".into(),
                data: verify_result(false),
            },
        );
}

fn ferry_report(journal: &Path, format: &str) -> (String, String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(root())
        .args(["report", &journal.display().to_string(), "--format", format])
        .output()
        .expect("run ferry report");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn check_golden(path: &Path, actual: &str) {
    if bless() {
        std::fs::write(path, actual).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(path)
        .unwrap_or_else(|_| panic!("missing golden {} (run with FERRY_BLESS=1)", path.display()));
    assert_eq!(want, actual, "golden {} differs", path.display());
}

const NAMES: [&str; 5] = ["clean", "failed", "resumed", "verify-diffs", "forecast"];

/// The checked-in fixture journal for `name` (rebuilt and compared first).
fn fixture(name: &str) -> PathBuf {
    let built = build(name);
    let fixture = root().join(format!("tests/fixtures/journals/{name}.jsonl"));
    let bytes = std::fs::read_to_string(&built).expect("read built journal");
    check_golden(&fixture, &bytes);
    let _ = std::fs::remove_file(built);
    fixture
}

#[test]
fn markdown_and_json_match_the_goldens() {
    for name in NAMES {
        let j = fixture(name);
        let rel = PathBuf::from(format!("tests/fixtures/journals/{name}.jsonl"));
        let (md, err, code) = ferry_report(&rel, "md");
        assert_eq!(code, 0, "{name}: {err}");
        check_golden(
            &root().join(format!("tests/fixtures/journals/{name}.md")),
            &md,
        );
        let (json, err, code) = ferry_report(&rel, "json");
        assert_eq!(code, 0, "{name}: {err}");
        check_golden(
            &root().join(format!("tests/fixtures/journals/{name}.json")),
            &json,
        );
        assert!(j.exists());
    }
}

#[test]
fn the_reports_say_what_happened() {
    let (md, _, _) = ferry_report(&fixture("clean"), "md");
    for needle in [
        "Journal integrity: verified",
        "**succeeded**",
        "| Operators | alice, bob |",
        "`promote` passed at 2026-11-22 02:23:40 UTC (confirmed by alice (uid 1001))",
        "`promote` proposed by alice@bastion-1 (uid 1001) at 2026-11-22 02:21:30 UTC",
        "`promote` approved by bob@bastion-2 (uid 1002) at 2026-11-22 02:21:40 UTC",
        "| alice (uid 1001), approved by bob (uid 1002) · over stale evidence (acknowledged): row counts legacy → target |",
        "`promote` proposed by alice@bastion-1 (uid 1001) at 2026-11-22 02:21:30 UTC · over stale evidence (acknowledged): row counts legacy → target",
        "row counts legacy → target: 3 tables · 0 differ · stale: connection refused (⚠ stale, acknowledged, 1m35s old)",
        "replica lag: 0.2s (2s old)",
        "replica lag: 0.4s",
        "| public.messages | 2,400,000 | 384.0 MiB | 31.0s | 77,419 | 48 | copy binary, integer key ranges |",
        "public.users.id: `public.users_id_seq` → 120000 (source)",
        "**PASSED**: no differences",
        "ended 1h 36m 20s before the window closed",
    ] {
        assert!(md.contains(needle), "clean report lacks `{needle}`:\n{md}");
    }
    // the HTML marks the same stale evidence, and the JSON carries it beside who confirmed
    let (html, _, _) = ferry_report(&fixture("clean"), "html");
    for needle in [
        "<span class=\"stale\"> · over stale evidence (acknowledged): row counts legacy → target</span>",
        "<li class=\"stale\">row counts legacy → target: 3 tables · 0 differ · stale: connection refused (⚠ stale, acknowledged, 1m35s old)</li>",
        "approved by bob (uid 1002) · over stale evidence (acknowledged): row counts legacy → target",
    ] {
        assert!(html.contains(needle), "clean html lacks `{needle}`:\n{html}");
    }
    let (json, _, _) = ferry_report(&fixture("clean"), "json");
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let promote = v["steps"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == "promote"))
        .expect("promote in the report");
    assert_eq!(promote["approved_by"], "bob (uid 1002)");
    assert_eq!(
        promote["stale_evidence"],
        serde_json::json!(["row counts legacy → target"])
    );
    assert_eq!(promote["stale_acknowledged"], true);
    let (md, _, _) = ferry_report(&fixture("failed"), "md");
    for needle in [
        "**aborted**",
        "duplicate key value violates unique constraint",
        "run aborted by alice: no-go: copy failed",
        "| automatic (--yes) · over stale evidence (not acknowledged): replica lag |",
        "replica lag: stale for 2m10s: connection refused (⚠ stale, not acknowledged, 2m10s old)",
        "refused: `promote`",
    ] {
        assert!(md.contains(needle), "failed report lacks `{needle}`:\n{md}");
    }
    let (md, _, _) = ferry_report(&fixture("resumed"), "md");
    for needle in [
        "resumed by bob",
        "2 attempts",
        "skipped at 02:16:40: verified by DMS validation (bob)",
        "| Duration | 16m 40s (5m 35s of it with no ferry running, between a stop and its resume) |",
        "resumed by bob; the previous process stopped after 2026-11-22 02:01:05 UTC while `copy` was running; nothing ran for 5m 35s",
        "| Operators | alice, bob |",
        "| replica | lag | 5 | 0.30 | 4.80 | 0.30 | 5.00 | 30.00 |",
    ] {
        assert!(
            md.contains(needle),
            "resumed report lacks `{needle}`:\n{md}"
        );
    }
    let (md, _, _) = ferry_report(&fixture("verify-diffs"), "md");
    for needle in [
        "## Verification results",
        "id=42: changed email",
        "id=77: missing on target",
        "2 rows differ",
        "**FAILED**: 2 differences in 1 of 2 tables",
        "| public.users | 2 differences |",
    ] {
        assert!(md.contains(needle), "verify report lacks `{needle}`:\n{md}");
    }
}

#[test]
fn json_reports_validate_against_the_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("assets/report.schema.json")).expect("schema"),
    )
    .expect("schema json");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    for name in NAMES {
        let (json, _, _) = ferry_report(&fixture(name), "json");
        let v: serde_json::Value = serde_json::from_str(&json).expect("report is JSON");
        let errors: Vec<String> = validator
            .iter_errors(&v)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
    // the schema is strict: an unknown field is rejected
    let (json, _, _) = ferry_report(&fixture("clean"), "json");
    let mut v: serde_json::Value = serde_json::from_str(&json).expect("json");
    v["surprise"] = serde_json::json!(1);
    assert!(!validator.is_valid(&v));
}

#[test]
fn a_tampered_journal_is_reported_prominently_in_every_format() {
    let src = fixture("clean");
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("tampered.jsonl");
    let text = std::fs::read_to_string(src).expect("read");
    let edited: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 5 {
                l.replace("0.4s", "0.1s")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&p, edited.join("\n") + "\n").expect("write");
    let (md, err, code) = ferry_report(&p, "md");
    assert_eq!(code, 0);
    assert!(err.contains("hash chain is broken at line 6"), "{err}");
    assert!(md.contains("JOURNAL CHAIN BROKEN AT LINE 6"), "{md}");
    let (html, _, _) = ferry_report(&p, "html");
    assert!(html.contains("id=\"chain-broken\""));
    let (json, _, _) = ferry_report(&p, "json");
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["journal"]["chain_ok"], false);
    assert_eq!(v["journal"]["broken_line"], 6);
}

#[test]
fn html_is_one_self_contained_file() {
    let (html, _, code) = ferry_report(&fixture("resumed"), "html");
    assert_eq!(code, 0);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "no scripts");
    assert!(!html.contains("<link"), "no external stylesheets");
    assert!(
        !html.contains("src=\"http") && !html.contains("url(http") && !html.contains("@import"),
        "nothing from the network"
    );
    assert!(
        html.contains("<svg") && html.contains("polyline"),
        "a timeline and a lag chart"
    );
    assert!(
        html.contains("class=\"warnline\"") && html.contains("class=\"maxline\""),
        "thresholds marked"
    );
    assert!(
        html.contains(">warn 5 s</text>") && html.contains(">max 30 s</text>"),
        "thresholds labelled with their unit"
    );
    assert!(
        html.contains("overflow-wrap:anywhere"),
        "a long output line wraps instead of running off a printed page"
    );
}

#[test]
fn stats_over_rehearsals() {
    let journals: Vec<PathBuf> = ["clean", "verify-diffs", "resumed"]
        .iter()
        .map(|n| fixture(n))
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("stats")
        .args(&journals)
        .output()
        .expect("run ferry stats");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("rehearsal timing over 3 journal(s) of legacy-to-prod"),
        "{text}"
    );
    // snapshot-ok took 30s in all three runs
    assert!(
        text.lines()
            .any(|l| l.starts_with("snapshot-ok") && l.contains("  3 ") && l.contains("30.0s")),
        "{text}"
    );
    // copy: 15m, 10m and, in the resumed run, 5m 35s less than its span
    assert!(
        text.lines().any(|l| l.starts_with("copy ")
            && l.contains("  3 ")
            && l.contains("10m 00s")
            && l.contains("15m 00s")),
        "{text}"
    );
    // only the clean run finished: the others are no total to plan with
    assert!(
        text.lines()
            .any(|l| l.starts_with("TOTAL") && l.contains("  1 ") && l.contains("23m 40s")),
        "{text}"
    );
    assert!(
        text.contains("left out: 1 halted (unfinished), 1 unfinished"),
        "{text}"
    );
    assert!(text.contains("window 2h 00m 00s"), "{text}");
    assert!(text.contains("varies most: copy (sd 2m 53s"), "{text}");
    assert!(text.contains("95% next run: mean ± t(n-1)"), "{text}");
}

#[test]
fn no_secret_reaches_any_report_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = format!("s3cr3t-{}-pw", std::process::id());
    std::fs::write(
        dir.path().join("rb.toml"),
        r#"
[runbook]
name = "secrets"
format = 1
[[phase]]
id = "p"
  [[phase.step]]
  id = "leak"
  kind = "shell"
  confirm = "none"
  run = "echo the password is $DBPW; echo $DBPW >&2; exit 1"
  env = { DBPW = "${env:APP_DB_PASSWORD}" }
"#,
    )
    .expect("write runbook");
    let run = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(dir.path())
        .args(["run", "rb.toml", "--headless", "--yes"])
        .env("APP_DB_PASSWORD", &secret)
        .output()
        .expect("ferry run");
    assert_eq!(run.status.code(), Some(1), "the step fails on purpose");
    let journal = std::fs::read_dir(dir.path().join("runs/secrets"))
        .expect("runs dir")
        .next()
        .expect("a journal")
        .expect("entry")
        .path();
    for format in ["md", "html", "json"] {
        let (text, _, code) = ferry_report(&journal, format);
        assert_eq!(code, 0);
        assert!(
            text.contains("the password is ••••••"),
            "{format}: the output line is there, masked:\n{text}"
        );
        assert!(!text.contains(&secret), "{format} leaks the secret");
    }
}
