//! Diagnostics for runbooks: an error with a source span, rendered the way a
//! tired operator needs it at 3 a.m. — `file:line:column`, the offending line
//! with a caret under the problem, what was expected, and a "did you mean" hint.

use std::fmt::Write as _;
use std::ops::Range;

/// One problem found in a runbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Byte range in the source; `None` when the problem has no place in the
    /// file (a missing file, a file that is not UTF-8).
    pub span: Option<Range<usize>>,
    /// What is wrong, in one line.
    pub message: String,
    /// Printed under the caret: what the parser expected there.
    pub expected: Option<String>,
    /// A suggestion, usually the near match of a misspelt name.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        Diagnostic {
            span,
            message: message.into(),
            expected: None,
            help: None,
        }
    }

    pub fn expected(mut self, text: impl Into<String>) -> Self {
        self.expected = Some(text.into());
        self
    }

    pub fn help(mut self, text: impl Into<String>) -> Self {
        self.help = Some(text.into());
        self
    }

    pub fn help_opt(mut self, text: Option<String>) -> Self {
        if text.is_some() {
            self.help = text;
        }
        self
    }
}

/// All the diagnostics of one file, with what is needed to render them.
#[derive(Debug, Clone)]
pub struct Report {
    pub file: String,
    pub source: String,
    pub diagnostics: Vec<Diagnostic>,
    /// Problems found beyond the ones kept (see `reader::MAX_ERRORS`).
    pub omitted: usize,
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(source, offset.min(source.len()));
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = source[line_start..offset].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl Report {
    /// Render every diagnostic, followed by a one-line summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            out.push_str(&self.render_one(d));
            out.push('\n');
        }
        if self.omitted > 0 {
            let _ = writeln!(
                out,
                "error: {} more problems are not shown: fix the ones above and run `ferry check` again\n",
                self.omitted
            );
        }
        let n = self.diagnostics.len() + self.omitted;
        let _ = writeln!(
            out,
            "error: {} is not a valid runbook ({} {})",
            self.file,
            n,
            if n == 1 { "error" } else { "errors" }
        );
        out
    }

    /// Render one diagnostic in the rustc-like form.
    pub fn render_one(&self, d: &Diagnostic) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "error: {}", visible(&d.message));
        match &d.span {
            None => {
                let _ = writeln!(out, "  --> {}", self.file);
                if let Some(e) = &d.expected {
                    let _ = writeln!(out, "   = expected {}", visible(e));
                }
            }
            Some(span) => {
                let (line, col) = line_col(&self.source, span.start);
                let num = line.to_string();
                let pad = " ".repeat(num.len());
                let _ = writeln!(out, "{pad}--> {}:{line}:{col}", self.file);
                let _ = writeln!(out, "{pad} |");
                let (text, lead, width) = excerpt(&self.source, span);
                let _ = writeln!(out, "{num} | {text}");
                let lead = " ".repeat(lead);
                let carets = "^".repeat(width);
                match &d.expected {
                    Some(e) => {
                        let _ = writeln!(out, "{pad} | {lead}{carets} expected {}", visible(e));
                    }
                    None => {
                        let _ = writeln!(out, "{pad} | {lead}{carets}");
                    }
                }
            }
        }
        if let Some(h) = &d.help {
            let pad = match &d.span {
                Some(s) => " ".repeat(line_col(&self.source, s.start).0.to_string().len()),
                None => " ".to_string(),
            };
            let _ = writeln!(out, "{pad} = help: {}", visible(h));
        }
        out
    }
}

/// Characters a terminal shows as nothing, or that reorder what follows
/// (bidi overrides): in a runbook they make `con<U+200B>firm` look exactly
/// like `confirm`.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00ad}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// `text` on one line, with invisible characters written out as `<U+200B>`.
fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\n' {
            out.push_str("\\n"); // a value with a line break must not break the message
        } else if is_invisible(c) || (c.is_control() && c != '\t') {
            out.push_str(&format!("<U+{:04X}>", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Lines longer than this (in terminal columns) are cut around the span.
const MAX_SHOWN: usize = 120;

/// What to print for the line of `span`: its text made safe for a terminal
/// (tabs as one space, control characters as `�`, cut with `…` when very
/// long), the caret's offset and the caret's width, both in terminal columns
/// (a CJK character or an emoji takes two).
fn excerpt(source: &str, span: &Range<usize>) -> (String, usize, usize) {
    use unicode_width::UnicodeWidthChar;
    let start = floor_char_boundary(source, span.start.min(source.len()));
    let line_start = source[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = source[start..]
        .find('\n')
        .map(|i| start + i)
        .unwrap_or(source.len());
    let end = floor_char_boundary(source, span.end.clamp(start, line_end));
    // (shown char, its width, byte offset) for the whole line
    let cells: Vec<(char, usize, usize)> = source[line_start..line_end]
        .char_indices()
        .filter(|(i, c)| !(*c == '\r' && line_start + i + 1 == line_end))
        .map(|(i, c)| {
            let shown = if c == '\t' {
                ' '
            } else if c.is_control() || is_invisible(c) {
                '\u{fffd}'
            } else {
                c
            };
            (shown, shown.width().unwrap_or(1), line_start + i)
        })
        .collect();
    let first = cells
        .iter()
        .position(|c| c.2 >= start)
        .unwrap_or(cells.len());
    let last = cells.iter().position(|c| c.2 >= end).unwrap_or(cells.len());
    let mut prefix = Vec::with_capacity(cells.len() + 1);
    prefix.push(0usize);
    for c in &cells {
        prefix.push(prefix[prefix.len() - 1] + c.1);
    }
    let width_of = |a: usize, b: usize| prefix[b] - prefix[a];
    let mut from = 0;
    let mut to = cells.len();
    if width_of(0, cells.len()) > MAX_SHOWN {
        // keep some context before the span, then as much as fits
        while from < first && width_of(from, first) > MAX_SHOWN / 3 {
            from += 1;
        }
        let keep = last.max(first + 1).min(cells.len());
        while to > keep && width_of(from, to) > MAX_SHOWN {
            to -= 1;
        }
    }
    let mut text = String::new();
    let mut lead = width_of(from, first);
    if from > 0 {
        text.push('…');
        lead += 1;
    }
    text.extend(cells[from..to].iter().map(|c| c.0));
    if to < cells.len() {
        text.push('…');
    }
    let width = width_of(first, last.min(to).max(first)).max(1);
    (text, lead, width)
}

/// "a, b, c" for an "expected one of: ..." line, cut after a dozen names so
/// a runbook with thousands of steps does not print them all per error.
pub fn list_names<'a, I>(names: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    let mut names = names.into_iter();
    let first: Vec<&str> = names.by_ref().take(12).collect();
    let rest = names.count();
    if rest == 0 {
        first.join(", ")
    } else {
        format!("{}, … ({} in all)", first.join(", "), first.len() + rest)
    }
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub fn near_match<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut best: Option<(f64, &str)> = None;
    let lower = word.to_lowercase();
    for c in candidates {
        // far apart in length: not a typo (and cheap to rule out among thousands)
        if c.len().abs_diff(word.len()) > 3 + word.len() / 2 {
            continue;
        }
        let score = strsim::jaro_winkler(&lower, &c.to_lowercase());
        let dist = strsim::levenshtein(word, c);
        let close = score >= 0.8 || (dist <= 2 && c.len() > 2);
        if close && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

/// "did you mean `x`?" for the near match, if any.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    near_match(word, candidates).map(|m| format!("did you mean `{m}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let src = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        // after 'b' and the two-byte 'é'
        assert_eq!(line_col(src, 9), (2, 3));
    }

    #[test]
    fn renders_caret_under_span() {
        let src = "[runbook]\nnmae = \"x\"\n".to_string();
        let r = Report {
            file: "rb.toml".into(),
            omitted: 0,
            source: src,
            diagnostics: vec![
                Diagnostic::new(Some(10..14), "unknown key `nmae` in [runbook]")
                    .expected("one of: name, title")
                    .help("did you mean `name`?"),
            ],
        };
        let text = r.render();
        assert_eq!(
            text,
            "error: unknown key `nmae` in [runbook]\n --> rb.toml:2:1\n  |\n2 | nmae = \"x\"\n  | ^^^^ expected one of: name, title\n  = help: did you mean `name`?\n\nerror: rb.toml is not a valid runbook (1 error)\n"
        );
    }

    #[test]
    fn near_match_finds_typos_only() {
        assert_eq!(
            near_match("tabels", ["tables", "timeout"]).as_deref(),
            Some("tables")
        );
        assert_eq!(near_match("zzz", ["tables", "timeout"]), None);
    }
}
