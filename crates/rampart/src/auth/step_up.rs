//! The second step of a login with MFA: the step-up token a right password earned, and
//! a TOTP code or a recovery code.
//!
//! # Security
//! - The step-up token lives [`MFA_TOKEN_TTL_MS`] and is single use; its wrong codes are
//!   counted in the database and past the configured limit it is dead (429).
//! - Wrong codes also count per account across all its step-up tokens, so new logins do
//!   not buy new guesses; each is an `mfa_failed` event.
//! - A TOTP code is accepted once per time step; a recovery code once.

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use uuid::Uuid;

use crate::{
    auth::{
        login::{SignedIn, open_session},
        mfa,
        random::{looks_like_token, token_hash},
    },
    error::AppError,
    rate_limits::{Applied, Limited},
    security_events::{EventContext, EventKind, Recorder},
    state::AppState,
    store::{
        one_time::{self, Purpose},
        users,
    },
};
use rampart_layers::rate_limit::Mode;

/// How long the step-up token of a login waiting for its second factor lives.
pub const MFA_TOKEN_TTL_MS: i64 = 5 * 60 * 1000;

/// The second step of a login with MFA.
#[derive(Debug)]
pub struct MfaProof {
    /// The step-up token the first step returned.
    pub mfa_token: SecretString,
    /// A 6-digit TOTP code or a recovery code.
    pub code: SecretString,
}

/// Complete a login that requires MFA, under the per-token and per-account limits of
/// wrong codes.
pub async fn verify_mfa(
    app: &AppState,
    ctx: &EventContext,
    proof: &MfaProof,
    now_ms: i64,
) -> Limited<SignedIn> {
    let mut applied = Applied::default();
    let result = verify_second_factor(app, app.events.at(ctx), proof, &mut applied, now_ms).await;
    Limited::new(result, applied)
}

async fn verify_second_factor(
    app: &AppState,
    events: Recorder<'_>,
    proof: &MfaProof,
    applied: &mut Applied,
    now_ms: i64,
) -> Result<SignedIn, AppError> {
    let token = proof.mfa_token.expose_secret();
    if !looks_like_token(token) {
        return Err(AppError::InvalidCredentials);
    }
    let hash = token_hash(token);
    let max_failures = i64::from(app.config.rate_limits.mfa.count);
    let Some(state) = one_time::mfa_state(&app.db, &hash, now_ms).await? else {
        return Err(AppError::InvalidCredentials);
    };
    // Per token: its failures are counted in the database; past the limit it is dead.
    if state.failures >= max_failures {
        return Err(AppError::RateLimited {
            retry_after: (MFA_TOKEN_TTL_MS / 1000) as u64,
        });
    }
    if state.used {
        return Err(AppError::InvalidCredentials);
    }
    let user_id = state.user_id;
    // Per account, across every mfa_token of the account.
    let account = user_id.to_string();
    let limit = &app.limits.mfa_account;
    applied.push(limit, limit.check(&account, Mode::Peek).await);
    if let Some(refused) = app.limits.refusal(events, applied, &account, now_ms).await {
        return Err(refused);
    }
    if !check_second_factor(app, user_id, proof.code.expose_secret(), now_ms).await? {
        let failures = one_time::record_failure(&app.db, &hash, max_failures, now_ms).await?;
        *applied = Applied::default();
        applied.push(limit, limit.check(&account, Mode::Take).await);
        let details = json!({"failures": failures});
        events
            .record(EventKind::MfaFailed, Some(user_id), details)
            .await;
        return Err(AppError::InvalidCredentials);
    }
    if one_time::consume(&app.db, Purpose::MfaLogin, &hash, now_ms)
        .await?
        .is_none()
    {
        return Err(AppError::InvalidCredentials);
    }
    let user = users::get(&app.db, user_id)
        .await?
        .filter(|u| u.active)
        .ok_or(AppError::InvalidCredentials)?;
    open_session(app, events, user, "password+mfa", now_ms).await
}

/// A TOTP code (once per time step) or an unused recovery code.
async fn check_second_factor(
    app: &AppState,
    user_id: Uuid,
    code: &str,
    now_ms: i64,
) -> Result<bool, AppError> {
    let totp = users::totp_state(&app.db, user_id).await?;
    let Some(secret) = totp.secret else {
        return Ok(false);
    };
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        let Ok(secret) = mfa::TotpSecret::from_base32(SecretString::from(secret)) else {
            tracing::error!(user_id = %user_id, "stored TOTP secret is unusable");
            return Ok(false);
        };
        let now = u64::try_from(now_ms / 1000).unwrap_or_default();
        return match mfa::verify_code(&secret, code, now, totp.last_step) {
            Some(step) => Ok(users::claim_totp_step(&app.db, user_id, step).await?),
            None => Ok(false),
        };
    }
    match mfa::normalise_recovery_code(code) {
        Some(normalised) => {
            let hash = mfa::hash_recovery_code(&normalised);
            Ok(users::consume_recovery_code(&app.db, user_id, &hash, now_ms).await?)
        }
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{
        login::{Login, LoginOutcome, login},
        testing::{PASSWORD, TestState, secret},
    };

    fn attempt(email: &str, password: &str) -> Login {
        Login::parse(email, &secret(password)).unwrap()
    }

    async fn enable_mfa(t: &TestState, user: Uuid) -> mfa::TotpSecret {
        let secret = mfa::new_secret();
        users::set_pending_totp(&t.state.db, user, secret.expose_base32(), t.now())
            .await
            .unwrap();
        users::enable_totp(&t.state.db, user, secret.expose_base32(), 0, t.now())
            .await
            .unwrap();
        secret
    }

    fn code_at(secret: &mfa::TotpSecret, now_ms: i64) -> String {
        use totp_rs::{Algorithm, Builder, Secret};
        let raw = Secret::try_from_base32(secret.expose_base32().trim_end_matches('=')).unwrap();
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
    async fn with_mfa_the_password_yields_a_step_up_token_that_expires_after_five_minutes() {
        let t = TestState::new().await;
        let user = t.user("ada@example.com", true).await;
        let totp = enable_mfa(&t, user.id).await;
        let outcome = login(
            &t.state,
            &t.ctx,
            "c1",
            attempt("ada@example.com", PASSWORD),
            t.now(),
        )
        .await;
        let Ok(LoginOutcome::MfaRequired { mfa_token }) = outcome.result else {
            panic!("MFA is on");
        };
        assert!(
            t.event_kinds().await.is_empty(),
            "no session before the second factor"
        );
        t.clock
            .advance(std::time::Duration::from_millis(MFA_TOKEN_TTL_MS as u64));
        let code = code_at(&totp, t.now());
        let proof = MfaProof {
            mfa_token,
            code: secret(&code),
        };
        let late = verify_mfa(&t.state, &t.ctx, &proof, t.now()).await;
        assert!(matches!(late.result, Err(AppError::InvalidCredentials)));
    }

    #[tokio::test]
    async fn a_right_code_completes_the_login_once_and_wrong_codes_kill_the_token() {
        let t = TestState::with(&[("RAMPART_RATE_LIMIT_MFA", "2/5m")]).await;
        let user = t.user("ada@example.com", true).await;
        let totp = enable_mfa(&t, user.id).await;
        let step_up = || async {
            match login(
                &t.state,
                &t.ctx,
                "c1",
                attempt("ada@example.com", PASSWORD),
                t.now(),
            )
            .await
            .result
            {
                Ok(LoginOutcome::MfaRequired { mfa_token }) => mfa_token,
                other => panic!("{other:?}"),
            }
        };
        let token = step_up().await;
        t.clock.advance(std::time::Duration::from_secs(60));
        let proof = MfaProof {
            mfa_token: token,
            code: secret(&code_at(&totp, t.now())),
        };
        let done = verify_mfa(&t.state, &t.ctx, &proof, t.now()).await;
        assert_eq!(done.result.unwrap().user.id, user.id);
        let again = verify_mfa(&t.state, &t.ctx, &proof, t.now()).await;
        assert!(matches!(again.result, Err(AppError::InvalidCredentials)));

        let token = step_up().await;
        for _ in 0..2 {
            let wrong = MfaProof {
                mfa_token: token.clone(),
                code: secret("000000"),
            };
            let failed = verify_mfa(&t.state, &t.ctx, &wrong, t.now()).await;
            assert!(matches!(failed.result, Err(AppError::InvalidCredentials)));
        }
        t.clock.advance(std::time::Duration::from_secs(60));
        let right = MfaProof {
            mfa_token: token,
            code: secret(&code_at(&totp, t.now())),
        };
        let dead = verify_mfa(&t.state, &t.ctx, &right, t.now()).await;
        assert!(
            matches!(dead.result, Err(AppError::RateLimited { .. })),
            "{:?}",
            dead.result
        );
        let failed = t
            .event_kinds()
            .await
            .iter()
            .filter(|k| *k == "mfa_failed")
            .count();
        assert_eq!(failed, 2);
    }
}
