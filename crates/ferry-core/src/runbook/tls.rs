//! TLS on connections: the `tls` and `ca` keys (checked with the format's
//! diagnostics), the libpq URL parameters `sslmode` and `sslrootcert` (and
//! `PGSSLMODE` / `PGSSLROOTCERT`), and [`resolve`], the one rule that turns them,
//! and IAM auth, into the mode a connection runs with. `ferry check` and the
//! engine both use it, so what check promises is what a run does.
//!
//! The rule: the strongest of what the runbook, the URL and the environment ask
//! for wins, so nothing written anywhere is silently weakened. IAM auth and a
//! runbook `ca` imply `verify-full`; a runbook may still write a weaker `tls`
//! next to `iam_auth`, and `ferry check` warns about it.

use super::diag::{did_you_mean, Diagnostic};
use super::model::Connection;
use super::reader::{Node, Reader};
use crate::vocab::TlsMode;

const MODES: &str = "one of: verify-full, verify-ca, require, prefer, disable";

/// Read `tls` and `ca` of connection `name` (whose URL is `url`, when it has one).
pub(super) fn parse_keys(
    r: &mut Reader<'_>,
    t: Node<'_>,
    name: &str,
    url: Option<&str>,
) -> (Option<TlsMode>, Option<String>) {
    let ctx = format!("connection `{name}`");
    let tls = r.str_opt(t, "tls", &ctx).and_then(|(s, span)| {
        let mode = TlsMode::ALL.into_iter().find(|m| m.as_str() == s);
        if mode.is_none() {
            let help = TlsMode::parse(&s)
                .map(|m| format!("libpq spells it `{m}`; write `tls = \"{m}\"`"))
                .or_else(|| did_you_mean(&s, TlsMode::ALL.iter().map(|m| m.as_str())));
            r.error(
                Diagnostic::new(Some(span), format!("bad value `{s}` for `tls` in {ctx}"))
                    .expected(MODES)
                    .help_opt(help),
            );
        }
        mode
    });
    let ca = r.str_opt(t, "ca", &ctx).and_then(|(s, span)| {
        if s.trim().is_empty() {
            r.error(
                Diagnostic::new(Some(span), format!("`ca` of {ctx} is empty"))
                    .expected("the path of a PEM file of CA certificates, like \"/etc/ssl/certs/rds-global-bundle.pem\""),
            );
            return None;
        }
        Some(s)
    });
    let key_span = |k: &str| t.get(k).and_then(|(s, _)| s);
    if url.is_some_and(|u| u.starts_with("sqlite:")) {
        for key in ["tls", "ca"] {
            if t.get(key).is_some() {
                r.error(
                    Diagnostic::new(
                        key_span(key),
                        format!("`{key}` on connection `{name}`, which is SQLite"),
                    )
                    .expected("`tls` and `ca` only on a postgres:// connection"),
                );
            }
        }
        return (tls, ca);
    }
    if let (Some(mode), Some(_)) = (tls, &ca) {
        if !mode.verifies() {
            r.error(
                Diagnostic::new(
                    key_span("ca"),
                    format!("`ca` on {ctx}, whose `tls = \"{mode}\"` checks no certificate"),
                )
                .expected("`tls = \"verify-full\"` or `tls = \"verify-ca\"` with `ca`")
                .help("`ca` alone implies verify-full; remove `tls`, or remove `ca`"),
            );
        }
    }
    if let Some(Err(bad)) = url
        .and_then(|u| url_param(u, &["sslmode", "ssl-mode"]).map(|v| TlsMode::parse(&v).ok_or(v)))
    {
        r.error(
            Diagnostic::new(
                t.get("url").and_then(|(_, i)| super::reader::item_span(i)),
                format!("the URL of {ctx} has `sslmode={bad}`, which libpq does not know"),
            )
            .expected("sslmode=verify-full, verify-ca, require, prefer, allow or disable")
            .help_opt(did_you_mean(&bad, TlsMode::ALL.iter().map(|m| m.as_str()))),
        );
    }
    (tls, ca)
}

/// The value of the first of `keys` in the URL's query string, percent-decoded.
pub fn url_param(url: &str, keys: &[&str]) -> Option<String> {
    let query = url.split_once('?')?.1.split('#').next().unwrap_or("");
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        keys.iter()
            .any(|want| k.eq_ignore_ascii_case(want))
            .then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The host a postgres URL names (`None` when it comes from the environment).
/// An empty host, a socket directory or a `host=` query parameter naming one
/// count as local.
pub fn url_host(url: &str) -> Option<String> {
    if url.contains("${env:") && url.split("://").nth(1).is_none_or(|r| r.starts_with("${")) {
        return None;
    }
    let rest = url.split_once("://")?.1;
    if let Some(h) = url_param(url, &["host"]) {
        return Some(h);
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.contains("${") {
        return None;
    }
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        hostport.split(':').next().unwrap_or("")
    };
    Some(percent_decode(host))
}

/// Loopback, a Unix socket, or the default (a local socket).
pub fn is_local_host(host: &str) -> bool {
    let h = host.trim().to_ascii_lowercase();
    h.is_empty()
        || h.starts_with('/')
        || h == "localhost"
        || h == "::1"
        || h.parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The TLS a connection runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub mode: TlsMode,
    /// The CA file: the runbook's `ca`, else the URL's `sslrootcert`, else `PGSSLROOTCERT`.
    pub ca: Option<String>,
    /// A weaker mode than IAM auth implies, written explicitly in the runbook.
    pub warning: Option<String>,
}

/// Apply the rule (module doc) to connection `c`, whose expanded URL is `url`;
/// `env` gives `PGSSLMODE` and `PGSSLROOTCERT` as libpq reads them. Errors name
/// the connection.
pub fn resolve(
    c: &Connection,
    url: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, String> {
    let name = &c.name;
    let url_mode = match url_param(url, &["sslmode", "ssl-mode"]).or_else(|| env("PGSSLMODE")) {
        None => None,
        Some(v) => Some(TlsMode::parse(&v).ok_or_else(|| {
            format!("connection `{name}`: unknown sslmode `{v}` (expected {MODES})")
        })?),
    };
    let url_ca = url_param(url, &["sslrootcert", "ssl-root-cert", "ssl-ca"])
        .or_else(|| env("PGSSLROOTCERT"))
        .filter(|s| !s.is_empty());
    let ca = match (&c.ca, url_ca) {
        (Some(a), Some(b)) if *a != b => {
            return Err(format!(
                "connection `{name}`: `ca` is {a} but the URL (or PGSSLROOTCERT) says sslrootcert={b}; name one CA file"
            ))
        }
        (Some(a), _) => Some(a.clone()),
        (None, b) => b,
    };
    let implied = if c.iam_auth.is_some() || c.iam_auth_off.is_some() || c.ca.is_some() {
        TlsMode::VerifyFull
    } else {
        TlsMode::Prefer
    };
    let asked = c.tls.unwrap_or(implied);
    let mode = url_mode.map_or(asked, |u| u.max(asked));
    let warning = (c.iam_auth.is_some() && mode < TlsMode::VerifyFull).then(|| {
        format!(
            "connection `{name}` sends its IAM auth token over `tls = \"{mode}\"`: {}",
            if mode.verifies() {
                "the certificate's host name is not checked"
            } else {
                "anyone on the network path can present a certificate and take the token"
            }
        )
    });
    Ok(Resolved { mode, ca, warning })
}

/// What `ferry check` warns about for connection `c`: an IAM auth connection
/// weaker than `verify-full`, a connection that may be unencrypted to a host
/// that is not loopback, a verifying connection with no `ca`.
pub fn check_warnings(c: &Connection) -> Vec<String> {
    if c.url.starts_with("sqlite:") {
        return Vec::new();
    }
    let name = &c.name;
    let mut out = Vec::new();
    let from_env = url_host(&c.url).is_none();
    // at check time the environment is not read: only what the file says
    let Ok(r) = resolve(c, if from_env { "" } else { &c.url }, &|_| None) else {
        return out;
    };
    if let Some(w) = &r.warning {
        out.push(format!("{w} (IAM auth implies verify-full)"));
    }
    if let Some(a) = &c.iam_auth_off {
        out.push(format!(
            "connection `{name}` has `iam_auth` switched off (`enabled = false`): it signs no IAM token for `{}` and sends the password of its URL",
            a.instance
        ));
    }
    if r.mode <= TlsMode::Prefer {
        match url_host(&c.url) {
            Some(h) if is_local_host(&h) => {}
            Some(h) => out.push(format!(
                "connection `{name}` to {h} may be unencrypted (tls `{}`): set `tls = \"verify-full\"` and `ca`",
                r.mode
            )),
            None if c.tls.is_none() => out.push(format!(
                "connection `{name}` takes its URL from the environment and sets no `tls`: unless that URL says sslmode=verify-full, it may be unencrypted (set `tls = \"verify-full\"` and `ca`)"
            )),
            None => out.push(format!(
                "connection `{name}` has `tls = \"{}\"`: unless its host (from the environment) is loopback, it may be unencrypted",
                r.mode
            )),
        }
    }
    if r.mode.verifies() && r.ca.is_none() && !from_env {
        out.push(format!(
            "connection `{name}` verifies TLS against the bundled web roots only (no `ca`){}",
            if c.iam_auth.is_some() {
                ": RDS certificates are signed by the RDS CA; set `ca` to its bundle"
            } else {
                ""
            }
        ));
    } else if r.mode.verifies() && c.ca.is_none() && from_env && c.iam_auth.is_some() {
        out.push(format!(
            "connection `{name}` uses IAM auth (verify-full) with no `ca`: unless its URL gives sslrootcert, RDS certificates will be refused; set `ca` to the RDS bundle"
        ));
    }
    if let Some(ca) = &c.ca {
        if !ca.contains("${") && !std::path::Path::new(ca).exists() {
            out.push(format!(
                "connection `{name}`: the CA file {ca} does not exist here (it must on the host that runs the cutover)"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::model::IamAuth;

    fn conn(url: &str, tls: Option<TlsMode>, ca: Option<&str>, iam: bool) -> Connection {
        Connection {
            name: "db".into(),
            title: None,
            url: url.into(),
            iam_auth: iam.then(|| IamAuth {
                instance: "prod".into(),
                user: None,
            }),
            iam_auth_off: None,
            tls,
            ca: ca.map(str::to_string),
        }
    }

    fn mode(c: &Connection, url: &str) -> TlsMode {
        resolve(c, url, &|_| None).unwrap().mode
    }

    #[test]
    fn the_strongest_request_wins_and_iam_never_downgrades() {
        let u = "postgres://u@db.example.com/app";
        assert_eq!(mode(&conn(u, None, None, false), u), TlsMode::Prefer);
        let req = format!("{u}?sslmode=require");
        assert_eq!(mode(&conn(&req, None, None, false), &req), TlsMode::Require);
        // IAM auth: the URL's require is raised to verify-full
        assert_eq!(
            mode(&conn(&req, None, None, true), &req),
            TlsMode::VerifyFull
        );
        let dis = format!("{u}?sslmode=disable");
        assert_eq!(
            mode(&conn(&dis, None, None, true), &dis),
            TlsMode::VerifyFull
        );
        // a URL stronger than the runbook's tls wins
        let vf = format!("{u}?sslmode=verify-full");
        let c = conn(&vf, Some(TlsMode::Require), None, false);
        assert_eq!(mode(&c, &vf), TlsMode::VerifyFull);
        // the runbook may weaken IAM auth's default only by writing it, with a warning
        let c = conn(u, Some(TlsMode::Require), None, true);
        let r = resolve(&c, u, &|_| None).unwrap();
        assert_eq!(r.mode, TlsMode::Require);
        assert!(r.warning.unwrap().contains("IAM auth token"));
        // `ca` alone implies verify-full
        assert_eq!(
            mode(&conn(u, None, Some("/ca.pem"), false), u),
            TlsMode::VerifyFull
        );
    }

    #[test]
    fn libpq_environment_and_url_parameters_are_honoured() {
        let u = "postgres://u@db.example.com/app?sslrootcert=%2Fetc%2Fca.pem";
        let env = |k: &str| (k == "PGSSLMODE").then(|| "verify-ca".to_string());
        let r = resolve(&conn(u, None, None, false), u, &env).unwrap();
        assert_eq!(r.mode, TlsMode::VerifyCa);
        assert_eq!(r.ca.as_deref(), Some("/etc/ca.pem"));
        let c = conn(u, None, Some("/other.pem"), false);
        let e = resolve(&c, u, &|_| None).unwrap_err();
        assert!(
            e.contains("connection `db`") && e.contains("/other.pem"),
            "{e}"
        );
        let bad = "postgres://u@h/app?sslmode=verify_full";
        let e = resolve(&conn(bad, None, None, false), bad, &|_| None).unwrap_err();
        assert!(e.contains("unknown sslmode `verify_full`"), "{e}");
    }

    #[test]
    fn hosts_and_warnings() {
        assert_eq!(
            url_host("postgres://u@127.0.0.1:5432/x").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(url_host("postgres://[::1]:5/x").as_deref(), Some("::1"));
        assert_eq!(
            url_host("postgres:///x?host=/run/pg").as_deref(),
            Some("/run/pg")
        );
        assert_eq!(url_host("${env:URL}"), None);
        assert!(is_local_host("127.0.0.2") && is_local_host("") && !is_local_host("10.0.0.5"));
        let w = check_warnings(&conn("postgres://u@10.0.0.5/app", None, None, false));
        assert!(w[0].contains("10.0.0.5 may be unencrypted"), "{w:?}");
        assert!(check_warnings(&conn("postgres://u@localhost/app", None, None, false)).is_empty());
        let w = check_warnings(&conn("${env:X}", Some(TlsMode::Require), None, true));
        assert!(w.iter().any(|x| x.contains("IAM auth token")), "{w:?}");
        let w = check_warnings(&conn("${env:X}", None, None, false));
        assert!(w[0].contains("from the environment"), "{w:?}");
    }
}
