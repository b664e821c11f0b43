//! API.md §4: access-token verification (forgeries refused), refresh rotation and reuse
//! detection, revocation on the very next request.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::{
    accounts::{Session, refresh_cookie},
    harness::{TestApp, eventually, problem},
};

fn signing_key(app: &TestApp) -> (String, EncodingKey) {
    let entry = std::fs::read_dir(&app.keys_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pem"))
        .max_by_key(|e| e.file_name())
        .unwrap();
    let kid = entry
        .path()
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let pem = std::fs::read(entry.path()).unwrap();
    (kid, EncodingKey::from_ed_pem(&pem).unwrap())
}

fn claims(app: &TestApp, session: &Session) -> Value {
    let now = app.clock.now_secs();
    json!({
        "iss": app.state.config.public_url, "aud": "rampart", "sub": session.user_id(),
        "sid": session.body["session_id"].clone(), "role": "admin",
        "iat": now, "nbf": now, "exp": now + 600, "jti": "forged",
    })
}

fn session_id(app_session: &Session) -> String {
    let payload = app_session.access.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

async fn code_for(app: &TestApp, token: &str) -> (u16, String) {
    let response = app.get_bearer("/api/v1/me", token).await;
    let status = response.status().as_u16();
    let code = if status == 200 {
        String::new()
    } else {
        problem(response).await["code"].as_str().unwrap().to_owned()
    };
    (status, code)
}

#[tokio::test]
async fn forged_access_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let (_, _, mut session) = app.signed_in_user().await;
    session.body["session_id"] = Value::String(session_id(&session));
    assert_eq!(code_for(&app, &session.access).await, (200, String::new()));
    let (kid, key) = signing_key(&app);
    let header = |alg: Algorithm| {
        let mut h = Header::new(alg);
        h.kid = Some(kid.clone());
        h.typ = Some("at+jwt".into());
        h
    };
    let good =
        jsonwebtoken::encode(&header(Algorithm::EdDSA), &claims(&app, &session), &key).unwrap();
    assert_eq!(
        code_for(&app, &good).await.0,
        200,
        "a correctly signed token passes"
    );

    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
        b64(&claims(&app, &session))
    );
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let x = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let hs256 = jsonwebtoken::encode(
        &header(Algorithm::HS256),
        &claims(&app, &session),
        &EncodingKey::from_secret(&x),
    )
    .unwrap();
    let mut unknown_kid = header(Algorithm::EdDSA);
    unknown_kid.kid = Some("k-not-a-key".into());
    let unknown_kid = jsonwebtoken::encode(&unknown_kid, &claims(&app, &session), &key).unwrap();
    let mut parts: Vec<String> = session.access.split('.').map(str::to_owned).collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    payload["role"] = json!("admin");
    parts[1] = b64(&payload);
    let tampered = parts.join(".");
    let mut wrong_aud = claims(&app, &session);
    wrong_aud["aud"] = json!("someone-else");
    let wrong_aud = jsonwebtoken::encode(&header(Algorithm::EdDSA), &wrong_aud, &key).unwrap();
    let mut wrong_iss = claims(&app, &session);
    wrong_iss["iss"] = json!("https://evil.example.com");
    let wrong_iss = jsonwebtoken::encode(&header(Algorithm::EdDSA), &wrong_iss, &key).unwrap();

    for (name, token) in [
        ("none", none),
        ("hs256", hs256),
        ("kid", unknown_kid),
        ("tampered", tampered),
        ("aud", wrong_aud),
        ("iss", wrong_iss),
        ("junk", "a.b.c".into()),
    ] {
        assert_eq!(
            code_for(&app, &token).await,
            (401, "invalid_token".to_owned()),
            "{name}"
        );
    }
    // One client's repeats fold into its first row (API.md §7); the count is written when
    // the window closes.
    app.clock.advance(Duration::from_secs(61));
    let admin = app.signed_in_admin().await.access;
    eventually("the folded token_invalid count", || async {
        let events: Value = app
            .get_bearer("/api/v1/admin/security-events?type=token_invalid", &admin)
            .await
            .json()
            .await
            .unwrap();
        let items = events["items"].as_array().unwrap();
        let seen: u64 = items
            .iter()
            .map(|e| 1 + e["details"]["repeats"].as_u64().unwrap_or(0))
            .sum();
        (seen >= 7).then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn an_expired_token_gets_token_expired() {
    let app = TestApp::spawn().await;
    let (_, _, session) = app.signed_in_user().await;
    app.clock.advance(Duration::from_secs(15 * 60 - 5));
    assert_eq!(code_for(&app, &session.access).await.0, 200);
    app.clock.advance(Duration::from_secs(40));
    assert_eq!(
        code_for(&app, &session.access).await,
        (401, "token_expired".to_owned())
    );
    app.stop().await;
}

#[tokio::test]
async fn logout_all_password_change_and_deactivation_take_effect_at_once() {
    let app = TestApp::spawn().await;
    let (_, _, session) = app.signed_in_user().await;
    assert_eq!(
        app.post_bearer("/api/v1/auth/logout-all", &session.access, None)
            .await
            .status(),
        204
    );
    assert_eq!(code_for(&app, &session.access).await.0, 401);
    assert_eq!(app.refresh(&session.refresh).await.status(), 401);

    let (_, _, victim) = app.signed_in_user().await;
    let admin = app.signed_in_admin().await;
    let response = app
        .client
        .patch(app.url(&format!("/api/v1/admin/users/{}", victim.user_id())))
        .bearer_auth(&admin.access)
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(code_for(&app, &victim.access).await.0, 401);
    assert_eq!(app.refresh(&victim.refresh).await.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn a_rotated_refresh_token_presented_again_revokes_the_family() {
    let app = TestApp::spawn().await;
    let (_, _, session) = app.signed_in_user().await;
    let first = app.refresh(&session.refresh).await;
    assert_eq!(first.status(), 200);
    let newest = refresh_cookie(&first).unwrap();
    app.secret(&newest);
    assert_ne!(newest, session.refresh);
    let body: Value = first.json().await.unwrap();
    let newest_access = body["access_token"].as_str().unwrap().to_owned();
    app.secret(&newest_access);

    let reuse = app.refresh(&session.refresh).await;
    assert_eq!(reuse.status(), 401);
    assert!(refresh_cookie(&reuse).is_none(), "the cookie is cleared");
    assert_eq!(problem(reuse).await["code"], "token_reused");
    // The whole family is dead: its newest refresh token and its access tokens too.
    assert_eq!(app.refresh(&newest).await.status(), 401);
    assert_eq!(code_for(&app, &newest_access).await.0, 401);
    app.stop().await;
}

#[tokio::test]
async fn within_the_grace_a_concurrent_second_refresh_succeeds_once() {
    let app = TestApp::spawn_with(&[("RAMPART_REFRESH_GRACE", "5s")]).await;
    let (_, _, session) = app.signed_in_user().await;
    let (a, b) = tokio::join!(app.refresh(&session.refresh), app.refresh(&session.refresh));
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    for response in [&a, &b] {
        app.secret(&refresh_cookie(response).unwrap());
    }
    // A third presentation is reuse, grace or not.
    assert_eq!(
        problem(app.refresh(&session.refresh).await).await["code"],
        "token_reused"
    );
    app.stop().await;
}

#[tokio::test]
async fn logout_revokes_the_family_and_clears_the_cookie() {
    let app = TestApp::spawn().await;
    let (_, _, session) = app.signed_in_user().await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .header(
            "cookie",
            format!("__Secure-rampart_refresh={}", session.refresh),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let cleared = crate::accounts::refresh_set_cookie(&response).unwrap();
    assert!(cleared.contains("Max-Age=0"));
    assert_eq!(app.refresh(&session.refresh).await.status(), 401);
    assert_eq!(code_for(&app, &session.access).await.0, 401);
    let missing = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(missing).await["code"], "unauthenticated");
    app.stop().await;
}

#[tokio::test]
async fn jwks_publishes_public_keys_only() {
    let app = TestApp::spawn().await;
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    for key in keys {
        assert_eq!(
            (
                key["kty"].as_str(),
                key["crv"].as_str(),
                key["alg"].as_str()
            ),
            (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
        );
        assert!(key.get("d").is_none(), "private material");
        assert!(key["kid"].is_string());
    }
    app.stop().await;
}

#[tokio::test]
async fn after_a_key_rotation_new_tokens_use_the_new_key_and_old_ones_still_verify() {
    let app = TestApp::spawn().await;
    let (email, password, before) = app.signed_in_user().await;
    let retention = rampart::auth::tokens::key_retention(app.state.config.auth.access_token_ttl);
    let now = time::OffsetDateTime::from_unix_timestamp(app.clock.now_secs()).unwrap();
    let kid = rampart::auth::keys::KeyRing::rotate(&app.keys_dir, now, retention).unwrap();
    app.state.tokens.reload(&app.keys_dir, now, retention);

    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    let after = app.login(&email, &password).await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(after.access.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], kid);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(
        code_for(&app, &before.access).await.0,
        200,
        "the previous key still verifies"
    );
    app.stop().await;
}

// The cached signature check and the batched revocation check (issue 10): a token seen
// before skips its signature, never the revocation check, its times or its exact bytes.

async fn set_account(app: &TestApp, admin: &Session, user: uuid::Uuid, change: Value) {
    let response = app
        .client
        .patch(app.url(&format!("/api/v1/admin/users/{user}")))
        .bearer_auth(&admin.access)
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The token with its payload edited, under its original header and signature.
fn with_payload(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let pieces: Vec<&str> = token.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(pieces[1]).unwrap()).unwrap();
    edit(&mut payload);
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    format!("{}.{payload}.{}", pieces[0], pieces[2])
}

#[tokio::test]
async fn a_cached_token_of_a_revoked_family_is_refused_on_the_very_next_request() {
    let app = TestApp::spawn().await;
    let (_, _, session) = app.signed_in_user().await;
    for _ in 0..3 {
        assert_eq!(code_for(&app, &session.access).await.0, 200);
    }
    assert_eq!(app.state.tokens.cache().len(), 1, "the token is cached");
    let logout = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .header(
            "cookie",
            format!("__Secure-rampart_refresh={}", session.refresh),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    assert_eq!(
        code_for(&app, &session.access).await,
        (401, "invalid_token".to_owned())
    );
    app.stop().await;
}

#[tokio::test]
async fn a_cached_token_of_a_deactivated_account_is_refused_on_the_next_request() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in_admin().await;
    let (_, _, victim) = app.signed_in_user().await;
    for _ in 0..2 {
        assert_eq!(code_for(&app, &victim.access).await.0, 200);
    }
    set_account(&app, &admin, victim.user_id(), json!({"active": false})).await;
    assert_eq!(
        code_for(&app, &victim.access).await,
        (401, "invalid_token".to_owned())
    );
    // Reactivation does not bring the revoked sessions back.
    set_account(&app, &admin, victim.user_id(), json!({"active": true})).await;
    assert_eq!(code_for(&app, &victim.access).await.0, 401);
    app.stop().await;
}

#[tokio::test]
async fn a_role_change_applies_from_the_next_request_whatever_the_cached_token_says() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in_admin().await;
    let other = app.signed_in_admin().await;
    let admin_route = |s: &Session| {
        let token = s.access.clone();
        let app = &app;
        async move {
            app.get_bearer("/api/v1/admin/users", &token)
                .await
                .status()
                .as_u16()
        }
    };
    assert_eq!(admin_route(&other).await, 200);
    assert_eq!(admin_route(&other).await, 200);

    // Demoted: the token still claims `admin`; the stored role wins on the next request.
    set_account(&app, &admin, other.user_id(), json!({"role": "user"})).await;
    let refused = app.get_bearer("/api/v1/admin/users", &other.access).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(problem(refused).await["code"], "forbidden");
    let me: Value = app
        .get_bearer("/api/v1/me", &other.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "user");

    // Promoted again: the same token reaches the admin routes at once.
    set_account(&app, &admin, other.user_id(), json!({"role": "admin"})).await;
    assert_eq!(admin_route(&other).await, 200);
    app.stop().await;
}

#[tokio::test]
async fn a_tampered_token_is_refused_though_its_untampered_sibling_is_cached() {
    let app = TestApp::spawn().await;
    let (_, _, session) = app.signed_in_user().await;
    let (_, _, victim) = app.signed_in_user().await;
    assert_eq!(code_for(&app, &session.access).await.0, 200);
    assert_eq!(code_for(&app, &victim.access).await.0, 200);

    let forgeries = [
        with_payload(&session.access, |p| p["role"] = json!("admin")),
        // Someone else's account, and someone else's session, under a cached signature.
        with_payload(&session.access, |p| {
            p["sub"] = json!(victim.user_id());
        }),
        with_payload(&session.access, |p| {
            p["sub"] = json!(victim.user_id());
            p["sid"] = json!(session_id(&victim));
        }),
        with_payload(&session.access, |p| {
            p["exp"] = json!(p["exp"].as_i64().unwrap() + 86_400);
        }),
        // The victim's cached signature on our header and payload.
        format!(
            "{}.{}",
            session.access.rsplit_once('.').unwrap().0,
            victim.access.rsplit_once('.').unwrap().1
        ),
        session.access[..session.access.len() - 1].to_owned(),
        format!("{}A", session.access),
    ];
    for forged in &forgeries {
        assert_eq!(
            code_for(&app, forged).await,
            (401, "invalid_token".to_owned()),
            "{forged}"
        );
    }
    // The cache held only the two genuine tokens; they still pass.
    assert_eq!(app.state.tokens.cache().len(), 2);
    assert_eq!(code_for(&app, &session.access).await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn a_cached_token_expires_when_the_clock_moves_past_it() {
    let app = TestApp::spawn().await;
    let (_, _, session) = app.signed_in_user().await;
    assert_eq!(code_for(&app, &session.access).await.0, 200);
    assert_eq!(app.state.tokens.cache().len(), 1);
    // 15 minutes plus the 30 s leeway, then one second more.
    app.clock.advance(Duration::from_secs(15 * 60 + 30));
    assert_eq!(code_for(&app, &session.access).await.0, 200);
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(
        code_for(&app, &session.access).await,
        (401, "token_expired".to_owned())
    );
    app.stop().await;
}

/// `GET /me` with each session's token, eight times each, all at once: (the session's
/// user id, the status, the id the answer names).
async fn me_of_each(app: &TestApp, sessions: &[Session]) -> Vec<(String, u16, String)> {
    let requests = sessions
        .iter()
        .cycle()
        .take(sessions.len() * 8)
        .map(|s| async move {
            let response = app.get_bearer("/api/v1/me", &s.access).await;
            let status = response.status().as_u16();
            let id = if status == 200 {
                response.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            } else {
                String::new()
            };
            (s.user_id().to_string(), status, id)
        });
    futures_util::future::join_all(requests).await
}

#[tokio::test]
async fn concurrent_checks_in_one_batch_each_get_their_own_account_and_verdict() {
    let app = TestApp::spawn().await;
    let mut sessions = Vec::new();
    for _ in 0..6 {
        sessions.push(app.signed_in_user().await.2);
    }
    for (user, status, id) in me_of_each(&app, &sessions).await {
        assert_eq!((status, id), (200, user));
    }
    // One of them signs out everywhere; in the next concurrent round only it is refused.
    let gone = sessions[2].clone();
    let response = app
        .post_bearer("/api/v1/auth/logout-all", &gone.access, None)
        .await;
    assert_eq!(response.status(), 204);
    for (user, status, id) in me_of_each(&app, &sessions).await {
        if user == gone.user_id().to_string() {
            assert_eq!(status, 401);
        } else {
            assert_eq!((status, id), (200, user));
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn two_instances_on_one_database_refuse_a_logged_out_token_on_their_very_next_request() {
    let first = TestApp::spawn().await;
    let database_url = first.state.config.database_url.expose().to_owned();
    let keys_dir = first.keys_dir.display().to_string();
    let second = TestApp::spawn_with(&[
        ("DATABASE_URL", &database_url),
        ("RAMPART_KEYS_DIR", &keys_dir),
    ])
    .await;
    let (_, _, session) = first.signed_in_user().await;
    let (_, _, other) = first.signed_in_user().await;
    second.secret(&session.access);
    second.secret(&other.access);
    for app in [&first, &second] {
        for _ in 0..2 {
            assert_eq!(code_for(app, &session.access).await.0, 200);
            assert_eq!(code_for(app, &other.access).await.0, 200);
        }
    }

    // Logged out through the first instance: the second refuses the token next.
    let logout = first
        .client
        .post(first.url("/api/v1/auth/logout"))
        .header(
            "cookie",
            format!("__Secure-rampart_refresh={}", session.refresh),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    assert_eq!(code_for(&second, &session.access).await.0, 401);
    assert_eq!(code_for(&first, &session.access).await.0, 401);

    // Logged out everywhere through the second: the first refuses next.
    let response = second
        .post_bearer("/api/v1/auth/logout-all", &other.access, None)
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(code_for(&first, &other.access).await.0, 401);
    assert_eq!(code_for(&second, &other.access).await.0, 401);
    second.stop().await;
    first.stop().await;
}
