//! `/account`: the signed-in account's profile, sessions, password and second factor,
//! each form through the service the API's `/me` routes use ([`crate::auth::account`]).

use axum::{body::Bytes, extract::State, http::StatusCode, response::Response};
use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

use super::{Form, Pages, Signed, Visit, qr, see_other, timestamp, to_login, views};
use crate::{
    auth::{
        account::{self, PasswordChange, ProfileChange},
        extract::CurrentUser,
        mfa,
    },
    error::AppError,
    store::users,
};

const NOTICES: &[(&str, &str)] = &[
    ("profile", "Your profile was saved."),
    (
        "password",
        "Your password was changed; your other sessions were signed out.",
    ),
    ("revoked", "The session was signed out."),
    ("mfa_off", "Two-factor authentication is off."),
];

/// `GET /account`.
pub async fn page(State(pages): State<Pages>, visit: Visit) -> Response {
    match pages.signed_in(&visit).await {
        Ok(Some(signed)) => {
            let notice = visit.notice(NOTICES);
            render(&pages, &visit, &signed, StatusCode::OK, notice, None).await
        }
        Ok(None) => to_login(),
        Err(e) => visit.failure(e),
    }
}

/// The account page of `signed` with an optional notice or error.
async fn render(
    pages: &Pages,
    visit: &Visit,
    signed: &Signed,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<String>,
) -> Response {
    let user_id = signed.user.id;
    let listed = match account::sessions(pages, user_id, visit.now).await {
        Ok(listed) => listed,
        Err(e) => return visit.failure(e),
    };
    let browser = match pages.store().browser_families(user_id).await {
        Ok(families) => families,
        Err(e) => return visit.failure(e.into()),
    };
    let current = signed.family();
    let sessions = listed
        .into_iter()
        .map(|s| views::SessionView {
            id: s.id.to_string(),
            created_at: timestamp(s.created_at),
            last_used_at: timestamp(s.last_used_at),
            ip: s.ip,
            user_agent: s.user_agent,
            kind: if browser.contains(&s.id) {
                "browser"
            } else {
                "API"
            },
            current: Some(s.id) == current,
        })
        .collect();
    let page = views::Account {
        nonce: &visit.nonce,
        csrf: signed.csrf(pages),
        is_admin: signed.is_admin(),
        user: &signed.user,
        sessions,
        notice,
        error,
    };
    signed.finish(visit.render(status, &page))
}

/// What a failed form leads to: its fields' messages on the account page (fixed texts),
/// the right status, or an error page for the unexpected.
async fn failed(pages: &Pages, visit: &Visit, signed: &Signed, error: AppError) -> Response {
    let (status, text) = match error {
        AppError::Validation(errors) => (
            StatusCode::BAD_REQUEST,
            errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        AppError::InvalidCredentials => (
            StatusCode::UNAUTHORIZED,
            "The password is not right.".to_owned(),
        ),
        AppError::Conflict(detail) => (StatusCode::CONFLICT, detail.to_owned()),
        AppError::NotFound => (
            StatusCode::NOT_FOUND,
            "That session does not exist or was already signed out.".to_owned(),
        ),
        other => return visit.failure(other),
    };
    render(pages, visit, signed, status, None, Some(text)).await
}

/// The signed-in account as the services take it.
fn current(signed: &Signed) -> CurrentUser {
    CurrentUser {
        user: signed.user.clone(),
        session_id: signed.family().unwrap_or_default(),
    }
}

/// `POST /account/profile`: name and bio (sanitised like `PATCH /me`).
pub async fn profile(State(pages): State<Pages>, visit: Visit, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let signed = match pages.signed_post(&visit, &form).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let change = match ProfileChange::parse(form.get("name"), form.get("bio")) {
        Ok(change) => change,
        Err(e) => return failed(&pages, &visit, &signed, e).await,
    };
    match account::update_profile(&pages, signed.user.id, change, visit.now).await {
        Ok(_) => signed.finish(see_other("/account?done=profile")),
        Err(e) => failed(&pages, &visit, &signed, e).await,
    }
}

/// `POST /account/password`: every other session ends; this one gets a new id.
pub async fn password(State(pages): State<Pages>, visit: Visit, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let mut signed = match pages.signed_post(&visit, &form).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let change = PasswordChange {
        current_password: SecretString::from(
            form.get("current_password").unwrap_or_default().to_owned(),
        ),
        new_password: SecretString::from(form.get("new_password").unwrap_or_default().to_owned()),
    };
    let changed =
        account::change_password(&pages, &visit.ctx, &current(&signed), change, visit.now).await;
    if let Err(e) = changed {
        return failed(&pages, &visit, &signed, e).await;
    }
    let others = pages
        .store()
        .destroy_user(signed.user.id, Some(&signed.session))
        .await;
    if let Err(e) = others {
        return visit.failure(e.into());
    }
    if let Err(e) = pages.rotate_privilege(&visit, &mut signed).await {
        return visit.failure(e);
    }
    signed.finish(see_other("/account?done=password"))
}

/// `POST /account/sessions/revoke`: sign out one session of the account (API or browser);
/// revoking this browser's own session signs it out.
pub async fn revoke(State(pages): State<Pages>, visit: Visit, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let signed = match pages.signed_post(&visit, &form).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let Some(id) = form
        .get("session_id")
        .and_then(|raw| Uuid::try_parse(raw).ok())
    else {
        return failed(&pages, &visit, &signed, AppError::NotFound).await;
    };
    if let Err(e) = account::revoke_session(&pages, &visit.ctx, signed.user.id, id, visit.now).await
    {
        return failed(&pages, &visit, &signed, e).await;
    }
    if let Err(e) = pages.store().destroy_family(id).await {
        return visit.failure(e.into());
    }
    if signed.family() == Some(id) {
        return super::with_cookie(to_login(), Some(&super::session::clear_cookie()));
    }
    signed.finish(see_other("/account?done=revoked"))
}

/// The enrolment page for the pending secret `secret`.
fn setup_page(
    pages: &Pages,
    visit: &Visit,
    signed: &Signed,
    secret: &str,
    uri: &str,
    error: Option<&str>,
) -> Response {
    let Some(qr_svg) = qr::svg(uri) else {
        return visit.failure(AppError::Internal(anyhow::anyhow!(
            "the otpauth URI does not fit a QR code"
        )));
    };
    let page = views::TotpSetup {
        nonce: &visit.nonce,
        csrf: signed.csrf(pages),
        is_admin: signed.is_admin(),
        qr_svg,
        secret,
        error,
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    signed.finish(visit.render(status, &page))
}

/// `POST /account/mfa/setup`: a new pending secret, shown as a QR code and as text.
pub async fn mfa_setup(State(pages): State<Pages>, visit: Visit, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let signed = match pages.signed_post(&visit, &form).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    match account::start_totp(&pages, &signed.user, visit.now).await {
        Ok(enrolment) => setup_page(
            &pages,
            &visit,
            &signed,
            enrolment.secret.expose_secret(),
            &enrolment.otpauth_uri,
            None,
        ),
        Err(e) => failed(&pages, &visit, &signed, e).await,
    }
}

/// `POST /account/mfa/confirm`: a current code turns MFA on; the recovery codes are shown
/// once, and the session gets a new id.
pub async fn mfa_confirm(State(pages): State<Pages>, visit: Visit, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let mut signed = match pages.signed_post(&visit, &form).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let code = SecretString::from(form.get("code").unwrap_or_default().to_owned());
    match account::confirm_totp(&pages, &visit.ctx, signed.user.id, &code, visit.now).await {
        Ok(codes) => {
            if let Err(e) = pages.rotate_privilege(&visit, &mut signed).await {
                return visit.failure(e);
            }
            let page = views::RecoveryCodes {
                nonce: &visit.nonce,
                csrf: signed.csrf(&pages),
                is_admin: signed.is_admin(),
                codes,
            };
            signed.finish(visit.render(StatusCode::OK, &page))
        }
        Err(AppError::Validation(_)) => {
            // The same pending secret again, with the message.
            let pending = match users::totp_state(&pages.db, signed.user.id).await {
                Ok(state) => state.pending,
                Err(e) => return visit.failure(e.into()),
            };
            let Some(secret) = pending else {
                return see_other("/account");
            };
            let uri = mfa::TotpSecret::from_base32(SecretString::from(secret.clone()))
                .ok()
                .and_then(|s| mfa::otpauth_uri(&s, "Rampart", &signed.user.email).ok());
            match uri {
                Some(uri) => setup_page(
                    &pages,
                    &visit,
                    &signed,
                    &secret,
                    &uri,
                    Some("That code is not right; try the current one."),
                ),
                None => see_other("/account"),
            }
        }
        Err(e) => failed(&pages, &visit, &signed, e).await,
    }
}

/// `POST /account/mfa/disable`: with the password; the session gets a new id.
pub async fn mfa_disable(State(pages): State<Pages>, visit: Visit, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let mut signed = match pages.signed_post(&visit, &form).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let password = SecretString::from(form.get("password").unwrap_or_default().to_owned());
    if let Err(e) =
        account::disable_totp(&pages, &visit.ctx, signed.user.id, &password, visit.now).await
    {
        return failed(&pages, &visit, &signed, e).await;
    }
    if let Err(e) = pages.rotate_privilege(&visit, &mut signed).await {
        return visit.failure(e);
    }
    signed.finish(see_other("/account?done=mfa_off"))
}
