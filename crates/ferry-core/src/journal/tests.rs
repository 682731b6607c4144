//! The journal's chain catches edits, tolerates a torn last line, and never
//! writes a registered secret.

use super::*;
use crate::vocab::{Actor, Decision, Event, Outcome};

fn header() -> Entry {
    Entry::Header(Header {
        ferry_version: "test".into(),
        runbook_name: "rb".into(),
        runbook_title: "RB".into(),
        runbook_path: "rb.toml".into(),
        runbook_sha256: "x".into(),
        steps: BTreeMap::new(),
        operator: "alice".into(),
        host: "bastion".into(),
        uid: None,
        login: None,
        window_start: None,
        window_secs: None,
        plan: Vec::new(),
        vars: Vec::new(),
    })
}

fn write_sample(path: &Path) {
    let mut w = Writer::create(path, Box::new(|s: &str| s.replace("hunter2", "••••••"))).unwrap();
    let now = Utc::now();
    w.append(&header(), now).unwrap();
    w.append(
        &Entry::Event(Event::Decided {
            by: Actor {
                operator: "alice".into(),
                host: "h".into(),
                ..Default::default()
            },
            decision: Decision::Confirm {
                step: "a".into(),
                automatic: false,
                typed: None,
                evidence: vec![],
            },
        }),
        now,
    )
    .unwrap();
    w.append(
        &Entry::Note {
            step: Some("a".into()),
            text: "password is hunter2".into(),
        },
        now,
    )
    .unwrap();
    w.append(
        &Entry::Event(Event::Finished {
            step: "a".into(),
            attempt: 1,
            outcome: Outcome::Succeeded {
                summary: "ok".into(),
            },
        }),
        now,
    )
    .unwrap();
}

#[test]
fn a_written_journal_verifies_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("runs/rb/j.jsonl");
    write_sample(&p);
    let r = read_journal(&p).unwrap();
    assert_eq!(r.records.len(), 4);
    assert_eq!(r.records[0].prev, GENESIS);
    assert_eq!(r.records[3].prev, r.records[2].hash);
    assert!(r.torn.is_none());
    assert!(!r.closed());
    assert_eq!(r.header().map(|h| h.operator.as_str()), Some("alice"));
}

#[test]
fn secrets_are_redacted_before_hashing_and_writing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j.jsonl");
    write_sample(&p);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(!text.contains("hunter2"));
    assert!(text.contains("password is ••••••"));
    read_journal(&p).expect("a redacted journal still verifies");
}

fn rewrite_line(p: &Path, n: usize, f: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(p).unwrap();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| if i == n { f(l) } else { l.to_string() })
        .collect();
    std::fs::write(p, lines.join("\n") + "\n").unwrap();
}

#[test]
fn an_edited_line_is_refused_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j.jsonl");
    write_sample(&p);
    rewrite_line(&p, 1, |l| l.replace("alice", "mallory"));
    match read_journal(&p) {
        Err(JournalError::Broken { line, problem, .. }) => {
            assert_eq!(line, 2);
            assert!(problem.contains("hash does not match"), "{problem}");
        }
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[test]
fn a_removed_line_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j.jsonl");
    write_sample(&p);
    let text = std::fs::read_to_string(&p).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&p, kept.join("\n") + "\n").unwrap();
    match read_journal(&p) {
        Err(JournalError::Broken { line, problem, .. }) => {
            assert_eq!(line, 2);
            assert!(problem.contains("chain"), "{problem}");
        }
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[test]
fn a_line_with_a_recomputed_hash_still_breaks_the_chain_after_it() {
    // an attacker who recomputes the edited line's own hash is caught by the next line
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j.jsonl");
    write_sample(&p);
    rewrite_line(&p, 1, |l| {
        let at = l.rfind(",\"hash\":\"").unwrap();
        let body = format!("{}}}", &l[..at]).replace("alice", "mallory");
        let h = sha256_hex(body.as_bytes());
        format!("{},\"hash\":\"{h}\"}}", &body[..body.len() - 1])
    });
    match read_journal(&p) {
        Err(JournalError::Broken { line, .. }) => assert_eq!(line, 3),
        other => panic!("expected a broken chain at line 3, got {other:?}"),
    }
}

#[test]
fn a_torn_last_line_is_reported_dropped_and_appending_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j.jsonl");
    write_sample(&p);
    let mut f = OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(b"{\"seq\":4,\"ts\":\"2026-11-21T00:00:00Z\",\"entry\":{\"kind\":\"no")
        .unwrap();
    drop(f);
    let r = read_journal(&p).unwrap();
    assert_eq!(r.records.len(), 4);
    assert_eq!(r.torn.as_ref().map(|t| t.0), Some(5));
    let mut w = Writer::resume(&p, &r, Box::new(|s: &str| s.to_string())).unwrap();
    w.append(
        &Entry::Closed {
            status: crate::vocab::RunStatus::Finished { ok: true },
        },
        Utc::now(),
    )
    .unwrap();
    let r2 = read_journal(&p).unwrap();
    assert_eq!(r2.records.len(), 5);
    assert!(r2.torn.is_none());
    assert!(r2.closed());
}

#[test]
fn an_empty_file_has_no_header() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j.jsonl");
    std::fs::write(&p, "").unwrap();
    assert!(matches!(
        read_journal(&p),
        Err(JournalError::NoHeader { .. })
    ));
}

#[test]
fn newest_unfinished_skips_closed_runs() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("rb/20261101T000000Z.jsonl");
    let b = dir.path().join("rb/20261102T000000Z.jsonl");
    write_sample(&a);
    write_sample(&b);
    let r = read_journal(&b).unwrap();
    let mut w = Writer::resume(&b, &r, Box::new(|s: &str| s.to_string())).unwrap();
    w.append(
        &Entry::Closed {
            status: crate::vocab::RunStatus::Aborted,
        },
        Utc::now(),
    )
    .unwrap();
    assert_eq!(newest_unfinished(dir.path(), "rb"), Some(a));
}

#[test]
fn same_second_journals_get_suffixes_and_the_newest_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let a = default_path(dir.path(), "rb", now);
    write_sample(&a);
    let b = default_path(dir.path(), "rb", now);
    assert_ne!(a, b);
    assert!(b.to_string_lossy().ends_with("-2.jsonl"), "{}", b.display());
    write_sample(&b);
    let c = default_path(dir.path(), "rb", now);
    assert!(c.to_string_lossy().ends_with("-3.jsonl"));
    assert_eq!(newest_unfinished(dir.path(), "rb"), Some(b));
}

#[test]
fn an_edited_last_line_is_refused_not_taken_for_a_torn_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j.jsonl");
    write_sample(&p);
    // a complete line (its newline is there) that no longer parses was edited
    rewrite_line(&p, 3, |l| l.replacen("\"seq\":", "\"seq\"", 1));
    match read_journal(&p) {
        Err(JournalError::Broken { line, .. }) => assert_eq!(line, 4),
        other => panic!("expected line 4 to be refused, got {other:?}"),
    }
    // NUL bytes where the file grew before its data reached the disk: torn
    write_sample(&dir.path().join("k.jsonl"));
    let k = dir.path().join("k.jsonl");
    let mut f = OpenOptions::new().append(true).open(&k).unwrap();
    f.write_all(&[0u8; 200]).unwrap();
    f.write_all(b"\n").unwrap();
    drop(f);
    let r = read_journal(&k).unwrap();
    assert_eq!(r.records.len(), 4);
    assert_eq!(r.torn.as_ref().map(|t| t.0), Some(5));
}

#[test]
fn a_secret_that_is_also_json_syntax_leaves_the_journal_readable() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j.jsonl");
    // values an env var named *KEY* or *TOKEN* may well hold
    let secrets = ["true", "event", "2026", "0000", "a\"b\\c"];
    let mut w = Writer::create(
        &p,
        Box::new(move |s: &str| {
            secrets
                .iter()
                .fold(s.to_string(), |t, x| t.replace(x, "••••••"))
        }),
    )
    .unwrap();
    let now = Utc::now();
    w.append(&header(), now).unwrap();
    w.append(
        &Entry::Event(Event::Decided {
            by: Actor {
                operator: "alice".into(),
                host: "h".into(),
                ..Default::default()
            },
            decision: Decision::Confirm {
                step: "a".into(),
                automatic: true,
                typed: None,
                evidence: vec![],
            },
        }),
        now,
    )
    .unwrap();
    w.append(
        &Entry::Note {
            step: None,
            text: "true event in 2026, quoted a\"b\\c".into(),
        },
        now,
    )
    .unwrap();
    let r = read_journal(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.records.len(), 3);
    assert!(matches!(
        &r.records[1].entry,
        Entry::Event(Event::Decided {
            decision: Decision::Confirm {
                automatic: true,
                ..
            },
            ..
        })
    ));
    match &r.records[2].entry {
        Entry::Note { text, .. } => assert_eq!(text, "•••••• •••••• in ••••••, quoted ••••••"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_journal_being_written_cannot_be_resumed_by_a_second_writer() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j.jsonl");
    write_sample(&p);
    let r = read_journal(&p).unwrap();
    let live = Writer::resume(&p, &r, Box::new(|s: &str| s.to_string())).unwrap();
    let second = Writer::resume(&p, &r, Box::new(|s: &str| s.to_string()));
    match second {
        Err(e) => assert!(e.to_string().contains("another ferry process"), "{e}"),
        Ok(_) => panic!("a second writer got the journal"),
    }
    // the lock goes with its writer (and with a killed process)
    drop(live);
    assert!(Writer::resume(&p, &r, Box::new(|s: &str| s.to_string())).is_ok());
}

#[test]
fn a_journal_that_grew_after_it_was_read_is_not_cut_back() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j.jsonl");
    write_sample(&p);
    let stale = read_journal(&p).unwrap();
    let mut w = Writer::resume(&p, &stale, Box::new(|s: &str| s.to_string())).unwrap();
    w.append(
        &Entry::Note {
            step: None,
            text: "written after the other reader looked".into(),
        },
        Utc::now(),
    )
    .unwrap();
    drop(w);
    assert!(Writer::resume(&p, &stale, Box::new(|s: &str| s.to_string())).is_err());
    assert_eq!(
        read_journal(&p).unwrap().records.len(),
        5,
        "nothing was cut"
    );
}
