//! `/api/v1/admin/*`: accounts and the security event log, for the `admin` role only.

use axum::{
    Json,
    extract::State,
    response::{AppendHeaders, IntoResponse},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{FromQuery, ResourceId, ValidJson, ValidQuery, X_TOTAL_COUNT, me::UserBody};
use crate::{
    auth::extract::{Admin, RequireRole},
    domain::{
        FieldError,
        paging::{Limit, Page},
        parse_params,
        product::SearchText,
        rfc3339,
        user::Role,
    },
    error::AppError,
    security_events::{EventContext, EventKind},
    state::AppState,
    store::{events, sessions, users},
};

/// The admin routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(patch_user))
        .routes(routes!(list_events))
}

/// `GET /admin/users` parameters.
#[derive(Debug, Default)]
pub struct UserQuery {
    q: Option<SearchText>,
    page: Page,
    limit: Limit,
}

impl FromQuery for UserQuery {
    fn from_query<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut query = Self::default();
        parse_params(pairs, |key, value| {
            Some(match key {
                "q" => SearchText::parse(value).map(|q| query.q = Some(q)),
                "page" => Page::parse(value).map(|p| query.page = p),
                "limit" => Limit::parse(value).map(|l| query.limit = l),
                _ => return None,
            })
        })?;
        Ok(query)
    }
}

/// Documentation of [`UserQuery`].
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct UserQueryDoc {
    /// Substring of email or name, matched literally.
    q: Option<String>,
    page: Option<u32>,
    /// 1–100, default 20.
    limit: Option<u32>,
}

/// A page of accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    items: Vec<UserBody>,
    page: u32,
    limit: u32,
    total: i64,
}

/// List accounts.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])), params(UserQueryDoc),
    responses((status = 200, body = UserList), (status = 403, description = "Not an admin")))]
async fn list_users(
    State(state): State<AppState>,
    _admin: RequireRole<Admin>,
    ValidQuery(query): ValidQuery<UserQuery>,
) -> Result<impl IntoResponse, AppError> {
    let (items, total) = users::list(
        &state.db,
        query.q.as_ref().map(SearchText::as_str),
        query.page,
        query.limit,
    )
    .await?;
    Ok((
        AppendHeaders([(X_TOTAL_COUNT, total.to_string())]),
        Json(UserList {
            items: items.into_iter().map(UserBody::from).collect(),
            page: query.page.get(),
            limit: query.limit.get(),
            total,
        }),
    ))
}

/// `PATCH /admin/users/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    /// `user` or `admin`.
    role: Option<String>,
    active: Option<bool>,
}

/// Change an account's role or deactivate it; deactivation revokes every session at once.
#[utoipa::path(patch, path = "/api/v1/admin/users/{id}", tag = "admin", security(("bearer" = [])), request_body = PatchUser,
    params(("id" = Uuid, Path)),
    responses((status = 200, body = UserBody), (status = 404), (status = 403)))]
async fn patch_user(
    State(state): State<AppState>,
    ctx: EventContext,
    RequireRole(admin, ..): RequireRole<Admin>,
    ResourceId(id): ResourceId,
    ValidJson(body): ValidJson<PatchUser>,
) -> Result<Json<UserBody>, AppError> {
    let role = match body.role.as_deref() {
        None => None,
        Some(raw) => Some(
            Role::parse(raw).ok_or_else(|| AppError::field("role", "must be `user` or `admin`"))?,
        ),
    };
    let before = users::get(&state.db, id).await?.ok_or(AppError::NotFound)?;
    if id == admin.user.id && (body.active == Some(false) || role == Some(Role::User)) {
        return Err(AppError::Conflict(
            "An admin cannot deactivate or demote themselves.",
        ));
    }
    users::update_admin(&state.db, id, role, body.active, state.clock.now_ms()).await?;
    let now = state.clock.now_ms();
    if body.active == Some(false) && before.active {
        let revoked = sessions::revoke_all(&state.db, id, None, now).await?;
        state
            .events
            .record(
                &ctx,
                EventKind::UserDeactivated,
                Some(id),
                json!({"by": admin.user.id, "sessions_revoked": revoked}),
            )
            .await;
    }
    if let Some(role) = role
        && role != before.role
    {
        state
            .events
            .record(
                &ctx,
                EventKind::RoleChanged,
                Some(id),
                json!({"by": admin.user.id, "from": before.role.as_str(), "to": role.as_str()}),
            )
            .await;
    }
    let after = users::get(&state.db, id).await?.ok_or(AppError::NotFound)?;
    Ok(Json(UserBody::from(after)))
}

/// `GET /admin/security-events` parameters.
#[derive(Debug, Default)]
pub struct EventQuery {
    kind: Option<EventKind>,
    user_id: Option<Uuid>,
    page: Page,
    limit: Limit,
}

impl FromQuery for EventQuery {
    fn from_query<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut query = Self::default();
        parse_params(pairs, |key, value| {
            Some(match key {
                "type" => EventKind::parse(value)
                    .map(|k| query.kind = Some(k))
                    .ok_or_else(|| FieldError::new("type", "is not a known event type")),
                "user_id" => Uuid::try_parse(value)
                    .map(|u| query.user_id = Some(u))
                    .map_err(|_| FieldError::new("user_id", "must be a UUID")),
                "page" => Page::parse(value).map(|p| query.page = p),
                "limit" => Limit::parse(value).map(|l| query.limit = l),
                _ => return None,
            })
        })?;
        Ok(query)
    }
}

/// Documentation of [`EventQuery`].
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct EventQueryDoc {
    /// An event type, like `login_failed`.
    r#type: Option<String>,
    user_id: Option<Uuid>,
    page: Option<u32>,
    limit: Option<u32>,
}

/// A security event (API.md §4 shape).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventBody {
    id: Uuid,
    r#type: String,
    occurred_at: String,
    request_id: String,
    ip: String,
    user_agent: String,
    user_id: Option<Uuid>,
    route: String,
    #[schema(value_type = Object)]
    details: serde_json::Value,
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    items: Vec<EventBody>,
    page: u32,
    limit: u32,
    total: i64,
}

/// The security event log, newest first.
#[utoipa::path(get, path = "/api/v1/admin/security-events", tag = "admin", security(("bearer" = [])), params(EventQueryDoc),
    responses((status = 200, body = EventList), (status = 403, description = "Not an admin")))]
async fn list_events(
    State(state): State<AppState>,
    _admin: RequireRole<Admin>,
    ValidQuery(query): ValidQuery<EventQuery>,
) -> Result<impl IntoResponse, AppError> {
    let (rows, total) = events::list(
        &state.db,
        query.kind.map(EventKind::as_str),
        query.user_id,
        query.page,
        query.limit,
    )
    .await?;
    let items = rows
        .into_iter()
        .map(|e| EventBody {
            id: e.id,
            r#type: e.kind,
            occurred_at: rfc3339(e.occurred_at),
            request_id: e.request_id,
            ip: e.ip,
            user_agent: e.user_agent,
            user_id: e.user_id,
            route: e.route,
            details: serde_json::from_str(&e.details).unwrap_or_default(),
        })
        .collect();
    Ok((
        AppendHeaders([(X_TOTAL_COUNT, total.to_string())]),
        Json(EventList {
            items,
            page: query.page.get(),
            limit: query.limit.get(),
            total,
        }),
    ))
}
