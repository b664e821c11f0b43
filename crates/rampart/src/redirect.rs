//! The optional plain-HTTP listener (`RAMPART_HTTP_REDIRECT_LISTEN`): every request, whatever
//! its method, path or body, is answered `308 Permanent Redirect` to the same path and query
//! on the `RAMPART_PUBLIC_URL` origin, and nothing else is served there.
//!
//! 308 (RFC 9110 §15.4.9) keeps the method and body on the retry, unlike 301/302, so a
//! client that posts over plain HTTP by mistake is sent to HTTPS instead of having its
//! request silently turned into a GET. The target origin is the configured one, never the
//! request's `Host` header, so the listener cannot be used as an open redirect; the
//! request's path is appended after that origin, so `//evil.example` stays a path on it.
//!
//! # Security
//! The answer has no body and no `Strict-Transport-Security` (browsers ignore HSTS over
//! plain HTTP; the HTTPS origin sends it). The request body is never read.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::{Router, extract::Request, response::IntoResponse};
use http::{HeaderValue, StatusCode, header};

/// The `scheme://host[:port]` part of `public_url`.
pub fn origin(public_url: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(public_url).context("RAMPART_PUBLIC_URL is not a URL")?;
    let origin = url.origin();
    anyhow::ensure!(
        origin.is_tuple(),
        "RAMPART_PUBLIC_URL has no origin to redirect to"
    );
    Ok(origin.ascii_serialization())
}

/// The redirect listener's service.
pub fn router(origin: String) -> Router {
    Router::new().fallback(move |request: Request| {
        let origin = origin.clone();
        async move { redirect(&origin, &request) }
    })
}

fn redirect(origin: &str, request: &Request) -> axum::response::Response {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    // An absolute-form or asterisk-form target has no origin-relative path: send it home.
    let path = if path.starts_with('/') { path } else { "/" };
    match HeaderValue::try_from(format!("{origin}{path}")) {
        Ok(location) => (
            StatusCode::PERMANENT_REDIRECT,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// Bind the redirect listener and serve it in the background until the task is aborted.
pub async fn spawn(
    addr: SocketAddr,
    public_url: &str,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let origin = origin(public_url)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding RAMPART_HTTP_REDIRECT_LISTEN ({addr})"))?;
    let local = listener.local_addr()?;
    tracing::info!(listen = %local, to = origin.as_str(), "plain HTTP is redirected");
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(origin)).await {
            tracing::error!(error = %e, "redirect listener stopped");
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    async fn location(target: &str) -> (StatusCode, Option<String>) {
        let request = Request::builder()
            .method("POST")
            .uri(target)
            .header("host", "evil.example")
            .body(axum::body::Body::from("secret=1"))
            .unwrap();
        let response = router("https://api.example.com".into())
            .oneshot(request)
            .await
            .unwrap();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        (response.status(), location)
    }

    #[tokio::test]
    async fn every_request_is_a_308_to_the_same_path_on_the_configured_origin() {
        assert_eq!(
            location("/api/v1/products?q=tea").await,
            (
                StatusCode::PERMANENT_REDIRECT,
                Some("https://api.example.com/api/v1/products?q=tea".into())
            )
        );
        // Never the Host header's origin, and a scheme-relative path stays a path.
        assert_eq!(
            location("//evil.example/x").await.1.as_deref(),
            Some("https://api.example.com//evil.example/x")
        );
        assert_eq!(
            location("http://evil.example/x").await.1.as_deref(),
            Some("https://api.example.com/x")
        );
    }

    #[test]
    fn the_origin_drops_any_path_of_the_public_url() {
        assert_eq!(
            origin("https://api.example.com:8443/base/").unwrap(),
            "https://api.example.com:8443"
        );
        assert!(origin("not a url").is_err());
    }
}
