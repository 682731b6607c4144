//! Evidence freshness end to end, on real servers: the row-count monitor of a
//! runbook counts a table on a PostgreSQL cluster of the test's own (the source,
//! which the test stops to make the monitor fail) and on the rig's target.
//!
//! In the console: a `ferry run --headless --wait` run in one tmux terminal, and
//! bob's `ferry attach --operate` in another. The rows change while bob's confirm
//! dialog is open: `y` is refused, the dialog shows the new counts, and the
//! second `y` journals them. Then the source stops: the dialog marks the row
//! counts stale, `y` without the acknowledgement is refused, `Tab` `y` confirms,
//! and the journal, the headless line and the report all say it was over stale
//! evidence, acknowledged.
//!
//! Headless: `--yes` over stale evidence says so in its confirmation line and
//! journals the stale items, not acknowledged.

use crate::support;
use support::headless::{self as hl, Dir};
use support::pg::{self, rig_var, OwnCluster, TestDb};
use support::tmux::Tmux;

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("a runtime: {e}"))
}

/// `public.items` with `n` rows on the source cluster and on a fresh database of
/// the rig's target. Never analysed and never vacuumed, so the monitor counts it
/// exactly at every look (an estimate would not move with the inserts).
fn world(n: u32) -> (OwnCluster, TestDb) {
    let src = OwnCluster::start();
    let rt = rt();
    let tgt = rt.block_on(TestDb::new("FERRY_TEST_PG_TARGET", "evidence"));
    for url in [&src.url, &tgt.url] {
        rt.block_on(pg::exec(
            url,
            "create table public.items (id int) with (autovacuum_enabled = false)",
        ));
        rt.block_on(pg::exec(
            url,
            &format!("insert into public.items select generate_series(1, {n})"),
        ));
    }
    (src, tgt)
}

/// The connections and the row-count monitor (every second) of both runbooks;
/// the target's URL (it has a password) comes from `EVIDENCE_TGT_URL`.
fn monitored(src: &OwnCluster) -> String {
    format!(
        r#"
[connections.src]
url = "{}"

[connections.tgt]
url = "${{env:EVIDENCE_TGT_URL}}"

[monitor.rowcounts]
source = "src"
target = "tgt"
tables = ["public.*"]
every = "1s"
"#,
        src.url
    )
}

/// Journal entries of `kind`/`type` about `step`.
fn decided<'a>(e: &'a [serde_json::Value], ty: &str, step: &str) -> Vec<&'a serde_json::Value> {
    e.iter()
        .map(|v| &v["entry"])
        .filter(|v| v["type"] == ty && v["step"] == step)
        .collect()
}

fn journal(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Whether `who`'s shell printed its `WHO-EXIT=` line (not the typed command's echo of it).
fn exited(screen: &str, who: &str) -> bool {
    let mark = format!("{who}-EXIT=");
    screen.lines().any(|l| l.starts_with(&mark))
}

/// The value of the evidence item labelled `label`.
fn item<'a>(evidence: &'a serde_json::Value, label: &str) -> &'a serde_json::Value {
    evidence
        .as_array()
        .and_then(|a| a.iter().find(|i| i["label"] == label))
        .unwrap_or_else(|| panic!("no evidence item `{label}` in {evidence}"))
}

#[test]
fn changed_and_stale_evidence_in_an_attached_console() {
    let (src, tgt) = world(3);
    let t = Tmux::start("evidence", &[("run", 220, 50), ("bob", 130, 42)]);
    t.write(
        "rb.toml",
        &format!(
            r#"
[runbook]
name = "evidence-e2e"
title = "Evidence that changes and goes stale"
format = 1
{}
[[phase]]
id = "main"
title = "Main"

  [[phase.step]]
  id = "first-look"
  kind = "confirm"
  title = "The counts agree"

  [[phase.step]]
  id = "second-look"
  kind = "confirm"
  title = "Still agreed"
"#,
            monitored(&src)
        ),
    );
    t.line(
        "run",
        &format!(
            "EVIDENCE_TGT_URL='{}' {FERRY} run rb.toml --headless --wait --journal runs/j.jsonl; echo RUN-EXIT=$?",
            tgt.url
        ),
    );
    t.wait_for("run", "the run waiting for first-look", |s| {
        s.contains("? first-look: awaits confirmation")
    });
    t.line(
        "bob",
        &format!(
            "{FERRY} attach --socket runs/j.jsonl.sock --operate --operator bob; echo BOB-EXIT=$?"
        ),
    );

    // the dialog opens on equal counts
    t.wait_for("bob", "bob's console", |s| s.contains("awaiting you"));
    t.keys("bob", &["c"]);
    t.wait_for("bob", "the dialog on equal counts", |s| {
        s.contains("Confirm `first-look` as bob") && s.contains("1 tables · 0 differ")
    });

    // two rows arrive on the source while it is open: the dialog shows them, `y` is refused
    rt().block_on(pg::exec(
        &src.url,
        "insert into public.items values (4), (5)",
    ));
    t.wait_for("bob", "the dialog's new counts", |s| {
        s.contains("rows public.items: source 5 · target 3 · Δ 2")
    });
    t.keys("bob", &["y"]);
    let s = t.wait_for("bob", "the refusal of the changed evidence", |s| {
        s.contains("not confirmed: the evidence changed since the dialog opened")
    });
    assert!(
        s.contains("Confirm `first-look` as bob")
            && s.contains("rows public.items: source 5 · target 3 · Δ 2"),
        "the dialog stays open with the new values:\n{s}"
    );
    let j = t.path().join("runs/j.jsonl");
    assert!(
        decided(&journal(&j), "confirm", "first-look").is_empty(),
        "nothing was confirmed on the changed evidence"
    );
    // looked at again, the same `y` confirms what is now on screen
    t.keys("bob", &["y"]);
    t.wait_for("run", "the confirmation on the run's terminal", |s| {
        s.contains("✔ first-look: confirmed by bob@")
    });
    let e = journal(&j);
    let first = decided(&e, "confirm", "first-look");
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["by"]["operator"], "bob");
    let rows = item(&first[0]["evidence"], "rows public.items");
    assert_eq!(rows["value"], "source 5 · target 3 · Δ 2", "{rows}");
    assert!(
        rows["age_secs"].is_u64(),
        "every item carries its age: {rows}"
    );
    assert!(rows.get("stale").is_none(), "fresh: {rows}");

    // the source stops: the row counts go stale on bob's console
    t.wait_for("run", "the run waiting for second-look", |s| {
        s.contains("? second-look: awaits confirmation")
    });
    src.stop_fast();
    t.wait_for_secs("run", "the stale row counts", 30, |s| {
        s.contains("row counts are stale")
    });
    t.keys("bob", &["c"]);
    let s = t.wait_for("bob", "the dialog marking stale items", |s| {
        s.contains("Confirm `second-look` as bob")
            && s.contains("⚠ STALE row counts src → tgt")
            && s.contains("[ ] 2 stale item(s): Tab acknowledges")
    });
    assert!(s.contains("⚠ STALE rows public.items"), "{s}");
    t.keys("bob", &["y"]);
    t.wait_for("bob", "the refusal without acknowledgement", |s| {
        s.contains("not confirmed: some evidence is stale; Tab acknowledges it")
    });
    assert!(decided(&journal(&j), "confirm", "second-look").is_empty());
    t.keys("bob", &["Tab"]);
    t.wait_for("bob", "the acknowledgement", |s| {
        s.contains("[x] 2 stale item(s) acknowledged")
    });
    t.keys("bob", &["y"]);
    let s = t.wait_for("run", "the run's end", |s| exited(s, "RUN"));
    assert!(
        s.contains("✔ second-look: confirmed by bob@")
            && s.contains(
                "— over stale evidence (acknowledged): row counts src → tgt, rows public.items"
            ),
        "{s}"
    );
    assert!(s.contains("\nRUN-EXIT=0"), "{s}");
    t.wait_for("bob", "bob told the run ended", |s| {
        s.contains("run finished: every step succeeded")
    });
    t.keys("bob", &["q"]);
    let s = t.wait_for("bob", "bob's shell or the leave prompt", |s| {
        exited(s, "BOB") || s.contains("leaving this one stops nothing")
    });
    if !exited(&s, "BOB") {
        t.keys("bob", &["y"]);
    }
    let s = t.wait_for("bob", "bob's shell", |s| exited(s, "BOB"));
    assert!(s.contains("\nBOB-EXIT=0"), "{s}");

    // journaled: each stale item marked and acknowledged, with its age
    let e = journal(&j);
    let second = decided(&e, "confirm", "second-look");
    assert_eq!(second.len(), 1, "{second:?}");
    let stale: Vec<&serde_json::Value> = second[0]["evidence"]
        .as_array()
        .map(|a| a.iter().filter(|i| i["stale"] == true).collect())
        .unwrap_or_default();
    assert_eq!(stale.len(), 2, "{}", second[0]);
    for i in &stale {
        assert_eq!(i["acknowledged"], true, "{i}");
        assert!(i["age_secs"].is_u64(), "{i}");
    }

    // and the report says so beside who confirmed
    let out = std::process::Command::new(FERRY)
        .arg("report")
        .arg(&j)
        .args(["--format", "md"])
        .output()
        .unwrap_or_else(|e| panic!("ferry report: {e}"));
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains("over stale evidence (acknowledged): row counts src → tgt, rows public.items")
            && md.contains("(⚠ stale, acknowledged"),
        "{md}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn yes_over_stale_evidence_says_so_and_journals_it() {
    let (src, tgt) = world(3);
    let port = src
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .unwrap_or_else(|| panic!("no port in {}", src.url))
        .to_string();
    let isready = format!("{}/pg_isready", rig_var("FERRY_TEST_PG_BIN"));
    let mut d = Dir::new();
    d.runbook(
        "evidence-yes",
        &format!(
            r#"{}
[[phase]]
id = "main"

  [[phase.step]]
  id = "hold"
  kind = "shell"
  confirm = "none"
  # until the source is gone, then long enough for the monitor to give up on it (5s)
  run = "while {isready} -q -h 127.0.0.1 -p {port}; do sleep 0.2; done; sleep 9"

  [[phase.step]]
  id = "go"
  kind = "confirm"
  title = "Go on"
"#,
            monitored(&src)
        ),
    );
    d.env("EVIDENCE_TGT_URL", &tgt.url);
    let mut running = d.start(&["--yes"]);
    let j = d.file("runs/evidence-yes");
    // the journal's name is ferry's: wait for the one journal, then for `hold`
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let path = loop {
        if let Some(p) = d.journals().into_iter().next() {
            break p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no journal under {}",
            j.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // both sides connected, then a second for the monitor's first counts (it counts
    // every second, three rows each side), then the source goes away
    hl::wait_for(&path, &mut running, "both connections", |e| {
        e.iter().filter(|r| hl::kind(r) == "connection").count() >= 2
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    src.stop_fast();
    let out = running.finish();
    out.assert_code(0, "the rehearsal");
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("✔ go: confirmed automatically (--yes)"))
        .unwrap_or_else(|| panic!("no confirmation line:\n{}", out.show()));
    assert!(
        line.ends_with("— over stale evidence: row counts src → tgt"),
        "{line}\n{}",
        out.show()
    );
    let e = hl::entries(&path);
    let go = decided(&e, "confirm", "go");
    assert_eq!(go.len(), 1, "{}", hl::dump(&e));
    assert_eq!(go[0]["automatic"], true);
    let rc = item(&go[0]["evidence"], "row counts src → tgt");
    assert_eq!(rc["stale"], true, "{rc}");
    assert!(
        rc.get("acknowledged").is_none(),
        "nobody acknowledged it: {rc}"
    );
    assert!(rc["age_secs"].is_u64(), "{rc}");
    assert!(
        rc["value"]
            .as_str()
            .is_some_and(|v| v.starts_with("1 tables · 0 differ") && v.contains("stale:")),
        "the last counts, and why they are stale: {rc}"
    );
}
