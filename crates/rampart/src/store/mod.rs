//! Storage: one SQL code path for SQLite and PostgreSQL through sqlx's `Any` driver with
//! `$N` placeholders and a portable schema (UUID text ids, integer millisecond times,
//! integer cents). One file per aggregate.
//!
//! Store functions never read the wall clock: a write that stamps a time takes `now` (Unix
//! milliseconds, read by the caller from the one [`crate::clock::Clock`]).
//!
//! SQLite runs in WAL mode with a busy timeout; migrations are embedded in the binary and
//! applied at start and by `rampart migrate`.

pub mod avatars;
pub mod events;
pub mod idempotency;
pub mod one_time;
pub mod orders;
pub mod products;
pub mod sessions;
pub mod users;

use std::{borrow::Cow, time::Duration};

use anyhow::Context as _;
use sqlx::{
    AnyPool, Executor as _,
    any::AnyPoolOptions,
    migrate::{Migration, MigrationType, Migrator},
};

use crate::config::DatabaseUrl;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The database handle: a pool and its backend.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time; write transactions queue here (fair, no polling)
    /// instead of in SQLite's busy handler, which sleeps in growing steps and starves some.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// The migrations, embedded.
fn migrator() -> Migrator {
    let sources: [(i64, &str, &'static str); 5] = [
        (
            1,
            "products",
            include_str!("../../migrations/0001_products.sql"),
        ),
        (
            2,
            "identity",
            include_str!("../../migrations/0002_identity.sql"),
        ),
        (
            3,
            "commerce",
            include_str!("../../migrations/0003_commerce.sql"),
        ),
        (
            4,
            "folded_events",
            include_str!("../../migrations/0004_folded_events.sql"),
        ),
        (
            5,
            "search",
            include_str!("../../migrations/0005_search.sql"),
        ),
    ];
    let migrations = sources
        .into_iter()
        .map(|(version, name, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(name),
                MigrationType::Simple,
                sqlx::SqlSafeStr::into_sql_str(sql),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

impl Db {
    /// Connect to `url`; a SQLite file (and its directory) is created when missing.
    pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.is_sqlite() {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let mut connect_url = url.expose().to_owned();
        if backend == Backend::Sqlite {
            if let Some(path) = url.sqlite_path()
                && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            if !connect_url.contains("mode=") {
                connect_url.push(if connect_url.contains('?') { '&' } else { '?' });
                connect_url.push_str("mode=rwc");
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; the busy timeout makes a
                        // writer wait for the lock instead of failing at once.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await
            .context("connecting to the database")?;
        Ok(Self {
            pool,
            backend,
            writer: Default::default(),
        })
    }

    /// Apply every pending migration.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        migrator()
            .run(&self.pool)
            .await
            .context("applying migrations")
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Close every connection, waiting for in-flight queries (and, for SQLite, the WAL
    /// checkpoint at close).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// On SQLite, wait for this process's turn to write (hold the guard for the whole
    /// write transaction); on PostgreSQL, `None`: row locks do the work there.
    pub async fn writer_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.backend {
            Backend::Sqlite => {
                let waited = std::time::Instant::now();
                let turn = self.writer.clone().lock_owned().await;
                crate::metrics::record_writer_wait(waited.elapsed());
                Some(turn)
            }
            Backend::Postgres => None,
        }
    }
}
