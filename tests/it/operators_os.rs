//! The two-person rule and `[operators]` between real OS users, created by the
//! test (it runs as root: `groupadd`, `useradd`, removed again by a guard) and
//! switched to with `runuser`. alice's `ferry run` console (her uid) proposes a
//! two-person step; a user outside the group cannot even connect; alice's own
//! uid, claiming to be bob in its hello, is refused as the same person; carol, a
//! member of the group not listed in `operate`, sees the pending proposal and
//! that she observes, is offered no key, and an approval sent by hand from her
//! uid is refused; bob's `ferry attach --operate` approves and the step runs. The
//! journal names both uids. Every terminal is a real one of a tmux server.

use crate::support;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::tmux::Tmux;

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

#[track_caller]
fn must(cmd: &str, args: &[&str]) {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The users, the group and the folder of one test; all removed on drop.
struct World {
    group: String,
    users: Vec<String>,
    dir: PathBuf,
}

impl World {
    /// Group `fg<n>`; users `fa<n>` (alice), `fb<n>` (bob), `fc<n>` (carol) in it,
    /// `fd<n>` (dave) outside it; a folder everyone can enter holding a copy of
    /// the ferry binary, a state folder per user and `runs/` owned by alice.
    fn new(tag: &str) -> World {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "these tests create OS users: run them as root (scripts/test in CI does)"
        );
        let n = format!("{}{tag}", std::process::id() % 100_000);
        let group = format!("fg{n}");
        let mut w = World {
            group: group.clone(),
            users: Vec::new(),
            dir: PathBuf::from(format!("/tmp/ferry-os-{n}")),
        };
        must("groupadd", &[&group]);
        for (p, member) in [("fa", true), ("fb", true), ("fc", true), ("fd", false)] {
            let u = format!("{p}{n}");
            let mut args = vec!["-M", "-d", "/nonexistent", "-s", "/bin/sh"];
            if member {
                args.extend(["-G", &group]);
            }
            args.push(&u);
            must("useradd", &args);
            w.users.push(u);
        }
        let _ = std::fs::remove_dir_all(&w.dir);
        std::fs::create_dir_all(&w.dir).unwrap_or_else(|e| panic!("{e}"));
        chmod(&w.dir, 0o755);
        // the test's build folder may be closed to other users: a copy they can run
        std::fs::copy(FERRY, w.ferry()).unwrap_or_else(|e| panic!("copy ferry: {e}"));
        chmod(&w.ferry(), 0o755);
        for u in &w.users {
            let state = w.dir.join(format!("state-{u}"));
            std::fs::create_dir(&state).unwrap_or_else(|e| panic!("{e}"));
            must("chown", &[u, &state.display().to_string()]);
        }
        // alice's runs: hers, in the group, writable by her only
        let runs = w.dir.join("runs");
        std::fs::create_dir(&runs).unwrap_or_else(|e| panic!("{e}"));
        must(
            "chown",
            &[
                &format!("{}:{group}", w.alice()),
                &runs.display().to_string(),
            ],
        );
        chmod(&runs, 0o755);
        w
    }

    fn alice(&self) -> &str {
        &self.users[0]
    }
    fn bob(&self) -> &str {
        &self.users[1]
    }
    fn carol(&self) -> &str {
        &self.users[2]
    }
    fn dave(&self) -> &str {
        &self.users[3]
    }

    fn ferry(&self) -> PathBuf {
        self.dir.join("ferry")
    }

    fn journal(&self) -> PathBuf {
        self.dir.join("runs/j.jsonl")
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("runs/j.jsonl.sock")
    }

    /// `ferry ARGS` as `user`, with its own state folder, as a shell line.
    fn as_user(&self, user: &str, args: &str) -> String {
        format!(
            "cd {} && runuser -u {user} -- env XDG_STATE_HOME={}/state-{user} {} {args}",
            self.dir.display(),
            self.dir.display(),
            self.ferry().display()
        )
    }

    fn uid(&self, user: &str) -> u64 {
        let out = run("id", &["-u", user]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("id -u {user}: {e}"))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for u in &self.users {
            let _ = run("pkill", &["-KILL", "-u", u]);
            let _ = run("userdel", &[u]);
        }
        let _ = run("groupdel", &[&self.group]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

fn runbook(group: &str, alice: &str, bob: &str) -> String {
    format!(
        r#"
[runbook]
name = "two-people"
title = "Two people, two uids"
format = 1

[operators]
group = "{group}"
operate = ["{alice}", "{bob}"]

[[phase]]
id = "main"
title = "Main"

  [[phase.step]]
  id = "switch"
  kind = "shell"
  title = "Point the app at the new database"
  run = "echo switched-by-two"
  confirm = "two-person"
"#
    )
}

/// A client speaking the attach protocol by hand, as `user`: it says hello as
/// `name`, waits for the proposal of `switch`, approves its hash and prints
/// the refusal it gets back (`REFUSED <kind>`).
const RAW_APPROVER: &str = r#"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.write(json.dumps({"type": "hello", "protocol": 3, "ferry_version": "raw",
                    "operator": sys.argv[2], "operate": True}) + "\n")
f.flush()
print(json.loads(f.readline())["type"], flush=True)
sha = None
while sha is None:
    m = json.loads(f.readline())
    if m["type"] == "snapshot":
        for st in m["snapshot"]["steps"]:
            if st["id"] == "switch" and st.get("proposal"):
                sha = st["proposal"]["evidence_sha256"]
f.write(json.dumps({"type": "decide", "decision": {"decision": "approve", "step": "switch",
                                                    "evidence_sha256": sha}}) + "\n")
f.flush()
while True:
    m = json.loads(f.readline())
    if m["type"] == "notice" and m["entry"].get("kind") == "refused":
        print("REFUSED", m["entry"]["refusal"]["refusal"], flush=True)
        break
"#;

/// The row of the runbook pane showing `step`.
fn row(screen: &str, step: &str) -> String {
    screen
        .lines()
        .map(|l| l.chars().take(30).collect::<String>())
        .find(|l| l.starts_with('┃') && l.contains(&format!(" {step} ")))
        .unwrap_or_default()
}

fn entries(journal: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(journal)
        .unwrap_or_else(|e| panic!("{}: {e}", journal.display()))
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["entry"].clone())
        .collect()
}

#[test]
fn a_second_os_user_approves_what_the_first_proposed() {
    let w = World::new("a");
    let (alice, bob, carol, dave) = (w.alice(), w.bob(), w.carol(), w.dave());
    std::fs::write(w.dir.join("rb.toml"), runbook(&w.group, alice, bob))
        .unwrap_or_else(|e| panic!("{e}"));
    let t = Tmux::start(
        "operators",
        &[("alice", 110, 32), ("bob", 110, 32), ("carol", 110, 32)],
    );

    // alice runs it and proposes the two-person step
    t.line(
        "alice",
        &format!(
            "{}; echo ALICE-EXIT=$?",
            w.as_user(alice, "run rb.toml --journal runs/j.jsonl")
        ),
    );
    t.wait_for("alice", "switch awaiting", |s| {
        row(s, "switch").contains("awaiting you")
    });
    let mode = std::fs::metadata(w.socket())
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or_else(|e| panic!("the socket: {e}"));
    assert_eq!(
        mode, 0o660,
        "[operators] group opens the socket to the group"
    );
    t.keys("alice", &["c"]);
    t.wait_for("alice", "the typed confirm", |s| {
        s.contains("type `switch` to confirm")
    });
    t.line("alice", "switch");
    let s = t.wait_for("alice", "the pending proposal", |s| {
        s.contains("proposed by you: awaiting a second operator")
    });
    assert!(row(&s, "switch").contains("approve?"), "{s}");

    // dave is not in the group: refused at connect, with who may come in
    let out = run(
        "runuser",
        &[
            "-u",
            dave,
            "--",
            &w.ferry().display().to_string(),
            "attach",
            "--socket",
            &w.socket().display().to_string(),
            "--operate",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "members of the OS group `{}`, and you ({dave}) are not one of them",
            w.group
        )),
        "{err}"
    );

    // alice's uid in a second terminal, calling itself bob: the same person
    let script = w.dir.join("raw.py");
    std::fs::write(&script, RAW_APPROVER).unwrap_or_else(|e| panic!("{e}"));
    let out = run(
        "runuser",
        &[
            "-u",
            alice,
            "--",
            "timeout",
            "30",
            "/usr/bin/python3",
            &script.display().to_string(),
            &w.socket().display().to_string(),
            bob,
        ],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("welcome") && said.contains("REFUSED same_person"),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // carol is in the group but not in `operate`: she watches; her approval is refused
    t.line(
        "carol",
        &format!(
            "{}; echo CAROL-EXIT=$?",
            w.as_user(carol, "attach --socket runs/j.jsonl.sock --operate")
        ),
    );
    t.wait_for("alice", "carol observing", |s| {
        s.contains(&format!("+{carol} observing"))
    });
    // her console says she observes, shows the proposal as pending, offers no key
    let alice_uid = w.uid(alice);
    let s = t.wait_for("carol", "the pending proposal on carol's console", |s| {
        s.contains(&format!(
            "proposed by {alice} (uid {alice_uid}): awaiting a second operator's approval · you observe"
        ))
    });
    assert!(s.contains("attached observing"), "{s}");
    assert!(!s.contains("c approve"), "{s}");
    t.keys("carol", &["c"]);
    let s = t.wait_for("carol", "the observer told she cannot act", |s| {
        s.contains("you observe this run: [operators] operate does not list you")
    });
    assert!(!s.contains("Approve `switch`"), "no approve dialog: {s}");
    // an approval sent by hand from carol's uid is refused by the run, and journaled
    let out = run(
        "runuser",
        &[
            "-u",
            carol,
            "--",
            "timeout",
            "30",
            "/usr/bin/python3",
            &script.display().to_string(),
            &w.socket().display().to_string(),
            carol,
        ],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("REFUSED not_an_operator"),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // bob approves what alice proposed, seeing her evidence and its hash: it runs
    t.line(
        "bob",
        &format!(
            "{}; echo BOB-EXIT=$?",
            w.as_user(bob, "attach --socket runs/j.jsonl.sock --operate")
        ),
    );
    t.wait_for("bob", "the proposal on bob's console", |s| {
        s.contains(&format!(
            "proposed by {alice} (uid {alice_uid}): awaiting a second operator's approval · c approve"
        ))
    });
    t.keys("bob", &["c"]);
    let dialog = t.wait_for("bob", "bob's approve dialog", |s| {
        s.contains(&format!("Approve `switch` as {bob}"))
    });
    assert!(
        dialog.contains(&format!("proposed by {alice}@")),
        "{dialog}"
    );
    t.keys("bob", &["y"]);
    for who in ["alice", "bob", "carol"] {
        t.wait_for(who, "switch succeeded", |s| row(s, "switch").contains('✔'));
    }
    t.keys("alice", &["q"]);
    t.wait_for("alice", "alice's shell", |s| s.contains("ALICE-EXIT="));

    // the journal names both uids: alice proposed, bob approved, then it ran
    let bob_uid = w.uid(bob);
    let e = entries(&w.journal());
    let propose = e
        .iter()
        .find(|v| v["type"] == "confirm" && v["step"] == "switch")
        .unwrap_or_else(|| panic!("no proposal: {e:?}"));
    assert_eq!(propose["by"]["uid"], alice_uid);
    assert_eq!(propose["by"]["login"], alice);
    // two approvals reached the run: alice's uid under bob's name (refused), then bob's
    let approvals: Vec<&serde_json::Value> = e
        .iter()
        .filter(|v| v["type"] == "approve" && v["step"] == "switch")
        .collect();
    assert_eq!(approvals.len(), 2, "{approvals:?}");
    assert_eq!(approvals[0]["by"]["uid"], alice_uid);
    assert_eq!(approvals[0]["by"]["operator"], bob);
    assert_eq!(approvals[1]["by"]["uid"], bob_uid);
    assert_eq!(approvals[1]["by"]["login"], bob);
    // bob approved the hash of exactly the evidence alice's proposal journaled
    let proposed: Vec<ferry_core::vocab::EvidenceItem> =
        serde_json::from_value(propose["evidence"].clone()).unwrap_or_else(|e| panic!("{e}"));
    assert!(!proposed.is_empty());
    assert_eq!(
        approvals[1]["evidence_sha256"].as_str(),
        Some(ferry_core::vocab::evidence_sha256(&proposed).as_str())
    );
    let refusals: Vec<&serde_json::Value> = e.iter().filter(|v| v["kind"] == "refused").collect();
    assert!(
        refusals
            .iter()
            .any(|r| r["refusal"]["refusal"] == "same_person"
                && r["asked_by"]["uid"] == alice_uid
                && r["asked_by"]["operator"] == bob),
        "{refusals:?}"
    );
    assert!(
        refusals.iter().any(
            |r| r["refusal"]["refusal"] == "not_an_operator" && r["asked_by"]["login"] == carol
        ),
        "{refusals:?}"
    );
    let ran = e.iter().any(|v| {
        v["type"] == "finished" && v["step"] == "switch" && v["outcome"]["outcome"] == "succeeded"
    });
    assert!(ran, "switch ran after the approval: {e:?}");
    let header = e.first().unwrap_or_else(|| panic!("empty journal"));
    assert_eq!(header["uid"], alice_uid);
}
