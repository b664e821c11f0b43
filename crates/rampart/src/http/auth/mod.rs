//! `/api/v1/auth/*`: registration, email verification, login with optional MFA step-up,
//! refresh rotation, logout, password reset and change.
//!
//! # Security
//! - Enumeration: register, resend-verification and forgot-password answer the same status
//!   and body whatever the address; register hashes the password on both paths so timing
//!   matches; login runs a dummy hash for unknown addresses and answers one
//!   `invalid_credentials` for every failure. Mail goes out in the background, so neither
//!   its latency nor its failure shows.
//! - Tokens: refresh tokens and mail tokens are 256-bit random values stored as hashes;
//!   rotation and single use are conditional writes in the store.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use rampart_layers::rate_limit::Mode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{ClientKey, ValidJson, me::UserBody};

mod recovery;
mod session;
use crate::{
    auth::{
        extract::CurrentUser,
        mfa,
        password::{HashError, Verified},
        random::{looks_like_token, new_token, token_hash},
    },
    domain::{
        FieldError,
        password::Password,
        user::{DisplayName, EmailAddress, Role, User},
    },
    error::AppError,
    mail::Email,
    rate_limits::{Applied, address_key, peek_all},
    security_events::{EventContext, EventKind, clean_user_agent},
    state::AppState,
    store::{
        one_time::{self, Purpose},
        sessions::{self, Rotation},
        users,
    },
};

/// The refresh cookie's name (API.md §4).
pub const REFRESH_COOKIE: &str = "__Secure-rampart_refresh";
const MFA_TOKEN_TTL_MS: i64 = 5 * 60 * 1000;
const RESET_TOKEN_TTL_MS: i64 = 30 * 60 * 1000;
const VERIFY_TOKEN_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// The identity routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(recovery::router())
        .merge(session::router())
}

impl From<HashError> for AppError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy { retry_after_secs } => AppError::Unavailable {
                retry_after: retry_after_secs,
            },
            HashError::Internal(e) => AppError::Internal(e),
        }
    }
}

/// `{"message": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    message: &'static str,
}

fn accepted(message: &'static str) -> Response {
    (StatusCode::ACCEPTED, Json(Message { message })).into_response()
}

fn collect<T>(result: Result<T, FieldError>, errors: &mut Vec<FieldError>) -> Option<T> {
    result.map_err(|e| errors.push(e)).ok()
}

/// Answer `result`, with the rate-limit fields of every route limit that applied.
fn with_limits(result: Result<Response, AppError>, applied: &Applied) -> Response {
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    applied.write(response.headers_mut());
    response
}

/// The 429 for the first refusal in `applied`, after recording it (once a minute per key).
async fn refuse(
    state: &AppState,
    ctx: &EventContext,
    applied: &Applied,
    key: &str,
) -> Option<AppError> {
    let (policy, decision) = applied.refused()?;
    state
        .limits
        .record_refusal(&state.events, ctx, policy.name(), key, state.clock.now_ms())
        .await;
    Some(AppError::RateLimited {
        retry_after: decision.retry_after.as_secs().max(1),
    })
}

fn send_in_background(state: &AppState, email: Email) {
    let mailer = state.mailer.clone();
    tokio::spawn(async move {
        if let Err(e) = mailer.send(email).await {
            tracing::error!(error = %e, "mail not sent");
        }
    });
}

fn link(state: &AppState, path: &str, token: &str) -> String {
    format!("{}{path}?token={token}", state.config.public_url)
}
