//! Secure-by-default tower middleware for HTTP APIs: RFC 9457 problems, request ids,
//! security headers, a CORS allowlist, request limits, client-IP resolution, sliding rate
//! limits (memory or Redis) and progressive slow-down.
//!
//! Each layer works alone around any `tower::Service` over `http` types and knows nothing of
//! the application it protects. Rejections are [`problem::Problem`]s.

pub mod body;
pub mod client_ip;
pub mod clock;
pub mod cors;
pub mod headers;
pub mod limits;
pub mod problem;
pub mod rate_limit;
pub mod request_id;
pub mod slow_down;
pub mod suspicious;

#[cfg(test)]
mod test_support;
