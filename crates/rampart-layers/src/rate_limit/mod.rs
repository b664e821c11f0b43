//! Sliding rate limits (GCRA) with pluggable stores and the IETF `RateLimit` headers.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use rampart_layers::rate_limit::{ClientIpKey, MemoryStore, Now, Policy, Quota, RateLimitLayer};
//!
//! let policy = Policy::new(
//!     "global",
//!     Quota::new(300, Duration::from_secs(60)).unwrap(),
//!     Arc::new(MemoryStore::default()),
//!     Now::system(),
//! );
//! let layer = RateLimitLayer::new(policy, ClientIpKey);
//! # let _ = layer;
//! ```
//!
//! - [`Quota`] is `limit` requests per `period`; [`gcra`] is the arithmetic: a burst of at
//!   most `limit`, then one request every `period / limit`, with no fixed window and so no
//!   double burst at a window's edge.
//! - [`Store`] holds one number per key. [`MemoryStore`] serves one instance;
//!   `RedisStore` (feature `redis`) is exact across instances, one atomic Lua script per
//!   decision; [`FallbackStore`] puts a remote store in front of a memory one and switches
//!   to it, never failing open, while the remote store is down.
//! - [`Policy`] is a named quota over a store and a clock; its [`Policy::check`] is the API
//!   for limits a handler applies itself (failures only, keys from the body).
//!   [`RateLimitLayer`] applies a policy to every request with a key from a
//!   [`KeyExtractor`] ([`ClientIpKey`]: the client IP, IPv6 by /64).
//! - Every response of a limited route carries `RateLimit-Policy` and `RateLimit`
//!   (draft-ietf-httpapi-ratelimit-headers); a refused request is 429 `rate_limited` with
//!   `Retry-After` and a [`RateLimited`] response extension for the application's log.
//!
//! # Security
//! Keys are whatever the extractor says: key by [`ClientIpKey`] only behind a correctly
//! configured [`crate::client_ip::ClientIpLayer`], or a client picks its own key with a
//! forged `X-Forwarded-For`. Limits read time from [`Now`], so tests move a clock instead
//! of sleeping.

mod fallback;
mod future;
pub mod gcra;
mod headers;
mod layer;
mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::{fmt, future::Future, pin::Pin, sync::Arc, time::Duration};

pub use crate::clock::Now;
pub use fallback::{FallbackStore, StoreHealth};
pub use future::ResponseFuture;
pub use headers::{RATELIMIT, RATELIMIT_POLICY, append_headers, rate_limited_response};
pub use layer::{ClientIpKey, KeyExtractor, RateLimitLayer, RateLimitService, RateLimited};
pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::RedisStore;

/// A budget: `limit` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    limit: u32,
    period: Duration,
}

/// A quota that cannot work: no requests, or no time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a quota needs a limit above 0 and a period of at least 1 µs per request")]
pub struct InvalidQuota;

impl Quota {
    /// `limit` requests per `period`.
    pub fn new(limit: u32, period: Duration) -> Result<Self, InvalidQuota> {
        if limit == 0 || period.as_micros() < u128::from(limit) {
            return Err(InvalidQuota);
        }
        Ok(Self { limit, period })
    }

    /// Requests per period.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Microseconds between two requests at the sustained rate.
    pub fn interval_us(&self) -> u64 {
        let period = u64::try_from(self.period.as_micros()).unwrap_or(u64::MAX);
        (period / u64::from(self.limit)).max(1)
    }

    /// How far ahead of now a key's TAT may be and still admit a request: the period, so
    /// that a fresh key admits `limit` requests at once.
    pub fn tolerance_us(&self) -> u64 {
        self.interval_us() * u64::from(self.limit)
    }
}

/// What a check does to the key's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Report whether a request would be admitted; spend nothing.
    Peek,
    /// Admit and spend one unit, or refuse and spend nothing.
    Take,
    /// Always count the request (slow-down), at most `cap` units ahead.
    Hit {
        /// The most units a key may hold.
        cap: u32,
    },
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is within the quota.
    pub allowed: bool,
    /// The quota's limit.
    pub limit: u32,
    /// Requests still admitted now.
    pub remaining: u32,
    /// Units the key holds (for slow-down: requests counted in the recent window).
    pub used: u32,
    /// Time until the key's budget is full again.
    pub reset: Duration,
    /// For a refused request: when one will be admitted.
    pub retry_after: Duration,
}

/// A store that could not answer (a remote store unreachable or too slow).
#[derive(Debug, thiserror::Error)]
#[error("rate-limit store unavailable: {0}")]
pub struct StoreError(pub String);

/// A boxed future, as stores are used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the state of every key lives.
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// Decide one request for `key` at `now_ms` (Unix milliseconds), atomically.
    fn decide<'a>(
        &'a self,
        key: &'a str,
        quota: &'a Quota,
        mode: Mode,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Decision, StoreError>>;

    /// Forget `key`: its budget is full again.
    fn forget<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Whether the store answers; a local store always does.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    /// Decide without waiting, when the store can (a local store); `None` sends the
    /// caller to [`Store::decide`]. It lets the layer skip a boxed future per request.
    fn decide_now(&self, key: &str, quota: &Quota, mode: Mode, now_ms: i64) -> Option<Decision> {
        let _ = (key, quota, mode, now_ms);
        None
    }
}

/// A named quota over a store: the unit the layer applies, and handlers use directly.
#[derive(Debug, Clone)]
pub struct Policy {
    inner: Arc<PolicyInner>,
}

#[derive(Debug)]
struct PolicyInner {
    name: String,
    /// `<name>:`, the prefix of every key.
    key_prefix: String,
    /// The `RateLimit-Policy` member, which never changes: rendered once.
    policy_field: Option<http::HeaderValue>,
    quota: Quota,
    store: Arc<dyn Store>,
    now: Now,
}

impl Policy {
    /// A policy named `name` (the name shown in the `RateLimit` headers and prefixed to
    /// every key, so policies sharing a store never share a key).
    pub fn new(name: impl Into<String>, quota: Quota, store: Arc<dyn Store>, now: Now) -> Self {
        let name = name.into();
        Self {
            inner: Arc::new(PolicyInner {
                key_prefix: format!("{name}:"),
                policy_field: headers::policy_field(&name, &quota),
                name,
                quota,
                store,
                now,
            }),
        }
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The policy's quota.
    pub fn quota(&self) -> &Quota {
        &self.inner.quota
    }

    /// The policy's `RateLimit-Policy` member (`None` only for a name that is not a valid
    /// header value).
    pub(crate) fn policy_field(&self) -> Option<&http::HeaderValue> {
        self.inner.policy_field.as_ref()
    }

    fn full_key(&self, key: &str) -> String {
        let prefix = &self.inner.key_prefix;
        let mut full_key = String::with_capacity(prefix.len() + key.len());
        full_key.push_str(prefix);
        full_key.push_str(key);
        full_key
    }

    /// [`Policy::check`] without waiting, when the store can answer so.
    pub fn check_now(&self, key: &str, mode: Mode) -> Option<Decision> {
        let inner = &self.inner;
        inner
            .store
            .decide_now(&self.full_key(key), &inner.quota, mode, inner.now.ms())
    }

    /// Give `key` its whole budget back (a login that proved the password clears the
    /// account's failures). A store error is logged: the budget then refills with time.
    pub async fn forget(&self, key: &str) {
        if let Err(e) = self.inner.store.forget(&self.full_key(key)).await {
            tracing::warn!(policy = %self.inner.name, error = %e, "rate-limit store failed to forget a key");
        }
    }

    /// Decide one request for `key`. A store error admits the request (and is logged):
    /// wrap a remote store in a [`FallbackStore`] so this cannot happen.
    pub async fn check(&self, key: &str, mode: Mode) -> Decision {
        let inner = &self.inner;
        let full_key = self.full_key(key);
        match inner
            .store
            .decide(&full_key, &inner.quota, mode, inner.now.ms())
            .await
        {
            Ok(decision) => decision,
            Err(e) => {
                tracing::warn!(policy = %inner.name, error = %e, "rate-limit store failed; request admitted");
                Decision::from_gcra(&inner.quota, true, 0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_needs_requests_and_at_least_a_microsecond_for_each() {
        assert_eq!(Quota::new(0, Duration::from_secs(60)), Err(InvalidQuota));
        assert_eq!(Quota::new(10, Duration::from_micros(9)), Err(InvalidQuota));
        let generous = Quota::new(1_000_000, Duration::from_secs(60)).unwrap();
        assert_eq!(generous.interval_us(), 60);
        assert_eq!(generous.tolerance_us(), 60_000_000);
    }
}
