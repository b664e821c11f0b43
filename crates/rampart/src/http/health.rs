//! Liveness, readiness, and the database gate.
//!
//! While the reachability probe (`store::probe`) knows the database is down, the gate
//! answers every route that needs it with 503 `unavailable` and `Retry-After` at once, and
//! readiness answers 503 without waiting on the pool.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use crate::http::routing::{ApiRouter, routes};
use axum::{
    Json,
    extract::{Request, State},
    response::{IntoResponse as _, Response},
};
use pin_project_lite::pin_project;
use serde::Serialize;
use tower::{Layer, Service};
use utoipa::ToSchema;

use crate::{error::AppError, state::AppState};

/// The health routes.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
}

/// `{"status":"ok"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(value_type = String, pattern = "^ok$")]
    status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "Serving", body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// How long readiness waits for the database's answer.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// The process can serve: the database answers.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The database is unreachable", body = crate::http::openapi::ProblemDoc,
            content_type = "application/problem+json"),
    ))]
async fn ready(State(state): State<AppState>) -> Result<Json<Health>, AppError> {
    if state.db.is_known_down() {
        return Err(AppError::Unavailable { retry_after: 5 });
    }
    // A load balancer's probe gets an answer within a second, never a hang on a database
    // that does not answer.
    let answered = tokio::time::timeout(READY_WITHIN, state.db.ping()).await;
    if answered.unwrap_or(false) {
        Ok(Json(Health { status: "ok" }))
    } else {
        Err(AppError::Unavailable { retry_after: 5 })
    }
}

/// Routes that never touch the database: they answer whatever its state.
fn needs_no_database(path: &str) -> bool {
    matches!(path, "/health" | "/health/ready" | "/openapi.json")
        || path.starts_with("/.well-known/")
}

/// A route layer: while the database is known unreachable, a route that needs it answers
/// 503 `unavailable` with `Retry-After` at once instead of waiting out the pool's acquire
/// timeout. A response caused by an unreachable database wakes the probe, so the state
/// follows within one connect attempt. (A tower layer rather than `from_fn`, which would
/// clone the route and box its future on every request.)
#[derive(Clone)]
pub struct DatabaseGateLayer {
    state: AppState,
}

impl DatabaseGateLayer {
    /// The gate of `state`'s database.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl<S> Layer<S> for DatabaseGateLayer {
    type Service = DatabaseGate<S>;
    fn layer(&self, inner: S) -> Self::Service {
        DatabaseGate {
            inner,
            state: self.state.clone(),
        }
    }
}

/// Service of [`DatabaseGateLayer`].
#[derive(Clone)]
pub struct DatabaseGate<S> {
    inner: S,
    state: AppState,
}

impl<S> Service<Request> for DatabaseGate<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = GateFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if !needs_no_database(request.uri().path()) && self.state.db.is_known_down() {
            let refused = AppError::Unavailable {
                retry_after: crate::error::DATABASE_RETRY_AFTER,
            };
            return GateFuture::Refused {
                response: Some(refused.into_response()),
            };
        }
        GateFuture::Passed {
            inner: self.inner.call(request),
            state: Some(self.state.clone()),
        }
    }
}

pin_project! {
    /// Future of [`DatabaseGate`].
    #[project = GateProj]
    pub enum GateFuture<F> {
        /// Answered by the gate.
        Refused { response: Option<Response> },
        /// Handed to the route.
        Passed { #[pin] inner: F, state: Option<AppState> },
    }
}

impl<F, E> Future for GateFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GateProj::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Pending,
            },
            GateProj::Passed { inner, state } => {
                let Poll::Ready(result) = inner.poll(cx) else {
                    return Poll::Pending;
                };
                if let (Ok(response), Some(state)) = (&result, state.take())
                    && (response.extensions())
                        .get::<crate::error::DatabaseUnreachable>()
                        .is_some()
                {
                    state.db.suspect_down();
                }
                Poll::Ready(result)
            }
        }
    }
}
