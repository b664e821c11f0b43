//! The limits of API.md §6, built from the configuration over one store: memory, or Redis
//! (`REDIS_URL`) with a memory fallback while Redis is down.
//!
//! The global limit is a layer in `app.rs`; the route limits need what only a service
//! knows (the account in the body, whether the password was right), so the identity
//! services (`crate::auth::login` and friends) call them and return a [`Limited`] outcome
//! whose [`Applied`] fields the caller writes to its response:
//!
//! ```text
//! let applied = peek_all(&[(&limits.login_ip, ip), (&limits.login_account, account)]).await;
//! if let Some(refused) = limits.refusal(events, &applied, ip, now).await { … }   // 429
//! …verify…
//! limits.login_ip.check(ip, Mode::Take).await;                                 // failures only
//! ```
//!
//! # Security
//! - Account and address keys are SHA-256 digests of the normalised address, so Redis and
//!   memory never hold an address, and unknown addresses are counted exactly like known
//!   ones (the 429 reveals nothing).
//! - The store's health changes are security events (`rate_limit_store_degraded`).
//! - A `rate_limited` event is recorded at most once per policy, key and minute, so a
//!   flood of refused requests cannot turn into a flood of database writes.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use http::HeaderMap;
use rampart_layers::{
    rate_limit::{
        Decision, FallbackStore, MemoryStore, Mode, Now, Policy, Quota, RedisStore, Store,
        StoreHealth, append_headers,
    },
    slow_down::SlowDown,
};
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{
    clock::Clock,
    config::{Config, RateSpec},
    error::AppError,
    security_events::{EventContext, EventKind, Recorder, SecurityEvents},
};

/// How often a degraded store pings Redis.
const REDIS_PROBE_EVERY: Duration = Duration::from_millis(250);
/// At most one `rate_limited` event per policy and key within this.
const EVENT_EVERY_MS: i64 = 60_000;

/// Every limit of the server.
#[derive(Debug, Clone)]
pub struct RateLimiters {
    /// Every request, per client (`RAMPART_RATE_LIMIT_GLOBAL`); `None` when it is `off`.
    pub global: Option<Policy>,
    /// Failed logins per account.
    pub login_account: Policy,
    /// Failed logins per client.
    pub login_ip: Policy,
    /// Registrations per client.
    pub register: Policy,
    /// Forgot-password requests per address.
    pub forgot: Policy,
    /// The progressive delay of forgot-password per client.
    pub forgot_slow_down: SlowDown,
    /// Failed MFA codes per account (per `mfa_token` the count is in the database).
    pub mfa_account: Policy,
    fallback: Option<Arc<FallbackStore>>,
    events_seen: Arc<Mutex<HashMap<String, i64>>>,
}

fn quota(spec: RateSpec) -> anyhow::Result<Quota> {
    Quota::new(spec.count, spec.period).with_context(|| format!("rate limit {spec}"))
}

/// The key of an address: a digest, never the address itself.
pub fn address_key(normalised: &str) -> String {
    let digest = Sha256::digest(normalised.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl RateLimiters {
    /// Build every policy over the configured store. With Redis, start the prober that
    /// returns to it, and record a security event on every change of its health. Must run
    /// inside the Tokio runtime.
    pub fn new(config: &Config, clock: &Clock, events: &SecurityEvents) -> anyhow::Result<Self> {
        let (store, fallback): (Arc<dyn Store>, _) = match &config.redis_url {
            Some(url) => {
                let redis = RedisStore::new(
                    url.expose_secret(),
                    "rampart:rl:",
                    config.tunables.redis_timeout,
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                let fallback = FallbackStore::new(Arc::new(redis));
                fallback.spawn_prober(REDIS_PROBE_EVERY);
                watch_health(&fallback, events.clone());
                (fallback.clone(), Some(fallback))
            }
            None => (Arc::new(MemoryStore::default()), None),
        };
        let c = clock.clone();
        let now = Now::from_fn(move || c.now_ms());
        let r = &config.rate_limits;
        let policy = |name: &str, spec: RateSpec| -> anyhow::Result<Policy> {
            Ok(Policy::new(name, quota(spec)?, store.clone(), now.clone()))
        };
        let slow = &config.rate_limits.forgot_slow_down;
        Ok(Self {
            global: r.global.map(|g| policy("global", g)).transpose()?,
            login_account: policy("login-account", r.login_account)?,
            login_ip: policy("login-ip", r.login_ip)?,
            register: policy("register", r.register)?,
            forgot: policy("forgot", r.forgot)?,
            forgot_slow_down: SlowDown::new(
                "forgot-slow",
                quota(slow.after)?,
                slow.step,
                slow.max_delay,
                store.clone(),
                now.clone(),
            ),
            mfa_account: policy("mfa-account", r.mfa)?,
            fallback,
            events_seen: Arc::default(),
        })
    }

    /// Whether Redis is configured and down (limits are per instance meanwhile).
    pub fn is_degraded(&self) -> bool {
        self.fallback.as_ref().is_some_and(|f| f.is_degraded())
    }

    /// Changes of the store's health, when Redis is configured.
    pub fn health(&self) -> Option<tokio::sync::watch::Receiver<StoreHealth>> {
        self.fallback.as_ref().map(|f| f.subscribe())
    }

    /// Record a `rate_limited` event for `policy` and `key`, unless one was recorded
    /// within the last minute.
    pub async fn record_refusal(
        &self,
        events: &SecurityEvents,
        ctx: &EventContext,
        policy: &str,
        key: &str,
        now_ms: i64,
    ) {
        let seen_key = format!("{policy}:{key}");
        {
            let mut seen = self.events_seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen
                .get(&seen_key)
                .is_some_and(|at| now_ms - at < EVENT_EVERY_MS)
            {
                return;
            }
            if seen.len() > 10_000 {
                seen.retain(|_, at| now_ms - *at < EVENT_EVERY_MS);
            }
            seen.insert(seen_key, now_ms);
        }
        let details = json!({"policy": policy});
        events
            .at(ctx)
            .record(EventKind::RateLimited, None, details)
            .await;
    }
}

impl RateLimiters {
    /// The 429 for the first refusal in `applied`, if any, after recording it as a
    /// `rate_limited` event for `key` (once a minute, see [`Self::record_refusal`]).
    pub async fn refusal(
        &self,
        events: Recorder<'_>,
        applied: &Applied,
        key: &str,
        now_ms: i64,
    ) -> Option<AppError> {
        let (policy, decision) = applied.refused()?;
        self.record_refusal(
            events.events(),
            events.context(),
            policy.name(),
            key,
            now_ms,
        )
        .await;
        Some(AppError::RateLimited {
            retry_after: decision.retry_after.as_secs().max(1),
        })
    }
}

/// A service's result with the route limits that applied to the request: the caller
/// writes their `RateLimit` fields on its response, success or not.
#[derive(Debug)]
pub struct Limited<T> {
    /// The outcome.
    pub result: Result<T, AppError>,
    /// The limits that decided along the way.
    pub applied: Applied,
}

impl<T> Limited<T> {
    /// `result` under `applied`.
    pub fn new(result: Result<T, AppError>, applied: Applied) -> Self {
        Self { result, applied }
    }
}

/// Each change of the store's health becomes a log line and, when it degrades, a
/// `rate_limit_store_degraded` event.
fn watch_health(store: &Arc<FallbackStore>, events: SecurityEvents) {
    let mut health = store.subscribe();
    tokio::spawn(async move {
        while health.changed().await.is_ok() {
            let now = health.borrow_and_update().clone();
            if let StoreHealth::Degraded(reason) = now {
                let ctx = EventContext {
                    route: "(rate-limit store)".into(),
                    ..EventContext::default()
                };
                let details =
                    json!({"store": "redis", "reason": reason, "fallback": "per-instance memory"});
                let events = events.at(&ctx);
                events
                    .record(EventKind::RateLimitStoreDegraded, None, details)
                    .await;
            }
        }
    });
}

/// The rate-limit fields of the route limits that applied to one request, for its
/// response.
#[derive(Debug, Default)]
pub struct Applied(Vec<(Policy, Decision)>);

impl Applied {
    /// Remember that `policy` decided `decision`.
    pub fn push(&mut self, policy: &Policy, decision: Decision) {
        self.0.push((policy.clone(), decision));
    }

    /// Add the fields to `headers`.
    pub fn write(&self, headers: &mut HeaderMap) {
        for (policy, decision) in &self.0 {
            append_headers(headers, policy, decision);
        }
    }

    /// The first refusal among them.
    pub fn refused(&self) -> Option<&(Policy, Decision)> {
        self.0.iter().find(|(_, d)| !d.allowed)
    }
}

/// Peek at each policy for its key.
pub async fn peek_all(checks: &[(&Policy, &str)]) -> Applied {
    let mut applied = Applied::default();
    for (policy, key) in checks {
        applied.push(policy, policy.check(key, Mode::Peek).await);
    }
    applied
}
