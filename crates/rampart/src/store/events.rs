//! The security event log, as rows.

use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

use super::{Db, users::parse_uuid};
use crate::domain::paging::{Limit, Page, PageRequest};

/// A security event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// Its id.
    pub id: Uuid,
    /// `login_failed`, `forbidden`, …
    pub kind: String,
    /// Unix ms.
    pub occurred_at: i64,
    /// The request that caused it.
    pub request_id: String,
    /// Client address.
    pub ip: String,
    /// Client user agent (bounded).
    pub user_agent: String,
    /// The account concerned, when known.
    pub user_id: Option<Uuid>,
    /// Route template.
    pub route: String,
    /// JSON object of details.
    pub details: String,
}

/// Store an event.
pub async fn insert(db: &Db, e: &EventRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO security_events (id, type, occurred_at, request_id, ip, user_agent, \
         user_id, route, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(e.id.to_string())
    .bind(e.kind.clone())
    .bind(e.occurred_at)
    .bind(e.request_id.clone())
    .bind(e.ip.clone())
    .bind(e.user_agent.clone())
    .bind(e.user_id.map(|u| u.to_string()))
    .bind(e.route.clone())
    .bind(e.details.clone())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Add `repeats` folded occurrences to the event `id` (API.md §7), the last of them at
/// `last_at` (Unix ms). One statement per closed folding window.
pub async fn add_repeats(db: &Db, id: Uuid, repeats: i64, last_at: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE security_events SET repeats = repeats + $1, last_at = $2 WHERE id = $3")
        .bind(repeats)
        .bind(last_at)
        .bind(id.to_string())
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The stored details, with `repeats` (occurrences folded into this row after the first)
/// added when there were any: the published event shape stays
/// `{id,type,occurred_at,request_id,ip,user_agent,user_id,route,details}`.
fn details_with_repeats(details: String, repeats: i64) -> String {
    if repeats <= 0 {
        return details;
    }
    match serde_json::from_str::<serde_json::Value>(&details) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.insert("repeats".to_owned(), repeats.into());
            serde_json::Value::Object(map).to_string()
        }
        _ => details,
    }
}

/// A page of events, newest first, optionally of one type and/or one user.
pub async fn list(
    db: &Db,
    kind: Option<&str>,
    user_id: Option<Uuid>,
    page: Page,
    limit: Limit,
) -> Result<(Vec<EventRow>, i64), sqlx::Error> {
    let mut conditions = Vec::new();
    let mut n = 0;
    if kind.is_some() {
        n += 1;
        conditions.push(format!("type = ${n}"));
    }
    if user_id.is_some() {
        n += 1;
        conditions.push(format!("user_id = ${n}"));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let count_sql = format!("SELECT COUNT(*) AS total FROM security_events{filter}");
    let page_sql = format!(
        "SELECT id, type, occurred_at, request_id, ip, user_agent, user_id, route, details, \
         repeats FROM security_events{filter} ORDER BY occurred_at DESC, id DESC LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let mut count = sqlx::query(AssertSqlSafe(count_sql));
    let mut rows = sqlx::query(AssertSqlSafe(page_sql));
    if let Some(k) = kind {
        count = count.bind(k.to_owned());
        rows = rows.bind(k.to_owned());
    }
    if let Some(u) = user_id {
        count = count.bind(u.to_string());
        rows = rows.bind(u.to_string());
    }
    let paging = PageRequest { page, limit };
    let total: i64 = count.fetch_one(db.pool()).await?.try_get("total")?;
    let rows = rows
        .bind(paging.rows())
        .bind(paging.offset())
        .fetch_all(db.pool())
        .await?;
    let events = rows
        .iter()
        .map(|row| {
            Ok(EventRow {
                id: parse_uuid(&row.try_get::<String, _>("id")?)?,
                kind: row.try_get("type")?,
                occurred_at: row.try_get("occurred_at")?,
                request_id: row.try_get("request_id")?,
                ip: row.try_get("ip")?,
                user_agent: row.try_get("user_agent")?,
                user_id: row
                    .try_get::<Option<String>, _>("user_id")?
                    .map(|u| parse_uuid(&u))
                    .transpose()?,
                route: row.try_get("route")?,
                details: details_with_repeats(
                    row.try_get("details")?,
                    row.try_get::<i64, _>("repeats")?,
                ),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok((events, total))
}
