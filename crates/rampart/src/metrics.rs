//! Prometheus metrics, served on their own listener (`RAMPART_METRICS_LISTEN`) and never on
//! the public one.
//!
//! The `metrics` facade records; `metrics-exporter-prometheus` renders the text format
//! (version 0.0.4) on `GET /metrics`. With no metrics listener configured no recorder is
//! installed and every recording call is a no-op.
//!
//! Families (all prefixed `rampart_`):
//!
//! | name | type | labels |
//! |---|---|---|
//! | `http_requests_total` | counter | `route` (template), `method`, `status` (class: `2xx`…) |
//! | `http_request_duration_seconds` | histogram | `route`, `method` |
//! | `http_requests_in_flight` | gauge | |
//! | `rate_limit_decisions_total` | counter | `policy`, `outcome` (`allowed`, `limited`) |
//! | `rate_limit_store_degraded` | gauge | 1 while the shared store is down |
//! | `password_hash_queue_depth`, `password_hash_running` | gauge | |
//! | `password_hash_wait_seconds` | histogram | |
//! | `password_hash_rejected_total` | counter | (the 503s of a saturated pool) |
//! | `db_pool_connections` | gauge | `state` (`idle`, `in_use`) |
//! | `db_pool_max_connections` | gauge | |
//! | `db_writer_wait_seconds` | histogram | (SQLite's in-process writer queue) |
//! | `security_events_total` | counter | `type` |
//! | `log_lines_dropped_total` | counter | (access lines dropped by a full log queue) |
//! | `build_info` | gauge (1) | `version` |
//!
//! # Security
//!
//! Labels hold only bounded, server-chosen values: route templates (never raw paths, which
//! may hold ids or tokens), standard method names, status classes, policy and event names.
//! No user id, email, IP address or token is ever a label.

use std::{net::SocketAddr, sync::OnceLock, time::Duration};

use anyhow::Context as _;
use axum::{Router, extract::State, response::IntoResponse, routing::get};
use http::{HeaderMap, Method, StatusCode, header};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// Seconds buckets for request latency: 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Install the process-wide recorder (once; later calls return the same handle).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
        .context("metrics histogram buckets")?
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        // Another thread installed one first: use that one.
        return HANDLE
            .get()
            .cloned()
            .context("a metrics recorder was installed elsewhere");
    }
    let handle = HANDLE.get_or_init(|| handle).clone();
    metrics::gauge!("rampart_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
}

/// Bind the metrics listener, install the recorder, and serve `GET /metrics` in the
/// background until the returned task is aborted. A listener that cannot be bound is a
/// start-up error.
pub async fn spawn(
    addr: SocketAddr,
    state: AppState,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let handle = install()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding RAMPART_METRICS_LISTEN ({addr})"))?;
    let local = listener.local_addr()?;
    tracing::info!(listen = %local, "metrics are served");
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(state, handle)).await {
            tracing::error!(error = %e, "metrics listener stopped");
        }
    });
    Ok((local, task))
}

/// The metrics listener's routes: `/metrics` only.
pub fn router(state: AppState, handle: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state((state, handle))
}

async fn scrape(State((state, handle)): State<(AppState, PrometheusHandle)>) -> impl IntoResponse {
    sample(&state);
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        handle.render(),
    )
}

/// Gauges read at scrape time from the parts that own them.
fn sample(state: &AppState) {
    let pool = state.db.pool();
    let size = f64::from(pool.size());
    let idle = pool.num_idle() as f64;
    metrics::gauge!("rampart_db_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("rampart_db_pool_connections", "state" => "in_use").set((size - idle).max(0.0));
    metrics::gauge!("rampart_db_pool_max_connections")
        .set(f64::from(state.config.tunables.db_max_connections));
    metrics::gauge!("rampart_rate_limit_store_degraded").set(if state.limits.is_degraded() {
        1.0
    } else {
        0.0
    });
    metrics::gauge!("rampart_password_hash_queue_depth").set(state.hasher.waiting() as f64);
    metrics::gauge!("rampart_password_hash_running").set(state.hasher.running() as f64);
    metrics::counter!("rampart_log_lines_dropped_total")
        .absolute(crate::telemetry::dropped_lines() as u64);
}

/// Counts one request in flight until dropped (a cancelled request included).
pub struct InFlight(());

impl InFlight {
    /// Count a request that has started.
    pub fn start() -> Self {
        metrics::gauge!("rampart_http_requests_in_flight").increment(1.0);
        Self(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("rampart_http_requests_in_flight").decrement(1.0);
    }
}

/// Record one answered request, and the rate-limit policies its answer reports.
pub fn record_request(
    route: &str,
    method: &Method,
    status: StatusCode,
    latency: Duration,
    headers: &HeaderMap,
    limited_policy: Option<&str>,
) {
    if HANDLE.get().is_none() {
        return;
    }
    let method = method_label(method);
    let route = route.to_owned();
    metrics::counter!(
        "rampart_http_requests_total",
        "route" => route.clone(),
        "method" => method,
        "status" => status_class(status),
    )
    .increment(1);
    metrics::histogram!(
        "rampart_http_request_duration_seconds",
        "route" => route,
        "method" => method,
    )
    .record(latency.as_secs_f64());
    for policy in policies(headers) {
        let outcome = if limited_policy == Some(policy) {
            "limited"
        } else {
            "allowed"
        };
        metrics::counter!(
            "rampart_rate_limit_decisions_total",
            "policy" => policy.to_owned(),
            "outcome" => outcome,
        )
        .increment(1);
    }
}

/// One security event of `kind`.
pub fn record_security_event(kind: &'static str) {
    metrics::counter!("rampart_security_events_total", "type" => kind).increment(1);
}

/// A password-hash job waited `wait` for a worker.
pub fn record_hash_wait(wait: Duration) {
    metrics::histogram!("rampart_password_hash_wait_seconds").record(wait.as_secs_f64());
}

/// A password-hash job was refused: the pool is saturated (503).
pub fn record_hash_rejected() {
    metrics::counter!("rampart_password_hash_rejected_total").increment(1);
}

/// A write transaction waited `wait` for SQLite's in-process writer turn.
pub fn record_writer_wait(wait: Duration) {
    metrics::histogram!("rampart_db_writer_wait_seconds").record(wait.as_secs_f64());
}

/// The policy names of a `RateLimit-Policy` field: `"global";q=300;w=60, "login";…`.
fn policies(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all("ratelimit-policy")
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|member| {
            let name = member.trim().split(';').next()?;
            name.strip_prefix('"')?.strip_suffix('"')
        })
}

/// A bounded method label: the standard methods by name, anything else `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn policy_names_are_read_from_every_ratelimit_policy_member() {
        let mut headers = HeaderMap::new();
        headers.append(
            "ratelimit-policy",
            HeaderValue::from_static("\"global\";q=300;w=60, \"login-ip\";q=20;w=900"),
        );
        headers.append(
            "ratelimit-policy",
            HeaderValue::from_static("\"mfa\";q=5;w=900"),
        );
        headers.append("ratelimit-policy", HeaderValue::from_static("garbage, ;;"));
        let names: Vec<&str> = policies(&headers).collect();
        assert_eq!(names, ["global", "login-ip", "mfa"]);
    }

    #[test]
    fn labels_are_bounded() {
        let odd = Method::from_bytes(b"BREW").expect("method");
        assert_eq!(method_label(&odd), "other");
        assert_eq!(status_class(StatusCode::IM_A_TEAPOT), "4xx");
        assert_eq!(status_class(StatusCode::SERVICE_UNAVAILABLE), "5xx");
    }
}
