//! Creating an account and confirming its address.
//!
//! # Security
//! - Enumeration: a new and an existing address get the same outcome, after the same
//!   work (the password is hashed on both paths). The account exists before the answer,
//!   so a login right after is told to verify; the token and the mail, which only one path
//!   would pay for, are made in the background, so neither their time nor their failure
//!   shows. The owner of an existing address gets a notice instead of a link.
//! - Registrations count per client before anything else, invalid ones included.
//! - Verification links live [`VERIFY_TOKEN_TTL_MS`] and are single use.

use secrecy::{ExposeSecret as _, SecretString};

use crate::{
    auth::random::{looks_like_token, new_token, token_hash},
    domain::{
        password::Password,
        user::{DisplayName, EmailAddress, Role, User},
    },
    error::AppError,
    mail::{Email, templates},
    rate_limits::{Applied, Limited},
    security_events::EventContext,
    state::AppState,
    store::{
        one_time::{self, Purpose},
        users,
    },
};
use rampart_layers::rate_limit::Mode;

/// How long a verification link lives.
pub const VERIFY_TOKEN_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// A registration as submitted: parsed by [`register`] once the client's limit allowed it.
#[derive(Debug)]
pub struct NewAccount {
    /// The address.
    pub email: String,
    /// The password.
    pub password: SecretString,
    /// The display name.
    pub name: String,
}

struct Parsed {
    email: EmailAddress,
    name: DisplayName,
    password: Password,
}

impl NewAccount {
    /// Every failing field at once.
    fn parse(self) -> Result<Parsed, AppError> {
        let mut errors = Vec::new();
        let email = EmailAddress::parse(&self.email, "email")
            .map_err(|e| errors.push(e))
            .ok();
        let name = DisplayName::parse(&self.name)
            .map_err(|e| errors.push(e))
            .ok();
        let address = email.as_ref().map_or("", |e| e.as_str());
        let password = Password::parse_new(
            self.password.expose_secret().to_owned(),
            "password",
            address,
        )
        .map_err(|mut e| errors.append(&mut e))
        .ok();
        match (email, name, password) {
            (Some(email), Some(name), Some(password)) if errors.is_empty() => Ok(Parsed {
                email,
                name,
                password,
            }),
            _ => Err(AppError::Validation(errors)),
        }
    }
}

/// The error a bad, used or expired mail token gets.
pub fn bad_mail_token() -> AppError {
    AppError::field("token", "is invalid, used or expired")
}

/// Register an (unverified) account under the client's registration limit; `client` is
/// its rate-limit key. The same outcome whether or not the address was free.
pub async fn register(
    app: &AppState,
    ctx: &EventContext,
    client: &str,
    account: NewAccount,
    now_ms: i64,
) -> Limited<()> {
    let mut applied = Applied::default();
    let limit = &app.limits.register;
    applied.push(limit, limit.check(client, Mode::Take).await);
    if let Some(refused) = app
        .limits
        .refusal(app.events.at(ctx), &applied, client, now_ms)
        .await
    {
        return Limited::new(Err(refused), applied);
    }
    Limited::new(create(app, account, now_ms).await, applied)
}

async fn create(app: &AppState, account: NewAccount, now_ms: i64) -> Result<(), AppError> {
    let Parsed {
        email,
        name,
        password,
    } = account.parse()?;
    let hash = app.hasher.hash(&password).await?;
    let new = users::NewUser {
        email: email.as_str(),
        name: name.as_str(),
        password_hash: &hash,
        role: Role::User,
        email_verified: false,
    };
    let created = users::create(&app.db, &new, now_ms).await?;
    let app = app.clone();
    tokio::spawn(async move {
        let mail = match created {
            Some(user) => verification_mail(&app, &user, now_ms).await,
            None => Ok(templates::already_registered(
                &app.config.public_url,
                email.as_str(),
            )),
        };
        let sent = match mail {
            Ok(mail) => app.mailer.send(mail).await.map_err(anyhow::Error::from),
            Err(e) => Err(anyhow::Error::from(e)),
        };
        if let Err(e) = sent {
            tracing::error!(error = %format!("{e:#}"), "registration mail not sent");
        }
    });
    Ok(())
}

/// Issue a verification token for `user` and write the mail that carries its link.
async fn verification_mail(app: &AppState, user: &User, now_ms: i64) -> Result<Email, sqlx::Error> {
    let token = new_token();
    let hash = token_hash(&token);
    one_time::issue(
        &app.db,
        Purpose::VerifyEmail,
        user.id,
        &hash,
        now_ms,
        VERIFY_TOKEN_TTL_MS,
    )
    .await?;
    Ok(templates::verify_email(
        &app.config.public_url,
        &user.email,
        &user.name,
        &token,
    ))
}

/// Confirm an address with the token from its verification link.
pub async fn verify_email(
    app: &AppState,
    token: &SecretString,
    now_ms: i64,
) -> Result<(), AppError> {
    let token = token.expose_secret();
    if !looks_like_token(token) {
        return Err(bad_mail_token());
    }
    let user = one_time::consume(&app.db, Purpose::VerifyEmail, &token_hash(token), now_ms)
        .await?
        .ok_or_else(bad_mail_token)?;
    users::mark_verified(&app.db, user, now_ms).await?;
    Ok(())
}

/// Send a new verification link if `email` is an active account still unverified; the
/// same (silent) outcome otherwise.
pub async fn resend_verification(
    app: &AppState,
    email: &EmailAddress,
    now_ms: i64,
) -> Result<(), AppError> {
    if let Some(creds) = users::credentials_by_email(&app.db, email.as_str()).await?
        && !creds.user.email_verified
        && creds.user.active
    {
        let mail = verification_mail(app, &creds.user, now_ms).await?;
        app.mailer.send_detached(mail);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing::{PASSWORD, TestState, secret, token_in};

    fn account(email: &str, password: &str) -> NewAccount {
        NewAccount {
            email: email.to_owned(),
            password: secret(password),
            name: "Ada".to_owned(),
        }
    }

    #[tokio::test]
    async fn a_new_address_gets_a_link_that_verifies_once_within_a_day() {
        let t = TestState::new().await;
        let done = register(
            &t.state,
            &t.ctx,
            "c1",
            account("ada@example.com", PASSWORD),
            t.now(),
        )
        .await;
        done.result.unwrap();
        let mail = t.mails(1).await.remove(0);
        let token = token_in(&mail, "/verify-email");
        let user = users::credentials_by_email(&t.state.db, "ada@example.com")
            .await
            .unwrap()
            .unwrap()
            .user;
        assert!(!user.email_verified);
        verify_email(&t.state, &secret(&token), t.now())
            .await
            .unwrap();
        let again = verify_email(&t.state, &secret(&token), t.now()).await;
        assert!(matches!(again, Err(AppError::Validation(_))));
        assert!(
            users::get(&t.state.db, user.id)
                .await
                .unwrap()
                .unwrap()
                .email_verified
        );
    }

    #[tokio::test]
    async fn an_expired_verification_link_is_refused() {
        let t = TestState::new().await;
        let user = t.user("ada@example.com", false).await;
        let email = EmailAddress::parse("ada@example.com", "email").unwrap();
        resend_verification(&t.state, &email, t.now())
            .await
            .unwrap();
        let token = token_in(&t.mails(1).await[0], "/verify-email");
        t.clock
            .advance(std::time::Duration::from_millis(VERIFY_TOKEN_TTL_MS as u64));
        let late = verify_email(&t.state, &secret(&token), t.now()).await;
        assert!(matches!(late, Err(AppError::Validation(_))));
        assert!(
            !users::get(&t.state.db, user.id)
                .await
                .unwrap()
                .unwrap()
                .email_verified
        );
    }

    #[tokio::test]
    async fn an_existing_address_gets_the_same_outcome_and_its_owner_a_notice() {
        let t = TestState::new().await;
        let existing = t.user("ada@example.com", true).await;
        let again = register(
            &t.state,
            &t.ctx,
            "c1",
            account("ada@example.com", PASSWORD),
            t.now(),
        )
        .await;
        again.result.unwrap();
        let mail = t.mails(1).await.remove(0);
        assert!(mail.contains("Someone tried to sign up"));
        assert!(!mail.contains("token="));
        // The account is untouched: the old password still works.
        let creds = users::credentials_by_id(&t.state.db, existing.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(creds.user.name, "Ada");
    }

    #[tokio::test]
    async fn every_bad_field_is_listed_and_the_attempt_still_counts() {
        let t = TestState::with(&[("RAMPART_RATE_LIMIT_REGISTER", "2/1h")]).await;
        let bad = NewAccount {
            email: "nope".into(),
            password: secret("short"),
            name: String::new(),
        };
        match register(&t.state, &t.ctx, "c1", bad, t.now()).await.result {
            Err(AppError::Validation(errors)) => assert!(errors.len() >= 3, "{errors:?}"),
            other => panic!("{other:?}"),
        }
        register(
            &t.state,
            &t.ctx,
            "c1",
            account("bob@example.com", PASSWORD),
            t.now(),
        )
        .await
        .result
        .unwrap();
        let third = register(
            &t.state,
            &t.ctx,
            "c1",
            account("eve@example.com", PASSWORD),
            t.now(),
        )
        .await;
        assert!(matches!(third.result, Err(AppError::RateLimited { .. })));
        assert!(
            users::credentials_by_email(&t.state.db, "eve@example.com")
                .await
                .unwrap()
                .is_none()
        );
        assert!(t.event_kinds().await.contains(&"rate_limited".to_owned()));
    }

    #[tokio::test]
    async fn resending_to_a_verified_or_unknown_address_sends_nothing() {
        let t = TestState::new().await;
        t.user("ada@example.com", true).await;
        for raw in ["ada@example.com", "nobody@example.com"] {
            let email = EmailAddress::parse(raw, "email").unwrap();
            resend_verification(&t.state, &email, t.now())
                .await
                .unwrap();
        }
        t.user("bob@example.com", false).await;
        let bob = EmailAddress::parse("bob@example.com", "email").unwrap();
        resend_verification(&t.state, &bob, t.now()).await.unwrap();
        let mails = t.mails(1).await;
        assert_eq!(mails.len(), 1);
        assert!(mails[0].contains("bob@example.com"));
    }
}
