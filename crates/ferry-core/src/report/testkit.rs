//! Test helpers: report models built from journal entries at given seconds,
//! through the real `model::build` (no hashes: `build` reads records as given).

use super::model::{build, ReportModel};
use crate::journal::{Entry, Header, Lenient, Record};
use crate::vocab::{Actor, Event, Outcome};
use chrono::{DateTime, TimeZone, Utc};

pub fn at(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + s, 0)
        .single()
        .expect("time")
}

pub fn model(entries: Vec<(i64, Entry)>) -> ReportModel {
    let records: Vec<Record> = entries
        .into_iter()
        .enumerate()
        .map(|(n, (s, entry))| Record {
            seq: n as u64,
            ts: at(s),
            entry,
            prev: String::new(),
            hash: String::new(),
        })
        .collect();
    let j = Lenient {
        lines: records.len(),
        verified_records: records.len(),
        verified_line: Some(records.len()).filter(|&n| n > 0),
        records,
        broken: None,
        torn: None,
    };
    build("j", &j)
}

pub fn bob() -> Actor {
    Actor {
        operator: "bob".into(),
        host: "h".into(),
        ..Default::default()
    }
}

pub fn header(name: &str) -> Entry {
    Entry::Header(Header {
        ferry_version: "0".into(),
        runbook_name: name.into(),
        runbook_title: name.into(),
        runbook_path: "rb.toml".into(),
        runbook_sha256: String::new(),
        steps: Default::default(),
        operator: "bob".into(),
        host: "h".into(),
        uid: None,
        login: None,
        window_start: None,
        window_secs: None,
        plan: Vec::new(),
        vars: Vec::new(),
    })
}

pub fn session(resumed: bool) -> Entry {
    Entry::Session {
        operator: "bob".into(),
        host: "h".into(),
        uid: None,
        login: None,
        resumed,
        pid: 1,
        socket: None,
    }
}

pub fn ev(e: Event) -> Entry {
    Entry::Event(e)
}

pub fn ok() -> Outcome {
    Outcome::Succeeded {
        summary: "ok".into(),
    }
}

pub fn started(step: &str) -> Entry {
    ev(Event::Started {
        step: step.into(),
        attempt: 1,
    })
}

pub fn finished(step: &str, outcome: Outcome) -> Entry {
    ev(Event::Finished {
        step: step.into(),
        attempt: 1,
        outcome,
    })
}

pub fn closed(ok: bool) -> Entry {
    Entry::Closed {
        status: crate::vocab::RunStatus::Finished { ok },
    }
}
