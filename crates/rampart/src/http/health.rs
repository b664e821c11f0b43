//! Liveness and readiness.

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{error::AppError, state::AppState};

/// The health routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
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
    // A load balancer's probe gets an answer within a second, never a hang on a database
    // that does not answer.
    let answered = tokio::time::timeout(READY_WITHIN, state.db.ping()).await;
    if answered.unwrap_or(false) {
        Ok(Json(Health { status: "ok" }))
    } else {
        Err(AppError::Unavailable { retry_after: 5 })
    }
}
