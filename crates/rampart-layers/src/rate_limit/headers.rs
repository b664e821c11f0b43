//! The IETF rate-limit fields (draft-ietf-httpapi-ratelimit-headers, structured fields):
//! `RateLimit-Policy: "global";q=300;w=60` and `RateLimit: "global";r=299;t=1`, one list
//! member per policy that applies to the request.

use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use super::{Decision, Policy};
use crate::{body::ResponseBody, problem::Problem};

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

/// The `RateLimit-Policy` member of a policy: `"<name>";q=<limit>;w=<period in s>`.
pub(super) fn policy_field(name: &str, quota: &super::Quota) -> Option<HeaderValue> {
    let window = ceil_secs(quota.period());
    HeaderValue::from_str(&format!("\"{name}\";q={};w={window}", quota.limit())).ok()
}

/// Append the two fields for `decision` of `policy`. A policy name is a fixed, safe token
/// chosen by the application.
pub fn append_headers(headers: &mut HeaderMap, policy: &Policy, decision: &Decision) {
    let Some(policy_value) = policy.policy_field() else {
        return;
    };
    // The hot path of every limited request: plain pushes, no formatting machinery.
    let name = policy.name();
    let mut state = String::with_capacity(name.len() + 32);
    state.push('"');
    state.push_str(name);
    state.push_str("\";r=");
    push_number(&mut state, u64::from(decision.remaining));
    state.push_str(";t=");
    push_number(&mut state, ceil_secs(decision.reset));
    if let Ok(state) = HeaderValue::from_maybe_shared(bytes::Bytes::from(state)) {
        headers.append(RATELIMIT_POLICY, policy_value.clone());
        headers.append(RATELIMIT, state);
    }
}

fn push_number(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // The slice holds ASCII digits only.
    out.extend(digits[i..].iter().map(|d| char::from(*d)));
}

/// 429 `rate_limited` with `Retry-After` (at least 1 s) and the rate-limit fields.
pub fn rate_limited_response<B>(policy: &Policy, decision: &Decision) -> Response<ResponseBody<B>> {
    let mut response = Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
        .with_detail("Too many requests; retry later.")
        .with_retry_after(ceil_secs(decision.retry_after).max(1))
        .into_http();
    append_headers(response.headers_mut(), policy, decision);
    response
}
