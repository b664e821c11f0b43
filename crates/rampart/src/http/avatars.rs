//! `PUT /api/v1/me/avatar` and `GET /api/v1/users/{id}/avatar`.
//!
//! The upload is a raw `image/png`, `image/jpeg` or `image/webp` body of at most 1 MiB:
//! the request-limits layer refuses other types (415) and larger bodies (413) while
//! streaming, never buffering more than the limit. The avatar service
//! ([`crate::commerce::avatars`]) checks that the magic bytes match the declared type (else
//! 415) and stores the file under a random name, written whole before it is visible.
//!
//! # Security
//! No client-supplied name or path is ever used. The image is served with its checked
//! type, `X-Content-Type-Options: nosniff`, `Content-Security-Policy: default-src 'none';
//! sandbox` and `Content-Disposition: inline`, so even a polyglot file cannot run script
//! in this origin.

use crate::http::routing::{ApiRouter, routes};
use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::ResourceId;
use crate::{
    auth::extract::CurrentUser,
    commerce::avatars::{Avatars, Upload},
    domain::avatar::ImageType,
    error::AppError,
    state::AppState,
};

/// The sandboxing policy of served images.
const IMAGE_CSP: &str = "default-src 'none'; sandbox";

/// The avatar routes.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(put_avatar))
        .routes(routes!(get_avatar))
}

/// The avatar service of `state`.
fn avatars(state: &AppState) -> Avatars {
    Avatars::new(state.db.clone(), &state.config.data_dir)
}

/// Upload the signed-in account's avatar (replacing any earlier one).
#[utoipa::path(put, path = "/api/v1/me/avatar", tag = "account", security(("bearer" = [])),
    request_body(description = "The image, at most 1 MiB",
        content((crate::http::openapi::BinaryDoc = "image/png"), (crate::http::openapi::BinaryDoc = "image/jpeg"),
            (crate::http::openapi::BinaryDoc = "image/webp"))),
    responses(
        (status = 204, description = "Stored"),
        (status = 413, description = "Over 1 MiB", body = crate::http::openapi::ProblemDoc,
            content_type = "application/problem+json"),
        (status = 415, description = "Not an accepted type, or the bytes are not the declared type",
            body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn put_avatar(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, AppError> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(ImageType::parse_declared)
        .ok_or(AppError::ImageTypeMismatch)?;
    let upload = avatars(&state)
        .upload(current.user.id, declared, body, state.clock.now_ms())
        .await?;
    match upload {
        Upload::Stored => Ok(StatusCode::NO_CONTENT),
        Upload::TypeMismatch => Err(AppError::ImageTypeMismatch),
    }
}

/// An account's avatar image.
#[utoipa::path(get, path = "/api/v1/users/{id}/avatar", tag = "account", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The image, with `nosniff`, a sandboxing CSP and `Content-Disposition: inline`",
            content((crate::http::openapi::BinaryDoc = "image/png"), (crate::http::openapi::BinaryDoc = "image/jpeg"),
                (crate::http::openapi::BinaryDoc = "image/webp"))),
        (status = 404, description = "`not_found`: unknown user, or no avatar", body = crate::http::openapi::ProblemDoc,
            content_type = "application/problem+json"),
    ))]
async fn get_avatar(
    State(state): State<AppState>,
    _current: CurrentUser,
    ResourceId(id): ResourceId,
) -> Result<Response, AppError> {
    let image = avatars(&state).get(id).await?.ok_or(AppError::NotFound)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(image.kind.media_type()),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(IMAGE_CSP),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("inline"),
            ),
        ],
        image.bytes,
    )
        .into_response())
}
