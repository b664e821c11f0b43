//! Registration, email verification and password recovery: the flows that answer the
//! same whatever the address, and whose work a mail carries on.

use super::*;
use crate::{
    auth::{
        recovery::{self, Reset},
        registration::{self, NewAccount},
    },
    domain::user::EmailAddress,
};

/// The routes of this file.
pub(super) fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
}

/// `POST /auth/register` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    #[schema(schema_with = crate::http::openapi::email)]
    email: String,
    #[schema(value_type = String, schema_with = crate::http::openapi::new_password)]
    password: SecretString,
    /// 1–100 characters, no control characters; trimmed.
    #[schema(schema_with = crate::http::openapi::display_name)]
    name: String,
}

/// Create an account (unverified). The same answer for new and existing addresses; the
/// owner of an existing address gets a notice mail instead.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterBody,
    responses((status = 202, description = "Accepted; the same answer for a new and an existing address", body = Message),
        (status = 400, description = "`validation_failed`: every failing field (a weak password included)"),
        (status = 429, description = "`rate_limited`: too many registrations from this client (`RateLimit` fields, `Retry-After`)")))]
async fn register(
    State(state): State<AppState>,
    ctx: EventContext,
    ClientKey(client): ClientKey,
    ValidJson(body): ValidJson<RegisterBody>,
) -> Response {
    let account = NewAccount {
        email: body.email,
        password: body.password,
        name: body.name,
    };
    let outcome =
        registration::register(&state, &ctx, &client, account, state.clock.now_ms()).await;
    with_limits(outcome, |()| {
        accepted("If the address can be used, a confirmation mail is on its way.")
    })
}

/// A token from a mail link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// The token from the mail link.
    #[schema(value_type = String, schema_with = crate::http::openapi::mail_token)]
    token: SecretString,
}

/// Confirm an address with the token from the mail link.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = TokenBody,
    responses((status = 200, description = "The address is confirmed", body = Message),
        (status = 400, description = "`validation_failed`: an invalid, used or expired token")))]
async fn verify_email(
    State(state): State<AppState>,
    ValidJson(body): ValidJson<TokenBody>,
) -> Result<Json<Message>, AppError> {
    registration::verify_email(&state, &body.token, state.clock.now_ms()).await?;
    Ok(Json(Message {
        message: "Your email address is confirmed.",
    }))
}

/// An email address.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailBody {
    #[schema(schema_with = crate::http::openapi::email)]
    email: String,
}

/// Send a new confirmation link; always 202.
#[utoipa::path(post, path = "/api/v1/auth/resend-verification", tag = "auth", request_body = EmailBody,
    responses((status = 202, description = "Accepted, whether or not the address needs confirming", body = Message),
        (status = 400, description = "`validation_failed`: a malformed email address")))]
async fn resend_verification(
    State(state): State<AppState>,
    ValidJson(body): ValidJson<EmailBody>,
) -> Result<Response, AppError> {
    let email =
        EmailAddress::parse(&body.email, "email").map_err(|e| AppError::Validation(vec![e]))?;
    registration::resend_verification(&state, &email, state.clock.now_ms()).await?;
    Ok(accepted(
        "If the address needs confirming, a new link is on its way.",
    ))
}

/// Mail a password reset link; always 202.
#[utoipa::path(post, path = "/api/v1/auth/forgot-password", tag = "auth", request_body = EmailBody,
    responses((status = 202, description = "Accepted, whether or not the address has an account", body = Message),
        (status = 400, description = "`validation_failed`: a malformed email address"),
        (status = 429, description = "`rate_limited`: too many requests for this address, known or not (`Retry-After`); a client past 2 requests in 15 min is also slowed down")))]
async fn forgot_password(
    State(state): State<AppState>,
    ctx: EventContext,
    ClientKey(client): ClientKey,
    ValidJson(body): ValidJson<EmailBody>,
) -> Response {
    let outcome =
        recovery::forgot_password(&state, &ctx, &client, &body.email, state.clock.now_ms()).await;
    with_limits(outcome, |()| {
        accepted("If the address has an account, a reset link is on its way.")
    })
}

/// `POST /auth/reset-password` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    /// The token from the mail link.
    #[schema(value_type = String, schema_with = crate::http::openapi::mail_token)]
    token: SecretString,
    #[schema(value_type = String, schema_with = crate::http::openapi::new_password)]
    new_password: SecretString,
}

/// Set a new password with the token from the reset mail; every session ends.
#[utoipa::path(post, path = "/api/v1/auth/reset-password", tag = "auth", request_body = ResetBody,
    responses((status = 200, description = "Changed; every session is revoked", body = Message),
        (status = 400, description = "`validation_failed`: an invalid, used or expired token, or a weak password")))]
async fn reset_password(
    State(state): State<AppState>,
    ctx: EventContext,
    ValidJson(body): ValidJson<ResetBody>,
) -> Result<Json<Message>, AppError> {
    let reset = Reset {
        token: body.token,
        new_password: body.new_password,
    };
    recovery::reset_password(&state, &ctx, reset, state.clock.now_ms()).await?;
    Ok(Json(Message {
        message: "Your password was changed; sign in again.",
    }))
}
