//! Signing in and out: login with its MFA step-up, refresh rotation, logout, and password
//! change.

use super::*;

/// The routes of this file.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(mfa_verify))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(change_password))
}

/// `POST /auth/login` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

/// A signed-in session: the access token and the account; the refresh token is in the
/// cookie.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    user: UserBody,
}

/// The MFA step-up answer of a login.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaRequired {
    mfa_required: bool,
    mfa_token: String,
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in (refresh cookie set), or MFA required", body = TokenResponse),
        (status = 401, description = "invalid_credentials"),
        (status = 403, description = "email_not_verified"),
        (status = 429, description = "Too many failed logins for this account or from this client; even the right password waits (`Retry-After`)"),
        (status = 503, description = "Password hashing is saturated; retry later"),
    ))]
async fn login(
    State(state): State<AppState>,
    ctx: EventContext,
    ClientKey(client): ClientKey,
    ValidJson(body): ValidJson<LoginBody>,
) -> Response {
    let email = match EmailAddress::parse(&body.email, "email") {
        Ok(email) => email,
        Err(e) => return AppError::Validation(vec![e]).into_response(),
    };
    let account = address_key(email.as_str());
    let limits = &state.limits;
    // Failures only count, so the gate peeks; a locked account is 429 even with the right
    // password.
    let mut applied = peek_all(&[
        (&limits.login_ip, client.as_str()),
        (&limits.login_account, account.as_str()),
    ])
    .await;
    let refused_key = match applied.refused() {
        Some((policy, _)) if policy.name() == limits.login_ip.name() => client.as_str(),
        _ => account.as_str(),
    };
    if let Some(refused) = refuse(&state, &ctx, &applied, refused_key).await {
        return with_limits(Err(refused), &applied);
    }
    let result = sign_in(&state, &ctx, &email, body.password).await;
    if matches!(result, Ok(_) | Err(AppError::EmailNotVerified)) {
        // The password was right: the account's earlier failures were its owner's typos.
        // The client's count stays, so logging in to one account cannot clear the
        // failures spent guessing others.
        limits.login_account.forget(&account).await;
    }
    if matches!(result, Err(AppError::InvalidCredentials)) {
        // Counted once the answer is decided: a request abandoned before then never is.
        let by_ip = limits.login_ip.check(&client, Mode::Take).await;
        let by_account = limits.login_account.check(&account, Mode::Take).await;
        if by_account.allowed && by_account.remaining == 0 {
            let user = users::credentials_by_email(&state.db, email.as_str())
                .await
                .ok()
                .flatten()
                .map(|c| c.user.id);
            state
                .events
                .record(
                    &ctx,
                    EventKind::AccountLocked,
                    user,
                    json!({"email": email.as_str(), "retry_after_secs": by_account.reset.as_secs()}),
                )
                .await;
        }
        applied = Applied::default();
        applied.push(&limits.login_ip, by_ip);
        applied.push(&limits.login_account, by_account);
    }
    with_limits(result, &applied)
}

/// Check the password and open a session, or ask for the second factor.
async fn sign_in(
    state: &AppState,
    ctx: &EventContext,
    email: &EmailAddress,
    password: SecretString,
) -> Result<Response, AppError> {
    let password = Password::unchecked(password.expose_secret().to_owned());
    let creds = users::credentials_by_email(&state.db, email.as_str()).await?;
    let verified = if password.is_plausible() {
        state
            .hasher
            .verify(&password, creds.as_ref().map(|c| c.password_hash.as_str()))
            .await?
    } else {
        Verified::No
    };
    let (creds, rehash) = match (creds, verified) {
        (Some(creds), Verified::Yes { rehash }) if creds.user.active => (creds, rehash),
        (creds, _) => {
            let user_id = creds.map(|c| c.user.id);
            state
                .events
                .record(
                    ctx,
                    EventKind::LoginFailed,
                    user_id,
                    json!({"email": email.as_str()}),
                )
                .await;
            return Err(AppError::InvalidCredentials);
        }
    };
    if let Some(new_hash) = rehash {
        users::set_password_hash(&state.db, creds.user.id, &new_hash, state.clock.now_ms()).await?;
    }
    if !creds.user.email_verified {
        return Err(AppError::EmailNotVerified);
    }
    if creds.user.mfa_enabled {
        let token = new_token();
        one_time::issue(
            &state.db,
            Purpose::MfaLogin,
            creds.user.id,
            &token_hash(&token),
            state.clock.now_ms(),
            MFA_TOKEN_TTL_MS,
        )
        .await?;
        return Ok(Json(MfaRequired {
            mfa_required: true,
            mfa_token: token,
        })
        .into_response());
    }
    start_session(state, ctx, creds.user, "password").await
}

/// Open a session family and answer with tokens (login and MFA completion).
async fn start_session(
    state: &AppState,
    ctx: &EventContext,
    user: User,
    method: &str,
) -> Result<Response, AppError> {
    let now = state.clock.now_ms();
    let refresh = new_token();
    let auth = &state.config.auth;
    let family = sessions::create_family(
        &state.db,
        user.id,
        &token_hash(&refresh),
        &ctx.ip,
        &clean_user_agent(&ctx.user_agent),
        now,
        auth.refresh_token_ttl.as_millis() as i64,
        auth.session_max_age.as_millis() as i64,
    )
    .await?;
    state
        .events
        .record(
            ctx,
            EventKind::LoginSucceeded,
            Some(user.id),
            json!({"method": method, "session_id": family}),
        )
        .await;
    token_response(state, user, family, &refresh)
}

fn token_response(
    state: &AppState,
    user: User,
    family: Uuid,
    refresh: &str,
) -> Result<Response, AppError> {
    let (access, _claims) = state
        .tokens
        .issue(user.id, family, user.role.as_str(), state.clock.now_secs())
        .map_err(AppError::Internal)?;
    let body = TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: state.config.auth.access_token_ttl.as_secs(),
        user: UserBody::from(user),
    };
    let mut response = Json(body).into_response();
    set_refresh_cookie(
        &mut response,
        Some(refresh),
        state.config.auth.refresh_token_ttl.as_secs(),
    );
    Ok(response)
}

/// Set (or, with `None`, clear) the refresh cookie.
fn set_refresh_cookie(response: &mut Response, token: Option<&str>, max_age: u64) {
    let cookie = match token {
        Some(t) => format!(
            "{REFRESH_COOKIE}={t}; HttpOnly; Secure; SameSite=Strict; Path=/api/v1/auth; Max-Age={max_age}"
        ),
        None => format!(
            "{REFRESH_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/api/v1/auth; Max-Age=0"
        ),
    };
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn refresh_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| looks_like_token(v))
}

/// `POST /auth/mfa/verify` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaVerifyBody {
    #[schema(value_type = String)]
    mfa_token: SecretString,
    /// A 6-digit TOTP code or a recovery code.
    #[schema(value_type = String)]
    code: SecretString,
}

/// Complete a login that requires MFA.
#[utoipa::path(post, path = "/api/v1/auth/mfa/verify", tag = "auth", request_body = MfaVerifyBody,
    responses(
        (status = 200, description = "Signed in (refresh cookie set)", body = TokenResponse),
        (status = 401, description = "invalid_credentials"),
        (status = 429, description = "Too many wrong codes: the mfa_token is dead"),
    ))]
async fn mfa_verify(
    State(state): State<AppState>,
    ctx: EventContext,
    ValidJson(body): ValidJson<MfaVerifyBody>,
) -> Response {
    let mut applied = Applied::default();
    let result = verify_second_factor(&state, &ctx, &body, &mut applied).await;
    with_limits(result, &applied)
}

async fn verify_second_factor(
    state: &AppState,
    ctx: &EventContext,
    body: &MfaVerifyBody,
    applied: &mut Applied,
) -> Result<Response, AppError> {
    let token = body.mfa_token.expose_secret();
    if !looks_like_token(token) {
        return Err(AppError::InvalidCredentials);
    }
    let hash = token_hash(token);
    let now = state.clock.now_ms();
    let max_failures = i64::from(state.config.rate_limits.mfa.count);
    let Some(mfa_state) = one_time::mfa_state(&state.db, &hash, now).await? else {
        return Err(AppError::InvalidCredentials);
    };
    // Per token: its failures are counted in the database; past the limit it is dead.
    if mfa_state.failures >= max_failures {
        return Err(AppError::RateLimited {
            retry_after: (MFA_TOKEN_TTL_MS / 1000) as u64,
        });
    }
    if mfa_state.used {
        return Err(AppError::InvalidCredentials);
    }
    let user_id = mfa_state.user_id;
    // Per account, across every mfa_token of the account.
    let account = user_id.to_string();
    let limit = &state.limits.mfa_account;
    applied.push(limit, limit.check(&account, Mode::Peek).await);
    if let Some(refused) = refuse(state, ctx, applied, &account).await {
        return Err(refused);
    }
    let code = body.code.expose_secret();
    let accepted = check_second_factor(state, user_id, code, now).await?;
    if !accepted {
        let failures = one_time::record_failure(&state.db, &hash, max_failures, now).await?;
        *applied = Applied::default();
        applied.push(limit, limit.check(&account, Mode::Take).await);
        state
            .events
            .record(
                ctx,
                EventKind::MfaFailed,
                Some(user_id),
                json!({"failures": failures}),
            )
            .await;
        return Err(AppError::InvalidCredentials);
    }
    if one_time::consume(&state.db, Purpose::MfaLogin, &hash, now)
        .await?
        .is_none()
    {
        return Err(AppError::InvalidCredentials);
    }
    let user = users::get(&state.db, user_id)
        .await?
        .filter(|u| u.active)
        .ok_or(AppError::InvalidCredentials)?;
    start_session(state, ctx, user, "password+mfa").await
}

/// A TOTP code (once per time step) or an unused recovery code.
async fn check_second_factor(
    state: &AppState,
    user_id: Uuid,
    code: &str,
    now_ms: i64,
) -> Result<bool, AppError> {
    let totp = users::totp_state(&state.db, user_id).await?;
    let Some(secret) = totp.secret else {
        return Ok(false);
    };
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        let Ok(secret) = mfa::TotpSecret::from_base32(SecretString::from(secret)) else {
            tracing::error!(user_id = %user_id, "stored TOTP secret is unusable");
            return Ok(false);
        };
        let now = u64::try_from(now_ms / 1000).unwrap_or_default();
        return match mfa::verify_code(&secret, code, now, totp.last_step) {
            Some(step) => Ok(users::claim_totp_step(&state.db, user_id, step).await?),
            None => Ok(false),
        };
    }
    match mfa::normalise_recovery_code(code) {
        Some(normalised) => Ok(users::consume_recovery_code(
            &state.db,
            user_id,
            &mfa::hash_recovery_code(&normalised),
            now_ms,
        )
        .await?),
        None => Ok(false),
    }
}

/// Rotate the refresh token from the cookie.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    responses(
        (status = 200, description = "New access token and refresh cookie", body = TokenResponse),
        (status = 401, description = "unauthenticated, invalid_token, or token_reused (the session is revoked)"),
    ))]
async fn refresh(
    State(state): State<AppState>,
    ctx: EventContext,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Some(presented) = refresh_cookie(&headers) else {
        return Err(AppError::Unauthenticated);
    };
    let replacement = new_token();
    let auth = &state.config.auth;
    let outcome = sessions::rotate(
        &state.db,
        &token_hash(&presented),
        &token_hash(&replacement),
        state.clock.now_ms(),
        auth.refresh_token_ttl.as_millis() as i64,
        auth.refresh_grace.as_millis() as i64,
    )
    .await?;
    let cleared = |error: AppError| {
        let mut response = error.into_response();
        set_refresh_cookie(&mut response, None, 0);
        Ok(response)
    };
    match outcome {
        Rotation::Rotated { family_id, user_id } => {
            match users::get(&state.db, user_id).await?.filter(|u| u.active) {
                Some(user) => token_response(&state, user, family_id, &replacement),
                None => cleared(AppError::InvalidToken),
            }
        }
        Rotation::Reused { family_id, user_id } => {
            state
                .events
                .record(
                    &ctx,
                    EventKind::TokenReused,
                    Some(user_id),
                    json!({"session_id": family_id}),
                )
                .await;
            cleared(AppError::TokenReused)
        }
        Rotation::Invalid => {
            state
                .events
                .record(
                    &ctx,
                    EventKind::TokenInvalid,
                    None,
                    json!({"reason": "refresh token unknown, expired or revoked"}),
                )
                .await;
            cleared(AppError::InvalidToken)
        }
    }
}

/// End the session of the refresh cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204, description = "Signed out; cookie cleared")))]
async fn logout(
    State(state): State<AppState>,
    ctx: EventContext,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Some(presented) = refresh_cookie(&headers)
        && let Some((family, user)) =
            sessions::family_of(&state.db, &token_hash(&presented)).await?
        && sessions::revoke_family(&state.db, family, state.clock.now_ms()).await?
    {
        state
            .events
            .record(
                &ctx,
                EventKind::SessionRevoked,
                Some(user),
                json!({"session_id": family, "by": "logout"}),
            )
            .await;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_refresh_cookie(&mut response, None, 0);
    Ok(response)
}

/// End every session of the account.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Every session revoked"), (status = 401, description = "Not signed in")))]
async fn logout_all(
    State(state): State<AppState>,
    ctx: EventContext,
    current: CurrentUser,
) -> Result<Response, AppError> {
    let revoked =
        sessions::revoke_all(&state.db, current.user.id, None, state.clock.now_ms()).await?;
    state
        .events
        .record(
            &ctx,
            EventKind::SessionRevoked,
            Some(current.user.id),
            json!({"sessions": revoked, "by": "logout-all"}),
        )
        .await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_refresh_cookie(&mut response, None, 0);
    Ok(response)
}

/// `POST /auth/change-password` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    #[schema(value_type = String, format = Password)]
    current_password: SecretString,
    #[schema(value_type = String, format = Password)]
    new_password: SecretString,
}

/// Change the password; every other session ends.
#[utoipa::path(post, path = "/api/v1/auth/change-password", tag = "auth", request_body = ChangeBody, security(("bearer" = [])),
    responses((status = 204), (status = 400, description = "Weak password"), (status = 401, description = "Wrong current password")))]
async fn change_password(
    State(state): State<AppState>,
    ctx: EventContext,
    current: CurrentUser,
    ValidJson(body): ValidJson<ChangeBody>,
) -> Result<StatusCode, AppError> {
    let new = Password::parse_new(
        body.new_password.expose_secret().to_owned(),
        "new_password",
        &current.user.email,
    )
    .map_err(AppError::Validation)?;
    if !crate::http::me::current_password_matches(&state, current.user.id, &body.current_password)
        .await?
    {
        state
            .events
            .record(
                &ctx,
                EventKind::LoginFailed,
                Some(current.user.id),
                json!({"during": "change-password"}),
            )
            .await;
        return Err(AppError::InvalidCredentials);
    }
    let hash = state.hasher.hash(&new).await?;
    users::set_password_hash(&state.db, current.user.id, &hash, state.clock.now_ms()).await?;
    let now = state.clock.now_ms();
    let revoked =
        sessions::revoke_all(&state.db, current.user.id, Some(current.session_id), now).await?;
    state
        .events
        .record(
            &ctx,
            EventKind::PasswordChanged,
            Some(current.user.id),
            json!({"other_sessions_revoked": revoked}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_cookie_is_found_among_others_and_junk_is_ignored() {
        let token = new_token();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {REFRESH_COOKIE}={token}; c=d")).unwrap(),
        );
        assert_eq!(refresh_cookie(&headers), Some(token));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("__Secure-rampart_refresh=' OR 1=1 --"),
        );
        assert_eq!(refresh_cookie(&headers), None);
    }
}
