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
//! # Security
//! `detail` and `errors[].message` are public: put only fixed text there, never input
//! echoed back, driver messages, paths or type names.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use pin_project_lite::pin_project;
use serde::Serialize;
use tower::{Layer, Service};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

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

/// An RFC 9457 problem details object with Rampart's extensions (`code`, `request_id`,
/// `errors`).
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// A URI reference naming the problem type.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short fixed summary of the problem type.
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// Seconds the client should wait, rendered as `Retry-After`.
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem for `status` with the stable `code`; title and detail default to the
    /// status' canonical reason.
    pub fn new(status: StatusCode, code: &str) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_owned();
        Self {
            type_uri: format!("https://rampart.dev/problems/{}", code.replace('_', "-")),
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
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status_code(), self.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// Outer layer that makes every error response a complete problem: it stamps the request
/// id (read from `X-Request-Id` on the request) into problem bodies, and replaces the body of
/// any other 4xx/5xx response (axum's bare 405, a timeout's 408, a rejection's plain text)
/// with the problem for its status, so no internal text can reach a client.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProblemFinalizerLayer;

impl<S> Layer<S> for ProblemFinalizerLayer {
    type Service = ProblemFinalizer<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ProblemFinalizer { inner }
    }
}

/// Service of [`ProblemFinalizerLayer`].
#[derive(Debug, Clone)]
pub struct ProblemFinalizer<S> {
    inner: S,
}

impl<S, B, ResB> Service<Request<B>> for ProblemFinalizer<S>
where
    S: Service<Request<B>, Response = http::Response<ResB>>,
    ResB: http_body::Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<axum::BoxError>,
{
    type Response = Response;
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
        }
    }
}

pin_project! {
    /// Future of [`ProblemFinalizer`].
    pub struct FinalizerFuture<F> {
        #[pin]
        inner: F,
        request_id: Option<String>,
    }
}

impl<F, E, ResB> Future for FinalizerFuture<F>
where
    F: Future<Output = Result<http::Response<ResB>, E>>,
    ResB: http_body::Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<axum::BoxError>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.inner.poll(cx) {
            Poll::Ready(Ok(response)) => response.map(axum::body::Body::new),
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        Poll::Ready(Ok(finalize(response, this.request_id.take())))
    }
}

fn finalize(response: Response, request_id: Option<String>) -> Response {
    let status = response.status();
    let problem = response.extensions().get::<Problem>().cloned();
    let mut problem = match problem {
        Some(problem) => problem,
        None if status.is_client_error() || status.is_server_error() => Problem::for_status(status),
        None => return response,
    };
    problem.request_id = request_id;
    let (mut parts, _old_body) = response.into_parts();
    let mut fresh = problem.into_response();
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

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_bare_405_becomes_a_problem_with_the_request_id() {
        let svc = ProblemFinalizerLayer.layer(service_fn(|_req: Request<Body>| async {
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
        let svc = ProblemFinalizerLayer.layer(service_fn(|_req: Request<Body>| async {
            let mut r = Response::new(Body::from("sqlx::Error: no such table products"));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            Ok::<_, std::convert::Infallible>(r)
        }));
        let response = svc.oneshot(Request::new(Body::empty())).await.unwrap();
        let json = body_json(response).await;
        assert_eq!(json["code"], "internal");
        assert!(!json.to_string().contains("sqlx"));
    }

    #[tokio::test]
    async fn successful_responses_pass_untouched() {
        let svc = ProblemFinalizerLayer.layer(service_fn(|_req: Request<Body>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Body::from("ok")))
        }));
        let response = svc.oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(response.status(), 200);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"ok");
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
}
