//! `/admin` (role `admin`): accounts (search, page, deactivate, promote) and the security
//! event log (filter by type and account, paged), through [`crate::admin`]. Anyone else
//! signed in gets a 403 page and a `forbidden` event.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use rampart_layers::problem::Problem;
use serde_json::json;
use uuid::Uuid;

use super::{Form, Pages, Signed, Visit, see_other, timestamp, to_login, views};
use crate::{
    admin::{AccountChange, Administration, ChangeOutcome, EventFilter},
    domain::{paging::PageRequest, product::SearchText, user::Role},
    security_events::EventKind,
};

/// Rows per page on the admin page.
const ROWS: &str = "20";

/// The signed-in admin of the visit; for anyone else signed in, a 403 page and a
/// `forbidden` event; for no one, the login page.
async fn require_admin(
    pages: &Pages,
    visit: &Visit,
    signed: Option<Signed>,
) -> Result<Signed, Response> {
    let Some(signed) = signed else {
        return Err(to_login());
    };
    if signed.is_admin() {
        return Ok(signed);
    }
    let details =
        json!({"required_role": Role::Admin.as_str(), "route": visit.ctx.route, "page": true});
    pages
        .events
        .at(&visit.ctx)
        .record(EventKind::Forbidden, Some(signed.user.id), details)
        .await;
    let problem = Problem::new(StatusCode::FORBIDDEN, "forbidden")
        .with_detail("This page is for administrators.");
    Err(signed.finish(visit.error_page(&problem)))
}

fn administration(pages: &Pages) -> Administration {
    Administration::new(pages.db.clone(), pages.events.clone())
}

/// A page number from a query value: 1 when absent or malformed.
fn page_number(raw: Option<&str>) -> u32 {
    raw.and_then(|r| r.parse::<u32>().ok())
        .filter(|p| (1..=100_000).contains(p))
        .unwrap_or(1)
}

fn paging(page: u32) -> PageRequest {
    let page = page.to_string();
    PageRequest::parse([("page", page.as_str()), ("limit", ROWS)]).unwrap_or_default()
}

fn next_page(page: u32, total: i64) -> Option<u32> {
    let rows: i64 = ROWS.parse().unwrap_or(20);
    (i64::from(page) * rows < total).then_some(page + 1)
}

/// `GET /admin?q=&page=&type=&user_id=&events_page=`.
pub async fn page(State(pages): State<Pages>, visit: Visit) -> Response {
    let signed = match pages.signed_in(&visit).await {
        Ok(signed) => signed,
        Err(e) => return visit.failure(e),
    };
    let signed = match require_admin(&pages, &visit, signed).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let notice = visit.notice(&[("changed", "The account was changed.")]);
    render(&pages, &visit, &signed, StatusCode::OK, notice, None).await
}

async fn render(
    pages: &Pages,
    visit: &Visit,
    signed: &Signed,
    status: StatusCode,
    notice: Option<&str>,
    mut error: Option<String>,
) -> Response {
    let query: Vec<(String, String)> =
        form_urlencoded::parse(visit.query.as_deref().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let q = param("q").and_then(|q| SearchText::parse(q).ok());
    let users_page = page_number(param("page"));
    let events_page = page_number(param("events_page"));
    let mut filter = EventFilter::default();
    if let Some(kind) = param("type") {
        filter.kind = EventKind::parse(kind);
        if filter.kind.is_none() {
            error.get_or_insert_with(|| "Unknown event type: showing every type.".to_owned());
        }
    }
    if let Some(user) = param("user_id") {
        filter.user_id = Uuid::try_parse(user).ok();
        if filter.user_id.is_none() {
            error.get_or_insert_with(|| "That is not a user id: showing every user.".to_owned());
        }
    }
    let admin = administration(pages);
    let users = match admin.users(q.as_ref(), paging(users_page)).await {
        Ok(users) => users,
        Err(e) => return visit.failure(e.into()),
    };
    let events = match admin.events(filter, paging(events_page)).await {
        Ok(events) => events,
        Err(e) => return visit.failure(e.into()),
    };
    let page = views::Admin {
        nonce: &visit.nonce,
        csrf: signed.csrf(pages),
        is_admin: true,
        notice,
        error,
        q: q.map(|q| q.as_str().to_owned()).unwrap_or_default(),
        users_next: next_page(users_page, users.total),
        users_total: users.total,
        users_page,
        users: users.items,
        event_type: filter
            .kind
            .map(|k| k.as_str().to_owned())
            .unwrap_or_default(),
        event_user: filter.user_id.map(|u| u.to_string()).unwrap_or_default(),
        events_next: next_page(events_page, events.total),
        events_total: events.total,
        events_page,
        events: events
            .items
            .into_iter()
            .map(|e| views::EventView {
                occurred_at: timestamp(e.occurred_at),
                kind: e.kind,
                user_id: e.user_id.map(|u| u.to_string()).unwrap_or_default(),
                ip: e.ip,
                route: e.route,
                details: e.details,
            })
            .collect(),
    };
    signed.finish(visit.render(status, &page))
}

/// `POST /admin/users/{id}` with `action` = `deactivate`, `activate`, `promote` or
/// `demote`.
pub async fn change_user(
    State(pages): State<Pages>,
    Path(id): Path<String>,
    visit: Visit,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if let Err(refused) = pages.check_csrf(&visit, &form).await {
        return refused;
    }
    let signed = match pages.signed_in(&visit).await {
        Ok(signed) => signed,
        Err(e) => return visit.failure(e),
    };
    let signed = match require_admin(&pages, &visit, signed).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let change = match form.get("action") {
        Some("deactivate") => AccountChange {
            active: Some(false),
            ..Default::default()
        },
        Some("activate") => AccountChange {
            active: Some(true),
            ..Default::default()
        },
        Some("promote") => AccountChange {
            role: Some(Role::Admin),
            ..Default::default()
        },
        Some("demote") => AccountChange {
            role: Some(Role::User),
            ..Default::default()
        },
        _ => {
            let text = "Choose an action.".to_owned();
            return render(
                &pages,
                &visit,
                &signed,
                StatusCode::BAD_REQUEST,
                None,
                Some(text),
            )
            .await;
        }
    };
    let Ok(id) = Uuid::try_parse(&id) else {
        return visit.failure(crate::error::AppError::NotFound);
    };
    let outcome = administration(&pages)
        .change_account(&signed.user, id, change, &visit.ctx, visit.now)
        .await;
    match outcome {
        Ok(ChangeOutcome::Changed(user)) => {
            if !user.active
                && let Err(e) = pages.store().destroy_user(user.id, None).await
            {
                return visit.failure(e.into());
            }
            signed.finish(see_other("/admin?done=changed"))
        }
        Ok(ChangeOutcome::NotFound) => visit.failure(crate::error::AppError::NotFound),
        Ok(ChangeOutcome::SelfLockout) => {
            let text = "You cannot deactivate or demote yourself.".to_owned();
            render(
                &pages,
                &visit,
                &signed,
                StatusCode::CONFLICT,
                None,
                Some(text),
            )
            .await
        }
        Err(e) => visit.failure(e.into()),
    }
}
