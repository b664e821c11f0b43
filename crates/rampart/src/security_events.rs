//! Security events (API.md §7): one structured log line (target `rampart::security`,
//! `category = "security"`) and one database row each, readable through
//! `GET /api/v1/admin/security-events`.
//!
//! ```text
//! let events = state.events.at(&ctx);            // bind the request's context once
//! events.record(EventKind::LoginFailed, None, json!({"email": email})).await;
//! ```
//!
//! # Security
//! Details are chosen by the caller from safe facts (ids, an email address, a reason); no
//! password, token, cookie, `Authorization` value, secret, TOTP secret or recovery code is
//! ever passed in. Recording never fails a request: a database error is logged and dropped.

use axum::{
    extract::{FromRequestParts, MatchedPath},
    http::request::Parts,
};
use rampart_layers::{client_ip::ClientIp, request_id::RequestId};
use uuid::Uuid;

use crate::{
    clock::Clock,
    store::{Db, events},
};

/// The kinds of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum EventKind {
    LoginFailed,
    LoginSucceeded,
    AccountLocked,
    MfaFailed,
    RateLimited,
    Forbidden,
    TokenInvalid,
    TokenReused,
    PasswordChanged,
    PasswordResetRequested,
    PasswordResetCompleted,
    MfaEnabled,
    MfaDisabled,
    SessionRevoked,
    UserDeactivated,
    RoleChanged,
    CsrfFailed,
    CorsRejected,
    SuspiciousInput,
    RateLimitStoreDegraded,
}

impl EventKind {
    /// Every kind, for validating filters.
    pub const ALL: [EventKind; 20] = [
        Self::LoginFailed,
        Self::LoginSucceeded,
        Self::AccountLocked,
        Self::MfaFailed,
        Self::RateLimited,
        Self::Forbidden,
        Self::TokenInvalid,
        Self::TokenReused,
        Self::PasswordChanged,
        Self::PasswordResetRequested,
        Self::PasswordResetCompleted,
        Self::MfaEnabled,
        Self::MfaDisabled,
        Self::SessionRevoked,
        Self::UserDeactivated,
        Self::RoleChanged,
        Self::CsrfFailed,
        Self::CorsRejected,
        Self::SuspiciousInput,
        Self::RateLimitStoreDegraded,
    ];

    /// The published name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginFailed => "login_failed",
            Self::LoginSucceeded => "login_succeeded",
            Self::AccountLocked => "account_locked",
            Self::MfaFailed => "mfa_failed",
            Self::RateLimited => "rate_limited",
            Self::Forbidden => "forbidden",
            Self::TokenInvalid => "token_invalid",
            Self::TokenReused => "token_reused",
            Self::PasswordChanged => "password_changed",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordResetCompleted => "password_reset_completed",
            Self::MfaEnabled => "mfa_enabled",
            Self::MfaDisabled => "mfa_disabled",
            Self::SessionRevoked => "session_revoked",
            Self::UserDeactivated => "user_deactivated",
            Self::RoleChanged => "role_changed",
            Self::CsrfFailed => "csrf_failed",
            Self::CorsRejected => "cors_rejected",
            Self::SuspiciousInput => "suspicious_input",
            Self::RateLimitStoreDegraded => "rate_limit_store_degraded",
        }
    }

    /// Parse a published name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// Where an event happened: taken from the request.
#[derive(Debug, Clone, Default)]
pub struct EventContext {
    /// The request id.
    pub request_id: String,
    /// The client address.
    pub ip: String,
    /// The user agent, at most 200 characters, control characters removed.
    pub user_agent: String,
    /// The route template.
    pub route: String,
}

/// A bounded, printable user agent.
pub fn clean_user_agent(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(200).collect()
}

impl EventContext {
    /// The context of a request.
    pub fn from_parts(parts: &Parts) -> Self {
        Self {
            request_id: parts
                .extensions
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
            ip: parts
                .extensions
                .get::<ClientIp>()
                .map(|c| c.ip.to_string())
                .unwrap_or_default(),
            user_agent: parts
                .headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(clean_user_agent)
                .unwrap_or_default(),
            route: parts
                .extensions
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_else(|| parts.uri.path().chars().take(200).collect()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for EventContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts))
    }
}

/// Records events.
#[derive(Debug, Clone)]
pub struct SecurityEvents {
    db: Db,
    clock: Clock,
}

impl SecurityEvents {
    /// Events stored in `db`, stamped by `clock` (the application's one clock, so that an
    /// event and the rows written in the same request show the same time).
    pub fn new(db: Db, clock: Clock) -> Self {
        Self { db, clock }
    }

    /// A recorder bound to the context of one request, for services that record several
    /// events (or one of several kinds) while handling it.
    pub fn at<'a>(&'a self, ctx: &'a EventContext) -> Recorder<'a> {
        Recorder { events: self, ctx }
    }

    /// Log and store one event.
    pub async fn record(
        &self,
        ctx: &EventContext,
        kind: EventKind,
        user_id: Option<Uuid>,
        details: serde_json::Value,
    ) {
        crate::metrics::record_security_event(kind.as_str());
        let details = details.to_string();
        let user = user_id.map(|u| u.to_string()).unwrap_or_default();
        tracing::warn!(
            target: "rampart::security",
            category = "security",
            event = kind.as_str(),
            request_id = ctx.request_id.as_str(),
            ip = ctx.ip.as_str(),
            user_agent = ctx.user_agent.as_str(),
            user_id = user.as_str(),
            route = ctx.route.as_str(),
            details = details.as_str(),
            "security event"
        );
        let row = events::EventRow {
            id: Uuid::new_v4(),
            kind: kind.as_str().to_owned(),
            occurred_at: self.clock.now_ms(),
            request_id: ctx.request_id.clone(),
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
            user_id,
            route: ctx.route.clone(),
            details,
        };
        if let Err(e) = events::insert(&self.db, &row).await {
            tracing::error!(target: "rampart::security", error = %e, event = kind.as_str(), "security event not stored");
        }
    }
}

/// [`SecurityEvents`] with the context of one request already bound.
#[derive(Debug, Clone, Copy)]
pub struct Recorder<'a> {
    events: &'a SecurityEvents,
    ctx: &'a EventContext,
}

impl<'a> Recorder<'a> {
    /// Log and store one event of `kind` about `user_id` (see [`SecurityEvents::record`]).
    pub async fn record(self, kind: EventKind, user_id: Option<Uuid>, details: serde_json::Value) {
        self.events.record(self.ctx, kind, user_id, details).await;
    }

    /// The request context this recorder writes.
    pub fn context(&self) -> &'a EventContext {
        self.ctx
    }

    /// The log it writes to.
    pub fn events(&self) -> &'a SecurityEvents {
        self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("nope"), None);
    }

    #[tokio::test]
    async fn a_bound_recorder_stores_its_requests_context_with_each_event() {
        let t = crate::auth::testing::TestState::new().await;
        let user = Uuid::new_v4();
        let recorder = t.state.events.at(&t.ctx);
        recorder
            .record(
                EventKind::MfaDisabled,
                Some(user),
                serde_json::json!({"n": 1}),
            )
            .await;
        recorder
            .record(EventKind::RateLimited, None, serde_json::json!({"n": 2}))
            .await;
        let (rows, total) = events::list(
            &t.state.db,
            Some("mfa_disabled"),
            None,
            crate::domain::paging::Page::default(),
            crate::domain::paging::Limit::default(),
        )
        .await
        .unwrap();
        assert_eq!(total, 1);
        let row = &rows[0];
        assert_eq!(row.user_id, Some(user));
        assert_eq!(row.details, r#"{"n":1}"#);
        assert_eq!(
            (
                row.request_id.as_str(),
                row.ip.as_str(),
                row.user_agent.as_str(),
                row.route.as_str()
            ),
            ("req-1", "192.0.2.7", "unit-test", "/test")
        );
    }

    #[test]
    fn a_user_agent_is_bounded_and_printable() {
        let ua = clean_user_agent(&format!("evil\r\nX-Injected: 1{}", "a".repeat(500)));
        assert!(!ua.contains('\n'));
        assert_eq!(ua.chars().count(), 200);
    }
}
