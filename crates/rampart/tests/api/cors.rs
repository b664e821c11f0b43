//! CORS: exact allowlist, nothing for anyone else.

use crate::harness::TestApp;

const ALLOWED: &str = "https://app.example.com";

fn cors_headers(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

async fn get_from(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/v1/products"))
        .header("origin", origin)
        .send()
        .await
        .unwrap()
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/products"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, x-anything")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_allowed_origin_gets_exactly_its_own_origin_back() {
    let app = TestApp::spawn_with(&[("RAMPART_CORS_ORIGINS", ALLOWED)]).await;
    let response = get_from(&app, ALLOWED).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], ALLOWED);
    assert_eq!(
        response.headers()["access-control-allow-credentials"],
        "true"
    );
    assert!(
        response.headers()["vary"]
            .to_str()
            .unwrap()
            .contains("origin")
    );

    let pre = preflight(&app, ALLOWED).await;
    assert_eq!(pre.status(), 200);
    let allowed_headers = pre.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(
        !allowed_headers.contains("x-anything"),
        "request headers are never echoed"
    );
    assert!(
        pre.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    app.stop().await;
}

#[tokio::test]
async fn disallowed_and_null_origins_get_no_cors_headers() {
    let app = TestApp::spawn_with(&[("RAMPART_CORS_ORIGINS", ALLOWED)]).await;
    for origin in [
        "https://evil.example.com",
        "null",
        "https://app.example.com.evil.net",
        "http://app.example.com",
    ] {
        let response = get_from(&app, origin).await;
        assert!(
            cors_headers(&response).is_empty(),
            "{origin}: {:?}",
            cors_headers(&response)
        );
        assert!(
            response.headers()["vary"]
                .to_str()
                .unwrap()
                .contains("origin")
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_disallowed_preflight_is_403_and_reaches_no_handler() {
    let app = TestApp::spawn_with(&[("RAMPART_CORS_ORIGINS", ALLOWED)]).await;
    let response = preflight(&app, "https://evil.example.com").await;
    assert_eq!(response.status(), 403);
    assert!(cors_headers(&response).is_empty());
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "cors_rejected");
    app.stop().await;
}

#[tokio::test]
async fn without_configuration_no_origin_is_allowed() {
    let app = TestApp::spawn().await;
    let response = get_from(&app, ALLOWED).await;
    assert_eq!(response.status(), 200);
    assert!(cors_headers(&response).is_empty());
    app.stop().await;
}
