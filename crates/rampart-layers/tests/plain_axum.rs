//! The example's stack, driven request by request: the kit around a plain axum app.

#![allow(clippy::unwrap_used)]

#[path = "../examples/plain_axum.rs"]
#[allow(dead_code)]
mod plain_axum;

use axum::body::Body;
use http::{Request, StatusCode};
use tower::{Service, ServiceExt};

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

async fn json(response: axum::response::Response) -> serde_json::Value {
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_plain_request_gets_the_handler_and_every_protective_header() {
    let app = plain_axum::app("https://app.example.com", 10).unwrap();
    let response = app.oneshot(get("/hello")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-request-id"].len(), 32);
    assert_eq!(headers["ratelimit-policy"], "\"per-client\";q=10;w=60");
    assert!(!headers.contains_key("strict-transport-security"));
}

#[tokio::test]
async fn attacks_are_problems_that_never_reach_the_handler() {
    let mut app = plain_axum::app("https://app.example.com", 10).unwrap();
    let poisoned = Request::post("/echo")
        .header("content-type", "application/json")
        .header("x-request-id", "probe-1")
        .body(Body::from(r#"{"a":{"__proto__":{"admin":true}}}"#))
        .unwrap();
    let response = app.ready().await.unwrap().call(poisoned).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json(response).await;
    assert_eq!(body["code"], "validation_failed");
    assert_eq!(body["type"], "about:blank");
    assert_eq!(body["request_id"], "probe-1");

    let preflight = Request::options("/echo")
        .header("origin", "https://evil.example.com")
        .header("access-control-request-method", "POST")
        .body(Body::empty())
        .unwrap();
    let response = app.ready().await.unwrap().call(preflight).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        !response
            .headers()
            .keys()
            .any(|k| k.as_str().starts_with("access-control-"))
    );
    assert_eq!(json(response).await["code"], "cors_rejected");
}

#[tokio::test]
async fn a_client_over_its_budget_is_told_when_to_come_back() {
    let mut app = plain_axum::app("https://app.example.com", 2).unwrap();
    for _ in 0..2 {
        let response = app
            .ready()
            .await
            .unwrap()
            .call(get("/hello"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let refused = app
        .ready()
        .await
        .unwrap()
        .call(get("/hello"))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "30");
    assert_eq!(json(refused).await["code"], "rate_limited");
}

#[tokio::test]
async fn the_route_decides_before_the_body_is_judged() {
    let mut app = plain_axum::app("https://app.example.com", 10).unwrap();
    let text = |method: &str, path: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "text/plain")
            .body(Body::from("not json"))
            .unwrap()
    };
    let unknown = app
        .ready()
        .await
        .unwrap()
        .call(text("PUT", "/nope"))
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(unknown).await["code"], "not_found");
    let wrong_method = app
        .ready()
        .await
        .unwrap()
        .call(text("POST", "/hello"))
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.headers()["allow"], "GET,HEAD");
    // On a route that takes a body, the body checks still answer.
    let untyped = app
        .ready()
        .await
        .unwrap()
        .call(text("POST", "/echo"))
        .await
        .unwrap();
    assert_eq!(untyped.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
