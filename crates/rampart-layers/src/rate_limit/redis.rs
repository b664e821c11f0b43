//! The Redis store: one atomic Lua script per decision, so any number of instances sharing
//! one Redis admit exactly the quota between them.
//!
//! The script is the arithmetic of [`super::gcra`], line for line. Time comes from the
//! caller (Unix microseconds), like the memory store's, so both behave alike under a test
//! clock; instances should keep their clocks in sync (NTP), as a skew of `s` shifts a
//! key's budget by `s`. Keys expire when their budget is full again, so Redis holds only
//! live budgets.

use std::time::Duration;

use tokio::sync::Mutex;

use redis::{AsyncConnectionConfig, Client, Script, aio::MultiplexedConnection};

use super::{BoxFuture, Decision, Mode, Quota, Store, StoreError};

/// KEYS[1]: the key. ARGV: now (µs), interval (µs), tolerance (µs), mode (0 peek, 1 take,
/// 2 hit), cap (units, for hit). Returns {allowed (0/1), TAT - now after the decision (µs)}.
const GCRA_LUA: &str = r"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local mode = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval
local function store(t)
  redis.call('SET', KEYS[1], string.format('%.0f', t), 'PX', math.max(1, math.ceil((t - now) / 1000)))
end
if mode == 2 then
  local cap = now + interval * tonumber(ARGV[5])
  if new_tat > cap then new_tat = cap end
  store(new_tat)
  return {1, new_tat - now}
end
if new_tat - tolerance > now then
  return {0, tat - now}
end
if mode == 1 then
  store(new_tat)
  return {1, new_tat - now}
end
return {1, tat - now}
";

/// Limits shared through Redis.
pub struct RedisStore {
    client: Client,
    config: AsyncConnectionConfig,
    prefix: String,
    script: Script,
    /// The connection in use; dropped after an error and made anew on the next use. The
    /// lock is held while connecting, so a burst of requests makes one connection, not one
    /// each.
    connection: Mutex<Option<MultiplexedConnection>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never print it.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on `url` (`redis://[:password@]host:port[/db]`), with every
    /// key under `prefix`. Connects lazily: a Redis that is down at start is a degraded
    /// store, not a failed start. An answer slower than `timeout` counts as a failure.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Self, StoreError> {
        // The parse error of the redis crate may echo the URL: say only that it is invalid.
        let client = Client::open(url)
            .map_err(|_| StoreError("REDIS_URL is not a valid Redis URL".into()))?;
        Ok(Self {
            client,
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout)),
            prefix: prefix.to_owned(),
            script: Script::new(GCRA_LUA),
            connection: Mutex::new(None),
        })
    }

    async fn connection(&self) -> Result<MultiplexedConnection, StoreError> {
        let mut current = self.connection.lock().await;
        if let Some(conn) = current.as_ref() {
            return Ok(conn.clone());
        }
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
            .map_err(|e| StoreError(format!("connect: {}", e.kind_str())))?;
        *current = Some(conn.clone());
        Ok(conn)
    }

    async fn forget_connection(&self) {
        *self.connection.lock().await = None;
    }

    /// Run `query` on the connection; an error drops the connection (the next call
    /// makes a new one) and is reported by its kind only.
    async fn with_connection<T, Fut>(
        &self,
        query: impl FnOnce(MultiplexedConnection) -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.connection().await?;
        match query(conn).await {
            Ok(value) => Ok(value),
            Err(e) => {
                self.forget_connection().await;
                Err(StoreError(e.kind_str().to_owned()))
            }
        }
    }

    async fn run(
        &self,
        key: &str,
        quota: &Quota,
        mode: Mode,
        now_ms: i64,
    ) -> Result<Decision, StoreError> {
        let now_us = u64::try_from(now_ms).unwrap_or(0).saturating_mul(1_000);
        let (mode_arg, cap) = match mode {
            Mode::Peek => (0u8, 0u32),
            Mode::Take => (1, 0),
            Mode::Hit { cap } => (2, cap),
        };
        let key = format!("{}{key}", self.prefix);
        let (allowed, ahead_us): (u8, u64) = self
            .with_connection(|mut conn| async move {
                self.script
                    .key(key)
                    .arg(now_us)
                    .arg(quota.interval_us())
                    .arg(quota.tolerance_us())
                    .arg(mode_arg)
                    .arg(cap)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(Decision::from_gcra(quota, allowed == 1, ahead_us))
    }
}

trait KindStr {
    fn kind_str(&self) -> &'static str;
}

impl KindStr for redis::RedisError {
    // Only the kind of failure: a Redis error's text can hold server or URL detail.
    fn kind_str(&self) -> &'static str {
        if self.is_timeout() {
            "timeout"
        } else if self.is_connection_refusal() {
            "connection refused"
        } else if self.is_connection_dropped() || self.is_io_error() {
            "connection lost"
        } else {
            "redis error"
        }
    }
}

impl Store for RedisStore {
    fn decide<'a>(
        &'a self,
        key: &'a str,
        quota: &'a Quota,
        mode: Mode,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        Box::pin(self.run(key, quota, mode, now_ms))
    }

    fn forget<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let key = format!("{}{key}", self.prefix);
        Box::pin(async move {
            let _deleted: i64 = self
                .with_connection(|mut conn| async move {
                    redis::cmd("DEL").arg(key).query_async(&mut conn).await
                })
                .await?;
            Ok(())
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let _pong: String = self
                .with_connection(|mut conn| async move {
                    redis::cmd("PING").query_async(&mut conn).await
                })
                .await?;
            Ok(())
        })
    }
}
