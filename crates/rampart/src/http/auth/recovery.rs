//! Registration, email verification and password recovery: the flows that answer the
//! same whatever the address, and whose work a mail carries on.

use super::*;

/// The routes of this file.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
}

/// `POST /auth/register` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
    name: String,
}

/// Create an account (unverified). The same answer for new and existing addresses; the
/// owner of an existing address gets a notice mail instead.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterBody,
    responses((status = 202, body = Message), (status = 400, description = "Validation failed"),
        (status = 429, description = "Too many registrations from this client (`RateLimit` fields, `Retry-After`)")))]
async fn register(
    State(state): State<AppState>,
    ctx: EventContext,
    ClientKey(client): ClientKey,
    ValidJson(body): ValidJson<RegisterBody>,
) -> Response {
    let mut applied = Applied::default();
    let decision = state.limits.register.check(&client, Mode::Take).await;
    applied.push(&state.limits.register, decision);
    if let Some(refused) = refuse(&state, &ctx, &applied, &client).await {
        return with_limits(Err(refused), &applied);
    }
    with_limits(register_account(&state, body).await, &applied)
}

async fn register_account(state: &AppState, body: RegisterBody) -> Result<Response, AppError> {
    let mut errors = Vec::new();
    let email = collect(EmailAddress::parse(&body.email, "email"), &mut errors);
    let name = collect(DisplayName::parse(&body.name), &mut errors);
    let password = match Password::parse_new(
        body.password.expose_secret().to_owned(),
        "password",
        email.as_ref().map_or("", |e| e.as_str()),
    ) {
        Ok(p) => Some(p),
        Err(mut e) => {
            errors.append(&mut e);
            None
        }
    };
    let (Some(email), Some(name), Some(password), true) =
        (email, name, password, errors.is_empty())
    else {
        return Err(AppError::Validation(errors));
    };
    // Hash on both paths: an existing address must cost the same time as a new one. The
    // account exists before the answer (a login right after it is told to verify, not
    // that the credentials are wrong); the token and the mail, which only one path would
    // pay for, are made after the answer, so neither their time nor their failure shows.
    let hash = state.hasher.hash(&password).await?;
    let created = users::create(
        &state.db,
        &users::NewUser {
            email: email.as_str(),
            name: name.as_str(),
            password_hash: &hash,
            role: Role::User,
            email_verified: false,
        },
        state.clock.now_ms(),
    )
    .await?;
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = mail_registration(&state, &email, created).await {
            tracing::error!(error = %format!("{e:#}"), "registration mail not sent");
        }
    });
    Ok(accepted(
        "If the address can be used, a confirmation mail is on its way.",
    ))
}

/// Mail the new account its verification link, or the owner of an existing address a
/// notice.
async fn mail_registration(
    state: &AppState,
    email: &EmailAddress,
    created: Option<User>,
) -> anyhow::Result<()> {
    let mail = match created {
        Some(user) => verification_mail(state, &user).await?,
        None => Email {
            to: email.as_str().to_owned(),
            subject: "Someone tried to sign up with your address".into(),
            text: format!(
                "Hello,\n\nsomeone tried to create a Rampart account with this address, which already has one.\nIf it was you, sign in, or reset your password here: {}/reset-password\nOtherwise you can ignore this mail.\n",
                state.config.public_url
            ),
        },
    };
    Ok(state.mailer.send(mail).await?)
}

/// Issue a verification token for `user` and write the mail that carries its link.
async fn verification_mail(state: &AppState, user: &User) -> Result<Email, sqlx::Error> {
    let token = new_token();
    one_time::issue(
        &state.db,
        Purpose::VerifyEmail,
        user.id,
        &token_hash(&token),
        state.clock.now_ms(),
        VERIFY_TOKEN_TTL_MS,
    )
    .await?;
    Ok(Email {
        to: user.email.clone(),
        subject: "Confirm your email address".into(),
        text: format!(
            "Hello {},\n\nconfirm your address for Rampart by opening this link within 24 hours:\n\n{}\n\nIf you did not sign up, ignore this mail.\n",
            user.name,
            link(state, "/verify-email", &token)
        ),
    })
}

/// A token from a mail link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    #[schema(value_type = String)]
    token: SecretString,
}

fn bad_mail_token() -> AppError {
    AppError::field("token", "is invalid, used or expired")
}

/// Confirm an address with the token from the mail link.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = TokenBody,
    responses((status = 200, body = Message), (status = 400, description = "Invalid, used or expired token")))]
async fn verify_email(
    State(state): State<AppState>,
    ValidJson(body): ValidJson<TokenBody>,
) -> Result<Json<Message>, AppError> {
    let token = body.token.expose_secret();
    if !looks_like_token(token) {
        return Err(bad_mail_token());
    }
    let user = one_time::consume(
        &state.db,
        Purpose::VerifyEmail,
        &token_hash(token),
        state.clock.now_ms(),
    )
    .await?
    .ok_or_else(bad_mail_token)?;
    users::mark_verified(&state.db, user, state.clock.now_ms()).await?;
    Ok(Json(Message {
        message: "Your email address is confirmed.",
    }))
}

/// An email address.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailBody {
    email: String,
}

/// Send a new confirmation link; always 202.
#[utoipa::path(post, path = "/api/v1/auth/resend-verification", tag = "auth", request_body = EmailBody,
    responses((status = 202, body = Message)))]
async fn resend_verification(
    State(state): State<AppState>,
    ValidJson(body): ValidJson<EmailBody>,
) -> Result<Response, AppError> {
    let email =
        EmailAddress::parse(&body.email, "email").map_err(|e| AppError::Validation(vec![e]))?;
    if let Some(creds) = users::credentials_by_email(&state.db, email.as_str()).await?
        && !creds.user.email_verified
        && creds.user.active
    {
        let mail = verification_mail(&state, &creds.user).await?;
        send_in_background(&state, mail);
    }
    Ok(accepted(
        "If the address needs confirming, a new link is on its way.",
    ))
}

/// Mail a password reset link; always 202.
#[utoipa::path(post, path = "/api/v1/auth/forgot-password", tag = "auth", request_body = EmailBody,
    responses((status = 202, body = Message),
        (status = 429, description = "Too many requests for this address, known or not (`Retry-After`); a client past 2 requests in 15 min is also slowed down")))]
async fn forgot_password(
    State(state): State<AppState>,
    ctx: EventContext,
    ClientKey(client): ClientKey,
    ValidJson(body): ValidJson<EmailBody>,
) -> Response {
    // Every request of the client counts towards its slow-down, whatever the address.
    let delay = state.limits.forgot_slow_down.delay(&client).await;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let email = match EmailAddress::parse(&body.email, "email") {
        Ok(email) => email,
        Err(e) => return AppError::Validation(vec![e]).into_response(),
    };
    // Counted alike for known and unknown addresses, so the 429 reveals nothing.
    let key = address_key(email.as_str());
    let mut applied = Applied::default();
    let limit = &state.limits.forgot;
    applied.push(limit, limit.check(&key, Mode::Take).await);
    if let Some(refused) = refuse(&state, &ctx, &applied, &key).await {
        return with_limits(Err(refused), &applied);
    }
    with_limits(send_reset_link(&state, &ctx, &email).await, &applied)
}

async fn send_reset_link(
    state: &AppState,
    ctx: &EventContext,
    email: &EmailAddress,
) -> Result<Response, AppError> {
    let user = users::credentials_by_email(&state.db, email.as_str())
        .await?
        .map(|c| c.user)
        .filter(|u| u.active);
    state
        .events
        .record(
            ctx,
            EventKind::PasswordResetRequested,
            user.as_ref().map(|u| u.id),
            json!({"known": user.is_some()}),
        )
        .await;
    if let Some(user) = user {
        let token = new_token();
        one_time::issue(
            &state.db,
            Purpose::ResetPassword,
            user.id,
            &token_hash(&token),
            state.clock.now_ms(),
            RESET_TOKEN_TTL_MS,
        )
        .await?;
        send_in_background(
            state,
            Email {
                to: user.email.clone(),
                subject: "Reset your password".into(),
                text: format!(
                    "Hello {},\n\nreset your Rampart password within 30 minutes with this link:\n\n{}\n\nIf you did not ask for this, ignore this mail; your password is unchanged.\n",
                    user.name,
                    link(state, "/reset-password", &token)
                ),
            },
        );
    }
    Ok(accepted(
        "If the address has an account, a reset link is on its way.",
    ))
}

/// `POST /auth/reset-password` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    #[schema(value_type = String)]
    token: SecretString,
    #[schema(value_type = String, format = Password)]
    new_password: SecretString,
}

/// Set a new password with the token from the reset mail; every session ends.
#[utoipa::path(post, path = "/api/v1/auth/reset-password", tag = "auth", request_body = ResetBody,
    responses((status = 200, body = Message), (status = 400, description = "Invalid token or weak password")))]
async fn reset_password(
    State(state): State<AppState>,
    ctx: EventContext,
    ValidJson(body): ValidJson<ResetBody>,
) -> Result<Json<Message>, AppError> {
    let token = body.token.expose_secret();
    if !looks_like_token(token) {
        return Err(bad_mail_token());
    }
    let hash = token_hash(token);
    let now = state.clock.now_ms();
    let user_id = one_time::peek(&state.db, Purpose::ResetPassword, &hash, now)
        .await?
        .ok_or_else(bad_mail_token)?;
    let user = users::get(&state.db, user_id)
        .await?
        .ok_or_else(bad_mail_token)?;
    let password = Password::parse_new(
        body.new_password.expose_secret().to_owned(),
        "new_password",
        &user.email,
    )
    .map_err(AppError::Validation)?;
    let new_hash = state.hasher.hash(&password).await?;
    // Single use: whoever consumes first wins.
    if one_time::consume(&state.db, Purpose::ResetPassword, &hash, now)
        .await?
        .is_none()
    {
        return Err(bad_mail_token());
    }
    users::set_password_hash(&state.db, user.id, &new_hash, now).await?;
    users::mark_verified(&state.db, user.id, now).await?;
    one_time::revoke_all(&state.db, Purpose::ResetPassword, user.id, now).await?;
    let revoked = sessions::revoke_all(&state.db, user.id, None, now).await?;
    state
        .events
        .record(
            &ctx,
            EventKind::PasswordResetCompleted,
            Some(user.id),
            json!({"sessions_revoked": revoked}),
        )
        .await;
    Ok(Json(Message {
        message: "Your password was changed; sign in again.",
    }))
}
