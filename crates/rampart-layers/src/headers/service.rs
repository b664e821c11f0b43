use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response, header};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::SecurityHeaders;
use crate::client_ip::ClientIp;

/// Adds [`SecurityHeaders`] to every response that does not already carry them.
#[derive(Debug, Clone)]
pub struct SecurityHeadersLayer {
    headers: Arc<SecurityHeaders>,
}

impl SecurityHeadersLayer {
    /// A layer adding `headers`.
    pub fn new(headers: SecurityHeaders) -> Self {
        Self {
            headers: Arc::new(headers),
        }
    }
}

impl<S> Layer<S> for SecurityHeadersLayer {
    type Service = SecurityHeadersService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        SecurityHeadersService {
            inner,
            headers: self.headers.clone(),
        }
    }
}

/// Service of [`SecurityHeadersLayer`].
#[derive(Debug, Clone)]
pub struct SecurityHeadersService<S> {
    inner: S,
    headers: Arc<SecurityHeaders>,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for SecurityHeadersService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = SecurityHeadersFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let https = req.extensions().get::<ClientIp>().is_some_and(|c| c.https);
        SecurityHeadersFuture {
            inner: self.inner.call(req),
            headers: self.headers.clone(),
            https,
        }
    }
}

pin_project! {
    /// Future of [`SecurityHeadersService`].
    pub struct SecurityHeadersFuture<F> {
        #[pin]
        inner: F,
        headers: Arc<SecurityHeaders>,
        https: bool,
    }
}

impl<F, B, E> Future for SecurityHeadersFuture<F>
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
        let out = response.headers_mut();
        let fixed = this.headers.fixed();
        // Room for them all at once: no rehash per header.
        out.reserve(fixed.len() + 1);
        for (name, value) in fixed {
            // One lookup: a header the handler set itself is kept.
            out.entry(name).or_insert_with(|| value.clone());
        }
        if *this.https {
            out.insert(header::STRICT_TRANSPORT_SECURITY, this.headers.hsts.clone());
        } else {
            out.remove(header::STRICT_TRANSPORT_SECURITY);
        }
        out.remove("x-powered-by");
        out.remove(header::SERVER);
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_ip::ClientIp;
    use tower::{ServiceExt, service_fn};

    async fn call(https: bool, preset: Option<(&'static str, &'static str)>) -> Response<()> {
        let svc = SecurityHeadersLayer::new(SecurityHeaders::api()).layer(service_fn(
            move |_req: Request<()>| async move {
                let mut r = Response::new(());
                r.headers_mut().insert("server", "hyper/1".parse().unwrap());
                if let Some((k, v)) = preset {
                    r.headers_mut().insert(k, v.parse().unwrap());
                }
                Ok::<_, std::convert::Infallible>(r)
            },
        ));
        let mut req = Request::new(());
        req.extensions_mut().insert(ClientIp {
            ip: "127.0.0.1".parse().unwrap(),
            https,
        });
        svc.oneshot(req).await.unwrap()
    }

    #[tokio::test]
    async fn every_helmet_header_is_set_and_the_banner_removed() {
        let r = call(false, None).await;
        let h = r.headers();
        assert_eq!(
            h["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["x-xss-protection"], "0");
        assert_eq!(h["cache-control"], "no-store");
        assert!(
            h["permissions-policy"]
                .to_str()
                .unwrap()
                .contains("camera=()")
        );
        assert!(!h.contains_key("server"));
        assert!(!h.contains_key("strict-transport-security"));
    }

    #[tokio::test]
    async fn hsts_only_over_https() {
        let r = call(true, None).await;
        assert_eq!(r.headers()["strict-transport-security"], super::super::HSTS);
    }

    #[tokio::test]
    async fn a_handler_set_header_is_kept() {
        let r = call(
            false,
            Some(("content-security-policy", "default-src 'none'; sandbox")),
        )
        .await;
        assert_eq!(
            r.headers()["content-security-policy"],
            "default-src 'none'; sandbox"
        );
    }

    #[tokio::test]
    async fn the_layer_keeps_the_inner_services_readiness() {
        crate::test_support::serves_within_one_permit(
            SecurityHeadersLayer::new(SecurityHeaders::api()),
            || Request::new(axum::body::Body::empty()),
            http::StatusCode::OK,
            true,
        )
        .await;
    }
}
