//! What each layer costs: a `/health`-like axum handler called as a tower service (no
//! network) with no layer, then inside each layer alone, then inside the kit's whole stack
//! in the order `crates/rampart/src/app.rs` assembles it (without Rampart's own access-log
//! middleware, which lives in the server crate: `cargo bench -p rampart --bench pipeline`
//! measures that whole pipeline).
//!
//! ```text
//! cargo bench -p rampart-layers --bench layers                 # every variant
//! cargo bench -p rampart-layers --bench layers -- cors         # a criterion filter
//! ```
//!
//! Criterion measures each variant; at the end a markdown table gives the median time per
//! request of each and what it adds to the bare handler. Every request is built as axum's
//! `serve` hands it on (a `Host` header, a user agent, the peer in `ConnectInfo`) and every
//! response body is read to its end, in every variant alike.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{Json, Router, body::Body, extract::ConnectInfo, routing::get};
use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use rampart_layers::{
    client_ip::{ClientIpLayer, TrustedProxies},
    clock::Now,
    cors::{CorsAllowlistLayer, CorsPolicy},
    headers::{SecurityHeaders, SecurityHeadersLayer},
    limits::{RequestLimits, RequestLimitsLayer},
    problem::ProblemFinalizerLayer,
    rate_limit::{ClientIpKey, MemoryStore, Policy, Quota, RateLimitLayer},
    request_id::RequestIdLayer,
    slow_down::{SlowDown, SlowDownLayer},
};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, layer::util::Identity};
use tower_http::{
    catch_panic::CatchPanicLayer,
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    timeout::{RequestBodyDeadlineLayer, TimeoutLayer},
};

/// The handler every variant wraps: what Rampart's `/health` answers.
async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

fn router() -> Router {
    Router::new().route("/health", get(health))
}

/// The request as axum's `serve` hands it to the service.
fn request() -> Request<Body> {
    let mut request = Request::get("/health")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::USER_AGENT, "wrk")
        .body(Body::empty())
        .unwrap();
    let peer: SocketAddr = ([127, 0, 0, 1], 40_000).into();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// A quota no benchmark run can spend: the limiter does all its work and never refuses.
fn unspendable() -> Quota {
    Quota::new(u32::MAX / 2, Duration::from_secs(3600)).unwrap()
}

fn rate_limit() -> RateLimitLayer<ClientIpKey> {
    let policy = Policy::new(
        "global",
        unspendable(),
        Arc::new(MemoryStore::default()),
        Now::system(),
    );
    RateLimitLayer::new(policy, ClientIpKey)
}

fn slow_down() -> SlowDownLayer<ClientIpKey> {
    let slow = SlowDown::new(
        "slow",
        unspendable(),
        Duration::from_millis(500),
        Duration::from_secs(10),
        Arc::new(MemoryStore::default()),
        Now::system(),
    );
    SlowDownLayer::new(slow, ClientIpKey)
}

fn cors() -> CorsAllowlistLayer {
    let policy = CorsPolicy::builder()
        .allow_origins(["https://app.example.com"])
        .build()
        .unwrap();
    CorsAllowlistLayer::new(policy)
}

fn limits() -> RequestLimitsLayer {
    RequestLimitsLayer::new(RequestLimits::default())
}

/// Median nanoseconds per request of each variant, in the order they ran.
#[derive(Default)]
struct Results(Vec<(&'static str, f64)>);

/// Criterion samples `service` (one request, its response read to the end, per
/// iteration) and records the median of its samples' time per request.
fn measure<S, B>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    results: &mut Results,
    name: &'static str,
    mut service: S,
) where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    // One request first: a variant that does not answer 200 measures nothing useful.
    let status = runtime.block_on(async {
        let response = service
            .ready()
            .await
            .unwrap()
            .call(request())
            .await
            .unwrap();
        let status = response.status();
        response.into_body().collect().await.unwrap();
        status
    });
    assert_eq!(status, StatusCode::OK, "{name} did not answer 200");
    let mut samples = Vec::new();
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let elapsed = runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let response = service
                        .ready()
                        .await
                        .unwrap()
                        .call(request())
                        .await
                        .unwrap();
                    std::hint::black_box(response.into_body().collect().await.unwrap());
                }
                started.elapsed()
            });
            samples.push(elapsed.as_nanos() as f64 / iters as f64);
            elapsed
        });
    });
    if !samples.is_empty() {
        samples.sort_by(f64::total_cmp);
        results.0.push((name, samples[samples.len() / 2]));
    }
}

/// One variant: the router inside `layer`.
fn layered<L>(layer: L) -> L::Service
where
    L: Layer<Router>,
{
    layer.layer(router())
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut results = Results::default();
    let mut group = criterion.benchmark_group("layers");
    let (g, rt, r) = (&mut group, &runtime, &mut results);

    measure(g, rt, r, "no layer", layered(Identity::new()));
    measure(g, rt, r, "RequestIdLayer", layered(RequestIdLayer));
    measure(
        g,
        rt,
        r,
        "ClientIpLayer",
        layered(ClientIpLayer::new(TrustedProxies::default())),
    );
    measure(
        g,
        rt,
        r,
        "SetSensitiveRequestHeadersLayer",
        layered(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            header::PROXY_AUTHORIZATION,
        ])),
    );
    measure(
        g,
        rt,
        r,
        "SecurityHeadersLayer (api)",
        layered(SecurityHeadersLayer::new(SecurityHeaders::api())),
    );
    measure(
        g,
        rt,
        r,
        "ProblemFinalizerLayer",
        layered(ProblemFinalizerLayer::new()),
    );
    measure(g, rt, r, "CatchPanicLayer", layered(CatchPanicLayer::new()));
    measure(
        g,
        rt,
        r,
        "TimeoutLayer",
        layered(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        )),
    );
    measure(
        g,
        rt,
        r,
        "RequestBodyDeadlineLayer",
        layered(RequestBodyDeadlineLayer::new(Duration::from_secs(30))),
    );
    measure(g, rt, r, "CorsAllowlistLayer", layered(cors()));
    // The limiters key on the client IP: each is measured behind the layer that sets it,
    // and that layer's own cost is the row above.
    measure(
        g,
        rt,
        r,
        "ClientIpLayer + RateLimitLayer (memory)",
        ServiceBuilder::new()
            .layer(ClientIpLayer::new(TrustedProxies::default()))
            .layer(rate_limit())
            .service(router()),
    );
    measure(
        g,
        rt,
        r,
        "ClientIpLayer + SlowDownLayer (memory)",
        ServiceBuilder::new()
            .layer(ClientIpLayer::new(TrustedProxies::default()))
            .layer(slow_down())
            .service(router()),
    );
    measure(
        g,
        rt,
        r,
        "RequestLimitsLayer (head only)",
        layered(limits().head_only()),
    );
    measure(
        g,
        rt,
        r,
        "RequestLimitsLayer (body only, route layer)",
        router().route_layer(limits().body_only()),
    );
    // app.rs's order, outermost first, minus Rampart's access log.
    let limits = limits();
    measure(
        g,
        rt,
        r,
        "whole kit stack (app.rs order)",
        ServiceBuilder::new()
            .layer(RequestIdLayer)
            .layer(ClientIpLayer::new(TrustedProxies::default()))
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                header::COOKIE,
                header::PROXY_AUTHORIZATION,
            ]))
            .layer(SecurityHeadersLayer::new(SecurityHeaders::api()))
            .layer(ProblemFinalizerLayer::new())
            .layer(CatchPanicLayer::new())
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                Duration::from_secs(30),
            ))
            .layer(RequestBodyDeadlineLayer::new(Duration::from_secs(30)))
            .layer(cors())
            .layer(rate_limit())
            .layer(limits.clone().head_only())
            .service(router().route_layer(limits.body_only())),
    );
    group.finish();

    let Some(&(_, bare)) = results.0.iter().find(|(name, _)| *name == "no layer") else {
        return; // a filter left out the baseline: criterion's own lines are the report
    };
    println!();
    println!("| variant | ns per request (median) | added to the bare handler |");
    println!("|---|---|---|");
    for (name, ns) in &results.0 {
        println!("| {name} | {ns:.0} | {:+.0} |", ns - bare);
    }
    criterion.final_summary();
}
