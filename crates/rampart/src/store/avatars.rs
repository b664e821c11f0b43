//! Which avatar file belongs to which account. The files themselves live in
//! `$RAMPART_DATA_DIR/avatars` under random names (see `commerce::avatars`).

use sqlx::Row;
use uuid::Uuid;

use super::Db;

/// A stored avatar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Avatar {
    /// Random file name inside the avatars directory.
    pub file_name: String,
    /// The checked media type.
    pub media_type: String,
}

/// The avatar of `user_id`, if any.
pub async fn get(db: &Db, user_id: Uuid) -> Result<Option<Avatar>, sqlx::Error> {
    let row = sqlx::query("SELECT file_name, media_type FROM avatars WHERE user_id = $1")
        .bind(user_id.to_string())
        .fetch_optional(db.pool())
        .await?;
    row.map(|r| {
        Ok(Avatar {
            file_name: r.try_get("file_name")?,
            media_type: r.try_get("media_type")?,
        })
    })
    .transpose()
}

/// Make `avatar` the avatar of `user_id`; returns the replaced one, whose file the caller
/// removes.
pub async fn set(
    db: &Db,
    user_id: Uuid,
    avatar: &Avatar,
    now: i64,
) -> Result<Option<Avatar>, sqlx::Error> {
    let old = get(db, user_id).await?;
    sqlx::query(
        "INSERT INTO avatars (user_id, file_name, media_type, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id) DO UPDATE SET file_name = excluded.file_name, \
         media_type = excluded.media_type, updated_at = excluded.updated_at",
    )
    .bind(user_id.to_string())
    .bind(avatar.file_name.clone())
    .bind(avatar.media_type.clone())
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(old.filter(|o| o.file_name != avatar.file_name))
}
