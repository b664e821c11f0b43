//! Signing in and out: login with its MFA step-up, refresh rotation, logout, and password
//! change.

use super::*;
use crate::auth::{
    account::{self, PasswordChange},
    login::{self, Login, LoginOutcome},
    session as sessions,
    step_up::{self, MfaProof},
};

/// The routes of this file.
pub(super) fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(mfa_verify))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(change_password))
}

/// `POST /auth/login` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    #[schema(schema_with = crate::http::openapi::email)]
    email: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

/// The MFA step-up answer of a login.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaRequired {
    /// Always `true`.
    mfa_required: bool,
    /// Single use, 5 minutes: send it with a code to `/api/v1/auth/mfa/verify`.
    #[schema(schema_with = crate::http::openapi::mail_token)]
    mfa_token: String,
}

/// What a login answers: the tokens, or the MFA step-up.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum LoginAnswer {
    /// Signed in.
    #[schema(title = "SignedIn")]
    SignedIn(TokenResponse),
    /// A second factor is required.
    #[schema(title = "MfaRequired")]
    MfaRequired(MfaRequired),
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in (refresh cookie set), or MFA required", body = LoginAnswer),
        (status = 400, description = "`validation_failed`: a malformed email address or body"),
        (status = 401, description = "`invalid_credentials`: the same for an unknown email and a wrong password"),
        (status = 403, description = "`email_not_verified` (only after a correct password)"),
        (status = 429, description = "Too many failed logins for this account or from this client; even the right password waits (`Retry-After`)"),
        (status = 503, description = "Password hashing is saturated; retry later"),
    ))]
async fn login(
    State(state): State<AppState>,
    ctx: EventContext,
    ClientKey(client): ClientKey,
    ValidJson(body): ValidJson<LoginBody>,
) -> Result<Response, AppError> {
    let attempt = Login::parse(&body.email, &body.password)?;
    let now = state.clock.now_ms();
    let outcome = login::login(&state, &ctx, &client, attempt, now).await;
    Ok(with_limits(outcome, |outcome| match outcome {
        LoginOutcome::SignedIn(session) => token_response(session),
        LoginOutcome::MfaRequired { mfa_token } => Json(MfaRequired {
            mfa_required: true,
            mfa_token: mfa_token.expose_secret().to_owned(),
        })
        .into_response(),
    }))
}

/// `POST /auth/mfa/verify` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaVerifyBody {
    #[schema(value_type = String, schema_with = crate::http::openapi::mail_token)]
    mfa_token: SecretString,
    /// A 6-digit TOTP code or a recovery code.
    #[schema(value_type = String)]
    code: SecretString,
}

/// Complete a login that requires MFA.
#[utoipa::path(post, path = "/api/v1/auth/mfa/verify", tag = "auth", request_body = MfaVerifyBody,
    responses(
        (status = 200, description = "Signed in (refresh cookie set)", body = TokenResponse),
        (status = 401, description = "`invalid_credentials`: a wrong code, or an unknown, used or expired mfa_token"),
        (status = 429, description = "`rate_limited`: too many wrong codes; the mfa_token is dead"),
    ))]
async fn mfa_verify(
    State(state): State<AppState>,
    ctx: EventContext,
    ValidJson(body): ValidJson<MfaVerifyBody>,
) -> Response {
    let proof = MfaProof {
        mfa_token: body.mfa_token,
        code: body.code,
    };
    let outcome = step_up::verify_mfa(&state, &ctx, &proof, state.clock.now_ms()).await;
    with_limits(outcome, token_response)
}

/// Rotate the refresh token from the cookie.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    responses(
        (status = 200, description = "New access token and refresh cookie", body = TokenResponse),
        (status = 401, description = "`unauthenticated`, `invalid_token`, or `token_reused` (the session is revoked)"),
    ))]
async fn refresh(
    State(state): State<AppState>,
    ctx: EventContext,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Some(presented) = refresh_cookie(&headers) else {
        return Err(AppError::Unauthenticated);
    };
    match sessions::refresh(&state, &ctx, &presented, state.clock.now_ms()).await {
        Ok(session) => Ok(token_response(session)),
        // The session is over: the browser should drop the token.
        Err(e @ (AppError::InvalidToken | AppError::TokenReused)) => {
            Ok(clearing_cookie(e.into_response()))
        }
        Err(e) => Err(e),
    }
}

/// End the session of the refresh cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204, description = "Signed out; cookie cleared")))]
async fn logout(
    State(state): State<AppState>,
    ctx: EventContext,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let presented = refresh_cookie(&headers);
    sessions::logout(&state, &ctx, presented.as_deref(), state.clock.now_ms()).await?;
    Ok(clearing_cookie(StatusCode::NO_CONTENT.into_response()))
}

/// End every session of the account.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Every session revoked")))]
async fn logout_all(
    State(state): State<AppState>,
    ctx: EventContext,
    current: CurrentUser,
) -> Result<Response, AppError> {
    sessions::logout_all(&state, &ctx, current.user.id, state.clock.now_ms()).await?;
    Ok(clearing_cookie(StatusCode::NO_CONTENT.into_response()))
}

/// `POST /auth/change-password` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    #[schema(value_type = String, format = Password)]
    current_password: SecretString,
    #[schema(value_type = String, schema_with = crate::http::openapi::new_password)]
    new_password: SecretString,
}

/// Change the password; every other session ends.
#[utoipa::path(post, path = "/api/v1/auth/change-password", tag = "auth", request_body = ChangeBody, security(("bearer" = [])),
    responses((status = 204, description = "Changed; every other session is revoked"),
        (status = 400, description = "`validation_failed`: the new password is too short, too long, common, guessable or holds the email's local part"),
        (status = 401, description = "`invalid_credentials` (wrong current password), `unauthenticated`, `invalid_token` or `token_expired`")))]
async fn change_password(
    State(state): State<AppState>,
    ctx: EventContext,
    current: CurrentUser,
    ValidJson(body): ValidJson<ChangeBody>,
) -> Result<StatusCode, AppError> {
    let change = PasswordChange {
        current_password: body.current_password,
        new_password: body.new_password,
    };
    account::change_password(&state, &ctx, &current, change, state.clock.now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}
