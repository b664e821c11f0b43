//! `/login`, `/login/mfa`, `/logout`: the API's login service behind a form.
//!
//! `GET /login` opens a pre-login session (so the form has a CSRF token); a successful
//! login replaces it by a new id bound to the session family the login opened, so a
//! pre-login id planted by an attacker (fixation) is dead after the login.

use axum::{body::Bytes, extract::State, http::StatusCode, response::Response};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;

use super::{Form, Pages, Visit, see_other, session, views, with_cookie};
use crate::{
    auth::{
        login::{self, Login, LoginOutcome, SignedIn},
        random::token_hash,
        step_up::{self, MfaProof},
    },
    error::AppError,
    rate_limits::Limited,
    security_events::EventKind,
    store::sessions,
};

/// The texts of a failed login: the same for an unknown address and a wrong password.
const BAD_CREDENTIALS: &str = "The email address or password is not right.";
const BAD_CODE: &str = "That code is not right.";

/// `GET /login`: the form, in the visit's session or a new pre-login one.
pub async fn form(State(pages): State<Pages>, visit: Visit) -> Response {
    match pages.signed_in(&visit).await {
        Ok(Some(signed)) => return signed.finish(see_other("/account")),
        Ok(None) => {}
        Err(e) => return visit.failure(e),
    }
    let (session, cookie) = match &visit.session {
        Some(s) if s.signed_in.is_none() => (s.clone(), None),
        _ => match pages
            .store()
            .create(None, None, &visit.ctx, visit.now)
            .await
        {
            Ok(s) => {
                let cookie = session::set_cookie(&s.id);
                (s, Some(cookie))
            }
            Err(e) => return visit.failure(e.into()),
        },
    };
    let page = views::Login {
        nonce: &visit.nonce,
        csrf: pages.store().keys().csrf_token(&session.id),
        error: None,
    };
    with_cookie(visit.render(StatusCode::OK, &page), cookie.as_deref())
}

/// The login form again, with `error`, for the visit's (pre-login) session.
fn login_again(pages: &Pages, visit: &Visit, status: StatusCode, error: &str) -> Response {
    let csrf = visit
        .session
        .as_ref()
        .map(|s| pages.store().keys().csrf_token(&s.id))
        .unwrap_or_default();
    let page = views::Login {
        nonce: &visit.nonce,
        csrf,
        error: Some(error),
    };
    visit.render(status, &page)
}

/// The page for a failed step of a login: the form with a fixed text for the outcomes a
/// person must act on, an error page for the rest.
fn login_failed(pages: &Pages, visit: &Visit, error: AppError) -> Response {
    match error {
        AppError::InvalidCredentials => {
            login_again(pages, visit, StatusCode::UNAUTHORIZED, BAD_CREDENTIALS)
        }
        AppError::Validation(_) => login_again(
            pages,
            visit,
            StatusCode::BAD_REQUEST,
            "Enter an email address and a password.",
        ),
        AppError::EmailNotVerified => login_again(
            pages,
            visit,
            StatusCode::FORBIDDEN,
            "Confirm your email address first: follow the link in the mail we sent.",
        ),
        other => visit.failure(other),
    }
}

/// Replace the visit's session by one signed in as `signed`, and go to the account page.
async fn sign_in(pages: &Pages, visit: &Visit, signed: SignedIn) -> Response {
    let Some(old) = visit.session.as_ref() else {
        return super::to_login();
    };
    let who = session::SignedInAs {
        user_id: signed.user.id,
        family_id: signed.session_id,
    };
    let rotation = session::Rotation::Login(who, signed.user.role.as_str());
    match pages
        .store()
        .rotate(old, rotation, &visit.ctx, visit.now)
        .await
    {
        Ok(fresh) => with_cookie(see_other("/account"), Some(&session::set_cookie(&fresh.id))),
        Err(e) => visit.failure(e.into()),
    }
}

/// `POST /login`: email and password, through [`login::login`].
pub async fn submit(State(pages): State<Pages>, visit: Visit, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if let Err(refused) = pages.check_csrf(&visit, &form).await {
        return refused;
    }
    let password = SecretString::from(form.get("password").unwrap_or_default().to_owned());
    let attempt = match Login::parse(form.get("email").unwrap_or_default(), &password) {
        Ok(attempt) => attempt,
        Err(e) => return login_failed(&pages, &visit, e),
    };
    let outcome = login::login(&pages, &visit.ctx, &visit.client, attempt, visit.now).await;
    let Limited { result, applied } = outcome;
    let mut response = match result {
        Ok(LoginOutcome::SignedIn(signed)) => sign_in(&pages, &visit, signed).await,
        Ok(LoginOutcome::MfaRequired { mfa_token }) => {
            mfa_step(&pages, &visit, mfa_token.expose_secret(), None).await
        }
        Err(e) => login_failed(&pages, &visit, e),
    };
    applied.write(response.headers_mut());
    response
}

/// The second-factor form, the step-up token noted in the session (so it works only in
/// the browser that gave the password).
async fn mfa_step(pages: &Pages, visit: &Visit, mfa_token: &str, error: Option<&str>) -> Response {
    let Some(session) = visit.session.as_ref() else {
        return super::to_login();
    };
    if error.is_none()
        && let Err(e) = pages
            .store()
            .set_mfa_pending(session, Some(&token_hash(mfa_token)))
            .await
    {
        return visit.failure(e.into());
    }
    let page = views::LoginMfa {
        nonce: &visit.nonce,
        csrf: pages.store().keys().csrf_token(&session.id),
        mfa_token,
        error,
    };
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    visit.render(status, &page)
}

/// `POST /login/mfa`: the code, through [`step_up::verify_mfa`].
pub async fn second_factor(State(pages): State<Pages>, visit: Visit, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if let Err(refused) = pages.check_csrf(&visit, &form).await {
        return refused;
    }
    let token = form.get("mfa_token").unwrap_or_default().to_owned();
    let pending = visit
        .session
        .as_ref()
        .and_then(|s| s.mfa_pending.as_deref());
    if pending != Some(token_hash(&token).as_str()) {
        return login_again(&pages, &visit, StatusCode::UNAUTHORIZED, "Sign in again.");
    }
    let proof = MfaProof {
        mfa_token: SecretString::from(token.clone()),
        code: SecretString::from(form.get("code").unwrap_or_default().to_owned()),
    };
    let outcome = step_up::verify_mfa(&pages, &visit.ctx, &proof, visit.now).await;
    let Limited { result, applied } = outcome;
    let mut response = match result {
        Ok(signed) => sign_in(&pages, &visit, signed).await,
        Err(AppError::InvalidCredentials) => mfa_step(&pages, &visit, &token, Some(BAD_CODE)).await,
        Err(AppError::RateLimited { retry_after }) => {
            let mut r = login_again(
                &pages,
                &visit,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many wrong codes: sign in again later.",
            );
            r.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(retry_after),
            );
            r
        }
        Err(e) => login_failed(&pages, &visit, e),
    };
    applied.write(response.headers_mut());
    response
}

/// `POST /logout`: the session ends on the server (its row and, when signed in, its
/// session family), the cookie is cleared.
pub async fn logout(State(pages): State<Pages>, visit: Visit, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if let Err(refused) = pages.check_csrf(&visit, &form).await {
        return refused;
    }
    if let Some(session) = visit.session.as_ref() {
        if let Err(e) = pages.store().destroy(session).await {
            return visit.failure(e.into());
        }
        if let Some(who) = session.signed_in {
            match sessions::revoke_family(&pages.db, who.family_id, visit.now).await {
                Ok(true) => {
                    let details = json!({"session_id": who.family_id, "by": "page logout"});
                    pages
                        .events
                        .at(&visit.ctx)
                        .record(EventKind::SessionRevoked, Some(who.user_id), details)
                        .await;
                }
                Ok(false) => {}
                Err(e) => return visit.failure(e.into()),
            }
        }
    }
    with_cookie(see_other("/login"), Some(&session::clear_cookie()))
}
