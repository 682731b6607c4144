//! AWS error paths through the real binary and the real SDK clients: an
//! endpoint that refuses connections, one that is not AWS at all, an unset
//! `${env:X}` in `[aws]`, missing credentials (against `moto_server`), and
//! what moto cannot produce — throttling and expired tokens — from a loopback
//! HTTP server that answers every call with that AWS error. Each must end
//! with a clear one-line message and the right exit code, never a panic, a
//! debug dump or a secret.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn moto() -> String {
    std::env::var("FERRY_TEST_MOTO_URL").unwrap_or_else(|_| {
        panic!("FERRY_TEST_MOTO_URL is not set: run the tests through scripts/test, which starts moto_server")
    })
}

/// A secret that must never show up in anything a run writes.
const SECRET: &str = "haws-Very-Secret-Key-0123456789abcdef";

fn ferry(dir: &Path, args: &[&str], runbook: &str, env: &[(&str, &str)]) -> Output {
    std::fs::write(dir.join("rb.toml"), runbook).expect("write runbook");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.current_dir(dir)
        .args(args)
        .arg("rb.toml")
        .env("HOME", dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("FERRY_RDS_POLL_SECS", "1")
        .env("AWS_ACCESS_KEY_ID", "AKIAHAWSTEST")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL");
    for (k, v) in env {
        if v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    cmd.output().expect("run ferry")
}

fn run(dir: &Path, runbook: &str, env: &[(&str, &str)]) -> Output {
    ferry(dir, &["run", "--headless", "--yes"], runbook, env)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under `dir` (journal, log, report) and the output: no secret,
/// no SDK debug dump, no panic.
fn assert_clean(dir: &Path, out: &Output) {
    let mut all = text(out);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(t) = std::fs::read_to_string(&p) {
                all.push_str(&t);
            }
        }
    }
    for bad in [
        SECRET,
        "panicked",
        "Some(\"",
        "DispatchFailure",
        "ConnectorError",
    ] {
        assert!(!all.contains(bad), "`{bad}` leaked:\n{all}");
    }
}

/// A runbook whose only AWS use is a CloudWatch metric gate.
fn metric_runbook(endpoint: &str) -> String {
    format!(
        r#"
[runbook]
name = "aws-errors"
format = 1
[aws]
region = "us-east-1"
endpoint_url = "{endpoint}"
[[monitor.metric]]
name = "cpu"
cloudwatch = {{ namespace = "AWS/RDS", metric = "CPUUtilization", dimensions = {{ DBInstanceIdentifier = "db" }}, stat = "Average", period = "60s" }}
[[phase]]
id = "p"
  [[phase.step]]
  id = "quiet"
  kind = "wait"
  until = {{ metric = "cpu", below = 50 }}
  timeout = "20s"
"#
    )
}

fn reboot_runbook(endpoint: &str, timeout: &str) -> String {
    format!(
        r#"
[runbook]
name = "aws-errors"
format = 1
[aws]
region = "us-east-1"
endpoint_url = "{endpoint}"
[[phase]]
id = "p"
  [[phase.step]]
  id = "reboot"
  kind = "rds"
  action = "reboot"
  instance = "db-1"
  wait = "available"
  timeout = "{timeout}"
"#
    )
}

/// A loopback HTTP server answering every request with `status` and `body`;
/// counts the requests.
fn answering(status: &'static str, body: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            seen.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                // read the head, then the body by its length
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, length) = loop {
                    let Ok(n) = s.read(&mut chunk) else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (i + 4, len);
                    }
                };
                while buf.len() < head_end + length {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes());
            });
        }
    });
    (url, count)
}

fn aws_error(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
    )
}

fn closed_port_url() -> String {
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn an_unreachable_endpoint_stops_even_a_metric_only_run_with_exit_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = closed_port_url();
    let out = run(dir.path(), &metric_runbook(&url), &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(
        all.contains(&url) && all.contains("Connection refused"),
        "names the endpoint and the cause:\n{all}"
    );
    assert!(
        !dir.path().join("runs").exists(),
        "no journal for a run that never started"
    );
    assert_clean(dir.path(), &out);
    // `check --aws` asks the endpoint even when no RDS instance is named
    let out = ferry(dir.path(), &["check", "--aws"], &metric_runbook(&url), &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("UNREACHABLE"), "{}", text(&out));
    let out = ferry(
        dir.path(),
        &["check", "--aws"],
        &metric_runbook(&moto()),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("answers"), "{}", text(&out));
}

#[test]
fn an_endpoint_that_is_not_aws_is_unreachable_not_a_debug_dump() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, _) = answering("404 Not Found", "");
    let out = run(dir.path(), &reboot_runbook(&url, "20s"), &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(all.contains("answered HTTP 404"), "{all}");
    assert_clean(dir.path(), &out);
}

#[test]
fn an_unset_variable_in_aws_is_bad_input_before_anything_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rb = metric_runbook("${env:HAWS_NO_SUCH_ENDPOINT}");
    for args in [&["run", "--headless", "--yes"][..], &["check", "--aws"][..]] {
        let out = ferry(dir.path(), args, &rb, &[]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
        assert!(
            all.contains("[aws] endpoint_url") && all.contains("HAWS_NO_SUCH_ENDPOINT"),
            "{args:?}: {all}"
        );
    }
    assert!(!dir.path().join("runs").exists());
    let out = ferry(
        dir.path(),
        &["check", "--aws"],
        &metric_runbook("localhost:4566"),
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("is not a URL"), "{}", text(&out));
}

#[test]
fn missing_credentials_are_named_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rb = reboot_runbook(&moto(), "20s");
    let no_creds = [("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")];
    let out = run(dir.path(), &rb, &no_creds);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let line = all
        .lines()
        .find(|l| l.contains("reboot: failed"))
        .unwrap_or_else(|| panic!("a failure line:\n{all}"));
    assert!(
        line.contains("credentials are missing, invalid or expired")
            && line.contains("no credentials found"),
        "{all}"
    );
    let out = ferry(dir.path(), &["check", "--aws"], &rb, &no_creds);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("no credentials found"), "{all}");
    assert_clean(dir.path(), &out);
}

#[test]
fn throttling_backs_off_until_the_timeout_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body: &'static str = Box::leak(aws_error("Throttling", "Rate exceeded").into_boxed_str());
    let (url, calls) = answering("400 Bad Request", body);
    let out = run(dir.path(), &reboot_runbook(&url, "8s"), &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("AWS throttled the request (Throttling: Rate exceeded)")
            && all.contains("retrying in"),
        "{all}"
    );
    assert!(all.contains("timed out after 8s"), "{all}");
    assert!(
        calls.load(Ordering::SeqCst) >= 3,
        "the calls were made again"
    );
    assert_clean(dir.path(), &out);
}

#[test]
fn an_expired_token_fails_at_once_and_says_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body: &'static str = Box::leak(
        aws_error(
            "ExpiredToken",
            "The security token included in the request is expired",
        )
        .into_boxed_str(),
    );
    let (url, _) = answering("403 Forbidden", body);
    let out = run(dir.path(), &reboot_runbook(&url, "60s"), &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("ExpiredToken: The security token included in the request is expired")
            && all.contains("refresh them"),
        "{all}"
    );
    assert!(!all.contains("timed out"), "fails at once:\n{all}");
    assert_clean(dir.path(), &out);
}

#[test]
fn check_lists_what_aws_needs_from_the_environment_and_the_iam_auth_lookup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rb = r#"
[runbook]
name = "aws-plan"
format = 1
[aws]
region = "${env:HAWS_REGION}"
endpoint_url = "${env:HAWS_ENDPOINT}"
[connections.db]
url = "postgres://app@db.example.com:5432/app"
iam_auth = { instance = "prod-db" }
[[phase]]
id = "p"
  [[phase.step]]
  id = "x"
  kind = "confirm"
  [[phase.step]]
  id = "ready"
  kind = "rds"
  action = "wait_status"
  instance = "prod-db"
  status = "available"
"#;
    let out = ferry(dir.path(), &["check"], rb, &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let env_line = all
        .lines()
        .find(|l| l.starts_with("environment"))
        .unwrap_or_else(|| panic!("an environment line:\n{all}"));
    assert!(
        env_line.contains("HAWS_ENDPOINT") && env_line.contains("HAWS_REGION"),
        "{all}"
    );
    let calls = all
        .lines()
        .find(|l| l.starts_with("AWS calls"))
        .unwrap_or_else(|| panic!("an AWS calls line:\n{all}"));
    assert!(
        calls.contains("rds:DescribeDBInstances") && calls.contains("rds-db:connect"),
        "{calls}"
    );
    assert!(
        all.contains("wait_status prod-db until `available`"),
        "the plan says what wait_status waits for:\n{all}"
    );
}

#[test]
fn a_denied_describe_is_reported_by_check_aws() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body: &'static str = Box::leak(
        aws_error(
            "AccessDenied",
            "User: arn:aws:iam::123456789012:user/ops is not authorized to perform: rds:DescribeDBInstances",
        )
        .into_boxed_str(),
    );
    let (url, _) = answering("403 Forbidden", body);
    let out = ferry(
        dir.path(),
        &["check", "--aws"],
        &reboot_runbook(&url, "1m"),
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("aws: DENIED   db-1: rds:DescribeDBInstances is not allowed")
            && all.contains("not authorized"),
        "{all}"
    );
    assert_clean(dir.path(), &out);
}
