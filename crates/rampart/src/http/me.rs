//! `/api/v1/me`: the signed-in account, its sessions and its MFA.

use crate::http::routing::{ApiRouter, routes};
use axum::{Json, extract::State, http::StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ResourceId, ValidJson, paged::Paged};
use crate::{
    auth::{
        account::{self, ProfileChange},
        extract::CurrentUser,
    },
    domain::{rfc3339, user::User},
    error::AppError,
    security_events::EventContext,
    state::AppState,
};

/// The account routes.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(get_me, patch_me))
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(totp_setup))
        .routes(routes!(totp_confirm))
        .routes(routes!(totp_disable))
}

/// The User shape (API.md §4): never a hash or secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserBody {
    id: Uuid,
    email: String,
    name: String,
    /// Sanitized HTML.
    bio: String,
    /// `user` or `admin`.
    #[schema(value_type = String, schema_with = crate::http::openapi::role)]
    role: &'static str,
    active: bool,
    email_verified: bool,
    mfa_enabled: bool,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<User> for UserBody {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            email: u.email,
            name: u.name,
            bio: u.bio,
            role: u.role.as_str(),
            active: u.active,
            email_verified: u.email_verified,
            mfa_enabled: u.mfa_enabled,
            created_at: rfc3339(u.created_at),
        }
    }
}

/// The signed-in account.
#[utoipa::path(get, path = "/api/v1/me", tag = "account", security(("bearer" = [])),
    responses((status = 200, description = "The signed-in account", body = UserBody)))]
async fn get_me(current: CurrentUser) -> Json<UserBody> {
    Json(UserBody::from(current.user))
}

/// `PATCH /me` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMe {
    /// 1–100 characters, no control characters; trimmed.
    #[schema(schema_with = crate::http::openapi::nullable_display_name)]
    name: Option<String>,
    /// At most 500 characters of HTML, sanitized to `p br b i em strong ul ol li a[href]`.
    #[schema(max_length = 500)]
    bio: Option<String>,
}

/// Change name and/or bio.
#[utoipa::path(patch, path = "/api/v1/me", tag = "account", security(("bearer" = [])), request_body = PatchMe,
    responses((status = 200, description = "The changed account", body = UserBody),
        (status = 400, description = "`validation_failed`: every failing field")))]
async fn patch_me(
    State(state): State<AppState>,
    current: CurrentUser,
    ValidJson(body): ValidJson<PatchMe>,
) -> Result<Json<UserBody>, AppError> {
    let change = ProfileChange::parse(body.name.as_deref(), body.bio.as_deref())?;
    let user =
        account::update_profile(&state, current.user.id, change, state.clock.now_ms()).await?;
    Ok(Json(UserBody::from(user)))
}

/// A session (API.md §4 shape).
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionBody {
    id: Uuid,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    last_used_at: String,
    ip: String,
    user_agent: String,
    /// Whether this is the session of the calling token.
    current: bool,
}

/// The live sessions of the account.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "account", security(("bearer" = [])),
    responses((status = 200, description = "Every open session of the account, on one page", body = Paged<SessionBody>)))]
async fn list_sessions(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Paged<SessionBody>, AppError> {
    let sessions = account::sessions(&state, current.user.id, state.clock.now_ms()).await?;
    let items: Vec<SessionBody> = sessions
        .into_iter()
        .map(|s| SessionBody {
            current: s.id == current.session_id,
            id: s.id,
            created_at: rfc3339(s.created_at),
            last_used_at: rfc3339(s.last_used_at),
            ip: s.ip,
            user_agent: s.user_agent,
        })
        .collect();
    Ok(Paged::whole(items))
}

/// Revoke one of the account's sessions; another account's session is 404.
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "account", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 204, description = "Revoked"),
        (status = 404, description = "`not_found`: no such session of yours")))]
async fn revoke_session(
    State(state): State<AppState>,
    ctx: EventContext,
    current: CurrentUser,
    ResourceId(id): ResourceId,
) -> Result<StatusCode, AppError> {
    account::revoke_session(&state, &ctx, current.user.id, id, state.clock.now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A TOTP secret to enrol.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpSetup {
    /// Base32 secret, for manual entry.
    secret: String,
    /// `otpauth://totp/…` for authenticator apps (SHA-1, 6 digits, 30 s).
    otpauth_uri: String,
}

/// Start TOTP enrolment: a new secret, pending until confirmed with a code.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp/setup", tag = "account", security(("bearer" = [])),
    responses((status = 200, description = "A new pending secret; confirm it with a code", body = TotpSetup),
        (status = 409, description = "`conflict`: MFA is already enabled")))]
async fn totp_setup(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<TotpSetup>, AppError> {
    let enrolment = account::start_totp(&state, &current.user, state.clock.now_ms()).await?;
    Ok(Json(TotpSetup {
        secret: enrolment.secret.expose_secret().to_owned(),
        otpauth_uri: enrolment.otpauth_uri,
    }))
}

/// A TOTP code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// The current 6-digit code of the pending secret.
    #[schema(value_type = String, pattern = "^[0-9]{6}$")]
    code: SecretString,
}

/// The one-time recovery codes, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

/// Confirm enrolment with a current code: MFA is on, and 10 recovery codes are returned.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp/confirm", tag = "account", security(("bearer" = [])), request_body = CodeBody,
    responses((status = 200, description = "MFA is on; the 10 one-time recovery codes, shown once", body = RecoveryCodes),
        (status = 400, description = "`validation_failed`: a wrong code, or no pending setup")))]
async fn totp_confirm(
    State(state): State<AppState>,
    ctx: EventContext,
    current: CurrentUser,
    ValidJson(body): ValidJson<CodeBody>,
) -> Result<Json<RecoveryCodes>, AppError> {
    let now = state.clock.now_ms();
    let codes = account::confirm_totp(&state, &ctx, current.user.id, &body.code, now).await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// The account password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

/// Disable MFA (password required).
#[utoipa::path(delete, path = "/api/v1/me/mfa/totp", tag = "account", security(("bearer" = [])), request_body = PasswordBody,
    responses((status = 204, description = "MFA is off"),
        (status = 401, description = "`invalid_credentials` (wrong password), `unauthenticated`, `invalid_token` or `token_expired`")))]
async fn totp_disable(
    State(state): State<AppState>,
    ctx: EventContext,
    current: CurrentUser,
    ValidJson(body): ValidJson<PasswordBody>,
) -> Result<StatusCode, AppError> {
    account::disable_totp(
        &state,
        &ctx,
        current.user.id,
        &body.password,
        state.clock.now_ms(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
