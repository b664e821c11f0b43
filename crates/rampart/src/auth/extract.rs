//! The extractors that state a handler's authorization policy in its signature.
//!
//! - [`CurrentUser`]: a valid bearer access token whose account is active and whose session
//!   family is live, checked on every request, so logout, password change and deactivation
//!   take effect at once. Missing token: 401 `unauthenticated`; expired: 401
//!   `token_expired`; anything else wrong: 401 `invalid_token` and a `token_invalid` event.
//!   The signature of a token seen before is not checked again (the bounded cache of
//!   [`crate::auth::token_cache`], keyed by the whole token; its times are), and the
//!   account and family are read from the database on every request, in batches
//!   ([`crate::auth::revocation`]). The account is the one stored now, role included: a
//!   role change applies from the next request, whatever the token's `role` claim says.
//! - [`RequireRole<Admin>`]: the same, plus the role; others get 403 `forbidden` and a
//!   `forbidden` event.

use std::marker::PhantomData;

use axum::{extract::FromRequestParts, http::request::Parts};
use serde_json::json;
use uuid::Uuid;

use crate::{
    auth::tokens::TokenError,
    domain::user::{Role, User},
    error::AppError,
    security_events::{EventContext, EventKind},
    state::AppState,
};

/// The authenticated account of a request.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// The account, as stored now (not as the token remembers it).
    pub user: User,
    /// The session family of the token.
    pub session_id: Uuid,
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Record an event in the context of the request of `parts`.
async fn record(
    state: &AppState,
    parts: &Parts,
    kind: EventKind,
    user: Option<Uuid>,
    details: serde_json::Value,
) {
    let ctx = EventContext::from_parts(parts);
    state.events.at(&ctx).record(kind, user, details).await;
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<CurrentUser>() {
            return Ok(user.clone());
        }
        let Some(token) = bearer(parts) else {
            return Err(AppError::Unauthenticated);
        };
        let claims = match state.tokens.verify(token, state.clock.now_secs()) {
            Ok(claims) => claims,
            Err(TokenError::Expired) => return Err(AppError::TokenExpired),
            Err(TokenError::Invalid) => {
                let details = json!({"reason": "signature, claims or key"});
                record(state, parts, EventKind::TokenInvalid, None, details).await;
                return Err(AppError::InvalidToken);
            }
        };
        // One read by primary key, started after this request arrived (see
        // `auth::revocation`): what any instance committed before is seen here.
        let status = state.revocation.status(claims.sid).await?;
        let now = state.clock.now_ms();
        let live = status.filter(|s| {
            s.user.id == claims.sub && s.user.active && s.revoked_at.is_none() && s.expires_at > now
        });
        let Some(status) = live else {
            let details = json!({"reason": "session revoked or account inactive"});
            record(
                state,
                parts,
                EventKind::TokenInvalid,
                Some(claims.sub),
                details,
            )
            .await;
            return Err(AppError::InvalidToken);
        };
        let current = CurrentUser {
            user: status.user,
            session_id: claims.sid,
        };
        parts.extensions.insert(current.clone());
        Ok(current)
    }
}

/// A role a route may require.
pub trait RequiredRole: Send + Sync + 'static {
    /// The role.
    const ROLE: Role;
}

/// The admin role.
#[derive(Debug)]
pub struct Admin;

impl RequiredRole for Admin {
    const ROLE: Role = Role::Admin;
}

/// An authenticated account with role `R`.
#[derive(Debug)]
pub struct RequireRole<R: RequiredRole>(pub CurrentUser, pub PhantomData<R>);

impl<R: RequiredRole> FromRequestParts<AppState> for RequireRole<R> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let current = CurrentUser::from_request_parts(parts, state).await?;
        if current.user.role != R::ROLE {
            let details =
                json!({"required_role": R::ROLE.as_str(), "method": parts.method.as_str()});
            record(
                state,
                parts,
                EventKind::Forbidden,
                Some(current.user.id),
                details,
            )
            .await;
            return Err(AppError::Forbidden);
        }
        Ok(Self(current, PhantomData))
    }
}
