//! One-time tokens sent by mail (email verification, password reset) and the MFA step-up
//! token: random values stored only as hashes, single use, expiring.

use sqlx::Row;
use uuid::Uuid;

use super::{Db, users::parse_uuid};

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `POST /auth/verify-email`.
    VerifyEmail,
    /// `POST /auth/reset-password`.
    ResetPassword,
    /// `POST /auth/mfa/verify`.
    MfaLogin,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::MfaLogin => "mfa_login",
        }
    }
}

/// Store a token hash.
pub async fn issue(
    db: &Db,
    purpose: Purpose,
    user_id: Uuid,
    token_hash: &str,
    now: i64,
    ttl_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO one_time_tokens (token_hash, purpose, user_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(purpose.as_str())
    .bind(user_id.to_string())
    .bind(now)
    .bind(now + ttl_ms)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Use a token once: the owner if it was live, in one conditional write.
pub async fn consume(
    db: &Db,
    purpose: Purpose,
    token_hash: &str,
    now: i64,
) -> Result<Option<Uuid>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE one_time_tokens SET used_at = $1 WHERE token_hash = $2 AND purpose = $3 \
         AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
    )
    .bind(now)
    .bind(token_hash)
    .bind(purpose.as_str())
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| parse_uuid(&r.try_get::<String, _>("user_id")?))
        .transpose()
}

/// The owner of a live token, without using it.
pub async fn peek(
    db: &Db,
    purpose: Purpose,
    token_hash: &str,
    now: i64,
) -> Result<Option<Uuid>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT user_id FROM one_time_tokens WHERE token_hash = $1 AND purpose = $2 \
         AND used_at IS NULL AND expires_at > $3",
    )
    .bind(token_hash)
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| parse_uuid(&r.try_get::<String, _>("user_id")?))
        .transpose()
}

/// Count a failed attempt against a token; at `max` failures it is dead. Returns the
/// failures so far.
pub async fn record_failure(
    db: &Db,
    token_hash: &str,
    max: i64,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE one_time_tokens SET failures = failures + 1, \
         used_at = CASE WHEN failures + 1 >= $1 THEN $2 ELSE used_at END \
         WHERE token_hash = $3 RETURNING failures",
    )
    .bind(max)
    .bind(now)
    .bind(token_hash)
    .fetch_optional(db.pool())
    .await?;
    Ok(row
        .map(|r| r.try_get::<i64, _>("failures"))
        .transpose()?
        .unwrap_or(max))
}

/// Kill every live token of `user_id` for `purpose` (after a reset, the other reset links
/// die too).
pub async fn revoke_all(
    db: &Db,
    purpose: Purpose,
    user_id: Uuid,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE one_time_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 \
         AND used_at IS NULL",
    )
    .bind(now)
    .bind(user_id.to_string())
    .bind(purpose.as_str())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The state of an MFA step-up token that has not expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaTokenState {
    /// Whose login it continues.
    pub user_id: Uuid,
    /// Wrong codes so far.
    pub failures: i64,
    /// Whether it was used up (by success or by too many failures).
    pub used: bool,
}

/// The state of an unexpired MFA token.
pub async fn mfa_state(
    db: &Db,
    token_hash: &str,
    now: i64,
) -> Result<Option<MfaTokenState>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT user_id, failures, used_at FROM one_time_tokens WHERE token_hash = $1 \
         AND purpose = $2 AND expires_at > $3",
    )
    .bind(token_hash)
    .bind(Purpose::MfaLogin.as_str())
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| {
        Ok(MfaTokenState {
            user_id: parse_uuid(&r.try_get::<String, _>("user_id")?)?,
            failures: r.try_get("failures")?,
            used: r.try_get::<Option<i64>, _>("used_at")?.is_some(),
        })
    })
    .transpose()
}
