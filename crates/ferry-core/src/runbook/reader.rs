//! A typed reader over the span-preserving TOML tree (`toml_edit`): every
//! accessor records a diagnostic (with the exact span) instead of failing, so
//! one pass reports every problem in the file, not only the first.

use super::diag::{did_you_mean, Diagnostic};
use super::expand;
use super::model::Span;
use std::collections::BTreeMap;
use std::time::Duration;
use toml_edit::{InlineTable, Item, Table, Value};

/// A table, written either as `[header]` or inline `{ ... }`.
#[derive(Clone, Copy)]
pub enum Node<'a> {
    Table(&'a Table),
    Inline(&'a InlineTable),
}

impl<'a> Node<'a> {
    pub fn span(&self) -> Option<Span> {
        match self {
            Node::Table(t) => table_span(t),
            Node::Inline(t) => t.span(),
        }
    }

    /// Key span, and the item.
    pub fn get(&self, key: &str) -> Option<(Option<Span>, &'a Item)> {
        let (k, v) = match self {
            Node::Table(t) => t.get_key_value(key)?,
            Node::Inline(t) => t.get_key_value(key)?,
        };
        if v.is_none() {
            return None;
        }
        Some((k.span(), v))
    }

    /// Keys in file order, with their spans.
    pub fn keys(&self) -> Vec<(String, Option<Span>)> {
        let names: Vec<String> = match self {
            Node::Table(t) => t.iter().map(|(k, _)| k.to_string()).collect(),
            Node::Inline(t) => t.iter().map(|(k, _)| k.to_string()).collect(),
        };
        names
            .into_iter()
            .map(|n| {
                let span = self.get(&n).and_then(|(s, _)| s);
                (n, span)
            })
            .collect()
    }
}

/// Human name of a TOML item's type, for "expected X, found Y".
pub fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(v) => match v {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a date-time",
            Value::Array(_) => "an array",
            Value::InlineTable(_) => "an inline table",
        },
    }
}

pub fn item_span(item: &Item) -> Option<Span> {
    match item {
        Item::None => None,
        Item::Value(v) => v.span(),
        Item::Table(t) => table_span(t),
        Item::ArrayOfTables(a) => a.span().or_else(|| a.iter().find_map(table_span)),
    }
}

/// A table's span; a table never written as a header (implied by
/// `[[phase.step]]` before any `[[phase]]`) has none, so use its first part's.
pub fn table_span(t: &Table) -> Option<Span> {
    t.span()
        .or_else(|| t.iter().find_map(|(_, v)| item_span(v)))
}

/// The reader: source text, collected diagnostics, and the `[vars]` used to
/// expand `${vars.NAME}` in every string it hands out.
pub struct Reader<'s> {
    pub src: &'s str,
    pub errors: Vec<Diagnostic>,
    /// Problems found after [`MAX_ERRORS`], counted but not kept.
    pub dropped: usize,
    pub vars: BTreeMap<String, String>,
}

/// More diagnostics than this help nobody (fix the first ones, run again),
/// and building them for a generated 100,000-step file would take minutes.
pub const MAX_ERRORS: usize = 200;

impl<'s> Reader<'s> {
    pub fn new(src: &'s str) -> Self {
        Reader {
            src,
            errors: Vec::new(),
            dropped: 0,
            vars: BTreeMap::new(),
        }
    }

    pub fn error(&mut self, d: Diagnostic) {
        if self.is_full() {
            self.dropped += 1;
        } else {
            self.errors.push(d);
        }
    }

    /// Whether further diagnostics would be dropped: callers skip costly
    /// suggestions then, and only count.
    pub fn is_full(&self) -> bool {
        self.errors.len() >= MAX_ERRORS
    }

    /// Report keys of `node` not in `allowed`. `context` names the table in messages.
    pub fn check_keys(&mut self, node: Node<'_>, context: &str, allowed: &[&str]) {
        for (key, span) in node.keys() {
            if !allowed.contains(&key.as_str()) {
                let help = did_you_mean(&key, allowed.iter().copied());
                self.error(
                    Diagnostic::new(span, format!("unknown key `{key}` in {context}"))
                        .expected(format!("one of: {}", allowed.join(", ")))
                        .help_opt(help),
                );
            }
        }
    }

    fn wrong_type(&mut self, key: &str, context: &str, item: &Item, want: &str) {
        self.error(
            Diagnostic::new(
                item_span(item),
                format!(
                    "wrong type for `{key}` in {context}: found {}",
                    type_name(item)
                ),
            )
            .expected(want.to_string()),
        );
    }

    pub fn missing(&mut self, node: Node<'_>, key: &str, context: &str, example: &str) {
        self.error(
            Diagnostic::new(
                node.span(),
                format!("missing required key `{key}` in {context}"),
            )
            .expected(format!("`{key} = {example}`")),
        );
    }

    /// A string, with `${vars.X}` expanded (and checked).
    pub fn str_opt(&mut self, node: Node<'_>, key: &str, context: &str) -> Option<(String, Span)> {
        let (_, item) = node.get(key)?;
        match item.as_value() {
            Some(Value::String(s)) => {
                let span = s.span().unwrap_or(0..0);
                let text = self.expand(s.value(), &span);
                Some((text, span))
            }
            _ => {
                self.wrong_type(key, context, item, "a string");
                None
            }
        }
    }

    pub fn string(&mut self, node: Node<'_>, key: &str, context: &str) -> Option<String> {
        self.str_opt(node, key, context).map(|(s, _)| s)
    }

    pub fn str_req(
        &mut self,
        node: Node<'_>,
        key: &str,
        context: &str,
        example: &str,
    ) -> Option<(String, Span)> {
        if node.get(key).is_none() {
            self.missing(node, key, context, example);
            return None;
        }
        self.str_opt(node, key, context)
    }

    /// Report `text` (the value of `key`) when it is empty or only blanks:
    /// an empty command or query would "succeed" doing nothing.
    pub fn not_blank(&mut self, text: &str, span: &Span, key: &str, context: &str) {
        if text.trim().is_empty() {
            self.error(
                Diagnostic::new(Some(span.clone()), format!("`{key}` of {context} is empty"))
                    .expected(format!(
                        "the {} to run",
                        if key == "run" { "command" } else { "SQL" }
                    )),
            );
        }
    }

    /// Report a value of `key` that is empty or only blanks, saying what it should hold.
    pub fn not_blank_value(
        &mut self,
        text: &str,
        span: &Span,
        key: &str,
        context: &str,
        want: &str,
    ) {
        if text.trim().is_empty() {
            self.error(
                Diagnostic::new(Some(span.clone()), format!("`{key}` of {context} is empty"))
                    .expected(want.to_string()),
            );
        }
    }

    /// A required string that must not be blank (a command, SQL).
    pub fn text_req(
        &mut self,
        node: Node<'_>,
        key: &str,
        context: &str,
        example: &str,
    ) -> Option<String> {
        let (text, span) = self.str_req(node, key, context, example)?;
        self.not_blank(&text, &span, key, context);
        Some(text)
    }

    pub fn bool_opt(&mut self, node: Node<'_>, key: &str, context: &str) -> Option<bool> {
        let (_, item) = node.get(key)?;
        match item.as_value() {
            Some(Value::Boolean(b)) => Some(*b.value()),
            _ => {
                self.wrong_type(key, context, item, "`true` or `false`");
                None
            }
        }
    }

    /// A non-negative integer within `min..=max`.
    pub fn uint_opt(
        &mut self,
        node: Node<'_>,
        key: &str,
        context: &str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let (_, item) = node.get(key)?;
        match item.as_value() {
            Some(Value::Integer(i)) => {
                let v = *i.value();
                if v < min as i64 || (v as u64) > max {
                    self.error(
                        Diagnostic::new(
                            i.span(),
                            format!("`{key}` = {v} is out of range in {context}"),
                        )
                        .expected(format!("a whole number from {min} to {max}")),
                    );
                    None
                } else {
                    Some(v as u64)
                }
            }
            _ => {
                self.wrong_type(key, context, item, "a whole number");
                None
            }
        }
    }

    /// A number (integer or float).
    pub fn number_opt(&mut self, node: Node<'_>, key: &str, context: &str) -> Option<f64> {
        let (_, item) = node.get(key)?;
        match item.as_value() {
            Some(Value::Integer(i)) => Some(*i.value() as f64),
            Some(Value::Float(f)) => Some(*f.value()),
            Some(Value::String(s)) => {
                let bare = s.value().trim().trim_end_matches('%').trim();
                let help = bare
                    .parse::<f64>()
                    .ok()
                    .map(|_| format!("write the number without quotes: `{key} = {bare}`"));
                self.error(
                    Diagnostic::new(
                        s.span(),
                        format!("wrong type for `{key}` in {context}: found a string"),
                    )
                    .expected("a number")
                    .help_opt(help),
                );
                None
            }
            _ => {
                self.wrong_type(key, context, item, "a number");
                None
            }
        }
    }

    /// A duration written like "90s", "5m", "2h" or "1h30m", at most
    /// [`MAX_DURATION`]; zero is refused for the keys in [`NONZERO`].
    pub fn duration_opt(&mut self, node: Node<'_>, key: &str, context: &str) -> Option<Duration> {
        let (_, item) = node.get(key)?;
        match item.as_value() {
            Some(Value::String(s)) => {
                // `for = "${vars.lag_window}"`: rehearsals shorten the waits with --var
                let span = s.span().unwrap_or(0..0);
                let expanded = self.expand(s.value(), &span);
                let text = expanded.trim();
                let bad = |what: String| {
                    Diagnostic::new(s.span(), what)
                        .expected("a duration like \"90s\", \"5m\", \"2h\" or \"1h30m\"")
                };
                match parse_duration(text) {
                    Some(d) if d > MAX_DURATION => {
                        self.error(
                            bad(format!(
                                "duration `{text}` for `{key}` in {context} is too long"
                            ))
                            .expected("at most a year (\"8760h\")"),
                        );
                        None
                    }
                    Some(d) if d.is_zero() && NONZERO.contains(&key) => {
                        self.error(
                            bad(format!(
                                "`{key}` = \"{text}\" in {context} must be longer than zero"
                            ))
                            .expected("a duration above zero, like \"5s\""),
                        );
                        None
                    }
                    Some(d) => Some(d),
                    None => {
                        let d = bad(format!("bad duration `{text}` for `{key}` in {context}"));
                        self.error(d.help_opt(duration_hint(key, text)));
                        None
                    }
                }
            }
            Some(Value::Integer(i)) => {
                let v = *i.value();
                let d = Diagnostic::new(
                    i.span(),
                    format!("bad duration {v} for `{key}` in {context}: a bare number has no unit"),
                )
                .expected("a duration string like \"90s\", \"5m\" or \"2h\"");
                self.error(if v >= 0 {
                    d.help(format!("write `{key} = \"{v}s\"` for {v} seconds"))
                } else {
                    d.help("a duration cannot be negative")
                });
                None
            }
            _ => {
                self.wrong_type(
                    key,
                    context,
                    item,
                    "a duration string like \"90s\", \"5m\" or \"2h\"",
                );
                None
            }
        }
    }

    /// An array of strings (each expanded), with each element's span.
    pub fn str_list_opt(
        &mut self,
        node: Node<'_>,
        key: &str,
        context: &str,
    ) -> Option<Vec<(String, Span)>> {
        let (_, item) = node.get(key)?;
        match item.as_value() {
            Some(Value::Array(arr)) => {
                let mut out = Vec::new();
                for v in arr.iter() {
                    match v {
                        Value::String(s) => {
                            let span = s.span().unwrap_or(0..0);
                            let text = self.expand(s.value(), &span);
                            out.push((text, span));
                        }
                        other => {
                            self.error(
                                Diagnostic::new(
                                    other.span(),
                                    format!(
                                        "wrong type in `{key}` in {context}: found {}",
                                        type_name(&Item::Value(other.clone()))
                                    ),
                                )
                                .expected("a string"),
                            );
                        }
                    }
                }
                Some(out)
            }
            _ => {
                self.wrong_type(
                    key,
                    context,
                    item,
                    "an array of strings, like [\"a\", \"b\"]",
                );
                None
            }
        }
    }

    /// A sub-table (either `[a.b]` or `b = { ... }`).
    pub fn table_opt<'a>(&mut self, node: Node<'a>, key: &str, context: &str) -> Option<Node<'a>> {
        let (_, item) = node.get(key)?;
        match item {
            Item::Table(t) => Some(Node::Table(t)),
            Item::Value(Value::InlineTable(t)) => Some(Node::Inline(t)),
            _ => {
                self.wrong_type(key, context, item, "a table, like `{ key = \"value\" }`");
                None
            }
        }
    }

    /// A table of string values (`env = { K = "V" }`).
    pub fn str_map_opt(
        &mut self,
        node: Node<'_>,
        key: &str,
        context: &str,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(t) = self.table_opt(node, key, context) {
            let ctx = format!("`{key}` of {context}");
            for (k, span) in t.keys() {
                if let Some(v) = self.string(t, &k, &ctx) {
                    // keys name tables (`"${vars.db}.users"`), so they expand like the values
                    let key = self.expand(&k, &span.unwrap_or(0..0));
                    out.insert(key, v);
                }
            }
        }
        out
    }

    /// Expand `${vars.NAME}`; check the form of every `${env:NAME}`. Other
    /// `${...}` (shell parameters) pass through untouched.
    pub fn expand(&mut self, text: &str, span: &Span) -> String {
        match expand::expand_vars_with(text, &self.vars, !self.is_full()) {
            Ok(s) => s,
            Err(problems) => {
                for p in problems {
                    let place = self
                        .src
                        .get(span.clone())
                        .and_then(|raw| raw.find(&p.token))
                        .map(|i| span.start + i..span.start + i + p.token.len())
                        .unwrap_or_else(|| span.clone());
                    self.error(
                        Diagnostic::new(Some(place), p.message)
                            .expected(p.expected)
                            .help_opt(p.help),
                    );
                }
                text.to_string()
            }
        }
    }
}

/// The longest duration a runbook may write: a year. Longer is a typo, and
/// it keeps every later `Instant + Duration` and `Duration * n` far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// Keys where a zero duration makes no sense: an interval of zero would spin,
/// a timeout or window of zero would fail or end at once.
const NONZERO: &[&str] = &["timeout", "every", "period", "duration", "time_limit"];

/// A likely fix for a duration that does not parse.
fn duration_hint(key: &str, text: &str) -> Option<String> {
    if text.starts_with('-') {
        return Some("a duration cannot be negative".into());
    }
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        return Some(format!(
            "add a unit: `{key} = \"{text}s\"` for {text} seconds"
        ));
    }
    let lower = text.to_lowercase();
    if lower != text && parse_duration(&lower).is_some() {
        return Some(format!("units are lowercase: `{key} = \"{lower}\"`"));
    }
    if text.contains('w') || text.contains('y') || text.contains("mo") {
        return Some("write long durations in hours or days: a week is \"168h\" or \"7d\"".into());
    }
    if text.is_empty() {
        return Some(format!(
            "remove `{key}` to use the default, or write a duration"
        ));
    }
    None
}

/// Parse "90s", "5m", "2h", "1h30m", "500ms" (and "1h 30m").
pub fn parse_duration(text: &str) -> Option<Duration> {
    if text.is_empty() || !text.chars().next()?.is_ascii_digit() {
        return None;
    }
    // Only the units an operator means: to humantime `M` is a month, so a
    // tired "5M" would be a five-month timeout.
    let units_ok = text
        .split(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
        .filter(|u| !u.is_empty())
        .all(|u| UNITS.contains(&u));
    if !units_ok {
        return None;
    }
    humantime::parse_duration(text).ok()
}

/// Units a duration may use.
const UNITS: &[&str] = &[
    "ms", "msec", "s", "sec", "secs", "second", "seconds", "m", "min", "mins", "minute", "minutes",
    "h", "hr", "hrs", "hour", "hours", "d", "day", "days",
];

/// An id is a slug: lowercase ASCII letters, digits, `-` and `_`, starting with a letter.
pub fn is_slug(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && s.len() <= 64
}

/// The slug a non-slug id probably meant.
pub fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if c == '_' || c == '-' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        format!("step-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rstest::rstest]
    #[case("90s", Some(90))]
    #[case("5m", Some(300))]
    #[case("2h", Some(7200))]
    #[case("1h30m", Some(5400))]
    #[case("1h 30m", Some(5400))]
    #[case("ninety", None)]
    #[case("", None)]
    #[case("-5s", None)]
    #[case("5 parsecs", None)]
    fn durations(#[case] text: &str, #[case] secs: Option<u64>) {
        assert_eq!(parse_duration(text).map(|d| d.as_secs()), secs);
    }

    #[rstest::rstest]
    #[case("copy", true)]
    #[case("copy-data_2", true)]
    #[case("Copy", false)]
    #[case("2copy", false)]
    #[case("copy data", false)]
    #[case("", false)]
    fn slugs(#[case] s: &str, #[case] ok: bool) {
        assert_eq!(is_slug(s), ok);
    }

    /// A soak and a copy's `where` keys taken from `[vars]`, as a rig's vars file sets them.
    #[test]
    fn durations_and_where_keys_expand_vars() {
        use crate::runbook::{load_str_with, StepKind};
        let src = r#"
[runbook]
name = "v"
format = 1
[vars]
soak = "24h"
db = "users"
[connections.a]
url = "postgres://a@h/a"
[connections.b]
url = "postgres://b@h/b"
[[phase]]
id = "p"
  [[phase.step]]
  id = "w"
  kind = "wait"
  until = { sql = "select true", connection = "a", for = "${vars.soak}" }
  timeout = "${vars.soak}"
  [[phase.step]]
  id = "c"
  kind = "copy"
  from = "a"
  to = "b"
  tables = ["${vars.db}.t"]
  where = { "${vars.db}.t" = "id < 10" }
"#;
        let over = [("soak".to_string(), "2s".to_string())].into();
        let rb = load_str_with("v.toml", src, std::path::Path::new("v.toml"), &over)
            .unwrap_or_else(|r| panic!("{r:?}"));
        let steps = &rb.phases[0].steps;
        let StepKind::Wait(w) = &steps[0].kind else {
            panic!("{:?}", steps[0].kind)
        };
        assert_eq!(w.hold, Some(std::time::Duration::from_secs(2)));
        assert_eq!(steps[0].timeout, Some(std::time::Duration::from_secs(2)));
        let StepKind::Copy(c) = &steps[1].kind else {
            panic!("{:?}", steps[1].kind)
        };
        assert_eq!(
            c.filters.get("users.t").map(String::as_str),
            Some("id < 10")
        );
    }

    #[test]
    fn slugify_suggests() {
        assert_eq!(slugify("Copy Data!"), "copy-data");
        assert_eq!(slugify("1st"), "step-1st");
    }
}
