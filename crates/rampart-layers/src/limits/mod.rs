//! Request limits enforced before any handler runs:
//!
//! | input | answer |
//! |---|---|
//! | request target over the limit (8 KiB) | 414 `uri_too_long` |
//! | headers over the limit in total (16 KiB) | 431 `headers_too_large` |
//! | a scalar query parameter given twice | 400 `duplicate_parameter` |
//! | a body with a content type the route does not take | 415 `unsupported_media_type` |
//! | a body over the route's limit | 413 `payload_too_large`, the rest left unread |
//! | JSON malformed, not UTF-8, nested too deep, or holding `__proto__`/`constructor`/`prototype` | 400 `validation_failed` |
//! | a body slower than the body deadline | 408, connection closed |
//!
//! ```
//! use rampart_layers::limits::{BodyRule, RequestLimits, RequestLimitsLayer};
//! use http::Method;
//! let limits = RequestLimits::default()
//!     .route(Method::PUT, "/upload", BodyRule::raw(1 << 20, &["image/png"]));
//! let layer = RequestLimitsLayer::new(limits);
//! ```
//!
//! Bodies of accepted requests are buffered (at most the route's limit) and handed on as
//! one chunk, so a handler never waits on a slow client.
//!
//! The checks come in two stages. Those of the head (414, 431, duplicate parameters) do not
//! depend on the route and belong before the router; those of the body (415, 413, JSON)
//! should only judge a body the route will read, so that a request to an unknown route or
//! with a method the route lacks is answered 404/405 whatever its body. Split them with
//! [`RequestLimitsLayer::head_only`] and [`RequestLimitsLayer::body_only`]; with axum, the
//! body stage goes in `Router::route_layer`, followed by `method_not_allowed_fallback`
//! (a route layer also wraps the 405 fallback of each route; the fallback set after it is
//! not wrapped):
//!
//! ```
//! use axum::{Router, routing::post, http::StatusCode};
//! use rampart_layers::limits::{RequestLimits, RequestLimitsLayer};
//! let limits = RequestLimitsLayer::new(RequestLimits::default());
//! let app: Router = Router::new()
//!     .route("/items", post(|| async { StatusCode::CREATED }))
//!     .route_layer(limits.clone().body_only())
//!     .method_not_allowed_fallback(|| async { StatusCode::METHOD_NOT_ALLOWED })
//!     .layer(limits.head_only());
//! ```

pub mod json_guard;
mod service;

pub use service::{RequestLimitsLayer, RequestLimitsService};

use http::Method;

use crate::suspicious::SecretFields;

/// What a route accepts as a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json` (charset, if given, must be UTF-8), checked by [`json_guard`].
    Json,
    /// `application/x-www-form-urlencoded` (browser forms).
    Form,
    /// Raw bytes of one of these media types (uploads).
    Raw(Vec<&'static str>),
}

/// The body policy of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyRule {
    /// Largest accepted body in bytes.
    pub limit: usize,
    /// Accepted media types.
    pub kind: BodyKind,
}

impl BodyRule {
    /// JSON up to `limit` bytes.
    pub fn json(limit: usize) -> Self {
        Self {
            limit,
            kind: BodyKind::Json,
        }
    }

    /// A URL-encoded form up to `limit` bytes.
    pub fn form(limit: usize) -> Self {
        Self {
            limit,
            kind: BodyKind::Form,
        }
    }

    /// Raw bytes of the listed media types up to `limit` bytes.
    pub fn raw(limit: usize, types: &[&'static str]) -> Self {
        Self {
            limit,
            kind: BodyKind::Raw(types.to_vec()),
        }
    }
}

/// The limits of [`RequestLimitsLayer`], with conservative defaults for JSON APIs.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    /// Longest request target (path and query) in bytes; default 8 KiB.
    pub max_uri_bytes: usize,
    /// Largest sum of header names and values in bytes; default 16 KiB.
    pub max_header_bytes: usize,
    /// Deepest JSON nesting; default 32.
    pub max_json_depth: usize,
    /// The rule for routes without one of their own; default JSON up to 10 KiB.
    pub default_body: BodyRule,
    /// Query parameters that may repeat (none by default: every parameter is a scalar).
    pub repeatable_params: Vec<&'static str>,
    /// Fields whose values the suspicious-input scan skips (see [`crate::suspicious`]).
    pub secret_fields: SecretFields,
    routes: Vec<(Method, RoutePattern, BodyRule)>,
}

#[derive(Debug, Clone)]
enum RoutePattern {
    Exact(String),
    Prefix(String),
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_json_depth: 32,
            default_body: BodyRule::json(10 * 1024),
            repeatable_params: Vec::new(),
            secret_fields: SecretFields::default(),
            routes: Vec::new(),
        }
    }
}

impl RequestLimits {
    /// Give `method path` (exact) its own body rule.
    pub fn route(mut self, method: Method, path: &str, rule: BodyRule) -> Self {
        self.routes
            .push((method, RoutePattern::Exact(path.to_owned()), rule));
        self
    }

    /// Give every `method` request under `prefix` its own body rule.
    pub fn prefix(mut self, method: Method, prefix: &str, rule: BodyRule) -> Self {
        self.routes
            .push((method, RoutePattern::Prefix(prefix.to_owned()), rule));
        self
    }

    /// The rule for a request.
    pub fn rule_for(&self, method: &Method, path: &str) -> &BodyRule {
        self.routes
            .iter()
            .find(|(m, pattern, _)| {
                m == method
                    && match pattern {
                        RoutePattern::Exact(p) => p == path,
                        RoutePattern::Prefix(p) => path.starts_with(p.as_str()),
                    }
            })
            .map(|(_, _, rule)| rule)
            .unwrap_or(&self.default_body)
    }
}
