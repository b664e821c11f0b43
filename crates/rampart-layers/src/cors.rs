//! CORS with an exact-origin allowlist, over tower-http's `CorsLayer`.
//!
//! ```
//! use rampart_layers::cors::CorsPolicy;
//! let policy = CorsPolicy::builder()
//!     .allow_origins(["https://app.example.com"])
//!     .build()
//!     .unwrap();
//! assert!(policy.allows("https://app.example.com"));
//! assert!(!policy.allows("https://evil.example.com"));
//! ```
//!
//! What it adds to tower-http:
//! - a disallowed origin gets no CORS header at all (tower-http still sends
//!   `Access-Control-Allow-Credentials` and the preflight lists), and a disallowed preflight
//!   is a 403 `cors_rejected` problem that never reaches a handler;
//! - only an `OPTIONS` carrying `Access-Control-Request-Method` is a preflight;
//! - `Vary: Origin` on every response;
//! - the builder refuses `*`, `null` and anything that is not a bare origin, so the insecure
//!   setup cannot be written down.
//!
//! Responses to a rejected origin carry a [`CorsRejected`] extension, so the application can
//! record a security event.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

use crate::problem::Problem;

/// Why an allowlist was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CorsError {
    /// `*` cannot be combined with credentials, and Rampart always sends credentials.
    #[error("`*` is not an origin: list each allowed origin exactly")]
    Wildcard,
    /// `null` is the origin of sandboxed frames and `file:` pages: anyone can send it.
    #[error("the `null` origin is never allowed")]
    NullOrigin,
    /// Not of the form `scheme://host[:port]`.
    #[error("not an origin (scheme://host[:port], no path): {0}")]
    NotAnOrigin(String),
}

/// A response extension marking a request whose `Origin` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsRejected {
    /// The refused origin, as sent (bounded to 200 bytes).
    pub origin: String,
    /// Whether it was a preflight.
    pub preflight: bool,
}

/// A validated CORS configuration.
#[derive(Debug, Clone)]
pub struct CorsPolicy {
    origins: Vec<HeaderValue>,
    layer: CorsLayer,
}

/// Builder of [`CorsPolicy`] with secure defaults: no origin, credentials allowed, the
/// methods `GET POST PUT PATCH DELETE`, the headers `Authorization Content-Type
/// Idempotency-Key X-CSRF-Token X-Request-Id`, a 10-minute preflight cache.
#[derive(Debug, Clone)]
pub struct CorsPolicyBuilder {
    origins: Vec<String>,
    methods: Vec<Method>,
    headers: Vec<HeaderName>,
    expose: Vec<HeaderName>,
    max_age: Duration,
}

impl CorsPolicy {
    /// Start from the secure defaults.
    pub fn builder() -> CorsPolicyBuilder {
        CorsPolicyBuilder {
            origins: Vec::new(),
            methods: vec![
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ],
            headers: vec![
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-csrf-token"),
                HeaderName::from_static("x-request-id"),
            ],
            expose: vec![
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("x-total-count"),
                HeaderName::from_static("ratelimit"),
                HeaderName::from_static("ratelimit-policy"),
                header::RETRY_AFTER,
            ],
            max_age: Duration::from_secs(600),
        }
    }

    /// Whether `origin` is on the allowlist (exact, byte for byte).
    pub fn allows(&self, origin: &str) -> bool {
        self.origins
            .iter()
            .any(|o| o.as_bytes() == origin.as_bytes())
    }

    /// The allowed origins.
    pub fn origins(&self) -> impl Iterator<Item = &str> {
        self.origins.iter().filter_map(|o| o.to_str().ok())
    }
}

impl CorsPolicyBuilder {
    /// Add allowed origins (`https://app.example.com`), validated at [`Self::build`].
    pub fn allow_origins<I, T>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.origins.extend(origins.into_iter().map(Into::into));
        self
    }

    /// Replace the allowed methods.
    pub fn allow_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.methods = methods.into_iter().collect();
        self
    }

    /// Replace the allowed request headers.
    pub fn allow_headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.headers = headers.into_iter().collect();
        self
    }

    /// Validate and build.
    pub fn build(self) -> Result<CorsPolicy, CorsError> {
        let mut origins = Vec::with_capacity(self.origins.len());
        for raw in &self.origins {
            origins.push(parse_origin(raw.trim())?);
        }
        let layer = CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.clone()))
            .allow_credentials(true)
            .allow_methods(self.methods)
            .allow_headers(self.headers)
            .expose_headers(self.expose)
            .max_age(self.max_age);
        Ok(CorsPolicy { origins, layer })
    }
}

fn parse_origin(raw: &str) -> Result<HeaderValue, CorsError> {
    if raw.contains('*') {
        return Err(CorsError::Wildcard);
    }
    if raw.eq_ignore_ascii_case("null") {
        return Err(CorsError::NullOrigin);
    }
    let bad = || CorsError::NotAnOrigin(raw.chars().take(100).collect());
    let (scheme, rest) = raw.split_once("://").ok_or_else(bad)?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() {
        return Err(bad());
    }
    let host_ok = rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    if !host_ok || rest.starts_with(':') {
        return Err(bad());
    }
    HeaderValue::from_str(raw).map_err(|_| bad())
}

/// The CORS layer (see the module docs).
#[derive(Debug, Clone)]
pub struct CorsAllowlistLayer {
    policy: CorsPolicy,
}

impl CorsAllowlistLayer {
    /// A layer enforcing `policy`.
    pub fn new(policy: CorsPolicy) -> Self {
        Self { policy }
    }
}

impl<S: Clone> Layer<S> for CorsAllowlistLayer {
    type Service = CorsAllowlist<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CorsAllowlist {
            cors: self.policy.layer.layer(inner.clone()),
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// Service of [`CorsAllowlistLayer`].
#[derive(Debug, Clone)]
pub struct CorsAllowlist<S> {
    inner: S,
    cors: Cors<S>,
    policy: CorsPolicy,
}

impl<S, B> Service<Request<B>> for CorsAllowlist<S>
where
    S: Service<Request<B>, Response = Response> + Clone,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CorsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.inner.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.cors.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let preflight = req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let origin = req.headers().get(header::ORIGIN).cloned();
        let kind = match origin {
            None => Kind::Plain {
                fut: self.inner.call(req),
                rejected: None,
            },
            Some(origin) if !self.policy.allows(origin.to_str().unwrap_or_default()) => {
                let rejected = CorsRejected {
                    origin: String::from_utf8_lossy(origin.as_bytes())
                        .chars()
                        .take(200)
                        .collect(),
                    preflight,
                };
                if preflight {
                    let mut response = Problem::new(StatusCode::FORBIDDEN, "cors_rejected")
                        .with_title("Origin not allowed")
                        .with_detail("This origin may not call this API from a browser.")
                        .into_response();
                    response.extensions_mut().insert(rejected);
                    Kind::Rejected {
                        response: Some(response),
                    }
                } else {
                    Kind::Plain {
                        fut: self.inner.call(req),
                        rejected: Some(rejected),
                    }
                }
            }
            // An OPTIONS that is not a preflight is an ordinary request for the route.
            Some(_) if req.method() == Method::OPTIONS && !preflight => Kind::Plain {
                fut: self.inner.call(req),
                rejected: None,
            },
            Some(_) => Kind::Cors {
                fut: self.cors.call(req),
            },
        };
        CorsFuture { kind }
    }
}

pin_project! {
    /// Future of [`CorsAllowlist`].
    pub struct CorsFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Plain { #[pin] fut: F, rejected: Option<CorsRejected> },
        Cors { #[pin] fut: tower_http::cors::ResponseFuture<F> },
        Rejected { response: Option<Response> },
    }
}

impl<F, E> Future for CorsFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = match self.project().kind.project() {
            KindProj::Plain { fut, rejected } => match fut.poll(cx) {
                Poll::Ready(Ok(mut response)) => {
                    if let Some(rejected) = rejected.take() {
                        response.extensions_mut().insert(rejected);
                    }
                    response
                }
                other => return other,
            },
            KindProj::Cors { fut } => match fut.poll(cx) {
                Poll::Ready(Ok(response)) => response.map(axum::body::Body::new),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            },
            KindProj::Rejected { response } => match response.take() {
                Some(response) => response,
                None => Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response(),
            },
        };
        let headers = response.headers_mut();
        let has_vary_origin = headers.get_all(header::VARY).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("origin"))
        });
        if !has_vary_origin {
            headers.append(header::VARY, HeaderValue::from_static("origin"));
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::{ServiceExt, service_fn};

    fn svc() -> CorsAllowlist<
        impl Service<Request<Body>, Response = Response, Error = std::convert::Infallible, Future: Send>
        + Clone,
    > {
        let policy = CorsPolicy::builder()
            .allow_origins(["https://app.example.com"])
            .build()
            .unwrap();
        CorsAllowlistLayer::new(policy).layer(service_fn(|_req: Request<Body>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Body::from("handler")))
        }))
    }

    fn req(method: Method, origin: Option<&str>, preflight: bool) -> Request<Body> {
        let mut r = Request::builder().method(method).uri("/x");
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if preflight {
            r = r.header("access-control-request-method", "POST");
        }
        r.body(Body::empty()).unwrap()
    }

    fn cors_headers(r: &Response) -> Vec<String> {
        r.headers()
            .keys()
            .map(|k| k.as_str().to_owned())
            .filter(|k| k.starts_with("access-control-"))
            .collect()
    }

    #[tokio::test]
    async fn an_allowed_origin_gets_exact_cors_headers() {
        let r = svc()
            .oneshot(req(Method::GET, Some("https://app.example.com"), false))
            .await
            .unwrap();
        assert_eq!(
            r.headers()["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert_eq!(r.headers()["access-control-allow-credentials"], "true");
        assert!(r.headers()["vary"].to_str().unwrap().contains("origin"));
    }

    #[tokio::test]
    async fn a_disallowed_origin_gets_no_cors_header_at_all() {
        for origin in [
            "https://evil.example.com",
            "null",
            "https://app.example.com.evil.com",
        ] {
            let r = svc()
                .oneshot(req(Method::GET, Some(origin), false))
                .await
                .unwrap();
            assert!(
                cors_headers(&r).is_empty(),
                "{origin}: {:?}",
                cors_headers(&r)
            );
            assert!(r.extensions().get::<CorsRejected>().is_some());
            assert!(r.headers().contains_key("vary"));
        }
    }

    #[tokio::test]
    async fn a_disallowed_preflight_is_refused_before_the_handler() {
        let r = svc()
            .oneshot(req(Method::OPTIONS, Some("https://evil.example.com"), true))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(cors_headers(&r).is_empty());
    }

    #[tokio::test]
    async fn an_allowed_preflight_lists_methods_and_headers_never_echoed() {
        let mut request = req(Method::OPTIONS, Some("https://app.example.com"), true);
        request
            .headers_mut()
            .insert("access-control-request-headers", "x-evil".parse().unwrap());
        let r = svc().oneshot(request).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let allowed = r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap();
        assert!(!allowed.contains("x-evil"));
        assert!(
            r.headers()["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("POST")
        );
    }

    #[tokio::test]
    async fn an_options_without_request_method_is_not_a_preflight() {
        let r = svc()
            .oneshot(req(Method::OPTIONS, Some("https://app.example.com"), false))
            .await
            .unwrap();
        let body = axum::body::to_bytes(r.into_body(), 100).await.unwrap();
        assert_eq!(&body[..], b"handler");
    }

    #[test]
    fn wildcard_null_and_paths_are_refused_at_build_time() {
        let build = |o: &str| CorsPolicy::builder().allow_origins([o]).build().map(|_| ());
        assert_eq!(build("*"), Err(CorsError::Wildcard));
        assert_eq!(build("https://*.example.com"), Err(CorsError::Wildcard));
        assert_eq!(build("null"), Err(CorsError::NullOrigin));
        assert!(build("https://example.com/path").is_err());
        assert!(build("ftp://example.com").is_err());
        assert!(build("https://example.com:8443").is_ok());
    }
}
