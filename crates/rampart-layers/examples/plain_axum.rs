//! The kit protecting a plain axum app: request ids, client IP, security headers, RFC 9457
//! problems, a CORS allowlist, a per-client rate limit and request limits.
//!
//! ```text
//! cargo run -p rampart-layers --example plain_axum            # listens on 127.0.0.1:3000
//! ADDR=127.0.0.1:0 cargo run -p rampart-layers --example plain_axum
//! curl -i http://127.0.0.1:3000/hello
//! curl -i -X POST http://127.0.0.1:3000/echo -H 'content-type: application/json' -d '{"__proto__":{}}'
//! ```

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::Request,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use http::StatusCode;
use rampart_layers::{
    client_ip::{ClientIpLayer, TrustedProxies},
    clock::Now,
    cors::{CorsAllowlistLayer, CorsPolicy},
    headers::{SecurityHeaders, SecurityHeadersLayer},
    limits::{RequestLimits, RequestLimitsLayer},
    problem::{Problem, ProblemFinalizerLayer},
    rate_limit::{ClientIpKey, MemoryStore, Policy, Quota, RateLimitLayer},
    request_id::RequestIdLayer,
};
use tower::{Service, ServiceBuilder};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The application's own routes: they know nothing of the layers around them. The body
/// checks run after routing (so an unknown path is 404 and a wrong method 405 whatever the
/// body), with the 405 fallback set after them.
fn routes(limits: &RequestLimitsLayer) -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello\n" }))
        .route(
            "/echo",
            post(|Json(body): Json<serde_json::Value>| async move { Json(body) }),
        )
        .route_layer(limits.clone().body_only()) // size, type, depth, keys
        .method_not_allowed_fallback(|| async {
            Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
        })
        .fallback(|| async {
            Problem::new(StatusCode::NOT_FOUND, "not_found")
                .with_detail("There is nothing at this path.")
        })
}

/// The routes with every layer of the kit, outermost first.
pub fn app(
    allowed_origin: &str,
    requests_per_minute: u32,
) -> Result<
    impl Service<Request, Response = Response, Error = std::convert::Infallible, Future: Send>
    + Clone
    + Send
    + Sync
    + 'static,
    Error,
> {
    let cors = CorsPolicy::builder()
        .allow_origins([allowed_origin])
        .build()?;
    let per_client = Policy::new(
        "per-client",
        Quota::new(requests_per_minute, Duration::from_secs(60))?,
        Arc::new(MemoryStore::default()),
        Now::system(),
    );
    let limits = RequestLimitsLayer::new(RequestLimits::default());
    let layered = ServiceBuilder::new()
        .layer(RequestIdLayer) // accept or mint X-Request-Id
        .layer(ClientIpLayer::new(TrustedProxies::default())) // the TCP peer: no proxy trusted
        .layer(SecurityHeadersLayer::new(SecurityHeaders::api())) // on every response
        .layer(ProblemFinalizerLayer::new()) // every error as problem+json with its request id
        .layer(CorsAllowlistLayer::new(cors))
        .layer(RateLimitLayer::new(per_client, ClientIpKey))
        .layer(limits.clone().head_only()) // target length, header size, duplicate parameters
        .service(routes(&limits));
    // One axum response type at the top, so the stack can be served as a router.
    Ok(ServiceBuilder::new()
        .map_response(IntoResponse::into_response)
        .service(layered))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()?;
    let service = app("http://localhost:5173", 60)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let router = Router::new().fallback_service(service);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
