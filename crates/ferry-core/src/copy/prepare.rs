//! Before the first row moves: pick the tables (`tables` globs minus `exclude`), find
//! each one on the target and check every copied column is there, decide per table
//! how a chunk clears its range on the target and which COPY format is safe, and
//! plan the chunks (or take the plan an earlier run stored).

use super::checkpoint::{Done, Stored};
use super::CopyError;
use crate::db::catalog::{select, Catalog, Column, Engine, OrderClass, Table};
use crate::db::plan::TablePlan;
use crate::results::copy::Method;
use crate::runbook::CopyStep;

/// How a chunk makes room on the target before loading, in its own transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clear {
    /// Delete the target's rows in the chunk's key range (the key orders the same on
    /// both sides, so the range means the same rows).
    Range,
    /// Empty the table (a table without a key is one chunk).
    All,
    /// Delete nothing: a `where` filter applies (rows the filter leaves out must stay),
    /// or the key's order may differ between the sides. Exactly-once still holds
    /// through the checkpoints; rows the target already had fail as duplicates.
    Nothing,
}

/// One table to copy, with everything a worker needs.
pub(crate) struct TableSpec {
    /// Source `schema.table`: names the table in checkpoints and messages.
    pub name: String,
    pub src: Table,
    pub tgt: Table,
    /// Copied columns as named on the source, and the same columns on the target.
    pub cols: Vec<Column>,
    pub tgt_cols: Vec<Column>,
    pub filter: Option<String>,
    pub clear: Clear,
    /// COPY BINARY is safe (PostgreSQL on both sides, same built-in types).
    pub binary: bool,
    pub plan: TablePlan,
    /// Per chunk of `plan`: its checkpoint, when an earlier run copied it.
    pub done: Vec<Option<Done>>,
}

impl TableSpec {
    /// Copied columns whose type differs between two PostgreSQL sides, as
    /// `name source-type → target-type` (the target converts each value, and a value
    /// it cannot hold stops the copy).
    pub fn type_changes(&self) -> Vec<String> {
        if self.src.oid == 0 || self.tgt.oid == 0 {
            return Vec::new(); // SQLite on a side: declared types are not comparable
        }
        self.cols
            .iter()
            .zip(&self.tgt_cols)
            .filter(|(a, b)| a.type_name != b.type_name)
            .map(|(a, b)| format!("{} {} → {}", a.name, a.type_name, b.type_name))
            .collect()
    }
}

/// The target's table for source table `src`: the same `schema.table`, or, across
/// engines (SQLite keeps everything in `main`), the same name in one schema
/// (`public` preferred).
fn find_target<'a>(src: &Table, tgt: &'a Catalog, cross: bool) -> Result<&'a Table, String> {
    if let Some(t) = tgt.find(&src.qualified_name()) {
        return Ok(t);
    }
    if cross {
        let same: Vec<&Table> = tgt
            .tables
            .iter()
            .filter(|t| {
                t.name == src.name
                    || (tgt.engine == Engine::Sqlite && t.name.eq_ignore_ascii_case(&src.name))
            })
            .collect();
        match same.as_slice() {
            [one] => return Ok(one),
            [] => {}
            many => {
                if let Some(p) = many.iter().find(|t| t.schema == "public") {
                    return Ok(p);
                }
                return Err(format!(
                    "source table {} matches several target tables: {}",
                    src.qualified_name(),
                    many.iter()
                        .map(|t| t.qualified_name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    Err(format!(
        "the target has no table {} (create the target schema before the copy)",
        src.qualified_name()
    ))
}

fn find_column<'a>(t: &'a Table, name: &str, loose: bool) -> Option<&'a Column> {
    t.column(name).or_else(|| {
        loose
            .then(|| t.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name)))
            .flatten()
    })
}

/// Both sides order this key column the same way.
fn same_order(a: &OrderClass, b: &OrderClass) -> bool {
    a == b && *a != OrderClass::Unsafe
}

/// Match every selected source table with its target and build the table specs
/// (without plans). All problems are reported together.
pub(crate) fn match_tables(
    step: &CopyStep,
    src: &Catalog,
    tgt: &Catalog,
    binary_ok: bool,
) -> Result<Vec<TableSpec>, CopyError> {
    let selected = select(src, &step.tables, &step.exclude);
    if selected.is_empty() {
        return Err(CopyError::Failed(format!(
            "no source table matches tables = {:?}{}",
            step.tables,
            if step.exclude.is_empty() {
                String::new()
            } else {
                format!(" minus exclude = {:?}", step.exclude)
            }
        )));
    }
    let mut problems = Vec::new();
    for key in step.filters.keys() {
        if !selected.iter().any(|t| t.qualified_name() == *key) {
            problems.push(format!(
                "`where` names table {key}, which this step does not copy"
            ));
        }
    }
    let cross = src.engine != tgt.engine;
    let loose = cross || tgt.engine == Engine::Sqlite;
    let mut specs = Vec::new();
    for s in selected {
        let t = match find_target(s, tgt, cross) {
            Ok(t) => t,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let mut cols = Vec::new();
        let mut tgt_cols = Vec::new();
        for c in s.columns.iter().filter(|c| !c.generated) {
            match find_column(t, &c.name, loose) {
                None => problems.push(format!(
                    "target table {} has no column {:?} (source {}.{:?} is {}): add the column to \
                     the target schema, or leave the table out with `exclude`",
                    t.qualified_name(),
                    c.name,
                    s.qualified_name(),
                    c.name,
                    c.type_name
                )),
                Some(tc) if tc.generated => problems.push(format!(
                    "column {:?} of target table {} is generated and cannot be loaded, but it is a plain column on the source",
                    tc.name,
                    t.qualified_name()
                )),
                Some(tc) => {
                    cols.push(c.clone());
                    tgt_cols.push(tc.clone());
                }
            }
        }
        let filter = step.filters.get(&s.qualified_name()).cloned();
        let src_key = s.key_columns();
        let tgt_key = t.key_columns();
        let clear = if filter.is_some() {
            Clear::Nothing
        } else if src_key.is_empty() {
            Clear::All
        } else if src_key.len() == tgt_key.len()
            && src_key.iter().zip(&tgt_key).all(|(a, b)| {
                (a.name == b.name || (loose && a.name.eq_ignore_ascii_case(&b.name)))
                    && same_order(&a.order, &b.order)
            })
        {
            Clear::Range
        } else {
            Clear::Nothing
        };
        let binary = binary_ok
            && src.engine == Engine::Postgres
            && tgt.engine == Engine::Postgres
            && src.major == tgt.major
            && cols.iter().zip(&tgt_cols).all(|(a, b)| {
                a.type_oid < 16384 && a.type_oid == b.type_oid && a.type_name == b.type_name
            });
        specs.push(TableSpec {
            name: s.qualified_name(),
            src: s.clone(),
            tgt: t.clone(),
            cols,
            tgt_cols,
            filter,
            clear,
            binary,
            plan: TablePlan {
                table: s.qualified_name(),
                key: Vec::new(),
                method: Method::Whole,
                chunks: Vec::new(),
            },
            done: Vec::new(),
        });
    }
    if problems.is_empty() {
        Ok(specs)
    } else {
        Err(CopyError::Failed(problems.join("; ")))
    }
}

/// Attach the stored plan of `spec` (checking it still fits the table) and mark
/// the chunks already checkpointed.
pub(crate) fn attach_plan(
    spec: &mut TableSpec,
    plan: TablePlan,
    stored: &Stored,
) -> Result<(), CopyError> {
    let key: Vec<String> = spec
        .src
        .key_columns()
        .iter()
        .map(|c| c.name.clone())
        .collect();
    if plan.key != key {
        return Err(CopyError::Failed(format!(
            "table {}: its primary key is ({}) but the copy's stored plan was made for ({}); \
             the table changed since this step started — delete this step's rows from the \
             checkpoint and plan tables on the target to start it over",
            spec.name,
            key.join(", "),
            plan.key.join(", ")
        )));
    }
    spec.done = plan
        .chunks
        .iter()
        .map(|c| stored.done_chunk(&spec.name, c).cloned())
        .collect();
    spec.plan = plan;
    Ok(())
}
