//! Server-rendered pages for people (API.md §9): `/login` (password, then a TOTP step
//! when MFA is on), `/account` (profile, sessions, password, MFA enrolment with a QR
//! code) and `/admin` (accounts and the security event log).
//!
//! The pages are thin like the API's handlers: they call the same services
//! ([`crate::auth::login`], [`crate::auth::step_up`], [`crate::auth::account`],
//! [`crate::admin`]), so limits, enumeration-safe answers and events are the API's.
//! What is theirs: the server-side [`session`], [`csrf`] protection of every form POST,
//! and rendering with askama (compile-time templates in `templates/`, auto-escaped).
//!
//! # Security
//! - Every page gets a fresh CSP nonce in a `default-src 'none'` policy; its only inline
//!   content is a `<style nonce>` element and the QR code's SVG markup; no script, no
//!   inline handler, no external resource. The security-headers layer fills in the rest
//!   of the API's headers and keeps this CSP.
//! - Error pages (marked [`RenderedError`]) hold fixed text and the error code only.
//! - A form POST is judged by [`csrf`] before anything else happens: a refusal changes no
//!   state and sets no cookie.

mod account;
mod admin;
pub mod cache;
pub mod csrf;
mod login;
pub mod qr;
pub mod session;
mod views;

use std::sync::Arc;

use askama::Template;
use axum::{
    Router,
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use rampart_layers::{
    client_ip::ClientIp,
    problem::{Problem, RenderedError},
};
use secrecy::ExposeSecret as _;
use serde_json::json;

use crate::{
    auth::random::new_token,
    domain::user::User,
    error::{AppError, InternalCause},
    security_events::{EventContext, EventKind},
    state::AppState,
    store::users,
};

use session::{BrowserSession, Keys, Lifetimes, Rotation, SessionStore};

/// The page routes' shared state.
#[derive(Clone)]
pub struct Pages(Arc<Inner>);

struct Inner {
    app: AppState,
    store: SessionStore,
    public_origin: String,
}

impl std::ops::Deref for Pages {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.0.app
    }
}

/// The page routes, on their own state (the session store and its keys).
pub fn router(app: &AppState) -> Router<AppState> {
    let secret = match &app.config.session_secret {
        Some(secret) => secret.expose_secret().as_bytes().to_vec(),
        None => {
            // Setup always provides one (generated in development, required in
            // production); a state built without it still gets unguessable keys.
            tracing::warn!("no session secret configured: page sessions end at restart");
            new_token().into_bytes()
        }
    };
    let keys = Arc::new(Keys::derive(&secret));
    let auth = &app.config.auth;
    let lifetimes = Lifetimes {
        idle_ms: i64::try_from(auth.page_session_idle.as_millis()).unwrap_or(i64::MAX),
        absolute_ms: i64::try_from(auth.page_session_max_age.as_millis()).unwrap_or(i64::MAX),
    };
    let public_origin = url::Url::parse(&app.config.public_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let cache = app.config.redis_url.as_ref().and_then(|url| {
        match cache::Cache::new(url.expose_secret(), app.config.tunables.redis_timeout) {
            Ok(cache) => Some(cache),
            Err(e) => {
                // Config validation checks the URL; a cache is only an optimisation.
                tracing::warn!(target: "rampart::pages", error = %e, "no session cache");
                None
            }
        }
    });
    let pages = Pages(Arc::new(Inner {
        store: SessionStore::new(app.db.clone(), keys, lifetimes, cache),
        app: app.clone(),
        public_origin,
    }));
    Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route("/login/mfa", post(login::second_factor))
        .route("/logout", post(login::logout))
        .route("/account", get(account::page))
        .route("/account/profile", post(account::profile))
        .route("/account/password", post(account::password))
        .route("/account/sessions/revoke", post(account::revoke))
        .route("/account/mfa/setup", post(account::mfa_setup))
        .route("/account/mfa/confirm", post(account::mfa_confirm))
        .route("/account/mfa/disable", post(account::mfa_disable))
        .route("/admin", get(admin::page))
        .route("/admin/users/{id}", post(admin::change_user))
        .with_state(pages)
}

/// The `POST` routes of the pages, whose bodies are URL-encoded forms (for the body
/// limits of the pipeline): every path under these prefixes.
pub const FORM_PREFIXES: &[&str] = &["/login", "/logout", "/account/", "/admin/"];

/// One request to a page: its context, its session (if the cookie names a live one) and
/// the nonce of the page it will get.
pub struct Visit {
    ctx: EventContext,
    headers: HeaderMap,
    https: bool,
    client: String,
    query: Option<String>,
    session: Option<BrowserSession>,
    nonce: String,
    now: i64,
}

impl FromRequestParts<Pages> for Visit {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, pages: &Pages) -> Result<Self, Response> {
        let client_ip = parts.extensions.get::<ClientIp>();
        let now = pages.clock.now_ms();
        let mut visit = Self {
            ctx: EventContext::from_parts(parts),
            headers: parts.headers.clone(),
            https: client_ip.is_some_and(|c| c.https),
            client: client_ip.map_or_else(|| "unknown".to_owned(), |c| c.key().to_string()),
            query: parts.uri.query().map(str::to_owned),
            session: None,
            nonce: new_token(),
            now,
        };
        if let Some(id) = session::cookie_id(&parts.headers) {
            visit.session = match pages.0.store.load(&id, now).await {
                Ok(found) => found,
                Err(e) => return Err(visit.failure(AppError::from(e))),
            };
        }
        Ok(visit)
    }
}

/// A signed-in visit: the session and the account as stored now.
pub struct Signed {
    session: BrowserSession,
    user: User,
    /// A replacement id to hand out with the response (the role changed).
    cookie: Option<String>,
}

impl Signed {
    fn csrf(&self, pages: &Pages) -> String {
        pages.0.store.keys().csrf_token(&self.session.id)
    }

    fn is_admin(&self) -> bool {
        self.user.role == crate::domain::user::Role::Admin
    }

    fn family(&self) -> Option<uuid::Uuid> {
        self.session.signed_in.map(|s| s.family_id)
    }

    /// `response` with the replacement cookie, if there is one.
    fn finish(&self, response: Response) -> Response {
        with_cookie(response, self.cookie.as_deref())
    }
}

/// A URL-encoded form body (its content type was checked by the body limits).
pub struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Pages {
    fn store(&self) -> &SessionStore {
        &self.0.store
    }

    /// The account signed in to the visit's session, if it is still allowed to be: the
    /// account active and the session family not revoked or expired (checked in the
    /// database on every request, so logout, deactivation and password changes elsewhere
    /// take effect at once). A dead signed-in session is deleted.
    async fn signed_in(&self, visit: &Visit) -> Result<Option<Signed>, AppError> {
        let Some(session) = visit.session.clone() else {
            return Ok(None);
        };
        let Some(who) = session.signed_in else {
            return Ok(None);
        };
        let status = users::auth_status(&self.db, who.user_id, who.family_id).await?;
        let live =
            status.filter(|s| s.user.active && s.revoked_at.is_none() && s.expires_at > visit.now);
        let Some(status) = live else {
            self.store().destroy(&session).await?;
            return Ok(None);
        };
        let role = status.user.role.as_str();
        if session.role.as_deref() == Some(role) {
            return Ok(Some(Signed {
                session,
                user: status.user,
                cookie: None,
            }));
        }
        // The role changed since this id was issued: a privilege change, a new id.
        let fresh = self
            .store()
            .rotate(
                &session,
                Rotation::Privilege(Some(role)),
                &visit.ctx,
                visit.now,
            )
            .await?;
        Ok(Some(Signed {
            cookie: Some(session::set_cookie(&fresh.id)),
            session: fresh,
            user: status.user,
        }))
    }

    /// The CSRF checks of a form POST ([`csrf`]); a refusal is answered and recorded.
    async fn check_csrf(&self, visit: &Visit, form: &Form) -> Result<(), Response> {
        let allowed = csrf::allowed_origins(&self.0.public_origin, &visit.headers, visit.https);
        let verdict = csrf::check_source(&visit.headers, &allowed).and_then(|()| {
            csrf::check_token(
                self.store().keys(),
                visit.session.as_ref(),
                form.get("csrf_token"),
            )
        });
        let Err(refusal) = verdict else {
            return Ok(());
        };
        let user = visit
            .session
            .as_ref()
            .and_then(|s| s.signed_in)
            .map(|s| s.user_id);
        self.events
            .at(&visit.ctx)
            .record(
                EventKind::CsrfFailed,
                user,
                json!({"reason": refusal.as_str()}),
            )
            .await;
        let problem = Problem::new(StatusCode::FORBIDDEN, "csrf_failed")
            .with_detail("The form could not be verified; reload the page and send it again.");
        Err(if prefers_html(&visit.headers) {
            visit.error_page(&problem)
        } else {
            problem.into_response()
        })
    }

    /// A form POST of a signed-in account: the CSRF checks, then the session; without a
    /// signed-in session, a redirect to the login page.
    async fn signed_post(&self, visit: &Visit, form: &Form) -> Result<Signed, Response> {
        self.check_csrf(visit, form).await?;
        match self.signed_in(visit).await {
            Ok(Some(signed)) => Ok(signed),
            Ok(None) => Err(to_login()),
            Err(e) => Err(visit.failure(e)),
        }
    }

    /// A session rotated for a privilege change of the signed-in account.
    async fn rotate_privilege(&self, visit: &Visit, signed: &mut Signed) -> Result<(), AppError> {
        let fresh = self
            .store()
            .rotate(
                &signed.session,
                Rotation::Privilege(None),
                &visit.ctx,
                visit.now,
            )
            .await?;
        signed.cookie = Some(session::set_cookie(&fresh.id));
        signed.session = fresh;
        Ok(())
    }
}

impl Visit {
    /// `template` as this visit's page: HTML with the visit's nonce in its CSP.
    fn render(&self, status: StatusCode, template: &impl Template) -> Response {
        match template.render() {
            Ok(html) => {
                let mut response = (status, html).into_response();
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                if let Ok(csp) = HeaderValue::from_str(&csp(&self.nonce)) {
                    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
                }
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                if status.is_client_error() || status.is_server_error() {
                    response.extensions_mut().insert(RenderedError);
                }
                response
            }
            Err(e) => AppError::Internal(anyhow::Error::new(e).context("rendering a page"))
                .into_response(),
        }
    }

    /// The HTML page of `problem`: its status, code and fixed detail.
    fn error_page(&self, problem: &Problem) -> Response {
        let status = problem.status_code();
        let page = views::ErrorPage {
            nonce: &self.nonce,
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error"),
            detail: &problem.detail,
            code: &problem.code,
        };
        let mut response = self.render(status, &page);
        if let Some(seconds) = problem.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }

    /// `error` as an error page (its cause, for a 500, kept for the access log).
    fn failure(&self, error: AppError) -> Response {
        let original = error.into_response();
        let Some(problem) = original.extensions().get::<Problem>().cloned() else {
            return original;
        };
        let mut page = self.error_page(&problem);
        if let Some(cause) = original.extensions().get::<InternalCause>().cloned() {
            page.extensions_mut().insert(cause);
        }
        page
    }

    /// The notice named by the `done` query parameter (fixed texts only, never echoed).
    fn notice(&self, texts: &[(&str, &'static str)]) -> Option<&'static str> {
        let query = self.query.as_deref()?;
        let done = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "done")?
            .1;
        texts
            .iter()
            .find(|(k, _)| *k == done)
            .map(|(_, text)| *text)
    }
}

/// The policy of a page with `nonce`.
fn csp(nonce: &str) -> String {
    format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self' data:; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// Whether the client asks for HTML before JSON (a browser navigating).
fn prefers_html(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match (accept.find("text/html"), accept.find("json")) {
        (Some(html), Some(json)) => html < json,
        (Some(_), None) => true,
        _ => false,
    }
}

/// 303 to `path` (after a form POST, the browser GETs the result).
fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

fn to_login() -> Response {
    see_other("/login")
}

/// `response` with `Set-Cookie: cookie`, if given.
fn with_cookie(mut response: Response, cookie: Option<&str>) -> Response {
    if let Some(value) = cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The time stamp `ms` (Unix milliseconds) as RFC 3339 UTC, seconds precision.
fn timestamp(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_navigation_prefers_html_and_an_api_client_does_not() {
        let mut h = HeaderMap::new();
        assert!(!prefers_html(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        assert!(prefers_html(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/problem+json, text/html"),
        );
        assert!(!prefers_html(&h));
    }

    #[test]
    fn the_policy_names_the_nonce_and_allows_nothing_else_inline() {
        let policy = csp("abc");
        assert!(policy.starts_with("default-src 'none';"));
        assert!(policy.contains("style-src 'nonce-abc'"));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(policy.contains("form-action 'self'"));
        assert!(policy.contains("base-uri 'none'"));
        assert!(!policy.contains("unsafe"));
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
    }
}
