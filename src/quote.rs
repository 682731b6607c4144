//! Shell quoting for the commands ferry prints for an operator to paste (resume,
//! attach, report): a path with a space or a quote must paste as one argument.

use std::borrow::Cow;
use std::path::Path;

/// `arg` as one POSIX shell word: unchanged when it holds only characters no shell
/// treats specially, else in single quotes (a `'` inside becomes `'\''`).
pub fn shell(arg: &str) -> Cow<'_, str> {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./,:=@%+".contains(c));
    if plain {
        Cow::Borrowed(arg)
    } else {
        Cow::Owned(format!("'{}'", arg.replace('\'', r"'\''")))
    }
}

/// A path as one shell word (see [`shell`]); a path that is not UTF-8 is shown lossily.
pub fn path(p: &Path) -> String {
    shell(&p.to_string_lossy()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::plain("runs/demo/20261204T175926Z.jsonl", "runs/demo/20261204T175926Z.jsonl")]
    #[case::space("/srv/my runs/j.jsonl", "'/srv/my runs/j.jsonl'")]
    #[case::quote("it's.toml", r"'it'\''s.toml'")]
    #[case::dollar("$HOME/x", "'$HOME/x'")]
    #[case::glob("a*.toml", "'a*.toml'")]
    #[case::empty("", "''")]
    fn one_shell_word(#[case] arg: &str, #[case] quoted: &str) {
        assert_eq!(shell(arg), quoted);
    }

    /// What the quoting produces reads back, through a real shell, as the argument.
    #[test]
    fn a_real_shell_reads_the_argument_back() {
        for arg in [
            "/srv/my runs/j.jsonl",
            "it's",
            "$(touch x)",
            "a\"b`c",
            "tab\there",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell(arg)))
                .output()
                .unwrap_or_else(|e| panic!("sh: {e}"));
            assert_eq!(String::from_utf8_lossy(&out.stdout), arg);
        }
    }
}
