//! Resume: rebuild the machine from a verified journal, name the steps whose
//! definition changed since the journal began, and find the steps that were
//! running when the previous process died (they come back `interrupted`),
//! and stop the process groups those steps left running (a shell step's
//! children outlive a `kill -9` of ferry; retrying beside them would run the
//! same work twice).

use super::machine::Machine;
use super::snapshot::EngineSnapshot;
use crate::journal::{Entry, Header, Replay};
use crate::runbook::Runbook;

/// Differences between the journaled runbook and the current one, one line each.
pub fn changed_steps(header: &Header, rb: &Runbook) -> Vec<String> {
    let mut out = Vec::new();
    for s in rb.steps() {
        match header.steps.get(&s.id) {
            None => out.push(format!("added: `{}`", s.id)),
            Some(fp) if *fp != s.fingerprint() => out.push(format!("changed: `{}`", s.id)),
            _ => {}
        }
    }
    for id in header.steps.keys() {
        if rb.step(id).is_none() {
            out.push(format!("removed: `{id}`"));
        }
    }
    out
}

/// Replay every journaled event into a fresh machine (effects are not run) and
/// fill the snapshot's timings and output. Returns the steps that were running.
pub fn replay(rb: &Runbook, journal: &Replay, snap: &mut EngineSnapshot) -> (Machine, Vec<String>) {
    let mut m = Machine::new(rb);
    let _ = m.start();
    for r in &journal.records {
        snap.record(&r.entry, r.ts);
        if let Entry::Event(ev) = &r.entry {
            let _ = m.handle(ev);
        }
    }
    snap.sync(&m);
    let running = m.running();
    (m, running)
}

/// The process groups the given steps started last, per the journal: (step, pgid, start ticks).
pub fn leftover_groups(journal: &Replay, steps: &[String]) -> Vec<(String, i32, Option<u64>)> {
    let mut last: std::collections::BTreeMap<&str, (i32, Option<u64>)> = Default::default();
    for r in &journal.records {
        if let Entry::Process {
            step,
            pgid,
            start_ticks,
        } = &r.entry
        {
            if steps.contains(step) {
                last.insert(step.as_str(), (*pgid, *start_ticks));
            }
        }
    }
    last.into_iter()
        .map(|(s, (g, t))| (s.to_string(), g, t))
        .collect()
}

/// Whether the group's leader is still the process the journal recorded.
fn same_process(pgid: i32, start_ticks: Option<u64>) -> bool {
    match (super::exec::process_start_ticks(pgid), start_ticks) {
        (Some(now), Some(then)) => now == then,
        // no start time was recorded: trust the pid only if the group answers
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn group_alive(pgid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the group exists.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

/// Stop (SIGTERM, then SIGKILL after 3 s) every leftover group that is still
/// the one the journal recorded. Returns one line per group stopped.
pub async fn stop_leftovers(groups: &[(String, i32, Option<u64>)]) -> Vec<String> {
    let mut said = Vec::new();
    for (step, pgid, ticks) in groups {
        if *pgid <= 1 || !group_alive(*pgid) || !same_process(*pgid, *ticks) {
            continue;
        }
        // SAFETY: signalling a process group we started (identity checked above).
        unsafe { libc::kill(-*pgid, libc::SIGTERM) };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        while group_alive(*pgid) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let how = if group_alive(*pgid) {
            // SAFETY: as above.
            unsafe { libc::kill(-*pgid, libc::SIGKILL) };
            "killed (SIGKILL after SIGTERM was ignored)"
        } else {
            "stopped (SIGTERM)"
        };
        said.push(format!(
            "step `{step}` was interrupted by the crash but its processes were still running (process group {pgid}): {how} before resuming, so a retry does not run beside them"
        ));
    }
    said
}
