//! Storage: one SQL code path for SQLite and PostgreSQL through sqlx's `Any` driver with
//! `$N` placeholders and a portable schema (UUID text ids, integer millisecond times,
//! integer cents). One file per aggregate.
//!
//! Store functions never read the wall clock: a write that stamps a time takes `now` (Unix
//! milliseconds, read by the caller from the one [`crate::clock::Clock`]).
//!
//! SQLite runs in WAL mode with a busy timeout and `synchronous = NORMAL` (a commit
//! survives a killed process; `?synchronous=full` in the URL makes it survive a power loss
//! too), checkpointing every 10 000 WAL pages; migrations are embedded in the binary and applied at start and by `rampart
//! migrate`.
//!
//! Waiting for a connection is bounded (`RAMPART_DB_ACQUIRE_TIMEOUT`, 1 s by default, which
//! also bounds opening one: sqlx connects within the acquire deadline), and on PostgreSQL a
//! background [`probe`] keeps whether the database is reachable, so that an outage answers
//! 503 at once instead of after the deadline.

pub mod avatars;
pub mod batch;
pub mod events;
pub mod idempotency;
pub mod one_time;
pub mod orders;
pub mod probe;
pub mod products;
pub mod sessions;
pub mod users;

use std::{borrow::Cow, sync::Arc, time::Duration};

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
    /// Whether the database is known unreachable (always reachable on SQLite).
    reachability: Arc<probe::Reachability>,
    /// The PostgreSQL reachability probe, stopped with the last handle.
    probe: Option<Arc<probe::Probe>>,
    /// The writer task orders queue to, committing them in groups (both backends).
    orders: orders::OrderQueue,
}

/// The default bound on waiting for (and opening) a database connection.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// The migrations, embedded.
fn migrator() -> Migrator {
    let sources: [(i64, &str, &'static str); 7] = [
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
        (
            7,
            "browser_sessions",
            include_str!("../../migrations/0007_browser_sessions.sql"),
        ),
        (
            8,
            "stock_version",
            include_str!("../../migrations/0008_stock_version.sql"),
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

/// Remove the `synchronous=normal|full|extra` parameter (ours, not sqlx's) from a SQLite
/// URL's query and answer the pragma value; `NORMAL` without one.
fn take_synchronous(url: &mut String) -> anyhow::Result<&'static str> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok("NORMAL");
    };
    let mut chosen = "NORMAL";
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some((key, value)) if key.eq_ignore_ascii_case("synchronous") => {
                chosen = match value.to_ascii_lowercase().as_str() {
                    "normal" => "NORMAL",
                    "full" => "FULL",
                    "extra" => "EXTRA",
                    _ => anyhow::bail!("DATABASE_URL: synchronous must be normal, full or extra"),
                };
            }
            _ => rest.push(pair),
        }
    }
    *url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok(chosen)
}

impl Db {
    /// Connect to `url` with the default acquire timeout; a SQLite file (and its directory)
    /// is created when missing.
    pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> anyhow::Result<Self> {
        Self::connect_with(url, max_connections, DEFAULT_ACQUIRE_TIMEOUT).await
    }

    /// Connect to `url` with a pool of `max_connections` whose acquire (opening a connection
    /// included) gives up after `acquire_timeout`; on PostgreSQL, start the reachability
    /// probe, each of its checks bounded by the same timeout.
    pub async fn connect_with(
        url: &DatabaseUrl,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let acquire_timeout = if acquire_timeout.is_zero() {
            DEFAULT_ACQUIRE_TIMEOUT
        } else {
            acquire_timeout
        };
        sqlx::any::install_default_drivers();
        let backend = if url.is_sqlite() {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let mut connect_url = url.expose().to_owned();
        let mut synchronous = "NORMAL";
        if backend == Backend::Sqlite {
            synchronous = take_synchronous(&mut connect_url)?;
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
            .acquire_timeout(acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; the busy timeout makes a
                        // writer wait for the lock instead of failing at once.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        // NORMAL: a commit is in the WAL when it returns (it survives a
                        // killed process); FULL also fsyncs it (it survives a power loss).
                        let pragma = format!("PRAGMA synchronous = {synchronous}");
                        conn.execute(sqlx::AssertSqlSafe(pragma)).await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        // A checkpoint every 10 000 WAL pages (~40 MB) instead of 1 000:
                        // it ran inside the committing order batch (6.4 % of the orders
                        // profile), and one checkpoint copies each page once however often
                        // it was rewritten, so fewer, longer ones copy far less. Commits
                        // are as durable; the WAL file stays up to ~40 MB.
                        conn.execute("PRAGMA wal_autocheckpoint = 10000").await?;
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await
            .context("connecting to the database")?;
        let reachability = Arc::new(probe::Reachability::default());
        let probe = (backend == Backend::Postgres).then(|| {
            Arc::new(probe::Probe::spawn(
                connect_url,
                acquire_timeout,
                reachability.clone(),
            ))
        });
        Ok(Self {
            pool,
            backend,
            writer: Default::default(),
            reachability,
            probe,
            orders: Default::default(),
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

    /// Whether the probe found the database unreachable at its last check.
    pub fn is_known_down(&self) -> bool {
        self.reachability.is_down()
    }

    /// A request failed as if the database were unreachable: have the probe check now.
    pub fn suspect_down(&self) {
        self.reachability.suspect();
    }

    /// Close every connection, waiting for in-flight queries (and, for SQLite, the WAL
    /// checkpoint at close); the probe stops.
    pub async fn close(&self) {
        if let Some(probe) = &self.probe {
            probe.stop();
        }
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

    /// The lock behind [`Db::writer_turn`], for the order writer task.
    pub(crate) fn writer_lock(&self) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        self.writer.clone()
    }

    /// The queue to the order writer task ([`orders`]).
    pub(crate) fn order_queue(&self) -> &orders::OrderQueue {
        &self.orders
    }
}

#[cfg(test)]
mod tests {
    use super::take_synchronous;

    #[test]
    fn the_synchronous_parameter_is_ours_and_checked() {
        let mut url = "sqlite://data/r.db?mode=rwc&synchronous=FULL".to_owned();
        assert_eq!(take_synchronous(&mut url).unwrap(), "FULL");
        assert_eq!(url, "sqlite://data/r.db?mode=rwc");
        let mut url = "sqlite://data/r.db?synchronous=normal".to_owned();
        assert_eq!(take_synchronous(&mut url).unwrap(), "NORMAL");
        assert_eq!(url, "sqlite://data/r.db");
        let mut url = "sqlite://data/r.db".to_owned();
        assert_eq!(take_synchronous(&mut url).unwrap(), "NORMAL");
        let mut url = "sqlite://data/r.db?synchronous=off".to_owned();
        assert!(
            take_synchronous(&mut url).is_err(),
            "off would lose commits"
        );
    }
}
