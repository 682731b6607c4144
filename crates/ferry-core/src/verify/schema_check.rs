//! The schema phase: both sides' schemas read at once on the first worker (inside
//! its savepoints), compared table by table, plus the enum types (PostgreSQL on both
//! sides). Each difference is recorded against its table.

use super::bisect::Worker;
use super::phases::Shared;
use super::report::Kind;
use super::schema::{compare, compare_enums, EnumType, TableSchema};
use super::session::{Conn, Role, SideError};
use super::tables::TableJob;
use super::{schema_mysql, schema_pg, schema_sqlite, VerifyError};
use crate::db::catalog::Engine;

async fn read_side(
    conn: &mut Conn,
    jobs: &[TableJob],
    role: Role,
    major: u32,
) -> Result<(Vec<TableSchema>, Vec<EnumType>), sqlx::Error> {
    match conn {
        Conn::Pg(c) => {
            let tables: Vec<schema_pg::PgTable> = jobs
                .iter()
                .map(|j| schema_pg::PgTable {
                    oid: j.table(role).oid,
                    sql_name: j.table(role).sql_name(),
                })
                .collect();
            let s = schema_pg::read(c, &tables, major).await?;
            let e = schema_pg::enums(c, &tables).await?;
            Ok((s, e))
        }
        Conn::Sqlite(c) => {
            let mut out = Vec::new();
            for j in jobs {
                out.push(schema_sqlite::read(c, &j.table(role).name).await?);
            }
            Ok((out, Vec::new()))
        }
        Conn::MySql(c) => {
            let names: Vec<String> = jobs.iter().map(|j| j.table(role).name.clone()).collect();
            Ok((schema_mysql::read(c, &names).await?, Vec::new()))
        }
    }
}

/// The schema check, on the first worker.
pub async fn schema(
    w: &mut Worker,
    sh: &Shared<'_>,
    majors: (u32, u32),
) -> Result<(), VerifyError> {
    sh.set_phase("schema");
    let Some(first) = sh.jobs.first() else {
        return Ok(());
    };
    let (se, te) = (first.src_engine, first.tgt_engine);
    w.begin().await?;
    let (a, b) = tokio::join!(
        read_side(&mut w.src, sh.jobs, Role::Source, majors.0),
        read_side(&mut w.tgt, sh.jobs, Role::Target, majors.1)
    );
    let r = match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(e), _) => Err(SideError::from_sql(Role::Source, "reading the schema", &e)),
        (_, Err(e)) => Err(SideError::from_sql(Role::Target, "reading the schema", &e)),
    };
    w.end(r.is_ok()).await?;
    let Ok(mut f) = sh.findings.lock() else {
        return Ok(());
    };
    match r {
        Ok(((sa, ea), (sb, eb))) => {
            for (i, job) in sh.jobs.iter().enumerate() {
                if let (Some(x), Some(y)) = (sa.get(i), sb.get(i)) {
                    for line in compare(&job.name, x, y, se, te) {
                        f.add(Some(i), Kind::Schema, line, 1);
                    }
                }
                if let Some(ts) = f.table(i) {
                    ts.schema_diffs.get_or_insert(0);
                }
            }
            if se == Engine::Postgres && te == Engine::Postgres {
                for line in compare_enums(&ea, &eb) {
                    f.add(None, Kind::Schema, line, 1);
                }
            }
        }
        Err(SideError::Unreachable(e)) => return Err(VerifyError::Unreachable(e)),
        Err(SideError::Query(e)) => f.add(
            None,
            Kind::Other,
            format!("schema could not be compared: {e}"),
            1,
        ),
    }
    Ok(())
}
