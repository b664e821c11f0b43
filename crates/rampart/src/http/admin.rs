//! `/api/v1/admin/*`: accounts and the security event log, for the `admin` role only.
//! The policy (who may change what, which events a change records) lives in
//! [`crate::admin`]; this module parses, calls and renders.

use crate::http::routing::{ApiRouter, routes};
use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{FromQuery, Paged, ResourceId, ValidJson, ValidQuery, me::UserBody};
use crate::{
    admin::{AccountChange, Administration, ChangeOutcome, EventFilter, EventRow},
    auth::extract::{Admin, RequireRole},
    domain::{
        FieldError, paging::PageRequest, parse_params, product::SearchText, rfc3339, user::Role,
    },
    error::AppError,
    security_events::{EventContext, EventKind},
    state::AppState,
};

/// The admin routes.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(patch_user))
        .routes(routes!(list_events))
}

/// The administration service of `state`.
fn administration(state: &AppState) -> Administration {
    Administration::new(state.db.clone(), state.events.clone())
}

/// `GET /admin/users` parameters (and `page`, `limit`).
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Substring of email or name, 1–100 characters, matched literally.
    /// Matched literally against email and name.
    #[param(value_type = Option<String>, schema_with = crate::http::openapi::search_text)]
    q: Option<SearchText>,
    #[param(ignore)]
    paging: PageRequest,
}

impl FromQuery for UserQuery {
    fn from_query<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut query = Self::default();
        parse_params(pairs, |key, value| match key {
            "q" => Some(SearchText::parse(value).map(|q| query.q = Some(q))),
            _ => query.paging.param(key, value),
        })?;
        Ok(query)
    }
}

/// List accounts, oldest first.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])),
    params(UserQuery, PageRequest),
    responses(
        (status = 200, description = "A page of accounts; `X-Total-Count` holds the total",
            body = Paged<UserBody>),
        (status = 400, description = "`validation_failed` (a parameter out of its bounds, or an unknown one) or `duplicate_parameter`"),
        (status = 403, description = "`forbidden`: not an admin"),
    ))]
async fn list_users(
    State(state): State<AppState>,
    _admin: RequireRole<Admin>,
    ValidQuery(query): ValidQuery<UserQuery>,
) -> Result<Paged<UserBody>, AppError> {
    let page = administration(&state)
        .users(query.q.as_ref(), query.paging)
        .await?;
    Ok(Paged::of(page, UserBody::from))
}

/// `PATCH /admin/users/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    /// `user` or `admin`.
    /// `user` or `admin`.
    #[schema(schema_with = crate::http::openapi::nullable_role)]
    role: Option<String>,
    /// `false` deactivates the account and revokes every session at once.
    active: Option<bool>,
}

impl TryFrom<PatchUser> for AccountChange {
    type Error = AppError;

    fn try_from(body: PatchUser) -> Result<Self, AppError> {
        let role = match body.role.as_deref() {
            None => None,
            Some(raw) => Some(
                Role::parse(raw)
                    .ok_or_else(|| AppError::field("role", "must be `user` or `admin`"))?,
            ),
        };
        Ok(Self {
            role,
            active: body.active,
        })
    }
}

/// Change an account's role or deactivate it; deactivation revokes every session at once.
#[utoipa::path(patch, path = "/api/v1/admin/users/{id}", tag = "admin", security(("bearer" = [])), request_body = PatchUser,
    params(("id" = Uuid, Path, description = "Account id")),
    responses((status = 200, description = "The changed account", body = UserBody),
        (status = 400, description = "`validation_failed`: an unknown role or field"),
        (status = 403, description = "`forbidden`: not an admin"),
        (status = 404, description = "`not_found`: unknown or malformed id"),
        (status = 409, description = "`conflict`: an admin cannot deactivate or demote themselves")))]
async fn patch_user(
    State(state): State<AppState>,
    ctx: EventContext,
    RequireRole(admin, ..): RequireRole<Admin>,
    ResourceId(id): ResourceId,
    ValidJson(body): ValidJson<PatchUser>,
) -> Result<Json<UserBody>, AppError> {
    let change = AccountChange::try_from(body)?;
    let outcome = administration(&state)
        .change_account(&admin.user, id, change, &ctx, state.clock.now_ms())
        .await?;
    match outcome {
        ChangeOutcome::Changed(user) => Ok(Json(UserBody::from(user))),
        ChangeOutcome::NotFound => Err(AppError::NotFound),
        ChangeOutcome::SelfLockout => Err(AppError::Conflict(
            "An admin cannot deactivate or demote themselves.",
        )),
    }
}

/// `GET /admin/security-events` parameters (and `page`, `limit`).
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// An event type, like `login_failed`.
    /// One event type.
    #[param(rename = "type", value_type = Option<String>, schema_with = crate::http::openapi::event_type)]
    kind: Option<EventKind>,
    /// Only events concerning this account.
    user_id: Option<Uuid>,
    #[param(ignore)]
    paging: PageRequest,
}

impl FromQuery for EventQuery {
    fn from_query<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut query = Self::default();
        parse_params(pairs, |key, value| match key {
            "type" => Some(
                EventKind::parse(value)
                    .map(|k| query.kind = Some(k))
                    .ok_or_else(|| FieldError::new("type", "is not a known event type")),
            ),
            "user_id" => Some(
                Uuid::try_parse(value)
                    .map(|u| query.user_id = Some(u))
                    .map_err(|_| FieldError::new("user_id", "must be a UUID")),
            ),
            _ => query.paging.param(key, value),
        })?;
        Ok(query)
    }
}

/// A security event (API.md §4 shape).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventBody {
    id: Uuid,
    r#type: String,
    #[schema(format = DateTime)]
    occurred_at: String,
    request_id: String,
    ip: String,
    user_agent: String,
    user_id: Option<Uuid>,
    route: String,
    #[schema(value_type = Object)]
    details: serde_json::Value,
}

impl From<EventRow> for EventBody {
    fn from(e: EventRow) -> Self {
        Self {
            id: e.id,
            r#type: e.kind,
            occurred_at: rfc3339(e.occurred_at),
            request_id: e.request_id,
            ip: e.ip,
            user_agent: e.user_agent,
            user_id: e.user_id,
            route: e.route,
            details: serde_json::from_str(&e.details).unwrap_or_default(),
        }
    }
}

/// The security event log, newest first.
#[utoipa::path(get, path = "/api/v1/admin/security-events", tag = "admin", security(("bearer" = [])),
    params(EventQuery, PageRequest),
    responses(
        (status = 200, description = "A page of events; `X-Total-Count` holds the total",
            body = Paged<EventBody>),
        (status = 400, description = "`validation_failed` (a parameter out of its bounds, or an unknown one) or `duplicate_parameter`"),
        (status = 403, description = "`forbidden`: not an admin"),
    ))]
async fn list_events(
    State(state): State<AppState>,
    _admin: RequireRole<Admin>,
    ValidQuery(query): ValidQuery<EventQuery>,
) -> Result<Paged<EventBody>, AppError> {
    let filter = EventFilter {
        kind: query.kind,
        user_id: query.user_id,
    };
    let page = administration(&state).events(filter, query.paging).await?;
    Ok(Paged::of(page, EventBody::from))
}
