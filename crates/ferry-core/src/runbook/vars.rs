//! `--var KEY=VALUE` and `--vars FILE.toml`: values that override a runbook's
//! `[vars]` for one run, so one runbook serves staging, production and the
//! test rig. A vars file holds `key = value` lines (strings, integers or
//! booleans, as `[vars]` does); `--var` wins over the file, the file over the
//! runbook. Only names the runbook declares may be overridden: a typo must not
//! silently leave the production value in place.
//!
//! What is journaled of each value is [`VarUsed`]: a var named like a secret
//! (`*password*`, `*token*`, `*key*`…) is masked; a `${env:NAME}` value is kept
//! as the reference, whose value is read at run time and never written down.

use super::diag::{did_you_mean, list_names, Diagnostic, Report};
use super::expand::{expand_vars, is_secret_name};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

/// Where the value of a var came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum VarSource {
    /// The runbook's own `[vars]`.
    Runbook,
    /// A `--vars FILE` file.
    File { path: String },
    /// `--var KEY=VALUE`.
    CommandLine,
}

impl std::fmt::Display for VarSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarSource::Runbook => f.write_str("runbook"),
            VarSource::File { path } => write!(f, "--vars {path}"),
            VarSource::CommandLine => f.write_str("--var"),
        }
    }
}

/// One value given for a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub value: String,
    pub source: VarSource,
    /// The key's span in the vars file, to point at it.
    span: Option<Range<usize>>,
}

/// The values given for a run, by var name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub entries: BTreeMap<String, Override>,
    /// The vars file's path and text, for diagnostics.
    file: Option<(String, String)>,
}

/// What is journaled (and shown by `ferry check`) of one var used by a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VarUsed {
    pub name: String,
    /// The value as used; `None` when masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub masked: bool,
    #[serde(flatten)]
    pub source: VarSource,
}

impl VarUsed {
    /// The value as people read it: masked vars say so.
    pub fn shown(&self) -> String {
        match &self.value {
            Some(v) => v.clone(),
            None => format!("{MASK} (masked: named like a secret)"),
        }
    }
}

/// What a masked value is shown as (the same as the redactor's mask).
pub const MASK: &str = "••••••";

/// Whether a var's value is kept out of the journal, the screen and reports.
pub fn is_masked(name: &str) -> bool {
    is_secret_name(name)
}

/// Why the given values cannot be used.
#[derive(Debug, Clone, PartialEq)]
pub enum VarsError {
    /// The vars file does not read, or names a var the runbook lacks:
    /// diagnostics at the file's line and column, rendered.
    File(String),
    /// A `--var` argument is malformed or names a var the runbook lacks.
    Arg(String),
}

impl std::fmt::Display for VarsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarsError::File(s) => f.write_str(s.trim_end()),
            VarsError::Arg(s) => write!(f, "error: {s}"),
        }
    }
}

impl Overrides {
    /// The values of `--vars FILE` (if any) and the `--var KEY=VALUE` arguments,
    /// in that order of precedence (a `--var` wins).
    pub fn from_args(file: Option<&Path>, args: &[String]) -> Result<Overrides, VarsError> {
        let mut o = match file {
            Some(p) => read_file(p)?,
            None => Overrides::default(),
        };
        for a in args {
            let (k, v) = parse_arg(a).map_err(VarsError::Arg)?;
            o.entries.insert(
                k,
                Override {
                    value: v,
                    source: VarSource::CommandLine,
                    span: None,
                },
            );
        }
        Ok(o)
    }

    /// Plain values (no origin), as the runbook loader takes them.
    pub fn values(&self) -> BTreeMap<String, String> {
        self.entries
            .iter()
            .map(|(k, o)| (k.clone(), o.value.clone()))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every given name must be one of the runbook's `[vars]`.
    pub fn check_declared(&self, declared: &BTreeMap<String, String>) -> Result<(), VarsError> {
        let names = || declared.keys().map(|s| s.as_str());
        let expected = if declared.is_empty() {
            "a name from the runbook's [vars] (it has none)".to_string()
        } else {
            format!("one of the runbook's [vars]: {}", list_names(names()))
        };
        let mut file_diags = Vec::new();
        for (k, o) in &self.entries {
            if declared.contains_key(k) {
                continue;
            }
            let msg = format!("unknown variable `{k}`: the runbook has no such [vars] entry");
            match o.source {
                VarSource::CommandLine => {
                    let hint = did_you_mean(k, names())
                        .map(|h| format!("\n  = help: {h}"))
                        .unwrap_or_default();
                    return Err(VarsError::Arg(format!(
                        "--var {k}=…: {msg}\n  = expected: {expected}{hint}"
                    )));
                }
                _ => file_diags.push(
                    Diagnostic::new(o.span.clone(), msg)
                        .expected(expected.clone())
                        .help_opt(did_you_mean(k, names())),
                ),
            }
        }
        if file_diags.is_empty() {
            Ok(())
        } else {
            let (path, text) = self.file.clone().unwrap_or_default();
            Err(VarsError::File(render_file(&path, &text, file_diags)))
        }
    }

    /// What a run journals of its vars: every var of the runbook with the value
    /// used and where it came from, masked where named like a secret.
    pub fn used(&self, vars: &BTreeMap<String, String>) -> Vec<VarUsed> {
        vars.iter()
            .map(|(k, v)| {
                let masked = is_masked(k);
                VarUsed {
                    name: k.clone(),
                    value: (!masked).then(|| v.clone()),
                    masked,
                    source: self
                        .entries
                        .get(k)
                        .map(|o| o.source.clone())
                        .unwrap_or(VarSource::Runbook),
                }
            })
            .collect()
    }

    /// The values a resumed run uses: the journaled ones, with any value given
    /// again checked against them (a changed value is refused: the run began
    /// with the other one). A masked var was not journaled: one the first
    /// session took from `--var`/`--vars` must be given again (the runbook's
    /// value would silently replace it), one from the runbook comes from it;
    /// either way it is listed in the second value, as not compared.
    pub fn for_resume(
        &self,
        journaled: &[VarUsed],
        declared: &BTreeMap<String, String>,
    ) -> Result<(Overrides, Vec<String>), VarsError> {
        let mut out = Overrides {
            entries: BTreeMap::new(),
            file: self.file.clone(),
        };
        let mut not_compared = Vec::new();
        for j in journaled {
            if !declared.contains_key(&j.name) {
                continue; // the runbook no longer has it (changes are accepted or refused by step)
            }
            let given = self.entries.get(&j.name);
            match (&j.value, given) {
                (Some(was), Some(now)) if &now.value != was => {
                    return Err(VarsError::Arg(format!(
                        "{} sets `{}` to `{}`, but this run began with `{}` ({}); a resumed run keeps the values it began with\n  = help: resume without that value (the journaled one is used), or start a new run",
                        now.source, j.name, now.value, was, j.source
                    )));
                }
                (Some(was), _) => {
                    out.entries.insert(
                        j.name.clone(),
                        Override {
                            value: was.clone(),
                            source: j.source.clone(),
                            span: None,
                        },
                    );
                }
                (None, Some(now)) => {
                    out.entries.insert(j.name.clone(), now.clone());
                    not_compared.push(j.name.clone());
                }
                (None, None) if j.source != VarSource::Runbook => {
                    return Err(VarsError::Arg(format!(
                        "`{}` is named like a secret, so the journal does not hold the value this run began with ({}); give it again\n  = help: pass the same --vars file or --var {}=… with --resume",
                        j.name, j.source, j.name
                    )));
                }
                (None, None) => not_compared.push(j.name.clone()),
            }
        }
        // given now for a var the journal does not name (an older journal)
        for (k, o) in &self.entries {
            out.entries.entry(k.clone()).or_insert_with(|| o.clone());
        }
        Ok((out, not_compared))
    }
}

/// `KEY=VALUE`; the value may be empty and may contain `=`.
pub fn parse_arg(a: &str) -> Result<(String, String), String> {
    let Some((k, v)) = a.split_once('=') else {
        return Err(format!(
            "--var `{a}` has no `=`\n  = expected: --var KEY=VALUE, with KEY one of the runbook's [vars]"
        ));
    };
    let k = k.trim();
    if !is_var_name(k) {
        return Err(format!(
            "--var `{a}`: `{k}` is not a variable name\n  = expected: letters, digits, `_` and `-` before the `=`"
        ));
    }
    check_value(v).map_err(|why| format!("--var {k}: {why}"))?;
    Ok((k.to_string(), v.to_string()))
}

/// The names `[vars]` accepts: letters, digits, `_` and `-`.
fn is_var_name(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A value may use `${env:NAME}` but not another var (as in `[vars]`).
fn check_value(v: &str) -> Result<(), String> {
    if v.contains("${vars.") {
        return Err(
            "a value cannot refer to another variable\n  = expected: a plain value or `${env:NAME}`"
                .into(),
        );
    }
    match expand_vars(v, &BTreeMap::new()) {
        Ok(_) => Ok(()),
        Err(p) => Err(format!("{}\n  = expected: {}", p[0].message, p[0].expected)),
    }
}

/// The largest vars file read (it is a handful of lines).
const MAX_VARS_BYTES: u64 = 1 << 20;

/// Read a vars file: top-level `key = value` pairs.
fn read_file(path: &Path) -> Result<Overrides, VarsError> {
    let shown = path.display().to_string();
    let cannot = |why: String| {
        VarsError::Arg(format!(
            "cannot read vars file {shown}: {why}\n  = expected: a TOML file of `name = \"value\"` lines"
        ))
    };
    let meta = std::fs::metadata(path).map_err(|e| cannot(e.to_string()))?;
    if !meta.is_file() {
        return Err(cannot("it is not a regular file".into()));
    }
    if meta.len() > MAX_VARS_BYTES {
        return Err(cannot("it is larger than 1 MiB".into()));
    }
    let bytes = std::fs::read(path).map_err(|e| cannot(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| cannot("it is not UTF-8 text".into()))?;
    parse_file(&shown, &text)
}

/// Parse a vars file's text; `shown` names it in diagnostics.
pub fn parse_file(shown: &str, text: &str) -> Result<Overrides, VarsError> {
    let doc = match toml_edit::ImDocument::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let d = Diagnostic::new(
                e.span(),
                format!("TOML syntax error: {}", e.message().trim()),
            )
            .expected("`name = \"value\"` lines");
            return Err(VarsError::File(render_file(shown, text, vec![d])));
        }
    };
    let mut diags = Vec::new();
    let mut entries = BTreeMap::new();
    for (k, item) in doc.as_table().iter() {
        let key_span = doc.as_table().key(k).and_then(|key| key.span());
        let value = match item.as_value() {
            Some(toml_edit::Value::String(s)) => Some(s.value().to_string()),
            Some(toml_edit::Value::Integer(i)) => Some(i.value().to_string()),
            Some(toml_edit::Value::Boolean(b)) => Some(b.value().to_string()),
            _ => None,
        };
        let Some(value) = value else {
            let found = if item.is_table() || item.is_array_of_tables() {
                "a table".to_string()
            } else {
                format!("a {}", item.type_name())
            };
            diags.push(
                Diagnostic::new(
                    item.span().or(key_span.clone()),
                    format!("wrong type for variable `{k}`: found {found}"),
                )
                .expected("a string, an integer or a boolean: `name = \"value\"`"),
            );
            continue;
        };
        if !is_var_name(k) {
            diags.push(
                Diagnostic::new(key_span.clone(), format!("`{k}` is not a variable name"))
                    .expected("letters, digits, `_` and `-`"),
            );
            continue;
        }
        if let Err(why) = check_value(&value) {
            let (msg, exp) = why.split_once("\n  = expected: ").unwrap_or((&why, ""));
            diags.push(Diagnostic::new(item.span(), msg.to_string()).expected(exp.to_string()));
            continue;
        }
        entries.insert(
            k.to_string(),
            Override {
                value,
                source: VarSource::File {
                    path: shown.to_string(),
                },
                span: key_span,
            },
        );
    }
    if !diags.is_empty() {
        return Err(VarsError::File(render_file(shown, text, diags)));
    }
    Ok(Overrides {
        entries,
        file: Some((shown.to_string(), text.to_string())),
    })
}

/// The diagnostics of a vars file, rustc-style, with a summary line.
fn render_file(path: &str, text: &str, diagnostics: Vec<Diagnostic>) -> String {
    let n = diagnostics.len();
    let report = Report {
        file: path.to_string(),
        source: text.to_string(),
        diagnostics,
        omitted: 0,
    };
    let mut out = String::new();
    for d in &report.diagnostics {
        out.push_str(&report.render_one(d));
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "error: {path} is not a valid vars file ({n} {})",
        if n == 1 { "error" } else { "errors" }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared() -> BTreeMap<String, String> {
        [("host", "prod"), ("db_password", "${env:PW}"), ("n", "3")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn args_override_the_file_and_unknown_names_are_refused() {
        let f = parse_file("v.toml", "host = \"rig\"\nn = 5\n").unwrap();
        assert_eq!(f.entries["n"].value, "5");
        let e = parse_file("v.toml", "host = \"rig\"\nhots = \"x\"\n")
            .unwrap()
            .check_declared(&declared())
            .unwrap_err();
        let VarsError::File(text) = e else {
            panic!("{e:?}")
        };
        assert!(text.contains("v.toml:2:1"), "{text}");
        assert!(text.contains("did you mean `host`?"), "{text}");
        let e = Overrides::from_args(None, &["hots=1".into()])
            .unwrap()
            .check_declared(&declared())
            .unwrap_err();
        assert!(e.to_string().contains("did you mean `host`?"), "{e}");
        assert!(parse_arg("novalue").is_err());
        assert_eq!(parse_arg("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_arg("a=${vars.b}").is_err());
    }

    #[test]
    fn secrets_are_masked_and_resume_refuses_a_changed_value() {
        let o = Overrides::from_args(None, &["host=rig".into()]).unwrap();
        let mut vars = declared();
        vars.insert("host".into(), "rig".into());
        let used = o.used(&vars);
        let pw = used.iter().find(|u| u.name == "db_password").unwrap();
        assert!(pw.masked && pw.value.is_none());
        let host = used.iter().find(|u| u.name == "host").unwrap();
        assert_eq!(
            (host.value.as_deref(), &host.source),
            (Some("rig"), &VarSource::CommandLine)
        );
        let again = Overrides::from_args(None, &["host=prod".into()]).unwrap();
        let e = again.for_resume(&used, &declared()).unwrap_err();
        assert!(e.to_string().contains("began with `rig`"), "{e}");
        let (merged, not_compared) = Overrides::default().for_resume(&used, &declared()).unwrap();
        assert_eq!(merged.entries["host"].value, "rig");
        assert_eq!(not_compared, vec!["db_password".to_string()]);
        // a masked var first given on the command line must be given again
        let o = Overrides::from_args(None, &["db_password=hunter22".into()]).unwrap();
        let used = o.used(&declared());
        let e = Overrides::default()
            .for_resume(&used, &declared())
            .unwrap_err();
        assert!(e.to_string().contains("give it again"), "{e}");
        let (merged, _) = o.for_resume(&used, &declared()).unwrap();
        assert_eq!(merged.entries["db_password"].value, "hunter22");
    }
}
