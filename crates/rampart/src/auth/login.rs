//! Signing in: the password check with its lockout accounting, the MFA step-up, and the
//! session family a successful login opens.
//!
//! ```text
//! let Limited { result, applied } = login(&state, &ctx, &client, Login::parse(e, p)?, now).await;
//! match result? {
//!     LoginOutcome::SignedIn(session) => /* tokens, cookie or page session */,
//!     LoginOutcome::MfaRequired { mfa_token } => /* ask for the code */,
//! }
//! ```
//!
//! # Security
//! - Lockout: failed logins count per client and per account (API.md §6); the gate only
//!   peeks, so a locked account is 429 even with the right password, and only a failure
//!   spends. A failure is counted once the answer is decided, so a request abandoned
//!   before then never is. The right password forgets the account's failures (its owner's
//!   typos), not the client's.
//! - Enumeration: an unknown address runs a dummy hash and fails exactly like a wrong
//!   password (`invalid_credentials`); `email_not_verified` comes only after the right
//!   password.
//! - A right password on an account with MFA earns only a step-up token (see
//!   [`super::step_up`]); no session is opened before the second factor.

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use uuid::Uuid;

use crate::{
    auth::{
        password::Verified,
        random::{new_token, token_hash},
    },
    domain::{
        password::Password,
        user::{EmailAddress, User},
    },
    error::AppError,
    rate_limits::{Applied, Limited, address_key, peek_all},
    security_events::{EventContext, EventKind, Recorder, clean_user_agent},
    state::AppState,
    store::{
        one_time::{self, Purpose},
        sessions, users,
    },
};
use rampart_layers::rate_limit::Mode;

use super::step_up::MFA_TOKEN_TTL_MS;

/// A login attempt: the address parsed, the password as typed.
#[derive(Debug)]
pub struct Login {
    /// The account's address.
    pub email: EmailAddress,
    /// The password, unchecked (any string may be tried; it is never echoed).
    pub password: Password,
}

impl Login {
    /// Parse the address; an invalid one is 400 `validation_failed` and counts nowhere.
    pub fn parse(email: &str, password: &SecretString) -> Result<Self, AppError> {
        let email =
            EmailAddress::parse(email, "email").map_err(|e| AppError::Validation(vec![e]))?;
        Ok(Self {
            email,
            password: Password::unchecked(password.expose_secret().to_owned()),
        })
    }
}

/// A session just opened or refreshed: the account, its session family and the tokens.
#[derive(Debug)]
pub struct SignedIn {
    /// The account, as stored now.
    pub user: User,
    /// The session family (the login).
    pub session_id: Uuid,
    /// The new refresh token (to hand over once, e.g. in a cookie).
    pub refresh_token: SecretString,
    /// How long the refresh token lives, in seconds.
    pub refresh_expires_in: u64,
    /// A signed access token for the session.
    pub access_token: SecretString,
    /// How long the access token lives, in seconds.
    pub access_expires_in: u64,
}

/// What a login with the right password leads to.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Signed in with the password alone.
    SignedIn(SignedIn),
    /// The account has MFA: complete the login with
    /// [`verify_mfa`](super::step_up::verify_mfa) and this token.
    MfaRequired {
        /// The single-use step-up token.
        mfa_token: SecretString,
    },
}

/// Sign in with address and password, under the login limits (see the module's
/// `# Security`). `client` is the client's rate-limit key.
pub async fn login(
    app: &AppState,
    ctx: &EventContext,
    client: &str,
    login: Login,
    now_ms: i64,
) -> Limited<LoginOutcome> {
    let events = app.events.at(ctx);
    let limits = &app.limits;
    let account = address_key(login.email.as_str());
    let applied = peek_all(&[
        (&limits.login_ip, client),
        (&limits.login_account, account.as_str()),
    ])
    .await;
    let refused_key = match applied.refused() {
        Some((policy, _)) if policy.name() == limits.login_ip.name() => client,
        _ => account.as_str(),
    };
    if let Some(refused) = limits.refusal(events, &applied, refused_key, now_ms).await {
        return Limited::new(Err(refused), applied);
    }
    let result = check_password(app, events, &login, now_ms).await;
    if matches!(result, Ok(_) | Err(AppError::EmailNotVerified)) {
        // The client's count stays, so logging in to one account cannot clear the
        // failures spent guessing others.
        limits.login_account.forget(&account).await;
    }
    if !matches!(result, Err(AppError::InvalidCredentials)) {
        return Limited::new(result, applied);
    }
    let by_ip = limits.login_ip.check(client, Mode::Take).await;
    let by_account = limits.login_account.check(&account, Mode::Take).await;
    if by_account.allowed && by_account.remaining == 0 {
        let user = users::credentials_by_email(&app.db, login.email.as_str())
            .await
            .ok()
            .flatten()
            .map(|c| c.user.id);
        let details =
            json!({"email": login.email.as_str(), "retry_after_secs": by_account.reset.as_secs()});
        events.record(EventKind::AccountLocked, user, details).await;
    }
    let mut spent = Applied::default();
    spent.push(&limits.login_ip, by_ip);
    spent.push(&limits.login_account, by_account);
    Limited::new(result, spent)
}

/// Check the password, then open a session or ask for the second factor.
async fn check_password(
    app: &AppState,
    events: Recorder<'_>,
    login: &Login,
    now_ms: i64,
) -> Result<LoginOutcome, AppError> {
    let creds = users::credentials_by_email(&app.db, login.email.as_str()).await?;
    let verified = if login.password.is_plausible() {
        let stored = creds.as_ref().map(|c| c.password_hash.as_str());
        app.hasher.verify(&login.password, stored).await?
    } else {
        Verified::No
    };
    let (creds, rehash) = match (creds, verified) {
        (Some(creds), Verified::Yes { rehash }) if creds.user.active => (creds, rehash),
        (creds, _) => {
            let user = creds.map(|c| c.user.id);
            let details = json!({"email": login.email.as_str()});
            events.record(EventKind::LoginFailed, user, details).await;
            return Err(AppError::InvalidCredentials);
        }
    };
    if let Some(new_hash) = rehash {
        users::set_password_hash(&app.db, creds.user.id, &new_hash, now_ms).await?;
    }
    if !creds.user.email_verified {
        return Err(AppError::EmailNotVerified);
    }
    if creds.user.mfa_enabled {
        let token = new_token();
        let hash = token_hash(&token);
        let user = creds.user.id;
        one_time::issue(
            &app.db,
            Purpose::MfaLogin,
            user,
            &hash,
            now_ms,
            MFA_TOKEN_TTL_MS,
        )
        .await?;
        return Ok(LoginOutcome::MfaRequired {
            mfa_token: SecretString::from(token),
        });
    }
    let session = open_session(app, events, creds.user, "password", now_ms).await?;
    Ok(LoginOutcome::SignedIn(session))
}

/// Open a session family for `user` and record the login.
pub(crate) async fn open_session(
    app: &AppState,
    events: Recorder<'_>,
    user: User,
    method: &str,
    now_ms: i64,
) -> Result<SignedIn, AppError> {
    let refresh = new_token();
    let auth = &app.config.auth;
    let ctx = events.context();
    let family = sessions::create_family(
        &app.db,
        user.id,
        &token_hash(&refresh),
        &ctx.ip,
        &clean_user_agent(&ctx.user_agent),
        now_ms,
        auth.refresh_token_ttl.as_millis() as i64,
        auth.session_max_age.as_millis() as i64,
    )
    .await?;
    let details = json!({"method": method, "session_id": family});
    events
        .record(EventKind::LoginSucceeded, Some(user.id), details)
        .await;
    signed_in(app, user, family, refresh, now_ms)
}

/// The tokens of session `family` of `user`, with `refresh` as its current refresh token.
pub(crate) fn signed_in(
    app: &AppState,
    user: User,
    family: Uuid,
    refresh: String,
    now_ms: i64,
) -> Result<SignedIn, AppError> {
    let (access, _claims) = app
        .tokens
        .issue(user.id, family, user.role.as_str(), now_ms.div_euclid(1000))
        .map_err(AppError::Internal)?;
    Ok(SignedIn {
        user,
        session_id: family,
        refresh_token: SecretString::from(refresh),
        refresh_expires_in: app.config.auth.refresh_token_ttl.as_secs(),
        access_token: SecretString::from(access),
        access_expires_in: app.config.auth.access_token_ttl.as_secs(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing::{PASSWORD, TestState, secret};

    fn attempt(email: &str, password: &str) -> Login {
        Login::parse(email, &secret(password)).unwrap()
    }

    #[tokio::test]
    async fn the_right_password_opens_a_session_whose_access_token_verifies() {
        let t = TestState::new().await;
        let user = t.user("ada@example.com", true).await;
        let outcome = login(
            &t.state,
            &t.ctx,
            "c1",
            attempt("ADA@example.com", PASSWORD),
            t.now(),
        )
        .await;
        let LoginOutcome::SignedIn(session) = outcome.result.unwrap() else {
            panic!("MFA is off");
        };
        assert_eq!(session.user.id, user.id);
        let claims = t
            .state
            .tokens
            .verify(session.access_token.expose_secret(), t.clock.now_secs())
            .unwrap();
        assert_eq!((claims.sub, claims.sid), (user.id, session.session_id));
        let listed = sessions::list(&t.state.db, user.id, t.now()).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].created_at, t.now());
        assert_eq!(t.event_kinds().await, ["login_succeeded"]);
    }

    #[tokio::test]
    async fn an_unknown_address_and_a_wrong_password_fail_alike_and_both_count() {
        let t = TestState::new().await;
        let user = t.user("ada@example.com", true).await;
        let wrong = login(
            &t.state,
            &t.ctx,
            "c1",
            attempt("ada@example.com", "nope nope"),
            t.now(),
        )
        .await;
        let unknown = login(
            &t.state,
            &t.ctx,
            "c1",
            attempt("bob@example.com", PASSWORD),
            t.now(),
        )
        .await;
        assert!(matches!(wrong.result, Err(AppError::InvalidCredentials)));
        assert!(matches!(unknown.result, Err(AppError::InvalidCredentials)));
        let events = t.events().await;
        let failed: Vec<_> = events.iter().filter(|e| e.0 == "login_failed").collect();
        assert_eq!(failed.len(), 2);
        assert!(failed.iter().any(|e| e.1 == Some(user.id)));
        assert!(
            failed
                .iter()
                .any(|e| e.1.is_none() && e.2["email"] == "bob@example.com")
        );
        // Both spent the client's count: its remaining fields went down twice.
        let ip = t.state.limits.login_ip.check("c1", Mode::Peek).await;
        let fresh = t.state.limits.login_ip.check("c2", Mode::Peek).await;
        assert_eq!(ip.remaining + 2, fresh.remaining);
    }

    #[tokio::test]
    async fn a_locked_account_refuses_even_the_right_password_until_the_clock_moves() {
        let t = TestState::with(&[("RAMPART_RATE_LIMIT_LOGIN_ACCOUNT", "3/15m")]).await;
        t.user("ada@example.com", true).await;
        for client in ["c1", "c2", "c3"] {
            let failed = login(
                &t.state,
                &t.ctx,
                client,
                attempt("ada@example.com", "bad guess"),
                t.now(),
            )
            .await;
            assert!(matches!(failed.result, Err(AppError::InvalidCredentials)));
        }
        assert!(t.event_kinds().await.contains(&"account_locked".to_owned()));
        let locked = login(
            &t.state,
            &t.ctx,
            "c4",
            attempt("ada@example.com", PASSWORD),
            t.now(),
        )
        .await;
        assert!(
            matches!(locked.result, Err(AppError::RateLimited { .. })),
            "{:?}",
            locked.result
        );
        assert!(locked.applied.refused().is_some());
        t.clock.advance(std::time::Duration::from_secs(15 * 60));
        let later = login(
            &t.state,
            &t.ctx,
            "c4",
            attempt("ada@example.com", PASSWORD),
            t.now(),
        )
        .await;
        assert!(matches!(later.result, Ok(LoginOutcome::SignedIn(_))));
    }

    #[tokio::test]
    async fn the_right_password_forgets_the_accounts_failures_but_not_the_clients() {
        let t = TestState::new().await;
        t.user("ada@example.com", true).await;
        let account = address_key("ada@example.com");
        let full = t
            .state
            .limits
            .login_account
            .check(&account, Mode::Peek)
            .await
            .remaining;
        login(
            &t.state,
            &t.ctx,
            "c1",
            attempt("ada@example.com", "typo typo"),
            t.now(),
        )
        .await;
        let ok = login(
            &t.state,
            &t.ctx,
            "c1",
            attempt("ada@example.com", PASSWORD),
            t.now(),
        )
        .await;
        assert!(ok.result.is_ok());
        let after = t
            .state
            .limits
            .login_account
            .check(&account, Mode::Peek)
            .await
            .remaining;
        assert_eq!(after, full);
        let client = t
            .state
            .limits
            .login_ip
            .check("c1", Mode::Peek)
            .await
            .remaining;
        let fresh = t
            .state
            .limits
            .login_ip
            .check("c9", Mode::Peek)
            .await
            .remaining;
        assert_eq!(client + 1, fresh);
    }

    #[tokio::test]
    async fn an_unverified_address_is_told_only_after_the_right_password() {
        let t = TestState::new().await;
        t.user("ada@example.com", false).await;
        let wrong = login(
            &t.state,
            &t.ctx,
            "c1",
            attempt("ada@example.com", "bad guess"),
            t.now(),
        )
        .await;
        assert!(matches!(wrong.result, Err(AppError::InvalidCredentials)));
        let right = login(
            &t.state,
            &t.ctx,
            "c1",
            attempt("ada@example.com", PASSWORD),
            t.now(),
        )
        .await;
        assert!(matches!(right.result, Err(AppError::EmailNotVerified)));
    }
}
