//! Who is who: actors compared by uid, shown with it, and old actors read back.

use super::*;

#[test]
fn the_uid_decides_whether_two_actors_are_one_person() {
    let alice = Actor::named("alice", "h").with_uid(1001, Some("alice".into()));
    let alice_renamed = Actor::named("Alice Smith", "h2").with_uid(1001, Some("alice".into()));
    let bob_as_alice = Actor::named("alice", "h").with_uid(1002, Some("bob".into()));
    assert!(alice.same_person(&alice_renamed));
    assert!(!alice.same_person(&bob_as_alice));
    assert!(Actor::named("x", "h").same_person(&Actor::named("x", "h2")));
}

#[test]
fn an_actor_reads_as_name_login_and_uid() {
    let a = Actor::named("Alice Smith", "h").with_uid(1001, Some("alice".into()));
    assert_eq!(a.who(), "Alice Smith (alice, uid 1001)");
    let b = Actor::named("bob", "h").with_uid(1002, Some("bob".into()));
    assert_eq!(b.who(), "bob (uid 1002)");
    assert_eq!(Actor::named("carol", "h").who(), "carol");
}

/// An actor from an old journal has no uid, and writes back as it was.
#[test]
fn an_old_actor_reads_back_byte_for_byte() {
    let line = r#"{"operator":"alice","host":"bastion"}"#;
    let a: Actor = serde_json::from_str(line).expect("parses");
    assert_eq!(a.uid, None);
    assert_eq!(serde_json::to_string(&a).expect("serializes"), line);
}

#[test]
fn the_evidence_hash_is_of_its_canonical_json() {
    assert_eq!(
        evidence_sha256(&[]),
        "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
    );
    let lag = [EvidenceItem {
        label: "lag".into(),
        value: "0.4s".into(),
        ..Default::default()
    }];
    assert_eq!(
        evidence_sha256(&lag),
        "1ba97cad4457f19124f47ce463fd02db7abf3f9271be692cd3695b82483ef501"
    );
}
