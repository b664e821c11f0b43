//! API.md §4: registration, verification, login, password flows, profile, sessions.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{
    accounts::{fresh_email, refresh_set_cookie, strong_password},
    harness::{TestApp, problem},
};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn registering_a_new_and_an_existing_address_look_identical() {
    // 41 registrations from one client: past the default limit, which is not under test.
    let app = TestApp::spawn_alone_with(&[("RAMPART_RATE_LIMIT_REGISTER", "100/1h")]).await;
    let taken = fresh_email();
    app.verified_user(&taken, &strong_password()).await;

    let mut new_times = Vec::new();
    let mut taken_times = Vec::new();
    let mut bodies = Vec::new();
    for _ in 0..20 {
        for (address, times) in [
            (fresh_email(), &mut new_times),
            (taken.clone(), &mut taken_times),
        ] {
            let started = Instant::now();
            let response = app.register(&address, &strong_password(), "Someone").await;
            times.push(started.elapsed());
            assert_eq!(response.status(), 202);
            bodies.push(response.text().await.unwrap());
        }
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "bodies differ");
    let (new, old) = (median(new_times), median(taken_times));
    let ratio = new.as_secs_f64() / old.as_secs_f64();
    assert!(
        (0.75..=1.25).contains(&ratio),
        "median new {new:?} vs existing {old:?}"
    );
    // The owner of the taken address was told, without a verification link.
    let mails = app.wait_for_mails(&taken, 21).await;
    assert!(
        mails[1..]
            .iter()
            .all(|m| m.contains("already has one") && !m.contains("verify-email"))
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_identical_responses() {
    // 40 failures from one client, 20 on one account: past the default limits (tested in
    // rate_limits.rs), which would answer 429 here.
    let app = TestApp::spawn_alone_with(&[
        ("RAMPART_RATE_LIMIT_LOGIN_IP", "100/15m"),
        ("RAMPART_RATE_LIMIT_LOGIN_ACCOUNT", "100/15m"),
    ])
    .await;
    let email = fresh_email();
    app.verified_user(&email, &strong_password()).await;
    let mut unknown_times = Vec::new();
    let mut wrong_times = Vec::new();
    let mut bodies = Vec::new();
    for _ in 0..20 {
        for (address, times) in [
            (fresh_email(), &mut unknown_times),
            (email.clone(), &mut wrong_times),
        ] {
            let wrong = strong_password();
            app.secret(&wrong);
            let started = Instant::now();
            let response = app
                .post(
                    "/api/v1/auth/login",
                    json!({"email": address, "password": wrong}),
                )
                .await;
            times.push(started.elapsed());
            assert_eq!(response.status(), 401);
            let mut body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], "invalid_credentials");
            body["request_id"] = Value::Null;
            bodies.push(body);
        }
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    let (unknown, wrong) = (median(unknown_times), median(wrong_times));
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    assert!(
        (0.75..=1.25).contains(&ratio),
        "median unknown {unknown:?} vs wrong {wrong:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_new_account_must_verify_its_address_before_login() {
    let app = TestApp::spawn().await;
    let (email, password) = (fresh_email(), strong_password());
    assert_eq!(app.register(&email, &password, "Ada").await.status(), 202);
    let response = app
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(problem(response).await["code"], "email_not_verified");
    // A wrong password on an unverified account reveals nothing about verification.
    let response = app
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": strong_password()}),
        )
        .await;
    assert_eq!(problem(response).await["code"], "invalid_credentials");

    let token = app.mailed_token(&email, "/verify-email", 1).await;
    assert_eq!(
        app.post("/api/v1/auth/verify-email", json!({"token": token}))
            .await
            .status(),
        200
    );
    // Single use.
    let again = app
        .post("/api/v1/auth/verify-email", json!({"token": token}))
        .await;
    assert_eq!(again.status(), 400);
    let session = app.login(&email, &password).await;
    assert_eq!(session.body["token_type"], "Bearer");
    assert_eq!(session.body["expires_in"], 900);
    assert_eq!(session.body["user"]["email_verified"], true);
    app.stop().await;
}

#[tokio::test]
async fn weak_passwords_are_refused_with_the_rule_that_failed() {
    let app = TestApp::spawn().await;
    let cases = [
        ("short", "alice@example.com"),
        ("password1234", "bob@example.com"),
        ("aaaaaaaaaaaaaaaa", "carol@example.com"),
        ("dave-lumberjack-2024!", "lumberjack@example.com"),
    ];
    for (password, email) in cases {
        let response = app.register(email, password, "X").await;
        assert_eq!(response.status(), 400, "{password}");
        let body = problem(response).await;
        assert_eq!(body["errors"][0]["field"], "password");
        assert!(!body.to_string().contains(password));
    }
    let response = app.post("/api/v1/auth/register", json!({"email": "x@example.com", "password": strong_password(), "name": "X", "role": "admin"})).await;
    assert_eq!(problem(response).await["errors"][0]["field"], "role");
    app.stop().await;
}

#[tokio::test]
async fn login_sets_a_strict_refresh_cookie_and_me_shows_no_secret() {
    let app = TestApp::spawn().await;
    let (email, password) = (fresh_email(), strong_password());
    app.verified_user(&email, &password).await;
    let response = app
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await;
    let cookie = refresh_set_cookie(&response).unwrap();
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/api/v1/auth",
        "Max-Age=604800",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    app.secret(token);
    let me: Value = app
        .get_bearer("/api/v1/me", token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], email);
    for key in [
        "id",
        "name",
        "bio",
        "role",
        "active",
        "email_verified",
        "mfa_enabled",
        "created_at",
    ] {
        assert!(me.get(key).is_some(), "{key}");
    }
    let text = me.to_string();
    assert!(!text.contains("argon2") && !text.contains("password") && !text.contains("totp"));
    assert_eq!(app.get("/api/v1/me").await.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn a_legacy_bcrypt_hash_logs_in_and_is_rehashed_to_argon2id() {
    let app = TestApp::spawn().await;
    let (email, password) = (fresh_email(), strong_password());
    let id = app.verified_user(&email, &strong_password()).await;
    let legacy = bcrypt::hash(&password, 4).unwrap();
    rampart::store::users::set_password_hash(&app.db, id, &legacy, app.clock.now_ms())
        .await
        .unwrap();
    app.login(&email, &password).await;
    let stored = rampart::store::users::credentials_by_id(&app.db, id)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    app.login(&email, &password).await;
    app.stop().await;
}

#[tokio::test]
async fn forgot_password_always_answers_202_and_reset_ends_every_session() {
    let app = TestApp::spawn().await;
    let (email, _password, session) = app.signed_in_user().await;
    let known = app
        .post("/api/v1/auth/forgot-password", json!({"email": email}))
        .await;
    let unknown = app
        .post(
            "/api/v1/auth/forgot-password",
            json!({"email": fresh_email()}),
        )
        .await;
    assert_eq!(
        (known.status().as_u16(), unknown.status().as_u16()),
        (202, 202)
    );
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
    let token = app.mailed_token(&email, "/reset-password", 2).await;

    let weak = app
        .post(
            "/api/v1/auth/reset-password",
            json!({"token": token, "new_password": "short"}),
        )
        .await;
    assert_eq!(weak.status(), 400);
    let new_password = strong_password();
    app.secret(&new_password);
    let reset = app
        .post(
            "/api/v1/auth/reset-password",
            json!({"token": token, "new_password": new_password}),
        )
        .await;
    assert_eq!(reset.status(), 200);
    assert_eq!(
        app.get_bearer("/api/v1/me", &session.access).await.status(),
        401
    );
    assert_eq!(app.refresh(&session.refresh).await.status(), 401);
    let reused = app
        .post(
            "/api/v1/auth/reset-password",
            json!({"token": token, "new_password": strong_password()}),
        )
        .await;
    assert_eq!(reused.status(), 400);
    app.login(&email, &new_password).await;
    app.stop().await;
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session() {
    let app = TestApp::spawn().await;
    let (email, password, first) = app.signed_in_user().await;
    let second = app.login(&email, &password).await;
    let wrong = app
        .post_bearer(
            "/api/v1/auth/change-password",
            &second.access,
            Some(json!({"current_password": strong_password(), "new_password": strong_password()})),
        )
        .await;
    assert_eq!(wrong.status(), 401);
    let new_password = strong_password();
    app.secret(&new_password);
    let changed = app
        .post_bearer(
            "/api/v1/auth/change-password",
            &second.access,
            Some(json!({"current_password": password, "new_password": new_password})),
        )
        .await;
    assert_eq!(changed.status(), 204);
    assert_eq!(
        app.get_bearer("/api/v1/me", &first.access).await.status(),
        401
    );
    assert_eq!(
        app.get_bearer("/api/v1/me", &second.access).await.status(),
        200
    );
    app.login(&email, &new_password).await;
    app.stop().await;
}

#[tokio::test]
async fn the_bio_is_sanitized_and_the_profile_validated() {
    let app = TestApp::spawn().await;
    let (_, _, session) = app.signed_in_user().await;
    let bio = r#"<b>hi</b> <a href="https://example.com">site</a><script>alert(1)</script><img src=x onerror=alert(1)><a href="javascript:alert(1)">x</a>"#;
    let response = app
        .client
        .patch(app.url("/api/v1/me"))
        .bearer_auth(&session.access)
        .json(&json!({"name": "New Name", "bio": bio}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    let stored = me["bio"].as_str().unwrap();
    assert!(stored.contains("<b>hi</b>") && stored.contains(r#"href="https://example.com""#));
    for bad in ["<script", "onerror", "javascript:"] {
        assert!(!stored.contains(bad), "{stored}");
    }
    assert_eq!(me["name"], "New Name");
    let too_long = app
        .client
        .patch(app.url("/api/v1/me"))
        .bearer_auth(&session.access)
        .json(&json!({"bio": "x".repeat(501), "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(too_long.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn sessions_are_listed_and_revocable_by_their_owner_only() {
    let app = TestApp::spawn().await;
    let (email, password, first) = app.signed_in_user().await;
    let second = app.login(&email, &password).await;
    let (_, _, stranger) = app.signed_in_user().await;
    let list: Value = app
        .get_bearer("/api/v1/me/sessions", &first.access)
        .await
        .json()
        .await
        .unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
    let second_id = items.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let foreign = app
        .client
        .delete(app.url(&format!("/api/v1/me/sessions/{second_id}")))
        .bearer_auth(&stranger.access)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);
    assert_eq!(
        app.get_bearer("/api/v1/me", &second.access).await.status(),
        200
    );
    let own = app
        .client
        .delete(app.url(&format!("/api/v1/me/sessions/{second_id}")))
        .bearer_auth(&first.access)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 204);
    assert_eq!(
        app.get_bearer("/api/v1/me", &second.access).await.status(),
        401
    );
    app.stop().await;
}

#[tokio::test]
async fn a_whole_account_life_leaves_no_secret_in_the_logs() {
    let app = TestApp::spawn().await;
    let (email, password, session) = app.signed_in_user().await;
    let rotated = app.refresh(&session.refresh).await;
    app.secret(&crate::accounts::refresh_cookie(&rotated).unwrap());
    assert_eq!(
        app.refresh(&session.refresh).await.status(),
        401,
        "reuse is logged as an event"
    );
    app.post("/api/v1/auth/forgot-password", json!({"email": email}))
        .await;
    let token = app.mailed_token(&email, "/reset-password", 2).await;
    let new_password = strong_password();
    app.secret(&new_password);
    app.post(
        "/api/v1/auth/reset-password",
        json!({"token": token, "new_password": new_password}),
    )
    .await;
    let failed = app
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await;
    assert_eq!(failed.status(), 401);
    app.login(&email, &new_password).await;
    // The capture works: the events of this very test are in it.
    let logs = crate::logs::captured();
    for event in [
        "token_reused",
        "password_reset_completed",
        "login_failed",
        "login_succeeded",
    ] {
        assert!(logs.contains(event), "{event} not captured");
    }
    assert!(logs.contains(session.user_id().to_string().as_str()));
    // `stop` asserts that none of the secrets above is in any captured line.
    app.stop().await;
}
