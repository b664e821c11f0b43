//! A session after login: refresh-token rotation with reuse detection, and signing out.
//!
//! # Security
//! Rotation is one conditional write in the store; a rotated token presented again (past
//! the grace period) revokes its whole family and is recorded as `token_reused`. Unknown,
//! expired and revoked tokens are one `invalid_token` answer.

use serde_json::json;
use uuid::Uuid;

use crate::{
    auth::{
        login::{SignedIn, signed_in},
        random::{new_token, token_hash},
    },
    error::AppError,
    security_events::{EventContext, EventKind},
    state::AppState,
    store::{
        sessions::{self, Rotation},
        users,
    },
};

/// Rotate the refresh token `presented`: new tokens for the same session, or
/// `invalid_token` / `token_reused` (the caller should then drop the token it holds).
pub async fn refresh(
    app: &AppState,
    ctx: &EventContext,
    presented: &str,
    now_ms: i64,
) -> Result<SignedIn, AppError> {
    let events = app.events.at(ctx);
    let replacement = new_token();
    let auth = &app.config.auth;
    let outcome = sessions::rotate(
        &app.db,
        &token_hash(presented),
        &token_hash(&replacement),
        now_ms,
        auth.refresh_token_ttl.as_millis() as i64,
        auth.refresh_grace.as_millis() as i64,
    )
    .await?;
    match outcome {
        Rotation::Rotated { family_id, user_id } => {
            match users::get(&app.db, user_id).await?.filter(|u| u.active) {
                Some(user) => signed_in(app, user, family_id, replacement, now_ms),
                None => Err(AppError::InvalidToken),
            }
        }
        Rotation::Reused { family_id, user_id } => {
            let details = json!({"session_id": family_id});
            events
                .record(EventKind::TokenReused, Some(user_id), details)
                .await;
            Err(AppError::TokenReused)
        }
        Rotation::Invalid => {
            let details = json!({"reason": "refresh token unknown, expired or revoked"});
            events.record(EventKind::TokenInvalid, None, details).await;
            Err(AppError::InvalidToken)
        }
    }
}

/// End the session of the refresh token `presented`, if it is one; signing out without
/// a (valid) token is not an error.
pub async fn logout(
    app: &AppState,
    ctx: &EventContext,
    presented: Option<&str>,
    now_ms: i64,
) -> Result<(), AppError> {
    let Some(presented) = presented else {
        return Ok(());
    };
    if let Some((family, user)) = sessions::family_of(&app.db, &token_hash(presented)).await?
        && sessions::revoke_family(&app.db, family, now_ms).await?
    {
        let details = json!({"session_id": family, "by": "logout"});
        app.events
            .at(ctx)
            .record(EventKind::SessionRevoked, Some(user), details)
            .await;
    }
    Ok(())
}

/// End every session of `user_id`.
pub async fn logout_all(
    app: &AppState,
    ctx: &EventContext,
    user_id: Uuid,
    now_ms: i64,
) -> Result<(), AppError> {
    let revoked = sessions::revoke_all(&app.db, user_id, None, now_ms).await?;
    let details = json!({"sessions": revoked, "by": "logout-all"});
    app.events
        .at(ctx)
        .record(EventKind::SessionRevoked, Some(user_id), details)
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;
    use crate::auth::{
        login::{Login, LoginOutcome, login},
        testing::{PASSWORD, TestState, secret},
    };

    async fn signed_in_as(t: &TestState, email: &str) -> SignedIn {
        t.user(email, true).await;
        let attempt = Login::parse(email, &secret(PASSWORD)).unwrap();
        match login(&t.state, &t.ctx, "c1", attempt, t.now()).await.result {
            Ok(LoginOutcome::SignedIn(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_refresh_rotates_the_token_within_the_same_session() {
        let t = TestState::new().await;
        let first = signed_in_as(&t, "ada@example.com").await;
        t.clock.advance(std::time::Duration::from_secs(60));
        let second = refresh(
            &t.state,
            &t.ctx,
            first.refresh_token.expose_secret(),
            t.now(),
        )
        .await
        .unwrap();
        assert_eq!(second.session_id, first.session_id);
        assert_ne!(
            second.refresh_token.expose_secret(),
            first.refresh_token.expose_secret()
        );
        let third = refresh(
            &t.state,
            &t.ctx,
            second.refresh_token.expose_secret(),
            t.now(),
        )
        .await;
        assert_eq!(third.unwrap().session_id, first.session_id);
    }

    #[tokio::test]
    async fn a_rotated_token_presented_after_the_grace_revokes_the_family() {
        let t = TestState::new().await;
        let first = signed_in_as(&t, "ada@example.com").await;
        let second = refresh(
            &t.state,
            &t.ctx,
            first.refresh_token.expose_secret(),
            t.now(),
        )
        .await
        .unwrap();
        t.clock
            .advance(t.state.config.auth.refresh_grace + std::time::Duration::from_secs(1));
        let reused = refresh(
            &t.state,
            &t.ctx,
            first.refresh_token.expose_secret(),
            t.now(),
        )
        .await;
        assert!(matches!(reused, Err(AppError::TokenReused)), "{reused:?}");
        // The whole family is gone: the current token no longer works either.
        let current = refresh(
            &t.state,
            &t.ctx,
            second.refresh_token.expose_secret(),
            t.now(),
        )
        .await;
        assert!(current.is_err());
        assert!(t.event_kinds().await.contains(&"token_reused".to_owned()));
    }

    #[tokio::test]
    async fn an_unknown_token_is_invalid_and_recorded_without_a_user() {
        let t = TestState::new().await;
        let outcome = refresh(&t.state, &t.ctx, &new_token(), t.now()).await;
        assert!(matches!(outcome, Err(AppError::InvalidToken)));
        let events = t.events().await;
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].0.as_str(), events[0].1), ("token_invalid", None));
    }

    #[tokio::test]
    async fn logout_ends_only_its_own_session_and_logout_all_ends_every_one() {
        let t = TestState::new().await;
        let one = signed_in_as(&t, "ada@example.com").await;
        let attempt = Login::parse("ada@example.com", &secret(PASSWORD)).unwrap();
        let Ok(LoginOutcome::SignedIn(two)) =
            login(&t.state, &t.ctx, "c1", attempt, t.now()).await.result
        else {
            panic!("second login");
        };
        logout(
            &t.state,
            &t.ctx,
            Some(one.refresh_token.expose_secret()),
            t.now(),
        )
        .await
        .unwrap();
        let live = sessions::list(&t.state.db, one.user.id, t.now())
            .await
            .unwrap();
        assert_eq!(
            live.iter().map(|s| s.id).collect::<Vec<_>>(),
            [two.session_id]
        );
        // An unknown token or none signs nobody out and records nothing.
        logout(&t.state, &t.ctx, Some(&new_token()), t.now())
            .await
            .unwrap();
        logout(&t.state, &t.ctx, None, t.now()).await.unwrap();
        let revoked = t
            .event_kinds()
            .await
            .iter()
            .filter(|k| *k == "session_revoked")
            .count();
        assert_eq!(revoked, 1);
        logout_all(&t.state, &t.ctx, one.user.id, t.now())
            .await
            .unwrap();
        assert!(
            sessions::list(&t.state.db, one.user.id, t.now())
                .await
                .unwrap()
                .is_empty()
        );
    }
}
