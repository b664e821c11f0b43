//! What a signed-in account does to itself: change its password, edit its profile, list
//! and end its sessions, enrol and drop a TOTP second factor.
//!
//! # Security
//! - Changing the password and disabling MFA need the current password (a stolen access
//!   token alone cannot lock the owner out); a wrong one is recorded as `login_failed`
//!   during a password change.
//! - A password change ends every other session; the TOTP secret is shown once at setup
//!   and only enabled with a current code; recovery codes are stored hashed.

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use uuid::Uuid;

use crate::{
    auth::{extract::CurrentUser, mfa, password::Verified},
    domain::{
        FieldError, html,
        password::Password,
        user::{DisplayName, User},
    },
    error::AppError,
    security_events::{EventContext, EventKind},
    state::AppState,
    store::{
        sessions::{self, Session},
        users,
    },
};

/// The longest bio, in characters, before sanitising.
pub const BIO_MAX_CHARS: usize = 500;

/// Whether `password` is the account's current password (the step-up of sensitive
/// changes). An account gone meanwhile is an invalid token.
async fn current_password_matches(
    app: &AppState,
    user_id: Uuid,
    password: &SecretString,
) -> Result<bool, AppError> {
    let password = Password::unchecked(password.expose_secret().to_owned());
    if !password.is_plausible() {
        return Ok(false);
    }
    let creds = users::credentials_by_id(&app.db, user_id)
        .await?
        .ok_or(AppError::InvalidToken)?;
    let verified = app
        .hasher
        .verify(&password, Some(&creds.password_hash))
        .await?;
    Ok(matches!(verified, Verified::Yes { .. }))
}

/// A password change: the current password and the new one.
#[derive(Debug)]
pub struct PasswordChange {
    /// The password now.
    pub current_password: SecretString,
    /// The password to set; checked for strength against the account's address.
    pub new_password: SecretString,
}

/// Change the password of `current`; every other session of the account ends.
pub async fn change_password(
    app: &AppState,
    ctx: &EventContext,
    current: &CurrentUser,
    change: PasswordChange,
    now_ms: i64,
) -> Result<(), AppError> {
    let events = app.events.at(ctx);
    let user = &current.user;
    let new = change.new_password.expose_secret().to_owned();
    let new =
        Password::parse_new(new, "new_password", &user.email).map_err(AppError::Validation)?;
    if !current_password_matches(app, user.id, &change.current_password).await? {
        let details = json!({"during": "change-password"});
        events
            .record(EventKind::LoginFailed, Some(user.id), details)
            .await;
        return Err(AppError::InvalidCredentials);
    }
    let hash = app.hasher.hash(&new).await?;
    users::set_password_hash(&app.db, user.id, &hash, now_ms).await?;
    let revoked = sessions::revoke_all(&app.db, user.id, Some(current.session_id), now_ms).await?;
    let details = json!({"other_sessions_revoked": revoked});
    events
        .record(EventKind::PasswordChanged, Some(user.id), details)
        .await;
    Ok(())
}

/// A profile edit, parsed: each field is left alone when `None`.
#[derive(Debug, Default)]
pub struct ProfileChange {
    name: Option<DisplayName>,
    bio: Option<String>,
}

impl ProfileChange {
    /// Check the name and bound the bio, which is stored sanitised (`domain::html`).
    /// Every failing field is listed.
    pub fn parse(name: Option<&str>, bio: Option<&str>) -> Result<Self, AppError> {
        let mut errors = Vec::new();
        let name = name
            .map(DisplayName::parse)
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let bio = match bio {
            Some(raw) if raw.chars().count() > BIO_MAX_CHARS => {
                errors.push(FieldError::new("bio", "must be at most 500 characters"));
                None
            }
            Some(raw) => Some(html::sanitize(raw)),
            None => None,
        };
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        Ok(Self { name, bio })
    }
}

/// Apply `change` to `user_id`'s profile; the account as stored afterwards.
pub async fn update_profile(
    app: &AppState,
    user_id: Uuid,
    change: ProfileChange,
    now_ms: i64,
) -> Result<User, AppError> {
    let name = change.name.as_ref().map(DisplayName::as_str);
    users::update_profile(&app.db, user_id, name, change.bio.as_deref(), now_ms).await?;
    users::get(&app.db, user_id)
        .await?
        .ok_or(AppError::InvalidToken)
}

/// The live sessions of `user_id`.
pub async fn sessions(
    app: &AppState,
    user_id: Uuid,
    now_ms: i64,
) -> Result<Vec<Session>, AppError> {
    Ok(sessions::list(&app.db, user_id, now_ms).await?)
}

/// End session `id` of `user_id`; another account's session, or none, is `not_found`.
pub async fn revoke_session(
    app: &AppState,
    ctx: &EventContext,
    user_id: Uuid,
    id: Uuid,
    now_ms: i64,
) -> Result<(), AppError> {
    if !sessions::revoke_own(&app.db, user_id, id, now_ms).await? {
        return Err(AppError::NotFound);
    }
    let details = json!({"session_id": id, "by": "owner"});
    app.events
        .at(ctx)
        .record(EventKind::SessionRevoked, Some(user_id), details)
        .await;
    Ok(())
}

/// A TOTP secret waiting for its first code.
#[derive(Debug)]
pub struct TotpEnrolment {
    /// The secret, base32, for manual entry.
    pub secret: SecretString,
    /// `otpauth://totp/…` for authenticator apps.
    pub otpauth_uri: String,
}

/// Start TOTP enrolment for `user`: a new secret, pending until [`confirm_totp`].
pub async fn start_totp(
    app: &AppState,
    user: &User,
    now_ms: i64,
) -> Result<TotpEnrolment, AppError> {
    if user.mfa_enabled {
        return Err(AppError::Conflict(
            "MFA is already enabled; disable it first.",
        ));
    }
    let secret = mfa::new_secret();
    let uri = mfa::otpauth_uri(&secret, "Rampart", &user.email)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    users::set_pending_totp(&app.db, user.id, secret.expose_base32(), now_ms).await?;
    Ok(TotpEnrolment {
        secret: SecretString::from(secret.expose_base32().to_owned()),
        otpauth_uri: uri,
    })
}

/// Enable the pending secret of `user_id` with a current `code`; the new recovery codes,
/// to show once.
pub async fn confirm_totp(
    app: &AppState,
    ctx: &EventContext,
    user_id: Uuid,
    code: &SecretString,
    now_ms: i64,
) -> Result<Vec<String>, AppError> {
    let totp = users::totp_state(&app.db, user_id).await?;
    let pending = totp
        .pending
        .ok_or_else(|| AppError::field("code", "start the setup first"))?;
    let secret = mfa::TotpSecret::from_base32(SecretString::from(pending.clone()))
        .map_err(|_| AppError::field("code", "start the setup again"))?;
    let now = u64::try_from(now_ms.div_euclid(1000)).unwrap_or_default();
    let step = mfa::verify_code(&secret, code.expose_secret(), now, None)
        .ok_or_else(|| AppError::field("code", "is not the current code"))?;
    let codes = mfa::new_recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| mfa::hash_recovery_code(c)).collect();
    users::replace_recovery_codes(&app.db, user_id, &hashes).await?;
    users::enable_totp(&app.db, user_id, &pending, step, now_ms).await?;
    let details = json!({"method": "totp"});
    app.events
        .at(ctx)
        .record(EventKind::MfaEnabled, Some(user_id), details)
        .await;
    Ok(codes)
}

/// Disable MFA for `user_id`, given its current password.
pub async fn disable_totp(
    app: &AppState,
    ctx: &EventContext,
    user_id: Uuid,
    password: &SecretString,
    now_ms: i64,
) -> Result<(), AppError> {
    if !current_password_matches(app, user_id, password).await? {
        return Err(AppError::InvalidCredentials);
    }
    users::disable_totp(&app.db, user_id, now_ms).await?;
    app.events
        .at(ctx)
        .record(EventKind::MfaDisabled, Some(user_id), json!({}))
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing::{PASSWORD, TestState, secret};

    async fn signed_in(t: &TestState) -> CurrentUser {
        let user = t.user("ada@example.com", true).await;
        let session_id = sessions::create_family(
            &t.state.db,
            user.id,
            "h-current",
            "192.0.2.7",
            "ua",
            t.now(),
            60_000,
            600_000,
        )
        .await
        .unwrap();
        CurrentUser { user, session_id }
    }

    fn code_now(secret: &str, now_ms: i64) -> String {
        use totp_rs::{Algorithm, Builder, Secret};
        let raw = Secret::try_from_base32(secret.trim_end_matches('=')).unwrap();
        let totp = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_step_duration(30)
            .with_secret(raw)
            .build()
            .unwrap();
        totp.generate(u64::try_from(now_ms / 1000).unwrap())
            .to_string()
    }

    #[tokio::test]
    async fn a_password_change_needs_the_current_password_and_ends_the_other_sessions() {
        let t = TestState::new().await;
        let current = signed_in(&t).await;
        let other = sessions::create_family(
            &t.state.db,
            current.user.id,
            "h-other",
            "192.0.2.8",
            "ua",
            t.now(),
            60_000,
            600_000,
        )
        .await
        .unwrap();
        let new = "an entirely different passphrase 7";
        let wrong = PasswordChange {
            current_password: secret("guess guess"),
            new_password: secret(new),
        };
        let refused = change_password(&t.state, &t.ctx, &current, wrong, t.now()).await;
        assert!(matches!(refused, Err(AppError::InvalidCredentials)));
        assert_eq!(t.event_kinds().await, ["login_failed"]);
        assert_eq!(
            sessions::list(&t.state.db, current.user.id, t.now())
                .await
                .unwrap()
                .len(),
            2
        );

        let right = PasswordChange {
            current_password: secret(PASSWORD),
            new_password: secret(new),
        };
        change_password(&t.state, &t.ctx, &current, right, t.now())
            .await
            .unwrap();
        let live: Vec<Uuid> = sessions::list(&t.state.db, current.user.id, t.now())
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(live, [current.session_id]);
        assert!(!live.contains(&other));
        let creds = users::credentials_by_id(&t.state.db, current.user.id)
            .await
            .unwrap()
            .unwrap();
        let verified = t
            .state
            .hasher
            .verify(
                &Password::unchecked(new.to_owned()),
                Some(&creds.password_hash),
            )
            .await
            .unwrap();
        assert!(matches!(verified, Verified::Yes { .. }));
    }

    #[tokio::test]
    async fn a_weak_new_password_is_refused_before_the_current_one_is_checked() {
        let t = TestState::new().await;
        let current = signed_in(&t).await;
        let weak = PasswordChange {
            current_password: secret(PASSWORD),
            new_password: secret("ada@example.com"),
        };
        let refused = change_password(&t.state, &t.ctx, &current, weak, t.now()).await;
        assert!(
            matches!(refused, Err(AppError::Validation(_))),
            "{refused:?}"
        );
        assert!(t.event_kinds().await.is_empty());
    }

    #[test]
    fn a_profile_edit_lists_every_bad_field_and_sanitises_the_bio() {
        let long = "x".repeat(BIO_MAX_CHARS + 1);
        match ProfileChange::parse(Some(""), Some(&long)) {
            Err(AppError::Validation(errors)) => assert_eq!(errors.len(), 2),
            other => panic!("{other:?}"),
        }
        let ok = ProfileChange::parse(None, Some("<b>hi</b><script>alert(1)</script>")).unwrap();
        let bio = ok.bio.unwrap();
        assert!(
            bio.starts_with("<b>hi</b>") && !bio.contains("<script"),
            "{bio}"
        );
        assert!(ok.name.is_none());
    }

    #[tokio::test]
    async fn another_accounts_session_cannot_be_revoked() {
        let t = TestState::new().await;
        let ada = signed_in(&t).await;
        let bob = t.user("bob@example.com", true).await;
        let theirs = revoke_session(&t.state, &t.ctx, bob.id, ada.session_id, t.now()).await;
        assert!(matches!(theirs, Err(AppError::NotFound)));
        assert_eq!(
            sessions(&t.state, ada.user.id, t.now())
                .await
                .unwrap()
                .len(),
            1
        );
        revoke_session(&t.state, &t.ctx, ada.user.id, ada.session_id, t.now())
            .await
            .unwrap();
        assert!(
            sessions(&t.state, ada.user.id, t.now())
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn totp_is_enabled_only_with_the_current_code_and_disabled_only_with_the_password() {
        let t = TestState::new().await;
        let ada = signed_in(&t).await;
        let enrolment = start_totp(&t.state, &ada.user, t.now()).await.unwrap();
        assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/"));
        let base32 = enrolment.secret.expose_secret().to_owned();
        let stale = code_now(&base32, t.now() - 10 * 60 * 1000);
        let refused = confirm_totp(&t.state, &t.ctx, ada.user.id, &secret(&stale), t.now()).await;
        assert!(matches!(refused, Err(AppError::Validation(_))));
        let code = code_now(&base32, t.now());
        let codes = confirm_totp(&t.state, &t.ctx, ada.user.id, &secret(&code), t.now())
            .await
            .unwrap();
        assert_eq!(codes.len(), 10);
        let user = users::get(&t.state.db, ada.user.id).await.unwrap().unwrap();
        assert!(user.mfa_enabled);
        assert!(matches!(
            start_totp(&t.state, &user, t.now()).await,
            Err(AppError::Conflict(_))
        ));

        let wrong = disable_totp(
            &t.state,
            &t.ctx,
            ada.user.id,
            &secret("not it at all"),
            t.now(),
        )
        .await;
        assert!(matches!(wrong, Err(AppError::InvalidCredentials)));
        disable_totp(&t.state, &t.ctx, ada.user.id, &secret(PASSWORD), t.now())
            .await
            .unwrap();
        assert!(
            !users::get(&t.state.db, ada.user.id)
                .await
                .unwrap()
                .unwrap()
                .mfa_enabled
        );
        assert_eq!(t.event_kinds().await, ["mfa_disabled", "mfa_enabled"]);
    }
}
