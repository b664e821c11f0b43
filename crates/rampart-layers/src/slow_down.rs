//! Progressive delay: after `threshold` requests of a key in a window, each further one
//! waits `step` longer than the last, up to `max_delay` (express-slow-down's behaviour,
//! on the sliding counter of [`crate::rate_limit`]).
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use rampart_layers::{rate_limit::{MemoryStore, Now, Quota}, slow_down::SlowDown};
//! let slow = SlowDown::new(
//!     "slow",
//!     Quota::new(2, Duration::from_secs(15 * 60)).unwrap(),
//!     Duration::from_millis(500),
//!     Duration::from_secs(10),
//!     Arc::new(MemoryStore::default()),
//!     Now::system(),
//! );
//! assert_eq!(slow.delay_for_level(3), Duration::from_millis(500));
//! assert_eq!(slow.delay_for_level(100), Duration::from_secs(10));
//! ```
//!
//! The counter forgets at the quota's rate (`threshold` per window), so a client that stays
//! under the threshold is never delayed, and one that stops is forgiven a unit at a time.
//! [`SlowDownLayer`] applies it to every request with a key; [`SlowDown::delay`] is the
//! same for a handler that picks its key itself.
//!
//! # Security
//! A delay holds a connection open: keep `max_delay` well under the request timeout, and
//! pair a slow-down with a hard limit.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::Request;
use tower::{Layer, Service};

use crate::rate_limit::{BoxFuture, KeyExtractor, Mode, Now, Policy, Quota, Store};

/// A progressive delay.
#[derive(Debug, Clone)]
pub struct SlowDown {
    policy: Policy,
    step: Duration,
    max_delay: Duration,
}

impl SlowDown {
    /// Delay by `step` per request beyond `threshold.limit()` per `threshold.period()`,
    /// at most `max_delay`.
    pub fn new(
        name: &str,
        threshold: Quota,
        step: Duration,
        max_delay: Duration,
        store: Arc<dyn Store>,
        now: Now,
    ) -> Self {
        Self {
            policy: Policy::new(name, threshold, store, now),
            step,
            max_delay,
        }
    }

    /// The delay for a key that holds `level` requests (this one included).
    pub fn delay_for_level(&self, level: u32) -> Duration {
        let over = level.saturating_sub(self.policy.quota().limit());
        self.step.saturating_mul(over).min(self.max_delay)
    }

    /// Count one request of `key` and return how long it must wait.
    pub async fn delay(&self, key: &str) -> Duration {
        let steps_to_cap = if self.step.is_zero() {
            0
        } else {
            u32::try_from(self.max_delay.as_nanos().div_ceil(self.step.as_nanos()))
                .unwrap_or(u32::MAX)
        };
        let cap = self.policy.quota().limit().saturating_add(steps_to_cap);
        let decision = self.policy.check(key, Mode::Hit { cap }).await;
        self.delay_for_level(decision.used)
    }
}

/// Applies a [`SlowDown`] to every request, keyed by an extractor.
#[derive(Debug, Clone)]
pub struct SlowDownLayer<K> {
    slow: SlowDown,
    key: K,
}

impl<K: KeyExtractor> SlowDownLayer<K> {
    /// Slow down requests by `slow`, keyed by `key`.
    pub fn new(slow: SlowDown, key: K) -> Self {
        Self { slow, key }
    }
}

impl<S, K: Clone> Layer<S> for SlowDownLayer<K> {
    type Service = SlowDownService<S, K>;
    fn layer(&self, inner: S) -> Self::Service {
        SlowDownService {
            inner,
            slow: self.slow.clone(),
            key: self.key.clone(),
        }
    }
}

/// Service of [`SlowDownLayer`].
#[derive(Debug, Clone)]
pub struct SlowDownService<S, K> {
    inner: S,
    slow: SlowDown,
    key: K,
}

impl<S, K, B> Service<Request<B>> for SlowDownService<S, K>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Future: Send,
    K: KeyExtractor,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let slow = self.slow.clone();
        let key = self.key.key(&req);
        Box::pin(async move {
            if let Some(key) = key {
                let delay = slow.delay(&key).await;
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
            }
            inner.call(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::{convert::Infallible, net::IpAddr};

    use axum::body::Body;
    use http::{Response, StatusCode};
    use tokio::time::Instant;
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::{client_ip::ClientIp, rate_limit::ClientIpKey};

    fn slow() -> SlowDown {
        SlowDown::new(
            "slow",
            Quota::new(2, Duration::from_secs(15 * 60)).unwrap(),
            Duration::from_millis(500),
            Duration::from_secs(10),
            Arc::new(crate::rate_limit::MemoryStore::default()),
            Now::from_fn(|| 0),
        )
    }

    #[tokio::test]
    async fn delays_grow_by_a_step_after_the_threshold_and_stop_at_the_cap() {
        let slow = slow();
        let mut delays = Vec::new();
        for _ in 0..30 {
            delays.push(slow.delay("203.0.113.7").await.as_millis());
        }
        assert_eq!(&delays[..5], &[0, 0, 500, 1000, 1500]);
        assert_eq!(delays[21], 10_000);
        assert_eq!(*delays.last().unwrap(), 10_000);
        // Another key is not delayed.
        assert_eq!(slow.delay("203.0.113.8").await, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_layer_waits_the_delay_before_the_handler_runs() {
        let svc = SlowDownLayer::new(slow(), ClientIpKey).layer(service_fn(
            |_req: Request<Body>| async { Ok::<_, Infallible>(Response::new(Body::empty())) },
        ));
        let request = || {
            let mut req = Request::new(Body::empty());
            req.extensions_mut().insert(ClientIp {
                ip: "198.51.100.4".parse::<IpAddr>().unwrap(),
                https: false,
            });
            req
        };
        let mut waited = Vec::new();
        for _ in 0..4 {
            let started = Instant::now();
            svc.clone().oneshot(request()).await.unwrap();
            waited.push(started.elapsed().as_millis());
        }
        assert_eq!(waited, [0, 0, 500, 1000]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_layer_calls_only_the_service_it_polled_ready() {
        let request = || {
            let mut req = Request::new(Body::empty());
            req.extensions_mut().insert(ClientIp {
                ip: "198.51.100.5".parse::<IpAddr>().unwrap(),
                https: false,
            });
            req
        };
        let layer = SlowDownLayer::new(slow(), ClientIpKey);
        crate::test_support::serves_within_one_permit(layer, request, StatusCode::OK, true).await;
    }
}
