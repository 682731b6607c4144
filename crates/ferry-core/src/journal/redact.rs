//! Redaction of a serialized journal entry that keeps it a valid entry: every
//! string *value* is decoded, redacted and re-encoded; keys, numbers,
//! `true`/`false`/`null`, punctuation and the entry's own enum tags are left alone.

/// One string value to mask: its byte range in the JSON text and what replaces it.
struct Mask {
    start: usize,
    end: usize,
    with: String,
}

/// The string values of `json` that `redact` changes (keys are left alone).
fn masks(json: &str, redact: &dyn Fn(&str) -> String) -> Vec<Mask> {
    let bytes = json.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        // find the closing quote, stepping over escapes
        let start = i;
        i += 1;
        while i < bytes.len() && bytes[i] != b'"' {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        if i >= bytes.len() {
            break;
        }
        i += 1;
        if bytes.get(i) == Some(&b':') {
            continue; // an object key
        }
        let Some(literal) = json.get(start..i) else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<String>(literal) else {
            continue;
        };
        let masked = redact(&value);
        if masked != value {
            if let Ok(with) = serde_json::to_string(&masked) {
                out.push(Mask {
                    start,
                    end: i,
                    with,
                });
            }
        }
    }
    out
}

fn apply(json: &str, masks: &[&Mask]) -> String {
    let mut out = String::with_capacity(json.len());
    let mut copied = 0;
    for m in masks {
        out.push_str(&json[copied..m.start]);
        out.push_str(&m.with);
        copied = m.end;
    }
    out.push_str(&json[copied..]);
    out
}

/// `json` (compact, as `serde_json::to_string` writes it) with `redact`
/// applied to each string value.
#[cfg(test)]
fn string_values(json: &str, redact: &dyn Fn(&str) -> String) -> String {
    let all = masks(json, redact);
    apply(json, &all.iter().collect::<Vec<_>>())
}

/// `json` with `redact` applied to each string value that `valid` still
/// accepts masked. A value whose masking breaks the text is structure (an enum
/// tag such as `"kind":"event"`, a unit variant such as `"confirm":"operator"`)
/// that happens to equal a secret: ferry's own words, which reveal nothing.
/// When `json` itself is not `valid`, every value is masked.
pub(super) fn string_values_keeping(
    json: &str,
    redact: &dyn Fn(&str) -> String,
    valid: &dyn Fn(&str) -> bool,
) -> String {
    let all = masks(json, redact);
    if all.is_empty() {
        return json.to_string();
    }
    let everything: Vec<&Mask> = all.iter().collect();
    let masked = apply(json, &everything);
    if valid(&masked) || !valid(json) {
        return masked;
    }
    // rare: find the values that must stay, one at a time
    let mut kept: Vec<&Mask> = Vec::new();
    for m in &all {
        kept.push(m);
        if !valid(&apply(json, &kept)) {
            kept.pop();
        }
    }
    apply(json, &kept)
}

#[cfg(test)]
mod tests {
    use super::{string_values, string_values_keeping};

    fn mask(secret: &'static str) -> impl Fn(&str) -> String {
        move |t: &str| t.replace(secret, "••")
    }

    #[test]
    fn only_string_values_change_and_the_json_stays_valid() {
        let json =
            r#"{"kind":"note","ok":true,"n":2026,"text":"kind true 2026","list":["true","x"]}"#;
        for secret in ["true", "kind", "2026", "note"] {
            let out = string_values(json, &mask(secret));
            let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
            assert!(v.is_object(), "{secret}: {out}");
            assert_eq!(v["ok"], serde_json::json!(true), "{secret}: {out}");
            assert_eq!(v["n"], serde_json::json!(2026), "{secret}: {out}");
            assert!(
                !v["text"].as_str().unwrap_or(secret).contains(secret),
                "{secret}: {out}"
            );
        }
        assert_eq!(
            string_values(json, &mask("true")),
            r#"{"kind":"note","ok":true,"n":2026,"text":"kind •• 2026","list":["••","x"]}"#
        );
    }

    #[test]
    fn values_whose_masking_breaks_the_entry_stay() {
        let json = r#"{"kind":"event","text":"an event"}"#;
        let valid = |t: &str| t.starts_with(r#"{"kind":"event""#);
        assert_eq!(
            string_values_keeping(json, &mask("event"), &valid),
            r#"{"kind":"event","text":"an ••"}"#
        );
    }

    #[test]
    fn escaped_secrets_are_found_and_stay_escaped() {
        let json = serde_json::to_string(&serde_json::json!({"line": "pw=a\"b\\c\nd end"}))
            .unwrap_or_default();
        let out = string_values(&json, &mask("a\"b\\c\nd"));
        assert_eq!(out, r#"{"line":"pw=•• end"}"#);
    }
}
