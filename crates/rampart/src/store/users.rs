//! Accounts.

use sqlx::{AssertSqlSafe, Row, any::AnyRow};
use uuid::Uuid;

use super::Db;
use crate::domain::{
    paging::{Limit, Page},
    user::{Role, User},
};

const USER_COLUMNS: &str =
    "id, email, name, bio, role, active, email_verified, mfa_enabled, created_at";

pub(crate) fn parse_uuid(text: &str) -> Result<Uuid, sqlx::Error> {
    Uuid::parse_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: parse_uuid(&row.try_get::<String, _>("id")?)?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        bio: row.try_get("bio")?,
        role: Role::parse(&role).unwrap_or(Role::User),
        active: row.try_get::<i64, _>("active")? != 0,
        email_verified: row.try_get::<i64, _>("email_verified")? != 0,
        mfa_enabled: row.try_get::<i64, _>("mfa_enabled")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// Lower-cased address.
    pub email: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Argon2id PHC string.
    pub password_hash: &'a str,
    /// Role.
    pub role: Role,
    /// Whether the address counts as confirmed.
    pub email_verified: bool,
}

/// Insert an account created at `now`; `None` when the address is taken (nothing is
/// changed then).
pub async fn create(db: &Db, new: &NewUser<'_>, now: i64) -> Result<Option<User>, sqlx::Error> {
    let id = Uuid::new_v4();
    let result = sqlx::query(
        "INSERT INTO users (id, email, name, bio, password_hash, role, active, email_verified, \
         mfa_enabled, created_at, updated_at) VALUES ($1, $2, $3, '', $4, $5, 1, $6, 0, $7, $7) \
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(new.email)
    .bind(new.name)
    .bind(new.password_hash)
    .bind(new.role.as_str())
    .bind(i64::from(new.email_verified))
    .bind(now)
    .execute(db.pool())
    .await?;
    if result.rows_affected() == 0 {
        return Ok(None);
    }
    get(db, id).await
}

/// The account with `id`.
pub async fn get(db: &Db, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// An account with its password hash, for sign-in.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The account.
    pub user: User,
    /// Its PHC (or legacy bcrypt) hash.
    pub password_hash: String,
}

/// The account registered under `email`, with its hash.
pub async fn credentials_by_email(
    db: &Db,
    email: &str,
) -> Result<Option<Credentials>, sqlx::Error> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1"
    )))
    .bind(email)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| {
        Ok(Credentials {
            user: from_row(&row)?,
            password_hash: row.try_get("password_hash")?,
        })
    })
    .transpose()
}

/// The account with `id`, with its hash.
pub async fn credentials_by_id(db: &Db, id: Uuid) -> Result<Option<Credentials>, sqlx::Error> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| {
        Ok(Credentials {
            user: from_row(&row)?,
            password_hash: row.try_get("password_hash")?,
        })
    })
    .transpose()
}

/// Replace the password hash.
pub async fn set_password_hash(db: &Db, id: Uuid, hash: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(now)
        .bind(id.to_string())
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Mark the address confirmed.
pub async fn mark_verified(db: &Db, id: Uuid, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET email_verified = 1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id.to_string())
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Change name and/or bio.
pub async fn update_profile(
    db: &Db,
    id: Uuid,
    name: Option<&str>,
    bio: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET name = COALESCE($1, name), bio = COALESCE($2, bio), updated_at = $3 \
         WHERE id = $4",
    )
    .bind(name.map(str::to_owned))
    .bind(bio.map(str::to_owned))
    .bind(now)
    .bind(id.to_string())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Change role and/or activity; `false` when there is no such account.
pub async fn update_admin(
    db: &Db,
    id: Uuid,
    role: Option<Role>,
    active: Option<bool>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE users SET role = COALESCE($1, role), active = COALESCE($2, active), \
         updated_at = $3 WHERE id = $4",
    )
    .bind(role.map(|r| r.as_str().to_owned()))
    .bind(active.map(i64::from))
    .bind(now)
    .bind(id.to_string())
    .execute(db.pool())
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Make `email` a verified admin, with a new password hash (create-admin on an existing
/// account).
pub async fn promote(db: &Db, email: &str, hash: &str, now: i64) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE users SET role = 'admin', email_verified = 1, active = 1, password_hash = $1, \
         updated_at = $2 WHERE email = $3",
    )
    .bind(hash)
    .bind(now)
    .bind(email)
    .execute(db.pool())
    .await?;
    Ok(result.rows_affected() == 1)
}

/// A page of accounts whose email or name contains `q` (literally), oldest first.
pub async fn list(
    db: &Db,
    q: Option<&str>,
    page: Page,
    limit: Limit,
) -> Result<(Vec<User>, i64), sqlx::Error> {
    let filter = if q.is_some() {
        " WHERE LOWER(email) LIKE $1 ESCAPE '\\' OR LOWER(name) LIKE $1 ESCAPE '\\'"
    } else {
        ""
    };
    let (limit_p, offset_p) = if q.is_some() {
        ("$2", "$3")
    } else {
        ("$1", "$2")
    };
    let count_sql = format!("SELECT COUNT(*) AS total FROM users{filter}");
    let page_sql = format!(
        "SELECT {USER_COLUMNS} FROM users{filter} ORDER BY created_at, id LIMIT {limit_p} OFFSET {offset_p}"
    );
    let pattern = q.map(super::products::like_pattern);
    let mut count = sqlx::query(AssertSqlSafe(count_sql));
    let mut rows = sqlx::query(AssertSqlSafe(page_sql));
    if let Some(p) = &pattern {
        count = count.bind(p.clone());
        rows = rows.bind(p.clone());
    }
    let limit = i64::from(limit.get());
    let offset = (i64::from(page.get()) - 1).saturating_mul(limit);
    let total: i64 = count.fetch_one(db.pool()).await?.try_get("total")?;
    let rows = rows.bind(limit).bind(offset).fetch_all(db.pool()).await?;
    Ok((rows.iter().map(from_row).collect::<Result<_, _>>()?, total))
}

/// What each authenticated request checks: the account is active and the session family
/// is live. `None` when either is missing.
#[derive(Debug, Clone)]
pub struct AuthStatus {
    /// The account.
    pub user: User,
    /// When the family was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// When the family ends whatever its rotations.
    pub expires_at: i64,
}

/// The account and the state of one of its session families.
pub async fn auth_status(
    db: &Db,
    user_id: Uuid,
    family_id: Uuid,
) -> Result<Option<AuthStatus>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT u.id, u.email, u.name, u.bio, u.role, u.active, u.email_verified, u.mfa_enabled, \
         u.created_at, f.revoked_at, f.expires_at FROM users u \
         JOIN session_families f ON f.user_id = u.id WHERE u.id = $1 AND f.id = $2",
    )
    .bind(user_id.to_string())
    .bind(family_id.to_string())
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| {
        Ok(AuthStatus {
            user: from_row(&row)?,
            revoked_at: row.try_get("revoked_at")?,
            expires_at: row.try_get("expires_at")?,
        })
    })
    .transpose()
}

/// The sizes [`auth_statuses`] pads its list of families to: one fixed SQL text per size,
/// so each connection prepares at most this many statements for it.
pub const AUTH_STATUS_BATCH_SIZES: [usize; 7] = [1, 2, 4, 8, 16, 32, 64];

static AUTH_STATUS_SQL: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    AUTH_STATUS_BATCH_SIZES
        .iter()
        .map(|&n| {
            let params: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
            format!(
                "SELECT f.id AS family_id, f.revoked_at, f.expires_at, u.id, u.email, u.name, \
                 u.bio, u.role, u.active, u.email_verified, u.mfa_enabled, u.created_at \
                 FROM session_families f JOIN users u ON u.id = f.user_id WHERE f.id IN ({})",
                params.join(", ")
            )
        })
        .collect()
});

/// [`auth_status`] of several families at once, in one statement (each found family with
/// its owner's account: the caller compares the owner with the token's `sub`). Looks up by
/// primary key, so its cost follows the number of families, not the tables. More than the
/// largest of [`AUTH_STATUS_BATCH_SIZES`] families are looked up in several statements.
pub async fn auth_statuses(
    db: &Db,
    families: &[Uuid],
) -> Result<Vec<(Uuid, AuthStatus)>, sqlx::Error> {
    let mut found = Vec::with_capacity(families.len());
    let largest = AUTH_STATUS_BATCH_SIZES[AUTH_STATUS_BATCH_SIZES.len() - 1];
    for chunk in families.chunks(largest) {
        let Some(first) = chunk.first() else {
            continue;
        };
        let (i, &size) = AUTH_STATUS_BATCH_SIZES
            .iter()
            .enumerate()
            .find(|(_, size)| **size >= chunk.len())
            .unwrap_or((AUTH_STATUS_BATCH_SIZES.len() - 1, &largest));
        let mut query = sqlx::query(AssertSqlSafe(AUTH_STATUS_SQL[i].as_str()));
        // Padded with the first id: the same row, matched once.
        for family in chunk.iter().chain(std::iter::repeat(first)).take(size) {
            query = query.bind(family.to_string());
        }
        for row in query.fetch_all(db.pool()).await? {
            let family = parse_uuid(&row.try_get::<String, _>("family_id")?)?;
            let status = AuthStatus {
                user: from_row(&row)?,
                revoked_at: row.try_get("revoked_at")?,
                expires_at: row.try_get("expires_at")?,
            };
            found.push((family, status));
        }
    }
    Ok(found)
}

/// TOTP state of an account.
#[derive(Debug, Clone, Default)]
pub struct TotpState {
    /// The enabled secret.
    pub secret: Option<String>,
    /// A secret set up but not yet confirmed.
    pub pending: Option<String>,
    /// The last accepted time step.
    pub last_step: Option<i64>,
}

/// The TOTP state of `id`.
pub async fn totp_state(db: &Db, id: Uuid) -> Result<TotpState, sqlx::Error> {
    let row = sqlx::query(
        "SELECT totp_secret, totp_pending_secret, totp_last_step FROM users WHERE id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(db.pool())
    .await?;
    match row {
        None => Ok(TotpState::default()),
        Some(row) => Ok(TotpState {
            secret: row.try_get("totp_secret")?,
            pending: row.try_get("totp_pending_secret")?,
            last_step: row.try_get("totp_last_step")?,
        }),
    }
}

/// Store a secret awaiting confirmation.
pub async fn set_pending_totp(
    db: &Db,
    id: Uuid,
    secret: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET totp_pending_secret = $1, updated_at = $2 WHERE id = $3")
        .bind(secret)
        .bind(now)
        .bind(id.to_string())
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Enable MFA with the pending secret, recording the step that confirmed it.
pub async fn enable_totp(
    db: &Db,
    id: Uuid,
    secret: &str,
    step: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET totp_secret = $1, totp_pending_secret = NULL, totp_last_step = $2, \
         mfa_enabled = 1, updated_at = $3 WHERE id = $4",
    )
    .bind(secret)
    .bind(step)
    .bind(now)
    .bind(id.to_string())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Disable MFA and forget the secrets.
pub async fn disable_totp(db: &Db, id: Uuid, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET totp_secret = NULL, totp_pending_secret = NULL, totp_last_step = NULL, \
         mfa_enabled = 0, updated_at = $1 WHERE id = $2",
    )
    .bind(now)
    .bind(id.to_string())
    .execute(db.pool())
    .await?;
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(id.to_string())
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Record `step` as used, only if it is newer than the last one: one conditional write, so
/// two concurrent logins with the same code cannot both win.
pub async fn claim_totp_step(db: &Db, id: Uuid, step: i64) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE users SET totp_last_step = $1 WHERE id = $2 \
         AND (totp_last_step IS NULL OR totp_last_step < $1)",
    )
    .bind(step)
    .bind(id.to_string())
    .execute(db.pool())
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Replace the recovery codes of `id` with these hashes.
pub async fn replace_recovery_codes(
    db: &Db,
    id: Uuid,
    hashes: &[String],
) -> Result<(), sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    for hash in hashes {
        sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
            .bind(id.to_string())
            .bind(hash.clone())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// Use a recovery code once: `true` if it existed and was unused.
pub async fn consume_recovery_code(
    db: &Db,
    id: Uuid,
    hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 \
         AND used_at IS NULL",
    )
    .bind(now)
    .bind(id.to_string())
    .bind(hash)
    .execute(db.pool())
    .await?;
    Ok(result.rows_affected() == 1)
}
