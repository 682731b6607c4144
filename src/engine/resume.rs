//! Resume: rebuild the machine from a verified journal, name the steps whose
//! definition changed since the journal began, and find the steps that were
//! running when the previous process died (they come back `interrupted`).

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
