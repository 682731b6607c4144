//! The keys of online cutovers: the caught-up proof of a `wait` step
//! (`until = { caught_up = { primary = ..., replica|slot = ... } }`) and
//! `kind = "replicate"` (`action`, `from`, `to`, `tables`, `exclude`, `name`).
//! Kept apart from `kinds.rs` so the replication keys read in one place.

use super::diag::{did_you_mean, Diagnostic};
use super::model::{CatchUpBy, Condition, ReplicateAction, ReplicateStep, StepKind};
use super::parse::{conn_ref, table_globs, Ref};
use super::reader::{item_span, Node, Reader};

/// The keys of a `caught_up` table.
const CAUGHT_UP_KEYS: &[&str] = &["primary", "replica", "slot"];

/// `until = { caught_up = { primary = "old", replica = "replica" } }` or
/// `{ caught_up = { primary = "source", slot = "ferry_cutover" } }`. `u` is the
/// `until` table; `c` names it in messages. The proof has no `for` and no
/// threshold: it passes once, when the position is reached.
pub fn parse_caught_up(
    r: &mut Reader<'_>,
    u: Node<'_>,
    c: &str,
    refs: &mut Vec<Ref>,
) -> Option<Condition> {
    for (key, span) in u.keys() {
        if key != "caught_up" {
            r.error(
                Diagnostic::new(
                    span,
                    format!("`{key}` does not go with `caught_up` in {c}"),
                )
                .expected("only `caught_up = { primary = \"NAME\", replica = \"NAME\" }`")
                .help("the proof passes once the replica applied past the primary's position at the start of the wait; it has no threshold and no `for`"),
            );
        }
    }
    let cc = format!("`caught_up` of {c}");
    let t = r.table_opt(u, "caught_up", c)?;
    for (key, span) in t.keys() {
        if !CAUGHT_UP_KEYS.contains(&key.as_str()) {
            r.error(
                Diagnostic::new(span, format!("unknown key `{key}` in {cc}"))
                    .expected(format!("one of: {}", CAUGHT_UP_KEYS.join(", ")))
                    .help_opt(did_you_mean(&key, CAUGHT_UP_KEYS.iter().copied())),
            );
        }
    }
    let primary = conn_ref(r, t, "primary", &cc, refs, &cc);
    let by = match (t.get("replica").is_some(), t.get("slot").is_some()) {
        (true, false) => {
            let (name, span) = r.str_opt(t, "replica", &cc)?;
            refs.push(Ref {
                kind: super::parse::RefKind::Connection,
                name: name.clone(),
                span,
                from: cc.clone(),
            });
            if primary.as_deref() == Some(name.as_str()) {
                r.error(
                    Diagnostic::new(
                        t.get("replica").and_then(|(_, i)| super::reader::item_span(i)),
                        format!("`primary` and `replica` of {cc} are both `{name}`"),
                    )
                    .expected("the standby's connection: a database cannot prove it caught up with itself"),
                );
            }
            CatchUpBy::Replica(name)
        }
        (false, true) => {
            let (name, span) = r.str_opt(t, "slot", &cc)?;
            if !name.contains("${") && !is_slot_name(&name) {
                r.error(
                    Diagnostic::new(
                        Some(span),
                        format!("`{name}` is not a replication slot name (`slot` of {cc})"),
                    )
                    .expected("1 to 63 lower-case letters, digits and underscores, like \"ferry_cutover\""),
                );
            }
            CatchUpBy::Slot(name)
        }
        (true, true) => {
            r.error(
                Diagnostic::new(
                    t.span(),
                    format!("{cc} names both `replica` and `slot`"),
                )
                .expected("one of them: `replica = \"NAME\"` (a physical standby) or `slot = \"NAME\"` (a logical slot on the primary)"),
            );
            return None;
        }
        (false, false) => {
            r.error(
                Diagnostic::new(t.span(), format!("{cc} needs `replica` or `slot`"))
                    .expected("`replica = \"NAME\"` (a physical standby's connection) or `slot = \"NAME\"` (a logical slot on the primary)"),
            );
            return None;
        }
    };
    Some(Condition::CaughtUp {
        primary: primary?,
        by,
    })
}

/// `kind = "replicate"`: `action` ("start" | "stop"), `from`, `to`, `tables`,
/// `exclude` and `name` (the publication's, slot's and subscription's).
pub fn parse_replicate(
    r: &mut Reader<'_>,
    t: Node<'_>,
    c: &str,
    ctx: &str,
    refs: &mut Vec<Ref>,
) -> Option<StepKind> {
    let action = r.str_req(t, "action", c, "\"start\"");
    let from = conn_ref(r, t, "from", c, refs, ctx);
    let to = conn_ref(r, t, "to", c, refs, ctx);
    if let (Some(a), Some(b)) = (&from, &to) {
        if a == b {
            r.error(
                Diagnostic::new(
                    t.get("to").and_then(|(_, i)| item_span(i)),
                    format!("`from` and `to` of {c} are both `{a}`"),
                )
                .expected("two different connections: a database cannot subscribe to itself"),
            );
        }
    }
    let name = r.str_req(t, "name", c, "\"ferry_cutover\"");
    if let Some((n, span)) = &name {
        if !n.contains("${") && !is_slot_name(n) {
            r.error(
                Diagnostic::new(
                    Some(span.clone()),
                    format!(
                        "`{n}` cannot name a publication, slot and subscription (`name` of {c})"
                    ),
                )
                .expected(
                    "1 to 63 lower-case letters, digits and underscores, like \"ferry_cutover\"",
                ),
            );
        }
    }
    let (tables, exclude) = table_globs(r, t, c);
    let (action, aspan) = action?;
    let action = match action.as_str() {
        "start" => ReplicateAction::Start,
        "stop" => ReplicateAction::Stop,
        other => {
            r.error(
                Diagnostic::new(
                    Some(aspan),
                    format!("unknown replicate action `{other}` in {c}"),
                )
                .expected("one of: start, stop")
                .help_opt(did_you_mean(other, ["start", "stop"])),
            );
            return None;
        }
    };
    Some(StepKind::Replicate(ReplicateStep {
        action,
        from: from?,
        to: to?,
        tables,
        exclude,
        name: name?.0,
    }))
}

/// PostgreSQL's rule for replication slot (and ferry's publication and
/// subscription) names: lower-case letters, digits and `_`, at most 63 bytes.
pub fn is_slot_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::is_slot_name;

    #[test]
    fn slot_names_follow_postgres() {
        assert!(is_slot_name("ferry_cutover_2"));
        assert!(!is_slot_name("Ferry"));
        assert!(!is_slot_name("ferry-cutover"));
        assert!(!is_slot_name(""));
        assert!(!is_slot_name(&"a".repeat(64)));
    }
}
