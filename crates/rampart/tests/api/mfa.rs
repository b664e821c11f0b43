//! API.md §4: TOTP enrolment, login step-up, recovery codes.

use serde_json::{Value, json};
use totp_rs::{Algorithm, Builder, Secret};

use crate::harness::{TestApp, problem};

fn code_at(secret: &str, unix: i64) -> String {
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(Secret::try_from_base32(secret.trim_end_matches('=')).unwrap())
        .build()
        .unwrap();
    totp.generate(u64::try_from(unix).unwrap()).to_string()
}

/// Enrol TOTP for a signed-in user; returns (secret, recovery codes).
async fn enrol(app: &TestApp, access: &str) -> (String, Vec<String>) {
    let setup: Value = app
        .post_bearer("/api/v1/me/mfa/totp/setup", access, None)
        .await
        .json()
        .await
        .unwrap();
    let secret = setup["secret"].as_str().unwrap().to_owned();
    app.secret(&secret);
    assert!(
        setup["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let wrong = app
        .post_bearer(
            "/api/v1/me/mfa/totp/confirm",
            access,
            Some(json!({"code": "000000"})),
        )
        .await;
    assert_eq!(wrong.status(), 400);
    let code = code_at(&secret, app.clock.now_secs());
    let confirmed = app
        .post_bearer(
            "/api/v1/me/mfa/totp/confirm",
            access,
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(confirmed.status(), 200);
    let body: Value = confirmed.json().await.unwrap();
    let codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    for c in &codes {
        app.secret(c);
    }
    (secret, codes)
}

async fn mfa_token(app: &TestApp, email: &str, password: &str) -> String {
    let response = app
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        crate::accounts::refresh_cookie(&response).is_none(),
        "no session before the second factor"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["mfa_required"], true);
    assert!(body.get("access_token").is_none());
    let token = body["mfa_token"].as_str().unwrap().to_owned();
    app.secret(&token);
    token
}

#[tokio::test]
async fn a_login_with_mfa_needs_a_fresh_totp_code() {
    let app = TestApp::spawn().await;
    let (email, password, session) = app.signed_in_user().await;
    let (secret, _) = enrol(&app, &session.access).await;
    // Next time step: the enrolment code's step is already used.
    app.clock.advance(std::time::Duration::from_secs(30));

    let token = mfa_token(&app, &email, &password).await;
    let wrong = app
        .post(
            "/api/v1/auth/mfa/verify",
            json!({"mfa_token": token, "code": "123456"}),
        )
        .await;
    assert_eq!(problem(wrong).await["code"], "invalid_credentials");
    let code = code_at(&secret, app.clock.now_secs());
    let ok = app
        .post(
            "/api/v1/auth/mfa/verify",
            json!({"mfa_token": token, "code": code}),
        )
        .await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    app.secret(body["access_token"].as_str().unwrap());
    assert_eq!(body["user"]["mfa_enabled"], true);

    // The same code again, with a fresh mfa_token: refused (once per time step).
    let token = mfa_token(&app, &email, &password).await;
    let replay = app
        .post(
            "/api/v1/auth/mfa/verify",
            json!({"mfa_token": token, "code": code}),
        )
        .await;
    assert_eq!(replay.status(), 401);
    // The mfa_token of a finished login cannot be used again.
    app.stop().await;
}

#[tokio::test]
async fn a_recovery_code_works_exactly_once() {
    let app = TestApp::spawn().await;
    let (email, password, session) = app.signed_in_user().await;
    let (_, codes) = enrol(&app, &session.access).await;
    let token = mfa_token(&app, &email, &password).await;
    let ok = app
        .post(
            "/api/v1/auth/mfa/verify",
            json!({"mfa_token": token, "code": codes[0]}),
        )
        .await;
    assert_eq!(ok.status(), 200);
    app.secret(
        ok.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap(),
    );
    let token = mfa_token(&app, &email, &password).await;
    let again = app
        .post(
            "/api/v1/auth/mfa/verify",
            json!({"mfa_token": token, "code": codes[0]}),
        )
        .await;
    assert_eq!(again.status(), 401);
    let other = app
        .post(
            "/api/v1/auth/mfa/verify",
            json!({"mfa_token": token, "code": codes[1].to_uppercase()}),
        )
        .await;
    assert_eq!(other.status(), 200);
    app.secret(
        other.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap(),
    );
    app.stop().await;
}

#[tokio::test]
async fn five_wrong_codes_kill_the_mfa_token() {
    let app = TestApp::spawn().await;
    let (email, password, session) = app.signed_in_user().await;
    let (secret, _) = enrol(&app, &session.access).await;
    app.clock.advance(std::time::Duration::from_secs(30));
    let token = mfa_token(&app, &email, &password).await;
    for _ in 0..5 {
        let wrong = app
            .post(
                "/api/v1/auth/mfa/verify",
                json!({"mfa_token": token, "code": "000001"}),
            )
            .await;
        assert_eq!(wrong.status(), 401);
    }
    let code = code_at(&secret, app.clock.now_secs());
    let blocked = app
        .post(
            "/api/v1/auth/mfa/verify",
            json!({"mfa_token": token, "code": code}),
        )
        .await;
    assert_eq!(blocked.status(), 429);
    assert!(blocked.headers().contains_key("retry-after"));
    let admin = app.signed_in_admin().await;
    let events: Value = app
        .get_bearer(
            "/api/v1/admin/security-events?type=mfa_failed",
            &admin.access,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["total"], 5);
    app.stop().await;
}

#[tokio::test]
async fn five_wrong_codes_across_mfa_tokens_lock_the_account_out_of_mfa() {
    let app = TestApp::spawn().await;
    let (email, password, session) = app.signed_in_user().await;
    let (secret, _) = enrol(&app, &session.access).await;
    app.clock.advance(std::time::Duration::from_secs(30));
    for wrong_codes in [3, 2] {
        // A fresh mfa_token does not reset the account's count.
        let token = mfa_token(&app, &email, &password).await;
        for _ in 0..wrong_codes {
            let wrong = app
                .post(
                    "/api/v1/auth/mfa/verify",
                    json!({"mfa_token": token, "code": "000001"}),
                )
                .await;
            assert_eq!(wrong.status(), 401);
            assert!(
                wrong.headers()["ratelimit-policy"]
                    .to_str()
                    .unwrap()
                    .contains("\"mfa-account\";q=5")
            );
        }
    }
    let token = mfa_token(&app, &email, &password).await;
    let code = code_at(&secret, app.clock.now_secs());
    let blocked = app
        .post(
            "/api/v1/auth/mfa/verify",
            json!({"mfa_token": token, "code": code}),
        )
        .await;
    assert_eq!(blocked.status(), 429);
    assert_eq!(problem(blocked).await["code"], "rate_limited");
    // One interval (15 min / 5) later the account may try again, and the code works.
    app.clock.advance(std::time::Duration::from_secs(3 * 60));
    let code = code_at(&secret, app.clock.now_secs());
    let signed_in = app
        .post(
            "/api/v1/auth/mfa/verify",
            json!({"mfa_token": token, "code": code}),
        )
        .await;
    assert_eq!(signed_in.status(), 200);
    app.secret(
        signed_in.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap(),
    );
    app.stop().await;
}

#[tokio::test]
async fn disabling_mfa_needs_the_password() {
    let app = TestApp::spawn().await;
    let (email, password, session) = app.signed_in_user().await;
    enrol(&app, &session.access).await;
    let disable = |pw: String| {
        app.client
            .delete(app.url("/api/v1/me/mfa/totp"))
            .bearer_auth(&session.access)
            .json(&json!({"password": pw}))
            .send()
    };
    assert_eq!(
        disable(crate::accounts::strong_password())
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(disable(password.clone()).await.unwrap().status(), 204);
    app.login(&email, &password).await;
    app.stop().await;
}
