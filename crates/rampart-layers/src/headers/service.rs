use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
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
        this.headers.apply(response.headers_mut(), *this.https);
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

    #[test]
    fn every_value_of_a_handlers_headers_survives_and_hsts_follows_the_connection() {
        let headers = SecurityHeaders::api();
        for https in [false, true] {
            let mut own = http::HeaderMap::new();
            own.append("set-cookie", "a=1".parse().unwrap());
            own.append("set-cookie", "b=2".parse().unwrap());
            own.insert("cache-control", "private, max-age=60".parse().unwrap());
            own.insert("strict-transport-security", "max-age=1".parse().unwrap());
            own.insert("x-powered-by", "Express".parse().unwrap());
            own.append("server", "a".parse().unwrap());
            own.append("server", "b".parse().unwrap());
            headers.apply(&mut own, https);
            let cookies: Vec<_> = own.get_all("set-cookie").iter().collect();
            assert_eq!(cookies, ["a=1", "b=2"]);
            assert_eq!(own.get_all("cache-control").iter().count(), 1);
            assert_eq!(own["cache-control"], "private, max-age=60");
            assert!(!own.contains_key("x-powered-by") && !own.contains_key("server"));
            let hsts: Vec<_> = own.get_all("strict-transport-security").iter().collect();
            if https {
                assert_eq!(hsts, [super::super::HSTS]);
            } else {
                assert!(hsts.is_empty());
            }
            for (name, _) in headers.fixed() {
                assert!(own.contains_key(name), "{name}");
            }
        }
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
