//! Text helpers for the console: durations, counts, display widths,
//! truncation and wrapping. Pure functions, shared by every pane.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Display width of `s` in terminal cells.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` cut to at most `max` cells, ending in `…` when something was cut.
pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > max {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

/// `s` cut from the left to at most `max` cells (`…` first): keeps a path's file name.
pub fn truncate_left(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut kept: Vec<char> = Vec::new();
    let mut w = 0;
    for c in s.chars().rev() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > max {
            break;
        }
        kept.push(c);
        w += cw;
    }
    let mut out = String::from("…");
    out.extend(kept.into_iter().rev());
    out
}

/// `s` padded with spaces (or cut) to exactly `w` cells.
pub fn pad(s: &str, w: usize) -> String {
    let t = truncate(s, w);
    let fill = w.saturating_sub(width(&t));
    format!("{t}{}", " ".repeat(fill))
}

/// `s` right-aligned in `w` cells (cut when longer).
pub fn pad_left(s: &str, w: usize) -> String {
    let t = truncate(s, w);
    let fill = w.saturating_sub(width(&t));
    format!("{}{t}", " ".repeat(fill))
}

/// Hard-wrap text to `w` cells per line, breaking at spaces when it can.
/// Tabs become four spaces; every input line gives at least one output line.
pub fn wrap(text: &str, w: usize) -> Vec<String> {
    let w = w.max(1);
    let mut out = Vec::new();
    for raw in text.replace('\t', "    ").lines() {
        let mut line = String::new();
        let mut lw = 0;
        for word in split_keep_spaces(raw) {
            let ww = width(word);
            if lw + ww <= w {
                line.push_str(word);
                lw += ww;
                continue;
            }
            if ww <= w && lw > 0 {
                out.push(line.trim_end().to_string());
                let word = word.trim_start();
                line = word.to_string();
                lw = width(word);
                continue;
            }
            // a word longer than the line: break it by characters
            for c in word.chars() {
                let cw = c.width().unwrap_or(0);
                if lw + cw > w && lw > 0 {
                    out.push(std::mem::take(&mut line));
                    lw = 0;
                }
                line.push(c);
                lw += cw;
            }
        }
        out.push(line.trim_end().to_string());
    }
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

/// Words with their leading spaces attached, so indentation survives wrapping.
fn split_keep_spaces(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_word = false;
    for (i, c) in s.char_indices() {
        if c == ' ' && in_word {
            parts.push(&s[start..i]);
            start = i;
            in_word = false;
        } else if c != ' ' {
            in_word = true;
        }
    }
    if start < s.len() {
        parts.push(&s[start..]);
    }
    parts
}

/// Durations and numbers have one home, `ferry_core::units`; the console's
/// shapes under the short names its render code uses.
pub use ferry_core::units::{clock, screen_duration as dur, screen_lag as lag, si, thousands};

/// A sparkline of `values` scaled to `[0, top]`, the newest `n` values.
pub fn sparkline(values: &[f64], n: usize, top: f64) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let start = values.len().saturating_sub(n);
    let top = if top > 0.0 && top.is_finite() {
        top
    } else {
        1.0
    };
    values[start..]
        .iter()
        .map(|v| {
            let f = (v / top).clamp(0.0, 1.0);
            BARS[((f * 7.0).round() as usize).min(7)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_by_cells() {
        assert_eq!(truncate("snapshot-restored", 8), "snapsho…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate_left("runs/demo/2026.jsonl", 10), "…026.jsonl");
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(pad_left("ab", 4), "  ab");
    }

    #[test]
    fn wraps_at_spaces_and_breaks_long_words() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh", 3), vec!["abc", "def", "gh"]);
        assert_eq!(wrap("", 3), vec![""]);
        assert_eq!(wrap("a\nb", 9), vec!["a", "b"]);
        assert_eq!(wrap("  indented", 20), vec!["  indented"]);
    }

    #[test]
    fn formats_durations_and_numbers() {
        assert_eq!(dur(45), "45s");
        assert_eq!(dur(123), "2m03s");
        assert_eq!(dur(4680), "1h18m");
        assert_eq!(clock(41), "00:41");
        assert_eq!(clock(3723), "1:02:03");
        assert_eq!(lag(1.44), "1.4s");
        assert_eq!(lag(125.0), "2m05s");
        assert_eq!(si(1_234_567.0), "1.2M");
        assert_eq!(si(48_000.0), "48.0k");
        assert_eq!(si(950.0), "950");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-1200), "-1,200");
        assert_eq!(sparkline(&[0.0, 5.0, 10.0], 10, 10.0), "▁▅█");
        assert_eq!(sparkline(&[1.0, 2.0, 3.0], 2, 3.0), "▆█");
    }
}
