//! Secure-by-default tower middleware for HTTP APIs: RFC 9457 problems, request ids,
//! security headers, a CORS allowlist, request limits, client-IP resolution, sliding rate
//! limits (memory or Redis) and progressive slow-down.
//!
//! Each layer works alone around any `tower::Service` over `http` types and knows nothing of
//! the application it protects: what is the application's (its extra CORS headers, the
//! fields whose values are secrets, its problem type base, its clock) is passed in.
//! Responses stay generic over the inner service's body; a layer that answers itself
//! (a rejection, always a [`problem::Problem`]) does so through [`body::ResponseBody`].
//! Every layer polls its inner service once per request and calls only the service it
//! polled, so inner services that reserve capacity (`ConcurrencyLimit`) work beneath it.
//!
//! `examples/plain_axum.rs` puts the whole kit around a plain axum app.

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
