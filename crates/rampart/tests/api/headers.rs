//! API.md §2: security headers and request ids on every response.

use crate::harness::{TestApp, assert_security_headers};

#[tokio::test]
async fn health_answers_ok_with_every_security_header() {
    let app = TestApp::spawn().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    assert_security_headers(response.headers());
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );
    app.stop().await;
}

#[tokio::test]
async fn errors_carry_the_same_headers_as_successes() {
    let app = TestApp::spawn().await;
    let not_found = app.get("/no/such/path").await;
    assert_eq!(not_found.status(), 404);
    assert_security_headers(not_found.headers());
    let wrong_method = app.client.delete(app.url("/health")).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_security_headers(wrong_method.headers());
    let too_large = app
        .client
        .post(app.url("/api/v1/admin/products"))
        .header("content-type", "application/json")
        .body(format!("{{\"a\":\"{}\"}}", "x".repeat(11 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status(), 413);
    assert_security_headers(too_large.headers());
    app.db.close().await;
    let failed = app.get("/api/v1/products").await;
    assert_eq!(failed.status(), 500);
    assert_security_headers(failed.headers());
    app.stop().await;
}

#[tokio::test]
async fn a_well_formed_request_id_is_echoed_and_a_bad_one_replaced() {
    let app = TestApp::spawn().await;
    let kept = app
        .client
        .get(app.url("/no-such"))
        .header("x-request-id", "client-id_1.2")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "client-id_1.2");
    let body: serde_json::Value = kept.json().await.unwrap();
    assert_eq!(body["request_id"], "client-id_1.2");

    for bad in ["has space", &"a".repeat(65), "semi;colon"] {
        let replaced = app
            .client
            .get(app.url("/health"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let id = replaced.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(id, bad);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
    }
    app.stop().await;
}

#[tokio::test]
async fn hsts_is_sent_over_https() {
    let app = TestApp::spawn_tls().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    assert_security_headers(response.headers());
    app.stop().await;
}

#[tokio::test]
async fn hsts_follows_x_forwarded_proto_only_from_a_trusted_proxy() {
    let trusted = TestApp::spawn_with(&[("RAMPART_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let via_proxy = trusted
        .client
        .get(trusted.url("/health"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(
        via_proxy
            .headers()
            .contains_key("strict-transport-security")
    );
    trusted.stop().await;

    let untrusted = TestApp::spawn().await;
    let spoofed = untrusted
        .client
        .get(untrusted.url("/health"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(!spoofed.headers().contains_key("strict-transport-security"));
    untrusted.stop().await;
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let app = TestApp::spawn().await;
    let doc: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/health",
        "/health/ready",
        "/.well-known/jwks.json",
        "/api/v1/products",
        "/api/v1/products/{id}",
        "/api/v1/auth/register",
        "/api/v1/auth/verify-email",
        "/api/v1/auth/resend-verification",
        "/api/v1/auth/login",
        "/api/v1/auth/mfa/verify",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/logout-all",
        "/api/v1/auth/forgot-password",
        "/api/v1/auth/reset-password",
        "/api/v1/auth/change-password",
        "/api/v1/me",
        "/api/v1/me/sessions",
        "/api/v1/me/sessions/{id}",
        "/api/v1/me/mfa/totp/setup",
        "/api/v1/me/mfa/totp/confirm",
        "/api/v1/me/mfa/totp",
        "/api/v1/admin/users",
        "/api/v1/admin/users/{id}",
        "/api/v1/admin/security-events",
        "/api/v1/admin/products",
        "/api/v1/admin/products/{id}",
        "/api/v1/orders",
        "/api/v1/orders/{id}",
        "/api/v1/orders/{id}/cancel",
        "/api/v1/me/avatar",
        "/api/v1/users/{id}/avatar",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    assert!(doc["components"]["securitySchemes"].get("bearer").is_some());
    app.stop().await;
}
