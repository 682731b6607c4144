//! The demo's data: an SQLite "dating app" (users, profiles, matches,
//! messages, and the app's write switch) seeded with realistic sizes and a few
//! awkward values (NULLs, unicode, blobs, empty strings), the same schema
//! created empty on the target, and a small writer playing the app's traffic
//! wherever the app points while that database's write switch is 'open'.
//! Deterministic: the same `rows` gives the same data. `ferry demo --postgres`
//! plays the same story on throwaway PostgreSQL clusters ([`cluster`], [`pg`]).

pub mod cluster;
pub mod pg;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The runbook, embedded so `ferry demo` works from any folder and after `cargo install`.
pub const RUNBOOK: &str = include_str!("../../runbooks/demo.toml");

/// Rows seeded by default: enough that copy and verify have real work, a few seconds on a laptop.
pub const DEFAULT_ROWS: u64 = 120_000;
/// The fewest rows `--rows` takes: every table gets a few.
pub const MIN_ROWS: u64 = 100;
/// The most rows `--rows` takes: about 600 MB per SQLite file, and still minutes, not hours.
pub const MAX_ROWS: u64 = 10_000_000;

pub const SCHEMA: &str = "
create table users (
  id integer primary key,
  email text not null unique,
  name text not null,
  country text,
  created_at text not null
);
create table profiles (
  user_id integer primary key references users(id),
  bio text,
  birth_year integer,
  photo blob,
  looking_for text
);
create table matches (
  id integer primary key,
  user_a integer not null references users(id),
  user_b integer not null references users(id),
  score real,
  matched_at text not null
);
create table messages (
  id integer primary key,
  match_id integer not null references matches(id),
  sender_id integer not null references users(id),
  body text,
  sent_at text not null
);
create index messages_match_idx on messages(match_id);
create table app_settings (key text primary key, value text not null);
";

/// How many rows of each table make `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub users: u64,
    pub matches: u64,
    pub messages: u64,
}

impl Sizes {
    pub fn for_total(total: u64) -> Sizes {
        let total = total.max(40);
        let users = (total / 10).max(2);
        let matches = (total / 4).max(1);
        // profiles: one per user
        let messages = total.saturating_sub(users * 2 + matches).max(1);
        Sizes {
            users,
            matches,
            messages,
        }
    }

    pub fn total(&self) -> u64 {
        self.users * 2 + self.matches + self.messages
    }
}

pub async fn open(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10));
    SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(opts)
        .await
}

/// A small deterministic generator (xorshift64*), so demo data is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

pub(crate) const FIRST: &[&str] = &[
    "Ana",
    "Björn",
    "Chloé",
    "Dmitri",
    "Émile",
    "Fatima",
    "Giulia",
    "Hiroshi",
    "Ingrid",
    "José",
    "Kwame",
    "Łucja",
    "Mei",
    "Nuño",
    "Olúwadámilọ́lá",
    "Priya",
    "Quentin",
    "Rúna",
    "Søren",
    "Thảo",
    "Uriel",
    "Valentina",
    "Wei",
    "Xóchitl",
    "Yasmin",
    "Zoë",
];
pub(crate) const COUNTRIES: &[&str] = &[
    "PT", "SE", "FR", "UA", "DE", "NG", "IT", "JP", "NO", "ES", "GH", "PL", "CN", "BR", "IN", "IS",
    "DK", "VN", "MX", "IR",
];
pub(crate) const WORDS: &[&str] = &[
    "hi",
    "hey",
    "coffee",
    "sunday?",
    "👋",
    "haha",
    "true",
    "dog person",
    "🐕",
    "hiking",
    "新年快乐",
    "ok",
    "tabs\tand spaces",
    "line\nbreak",
    "quote \"this\"",
    "back\\slash",
    "",
    "see you",
    "🎉🎉",
    "ça va?",
];

fn ts(base: i64, offset: u64) -> String {
    chrono::DateTime::from_timestamp(base + offset as i64, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn esc(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Insert rows `1..=n` of `table`, each made by `row(id)` as SQL literals, in
/// batches of 500: memory stays flat whatever `n` is.
async fn insert(
    tx: &mut sqlx::SqliteConnection,
    table: &str,
    cols: &str,
    n: u64,
    mut row: impl FnMut(u64) -> String,
) -> Result<(), sqlx::Error> {
    let mut id = 1;
    while id <= n {
        let end = (id + 499).min(n);
        let values: Vec<String> = (id..=end).map(&mut row).collect();
        let sql = format!("insert into {table} ({cols}) values {}", values.join(","));
        sqlx::raw_sql(&sql).execute(&mut *tx).await?;
        id = end + 1;
    }
    Ok(())
}

/// Create the source with data and the target with the same, empty schema.
pub async fn seed(source: &Path, target: &Path, total: u64) -> Result<Sizes, sqlx::Error> {
    for p in [source, target] {
        for suffix in ["", "-wal", "-shm"] {
            let f = format!("{}{suffix}", p.display());
            let _ = std::fs::remove_file(f);
        }
    }
    let sizes = Sizes::for_total(total);
    let src = open(source).await?;
    // one generator through every table, in this order, so the data is the same each time
    let mut rng = Rng(0x5EED_F0E1_DA7E_1234);
    let mut tx = src.begin().await?;
    sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
    insert_users(&mut tx, &mut rng, &sizes).await?;
    insert_profiles(&mut tx, &mut rng, &sizes).await?;
    insert_matches(&mut tx, &mut rng, &sizes).await?;
    insert_messages(&mut tx, &mut rng, &sizes).await?;
    sqlx::raw_sql(
        "insert into app_settings (key, value) values ('writes', 'open'), ('app_name', 'Swipe ♥')",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    src.close().await;

    let tgt = open(target).await?;
    sqlx::raw_sql(SCHEMA).execute(&tgt).await?;
    tgt.close().await;
    Ok(sizes)
}

/// The seconds since the epoch the demo's timestamps count from.
const BASE: i64 = 1_700_000_000;

/// Users: names, emails, some without a country.
async fn insert_users(
    tx: &mut sqlx::SqliteConnection,
    rng: &mut Rng,
    sizes: &Sizes,
) -> Result<(), sqlx::Error> {
    insert(
        tx,
        "users",
        "id,email,name,country,created_at",
        sizes.users,
        |id| {
            let name = format!("{} {}", rng.pick(FIRST), rng.pick(FIRST));
            let country = if id % 17 == 0 {
                "NULL".to_string()
            } else {
                esc(rng.pick(COUNTRIES))
            };
            format!(
                "({id},{},{},{country},{})",
                esc(&format!("user{id}@example.org")),
                esc(&name),
                esc(&ts(BASE, id * 97))
            )
        },
    )
    .await
}

/// Profiles: bios (some empty, some NULL), photos as blobs, birth years.
async fn insert_profiles(
    tx: &mut sqlx::SqliteConnection,
    rng: &mut Rng,
    sizes: &Sizes,
) -> Result<(), sqlx::Error> {
    insert(
        tx,
        "profiles",
        "user_id,bio,birth_year,photo,looking_for",
        sizes.users,
        |id| {
            let bio = match id % 7 {
                0 => "NULL".to_string(),
                1 => esc(""),
                _ => esc(&format!(
                    "{} {} {}",
                    rng.pick(WORDS),
                    rng.pick(WORDS),
                    rng.pick(WORDS)
                )),
            };
            let photo = if id % 5 == 0 {
                "NULL".to_string()
            } else {
                format!("X'{:016x}{:016x}00ff'", rng.next(), rng.next())
            };
            let year = if id % 11 == 0 {
                "NULL".to_string()
            } else {
                (1960 + rng.below(45)).to_string()
            };
            format!(
                "({id},{bio},{year},{photo},{})",
                esc(rng.pick(&["friends", "love", "chat", "dance partner"]))
            )
        },
    )
    .await
}

/// Matches between random users, some without a score.
async fn insert_matches(
    tx: &mut sqlx::SqliteConnection,
    rng: &mut Rng,
    sizes: &Sizes,
) -> Result<(), sqlx::Error> {
    insert(
        tx,
        "matches",
        "id,user_a,user_b,score,matched_at",
        sizes.matches,
        |id| {
            let a = 1 + rng.below(sizes.users);
            let b = 1 + rng.below(sizes.users);
            let score = if id % 13 == 0 {
                "NULL".to_string()
            } else {
                format!("{:.4}", rng.below(10_000) as f64 / 10_000.0)
            };
            format!(
                "({id},{a},{b},{score},{})",
                esc(&ts(BASE, 1_000_000 + id * 31))
            )
        },
    )
    .await
}

/// Messages in random matches, with awkward text and some NULL bodies.
async fn insert_messages(
    tx: &mut sqlx::SqliteConnection,
    rng: &mut Rng,
    sizes: &Sizes,
) -> Result<(), sqlx::Error> {
    insert(
        tx,
        "messages",
        "id,match_id,sender_id,body,sent_at",
        sizes.messages,
        |id| {
            let m = 1 + rng.below(sizes.matches);
            let sender = 1 + rng.below(sizes.users);
            let body = if id % 23 == 0 {
                "NULL".to_string()
            } else {
                esc(&format!("{} {}", rng.pick(WORDS), rng.pick(WORDS)))
            };
            format!(
                "({id},{m},{sender},{body},{})",
                esc(&ts(BASE, 2_000_000 + id * 7))
            )
        },
    )
    .await
}

/// Where the app points, as `switch-app` and its rollback write it.
pub const APP_CONFIG: &str = "app-config.env";

/// Point the app at `db` (a file name in `dir`), as the demo runbook's switch does.
pub fn point_app_at(dir: &Path, db: &str) -> std::io::Result<()> {
    std::fs::write(
        dir.join(APP_CONFIG),
        format!("DATABASE_URL=sqlite://{}\n", dir.join(db).display()),
    )
}

/// Messages the app wrote, per database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub source: u64,
    pub target: u64,
}

async fn writes_open(pool: &SqlitePool) -> bool {
    sqlx::query_scalar::<_, String>("select value from app_settings where key = 'writes'")
        .fetch_optional(pool)
        .await
        .ok()
        .flatten()
        .as_deref()
        == Some("open")
}

/// The app's traffic, until cancelled: every ~200 ms a few messages into the
/// database `app-config.env` in `dir` points at (source.db until `switch-app`),
/// while that database's `app_settings.writes` is 'open'. So the freeze stops
/// it, a rolled-back freeze starts it again, and after the switch and
/// `open-writes-on-target` it writes to the target, as the app would.
pub async fn app_writer(dir: PathBuf, cancel: CancellationToken) -> Result<Written, sqlx::Error> {
    let source = open(&dir.join("source.db")).await?;
    let mut target: Option<SqlitePool> = None;
    let mut rng = Rng(0xA11C_E5EE_D00D_F00D);
    let mut written = Written::default();
    loop {
        let on_target = std::fs::read_to_string(dir.join(APP_CONFIG))
            .is_ok_and(|c| c.trim_end().ends_with("/target.db"));
        let pool = if on_target {
            if target.is_none() {
                target = Some(open(&dir.join("target.db")).await?);
            }
            target.as_ref().unwrap_or(&source)
        } else {
            &source
        };
        if writes_open(pool).await {
            for _ in 0..1 + rng.below(4) {
                let body = format!("{} {}", rng.pick(WORDS), rng.pick(WORDS));
                let r = sqlx::query(
                    "insert into messages (match_id, sender_id, body, sent_at)
                     select (select max(id) from matches), (select max(id) from users), ?1, strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
                )
                .bind(body)
                .execute(pool)
                .await;
                if r.is_ok() {
                    if on_target {
                        written.target += 1;
                    } else {
                        written.source += 1;
                    }
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    source.close().await;
    if let Some(t) = target {
        t.close().await;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_add_up() {
        let s = Sizes::for_total(120_000);
        assert_eq!(
            s,
            Sizes {
                users: 12_000,
                matches: 30_000,
                messages: 66_000
            }
        );
        assert_eq!(s.total(), 120_000);
        assert!(Sizes::for_total(1).total() >= 4);
    }

    #[tokio::test]
    async fn seed_makes_awkward_data_and_an_empty_target() {
        let dir = tempfile::tempdir().unwrap();
        let (s, t) = (dir.path().join("s.db"), dir.path().join("t.db"));
        let sizes = seed(&s, &t, 2_000).await.unwrap();
        let src = open(&s).await.unwrap();
        let n: i64 = sqlx::query_scalar("select count(*) from messages")
            .fetch_one(&src)
            .await
            .unwrap();
        assert_eq!(n as u64, sizes.messages);
        let nulls: i64 = sqlx::query_scalar("select count(*) from profiles where bio is null")
            .fetch_one(&src)
            .await
            .unwrap();
        let empty: i64 = sqlx::query_scalar("select count(*) from profiles where bio = ''")
            .fetch_one(&src)
            .await
            .unwrap();
        let blobs: i64 =
            sqlx::query_scalar("select count(*) from profiles where typeof(photo) = 'blob'")
                .fetch_one(&src)
                .await
                .unwrap();
        let unicode: i64 = sqlx::query_scalar("select count(*) from users where name like '%ø%' or name like '%é%' or name like '%ả%'").fetch_one(&src).await.unwrap();
        assert!(
            nulls > 0 && empty > 0 && blobs > 0 && unicode > 0,
            "{nulls} {empty} {blobs} {unicode}"
        );
        let tgt = open(&t).await.unwrap();
        let m: i64 = sqlx::query_scalar("select count(*) from messages")
            .fetch_one(&tgt)
            .await
            .unwrap();
        assert_eq!(m, 0, "the target has the schema and no rows");
        // seeding again in the same place starts from scratch
        let again = seed(&s, &t, 2_000).await.unwrap();
        assert_eq!(again, sizes);
    }

    async fn count(pool: &SqlitePool) -> i64 {
        sqlx::query_scalar("select count(*) from messages")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    async fn set_writes(pool: &SqlitePool, v: &str) {
        sqlx::query("update app_settings set value = ?1 where key = 'writes'")
            .bind(v)
            .execute(pool)
            .await
            .unwrap();
    }

    async fn grows(pool: &SqlitePool) -> bool {
        let before = count(pool).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        count(pool).await > before
    }

    #[tokio::test]
    async fn the_writer_follows_the_freeze_its_rollback_and_the_switch() {
        let dir = tempfile::tempdir().unwrap();
        let (s, t) = (dir.path().join("source.db"), dir.path().join("target.db"));
        seed(&s, &t, 400).await.unwrap();
        point_app_at(dir.path(), "source.db").unwrap();
        let cancel = CancellationToken::new();
        let w = tokio::spawn(app_writer(dir.path().to_path_buf(), cancel.clone()));
        let src = open(&s).await.unwrap();
        let tgt = open(&t).await.unwrap();
        assert!(grows(&src).await, "it writes while writes are open");
        // freeze-writes
        set_writes(&src, "frozen").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!grows(&src).await, "nothing is written after the freeze");
        // `b` on freeze-writes: the app writes again (it used to have quit for good)
        set_writes(&src, "open").await;
        assert!(
            grows(&src).await,
            "writes resume when the freeze is rolled back"
        );
        set_writes(&src, "frozen").await;
        // the copy brings the switch over as 'frozen'; switch-app, then open-writes-on-target
        sqlx::raw_sql(
            "insert into app_settings values ('writes', 'frozen');
             insert into users values (1, 'a@example.org', 'A', NULL, '2024-01-01');
             insert into matches values (1, 1, 1, NULL, '2024-01-01');",
        )
        .execute(&tgt)
        .await
        .unwrap();
        point_app_at(dir.path(), "target.db").unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!grows(&tgt).await, "not before the target is opened");
        set_writes(&tgt, "open").await;
        assert!(
            grows(&tgt).await,
            "after the switch the app writes to the target"
        );
        assert!(!grows(&src).await, "and no longer to the source");
        cancel.cancel();
        let written = tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .expect("the writer stops when cancelled")
            .unwrap()
            .unwrap();
        assert!(written.source > 0 && written.target > 0, "{written:?}");
    }
}
