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
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

use crate::{body::ResponseBody, problem::Problem};

/// Why an allowlist was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CorsError {
    /// `*` cannot be combined with credentials, and this layer always allows credentials.
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
    methods: Vec<Method>,
    headers: Vec<HeaderName>,
    expose: Vec<HeaderName>,
    max_age: Duration,
}

/// Builder of [`CorsPolicy`] with secure defaults: no origin, credentials allowed, the
/// methods `GET POST PUT PATCH DELETE`, the request headers `Authorization Content-Type
/// X-Request-Id`, the kit's own response headers exposed (`X-Request-Id RateLimit
/// RateLimit-Policy Retry-After`), a 10-minute preflight cache. An application adds the
/// headers of its own API with [`Self::allow_headers`] and [`Self::expose_headers`].
#[derive(Debug, Clone)]
pub struct CorsPolicyBuilder {
    origins: Vec<String>,
    methods: Vec<Method>,
    headers: Vec<HeaderName>,
    expose: Vec<HeaderName>,
    max_age: Duration,
}

/// The request headers allowed by default.
pub fn default_allowed_headers() -> Vec<HeaderName> {
    vec![
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        crate::request_id::X_REQUEST_ID,
    ]
}

/// The response headers exposed by default: the ones this kit's layers set.
pub fn default_exposed_headers() -> Vec<HeaderName> {
    vec![
        crate::request_id::X_REQUEST_ID,
        crate::rate_limit::RATELIMIT,
        crate::rate_limit::RATELIMIT_POLICY,
        header::RETRY_AFTER,
    ]
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
            headers: default_allowed_headers(),
            expose: default_exposed_headers(),
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

    /// The same policy allowing exactly these request headers (an application's own API
    /// headers, when the policy was built elsewhere, e.g. from configuration).
    pub fn with_allowed_headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.headers = headers.into_iter().collect();
        self
    }

    /// The same policy exposing exactly these response headers.
    pub fn with_exposed_headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.expose = headers.into_iter().collect();
        self
    }

    /// The allowed request headers.
    pub fn allowed_headers(&self) -> &[HeaderName] {
        &self.headers
    }

    /// The exposed response headers.
    pub fn exposed_headers(&self) -> &[HeaderName] {
        &self.expose
    }

    fn tower_layer(&self) -> CorsLayer {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(self.origins.clone()))
            .allow_credentials(true)
            .allow_methods(self.methods.clone())
            .allow_headers(self.headers.clone())
            .expose_headers(self.expose.clone())
            .max_age(self.max_age)
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

    /// Replace the exposed response headers.
    pub fn expose_headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.expose = headers.into_iter().collect();
        self
    }

    /// Replace how long browsers may cache a preflight.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Validate and build.
    pub fn build(self) -> Result<CorsPolicy, CorsError> {
        let mut origins = Vec::with_capacity(self.origins.len());
        for raw in &self.origins {
            origins.push(parse_origin(raw.trim())?);
        }
        Ok(CorsPolicy {
            origins,
            methods: self.methods,
            headers: self.headers,
            expose: self.expose,
            max_age: self.max_age,
        })
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
    policy: Arc<CorsPolicy>,
    cors: CorsLayer,
}

impl CorsAllowlistLayer {
    /// A layer enforcing `policy`.
    pub fn new(policy: CorsPolicy) -> Self {
        Self {
            cors: policy.tower_layer(),
            policy: Arc::new(policy),
        }
    }
}

impl<S> Layer<S> for CorsAllowlistLayer {
    type Service = CorsAllowlist<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CorsAllowlist {
            cors: self.cors.layer(inner),
            policy: self.policy.clone(),
        }
    }
}

/// Service of [`CorsAllowlistLayer`]. The inner service lives once, inside tower-http's
/// `Cors`: requests that need no CORS headers reach it directly, so readiness is polled and
/// spent on one service only.
#[derive(Debug, Clone)]
pub struct CorsAllowlist<S> {
    cors: Cors<S>,
    /// Shared: the service is cloned for every request.
    policy: Arc<CorsPolicy>,
}

impl<S, B, ResB> Service<Request<B>> for CorsAllowlist<S>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    ResB: Default,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = CorsFuture<S::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // tower-http's `Cors` delegates to the inner service.
        self.cors.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let preflight = req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let origin = req.headers().get(header::ORIGIN).cloned();
        let kind = match origin {
            None => Kind::Plain {
                fut: self.cors.get_mut().call(req),
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
                    // The inner service stays ready (and keeps what it reserved) for the
                    // next request.
                    let mut response = Problem::new(StatusCode::FORBIDDEN, "cors_rejected")
                        .with_title("Origin not allowed")
                        .with_detail("This origin may not call this API from a browser.")
                        .into_http();
                    response.extensions_mut().insert(rejected);
                    Kind::Rejected {
                        response: Some(response),
                    }
                } else {
                    Kind::Plain {
                        fut: self.cors.get_mut().call(req),
                        rejected: Some(rejected),
                    }
                }
            }
            // An OPTIONS that is not a preflight is an ordinary request for the route.
            Some(_) if req.method() == Method::OPTIONS && !preflight => Kind::Plain {
                fut: self.cors.get_mut().call(req),
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
    pub struct CorsFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Plain { #[pin] fut: F, rejected: Option<CorsRejected> },
        Cors { #[pin] fut: tower_http::cors::ResponseFuture<F> },
        Rejected { response: Option<Response<ResponseBody<B>>> },
    }
}

impl<F, E, B> Future for CorsFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = match self.project().kind.project() {
            KindProj::Plain { fut, rejected } => {
                let mut response = ready!(fut.poll(cx))?;
                if let Some(rejected) = rejected.take() {
                    response.extensions_mut().insert(rejected);
                }
                response.map(ResponseBody::new)
            }
            KindProj::Cors { fut } => ready!(fut.poll(cx))?.map(ResponseBody::new),
            KindProj::Rejected { response } => match response.take() {
                Some(response) => response,
                None => Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_http(),
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

    type Handled = Response<ResponseBody<Body>>;

    fn layer() -> CorsAllowlistLayer {
        let policy = CorsPolicy::builder()
            .allow_origins(["https://app.example.com"])
            .build()
            .unwrap();
        CorsAllowlistLayer::new(policy)
    }

    fn svc() -> impl Service<Request<Body>, Response = Handled, Error = std::convert::Infallible> {
        layer().layer(service_fn(|_req: Request<Body>| async {
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

    fn cors_headers(r: &Handled) -> Vec<String> {
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
        let body = axum::body::to_bytes(Body::new(r.into_body()), 100)
            .await
            .unwrap();
        assert_eq!(&body[..], b"handler");
    }

    #[tokio::test]
    async fn every_kind_of_request_uses_the_one_inner_service_and_its_single_permit() {
        use crate::test_support::serves_within_one_permit;
        let plain = || req(Method::GET, None, false);
        serves_within_one_permit(layer(), plain, StatusCode::OK, true).await;
        let cors = || req(Method::GET, Some("https://app.example.com"), false);
        serves_within_one_permit(layer(), cors, StatusCode::OK, true).await;
        let refused_origin = || req(Method::GET, Some("https://evil.example.com"), false);
        serves_within_one_permit(layer(), refused_origin, StatusCode::OK, true).await;
        // Answered by the layer: the handler is never called, the permit never leaks.
        let refused_preflight = || req(Method::OPTIONS, Some("https://evil.example.com"), true);
        serves_within_one_permit(layer(), refused_preflight, StatusCode::FORBIDDEN, false).await;
        let preflight = || req(Method::OPTIONS, Some("https://app.example.com"), true);
        serves_within_one_permit(layer(), preflight, StatusCode::OK, false).await;
    }

    #[tokio::test]
    async fn the_default_headers_are_generic_and_an_application_adds_its_own() {
        let policy = CorsPolicy::builder().build().unwrap();
        let names = |h: &[HeaderName]| h.iter().map(|h| h.as_str().to_owned()).collect::<Vec<_>>();
        assert_eq!(
            names(policy.allowed_headers()),
            ["authorization", "content-type", "x-request-id"]
        );
        let mut allowed = default_allowed_headers();
        allowed.push(HeaderName::from_static("x-api-version"));
        let policy = policy.with_allowed_headers(allowed);
        assert!(names(policy.allowed_headers()).contains(&"x-api-version".to_owned()));
        assert!(names(policy.exposed_headers()).contains(&"ratelimit".to_owned()));
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
