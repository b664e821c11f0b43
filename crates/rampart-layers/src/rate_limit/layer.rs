//! [`RateLimitLayer`]: one policy on every request, keyed by an extractor.

use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use super::{Decision, Mode, Policy, ResponseFuture, append_headers, rate_limited_response};
use crate::{body::ResponseBody, client_ip::ClientIp};

/// Picks the key a request is counted under; `None` leaves the request unlimited by this
/// policy (and without its headers).
pub trait KeyExtractor: Clone + Send + Sync + 'static {
    /// The key of `request`.
    fn key<B>(&self, request: &Request<B>) -> Option<String>;
}

/// The client IP from [`ClientIp`] (IPv4, or the IPv6 /64). Requests without one share the
/// key `unknown`, so a missing [`crate::client_ip::ClientIpLayer`] limits everyone together
/// rather than nobody.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientIpKey;

impl KeyExtractor for ClientIpKey {
    fn key<B>(&self, request: &Request<B>) -> Option<String> {
        Some(
            request
                .extensions()
                .get::<ClientIp>()
                .map_or_else(|| "unknown".to_owned(), |c| c.key().to_string()),
        )
    }
}

/// A response extension on every 429 of a policy: which policy and key refused it, for
/// the application's security log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimited {
    /// The policy's name.
    pub policy: String,
    /// The key that ran out of budget.
    pub key: String,
}

/// Applies a [`Policy`] to every request.
#[derive(Debug, Clone)]
pub struct RateLimitLayer<K> {
    policy: Policy,
    key: K,
}

impl<K: KeyExtractor> RateLimitLayer<K> {
    /// Limit every request by `policy`, keyed by `key`.
    pub fn new(policy: Policy, key: K) -> Self {
        Self { policy, key }
    }
}

impl<S, K: Clone> Layer<S> for RateLimitLayer<K> {
    type Service = RateLimitService<S, K>;
    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            policy: self.policy.clone(),
            key: self.key.clone(),
        }
    }
}

/// Service of [`RateLimitLayer`].
#[derive(Debug, Clone)]
pub struct RateLimitService<S, K> {
    inner: S,
    policy: Policy,
    key: K,
}

impl<S, K, B, ResB> Service<Request<B>> for RateLimitService<S, K>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    K: KeyExtractor,
    B: Send + 'static,
    ResB: Send + 'static,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(key) = self.key.key(&req) else {
            return ResponseFuture::admitted(self.inner.call(req), None);
        };
        // A local store decides at once: no allocation, and the service that was polled
        // ready serves the request.
        if let Some(decision) = self.policy.check_now(&key, Mode::Take) {
            if !decision.allowed {
                return ResponseFuture::refused(refusal(&self.policy, &decision, key));
            }
            let fields = Some((self.policy.clone(), decision));
            return ResponseFuture::admitted(self.inner.call(req), fields);
        }
        // A remote store: the ready service goes into the future, a fresh clone stays
        // behind for the next request (tower's usual pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let policy = self.policy.clone();
        ResponseFuture::waiting(Box::pin(async move {
            let decision = policy.check(&key, Mode::Take).await;
            if !decision.allowed {
                return Ok(refusal(&policy, &decision, key));
            }
            let mut response = inner.call(req).await?;
            append_headers(response.headers_mut(), &policy, &decision);
            Ok(response.map(ResponseBody::new))
        }))
    }
}

/// The 429 of `policy` for `key`, marked for the application's log.
fn refusal<B>(policy: &Policy, decision: &Decision, key: String) -> Response<ResponseBody<B>> {
    let mut response = rate_limited_response(policy, decision);
    response.extensions_mut().insert(RateLimited {
        policy: policy.name().to_owned(),
        key,
    });
    response
}

#[cfg(test)]
mod tests {
    use std::{
        convert::Infallible,
        net::IpAddr,
        sync::{
            Arc,
            atomic::{AtomicI64, Ordering},
        },
        time::Duration,
    };

    use axum::body::Body;
    use http::StatusCode;
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::rate_limit::{BoxFuture, MemoryStore, Now, Quota, Store, StoreError};

    fn policy(limit: u32, clock: Arc<AtomicI64>, store: Arc<dyn Store>) -> Policy {
        Policy::new(
            "global",
            Quota::new(limit, Duration::from_secs(60)).unwrap(),
            store,
            Now::from_fn(move || clock.load(Ordering::SeqCst)),
        )
    }

    fn app(
        limit: u32,
        clock: Arc<AtomicI64>,
    ) -> impl Service<Request<Body>, Response = Response<ResponseBody<Body>>, Error = Infallible> + Clone
    {
        let policy = policy(limit, clock, Arc::new(MemoryStore::default()));
        RateLimitLayer::new(policy, ClientIpKey).layer(service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::from("ok")))
        }))
    }

    /// A store that answers only asynchronously, like a remote one.
    #[derive(Debug, Default)]
    struct Remote(MemoryStore);

    impl Store for Remote {
        fn decide<'a>(
            &'a self,
            key: &'a str,
            quota: &'a Quota,
            mode: Mode,
            now_ms: i64,
        ) -> BoxFuture<'a, Result<Decision, StoreError>> {
            self.0.decide(key, quota, mode, now_ms)
        }

        fn forget<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
            self.0.forget(key)
        }
    }

    #[tokio::test]
    async fn admitted_and_refused_requests_keep_the_inner_services_readiness() {
        use crate::test_support::serves_within_one_permit;
        let clock = Arc::new(AtomicI64::new(0));
        let stores: [Arc<dyn Store>; 2] = [
            Arc::new(MemoryStore::default()),
            Arc::new(Remote::default()),
        ];
        for store in stores {
            let admitted =
                RateLimitLayer::new(policy(100, clock.clone(), store.clone()), ClientIpKey);
            serves_within_one_permit(admitted, || from("192.0.2.1"), StatusCode::OK, true).await;
            // Budget spent: every request is refused before the handler, and the permit
            // the layer was polled for stays with it.
            let spent = policy(1, clock.clone(), store);
            spent.check("192.0.2.9", Mode::Take).await;
            let refused = RateLimitLayer::new(spent, ClientIpKey);
            serves_within_one_permit(
                refused,
                || from("192.0.2.9"),
                StatusCode::TOO_MANY_REQUESTS,
                false,
            )
            .await;
        }
    }

    fn from(ip: &str) -> Request<Body> {
        let mut req = Request::new(Body::empty());
        req.extensions_mut().insert(ClientIp {
            ip: ip.parse::<IpAddr>().unwrap(),
            https: false,
        });
        req
    }

    #[tokio::test]
    async fn the_request_past_the_limit_is_429_with_retry_after_and_both_fields() {
        let clock = Arc::new(AtomicI64::new(1_000_000));
        let svc = app(3, clock.clone());
        for i in 0..3 {
            let response = svc.clone().oneshot(from("192.0.2.1")).await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(
                response.headers()["ratelimit-policy"],
                "\"global\";q=3;w=60"
            );
            assert_eq!(
                response.headers()["ratelimit"],
                format!("\"global\";r={};t={}", 2 - i, 20 * (i + 1)).as_str()
            );
        }
        let refused = svc.clone().oneshot(from("192.0.2.1")).await.unwrap();
        assert_eq!(refused.status(), 429);
        assert_eq!(refused.headers()["retry-after"], "20");
        assert_eq!(refused.headers()["ratelimit"], "\"global\";r=0;t=60");
        assert_eq!(
            refused.extensions().get::<RateLimited>().unwrap().policy,
            "global"
        );
        // Another client has its own budget; the first gets one back after 20 s.
        assert_eq!(
            svc.clone()
                .oneshot(from("192.0.2.2"))
                .await
                .unwrap()
                .status(),
            200
        );
        clock.fetch_add(20_000, Ordering::SeqCst);
        assert_eq!(
            svc.clone()
                .oneshot(from("192.0.2.1"))
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            svc.clone()
                .oneshot(from("192.0.2.1"))
                .await
                .unwrap()
                .status(),
            429
        );
    }

    #[tokio::test]
    async fn ipv6_clients_of_one_64_share_a_budget() {
        let svc = app(1, Arc::new(AtomicI64::new(0)));
        assert_eq!(
            svc.clone()
                .oneshot(from("2001:db8:1:2::1"))
                .await
                .unwrap()
                .status(),
            200
        );
        let same_prefix = svc
            .clone()
            .oneshot(from("2001:db8:1:2:ffff::9"))
            .await
            .unwrap();
        assert_eq!(same_prefix.status(), 429);
        let other_prefix = svc.clone().oneshot(from("2001:db8:1:3::1")).await.unwrap();
        assert_eq!(other_prefix.status(), 200);
    }
}
