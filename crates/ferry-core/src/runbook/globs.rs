//! Table globs of the runbook (`tables = ["public.*"]`, `exclude = [...]`), matched the
//! same way by every step and monitor that selects tables: `*` matches any run of
//! characters, and a pattern without a schema (`users`) means that table in any schema.

/// Whether `pattern` (with `*` matching any run of characters) matches `text`.
/// Linear backtracking: a pattern of many `*`s never takes exponential time.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether one table pattern matches a qualified `schema.table` name.
pub fn table_matches(pattern: &str, qualified: &str) -> bool {
    if pattern.contains('.') {
        glob_match(pattern, qualified)
    } else {
        qualified
            .split_once('.')
            .is_some_and(|(_, name)| glob_match(pattern, name))
    }
}

/// Whether `qualified` is selected: some `include` pattern matches and no `exclude` one.
pub fn selected(include: &[String], exclude: &[String], qualified: &str) -> bool {
    include.iter().any(|p| table_matches(p, qualified))
        && !exclude.iter().any(|p| table_matches(p, qualified))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("public.*", "public.users"));
        assert!(glob_match("*.*", "main.users"));
        assert!(glob_match("app.user*", "app.users"));
        assert!(!glob_match("app.user*", "app.profile"));
        assert!(glob_match("*_log", "x_y_log"));
        assert!(!glob_match("public.users", "public.users2"));
        assert!(!glob_match("public.*", "app.users"));
        assert!(glob_match("MixedCase.*", "MixedCase.Table"));
        assert!(table_matches("users", "main.users"));
        assert!(!table_matches("users", "main.users_old"));
        let all = ["*.*".to_string()];
        assert!(selected(&all, &[], "app.x"));
        assert!(!selected(&all, &["app.*".into()], "app.x"));
    }

    #[test]
    fn many_stars_stay_fast() {
        let pattern = "*a".repeat(40) + "b";
        let text = "a".repeat(200);
        let t = std::time::Instant::now();
        assert!(!glob_match(&pattern, &text));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }
}
