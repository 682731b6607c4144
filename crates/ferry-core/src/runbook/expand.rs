//! `${vars.NAME}` and `${env:NAME}` templates. Vars expand when the runbook is
//! loaded; env references stay in the text and expand at run time (so a
//! runbook can be checked on a laptop without the production secrets).

use std::collections::BTreeMap;

/// A problem with one `${...}` reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The literal text of the reference, used to point at it in the source.
    pub token: String,
    pub message: String,
    pub expected: String,
    pub help: Option<String>,
}

/// Every `${...}` in `text`: (byte start, byte end, inner text).
fn references(text: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(pos) = text[i..].find("${") {
        let start = i + pos;
        match text[start + 2..].find('}') {
            Some(len) => {
                let end = start + 2 + len + 1;
                out.push((start, end, &text[start + 2..end - 1]));
                i = end;
            }
            None => break,
        }
    }
    out
}

/// Expand `${vars.X}`; validate `${env:X}`; leave other `${...}` alone.
pub fn expand_vars(text: &str, vars: &BTreeMap<String, String>) -> Result<String, Vec<Problem>> {
    expand_vars_with(text, vars, true)
}

/// [`expand_vars`]; `suggest = false` skips the "did you mean" search (for
/// when the diagnostics are full and would be dropped anyway).
pub fn expand_vars_with(
    text: &str,
    vars: &BTreeMap<String, String>,
    suggest: bool,
) -> Result<String, Vec<Problem>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    let mut last = 0;
    if let Some(token) = unclosed(text) {
        problems.push(Problem {
            message: format!("`{token}` is not closed"),
            expected: "a closing `}`, as in `${vars.NAME}` or `${env:NAME}`".into(),
            help: None,
            token,
        });
    }
    for (start, end, inner) in references(text) {
        let token = &text[start..end];
        if inner == "vars." {
            problems.push(Problem {
                token: token.to_string(),
                message: format!("`{token}` names no variable"),
                expected: "`${vars.NAME}` with a name from [vars]".into(),
                help: None,
            });
        } else if let Some(name) = inner.strip_prefix("vars.") {
            out.push_str(&text[last..start]);
            match vars.get(name) {
                Some(v) => out.push_str(v),
                None => problems.push(Problem {
                    token: token.to_string(),
                    message: format!("unknown variable `{name}` in `{token}`"),
                    expected: if vars.is_empty() || !suggest {
                        "a variable defined in [vars] (this runbook has none)".to_string()
                    } else {
                        format!(
                            "one of the [vars]: {}",
                            super::diag::list_names(vars.keys().map(|s| s.as_str()))
                        )
                    },
                    help: suggest
                        .then(|| super::diag::did_you_mean(name, vars.keys().map(|s| s.as_str())))
                        .flatten(),
                }),
            }
            last = end;
        } else if let Some(name) = inner.strip_prefix("env:") {
            if !is_env_name(name) {
                problems.push(Problem {
                    token: token.to_string(),
                    message: format!("bad environment variable name in `{token}`"),
                    expected: "`${env:NAME}` with NAME made of letters, digits and `_`".into(),
                    help: None,
                });
            }
        } else if let Some(fix) = near_miss(inner) {
            problems.push(Problem {
                token: token.to_string(),
                message: format!("`{token}` is not a ferry reference"),
                expected: "`${vars.NAME}` or `${env:NAME}`".into(),
                help: Some(format!("did you mean `{fix}`?")),
            });
        }
    }
    out.push_str(&text[last..]);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// The start of a ferry reference that has no closing `}` (`${vars.x` or
/// `${env:X`), up to the end of its word. A shell `${` is left alone.
fn unclosed(text: &str) -> Option<String> {
    let mut i = 0;
    while let Some(pos) = text[i..].find("${") {
        let start = i + pos;
        let rest = &text[start + 2..];
        let word_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
            .unwrap_or(rest.len());
        // closed when a `}` comes before the next `${` (a bad name inside
        // is reported as such)
        let closed = match (rest.find('}'), rest.find("${")) {
            (Some(close), Some(next)) => close < next,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !closed && (rest.starts_with("vars.") || rest.starts_with("env:")) {
            return Some(text[start..start + 2 + word_end].to_string());
        }
        i = start + 2;
    }
    None
}

/// A reference that looks like a misspelt ferry reference (not a shell `${VAR}`).
fn near_miss(inner: &str) -> Option<String> {
    for (bad, good) in [
        ("var.", "vars."),
        ("vars:", "vars."),
        ("var:", "vars."),
        ("env.", "env:"),
        ("ENV:", "env:"),
        ("Env:", "env:"),
    ] {
        if let Some(rest) = inner.strip_prefix(bad) {
            return Some(format!("${{{good}{rest}}}"));
        }
    }
    None
}

pub fn is_env_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Names of the environment variables a text refers to with `${env:NAME}`.
pub fn env_refs(text: &str) -> Vec<String> {
    references(text)
        .into_iter()
        .filter_map(|(_, _, inner)| inner.strip_prefix("env:"))
        .filter(|n| is_env_name(n))
        .map(str::to_string)
        .collect()
}

/// Expand `${env:NAME}` from `lookup`. Returns the text, or the names that are unset.
pub fn expand_env(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut last = 0;
    for (start, end, inner) in references(text) {
        if let Some(name) = inner.strip_prefix("env:") {
            out.push_str(&text[last..start]);
            match lookup(name) {
                Some(v) => out.push_str(&v),
                None => missing.push(name.to_string()),
            }
            last = end;
        }
    }
    out.push_str(&text[last..]);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

/// Whether an environment variable's name marks its value as a secret.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["PASSWORD", "SECRET", "TOKEN", "KEY", "PASSWD", "CREDENTIAL"]
        .iter()
        .any(|w| upper.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("db".to_string(), "prod-v2".to_string())]
            .into_iter()
            .collect()
    }

    #[test]
    fn expands_vars_keeps_env_and_shell() {
        let s = expand_vars("rds ${vars.db} ${env:URL} $${HOME} ${HOME}", &vars()).unwrap();
        assert_eq!(s, "rds prod-v2 ${env:URL} $${HOME} ${HOME}");
    }

    #[test]
    fn unknown_var_suggests() {
        let e = expand_vars("x ${vars.dbb}", &vars()).unwrap_err();
        assert_eq!(e[0].token, "${vars.dbb}");
        assert_eq!(e[0].help.as_deref(), Some("did you mean `db`?"));
    }

    #[test]
    fn near_miss_is_flagged() {
        let e = expand_vars("${var.db}", &vars()).unwrap_err();
        assert_eq!(e[0].help.as_deref(), Some("did you mean `${vars.db}`?"));
    }

    #[test]
    fn env_expansion_reports_missing() {
        let r = expand_env("a=${env:A} b=${env:B}", |n| {
            (n == "A").then(|| "1".to_string())
        });
        assert_eq!(r, Err(vec!["B".to_string()]));
        let r = expand_env("a=${env:A}", |_| Some("x".into()));
        assert_eq!(r.unwrap(), "a=x");
    }

    #[test]
    fn secret_names() {
        assert!(is_secret_name("DB_PASSWORD"));
        assert!(is_secret_name("api_token"));
        assert!(!is_secret_name("SOURCE_DATABASE_URL"));
    }
}
