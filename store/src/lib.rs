//! Storage: one sqlx pool over PostgreSQL (`DATABASE_URL=postgres://…`) or, without a URL, an
//! embedded SQLite file, so `sextant serve` works on a fresh machine with nothing installed.
//!
//! Both go through sqlx's `Any` driver with the same queries: the two schemas in
//! `migrations/postgres` and `migrations/sqlite` use the same column types (BIGINT times in
//! milliseconds, TEXT JSON, DOUBLE PRECISION amounts), and the few statements that differ
//! (leasing with `FOR UPDATE SKIP LOCKED`) ask [`Store::dialect`]. Every operation that can
//! meet a database that went away is retried with backoff ([`Store::retry`]).

pub mod goals;
pub mod histories;
pub mod plans;
pub mod rescore_runs;
pub mod simulations;

use std::future::Future;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::AnyPool;

/// The SQLite file used when no `DATABASE_URL` is given.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://sextant.db?mode=rwc";

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");

/// Where data is kept (flags for `serve`, `migrate`, `rescore` and `goals`).
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// `postgres://user@host/db` for PostgreSQL, or `sqlite://FILE?mode=rwc`; default an
    /// embedded SQLite file `sextant.db` in the working directory.
    #[arg(long = "database-url", env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Tries at reaching the database (at start, and for each operation after) before giving
    /// up; the wait doubles from 0.25 s up to 8 s between tries.
    #[arg(long, env = "SEXTANT_DB_RETRIES", default_value_t = 8)]
    pub db_retries: u32,
    /// Most connections the pool opens.
    #[arg(long, env = "SEXTANT_DB_CONNECTIONS", default_value_t = 8)]
    pub db_connections: u32,
}

impl Default for DatabaseArgs {
    fn default() -> Self {
        DatabaseArgs {
            database_url: None,
            db_retries: 8,
            db_connections: 8,
        }
    }
}

/// Which database, for the statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

/// A pool and what it needs to be used well.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    retries: u32,
    /// The URL without its password, for messages.
    shown: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.shown)
    }
}

/// A database failure, named with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{doing} ({database}): {source}")]
pub struct StoreError {
    pub doing: String,
    pub database: String,
    #[source]
    pub source: sqlx::Error,
}

impl Store {
    /// Connect (retrying with backoff while the database is unreachable) and apply the
    /// migrations.
    pub async fn open(args: &DatabaseArgs) -> Result<Store, StoreError> {
        let store = Store::connect(args).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connect without migrating.
    pub async fn connect(args: &DatabaseArgs) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let url = args
            .database_url
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
        let shown = redact(&url);
        let dialect = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            return Err(StoreError {
                doing: "reading DATABASE_URL".into(),
                database: shown,
                source: sqlx::Error::Configuration(
                    "must start with postgres://, postgresql:// or sqlite:".into(),
                ),
            });
        };
        let retries = args.db_retries.max(1);
        let connections = match dialect {
            Dialect::Postgres => args.db_connections.max(1),
            // One writer at a time in SQLite anyway; a few readers beside it.
            Dialect::Sqlite => args.db_connections.clamp(1, 4),
        };
        let pool = retry(&shown, retries, "connecting", || {
            AnyPoolOptions::new()
                .max_connections(connections)
                // Short: sqlx retries connecting within it, and beyond it our own retries
                // (with their log lines and their limit) take over.
                .acquire_timeout(Duration::from_secs(3))
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if dialect == Dialect::Sqlite {
                            for pragma in [
                                "PRAGMA journal_mode = WAL",
                                "PRAGMA synchronous = NORMAL",
                                "PRAGMA busy_timeout = 30000",
                                "PRAGMA foreign_keys = ON",
                            ] {
                                sqlx::Executor::execute(&mut *conn, pragma).await?;
                            }
                        }
                        Ok(())
                    })
                })
                .connect(&url)
        })
        .await?;
        Ok(Store {
            pool,
            dialect,
            retries,
            shown,
        })
    }

    /// Apply `migrations/` (idempotent; PostgreSQL serialises concurrent callers with an
    /// advisory lock, and SQLite's are retried).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.dialect {
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
        };
        let mut last = None;
        for _ in 0..5 {
            match migrator.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        Err(self.error(
            "applying migrations",
            sqlx::Error::Migrate(Box::new(last.expect("at least one try"))),
        ))
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the database answers `SELECT 1` within `limit` (no retries: for `/readyz`).
    pub async fn ping(&self, limit: Duration) -> Result<(), StoreError> {
        let answered = tokio::time::timeout(limit, sqlx::query("SELECT 1").execute(&self.pool))
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut));
        answered
            .map(drop)
            .map_err(|e| self.error("checking the database", e))
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub(crate) fn error(&self, doing: &str, source: sqlx::Error) -> StoreError {
        StoreError {
            doing: doing.into(),
            database: self.shown.clone(),
            source,
        }
    }

    /// Run `op`, retrying with backoff (0.25 s doubling to 8 s) while the failure is one a
    /// retry can mend: the database unreachable, restarting, a connection cut, a lock busy.
    /// `op` must be all-or-nothing (one statement or one transaction), so a retry never
    /// writes half of anything twice.
    pub async fn retry<T, F, Fut>(&self, doing: &str, op: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        retry(&self.shown, self.retries, doing, op).await
    }
}

/// [`Store::retry`], before there is a store.
async fn retry<T, F, Fut>(shown: &str, tries: u32, doing: &str, mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut wait = Duration::from_millis(250);
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(e) if attempt < tries && transient(&e) => {
                tracing::warn!(database = %shown, attempt, error = %e, "{doing}: retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(8));
                attempt += 1;
            }
            Err(source) => {
                let doing = if attempt > 1 {
                    format!("{doing} (gave up after {attempt} tries)")
                } else {
                    doing.to_string()
                };
                return Err(StoreError {
                    doing,
                    database: shown.to_string(),
                    source,
                });
            }
        }
    }
}

/// Failures a later try may not meet.
fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL: connection exceptions (08…), shutting down (57P0…), serialisation
            // and deadlock; SQLite: busy and locked.
            code.starts_with("08")
                || code.starts_with("57P0")
                || code == "40001"
                || code == "40P01"
                || code == "5"
                || code == "6"
                || code == "517"
                || code == "261"
        }
        _ => false,
    }
}

/// `url` with any password replaced by `***`.
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((credentials, host)) = rest.split_once('@') {
            if let Some((user, _)) = credentials.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Row `i` of a multi-row `VALUES` of `width` parameters a row: `($w·i+1, …, $w·i+w<tail>)`,
/// `tail` holding the row's constant columns, if any.
pub(crate) fn values_row(i: usize, width: usize, tail: &str) -> String {
    let parameters: Vec<String> = (1..=width).map(|k| format!("${}", i * width + k)).collect();
    format!("({}{tail})", parameters.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("postgres://sextant:secret@db:5432/sextant"),
            "postgres://sextant:***@db:5432/sextant"
        );
        assert_eq!(redact("postgres://me@db/x"), "postgres://me@db/x");
        assert_eq!(redact("sqlite://sextant.db"), "sqlite://sextant.db");
    }
}
