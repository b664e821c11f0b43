//! Idempotency keys: one row per (user, key), claimed with a conditional insert before the
//! request runs (never read-then-write), completed with the response it produced.
//!
//! ```text
//! INSERT … ON CONFLICT (user_id, idempotency_key) DO NOTHING   -- 1 row: ours to run
//!                                                              -- 0 rows: look at the other
//! ```
//!
//! A row whose `expires_at` has passed, or one left in flight longer than the stale
//! limit (its request died: the response is stored in the same transaction as the order,
//! so a row still in flight means nothing was committed), is deleted by a conditional
//! delete and the claim tried again.

use sqlx::{Any, Executor, Row};
use uuid::Uuid;

use super::Db;

/// A key of one user.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    /// The user the key belongs to (keys are scoped per user).
    pub user_id: Uuid,
    /// The header value.
    pub key: &'a str,
}

/// The outcome of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new: run the request, then complete or release it.
    Claimed,
    /// The same request already finished: answer with its response.
    Replay {
        /// Its status.
        status: u16,
        /// Its body.
        body: String,
    },
    /// The same request is still running.
    InFlight,
    /// The key was used with a different request body.
    Mismatch,
}

/// Claim `key` for a request whose body hashes to `request_hash`.
pub async fn claim(
    db: &Db,
    key: &Key<'_>,
    request_hash: &str,
    now: i64,
    ttl_ms: i64,
    stale_ms: i64,
) -> Result<Claim, sqlx::Error> {
    // Two rounds suffice: a second conflict means another request claimed the key after
    // we deleted the dead row, and that request is then in flight.
    for _ in 0..2 {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (user_id, idempotency_key, request_hash, status, \
             response_body, created_at, expires_at) VALUES ($1, $2, $3, NULL, NULL, $4, $5) \
             ON CONFLICT (user_id, idempotency_key) DO NOTHING",
        )
        .bind(key.user_id.to_string())
        .bind(key.key.to_owned())
        .bind(request_hash.to_owned())
        .bind(now)
        .bind(now.saturating_add(ttl_ms))
        .execute(db.pool())
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(Claim::Claimed);
        }
        let row = sqlx::query(
            "SELECT request_hash, status, response_body, created_at, expires_at \
             FROM idempotency_keys WHERE user_id = $1 AND idempotency_key = $2",
        )
        .bind(key.user_id.to_string())
        .bind(key.key.to_owned())
        .fetch_optional(db.pool())
        .await?;
        let Some(row) = row else {
            continue; // deleted meanwhile: claim again
        };
        let hash: String = row.try_get("request_hash")?;
        let status: Option<i64> = row.try_get("status")?;
        let body: Option<String> = row.try_get("response_body")?;
        let created_at: i64 = row.try_get("created_at")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let dead = expires_at <= now || (status.is_none() && created_at <= now - stale_ms);
        if dead {
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE user_id = $1 AND idempotency_key = $2 \
                 AND created_at = $3",
            )
            .bind(key.user_id.to_string())
            .bind(key.key.to_owned())
            .bind(created_at)
            .execute(db.pool())
            .await?;
            continue;
        }
        if hash != request_hash {
            return Ok(Claim::Mismatch);
        }
        return Ok(match (status, body) {
            (Some(status), Some(body)) => Claim::Replay {
                status: u16::try_from(status).unwrap_or(500),
                body,
            },
            _ => Claim::InFlight,
        });
    }
    Ok(Claim::InFlight)
}

/// Store the response of a claimed key (inside the request's transaction when it has one).
pub async fn complete<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    key: &Key<'_>,
    status: u16,
    body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET status = $1, response_body = $2 \
         WHERE user_id = $3 AND idempotency_key = $4",
    )
    .bind(i64::from(status))
    .bind(body.to_owned())
    .bind(key.user_id.to_string())
    .bind(key.key.to_owned())
    .execute(executor)
    .await?;
    Ok(())
}

/// Give up a claimed key whose request failed on the server's side, so a retry may run.
pub async fn release(db: &Db, key: &Key<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE user_id = $1 AND idempotency_key = $2 \
         AND status IS NULL",
    )
    .bind(key.user_id.to_string())
    .bind(key.key.to_owned())
    .execute(db.pool())
    .await?;
    Ok(())
}
