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
