//! Storage: one repository layer over sqlx's `Any` driver, so the same code and
//! the same SQL serve SQLite (the embedded default) and MySQL/MariaDB.
//!
//! The SQL sticks to what both speak: `?` placeholders, BIGINT epoch
//! milliseconds for times, no upserts. Schema changes live in
//! `migrations/sqlite` and `migrations/mysql`, one file per change in both.

mod conferences;
mod events;
mod links;
mod mcu;
mod nodes;
mod settings;
mod tokens;
mod users;

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;

pub use conferences::{Conference, ConferenceState};
pub use events::MAX_CATCH_UP;
pub use links::JoinLinkRow;
pub use mcu::McuBindingRow;
pub use nodes::NodeRow;
pub use users::{NewUser, Role, UserRow};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("migrations/mysql");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    MySql,
}

/// Storage failures, by who is at fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or failed: the infrastructure's fault.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A unique key is taken.
    #[error("already exists")]
    Conflict,
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite:// or mysql://")]
    UnsupportedUrl(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Unavailable(e),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    kind: DbKind,
}

impl Store {
    /// Connects, creating a SQLite file's directory when needed, and applies
    /// the migrations of that database kind.
    pub async fn open(url: &str, max_connections: u32) -> StoreResult<Store> {
        install_default_drivers();
        let (url, kind) = if let Some(rest) = url.strip_prefix("mariadb://") {
            (format!("mysql://{rest}"), DbKind::MySql)
        } else if url.starts_with("mysql://") {
            (url.to_string(), DbKind::MySql)
        } else if url.starts_with("sqlite:") {
            (url.to_string(), DbKind::Sqlite)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        if kind == DbKind::Sqlite {
            create_sqlite_dir(&url);
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if kind == DbKind::Sqlite {
                1.max(max_connections.min(4))
            } else {
                max_connections
            })
            // A request waits this long for a connection before it is told the
            // database is unavailable, instead of hanging.
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if kind == DbKind::Sqlite {
                        // Per connection. With WAL, NORMAL syncs at
                        // checkpoints rather than at every commit: still safe
                        // against corruption, and the event log's many small
                        // writes no longer wait on the disk each time.
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        if kind == DbKind::Sqlite {
            // WAL lets the CLI write while the server reads; the busy timeout
            // makes a concurrent writer wait instead of failing.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        let migrator = match kind {
            DbKind::Sqlite => &SQLITE_MIGRATIONS,
            DbKind::MySql => &MYSQL_MIGRATIONS,
        };
        migrator.run(&pool).await?;
        Ok(Store { pool, kind })
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

fn create_sqlite_dir(url: &str) {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        return;
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        // A failure here shows up as a clear connect error right after.
        let _ = std::fs::create_dir_all(parent);
    }
}

/// Now, in epoch milliseconds: the unit of every stored time.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
