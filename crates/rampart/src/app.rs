//! The whole request pipeline, top to bottom, in one place.
//!
//! Requests pass the layers from the top down; responses come back from the bottom up.
//! Authorization is not a layer: handlers state their policy through their extractors.

use std::convert::Infallible;

use axum::{
    Router,
    body::Body,
    extract::Request,
    response::{IntoResponse, Response},
    routing::get,
};
use http::{HeaderName, StatusCode, header};
use rampart_layers::{
    body::ResponseBody,
    client_ip::ClientIpLayer,
    cors::{self, CorsAllowlistLayer, CorsPolicy},
    headers::{SecurityHeaders, SecurityHeadersLayer},
    limits::{BodyRule, RequestLimits, RequestLimitsLayer},
    problem::{Problem, ProblemFinalizerLayer},
    rate_limit::{ClientIpKey, RateLimitLayer},
    request_id::RequestIdLayer,
    suspicious::SecretFields,
};
use tower::{Service, ServiceBuilder};
use tower_http::{
    catch_panic::CatchPanicLayer,
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    timeout::{RequestBodyDeadlineLayer, TimeoutLayer},
};

use crate::{
    access_log::{AccessLogLayer, RecordRouteLayer},
    domain::avatar::ImageType,
    error::AppError,
    http::{
        admin, auth, avatars, catalog_admin, health, jwks, me, orders, products, routing::ApiRouter,
    },
    state::AppState,
};

/// The application as one cloneable service, every layer included.
pub fn build(
    state: AppState,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send>
+ Clone
+ Send
+ Sync
+ 'static {
    let config = state.config.clone();
    let t = config.tunables;
    let mut limits = RequestLimits::default();
    limits.default_body = BodyRule::json(t.json_body_limit);
    // Substrings of the last path segment: `new_password`, `mfa_token`, `refresh_token` …
    limits.secret_fields = SecretFields::new(["password", "token", "secret", "code"]);
    let mut limits = limits.route(
        http::Method::PUT,
        "/api/v1/me/avatar",
        BodyRule::raw(t.upload_body_limit, &ImageType::MEDIA_TYPES),
    );
    // The browser pages post URL-encoded forms, limited like JSON; no other route takes them.
    for prefix in crate::pages::FORM_PREFIXES {
        limits = limits.prefix(
            http::Method::POST,
            prefix,
            BodyRule::form(t.json_body_limit),
        );
    }
    let limits = RequestLimitsLayer::new(limits);
    // On or off, the global limit hands on one body type.
    let global_limit = (state.limits.global.clone()).map(|p| {
        ServiceBuilder::new()
            .map_response(into_axum)
            .layer(RateLimitLayer::new(p, ClientIpKey))
    });

    ServiceBuilder::new()
        .layer(RequestIdLayer) // accept or mint X-Request-Id
        .layer(ClientIpLayer::new(config.trusted_proxies.clone())) // peer or trusted XFF
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            header::PROXY_AUTHORIZATION,
        ]))
        .map_response(IntoResponse::into_response)
        .layer(AccessLogLayer::new(state.clone())) // one line per request, and its security events
        .layer(SecurityHeadersLayer::new(SecurityHeaders::api())) // on every response
        .layer(ProblemFinalizerLayer::new()) // every error is problem+json (type about:blank) with its request id
        .layer(CatchPanicLayer::custom(panic_response)) // a panic is a plain 500
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            t.request_timeout,
        ))
        .layer(RequestBodyDeadlineLayer::new(t.body_timeout)) // slow bodies end
        .layer(CorsAllowlistLayer::new(api_cors(&config.cors)))
        .option_layer(global_limit) // per client (IP, IPv6 /64)
        .map_response(into_axum)
        .layer(limits.clone().head_only()) // target and header size, duplicate parameters
        .service(routes(state, limits.body_only())) // body type, size, depth, keys: see there
}

/// A kit layer's response as axum's: the body the layer passed on as it was, and only
/// the layer's own answer boxed (`IntoResponse` would box every body once more).
fn into_axum(response: http::Response<ResponseBody<Body>>) -> Response {
    response.map(|body| body.into_inner().unwrap_or_else(Body::new))
}

/// The configured origins with the headers of this API: the kit's defaults plus the
/// idempotency and CSRF request headers and the pagination total.
fn api_cors(configured: &CorsPolicy) -> CorsPolicy {
    let mut allowed = cors::default_allowed_headers();
    allowed.extend([
        HeaderName::from_static("idempotency-key"),
        HeaderName::from_static("x-csrf-token"),
    ]);
    let mut exposed = cors::default_exposed_headers();
    exposed.push(HeaderName::from_static("x-total-count"));
    configured
        .clone()
        .with_allowed_headers(allowed)
        .with_exposed_headers(exposed)
}

/// Every route, and the OpenAPI document generated from them.
///
/// The body checks run once routing has matched a route and one of its methods: an
/// unknown route is 404 and a method the route lacks 405 whatever the body (API.md §3).
/// A route layer wraps each route's 405 fallback too, so the 405 fallback is set after
/// the body checks (it replaces the wrapped default) and before the route recorder.
fn routes(state: AppState, body_limits: RequestLimitsLayer) -> Router {
    let (router, routes) = ApiRouter::new()
        .merge(health::router())
        .merge(jwks::router())
        .merge(auth::router())
        .merge(me::router())
        .merge(admin::router())
        .merge(products::router())
        .merge(catalog_admin::router())
        .merge(orders::router())
        .merge(avatars::router())
        .split_for_parts();
    let openapi = crate::http::openapi::Served::new(routes);
    let pages = crate::pages::router(&state);
    router
        .merge(pages)
        .route(
            "/openapi.json",
            get(move || std::future::ready(openapi.clone())),
        )
        .fallback(|| async { AppError::NotFound })
        // One route layer for both (each route layer boxes every route once more).
        .route_layer(
            ServiceBuilder::new()
                .map_response(into_axum)
                .layer(body_limits)
                .layer(health::DatabaseGateLayer::new(state.clone())),
        )
        .method_not_allowed_fallback(|| async { StatusCode::METHOD_NOT_ALLOWED })
        .route_layer(RecordRouteLayer) // the route template, for the access log
        .with_state(state)
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(target: "rampart::access", panic = message, "handler panicked");
    Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
}
