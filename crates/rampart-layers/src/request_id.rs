//! `X-Request-Id`: accept the caller's id when it is 1–64 characters of `[A-Za-z0-9._-]`,
//! otherwise mint a fresh one; the id is set on the request (for logs and problems) and
//! echoed on the response.
//!
//! # Security
//! A caller-chosen id ends up in log lines, so anything that could forge a log line or
//! smuggle markup (spaces, quotes, newlines, over-long values) is replaced, not escaped.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::{HeaderName, HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// The header carrying the request id.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id as a request extension, for handlers and log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Whether a caller-supplied id may be kept.
pub fn is_acceptable(id: &[u8]) -> bool {
    (1..=64).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Sets or accepts `X-Request-Id` (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

/// Service of [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for RequestIdService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = RequestIdFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let id = match req.headers().get(&X_REQUEST_ID) {
            Some(v) if is_acceptable(v.as_bytes()) => v.clone(),
            _ => {
                let mut buf = [0u8; uuid::fmt::Simple::LENGTH];
                let fresh = uuid::Uuid::new_v4().simple().encode_lower(&mut buf);
                // A simple UUID is 32 hex digits: always a valid header value.
                HeaderValue::from_str(fresh).unwrap_or(HeaderValue::from_static("invalid"))
            }
        };
        req.headers_mut().insert(X_REQUEST_ID, id.clone());
        let text = id.to_str().unwrap_or_default().to_owned();
        req.extensions_mut().insert(RequestId(text));
        RequestIdFuture {
            inner: self.inner.call(req),
            id: Some(id),
        }
    }
}

pin_project! {
    /// Future of [`RequestIdService`].
    pub struct RequestIdFuture<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
    }
}

impl<F, B, E> Future for RequestIdFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.inner.poll(cx) {
            Poll::Ready(Ok(response)) => response,
            other => return other,
        };
        if let Some(id) = this.id.take() {
            response.headers_mut().insert(X_REQUEST_ID, id);
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{ServiceExt, service_fn};

    async fn echo_id(header: Option<&str>) -> (String, String) {
        let svc = RequestIdLayer.layer(service_fn(|req: Request<()>| async move {
            let seen = req.extensions().get::<RequestId>().unwrap().0.clone();
            Ok::<_, std::convert::Infallible>(Response::new(seen))
        }));
        let mut req = Request::builder();
        if let Some(h) = header {
            req = req.header("x-request-id", h);
        }
        let response = svc.oneshot(req.body(()).unwrap()).await.unwrap();
        let header = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        (header, response.into_body())
    }

    #[tokio::test]
    async fn a_well_formed_caller_id_is_kept() {
        let (header, seen) = echo_id(Some("req-42_a.b")).await;
        assert_eq!(header, "req-42_a.b");
        assert_eq!(seen, "req-42_a.b");
    }

    #[tokio::test]
    async fn a_malformed_or_long_id_is_replaced() {
        for bad in ["has space", "quote\"", &"x".repeat(65), "<script>"] {
            let (header, seen) = echo_id(Some(bad)).await;
            assert_ne!(header, bad);
            assert_eq!(header, seen);
            assert!(is_acceptable(header.as_bytes()));
        }
    }

    #[tokio::test]
    async fn a_missing_id_is_minted() {
        let (header, _) = echo_id(None).await;
        assert_eq!(header.len(), 32);
    }

    #[tokio::test]
    async fn the_layer_keeps_the_inner_services_readiness() {
        crate::test_support::serves_within_one_permit(
            RequestIdLayer,
            || Request::new(axum::body::Body::empty()),
            http::StatusCode::OK,
            true,
        )
        .await;
    }
}
