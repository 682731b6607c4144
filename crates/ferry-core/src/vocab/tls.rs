//! TLS on a database connection: the mode a runbook asks for ([`TlsMode`], libpq's
//! `sslmode` names) and what a connection really got ([`ConnectionTls`]), which the
//! journal records as evidence and the report shows per connection.

use serde::{Deserialize, Serialize};
use std::fmt;

/// libpq's `sslmode`, weakest first, so `max` picks the stronger of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Never encrypt.
    Disable,
    /// Encrypt when the server offers it, accept any certificate (libpq's default).
    Prefer,
    /// Always encrypt, accept any certificate: no protection against a man in the middle.
    Require,
    /// Always encrypt; the certificate must be signed by the trusted CA.
    VerifyCa,
    /// As `verify-ca`, and the certificate must name the host connected to.
    VerifyFull,
}

impl TlsMode {
    pub const ALL: [TlsMode; 5] = [
        TlsMode::VerifyFull,
        TlsMode::VerifyCa,
        TlsMode::Require,
        TlsMode::Prefer,
        TlsMode::Disable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }

    /// libpq's spelling (also accepted: `allow`, which ferry reads as `prefer`:
    /// neither verifies, and encrypting when possible is the safer of the two).
    pub fn parse(s: &str) -> Option<TlsMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "disable" => Some(TlsMode::Disable),
            "allow" | "prefer" => Some(TlsMode::Prefer),
            "require" => Some(TlsMode::Require),
            "verify-ca" => Some(TlsMode::VerifyCa),
            "verify-full" => Some(TlsMode::VerifyFull),
            _ => None,
        }
    }

    /// The server's certificate is checked against a CA.
    pub fn verifies(self) -> bool {
        matches!(self, TlsMode::VerifyCa | TlsMode::VerifyFull)
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one connection got, as the server saw it (`pg_stat_ssl`) and as ferry
/// checked it: the evidence that a connection asked to verify TLS did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionTls {
    /// The runbook's connection name.
    pub connection: String,
    /// `host:port` connected to (no user, no password).
    pub at: String,
    /// The mode in force after the runbook's `tls`, the URL's `sslmode` and IAM auth.
    pub mode: TlsMode,
    /// The server reports this session as encrypted.
    pub encrypted: bool,
    /// The server's certificate was verified against `ca` (and, for `verify-full`, its host name).
    pub verified: bool,
    /// The CA file the certificate was checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// TLS protocol and cipher, as the server reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    /// Why the mode is weaker than the connection's auth would want (a runbook's
    /// explicit `tls` below `verify-full` on an IAM auth connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl ConnectionTls {
    /// One line for logs and notes: `target: verified TLS (verify-full, TLSv1.3)`.
    pub fn summary(&self) -> String {
        let state = if self.verified {
            "TLS, certificate verified"
        } else if self.encrypted {
            "TLS, certificate NOT verified"
        } else {
            "NOT encrypted"
        };
        let proto = self
            .protocol
            .as_deref()
            .map(|p| format!(", {p}"))
            .unwrap_or_default();
        format!(
            "{} at {}: {state} ({}{proto})",
            self.connection, self.at, self.mode
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_order_weakest_first_and_parse_libpq_names() {
        assert!(TlsMode::VerifyFull > TlsMode::VerifyCa);
        assert!(TlsMode::VerifyCa > TlsMode::Require);
        assert!(TlsMode::Require > TlsMode::Prefer);
        assert!(TlsMode::Prefer > TlsMode::Disable);
        for m in TlsMode::ALL {
            assert_eq!(TlsMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(TlsMode::parse("allow"), Some(TlsMode::Prefer));
        assert_eq!(TlsMode::parse("VERIFY-FULL"), Some(TlsMode::VerifyFull));
        assert_eq!(TlsMode::parse("verify_full"), None);
        assert_eq!(
            serde_json::to_string(&TlsMode::VerifyCa).unwrap(),
            "\"verify-ca\""
        );
    }
}
