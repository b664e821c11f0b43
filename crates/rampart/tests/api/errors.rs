//! API.md §2: every error is problem+json and nothing internal leaks.

use crate::harness::{TestApp, problem};

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems() {
    let app = TestApp::spawn().await;
    let body = problem(app.get("/api/v1/nothing-here").await).await;
    assert_eq!(body["status"], 404);
    assert_eq!(body["code"], "not_found");
    for key in ["type", "title", "detail", "request_id"] {
        assert!(body.get(key).is_some(), "{key}");
    }
    let response = app.client.post(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert!(response.headers().contains_key("allow"));
    let body = problem(response).await;
    assert_eq!(body["code"], "method_not_allowed");
    app.stop().await;
}

#[tokio::test]
async fn a_database_failure_is_an_opaque_500_and_readiness_fails() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/health/ready").await.status(), 200);
    app.db.close().await;
    let response = app.get("/api/v1/products?q=abc").await;
    assert_eq!(response.status(), 500);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = problem(response).await.to_string().to_lowercase();
    // The cause goes to the log line of that request, not to the client.
    let logged = crate::logs::captured();
    let line = logged
        .lines()
        .find(|l| l.contains(&request_id) && l.contains("request failed"))
        .expect("the failed request is logged with its cause");
    assert!(
        line.contains("cause") && line.contains("database"),
        "{line}"
    );
    for leak in [
        "sql", "select", "pool", "sqlite", "postgres", "error:", "::", "/src/", ".rs",
    ] {
        assert!(!text.contains(leak), "{leak} leaked in {text}");
    }
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 503);
    assert!(ready.headers().contains_key("retry-after"));
    assert_eq!(problem(ready).await["code"], "unavailable");
    // Liveness does not depend on the database.
    assert_eq!(app.get("/health").await.status(), 200);
    app.stop().await;
}

/// API.md §3: the route decides before the body is judged, so the problem names the
/// client's real mistake (issue 13: these were 415).
#[tokio::test]
async fn an_unknown_route_is_404_and_a_missing_method_405_whatever_the_body() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .put(app.url("/nope"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(problem(response).await["code"], "not_found");

    let (_, _, session) = app.signed_in_user().await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
    let response = app
        .client
        .post(app.url("/api/v1/me/avatar"))
        .bearer_auth(&session.access)
        .header("content-type", "image/png")
        .body(png)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "PUT");
    assert_eq!(problem(response).await["code"], "method_not_allowed");
    app.stop().await;
}

/// The attack side: bodies the body checks would refuse (poisoned, oversized, mistyped)
/// to a route or method that does not exist are 404/405 too, and nothing is stored.
#[tokio::test]
async fn hostile_bodies_to_unknown_routes_or_methods_are_404_or_405_and_change_nothing() {
    let app = TestApp::spawn().await;
    // Over the 10 KiB JSON limit of every one of these routes and methods.
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(11 * 1024));
    let bodies = [
        (
            "application/json",
            r#"{"__proto__":{"is_admin":true}}"#.to_owned(),
        ),
        ("application/json", big),
        ("application/xml", "<a/>".to_owned()),
    ];
    for (content_type, body) in bodies {
        for (method, path, status) in [
            (reqwest::Method::PUT, "/nope", 404),
            (reqwest::Method::POST, "/api/v1/nothing/here", 404),
            (reqwest::Method::POST, "/api/v1/products", 405),
            (reqwest::Method::DELETE, "/api/v1/me/avatar", 405),
        ] {
            let response = app
                .client
                .request(method.clone(), app.url(path))
                .header("content-type", content_type)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{method} {path} {content_type}");
            let code = problem(response).await["code"].clone();
            let expected = if status == 404 {
                "not_found"
            } else {
                "method_not_allowed"
            };
            assert_eq!(code, expected, "{method} {path}");
        }
    }
    let products: serde_json::Value = app.get("/api/v1/products").await.json().await.unwrap();
    assert_eq!(products["total"], 0);
    app.stop().await;
}
