//! `/api/v1/auth/*`: registration, email verification, login with optional MFA step-up,
//! refresh rotation, logout, password reset and change.
//!
//! Each handler extracts, calls one service of [`crate::auth`] (where the policy lives:
//! lockout, anti-enumeration, token lifetimes, events, mail) and maps its outcome to a
//! response, the refresh cookie and the `RateLimit` fields of the limits that applied.
//!
//! # Security
//! - The refresh token travels only in a `__Secure-`, `HttpOnly`, `SameSite=Strict`
//!   cookie scoped to `/api/v1/auth`; a cookie value that is not token-shaped is ignored.
//! - Register, resend-verification and forgot-password answer the same status and body
//!   whatever the address (see the services).

use crate::http::routing::{ApiRouter, routes};
use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ClientKey, ValidJson, me::UserBody};

mod recovery;
mod session;
use crate::{
    auth::{extract::CurrentUser, login::SignedIn, random::looks_like_token},
    error::AppError,
    rate_limits::Limited,
    security_events::EventContext,
    state::AppState,
};

/// The refresh cookie's name (API.md §4).
pub const REFRESH_COOKIE: &str = "__Secure-rampart_refresh";

/// The identity routes.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .merge(recovery::router())
        .merge(session::router())
}

/// `{"message": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    message: &'static str,
}

fn accepted(message: &'static str) -> Response {
    (StatusCode::ACCEPTED, Json(Message { message })).into_response()
}

/// Answer a limited outcome mapped by `respond`, with the rate-limit fields of every
/// route limit that applied, success or not.
fn with_limits<T>(limited: Limited<T>, respond: impl FnOnce(T) -> Response) -> Response {
    let mut response = match limited.result {
        Ok(value) => respond(value),
        Err(e) => e.into_response(),
    };
    limited.applied.write(response.headers_mut());
    response
}

/// A signed-in session: the access token and the account; the refresh token is in the
/// cookie.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// An EdDSA-signed JWT (`typ: at+jwt`).
    access_token: String,
    /// Always `Bearer`.
    #[schema(value_type = String, pattern = "^Bearer$")]
    token_type: &'static str,
    /// Seconds the access token lives.
    expires_in: u64,
    user: UserBody,
}

/// The tokens of a new or refreshed session, the refresh token in its cookie.
fn token_response(session: SignedIn) -> Response {
    let body = TokenResponse {
        access_token: session.access_token.expose_secret().to_owned(),
        token_type: "Bearer",
        expires_in: session.access_expires_in,
        user: UserBody::from(session.user),
    };
    let mut response = Json(body).into_response();
    let refresh = session.refresh_token.expose_secret();
    set_refresh_cookie(&mut response, Some(refresh), session.refresh_expires_in);
    response
}

/// Set (or, with `None`, clear) the refresh cookie.
fn set_refresh_cookie(response: &mut Response, token: Option<&str>, max_age: u64) {
    let cookie = match token {
        Some(t) => format!(
            "{REFRESH_COOKIE}={t}; HttpOnly; Secure; SameSite=Strict; Path=/api/v1/auth; Max-Age={max_age}"
        ),
        None => format!(
            "{REFRESH_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/api/v1/auth; Max-Age=0"
        ),
    };
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// `response` with the refresh cookie cleared.
fn clearing_cookie(mut response: Response) -> Response {
    set_refresh_cookie(&mut response, None, 0);
    response
}

/// The token-shaped value of the refresh cookie, if one was sent.
fn refresh_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| looks_like_token(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::random::new_token;

    #[test]
    fn the_refresh_cookie_is_found_among_others_and_junk_is_ignored() {
        let token = new_token();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {REFRESH_COOKIE}={token}; c=d")).unwrap(),
        );
        assert_eq!(refresh_cookie(&headers), Some(token));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("__Secure-rampart_refresh=' OR 1=1 --"),
        );
        assert_eq!(refresh_cookie(&headers), None);
    }

    #[test]
    fn a_cleared_cookie_expires_at_once_on_the_auth_path_only() {
        let response = clearing_cookie(StatusCode::NO_CONTENT.into_response());
        let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
        assert!(cookie.starts_with(&format!("{REFRESH_COOKIE}=;")));
        assert!(cookie.contains("Max-Age=0") && cookie.contains("Path=/api/v1/auth"));
        assert!(cookie.contains("HttpOnly") && cookie.contains("Secure"));
    }
}
