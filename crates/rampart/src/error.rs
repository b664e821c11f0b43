//! The one error type of the server, rendered as RFC 9457 problem+json.
//!
//! Each variant is a client-visible outcome with a fixed title and public detail.
//! [`AppError::Internal`] carries the cause for the log: it is put in the response
//! extensions ([`InternalCause`]), where the access log writes it, and never in the body.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use rampart_layers::problem::{FieldError, Problem};

/// Everything a handler can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400 `validation_failed`, listing every failing field.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// 415 `unsupported_media_type`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 401 `unauthenticated`: no credentials were presented.
    #[error("unauthenticated")]
    Unauthenticated,
    /// 401 `invalid_token`: a token that is forged, malformed, revoked or unknown.
    #[error("invalid token")]
    InvalidToken,
    /// 401 `token_expired`: an otherwise valid access token past its lifetime.
    #[error("token expired")]
    TokenExpired,
    /// 401 `token_reused`: a rotated refresh token presented again; its family is revoked.
    #[error("token reused")]
    TokenReused,
    /// 401 `invalid_credentials`: the same answer for an unknown account and a wrong
    /// password or code.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// 403 `email_not_verified`, only after a correct password.
    #[error("email not verified")]
    EmailNotVerified,
    /// 403 `forbidden`.
    #[error("forbidden")]
    Forbidden,
    /// 404 `not_found`: unknown, malformed and forbidden-to-see ids alike.
    #[error("not found")]
    NotFound,
    /// 409 `conflict`, with a fixed public explanation.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// 415 `unsupported_media_type`: an upload whose bytes are not the declared image type.
    #[error("image type mismatch")]
    ImageTypeMismatch,
    /// 422 `idempotency_key_reused`: an `Idempotency-Key` sent again with another body.
    #[error("idempotency key reused")]
    IdempotencyKeyReused,
    /// 429 `rate_limited` with `Retry-After`.
    #[error("rate limited")]
    RateLimited {
        /// Seconds until a retry may succeed.
        retry_after: u64,
    },
    /// 503 `unavailable` with `Retry-After`.
    #[error("unavailable")]
    Unavailable {
        /// Seconds until a retry may succeed.
        retry_after: u64,
    },
    /// 500 `internal`: the cause is logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The cause of a 500, for the access log only.
#[derive(Debug, Clone)]
pub struct InternalCause(pub Arc<anyhow::Error>);

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(anyhow::Error::new(e).context("database"))
    }
}

impl AppError {
    /// A validation error for one field.
    pub fn field(field: &str, message: &str) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            Self::Validation(errors) => Problem::validation(errors).into_response(),
            Self::UnsupportedMediaType => {
                Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
                    .with_detail("This route accepts application/json.")
                    .into_response()
            }
            Self::Unauthenticated => bearer_challenge(
                Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated")
                    .with_detail("Authentication is required."),
                "Bearer",
            ),
            Self::InvalidToken => bearer_challenge(
                Problem::new(StatusCode::UNAUTHORIZED, "invalid_token")
                    .with_detail("The token is invalid or has been revoked."),
                "Bearer error=\"invalid_token\"",
            ),
            Self::TokenExpired => bearer_challenge(
                Problem::new(StatusCode::UNAUTHORIZED, "token_expired")
                    .with_detail("The token has expired."),
                "Bearer error=\"invalid_token\", error_description=\"expired\"",
            ),
            Self::TokenReused => Problem::new(StatusCode::UNAUTHORIZED, "token_reused")
                .with_detail("This refresh token was already used; the session has been ended.")
                .into_response(),
            Self::InvalidCredentials => {
                Problem::new(StatusCode::UNAUTHORIZED, "invalid_credentials")
                    .with_detail("The credentials are not valid.")
                    .into_response()
            }
            Self::EmailNotVerified => Problem::new(StatusCode::FORBIDDEN, "email_not_verified")
                .with_detail("Confirm your email address first; a new link can be requested.")
                .into_response(),
            Self::Forbidden => Problem::new(StatusCode::FORBIDDEN, "forbidden")
                .with_detail("You may not perform this action.")
                .into_response(),
            Self::NotFound => Problem::new(StatusCode::NOT_FOUND, "not_found")
                .with_detail("The requested resource does not exist.")
                .into_response(),
            Self::Conflict(detail) => Problem::new(StatusCode::CONFLICT, "conflict")
                .with_detail(detail)
                .into_response(),
            Self::ImageTypeMismatch => {
                Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
                    .with_detail("The body must be a PNG, JPEG or WebP image of the declared type.")
                    .into_response()
            }
            Self::IdempotencyKeyReused => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
                    .with_detail("This Idempotency-Key was already used with a different request.")
                    .into_response()
            }
            Self::RateLimited { retry_after } => {
                Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
                    .with_detail("Too many attempts; retry later.")
                    .with_retry_after(retry_after)
                    .into_response()
            }
            Self::Unavailable { retry_after } => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable")
                    .with_detail("The service is temporarily unavailable; retry later.")
                    .with_retry_after(retry_after)
                    .into_response()
            }
            Self::Internal(cause) => {
                // A database that cannot be reached is a temporary condition, not a bug:
                // 503 with `Retry-After`, and the cause still goes to the log.
                let mut response = if database_unreachable(&cause) {
                    let mut response = Self::Unavailable {
                        retry_after: DATABASE_RETRY_AFTER,
                    }
                    .into_response();
                    response.extensions_mut().insert(DatabaseUnreachable);
                    response
                } else {
                    Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
                };
                response
                    .extensions_mut()
                    .insert(InternalCause(Arc::new(cause)));
                response
            }
        }
    }
}

/// Seconds a client is asked to wait when the database cannot be reached.
pub const DATABASE_RETRY_AFTER: u64 = 1;

/// Marks a response whose cause was an unreachable database, so the database gate can
/// have the reachability probe check at once.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseUnreachable;

/// Whether `cause` is (or wraps) a failure to reach the database, rather than a failed
/// query: the connection refused or lost, the pool unable to hand out a connection in
/// time, or PostgreSQL shutting down or not yet accepting connections (SQLSTATE class 08,
/// 57P01–57P03). A pool closed by our own shutdown is not one of them.
pub fn database_unreachable(cause: &anyhow::Error) -> bool {
    cause
        .chain()
        .filter_map(|e| {
            // A batched read shares its one failure with every waiter as an `Arc`.
            e.downcast_ref::<sqlx::Error>().or_else(|| {
                e.downcast_ref::<std::sync::Arc<sqlx::Error>>()
                    .map(AsRef::as_ref)
            })
        })
        .any(|e| match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
            }),
            _ => false,
        })
}

fn bearer_challenge(problem: Problem, challenge: &'static str) -> Response {
    let mut response = problem.into_response();
    response.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static(challenge),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_and_code(error: AppError) -> (StatusCode, Option<String>) {
        let response = error.into_response();
        let retry = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        (response.status(), retry)
    }

    #[test]
    fn an_unreachable_database_is_a_503_with_retry_after_and_its_cause_kept_for_the_log() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for cause in [
            anyhow::Error::new(sqlx::Error::Io(refused)).context("database"),
            anyhow::Error::new(sqlx::Error::PoolTimedOut).context("database"),
            // The batched revocation read hands its failure to each waiter shared.
            anyhow::Error::new(std::sync::Arc::new(sqlx::Error::PoolTimedOut)).context("database"),
        ] {
            let response = AppError::Internal(cause).into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[http::header::RETRY_AFTER], "1");
            assert!(response.extensions().get::<InternalCause>().is_some());
        }
    }

    #[test]
    fn a_failed_query_or_our_own_closed_pool_stays_an_opaque_500() {
        for cause in [
            anyhow::Error::new(sqlx::Error::RowNotFound),
            anyhow::Error::new(sqlx::Error::PoolClosed).context("database"),
            anyhow::anyhow!("something else"),
        ] {
            assert_eq!(
                status_and_code(AppError::Internal(cause)),
                (StatusCode::INTERNAL_SERVER_ERROR, None)
            );
        }
    }
}
