//! SQL text helpers for everything that writes SQL (copy, verify, monitors): identifier
//! and literal quoting, and the error texts and error classes (retry or stop) of the
//! servers ferry talks to.

use sqlx::postgres::PgDatabaseError;

/// `name` as a quoted identifier (PostgreSQL and SQLite both accept this form).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `schema.name`, both quoted.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// A PostgreSQL string literal that means `value` whatever `standard_conforming_strings`
/// is set to: `E'...'` with backslashes doubled when the value has any.
pub fn pg_literal(value: &str) -> String {
    if value.contains('\\') {
        format!("E'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

/// A database error as text: the server's message, its SQLSTATE and, for
/// PostgreSQL, the detail (which quotes the offending key or value).
pub fn error_text(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => {
            let mut s = db.message().to_string();
            if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
                if let Some(detail) = pg.detail() {
                    s.push_str(" — ");
                    s.push_str(detail);
                }
                if let Some(w) = pg.r#where() {
                    s.push_str(" (");
                    s.push_str(&w.replace('\n', "; "));
                    s.push(')');
                }
            }
            if let Some(code) = db.code() {
                s.push_str(&format!(" [SQLSTATE {code}]"));
            }
            s
        }
        other => other.to_string(),
    }
}

/// Whether retrying the same work on a fresh connection may succeed: the connection
/// dropped, the server is restarting, or a transient conflict. Constraint violations,
/// type errors and the like are not retried.
pub fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            if db.try_downcast_ref::<PgDatabaseError>().is_some() {
                // 08: connection exception; 57P01-03: admin shutdown, crash shutdown,
                // cannot connect now; 40001/40P01: serialization failure, deadlock;
                // 53300: too many connections.
                code.starts_with("08")
                    || matches!(
                        code.as_str(),
                        "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "53300"
                    )
            } else if let Some(m) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                // 1040 too many connections, 1053 server shutdown in progress, 1205 lock
                // wait timeout, 1213 deadlock, 1927 connection killed, 2006/2013
                // server gone away / lost connection; SQLSTATE 08: connection exception.
                code.starts_with("08")
                    || matches!(m.number(), 1040 | 1053 | 1205 | 1213 | 1927 | 2006 | 2013)
            } else {
                // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6), with extended codes.
                code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
            }
        }
        _ => false,
    }
}

/// `bytes` as lower-case hex digits, without a prefix.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Bytes from hex digits; `None` for an odd length or a non-hex digit.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(ident("MixedCase"), "\"MixedCase\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(qualified("s", "t"), "\"s\".\"t\"");
        assert_eq!(pg_literal("it's"), "'it''s'");
        assert_eq!(pg_literal("a\\b'c"), "E'a\\\\b''c'");
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(unhex(&hex(&[0, 1, 254, 255])), Some(vec![0, 1, 254, 255]));
    }
}
