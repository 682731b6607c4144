//! The attach protocol's framing and the socket file: lines in any chunks,
//! bounded, cancel-safe; sockets private, removed when done, a stale one
//! replaced, a live one or any other file never touched, a socket that replaced
//! ours left alone, paths longer than a Unix socket holds.

use super::proto::{self, ClientMsg, FrameError, LineReader};
use super::socket;
use ferry_core::engine::driver::Command;
use ferry_core::vocab::Decision;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};

// ---- framing ------------------------------------------------------------------------------------

#[tokio::test]
async fn lines_are_framed_whatever_the_chunks() {
    let data: &[u8] = b"one\r\n\n{\"a\":1}\nlast-without-newline";
    let mut r = LineReader::new(BufReader::with_capacity(3, data), 100);
    assert_eq!(r.next().await.ok().flatten().as_deref(), Some("one"));
    assert_eq!(r.next().await.ok().flatten().as_deref(), Some("{\"a\":1}"));
    assert_eq!(
        r.next().await.ok().flatten().as_deref(),
        Some("last-without-newline")
    );
    assert!(matches!(r.next().await, Ok(None)));
}

#[tokio::test]
async fn a_line_over_the_limit_is_an_error_not_a_partial_line() {
    let long = format!("{}\nnext\n", "x".repeat(50));
    let mut r = LineReader::new(BufReader::with_capacity(8, long.as_bytes()), 20);
    assert!(matches!(r.next().await, Err(FrameError::TooLong(20))));
    let bad: &[u8] = b"\xff\xfe\n";
    let mut r = LineReader::new(BufReader::new(bad), 20);
    assert!(matches!(r.next().await, Err(FrameError::NotUtf8)));
}

#[tokio::test]
async fn a_cancelled_read_loses_nothing() {
    let (mut w, r) = tokio::io::duplex(64);
    let mut r = LineReader::new(BufReader::new(r), 100);
    w.write_all(b"{\"half\":").await.unwrap_or_default();
    // the read is abandoned halfway through the line, as a select! would
    let first = tokio::time::timeout(Duration::from_millis(50), r.next()).await;
    assert!(first.is_err(), "no whole line yet: {first:?}");
    w.write_all(b"\"line\"}\n").await.unwrap_or_default();
    assert_eq!(
        r.next().await.ok().flatten().as_deref(),
        Some("{\"half\":\"line\"}")
    );
}

#[test]
fn operator_names_are_checked() {
    assert_eq!(proto::check_operator("  bob ").as_deref(), Ok("bob"));
    assert!(proto::check_operator("  ").is_err());
    assert!(proto::check_operator("bo\u{1b}[31mb").is_err());
    assert!(proto::check_operator(&"x".repeat(65)).is_err());
}

#[test]
fn only_operator_decisions_travel_from_a_console() {
    assert!(ClientMsg::from_command(Command::Shutdown).is_none());
    assert!(
        ClientMsg::from_command(Command::Decide(Decision::Abort { reason: "x".into() })).is_none()
    );
    let m = ClientMsg::from_command(Command::Decide(Decision::Retry { step: "s".into() }));
    assert_eq!(
        m,
        Some(ClientMsg::Decide {
            decision: Decision::Retry { step: "s".into() }
        })
    );
}

// ---- socket files -------------------------------------------------------------------------------

#[test]
fn the_socket_is_private_and_removed_when_done() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("run.jsonl.sock");
    let (file, _l) = socket::bind(&path, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
    assert!(socket::is_live(&path));
    // a second run may not take it over while it is live
    assert!(matches!(
        socket::bind(&path, &Default::default()),
        Err(socket::BindError::Live { .. })
    ));
    drop(file);
    assert!(!path.exists(), "removed when the run ends");
}

#[test]
fn a_stale_socket_is_replaced_and_other_files_are_never_touched() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("crashed.sock");
    // a crashed run: the file stays, nothing listens
    let stale = std::os::unix::net::UnixListener::bind(&path).unwrap_or_else(|e| panic!("{e}"));
    drop(stale);
    assert!(path.exists() && !socket::is_live(&path));
    let (file, _l) = socket::bind(&path, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(socket::is_live(&path));
    drop(file);

    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "keep me").unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        socket::bind(&notes, &Default::default()),
        Err(socket::BindError::NotSocket { .. })
    ));
    assert_eq!(
        std::fs::read_to_string(&notes).ok().as_deref(),
        Some("keep me")
    );
}

#[test]
fn a_socket_that_replaced_ours_is_left_alone() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("r.sock");
    let (file, l) = socket::bind(&path, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    drop(l);
    std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let (other, _l2) = socket::bind(&path, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    drop(file);
    assert!(socket::is_live(&path), "another run's socket survives");
    drop(other);
}

#[test]
fn a_path_longer_than_a_unix_socket_holds_still_works() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let deep = dir.path().join("a".repeat(60)).join("b".repeat(60));
    std::fs::create_dir_all(&deep).unwrap_or_else(|e| panic!("{e}"));
    let path = socket::default_for(&deep.join("20261122T020000Z.jsonl"));
    assert!(path.as_os_str().len() > 108);
    let (file, _l) = socket::bind(&path, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(path.exists());
    assert!(socket::is_live(&path));
    drop(file);
    assert!(!path.exists());
}
