//! The access log as a layer: one structured line per request, and the security events
//! that outer and inner layers marked on the response.
//!
//! A tower layer of its own rather than `axum::middleware::from_fn`: that adapter clones
//! the whole stack below it for every request (every layer's service, down to the router)
//! and boxes the request's future twice; this one calls the service it was polled ready
//! for. The route template comes back on the response from [`RecordRouteLayer`], a route
//! layer inside the router, since only routing knows it.

use std::{
    convert::Infallible,
    future::Future,
    net::IpAddr,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request},
    response::Response,
};
use http::{HeaderValue, Method};
use pin_project_lite::pin_project;
use rampart_layers::{
    client_ip::ClientIp, cors::CorsRejected, rate_limit::RateLimited, request_id::RequestId,
    suspicious::SuspiciousInput,
};
use serde_json::json;
use tower::{Layer, Service};

use crate::{
    error::InternalCause,
    security_events::{EventContext, EventKind, clean_user_agent},
    state::AppState,
    telemetry,
};

/// Logs every request and records the security events its response carries.
#[derive(Clone)]
pub struct AccessLogLayer {
    state: AppState,
}

impl AccessLogLayer {
    /// The access log of `state`'s server.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AccessLog {
            inner,
            state: self.state.clone(),
        }
    }
}

/// Service of [`AccessLogLayer`].
#[derive(Clone)]
pub struct AccessLog<S> {
    inner: S,
    state: AppState,
}

/// What the line and the events need from the request, taken before it moves on.
struct Seen {
    started: Instant,
    method: Method,
    request_id: String,
    client: Option<IpAddr>,
    user_agent: Option<HeaderValue>,
}

impl<S, B> Service<Request> for AccessLog<S>
where
    S: Service<Request, Response = http::Response<B>, Error = Infallible>,
{
    type Response = http::Response<B>;
    type Error = Infallible;
    type Future = AccessLogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let in_flight = crate::metrics::InFlight::start();
        let seen = Seen {
            started: Instant::now(),
            method: request.method().clone(),
            request_id: request
                .extensions()
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
            client: request.extensions().get::<ClientIp>().map(|c| c.ip),
            user_agent: request.headers().get(http::header::USER_AGENT).cloned(),
        };
        AccessLogFuture {
            inner: self.inner.call(request),
            done: Some((seen, self.state.clone(), in_flight)),
        }
    }
}

pin_project! {
    /// Future of [`AccessLog`].
    pub struct AccessLogFuture<F> {
        #[pin]
        inner: F,
        done: Option<(Seen, AppState, crate::metrics::InFlight)>,
    }
}

impl<F, B> Future for AccessLogFuture<F>
where
    F: Future<Output = Result<http::Response<B>, Infallible>>,
{
    type Output = Result<http::Response<B>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Poll::Ready(Ok(response)) = this.inner.poll(cx) else {
            return Poll::Pending;
        };
        if let Some((seen, state, _in_flight)) = this.done.take() {
            finish(&seen, state, &response);
        }
        Poll::Ready(Ok(response))
    }
}

/// One structured line per request: method, route template (never the raw path or query,
/// which may hold tokens), status, latency, request id, client address. Rejections that
/// outer or inner layers marked on the response (a refused CORS origin, suspicious input)
/// become security events here, recorded off the response path.
fn finish<B>(seen: &Seen, state: AppState, response: &http::Response<B>) {
    let route = response
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", |m| m.as_str());
    let status = response.status().as_u16();
    let elapsed = seen.started.elapsed();
    let latency_ms = (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
    let method = seen.method.as_str();
    let request_id = seen.request_id.as_str();
    if let Some(cause) = response.extensions().get::<InternalCause>() {
        let client = client_text(seen);
        tracing::error!(
            target: "rampart::access",
            method, route, status, latency_ms, request_id, client,
            cause = format!("{:#}", cause.0),
            "request failed"
        );
    } else if tracing::enabled!(target: "rampart::access", tracing::Level::INFO) {
        let line = telemetry::AccessLine {
            method,
            route,
            status,
            latency_ms,
            request_id,
            client: seen.client,
        };
        if !telemetry::write_access_line(&line) {
            let client = client_text(seen);
            tracing::info!(
                target: "rampart::access",
                method, route, status, latency_ms, request_id, client,
                "request"
            );
        }
    }
    let mut events = Vec::new();
    if let Some(rejected) = response.extensions().get::<CorsRejected>() {
        events.push((
            EventKind::CorsRejected,
            json!({"origin": rejected.origin.escape_debug().to_string(), "preflight": rejected.preflight}),
        ));
    }
    if let Some(SuspiciousInput(findings)) = response.extensions().get::<SuspiciousInput>() {
        for f in findings {
            events.push((
                EventKind::SuspiciousInput,
                json!({"field": f.field, "category": f.category.as_str(), "excerpt": f.excerpt}),
            ));
        }
    }
    let refused = response.extensions().get::<RateLimited>().cloned();
    crate::metrics::record_request(
        route,
        &seen.method,
        response.status(),
        elapsed,
        response.headers(),
        refused.as_ref().map(|r| r.policy.as_str()),
    );
    if events.is_empty() && refused.is_none() {
        return;
    }
    let ctx = EventContext {
        request_id: seen.request_id.clone(),
        ip: client_text(seen),
        user_agent: (seen.user_agent.as_ref())
            .and_then(|v| v.to_str().ok())
            .map(clean_user_agent)
            .unwrap_or_default(),
        route: route.to_owned(),
    };
    // Counted (and folded, API.md §7) before the response leaves; stored off its path.
    let pending: Vec<_> = events
        .into_iter()
        .map(|(kind, details)| state.events.prepare(&ctx, kind, None, details))
        .collect();
    tokio::spawn(async move {
        for event in pending {
            event.store().await;
        }
        if let Some(refused) = refused {
            let now = state.clock.now_ms();
            state
                .limits
                .record_refusal(&state.events, &ctx, &refused.policy, &refused.key, now)
                .await;
        }
    });
}

fn client_text(seen: &Seen) -> String {
    seen.client.map(|ip| ip.to_string()).unwrap_or_default()
}

/// Copies the matched route template to the response, for the access log: a route layer,
/// so it runs once routing has matched.
#[derive(Clone, Copy, Default)]
pub struct RecordRouteLayer;

impl<S> Layer<S> for RecordRouteLayer {
    type Service = RecordRoute<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RecordRoute { inner }
    }
}

/// Service of [`RecordRouteLayer`].
#[derive(Clone)]
pub struct RecordRoute<S> {
    inner: S,
}

impl<S> Service<Request> for RecordRoute<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RecordRouteFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        RecordRouteFuture {
            route: request.extensions().get::<MatchedPath>().cloned(),
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// Future of [`RecordRoute`].
    pub struct RecordRouteFuture<F> {
        #[pin]
        inner: F,
        route: Option<MatchedPath>,
    }
}

impl<F, E> Future for RecordRouteFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Poll::Ready(result) = this.inner.poll(cx) else {
            return Poll::Pending;
        };
        Poll::Ready(result.map(|mut response| {
            if let Some(route) = this.route.take() {
                response.extensions_mut().insert(route);
            }
            response
        }))
    }
}
