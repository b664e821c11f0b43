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
