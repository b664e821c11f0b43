//! `PUT /api/v1/me/avatar` and `GET /api/v1/users/{id}/avatar`.
//!
//! The upload is a raw `image/png`, `image/jpeg` or `image/webp` body of at most 1 MiB:
//! the request-limits layer refuses other types (415) and larger bodies (413) while
//! streaming, never buffering more than the limit. Here the magic bytes must match the
//! declared type (else 415). The file is written under a random name inside
//! `$RAMPART_DATA_DIR/avatars` (directory 0700, file 0600), first to a temporary file and
//! then renamed, so a reader never sees half an image.
//!
//! # Security
//! No client-supplied name or path is ever used. The image is served with its checked
//! type, `X-Content-Type-Options: nosniff`, `Content-Security-Policy: default-src 'none';
//! sandbox` and `Content-Disposition: inline`, so even a polyglot file cannot run script
//! in this origin.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::ResourceId;
use crate::{
    auth::extract::CurrentUser,
    domain::avatar::ImageType,
    error::AppError,
    state::AppState,
    store::avatars::{self, Avatar},
};

/// The sandboxing policy of served images.
const IMAGE_CSP: &str = "default-src 'none'; sandbox";

/// The avatar routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_avatar))
        .routes(routes!(get_avatar))
}

/// Where avatars live.
pub fn avatars_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("avatars")
}

/// Whether `name` has the shape of a name [`new_file_name`] makes (32 hex digits, a dot,
/// a known extension): a stored name is checked again before it is joined to a path.
fn is_own_file_name(name: &str) -> bool {
    let Some((stem, ext)) = name.split_once('.') else {
        return false;
    };
    stem.len() == 32
        && stem.bytes().all(|b| b.is_ascii_hexdigit())
        && ["png", "jpg", "webp"].contains(&ext)
}

fn new_file_name(kind: ImageType) -> String {
    format!("{}.{}", uuid::Uuid::new_v4().simple(), kind.extension())
}

/// Write `bytes` to `dir/name` through a temporary file (blocking).
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::{
        fs::{DirBuilder, OpenOptions, Permissions},
        io::Write as _,
        os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _},
    };
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, Permissions::from_mode(0o700))?;
    let temp = dir.join(format!(".{name}.tmp"));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, dir.join(name))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Upload the signed-in account's avatar (replacing any earlier one).
#[utoipa::path(put, path = "/api/v1/me/avatar", tag = "account", security(("bearer" = [])),
    request_body(description = "The image, at most 1 MiB",
        content(("image/png"), ("image/jpeg"), ("image/webp"))),
    responses(
        (status = 204, description = "Stored"),
        (status = 401, description = "Not signed in"),
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
    if !declared.matches(&body) {
        return Err(AppError::ImageTypeMismatch);
    }
    let dir = avatars_dir(&state.config.data_dir);
    let name = new_file_name(declared);
    let (write_dir, write_name) = (dir.clone(), name.clone());
    tokio::task::spawn_blocking(move || write_file(&write_dir, &write_name, &body))
        .await
        .context("avatar writer")?
        .context("writing an avatar")?;
    let avatar = Avatar {
        file_name: name,
        media_type: declared.media_type().to_owned(),
    };
    let replaced = avatars::set(&state.db, current.user.id, &avatar, state.clock.now_ms()).await?;
    if let Some(old) = replaced.filter(|o| is_own_file_name(&o.file_name))
        && let Err(e) = tokio::fs::remove_file(dir.join(&old.file_name)).await
    {
        tracing::warn!(error = %e, "old avatar not removed");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// An account's avatar image.
#[utoipa::path(get, path = "/api/v1/users/{id}/avatar", tag = "account", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The image, with `nosniff`, a sandboxing CSP and `Content-Disposition: inline`",
            content(("image/png"), ("image/jpeg"), ("image/webp"))),
        (status = 401, description = "Not signed in"),
        (status = 404, description = "Unknown user, or no avatar", body = crate::http::openapi::ProblemDoc,
            content_type = "application/problem+json"),
    ))]
async fn get_avatar(
    State(state): State<AppState>,
    _current: CurrentUser,
    ResourceId(id): ResourceId,
) -> Result<Response, AppError> {
    let avatar = avatars::get(&state.db, id)
        .await?
        .filter(|a| is_own_file_name(&a.file_name))
        .ok_or(AppError::NotFound)?;
    let kind = ImageType::parse_stored(&avatar.media_type).ok_or(AppError::NotFound)?;
    let path = avatars_dir(&state.config.data_dir).join(&avatar.file_name);
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(AppError::NotFound),
        Err(e) => return Err(anyhow::Error::new(e).context("reading an avatar").into()),
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(kind.media_type()),
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
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_this_module_makes_are_accepted_as_stored_names() {
        assert!(is_own_file_name(&new_file_name(ImageType::Png)));
        assert!(is_own_file_name(&new_file_name(ImageType::Webp)));
        for bad in [
            "../../etc/passwd",
            "0123456789abcdef0123456789abcdef.html",
            "0123456789abcdef0123456789abcdef",
            "/0123456789abcdef0123456789abcde.png",
            ".0123456789abcdef0123456789abcdef.png.tmp",
        ] {
            assert!(!is_own_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_written_file_is_private_and_no_temporary_file_remains() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let avatars = avatars_dir(dir.path());
        write_file(&avatars, "a.png", b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&avatars), 0o700);
        assert_eq!(mode(&avatars.join("a.png")), 0o600);
        assert_eq!(std::fs::read_dir(&avatars).unwrap().count(), 1);
    }
}
