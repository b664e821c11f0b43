//! The templates (`templates/*.html`) and the values they show. Every value is escaped by
//! askama; the one `|safe` is the QR code's SVG, which is our own markup.

use askama::Template;

use crate::domain::user::User;

/// An error page: status, fixed detail and the error code.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub nonce: &'a str,
    pub status: u16,
    pub title: &'a str,
    pub detail: &'a str,
    pub code: &'a str,
}

/// The login form.
#[derive(Template)]
#[template(path = "login.html")]
pub struct Login<'a> {
    pub nonce: &'a str,
    pub csrf: String,
    pub error: Option<&'a str>,
}

/// The second step of a login with MFA.
#[derive(Template)]
#[template(path = "login_mfa.html")]
pub struct LoginMfa<'a> {
    pub nonce: &'a str,
    pub csrf: String,
    pub mfa_token: &'a str,
    pub error: Option<&'a str>,
}

/// A session as the account page lists it.
pub struct SessionView {
    pub id: String,
    pub created_at: String,
    pub last_used_at: String,
    pub ip: String,
    pub user_agent: String,
    /// `browser` when a page session is signed in to it, else `API`.
    pub kind: &'static str,
    pub current: bool,
}

/// The account page.
#[derive(Template)]
#[template(path = "account.html")]
pub struct Account<'a> {
    pub nonce: &'a str,
    pub csrf: String,
    pub is_admin: bool,
    pub user: &'a User,
    pub sessions: Vec<SessionView>,
    pub notice: Option<&'a str>,
    pub error: Option<String>,
}

/// TOTP enrolment: the QR code, the secret and the confirmation form.
#[derive(Template)]
#[template(path = "totp_setup.html")]
pub struct TotpSetup<'a> {
    pub nonce: &'a str,
    pub csrf: String,
    pub is_admin: bool,
    pub qr_svg: String,
    pub secret: &'a str,
    pub error: Option<&'a str>,
}

/// The recovery codes, shown once.
#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodes<'a> {
    pub nonce: &'a str,
    pub csrf: String,
    pub is_admin: bool,
    pub codes: Vec<String>,
}

/// A security event as the admin page lists it.
pub struct EventView {
    pub occurred_at: String,
    pub kind: String,
    pub user_id: String,
    pub ip: String,
    pub route: String,
    pub details: String,
}

/// The admin page.
#[derive(Template)]
#[template(path = "admin.html")]
pub struct Admin<'a> {
    pub nonce: &'a str,
    pub csrf: String,
    pub is_admin: bool,
    pub notice: Option<&'a str>,
    pub error: Option<String>,
    pub q: String,
    pub users: Vec<User>,
    pub users_total: i64,
    pub users_page: u32,
    pub users_next: Option<u32>,
    pub event_type: String,
    pub event_user: String,
    pub events: Vec<EventView>,
    pub events_total: i64,
    pub events_page: u32,
    pub events_next: Option<u32>,
}
