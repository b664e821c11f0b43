//! RFC 9457 problem details: the one error shape every rejection in this kit uses.
//!
//! ```
//! use rampart_layers::problem::Problem;
//! use http::StatusCode;
//! let p = Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
//!     .with_detail("The request body exceeds the limit for this route.");
//! assert_eq!(p.status, 413);
//! ```
//!
//! A `Problem` turned into a response keeps a copy of itself in the response extensions,
//! so an outer layer ([`ProblemFinalizerLayer`]) can stamp the request id into the body
//! and turn any bare error response (an empty 405, a timeout's 408) into a problem too.
//!
//! # Problem types
//! A problem's `type` is `about:blank` unless set: RFC 9457 §4.2.1, the problem is then
//! described by its status alone, and its rendered `title` is the status phrase; `code`
//! tells clients which problem it is. An application that documents its problem types
//! gives the finalizer a base it serves ([`ProblemTypes::under`]): every `about:blank`
//! problem then gets the type `<base><code>` and keeps its own title.
//!
//! # Security
//! `detail` and `errors[].message` are public: put only fixed text there, never input
//! echoed back, driver messages, paths or type names.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use pin_project_lite::pin_project;
use serde::{Serialize, Serializer};
use tower::{Layer, Service};

use crate::body::ResponseBody;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The type of a problem described by its status alone (RFC 9457 §4.2.1).
pub const ABOUT_BLANK: &str = "about:blank";

/// One failing field of a validation error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Path of the field, as a client would write it: `items[0].quantity`.
    pub field: String,
    /// What is wrong, in fixed words: never the rejected value.
    pub message: String,
}

impl FieldError {
    /// A field error for `field` with a fixed `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem details object with the extensions `code`, `request_id` and
/// `errors`.
#[derive(Debug, Clone)]
pub struct Problem {
    /// A URI reference naming the problem type; [`ABOUT_BLANK`] unless set.
    pub type_uri: String,
    /// Short fixed summary of the problem type. Rendered only when the type is not
    /// `about:blank`; the status phrase stands in for it otherwise (RFC 9457 §4.2.1).
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Public explanation of this occurrence.
    pub detail: String,
    /// Stable machine-readable code (`validation_failed`, `not_found`, …).
    pub code: String,
    /// The request id of the request that failed, when known.
    pub request_id: Option<String>,
    /// Every failing field, for validation problems.
    pub errors: Option<Vec<FieldError>>,
    /// Seconds the client should wait, rendered as `Retry-After`.
    pub retry_after: Option<u64>,
}

/// The JSON members, as sent.
#[derive(Serialize)]
struct Wire<'a> {
    #[serde(rename = "type")]
    type_uri: &'a str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl Serialize for Problem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let title = if self.type_uri == ABOUT_BLANK {
            status_phrase(self.status_code())
        } else {
            &self.title
        };
        Wire {
            type_uri: &self.type_uri,
            title,
            status: self.status,
            detail: &self.detail,
            code: &self.code,
            request_id: self.request_id.as_deref(),
            errors: self.errors.as_deref(),
        }
        .serialize(serializer)
    }
}

fn status_phrase(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

impl Problem {
    /// A problem for `status` with the stable `code`, of type `about:blank`; title and
    /// detail default to the status' canonical reason.
    pub fn new(status: StatusCode, code: &str) -> Self {
        let title = status_phrase(status).to_owned();
        Self {
            type_uri: ABOUT_BLANK.to_owned(),
            detail: title.clone(),
            title,
            status: status.as_u16(),
            code: code.to_owned(),
            request_id: None,
            errors: None,
            retry_after: None,
        }
    }

    /// The generic problem for a bare error status: the code derives from the status.
    pub fn for_status(status: StatusCode) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthenticated",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::NOT_ACCEPTABLE => "not_acceptable",
            StatusCode::REQUEST_TIMEOUT => "request_timeout",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::URI_TOO_LONG => "uri_too_long",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable_entity",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::GATEWAY_TIMEOUT => "timeout",
            s if s.is_server_error() => "internal",
            _ => "error",
        };
        let mut problem = Self::new(status, code);
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            problem.title = "Internal Server Error".to_owned();
            problem.detail = "The server could not complete the request.".to_owned();
        }
        problem
    }

    /// A 400 `validation_failed` listing every failing field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_failed")
            .with_title("Validation failed")
            .with_detail("One or more fields are invalid.")
            .with_errors(errors)
    }

    /// Replace the type URI (one the application controls and documents).
    pub fn with_type(mut self, type_uri: impl Into<String>) -> Self {
        self.type_uri = type_uri.into();
        self
    }

    /// Replace the title.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Replace the public detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Attach field errors.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = Some(errors);
        self
    }

    /// Ask the client to retry after `seconds` (`Retry-After`).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The HTTP status as a `StatusCode`.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn body(&self) -> Bytes {
        // Serialising this struct cannot fail: every field is a string, a number or a list
        // of strings. Fall back to a fixed body rather than panic all the same.
        serde_json::to_vec(self)
            .map(Bytes::from)
            .unwrap_or_else(|_| {
                Bytes::from_static(br#"{"type":"about:blank","title":"Error","status":500}"#)
            })
    }

    /// The problem as a response with a body of any type a layer can pass on: status,
    /// `Content-Type: application/problem+json`, `Retry-After` when set, and a copy of the
    /// problem in the extensions for [`ProblemFinalizerLayer`].
    pub fn into_http<B>(self) -> http::Response<ResponseBody<B>> {
        let mut response = http::Response::new(ResponseBody::full(self.body()));
        *response.status_mut() = self.status_code();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(self);
        response
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.into_http::<axum::body::Body>()
            .map(axum::body::Body::new)
    }
}

/// Marks an error response whose body the handler rendered on purpose for a client that
/// asked for it (an HTML error page for a browser): [`ProblemFinalizerLayer`] leaves it as
/// it is instead of replacing it with a problem. Its body must follow the same rule as a
/// problem's `detail`: fixed text, no internals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderedError;

/// How [`ProblemFinalizerLayer`] names the type of problems that have none of their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProblemTypes {
    base: Option<String>,
}

/// A problem type base that is not an absolute `http(s)` URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a problem type base must be an absolute http or https URI")]
pub struct InvalidTypeBase;

impl ProblemTypes {
    /// Every problem without a type of its own stays `about:blank` (the default).
    pub fn about_blank() -> Self {
        Self::default()
    }

    /// Problems without a type of their own get `<base><code>`, for example
    /// `https://api.example.com/problems/` + `not_found`. Serve a page at each such URI:
    /// a type URI is a promise that it documents the problem.
    pub fn under(base: &str) -> Result<Self, InvalidTypeBase> {
        let uri: http::Uri = base.parse().map_err(|_| InvalidTypeBase)?;
        let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
        if !scheme_ok || uri.authority().is_none() || uri.query().is_some() {
            return Err(InvalidTypeBase);
        }
        let mut base = base.to_owned();
        if !base.ends_with('/') {
            base.push('/');
        }
        Ok(Self { base: Some(base) })
    }

    /// The type URI of a problem with `code`: `about:blank` without a base, or for a code
    /// that is not a plain token (`[A-Za-z0-9_-]`) that cannot climb out of the base.
    pub fn type_for(&self, code: &str) -> String {
        let segment_ok = !code.is_empty()
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        match &self.base {
            Some(base) if segment_ok => format!("{base}{code}"),
            _ => ABOUT_BLANK.to_owned(),
        }
    }

    fn apply(&self, problem: &mut Problem) {
        if problem.type_uri == ABOUT_BLANK {
            problem.type_uri = self.type_for(&problem.code);
        }
    }
}

/// Outer layer that makes every error response a complete problem: it stamps the request
/// id (read from `X-Request-Id` on the request) and the problem type ([`ProblemTypes`])
/// into problem bodies, and replaces the body of any other 4xx/5xx response (axum's bare
/// 405, a timeout's 408, a rejection's plain text) with the problem for its status, so no
/// internal text can reach a client.
#[derive(Debug, Clone, Default)]
pub struct ProblemFinalizerLayer {
    types: ProblemTypes,
}

impl ProblemFinalizerLayer {
    /// A finalizer leaving problem types `about:blank`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Name problem types by `types` (see [`ProblemTypes::under`]).
    pub fn with_types(mut self, types: ProblemTypes) -> Self {
        self.types = types;
        self
    }
}

impl<S> Layer<S> for ProblemFinalizerLayer {
    type Service = ProblemFinalizer<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ProblemFinalizer {
            inner,
            types: self.types.clone(),
        }
    }
}

/// Service of [`ProblemFinalizerLayer`].
#[derive(Debug, Clone)]
pub struct ProblemFinalizer<S> {
    inner: S,
    types: ProblemTypes,
}

impl<S, B, ResB> Service<Request<B>> for ProblemFinalizer<S>
where
    S: Service<Request<B>, Response = http::Response<ResB>>,
{
    type Response = http::Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = FinalizerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let request_id = req
            .headers()
            .get(crate::request_id::X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        FinalizerFuture {
            inner: self.inner.call(req),
            request_id,
            types: self.types.clone(),
        }
    }
}

pin_project! {
    /// Future of [`ProblemFinalizer`].
    pub struct FinalizerFuture<F> {
        #[pin]
        inner: F,
        request_id: Option<String>,
        types: ProblemTypes,
    }
}

impl<F, E, ResB> Future for FinalizerFuture<F>
where
    F: Future<Output = Result<http::Response<ResB>, E>>,
{
    type Output = Result<http::Response<ResponseBody<ResB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        Poll::Ready(Ok(finalize(response, this.request_id.take(), this.types)))
    }
}

fn finalize<B>(
    response: http::Response<B>,
    request_id: Option<String>,
    types: &ProblemTypes,
) -> http::Response<ResponseBody<B>> {
    let status = response.status();
    let problem = response.extensions().get::<Problem>().cloned();
    let mut problem = match problem {
        Some(problem) => problem,
        None if response.extensions().get::<RenderedError>().is_some() => {
            return response.map(ResponseBody::new);
        }
        None if status.is_client_error() || status.is_server_error() => Problem::for_status(status),
        None => return response.map(ResponseBody::new),
    };
    problem.request_id = request_id;
    types.apply(&mut problem);
    let (mut parts, _old_body) = response.into_parts();
    let mut fresh = problem.into_http::<B>();
    // Keep the headers the inner layers set (Allow, Retry-After, CORS, Vary …) except the
    // ones describing the old body.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.remove(header::TRANSFER_ENCODING);
    for (name, value) in fresh.headers().iter() {
        parts.headers.insert(name.clone(), value.clone());
    }
    std::mem::swap(fresh.headers_mut(), &mut parts.headers);
    // Keep what inner layers attached for outer ones (findings, causes); the problem
    // itself is the fresh one, with its request id.
    let problem = fresh.extensions_mut().remove::<Problem>();
    std::mem::swap(fresh.extensions_mut(), &mut parts.extensions);
    if let Some(problem) = problem {
        fresh.extensions_mut().insert(problem);
    }
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::{ServiceExt, service_fn};

    async fn body_json<B>(response: http::Response<B>) -> serde_json::Value
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: std::fmt::Debug,
    {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn answering(
        status: StatusCode,
        text: &'static str,
    ) -> impl Service<
        Request<Body>,
        Response = Response,
        Error = std::convert::Infallible,
        Future: Send,
    > + Clone {
        service_fn(move |_req: Request<Body>| async move {
            let mut r = Response::new(Body::from(text));
            *r.status_mut() = status;
            Ok::<_, std::convert::Infallible>(r)
        })
    }

    #[tokio::test]
    async fn a_bare_405_becomes_a_problem_with_the_request_id() {
        let svc = ProblemFinalizerLayer::new().layer(service_fn(|_req: Request<Body>| async {
            let mut r = Response::new(Body::from("internal text"));
            *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET"));
            Ok::<_, std::convert::Infallible>(r)
        }));
        let req = Request::builder()
            .header("x-request-id", "abc-1")
            .body(Body::empty())
            .unwrap();
        let response = svc.oneshot(req).await.unwrap();
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()[header::ALLOW], "GET");
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let json = body_json(response).await;
        assert_eq!(json["code"], "method_not_allowed");
        assert_eq!(json["request_id"], "abc-1");
        assert!(!json.to_string().contains("internal text"));
    }

    #[tokio::test]
    async fn a_500_never_carries_its_original_body() {
        let svc = ProblemFinalizerLayer::new().layer(answering(
            StatusCode::INTERNAL_SERVER_ERROR,
            "sqlx::Error: no such table products",
        ));
        let response = svc.oneshot(Request::new(Body::empty())).await.unwrap();
        let json = body_json(response).await;
        assert_eq!(json["code"], "internal");
        assert!(!json.to_string().contains("sqlx"));
    }

    #[tokio::test]
    async fn an_error_page_marked_as_rendered_keeps_its_body_and_an_unmarked_one_does_not() {
        let marked = ProblemFinalizerLayer::new().layer(service_fn(|_req: Request<Body>| async {
            let mut r = Response::new(Body::from("<p>csrf_failed</p>"));
            *r.status_mut() = StatusCode::FORBIDDEN;
            r.extensions_mut().insert(RenderedError);
            Ok::<_, std::convert::Infallible>(r)
        }));
        let response = marked.oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(response.status(), 403);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"<p>csrf_failed</p>");
        let unmarked = ProblemFinalizerLayer::new()
            .layer(answering(StatusCode::FORBIDDEN, "<p>csrf_failed</p>"));
        let response = unmarked.oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }

    #[tokio::test]
    async fn successful_responses_pass_untouched() {
        let svc = ProblemFinalizerLayer::new().layer(answering(StatusCode::OK, "ok"));
        let response = svc.oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(response.status(), 200);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"ok");
    }

    #[tokio::test]
    async fn the_finalizer_respects_the_inner_services_readiness() {
        crate::test_support::serves_within_one_permit(
            ProblemFinalizerLayer::new(),
            || Request::new(Body::empty()),
            StatusCode::OK,
            true,
        )
        .await;
    }

    #[test]
    fn validation_problems_list_every_field() {
        let p = Problem::validation(vec![
            FieldError::new("a", "required"),
            FieldError::new("b[0].c", "too long"),
        ]);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["status"], 400);
        assert_eq!(json["errors"].as_array().unwrap().len(), 2);
        assert_eq!(json["errors"][1]["field"], "b[0].c");
    }

    #[test]
    fn an_about_blank_problem_is_titled_by_its_status_phrase() {
        let json = serde_json::to_value(Problem::validation(vec![])).unwrap();
        assert_eq!(json["type"], "about:blank");
        assert_eq!(json["title"], "Bad Request");
        assert_eq!(json["code"], "validation_failed");
        let own = Problem::new(StatusCode::NOT_FOUND, "not_found")
            .with_type("https://api.example.com/problems/not_found")
            .with_title("No such thing");
        let json = serde_json::to_value(own).unwrap();
        assert_eq!(json["title"], "No such thing");
    }

    #[tokio::test]
    async fn a_type_base_names_every_untyped_problem_and_keeps_its_title() {
        let types = ProblemTypes::under("https://api.example.com/problems").unwrap();
        let svc = ProblemFinalizerLayer::new()
            .with_types(types)
            .layer(service_fn(|_req: Request<Body>| async {
                Ok::<_, std::convert::Infallible>(Problem::validation(vec![]).into_response())
            }));
        let json = body_json(svc.oneshot(Request::new(Body::empty())).await.unwrap()).await;
        assert_eq!(
            json["type"],
            "https://api.example.com/problems/validation_failed"
        );
        assert_eq!(json["title"], "Validation failed");
    }

    #[test]
    fn a_type_base_must_be_an_absolute_web_uri_and_codes_must_be_plain_segments() {
        for bad in [
            "/problems/",
            "ftp://example.com/",
            "javascript:alert(1)",
            "",
            "https://x/?a=1",
        ] {
            assert_eq!(ProblemTypes::under(bad), Err(InvalidTypeBase), "{bad}");
        }
        let types = ProblemTypes::under("https://api.example.com/p/").unwrap();
        assert_eq!(
            types.type_for("not_found"),
            "https://api.example.com/p/not_found"
        );
        assert_eq!(types.type_for("../admin"), ABOUT_BLANK);
        assert_eq!(types.type_for(".."), ABOUT_BLANK);
        assert_eq!(types.type_for("a b"), ABOUT_BLANK);
        assert_eq!(
            ProblemTypes::about_blank().type_for("not_found"),
            ABOUT_BLANK
        );
    }
}
