//! The shared Redis cache in front of the session table (with `REDIS_URL`).
//!
//! The database stays the source of truth: a session is written there first; the cache
//! holds a copy for at most [`MAX_TTL_MS`], keyed by the stored (HMAC) form of the id, and
//! is cleared on every change. A read tries the cache and falls back to the database on a
//! miss or any Redis error, so an outage costs speed, never a 503.
//!
//! # Security
//! - After a failed write or delete the cache may hold a copy the database no longer has;
//!   from then on this instance does not read Redis until it has purged every session key
//!   (tried at most once a second), and any copy left dies within [`MAX_TTL_MS`] anyway.
//! - Whatever the cache says, a signed-in session is honoured only after the database
//!   confirms, on every request, that the account is active and its session family live
//!   (see `Pages::signed_in`): a stale or planted copy never signs anyone in after logout,
//!   revocation or deactivation.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::Duration,
};

use redis::{AsyncConnectionConfig, Client, aio::MultiplexedConnection};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// The longest a copy lives in the cache, in milliseconds.
pub const MAX_TTL_MS: i64 = 60_000;

const PREFIX: &str = "rampart:page-session:";

/// A session row as the cache holds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cached {
    pub user_id: Option<String>,
    pub family_id: Option<String>,
    pub role: Option<String>,
    pub mfa_pending: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// The cache; cheap to clone.
#[derive(Clone)]
pub struct Cache(Arc<Inner>);

struct Inner {
    client: Client,
    config: AsyncConnectionConfig,
    connection: Mutex<Option<MultiplexedConnection>>,
    /// A write or delete failed: Redis may hold stale copies.
    distrusted: AtomicBool,
    /// When the last purge was tried (Unix ms).
    last_purge: AtomicI64,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.write_str("Cache(redis)")
    }
}

impl Cache {
    /// A cache on `url`, connecting lazily (a Redis down at start is a cold cache).
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let client =
            Client::open(url).map_err(|_| anyhow::anyhow!("REDIS_URL is not a valid Redis URL"))?;
        Ok(Self(Arc::new(Inner {
            client,
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout)),
            connection: Mutex::new(None),
            distrusted: AtomicBool::new(false),
            last_purge: AtomicI64::new(i64::MIN),
        })))
    }

    async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        let mut current = self.0.connection.lock().await;
        if let Some(conn) = current.as_ref() {
            return Ok(conn.clone());
        }
        let conn = self
            .0
            .client
            .get_multiplexed_async_connection_with_config(&self.0.config)
            .await?;
        *current = Some(conn.clone());
        Ok(conn)
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> redis::RedisResult<T> {
        let mut conn = self.connection().await?;
        let result = cmd.query_async(&mut conn).await;
        if result.is_err() {
            *self.0.connection.lock().await = None;
        }
        result
    }

    /// Whether reads may use Redis now: after a failed write, only once every session key
    /// was purged.
    async fn trusted(&self, now: i64) -> bool {
        if !self.0.distrusted.load(Ordering::SeqCst) {
            return true;
        }
        let last = self.0.last_purge.load(Ordering::SeqCst);
        if now.saturating_sub(last) < 1_000 {
            return false;
        }
        self.0.last_purge.store(now, Ordering::SeqCst);
        if self.purge().await.is_ok() {
            self.0.distrusted.store(false, Ordering::SeqCst);
            tracing::info!(target: "rampart::pages", "session cache purged and trusted again");
            return true;
        }
        false
    }

    async fn purge(&self) -> redis::RedisResult<()> {
        let mut cursor: u64 = 0;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(format!("{PREFIX}*"))
                .arg("COUNT")
                .arg(500);
            let (next, keys): (u64, Vec<String>) = self.run(scan).await?;
            if !keys.is_empty() {
                let mut del = redis::cmd("DEL");
                del.arg(keys);
                self.run::<()>(del).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    fn distrust(&self, what: &str, e: &redis::RedisError) {
        if !self.0.distrusted.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                target: "rampart::pages",
                operation = what,
                error = e.kind_str(),
                "session cache unavailable: reading sessions from the database"
            );
        }
    }

    /// The cached copy of the session stored as `key`; `None` on a miss, on any error, or
    /// while the cache is distrusted.
    pub async fn get(&self, key: &str, now: i64) -> Option<Cached> {
        if !self.trusted(now).await {
            return None;
        }
        let mut cmd = redis::cmd("GET");
        cmd.arg(format!("{PREFIX}{key}"));
        match self.run::<Option<String>>(cmd).await {
            Ok(Some(json)) => serde_json::from_str(&json).ok(),
            Ok(None) => None,
            Err(e) => {
                // A failed read leaves nothing stale behind; no need to distrust.
                tracing::debug!(target: "rampart::pages", error = e.kind_str(), "session cache read failed");
                None
            }
        }
    }

    /// Cache `row` as `key` until its expiry, for at most [`MAX_TTL_MS`].
    pub async fn put(&self, key: &str, row: &Cached, idle_end: i64, now: i64) {
        let ttl = row
            .expires_at
            .min(idle_end)
            .saturating_sub(now)
            .min(MAX_TTL_MS);
        if ttl <= 0 || self.0.distrusted.load(Ordering::SeqCst) {
            return;
        }
        let Ok(json) = serde_json::to_string(row) else {
            return;
        };
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{PREFIX}{key}"))
            .arg(json)
            .arg("PX")
            .arg(ttl);
        if let Err(e) = self.run::<()>(cmd).await {
            self.distrust("put", &e);
        }
    }

    /// Drop the copies of `keys` (after the database changed).
    pub async fn forget(&self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        let mut cmd = redis::cmd("DEL");
        cmd.arg(
            keys.iter()
                .map(|k| format!("{PREFIX}{k}"))
                .collect::<Vec<_>>(),
        );
        if let Err(e) = self.run::<()>(cmd).await {
            self.distrust("forget", &e);
        }
    }
}

trait KindStr {
    fn kind_str(&self) -> &'static str;
}

impl KindStr for redis::RedisError {
    fn kind_str(&self) -> &'static str {
        if self.is_timeout() {
            "timeout"
        } else if self.is_connection_refusal() || self.is_connection_dropped() {
            "connection"
        } else if self.is_io_error() {
            "io"
        } else {
            "redis"
        }
    }
}
