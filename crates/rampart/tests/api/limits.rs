//! API.md §3: request limits answered before any handler runs, once routing has found
//! the route and its method. The body checks use `POST /api/v1/admin/products`, a real
//! JSON body route; without a token, a body that passes them gets the handler's 401.

use crate::harness::{TestApp, problem};

async fn post_json(app: &TestApp, body: impl Into<reqwest::Body>) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/admin/products"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_json_body_over_10_kib_is_413() {
    let app = TestApp::spawn().await;
    let response = post_json(&app, format!("{{\"a\":\"{}\"}}", "x".repeat(11 * 1024))).await;
    assert_eq!(response.status(), 413);
    assert_eq!(problem(response).await["code"], "payload_too_large");
    app.stop().await;
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_is_413_without_content_length() {
    let app = TestApp::spawn().await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..64).map(|_| Ok(vec![b' '; 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = post_json(&app, body).await;
    assert_eq!(response.status(), 413);
    app.stop().await;
}

#[tokio::test]
async fn json_deeper_than_32_or_with_prototype_keys_is_400() {
    let app = TestApp::spawn().await;
    let deep = format!("{}1{}", "[".repeat(33), "]".repeat(33));
    let body = problem(post_json(&app, deep).await).await;
    assert_eq!(body["code"], "validation_failed");
    for key in ["__proto__", "constructor", "prototype"] {
        let response = post_json(
            &app,
            format!(r#"{{"items":[{{"{key}":{{"role":"admin"}}}}]}}"#),
        )
        .await;
        assert_eq!(response.status(), 400, "{key}");
        let body = problem(response).await;
        assert_eq!(body["errors"][0]["field"], format!("items[0].{key}"));
    }
    // 32 levels are fine: the request reaches the handler (which wants a token).
    let ok = post_json(&app, format!("{}1{}", "[".repeat(32), "]".repeat(32))).await;
    assert_eq!(ok.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_on_a_body_is_415() {
    let app = TestApp::spawn().await;
    for content_type in [Some("text/plain"), Some("application/xml"), None] {
        let mut request = app
            .client
            .post(app.url("/api/v1/admin/products"))
            .body("{}");
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 415, "{content_type:?}");
        assert_eq!(problem(response).await["code"], "unsupported_media_type");
    }
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_and_invalid_utf8_are_400_without_echo() {
    let app = TestApp::spawn().await;
    for body in [
        b"{\"password\": \"hunter2".to_vec(),
        b"{\"a\":\"\xff\xfe\"}".to_vec(),
        b"[1,]".to_vec(),
    ] {
        let response = post_json(&app, body).await;
        assert_eq!(response.status(), 400);
        let text = problem(response).await.to_string();
        assert!(text.contains("validation_failed"));
        assert!(!text.contains("hunter2"));
    }
    app.stop().await;
}

#[tokio::test]
async fn a_scalar_query_parameter_given_twice_is_400_duplicate_parameter() {
    let app = TestApp::spawn().await;
    let body = problem(app.get("/api/v1/products?page=1&page=2").await).await;
    assert_eq!(body["status"], 400);
    assert_eq!(body["code"], "duplicate_parameter");
    let body = problem(app.get("/api/v1/products?q=a&%71=b").await).await;
    assert_eq!(body["code"], "duplicate_parameter");
    app.stop().await;
}

#[tokio::test]
async fn a_target_over_8_kib_is_414_and_headers_over_16_kib_are_431() {
    let app = TestApp::spawn().await;
    let response = app
        .get(&format!("/api/v1/products?q={}", "a".repeat(8 * 1024)))
        .await;
    assert_eq!(response.status(), 414);
    assert_eq!(problem(response).await["code"], "uri_too_long");
    let mut request = app.client.get(app.url("/health"));
    for i in 0..5 {
        request = request.header(format!("x-filler-{i}"), "v".repeat(4000));
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 431);
    assert_eq!(problem(response).await["code"], "headers_too_large");
    app.stop().await;
}

#[tokio::test]
async fn a_json_array_where_an_object_is_expected_is_400_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let email = crate::accounts::fresh_email();
    let password = crate::accounts::strong_password();
    app.verified_user(&email, &password).await;
    let user = app.login(&email, &password).await;
    let admin = app.signed_in_admin().await;
    let send = |method: reqwest::Method, path: &str, token: Option<&str>, body: &str| {
        let mut request = app
            .client
            .request(method, app.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    // serde's sequence form would read these positionally into the fields.
    let cases = [
        (
            reqwest::Method::PATCH,
            "/api/v1/me",
            Some(user.access.as_str()),
            r#"["Evil","<b>x</b>"]"#,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/admin/products",
            Some(admin.access.as_str()),
            r#"["n","<p>d</p>",100,"EUR",5]"#,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            &format!(r#"["{email}","{password}"]"#),
        ),
    ];
    for (method, path, token, body) in cases {
        let response = send(method, path, token, body).await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let problem = problem(response).await;
        assert_eq!(problem["code"], "validation_failed", "{path}");
        assert_eq!(problem["errors"][0]["field"], "body", "{path}");
    }
    let me: serde_json::Value = app
        .get_bearer("/api/v1/me", &user.access)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(me["name"], "Evil");
    let products: serde_json::Value = app.get("/api/v1/products").await.json().await.unwrap();
    assert_eq!(products["total"], 0);
    app.stop().await;
}

/// The object rule holds at every depth: an order line, an address or a whole order in
/// serde's sequence form is a 400 naming the field, and nothing is placed.
#[tokio::test]
async fn a_nested_json_array_where_an_object_is_expected_is_400_at_its_field() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let product = app.product("Nested", 500).await;
    let address = serde_json::json!({
        "street": "1 Main Street", "city": "Berlin", "postal_code": "10115", "country": "DE"
    });
    let cases = [
        (
            serde_json::json!({"items": [[product.id, 2]], "shipping_address": address}),
            "items[0]",
        ),
        (
            serde_json::json!({
                "items": [{"product_id": product.id, "quantity": 1}],
                "shipping_address": ["1 Main Street", "Berlin", "10115", "DE"]
            }),
            "shipping_address",
        ),
    ];
    for (body, field) in cases {
        let response = app
            .client
            .post(app.url("/api/v1/orders"))
            .bearer_auth(&user.access)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let problem = problem(response).await;
        assert_eq!(problem["code"], "validation_failed", "{body}");
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    // The same order as objects is placed: the refusals were about the form alone.
    let response = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&user.access)
        .json(&serde_json::json!({
            "items": [{"product_id": product.id, "quantity": 2}], "shipping_address": address
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let orders: serde_json::Value = app
        .get_bearer("/api/v1/orders", &user.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(orders["items"].as_array().map(Vec::len), Some(1));
    app.stop().await;
}

/// Routing comes first, but on a real body route and method the body checks still answer
/// before the handler: a wrong type is 415, a poisoned body 400, an oversized one 413,
/// signed in or not.
#[tokio::test]
async fn on_a_real_body_route_the_body_checks_still_answer_415_400_and_413() {
    let app = TestApp::spawn().await;
    let (_, _, session) = app.signed_in_user().await;
    let patch = |token: Option<String>, content_type: &'static str, body: String| {
        let mut request = app
            .client
            .patch(app.url("/api/v1/me"))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let big = format!("{{\"bio\":\"{}\"}}", "x".repeat(11 * 1024));
    for token in [Some(session.access.clone()), None] {
        let signed_in = token.is_some();
        let response = patch(token.clone(), "text/plain", r#"{"name":"x"}"#.into())
            .await
            .unwrap();
        assert_eq!(response.status(), 415, "signed in: {signed_in}");
        assert_eq!(problem(response).await["code"], "unsupported_media_type");
        let response = patch(
            token.clone(),
            "application/json",
            r#"{"__proto__":{"role":"admin"}}"#.into(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 400, "signed in: {signed_in}");
        let body = problem(response).await;
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(body["errors"][0]["field"], "__proto__");
        let response = patch(token.clone(), "application/json", big.clone())
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "signed in: {signed_in}");
        assert_eq!(problem(response).await["code"], "payload_too_large");
    }
    // The same route with a good body is the handler's.
    let response = patch(
        Some(session.access.clone()),
        "application/json",
        r#"{"name":"Ada"}"#.into(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    app.stop().await;
}
