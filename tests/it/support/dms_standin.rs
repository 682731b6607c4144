//! A loopback stand-in for the parts of AWS DMS that `moto_server` cannot serve,
//! speaking the real AWS JSON 1.1 protocol (`X-Amz-Target: AmazonDMSv20160101.*`,
//! `application/x-amz-json-1.1`), reached by the real SDK client of the real ferry
//! binary through the `[aws] endpoint_url` override.
//!
//! Allowed by the team brief "for the calls moto lacks"; here is exactly what it does
//! and why, call by call (docs/decisions.md says the same):
//!
//! - `DescribeTableStatistics`: **served here**. moto 5.2.x does not implement it
//!   (it answers 500). The tables come from the test's [`Script`]; a task the stand-in
//!   has not seen started answers `InvalidResourceStateFault`, as DMS does for a task
//!   that never ran.
//! - `DescribeReplicationTasks`: **forwarded to moto, then overlaid**. moto hard-codes
//!   every task's statistics (100 % loaded, nothing errored) and never moves a task from
//!   `creating` to `ready`, so (a) `creating` becomes `ready`, as DMS does within a
//!   minute, and (b) once the task was started, the script's status, stop reason, last
//!   failure message and statistics replace moto's. The task itself (identifier, ARN,
//!   settings, table mappings, migration type) is moto's.
//! - every other call (CreateReplicationInstance, CreateEndpoint,
//!   CreateReplicationTask, StartReplicationTask, StopReplicationTask, …):
//!   **forwarded to moto unchanged**, except that timestamps are rewritten.
//! - **every call of another service** (CloudWatch's GetMetricData, which the DMS
//!   monitor makes through the same `endpoint_url`): **passed to moto byte for
//!   byte**, its answer returned unread.
//! - **timestamps, in every forwarded DMS answer**: moto 5.2.x writes DMS dates as ISO
//!   strings (`datetime.isoformat()`), but AWS JSON 1.1 and the SDK expect epoch seconds
//!   (numbers) and the SDK refuses the answer otherwise. Each string value of a key
//!   ending in `Date` or `Time` that parses as an ISO time becomes its epoch seconds.
//!   `dms_moto::moto_still_writes_dms_dates_the_sdk_cannot_read` proves the need and
//!   fails once moto is fixed, so this rewriting can then go.
//!
//! Nothing here decides whether ferry is right: the script only says what DMS reports,
//! and ferry's own judgement of it is what the tests check.

use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What DMS reports for a task at one moment: the task fields that replace moto's
/// (None keeps moto's) and its tables' statistics.
#[derive(Debug, Clone, Default)]
pub struct Phase {
    pub status: Option<String>,
    pub stop_reason: Option<String>,
    pub last_failure_message: Option<String>,
    /// ReplicationTaskStats, in the API's form.
    pub stats: Option<Value>,
    /// TableStatistics entries, in the API's form (see [`table`]).
    pub tables: Vec<Value>,
    /// RecoveryCheckpoint (None keeps moto's, which has none).
    pub recovery_checkpoint: Option<String>,
}

/// The phases a task goes through after it is started: each DescribeTableStatistics
/// call moves to the next; the last one stays.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub phases: Vec<Phase>,
}

/// A TableStatistics entry as DMS writes it.
pub fn table(schema: &str, name: &str, state: &str, rows: i64) -> Value {
    json!({
        "SchemaName": schema, "TableName": name, "TableState": state,
        "FullLoadRows": rows, "Inserts": 0, "Updates": 0, "Deletes": 0, "Ddls": 0,
        "ValidationState": "Validated", "ValidationFailedRecords": 0,
        "ValidationSuspendedRecords": 0, "ValidationPendingRecords": 0,
    })
}

/// ReplicationTaskStats as DMS writes it.
pub fn stats(percent: i32, loaded: i32, loading: i32, queued: i32, errored: i32) -> Value {
    json!({
        "FullLoadProgressPercent": percent, "ElapsedTimeMillis": 1000,
        "TablesLoaded": loaded, "TablesLoading": loading,
        "TablesQueued": queued, "TablesErrored": errored,
    })
}

#[derive(Default)]
struct State {
    /// by task identifier
    scripts: HashMap<String, (Script, usize)>,
    started: HashSet<String>,
    /// every operation served, in order (`Op` or `Op (served here)`)
    calls: Vec<String>,
}

/// The running stand-in; it lives as long as the test process.
#[derive(Clone)]
pub struct DmsStandin {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl DmsStandin {
    /// Start it on a free loopback port, forwarding to moto at `moto`.
    pub fn start(moto: &str) -> DmsStandin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the DMS stand-in");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let me = DmsStandin { url, state };
        let server = me.clone();
        let moto = moto
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(s) = stream else { continue };
                let server = server.clone();
                let moto = moto.clone();
                std::thread::spawn(move || server.serve(s, &moto));
            }
        });
        me
    }

    /// What the task `id` reports once started.
    pub fn script(&self, id: &str, script: Script) {
        let mut st = self.state.lock().expect("state");
        st.scripts.insert(id.to_string(), (script, 0));
    }

    /// Whether StartReplicationTask was called for the task `id`.
    pub fn started(&self, id: &str) -> bool {
        self.state.lock().expect("state").started.contains(id)
    }

    /// The operations served so far.
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().expect("state").calls.clone()
    }

    fn serve(&self, mut s: TcpStream, moto: &str) {
        let Some((head, body)) = read_message(&mut s) else {
            return;
        };
        let target = header(&head, "x-amz-target").unwrap_or_default();
        if !target.starts_with("AmazonDMSv20160101.") {
            // not DMS (CloudWatch): moto answers it as it is
            self.log("(passed through)".to_string());
            let _ = s.write_all(&pass_through(moto, &head, &body));
            return;
        }
        let op = target.rsplit('.').next().unwrap_or("").to_string();
        let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (status, answer) = if op == "DescribeTableStatistics" {
            self.log(format!("{op} (served here)"));
            self.table_statistics(&req)
        } else {
            self.log(op.clone());
            let (status, mut answer) = forward(moto, &head, &body);
            epoch_dates(&mut answer);
            if op == "StartReplicationTask" {
                if let Some(arn) = req["ReplicationTaskArn"].as_str() {
                    let id = task_id(arn);
                    let mut st = self.state.lock().expect("state");
                    st.started.insert(id.clone());
                    if let Some((_, at)) = st.scripts.get_mut(&id) {
                        *at = 0;
                    }
                }
            }
            if op == "DescribeReplicationTasks" {
                self.overlay(&mut answer);
            }
            (status, answer)
        };
        let text = answer.to_string();
        let reply = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.1\r\nx-amzn-requestid: standin-1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
            text.len()
        );
        let _ = s.write_all(reply.as_bytes());
    }

    fn log(&self, call: String) {
        self.state.lock().expect("state").calls.push(call);
    }

    fn table_statistics(&self, req: &Value) -> (String, Value) {
        let arn = req["ReplicationTaskArn"].as_str().unwrap_or("").to_string();
        let id = task_id(&arn);
        let mut st = self.state.lock().expect("state");
        let started = st.started.contains(&id);
        match st.scripts.get_mut(&id) {
            Some((script, at)) if started && !script.phases.is_empty() => {
                let phase = &script.phases[(*at).min(script.phases.len() - 1)];
                let tables = phase.tables.clone();
                *at += 1;
                (
                    "200 OK".into(),
                    json!({ "ReplicationTaskArn": arn, "TableStatistics": tables }),
                )
            }
            _ => (
                "400 Bad Request".into(),
                json!({ "__type": "InvalidResourceStateFault", "message": format!("Replication task {arn} has not run: no table statistics") }),
            ),
        }
    }

    /// moto's tasks as DMS would show them: `ready` once created, the script's
    /// phase once started. The phase shown is the one the next
    /// DescribeTableStatistics serves (ferry asks for the task, then its tables).
    fn overlay(&self, answer: &mut Value) {
        let st = self.state.lock().expect("state");
        let Some(tasks) = answer["ReplicationTasks"].as_array_mut() else {
            return;
        };
        for t in tasks {
            if t["Status"] == "creating" {
                t["Status"] = json!("ready");
            }
            let id = t["ReplicationTaskIdentifier"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if !st.started.contains(&id) {
                continue;
            }
            let Some((script, at)) = st.scripts.get(&id) else {
                continue;
            };
            let Some(phase) = script
                .phases
                .get((*at).min(script.phases.len().saturating_sub(1)))
            else {
                continue;
            };
            // a stop asked of moto wins over the script's "running"
            let moto_stopped = t["Status"] == "stopped";
            if let Some(s) = &phase.status {
                if !(moto_stopped && s == "running") {
                    t["Status"] = json!(s);
                }
            }
            if let Some(r) = &phase.stop_reason {
                t["StopReason"] = json!(r);
            }
            if let Some(m) = &phase.last_failure_message {
                t["LastFailureMessage"] = json!(m);
            }
            if let Some(x) = &phase.stats {
                t["ReplicationTaskStats"] = x.clone();
            }
            if let Some(c) = &phase.recovery_checkpoint {
                t["RecoveryCheckpoint"] = json!(c);
            }
        }
    }
}

/// The identifier at the end of a task ARN (moto's ARNs end with it).
fn task_id(arn: &str) -> String {
    arn.rsplit(':').next().unwrap_or(arn).to_string()
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// One HTTP/1.1 message: its head (text) and its body (by content-length, or chunked).
fn read_message(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut body = buf[head_end..].to_vec();
    if let Some(len) = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        while body.len() < len {
            let n = s.read(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(len);
    } else if header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            if let Some(decoded) = dechunk(&body) {
                body = decoded;
                break;
            }
            let n = s.read(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        // no length: the body runs to the end of the connection
        let _ = s.read_to_end(&mut body);
    }
    Some((head, body))
}

/// A complete chunked body, decoded; None while it is incomplete.
fn dechunk(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let line_end = raw[i..].windows(2).position(|w| w == b"\r\n")? + i;
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&raw[i..line_end])
                .split(';')
                .next()?
                .trim(),
            16,
        )
        .ok()?;
        let start = line_end + 2;
        if size == 0 {
            return Some(out);
        }
        if raw.len() < start + size + 2 {
            return None;
        }
        out.extend_from_slice(&raw[start..start + size]);
        i = start + size + 2;
    }
}

/// The request sent to moto unchanged (a fresh connection), its whole answer returned.
fn pass_through(moto: &str, head: &str, body: &[u8]) -> Vec<u8> {
    let failed = |why: &str| {
        format!(
            "HTTP/1.1 502 Bad Gateway\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{why}",
            why.len()
        )
        .into_bytes()
    };
    let Ok(mut m) = TcpStream::connect(moto) else {
        return failed("the DMS stand-in cannot reach moto_server");
    };
    if m.write_all(&request(head, body)).is_err() {
        return failed("moto_server closed the connection");
    }
    let mut answer = Vec::new();
    match m.read_to_end(&mut answer) {
        Ok(_) if !answer.is_empty() => answer,
        _ => failed("no answer from moto_server"),
    }
}

/// The request again, for one connection that closes after the answer.
fn request(head: &str, body: &[u8]) -> Vec<u8> {
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or("POST / HTTP/1.1").to_string();
    let mut out = format!("{request_line}\r\n");
    for l in lines {
        let lower = l.to_ascii_lowercase();
        if l.is_empty()
            || lower.starts_with("connection:")
            || lower.starts_with("content-length:")
            || lower.starts_with("transfer-encoding:")
        {
            continue;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Send the request to moto unchanged (a fresh connection each time) and return
/// its status line's code and reason, and its JSON answer.
fn forward(moto: &str, head: &str, body: &[u8]) -> (String, Value) {
    let Ok(mut m) = TcpStream::connect(moto) else {
        return (
            "502 Bad Gateway".into(),
            json!({"__type": "InternalFailure", "message": "the DMS stand-in cannot reach moto_server"}),
        );
    };
    let bytes = request(head, body);
    if m.write_all(&bytes).is_err() {
        return (
            "502 Bad Gateway".into(),
            json!({"__type": "InternalFailure", "message": "moto_server closed the connection"}),
        );
    }
    let Some((rhead, rbody)) = read_message(&mut m) else {
        return (
            "502 Bad Gateway".into(),
            json!({"__type": "InternalFailure", "message": "no answer from moto_server"}),
        );
    };
    let status = rhead
        .lines()
        .next()
        .and_then(|l| l.split_once(' ').map(|(_, rest)| rest.to_string()))
        .unwrap_or_else(|| "200 OK".into());
    let value = serde_json::from_slice(&rbody).unwrap_or_else(|_| {
        json!({"__type": "InternalFailure", "message": String::from_utf8_lossy(&rbody).to_string()})
    });
    (status, value)
}

/// Every ISO time string under a key ending in `Date` or `Time`, as epoch seconds.
pub fn epoch_dates(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if k.ends_with("Date") || k.ends_with("Time") {
                    if let Some(secs) = x.as_str().and_then(iso_epoch) {
                        *x = json!(secs);
                        continue;
                    }
                }
                epoch_dates(x);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(epoch_dates),
        _ => {}
    }
}

fn iso_epoch(s: &str) -> Option<f64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis() as f64 / 1000.0);
    }
    // moto's naive UTC datetimes: no offset
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp_millis() as f64 / 1000.0)
}
