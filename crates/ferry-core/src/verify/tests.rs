//! Unit tests of the verifier's pure parts that would crowd their modules.

use super::schema::*;
use super::{run, Hooks};
use crate::db::catalog::Engine;
use crate::db::Db;
use crate::runbook::VerifyStep;

fn col(name: &str, ty: &str) -> ColInfo {
    ColInfo {
        name: name.into(),
        type_name: ty.into(),
        ..Default::default()
    }
}

#[test]
fn differences_are_named() {
    let s = TableSchema {
        columns: vec![
            col("id", "bigint"),
            col("started", "timestamp with time zone"),
        ],
        pk: vec!["id".into()],
        indexes: vec![Def {
            name: "t_started_idx".into(),
            def: "CREATE INDEX t_started_idx ON app.t USING btree (started)".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut t = s.clone();
    t.columns[1].type_name = "timestamp without time zone".into();
    t.indexes.clear();
    t.sequences.push(Seq {
        name: "app.t_id_seq".into(),
        column: "id".into(),
        next: Some(5),
        increment: 1,
        max: Some(9),
        slack: 0,
    });
    let d = compare("app.t", &s, &t, Engine::Postgres, Engine::Postgres);
    assert!(
        d.contains(&"app.t.started: timestamptz on source, timestamp on target".to_string()),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|l| l.starts_with("app.t: index t_started_idx missing on target")),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|l| l.contains("behind the data: next value 5, max(id) = 9")),
        "{d:?}"
    );
    assert_eq!(
        compare("app.t", &s, &s, Engine::Postgres, Engine::Postgres),
        Vec::<String>::new()
    );
}

/// The engine spawns verifications on a multi-threaded runtime.
#[allow(dead_code)]
fn run_is_send(step: &VerifyStep, db: &Db, hooks: Hooks) {
    fn is_send<T: Send>(_: T) {}
    is_send(run(step, db, db, hooks));
}
