//! The IETF rate-limit fields (draft-ietf-httpapi-ratelimit-headers, structured fields):
//! `RateLimit-Policy: "global";q=300;w=60` and `RateLimit: "global";r=299;t=1`, one list
//! member per policy that applies to the request.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::{Decision, Policy};
use crate::problem::Problem;

/// `RateLimit-Policy`.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

fn ceil_secs(d: std::time::Duration) -> u64 {
    d.as_micros()
        .div_ceil(1_000_000)
        .try_into()
        .unwrap_or(u64::MAX)
}

/// Append the two fields for `decision` of `policy`. A policy name is a fixed, safe token
/// chosen by the application.
pub fn append_headers(headers: &mut HeaderMap, policy: &Policy, decision: &Decision) {
    let name = policy.name();
    let window = ceil_secs(policy.quota().period());
    let policy_value = format!("\"{name}\";q={};w={window}", decision.limit);
    let state_value = format!(
        "\"{name}\";r={};t={}",
        decision.remaining,
        ceil_secs(decision.reset)
    );
    if let (Ok(p), Ok(s)) = (
        HeaderValue::from_str(&policy_value),
        HeaderValue::from_str(&state_value),
    ) {
        headers.append(RATELIMIT_POLICY, p);
        headers.append(RATELIMIT, s);
    }
}

/// 429 `rate_limited` with `Retry-After` (at least 1 s) and the rate-limit fields.
pub fn rate_limited_response(policy: &Policy, decision: &Decision) -> Response {
    let mut response = Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
        .with_detail("Too many requests; retry later.")
        .with_retry_after(ceil_secs(decision.retry_after).max(1))
        .into_response();
    append_headers(response.headers_mut(), policy, decision);
    response
}
