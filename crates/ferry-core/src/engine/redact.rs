//! Secrets never leak: every line of step output, every error and every URL shown
//! to the operator (or written to the journal) passes through a [`Redactor`] first.
//!
//! A redactor knows two kinds of secret: strings registered with [`Redactor::add`]
//! (URL passwords, values of `*_PASSWORD`/`*_TOKEN`-style environment variables)
//! and any password written in a URL's user-info (`scheme://user:PASSWORD@host`),
//! which is masked even when nobody registered it.

use std::fmt;

/// What a secret is replaced with.
pub const MASK: &str = "••••••";

/// Secrets shorter than this are not registered: masking `"on"` or `"1"` would
/// garble ordinary output and protect nothing.
const MIN_SECRET_LEN: usize = 4;

/// A set of secret strings, and the rule that masks URL passwords.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is masked whole.
    secrets: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secrets themselves.
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a secret, and the forms a program may print it in: each line of
    /// a multi-line secret (a PEM key is printed, and read back, line by line),
    /// JSON-escaped (`"` → `\"`) and percent-encoded (`@` → `%40`). Secrets
    /// shorter than 4 characters are ignored.
    pub fn add(&mut self, secret: &str) {
        self.add_one(secret);
        if secret.contains(['\n', '\r']) {
            for line in secret.lines() {
                self.add_one(line.trim());
            }
        }
        if let Ok(json) = serde_json::to_string(secret) {
            self.add_one(&json[1..json.len() - 1]);
        }
        self.add_one(&percent_encode(secret, false));
        self.add_one(&percent_encode(secret, true));
    }

    fn add_one(&mut self, secret: &str) {
        if secret.chars().count() < MIN_SECRET_LEN || self.secrets.iter().any(|s| s == secret) {
            return;
        }
        self.secrets.push(secret.to_string());
        self.secrets
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// Register the password of a URL (`user:PASSWORD@` or `?password=PASSWORD`,
    /// which libpq and sqlx accept too), both as written and percent-decoded.
    pub fn add_url(&mut self, url: &str) {
        for raw in url_password_raw(url).into_iter().chain(query_password(url)) {
            self.add(&raw);
            let decoded = percent_decode(&raw);
            if decoded != raw {
                self.add(&decoded);
            }
        }
    }

    /// `text` with every known secret and every URL password replaced by [`MASK`].
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        mask_query_passwords(&mask_url_passwords(&out))
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

/// The password in `postgres://user:pw@host/...`, percent-decoded (`p%40ss` → `p@ss`).
/// `None` when the URL has no password. [`Redactor::add_url`] registers both forms.
pub fn url_password(url: &str) -> Option<String> {
    url_password_raw(url).map(|raw| percent_decode(&raw))
}

/// The password exactly as written in the URL.
fn url_password_raw(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..authority_len(rest)];
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then(|| password.to_string())
}

/// The value of a `password=` query parameter of `url`, as written.
fn query_password(url: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    let query = query.split('#').next().unwrap_or_default();
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.eq_ignore_ascii_case("password") && !v.is_empty()).then(|| v.to_string())
    })
}

/// Replace the value of every `?password=` / `&password=` in `text`.
fn mask_query_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let lower = rest.to_ascii_lowercase();
        let Some(pos) = ["?password=", "&password="]
            .iter()
            .filter_map(|k| lower.find(k))
            .min()
        else {
            break;
        };
        let after = pos + "?password=".len();
        out.push_str(&rest[..after]);
        rest = &rest[after..];
        let end = rest
            .find(|c: char| matches!(c, '&' | '#' | '"' | '\'') || c.is_whitespace())
            .unwrap_or(rest.len());
        if end > 0 {
            out.push_str(MASK);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Length of the authority part (`user:pw@host:port`) at the start of `rest`.
fn authority_len(rest: &str) -> usize {
    rest.find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
        .unwrap_or(rest.len())
}

/// Replace the password of every `scheme://user:password@` in `text`.
fn mask_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let after = pos + 3;
        out.push_str(&rest[..after]);
        rest = &rest[after..];
        let authority = &rest[..authority_len(rest)];
        let userinfo = authority.rsplit_once('@').map(|(u, _)| u);
        if let Some((userinfo, (user, password))) =
            userinfo.and_then(|u| u.split_once(':').map(|up| (u, up)))
        {
            if !password.is_empty() {
                out.push_str(user);
                out.push(':');
                out.push_str(MASK);
                rest = &rest[userinfo.len()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `s` with every byte outside RFC 3986's unreserved set written `%XX`.
fn percent_encode(s: &str, lower: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decode `%XX` escapes; malformed escapes are kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_masked_everywhere() {
        let mut r = Redactor::new();
        r.add("hunter22");
        assert_eq!(
            r.redact("pw=hunter22; again hunter22"),
            format!("pw={MASK}; again {MASK}")
        );
    }

    #[test]
    fn short_secrets_are_ignored() {
        let mut r = Redactor::new();
        r.add("abc");
        r.add("");
        assert!(r.is_empty());
        assert_eq!(r.redact("abc"), "abc");
    }

    #[test]
    fn longer_secret_wins_over_its_prefix() {
        let mut r = Redactor::new();
        r.add("secret");
        r.add("secret-and-more");
        assert_eq!(r.redact("x secret-and-more y"), format!("x {MASK} y"));
    }

    #[test]
    fn unregistered_url_passwords_are_masked() {
        let r = Redactor::new();
        assert_eq!(
            r.redact("connect postgres://app:s3cr3t@db:5432/app failed"),
            format!("connect postgres://app:{MASK}@db:5432/app failed")
        );
        // No password, or no user-info: unchanged.
        assert_eq!(r.redact("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(
            r.redact("https://example.com/a:b@c"),
            "https://example.com/a:b@c"
        );
        // Two URLs in one line, and a password containing '@'.
        assert_eq!(
            r.redact("a://u:p@ss@h b://v:q@h2"),
            format!("a://u:{MASK}@h b://v:{MASK}@h2")
        );
    }

    #[test]
    fn query_parameter_passwords_are_registered_and_masked() {
        let mut r = Redactor::new();
        r.add_url("postgres://app@db/app?sslmode=require&password=qp%40ss99");
        assert_eq!(
            r.redact("got qp@ss99 and qp%40ss99"),
            format!("got {MASK} and {MASK}")
        );
        // an unregistered one in any text is masked too
        let r = Redactor::new();
        assert_eq!(
            r.redact("postgres://u@h/d?Password=abc123&x=1 and ?password=zz9 end"),
            format!("postgres://u@h/d?Password={MASK}&x=1 and ?password={MASK} end")
        );
        assert_eq!(r.redact("no ?password= here"), "no ?password= here");
    }

    #[test]
    fn url_password_is_decoded_and_both_forms_are_registered() {
        assert_eq!(
            url_password("postgres://u:p%40ss%2Fw@h/db").as_deref(),
            Some("p@ss/w")
        );
        assert_eq!(url_password("postgres://u@h/db"), None);
        assert_eq!(url_password("postgres://u:@h/db"), None);
        assert_eq!(url_password("sqlite:///tmp/x.db"), None);
        let mut r = Redactor::new();
        r.add_url("postgres://u:p%40ss%2Fw@h/db");
        assert_eq!(
            r.redact("pw p@ss/w and p%40ss%2Fw"),
            format!("pw {MASK} and {MASK}")
        );
    }

    #[test]
    fn printed_forms_of_a_secret_are_masked_too() {
        let mut r = Redactor::new();
        r.add("p@ss w/\"rd\\x");
        // JSON-escaped, as `jq` or a JSON log prints it
        assert_eq!(
            r.redact(r#"{"pw":"p@ss w/\"rd\\x"}"#),
            format!(r#"{{"pw":"{MASK}"}}"#)
        );
        // percent-encoded, as in a URL, upper or lower case
        assert_eq!(
            r.redact("u:p%40ss%20w%2F%22rd%5Cx@h"),
            format!("u:{MASK}@h")
        );
        assert_eq!(
            r.redact("u:p%40ss%20w%2f%22rd%5cx@h"),
            format!("u:{MASK}@h")
        );
        // a multi-line secret (a PEM key) arrives one line at a time
        let mut r = Redactor::new();
        r.add("-----BEGIN KEY-----\nMIIEvQIBADANBgkq\nAQEFAASCBKcwggSj\n-----END KEY-----\n");
        for line in ["MIIEvQIBADANBgkq", "AQEFAASCBKcwggSj"] {
            assert_eq!(r.redact(line), MASK, "{line}");
        }
    }

    #[test]
    fn malformed_escapes_are_kept() {
        assert_eq!(percent_decode("a%zzb%4"), "a%zzb%4");
        assert_eq!(percent_decode("%41%"), "A%");
    }

    #[test]
    fn debug_does_not_show_secrets() {
        let mut r = Redactor::new();
        r.add("topsecret");
        assert!(!format!("{r:?}").contains("topsecret"));
    }
}
