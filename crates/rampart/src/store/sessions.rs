//! Session families and their refresh tokens.
//!
//! A family is one login; each refresh rotates its token. Rotation is one conditional
//! `UPDATE … WHERE rotated_at IS NULL`, so of two concurrent refreshes with the same token
//! exactly one wins; presenting a rotated token again is reuse and revokes the family,
//! unless it comes within the grace period and the grace was not used yet.

use sqlx::Row;
use uuid::Uuid;

use super::{Db, users::parse_uuid};

/// A session as listed to its owner.
#[derive(Debug, Clone)]
pub struct Session {
    /// The family id.
    pub id: Uuid,
    /// Login time, Unix ms.
    pub created_at: i64,
    /// Last refresh, Unix ms.
    pub last_used_at: i64,
    /// Client address at login.
    pub ip: String,
    /// User agent at login (bounded).
    pub user_agent: String,
}

/// Start a family for `user_id` with its first refresh token.
#[allow(clippy::too_many_arguments)]
pub async fn create_family(
    db: &Db,
    user_id: Uuid,
    token_hash: &str,
    ip: &str,
    user_agent: &str,
    now: i64,
    refresh_ttl_ms: i64,
    absolute_ttl_ms: i64,
) -> Result<Uuid, sqlx::Error> {
    let family = Uuid::new_v4();
    let expires = now + absolute_ttl_ms;
    let mut tx = db.pool().begin().await?;
    sqlx::query(
        "INSERT INTO session_families (id, user_id, created_at, last_used_at, expires_at, ip, \
         user_agent) VALUES ($1, $2, $3, $3, $4, $5, $6)",
    )
    .bind(family.to_string())
    .bind(user_id.to_string())
    .bind(now)
    .bind(expires)
    .bind(ip)
    .bind(user_agent)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(family.to_string())
    .bind(now)
    .bind((now + refresh_ttl_ms).min(expires))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(family)
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// A new token was stored for the family.
    Rotated {
        /// The family.
        family_id: Uuid,
        /// Its owner.
        user_id: Uuid,
    },
    /// An already-rotated token outside the grace: the family is now revoked.
    Reused {
        /// The family.
        family_id: Uuid,
        /// Its owner.
        user_id: Uuid,
    },
    /// Unknown, expired, or its family is revoked or past its absolute lifetime.
    Invalid,
}

/// Rotate `presented` to `replacement`.
pub async fn rotate(
    db: &Db,
    presented: &str,
    replacement: &str,
    now: i64,
    refresh_ttl_ms: i64,
    grace_ms: i64,
) -> Result<Rotation, sqlx::Error> {
    let row = sqlx::query(
        "SELECT t.family_id, t.expires_at, t.rotated_at, f.user_id, f.revoked_at, \
         f.expires_at AS family_expires FROM refresh_tokens t \
         JOIN session_families f ON f.id = t.family_id WHERE t.token_hash = $1",
    )
    .bind(presented)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else {
        return Ok(Rotation::Invalid);
    };
    let family_id = parse_uuid(&row.try_get::<String, _>("family_id")?)?;
    let user_id = parse_uuid(&row.try_get::<String, _>("user_id")?)?;
    let expires_at: i64 = row.try_get("expires_at")?;
    let family_expires: i64 = row.try_get("family_expires")?;
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    if revoked_at.is_some() || family_expires <= now || expires_at <= now {
        return Ok(Rotation::Invalid);
    }
    // The one conditional write that decides who rotates.
    let won = sqlx::query(
        "UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = $2 AND rotated_at IS NULL",
    )
    .bind(now)
    .bind(presented)
    .execute(db.pool())
    .await?
    .rows_affected()
        == 1;
    if !won {
        // Already rotated: a concurrent twin within the grace may pass, once.
        let graced = grace_ms > 0
            && sqlx::query(
                "UPDATE refresh_tokens SET grace_used = 1 WHERE token_hash = $1 \
                 AND grace_used = 0 AND rotated_at IS NOT NULL AND rotated_at >= $2",
            )
            .bind(presented)
            .bind(now - grace_ms)
            .execute(db.pool())
            .await?
            .rows_affected()
                == 1;
        if !graced {
            revoke_family(db, family_id, now).await?;
            return Ok(Rotation::Reused { family_id, user_id });
        }
    }
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(replacement)
    .bind(family_id.to_string())
    .bind(now)
    .bind((now + refresh_ttl_ms).min(family_expires))
    .execute(db.pool())
    .await?;
    sqlx::query("UPDATE session_families SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(family_id.to_string())
        .execute(db.pool())
        .await?;
    Ok(Rotation::Rotated { family_id, user_id })
}

/// The family and owner of a refresh token, whatever its state.
pub async fn family_of(db: &Db, token_hash: &str) -> Result<Option<(Uuid, Uuid)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT t.family_id, f.user_id FROM refresh_tokens t \
         JOIN session_families f ON f.id = t.family_id WHERE t.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| {
        Ok((
            parse_uuid(&row.try_get::<String, _>("family_id")?)?,
            parse_uuid(&row.try_get::<String, _>("user_id")?)?,
        ))
    })
    .transpose()
}

/// Revoke one family.
pub async fn revoke_family(db: &Db, family_id: Uuid, now: i64) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE session_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(family_id.to_string())
    .execute(db.pool())
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Revoke one family of `user_id` (its owner asking); `false` if it is not theirs or
/// already revoked.
pub async fn revoke_own(
    db: &Db,
    user_id: Uuid,
    family_id: Uuid,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE session_families SET revoked_at = $1 WHERE id = $2 AND user_id = $3 \
         AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(family_id.to_string())
    .bind(user_id.to_string())
    .execute(db.pool())
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Revoke every family of `user_id`, except `keep`; returns how many were revoked.
pub async fn revoke_all(
    db: &Db,
    user_id: Uuid,
    keep: Option<Uuid>,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let keep = keep.map(|k| k.to_string()).unwrap_or_default();
    let result = sqlx::query(
        "UPDATE session_families SET revoked_at = $1 WHERE user_id = $2 AND id <> $3 \
         AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(user_id.to_string())
    .bind(keep)
    .execute(db.pool())
    .await?;
    Ok(result.rows_affected())
}

/// The live sessions of `user_id`, newest first.
pub async fn list(db: &Db, user_id: Uuid, now: i64) -> Result<Vec<Session>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, created_at, last_used_at, ip, user_agent FROM session_families \
         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
         ORDER BY created_at DESC, id",
    )
    .bind(user_id.to_string())
    .bind(now)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Session {
                id: parse_uuid(&row.try_get::<String, _>("id")?)?,
                created_at: row.try_get("created_at")?,
                last_used_at: row.try_get("last_used_at")?,
                ip: row.try_get("ip")?,
                user_agent: row.try_get("user_agent")?,
            })
        })
        .collect()
}
