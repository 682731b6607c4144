//! TLS on connections, against the rig's target cluster, which `scripts/test` starts
//! with TLS on and a certificate from a test CA made with openssl (scripts/rig.sh, the
//! TLS block): `verify-full` with that CA connects and is journaled as verified; a
//! certificate from another CA, or for another host name, is refused with a message
//! naming the connection (`verify-ca` too, for the host name: sqlx 0.8's bug, which
//! ferry reports rather than works around); IAM-style options
//! never downgrade; and a password never reaches a server whose certificate failed
//! verification (a TLS-terminating loopback listener records what arrives).
//!
//! Tests fail, never skip, when the rig's variables are unset.

use ferry_core::engine::connections::{ConnError, Connections, RetryPolicy};
use ferry_core::engine::redact::Redactor;
use ferry_core::runbook::load_str;
use ferry_core::vocab::{ConnectionTls, TlsMode};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::support;
use support::headless::{dump, entries, Dir};
use support::pg::rig_var;

const RIG_PASSWORD: &str = "ferry-test-secret-pw";

fn target() -> String {
    rig_var("FERRY_TEST_PG_TARGET")
}

/// One attempt, no backoff: a TLS refusal must not be retried anyway.
fn once() -> RetryPolicy {
    RetryPolicy {
        attempts: 1,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
    }
}

/// Connections of a runbook whose connection `db` reads `${env:DB_URL}` = `url`, with
/// `extra` TOML lines (`tls`, `ca`, `iam_auth`).
fn conns(url: &str, extra: &str) -> Connections {
    let text = format!(
        "[runbook]\nname = \"t\"\nformat = 1\n\n[connections.db]\nurl = \"${{env:DB_URL}}\"\n{extra}\n\n\
         [[phase]]\nid = \"p\"\n[[phase.step]]\nid = \"s\"\nkind = \"confirm\"\n"
    );
    let rb = load_str("x.toml", &text, Path::new("x.toml"))
        .unwrap_or_else(|r| panic!("test runbook does not load: {}\n{text}", r.render()));
    let env: HashMap<String, String> = [("DB_URL".to_string(), url.to_string())].into();
    let lookup = move |name: &str| env.get(name).cloned();
    let mut redactor = Redactor::new();
    Connections::new(&rb, &lookup, &mut redactor, once())
        .unwrap_or_else(|e| panic!("connections: {e:?}"))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Connect `db` and return the evidence it recorded, or the error.
fn connect(url: &str, extra: &str) -> Result<ConnectionTls, ConnError> {
    let c = conns(url, extra);
    rt().block_on(async {
        let r = c.get("db").await;
        let (seen, _rx) = c.tls_evidence();
        c.close().await;
        r.map(|_| {
            assert_eq!(seen.len(), 1, "one connection, one evidence: {seen:?}");
            seen.into_iter().next().unwrap()
        })
    })
}

fn ca_lines(mode: &str, ca_var: &str) -> String {
    format!("tls = \"{mode}\"\nca = \"{}\"", rig_var(ca_var))
}

#[test]
fn verify_full_with_the_test_ca_connects_and_is_recorded_as_verified() {
    let ev = connect(&target(), &ca_lines("verify-full", "FERRY_TEST_TLS_CA"))
        .unwrap_or_else(|e| panic!("verify-full with the rig's CA must connect: {e}"));
    assert_eq!(ev.mode, TlsMode::VerifyFull);
    assert!(
        ev.encrypted,
        "the server must see an encrypted session: {ev:?}"
    );
    assert!(ev.verified, "{ev:?}");
    assert_eq!(
        ev.ca.as_deref(),
        Some(rig_var("FERRY_TEST_TLS_CA").as_str())
    );
    assert!(
        ev.protocol
            .as_deref()
            .is_some_and(|p| p.starts_with("TLSv1.")),
        "pg_stat_ssl names the protocol: {ev:?}"
    );
    assert!(!format!("{ev:?}").contains(RIG_PASSWORD));
}

#[test]
fn the_same_server_without_tls_settings_is_recorded_as_not_verified() {
    // libpq's default (prefer): encrypted, since the target offers TLS, but nothing checked
    let ev = connect(&target(), "").unwrap_or_else(|e| panic!("prefer must connect: {e}"));
    assert_eq!(ev.mode, TlsMode::Prefer);
    assert!(ev.encrypted && !ev.verified, "{ev:?}");
    // and a cluster without TLS (the primary) is recorded as not encrypted
    let ev = connect(&rig_var("FERRY_TEST_PG_PRIMARY"), "")
        .unwrap_or_else(|e| panic!("the primary must connect: {e}"));
    assert!(!ev.encrypted && !ev.verified, "{ev:?}");
}

#[test]
fn a_certificate_from_another_ca_is_refused_naming_the_connection() {
    let t0 = std::time::Instant::now();
    let err = connect(
        &target(),
        &ca_lines("verify-full", "FERRY_TEST_TLS_OTHER_CA"),
    )
    .expect_err("the target's certificate is not from the other CA: must be refused");
    let msg = err.to_string();
    assert!(matches!(err, ConnError::Config(_)), "not retried: {err:?}");
    assert!(msg.contains("`db`"), "names the connection: {msg}");
    assert!(msg.contains("TLS verification failed"), "{msg}");
    assert!(
        msg.contains("UnknownIssuer") || msg.contains("not trusted"),
        "{msg}"
    );
    assert!(!msg.contains(RIG_PASSWORD), "{msg}");
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "no retries: {:?}",
        t0.elapsed()
    );
    // verify-ca checks the issuer too
    let err = connect(&target(), &ca_lines("verify-ca", "FERRY_TEST_TLS_OTHER_CA"))
        .expect_err("verify-ca with the wrong CA must be refused");
    assert!(err.to_string().contains("TLS verification failed"), "{err}");
}

#[test]
fn another_host_name_is_refused_by_verify_full_and_by_this_sqlx_under_verify_ca() {
    // the target also listens on 127.0.0.2, which its certificate does not name
    let alt = rig_var("FERRY_TEST_PG_TARGET_ALT_HOST");
    assert!(alt.contains("@127.0.0.2:"), "{alt}");
    let err = connect(&alt, &ca_lines("verify-full", "FERRY_TEST_TLS_CA"))
        .expect_err("verify-full must refuse a certificate for another host");
    let msg = err.to_string();
    assert!(msg.contains("`db`") && msg.contains("127.0.0.2"), "{msg}");
    assert!(msg.contains("does not name the host"), "{msg}");
    assert!(msg.contains("127.0.0.1"), "says which names it has: {msg}");
    // libpq's verify-ca would accept it; sqlx 0.8.6 checks the name under verify-ca too
    // (transact-rs/sqlx#3793, fixed in sqlx 0.9): ferry fails closed and says why. When
    // sqlx is upgraded this assertion fails, and verify-ca must then connect here.
    let err = connect(&alt, &ca_lines("verify-ca", "FERRY_TEST_TLS_CA"))
        .expect_err("sqlx 0.8.6: verify-ca checks the host name");
    assert!(err.to_string().contains("sqlx#3793"), "{err}");
    // verify-ca (whose verifier needs the process's crypto provider: no panic) with the
    // right CA and a name the certificate lists connects and is verified
    let ev = connect(&target(), &ca_lines("verify-ca", "FERRY_TEST_TLS_CA"))
        .unwrap_or_else(|e| panic!("verify-ca with the rig's CA must connect: {e}"));
    assert_eq!(ev.mode, TlsMode::VerifyCa);
    assert!(ev.encrypted && ev.verified, "{ev:?}");
}

#[test]
fn iam_style_and_url_options_never_downgrade() {
    let other = ca_lines("verify-full", "FERRY_TEST_TLS_OTHER_CA");
    // IAM auth: the URL's sslmode=require (what ferry used to force) becomes verify-full
    let iam = conns(
        &format!("{}?sslmode=require", target()),
        "iam_auth = { instance = \"prod\" }",
    );
    assert_eq!(iam.tls_mode("db"), Some(TlsMode::VerifyFull));
    let iam = conns(
        &format!("{}?sslmode=disable", target()),
        "iam_auth = { instance = \"prod\" }",
    );
    assert_eq!(iam.tls_mode("db"), Some(TlsMode::VerifyFull));
    // a weaker sslmode in the URL does not weaken the runbook's verify-full: still refused
    let err = connect(&format!("{}?sslmode=require", target()), &other)
        .expect_err("the URL's sslmode=require must not override verify-full");
    assert!(err.to_string().contains("TLS verification failed"), "{err}");
    let err = connect(&format!("{}?sslmode=disable", target()), &other)
        .expect_err("the URL's sslmode=disable must not override verify-full");
    assert!(err.to_string().contains("TLS verification failed"), "{err}");
    // a stronger one in the URL wins over the runbook's require
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        target(),
        rig_var("FERRY_TEST_TLS_OTHER_CA")
    );
    let err = connect(&url, "tls = \"require\"")
        .expect_err("the URL's verify-full must win over the runbook's require");
    assert!(err.to_string().contains("TLS verification failed"), "{err}");
    // and the URL's sslrootcert is the CA: right CA, verified
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        target(),
        rig_var("FERRY_TEST_TLS_CA")
    );
    let ev = connect(&url, "").unwrap_or_else(|e| panic!("libpq URL parameters: {e}"));
    assert!(ev.verified, "{ev:?}");
}

/// What the TLS-terminating listener saw from its one client.
#[derive(Debug, Default)]
struct Seen {
    ssl_request: bool,
    handshake_done: bool,
    app_bytes: usize,
    password: Option<String>,
}

/// A loopback listener that answers PostgreSQL's SSLRequest with `S`, completes TLS
/// with `cert`/`key`, and then plays a server that asks for a cleartext password,
/// recording everything that arrives after the handshake. One connection.
fn listener(cert: &str, key: &str) -> (u16, JoinHandle<Seen>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&std::fs::read(cert).expect("read the test cert"))
            .collect::<Result<_, _>>()
            .expect("PEM certificate");
    let key = PrivateKeyDer::from_pem_slice(&std::fs::read(key).expect("read the test key"))
        .expect("PEM key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server certificate");
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let mut seen = Seen::default();
        let Ok((mut tcp, _)) = l.accept() else {
            return seen;
        };
        tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut req = [0u8; 8];
        if tcp.read_exact(&mut req).is_err() {
            return seen;
        }
        seen.ssl_request = req == [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        if !seen.ssl_request || tcp.write_all(b"S").is_err() {
            return seen;
        }
        let conn = rustls::ServerConnection::new(Arc::new(config)).expect("server connection");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        // the startup message: length, then the rest
        let mut len = [0u8; 4];
        let r = tls.read_exact(&mut len);
        seen.handshake_done = !tls.conn.is_handshaking();
        if r.is_err() {
            return seen;
        }
        seen.app_bytes += 4;
        let n = u32::from_be_bytes(len) as usize;
        let mut rest = vec![0u8; n.saturating_sub(4).min(1 << 16)];
        if tls.read_exact(&mut rest).is_err() {
            return seen;
        }
        seen.app_bytes += rest.len();
        // AuthenticationCleartextPassword
        if tls.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).is_err() || tls.flush().is_err() {
            return seen;
        }
        let mut head = [0u8; 5];
        if tls.read_exact(&mut head).is_err() {
            return seen;
        }
        seen.app_bytes += 5;
        let n = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; n.saturating_sub(4).min(1 << 16)];
        if tls.read_exact(&mut body).is_ok() && head[0] == b'p' {
            seen.app_bytes += body.len();
            let pw = body.split(|b| *b == 0).next().unwrap_or_default();
            seen.password = Some(String::from_utf8_lossy(pw).into_owned());
        }
        seen
    });
    (port, h)
}

fn listener_url(port: u16) -> String {
    format!("postgres://ferry:{RIG_PASSWORD}@127.0.0.1:{port}/ferry")
}

#[test]
fn a_password_never_crosses_a_connection_whose_verification_failed() {
    // control: with `require` (no verification) the listener does get the password,
    // so the listener can tell
    let (port, h) = listener(
        &rig_var("FERRY_TEST_TLS_OTHER_CERT"),
        &rig_var("FERRY_TEST_TLS_OTHER_KEY"),
    );
    let r = connect(&listener_url(port), "tls = \"require\"");
    assert!(r.is_err(), "the listener is not a real server");
    let seen = h.join().expect("listener thread");
    assert!(seen.ssl_request && seen.handshake_done, "{seen:?}");
    assert_eq!(
        seen.password.as_deref(),
        Some(RIG_PASSWORD),
        "control: an unverified connection hands over the password: {seen:?}"
    );

    // verification asked: a certificate from another CA, then one for another host
    for (cert, key, what) in [
        (
            "FERRY_TEST_TLS_OTHER_CERT",
            "FERRY_TEST_TLS_OTHER_KEY",
            "another CA",
        ),
        (
            "FERRY_TEST_TLS_WRONG_HOST_CERT",
            "FERRY_TEST_TLS_WRONG_HOST_KEY",
            "another host name",
        ),
    ] {
        for mode in ["verify-full", "verify-ca"] {
            if what == "another host name" && mode == "verify-ca" {
                continue; // libpq's verify-ca does not check the name (sqlx 0.8's does)
            }
            let (port, h) = listener(&rig_var(cert), &rig_var(key));
            let err = connect(&listener_url(port), &ca_lines(mode, "FERRY_TEST_TLS_CA"))
                .expect_err("must be refused");
            let seen = h.join().expect("listener thread");
            assert!(seen.ssl_request, "{what}/{mode}: {seen:?}");
            assert_eq!(
                seen.app_bytes, 0,
                "{what}/{mode}: nothing may be sent after a failed verification: {seen:?}"
            );
            assert_eq!(seen.password, None, "{what}/{mode}: {seen:?}");
            assert!(
                err.to_string().contains("TLS verification failed"),
                "{what}/{mode}: {err}"
            );
        }
    }
}

#[test]
fn a_run_journals_and_reports_each_connection_as_verified_or_not() {
    let mut d = Dir::new();
    d.env("TARGET_URL", &target());
    d.env("PRIMARY_URL", &rig_var("FERRY_TEST_PG_PRIMARY"));
    let ca = rig_var("FERRY_TEST_TLS_CA");
    d.runbook(
        "tls-evidence",
        &format!(
            "[connections.target]\nurl = \"${{env:TARGET_URL}}\"\ntls = \"verify-full\"\nca = \"{ca}\"\n\n\
             [connections.plain]\nurl = \"${{env:PRIMARY_URL}}\"\ntls = \"disable\"\n\n\
             [[phase]]\nid = \"p\"\n\
             [[phase.step]]\nid = \"encrypted\"\nkind = \"sql\"\nconnection = \"target\"\nconfirm = \"none\"\n\
             sql = \"select ssl from pg_stat_ssl where pid = pg_backend_pid()\"\nexpect = \"true\"\n\
             [[phase.step]]\nid = \"plain\"\nkind = \"sql\"\nconnection = \"plain\"\nconfirm = \"none\"\n\
             sql = \"select ssl from pg_stat_ssl where pid = pg_backend_pid()\"\nexpect = \"false\"\n"
        ),
    );
    let out = d.run(&[]);
    out.assert_code(0, "a run over a verified and a plain connection");
    let journal = d.journal();
    let recs = entries(&journal);
    let conn = |name: &str| {
        recs.iter()
            .find(|r| r["entry"]["kind"] == "connection" && r["entry"]["connection"] == name)
            .unwrap_or_else(|| panic!("no connection entry for {name}:\n{}", dump(&recs)))
            .clone()
    };
    let t = conn("target");
    assert_eq!(t["entry"]["mode"], "verify-full", "{t}");
    assert_eq!(t["entry"]["verified"], true, "{t}");
    assert_eq!(t["entry"]["encrypted"], true, "{t}");
    let p = conn("plain");
    assert_eq!(p["entry"]["verified"], false, "{p}");
    assert_eq!(p["entry"]["encrypted"], false, "{p}");
    assert!(!std::fs::read_to_string(&journal)
        .unwrap()
        .contains(RIG_PASSWORD));

    // the report says it, in Markdown and JSON (schema-checked by report_inputs)
    let md = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["report", "--format", "md"])
        .arg(&journal)
        .output()
        .expect("ferry report");
    let text = String::from_utf8_lossy(&md.stdout);
    assert!(
        md.status.success(),
        "{}",
        String::from_utf8_lossy(&md.stderr)
    );
    assert!(text.contains("## Connections and TLS"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("`target`") && l.contains("**verified**")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("`plain`") && l.contains("**NOT encrypted**")),
        "{text}"
    );
    let json = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["report", "--format", "json"])
        .arg(&journal)
        .output()
        .expect("ferry report");
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON report");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/report.schema.json"),
        )
        .expect("read the schema"),
    )
    .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let conns = v["connections"]
        .as_array()
        .expect("connections in the JSON report");
    assert!(
        conns
            .iter()
            .any(|c| c["connection"] == "target" && c["verified"] == true),
        "{conns:?}"
    );
}

#[test]
fn check_warns_about_weak_tls_and_rejects_tls_mistakes() {
    let d = Dir::new();
    let rb = d.runbook(
        "tls-check",
        "[connections.rds]\nurl = \"${env:RDS_URL}\"\niam_auth = { instance = \"prod\" }\ntls = \"require\"\n\n\
         [connections.remote]\nurl = \"postgres://migrator@10.0.0.5/app\"\n\n\
         [connections.local]\nurl = \"postgres://migrator@127.0.0.1/app\"\n\n\
         [[phase]]\nid = \"p\"\n[[phase.step]]\nid = \"s\"\nkind = \"confirm\"\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("check")
        .arg(&rb)
        .output()
        .expect("ferry check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(
            "warning: connection `rds` sends its IAM auth token over `tls = \"require\"`"
        ),
        "{text}"
    );
    assert!(
        text.contains("warning: connection `remote` to 10.0.0.5 may be unencrypted"),
        "{text}"
    );
    assert!(
        !text.contains("connection `local` to"),
        "loopback: no warning\n{text}"
    );
    assert!(
        text.contains("rds") && text.contains("tls require"),
        "{text}"
    );
}

#[test]
fn iam_auth_switched_off_by_a_var_connects_with_the_password_over_verify_full() {
    // `enabled` as a string from a var (what a rehearsal's vars file does), and as a boolean
    for enabled in ["\"false\"", "false"] {
        let extra = format!(
            "iam_auth = {{ instance = \"prod\", enabled = {enabled} }}\nca = \"{}\"",
            rig_var("FERRY_TEST_TLS_CA")
        );
        // no `tls` written: the switched-off iam_auth still implies verify-full
        let ev = connect(&target(), &extra)
            .unwrap_or_else(|e| panic!("the URL's password over verify-full must connect: {e}"));
        assert_eq!(ev.mode, TlsMode::VerifyFull, "{ev:?}");
        assert!(ev.encrypted && ev.verified, "{ev:?}");
        // and it is still refused against a certificate the CA did not sign
        let extra = format!(
            "iam_auth = {{ instance = \"prod\", enabled = {enabled} }}\nca = \"{}\"",
            rig_var("FERRY_TEST_TLS_OTHER_CA")
        );
        let err = connect(&target(), &extra).expect_err("verify-full must still refuse");
        assert!(err.to_string().contains("TLS verification failed"), "{err}");
    }
    // a bad value is a load error naming the key
    let text = "[runbook]\nname = \"t\"\nformat = 1\n\n[connections.db]\nurl = \"${env:DB_URL}\"\n\
                iam_auth = { instance = \"prod\", enabled = \"no\" }\n\n\
                [[phase]]\nid = \"p\"\n[[phase.step]]\nid = \"s\"\nkind = \"confirm\"\n";
    let err = match load_str("x.toml", text, Path::new("x.toml")) {
        Ok(_) => panic!("`enabled = \"no\"` must not load"),
        Err(r) => r.render(),
    };
    assert!(err.contains("bad value `no` for `enabled`"), "{err}");
    assert!(err.contains("x.toml:7:"), "names the line: {err}");
}
