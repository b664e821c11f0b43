//! Password recovery: a reset link by mail, and the reset it allows.
//!
//! # Security
//! - Enumeration: the outcome is the same for known and unknown addresses; requests count
//!   per address digest alike, so a 429 reveals nothing either; every request of a client
//!   counts towards its progressive slow-down, whatever the address.
//! - A reset link lives [`RESET_TOKEN_TTL_MS`] and is single use (whoever consumes it first
//!   wins); a completed reset kills the account's other reset links, confirms its address
//!   (the link proved it) and ends every session.

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;

use crate::{
    auth::{
        random::{looks_like_token, new_token, token_hash},
        registration::bad_mail_token,
    },
    domain::{password::Password, user::EmailAddress},
    error::AppError,
    mail::templates,
    rate_limits::{Applied, Limited, address_key},
    security_events::{EventContext, EventKind},
    state::AppState,
    store::{
        one_time::{self, Purpose},
        sessions, users,
    },
};
use rampart_layers::rate_limit::Mode;

/// How long a reset link lives.
pub const RESET_TOKEN_TTL_MS: i64 = 30 * 60 * 1000;

/// Ask for a reset link for `email` (as typed), from the client with rate-limit key
/// `client`. The client is slowed down first, then the address is parsed and counted.
pub async fn forgot_password(
    app: &AppState,
    ctx: &EventContext,
    client: &str,
    email: &str,
    now_ms: i64,
) -> Limited<()> {
    let delay = app.limits.forgot_slow_down.delay(client).await;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let email = match EmailAddress::parse(email, "email") {
        Ok(email) => email,
        Err(e) => return Limited::new(Err(AppError::Validation(vec![e])), Applied::default()),
    };
    let key = address_key(email.as_str());
    let mut applied = Applied::default();
    let limit = &app.limits.forgot;
    applied.push(limit, limit.check(&key, Mode::Take).await);
    if let Some(refused) = app
        .limits
        .refusal(app.events.at(ctx), &applied, &key, now_ms)
        .await
    {
        return Limited::new(Err(refused), applied);
    }
    Limited::new(send_reset_link(app, ctx, &email, now_ms).await, applied)
}

async fn send_reset_link(
    app: &AppState,
    ctx: &EventContext,
    email: &EmailAddress,
    now_ms: i64,
) -> Result<(), AppError> {
    let user = users::credentials_by_email(&app.db, email.as_str())
        .await?
        .map(|c| c.user)
        .filter(|u| u.active);
    let details = json!({"known": user.is_some()});
    app.events
        .at(ctx)
        .record(
            EventKind::PasswordResetRequested,
            user.as_ref().map(|u| u.id),
            details,
        )
        .await;
    if let Some(user) = user {
        let token = new_token();
        let hash = token_hash(&token);
        one_time::issue(
            &app.db,
            Purpose::ResetPassword,
            user.id,
            &hash,
            now_ms,
            RESET_TOKEN_TTL_MS,
        )
        .await?;
        let mail =
            templates::password_reset(&app.config.public_url, &user.email, &user.name, &token);
        app.mailer.send_detached(mail);
    }
    Ok(())
}

/// A reset: the token from the link and the new password.
#[derive(Debug)]
pub struct Reset {
    /// The token of the reset link.
    pub token: SecretString,
    /// The new password; checked for strength against the account's address.
    pub new_password: SecretString,
}

/// Set a new password with a reset link's token; every session of the account ends.
pub async fn reset_password(
    app: &AppState,
    ctx: &EventContext,
    reset: Reset,
    now_ms: i64,
) -> Result<(), AppError> {
    let token = reset.token.expose_secret();
    if !looks_like_token(token) {
        return Err(bad_mail_token());
    }
    let hash = token_hash(token);
    let user_id = one_time::peek(&app.db, Purpose::ResetPassword, &hash, now_ms)
        .await?
        .ok_or_else(bad_mail_token)?;
    let user = users::get(&app.db, user_id)
        .await?
        .ok_or_else(bad_mail_token)?;
    let new = reset.new_password.expose_secret().to_owned();
    let password =
        Password::parse_new(new, "new_password", &user.email).map_err(AppError::Validation)?;
    let new_hash = app.hasher.hash(&password).await?;
    // Single use: whoever consumes first wins.
    if one_time::consume(&app.db, Purpose::ResetPassword, &hash, now_ms)
        .await?
        .is_none()
    {
        return Err(bad_mail_token());
    }
    users::set_password_hash(&app.db, user.id, &new_hash, now_ms).await?;
    users::mark_verified(&app.db, user.id, now_ms).await?;
    one_time::revoke_all(&app.db, Purpose::ResetPassword, user.id, now_ms).await?;
    let revoked = sessions::revoke_all(&app.db, user.id, None, now_ms).await?;
    let details = json!({"sessions_revoked": revoked});
    app.events
        .at(ctx)
        .record(EventKind::PasswordResetCompleted, Some(user.id), details)
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{
        login::{Login, LoginOutcome, login},
        testing::{PASSWORD, TestState, secret, token_in},
    };

    const NEW: &str = "a brand new passphrase for me 9";

    #[tokio::test]
    async fn a_reset_link_sets_the_password_once_and_ends_every_session() {
        let t = TestState::new().await;
        t.user("ada@example.com", true).await;
        let attempt = Login::parse("ada@example.com", &secret(PASSWORD)).unwrap();
        let Ok(LoginOutcome::SignedIn(session)) =
            login(&t.state, &t.ctx, "c1", attempt, t.now()).await.result
        else {
            panic!("login");
        };
        forgot_password(&t.state, &t.ctx, "c1", "ada@example.com", t.now())
            .await
            .result
            .unwrap();
        forgot_password(&t.state, &t.ctx, "c1", "ada@example.com", t.now())
            .await
            .result
            .unwrap();
        let mails = t.mails(2).await;
        let first = token_in(&mails[0], "/reset-password");
        let second = token_in(&mails[1], "/reset-password");
        let reset = |token: &str| Reset {
            token: secret(token),
            new_password: secret(NEW),
        };
        reset_password(&t.state, &t.ctx, reset(&first), t.now())
            .await
            .unwrap();
        assert!(
            sessions::list(&t.state.db, session.user.id, t.now())
                .await
                .unwrap()
                .is_empty()
        );
        // Used, and the other link of the account died with it.
        for token in [&first, &second] {
            let again = reset_password(&t.state, &t.ctx, reset(token), t.now()).await;
            assert!(matches!(again, Err(AppError::Validation(_))));
        }
        let attempt = Login::parse("ada@example.com", &secret(NEW)).unwrap();
        assert!(
            login(&t.state, &t.ctx, "c1", attempt, t.now())
                .await
                .result
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_reset_link_is_dead_after_thirty_minutes() {
        let t = TestState::new().await;
        t.user("ada@example.com", true).await;
        forgot_password(&t.state, &t.ctx, "c1", "ada@example.com", t.now())
            .await
            .result
            .unwrap();
        let token = token_in(&t.mails(1).await[0], "/reset-password");
        t.clock
            .advance(std::time::Duration::from_millis(RESET_TOKEN_TTL_MS as u64));
        let late = Reset {
            token: secret(&token),
            new_password: secret(NEW),
        };
        let late = reset_password(&t.state, &t.ctx, late, t.now()).await;
        assert!(matches!(late, Err(AppError::Validation(_))));
        assert!(
            !t.event_kinds()
                .await
                .contains(&"password_reset_completed".to_owned())
        );
    }

    #[tokio::test]
    async fn known_and_unknown_addresses_count_alike_and_only_the_known_gets_mail() {
        let t = TestState::with(&[("RAMPART_RATE_LIMIT_FORGOT", "1/24h")]).await;
        t.user("ada@example.com", true).await;
        for client in ["c1", "c2"] {
            forgot_password(&t.state, &t.ctx, client, "ada@example.com", t.now()).await;
            forgot_password(&t.state, &t.ctx, client, "nobody@example.com", t.now()).await;
        }
        let known = forgot_password(&t.state, &t.ctx, "c3", "ada@example.com", t.now()).await;
        let unknown = forgot_password(&t.state, &t.ctx, "c3", "nobody@example.com", t.now()).await;
        assert!(matches!(known.result, Err(AppError::RateLimited { .. })));
        assert!(matches!(unknown.result, Err(AppError::RateLimited { .. })));
        let mails = t.mails(1).await;
        assert_eq!(mails.len(), 1);
        let events = t.events().await;
        let requested: Vec<_> = events
            .iter()
            .filter(|e| e.0 == "password_reset_requested")
            .collect();
        assert_eq!(requested.len(), 2);
        assert!(
            requested
                .iter()
                .any(|e| e.2["known"] == false && e.1.is_none())
        );
    }

    #[tokio::test]
    async fn a_weak_new_password_leaves_the_link_usable() {
        let t = TestState::new().await;
        t.user("ada@example.com", true).await;
        forgot_password(&t.state, &t.ctx, "c1", "ada@example.com", t.now())
            .await
            .result
            .unwrap();
        let token = token_in(&t.mails(1).await[0], "/reset-password");
        let weak = Reset {
            token: secret(&token),
            new_password: secret("password"),
        };
        let weak = reset_password(&t.state, &t.ctx, weak, t.now()).await;
        assert!(matches!(weak, Err(AppError::Validation(_))));
        let strong = Reset {
            token: secret(&token),
            new_password: secret(NEW),
        };
        reset_password(&t.state, &t.ctx, strong, t.now())
            .await
            .unwrap();
    }
}
