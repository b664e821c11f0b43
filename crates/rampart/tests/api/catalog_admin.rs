//! API.md §5: catalog administration. Admin only, every failing field listed at once,
//! descriptions sanitized to the allowlist.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{TestApp, problem};

fn tea() -> Value {
    json!({
        "name": "Sencha",
        "description": "<p>Green tea</p>",
        "price_cents": 1250,
        "currency": "EUR",
        "stock": 40
    })
}

impl TestApp {
    async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }
}

#[tokio::test]
async fn admins_create_change_and_delete_products() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in_admin().await;
    let created = app
        .post_bearer("/api/v1/admin/products", &admin.access, Some(tea()))
        .await;
    assert_eq!(created.status(), 201);
    let product: Value = created.json().await.unwrap();
    assert_eq!(product["name"], "Sencha");
    assert_eq!(product["price_cents"], 1250);
    let id = product["id"].as_str().unwrap().to_owned();
    let public: Value = app
        .get(&format!("/api/v1/products/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(public, product);

    let patched = app
        .send_json(
            reqwest::Method::PATCH,
            &format!("/api/v1/admin/products/{id}"),
            &admin.access,
            Some(json!({"stock": 7, "currency": "usd"})),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(
        (patched["stock"].clone(), patched["currency"].clone()),
        (json!(7), json!("USD"))
    );
    assert_eq!(patched["name"], "Sencha");
    assert_eq!(patched["price_cents"], 1250);

    let delete = |target: String| {
        let app = &app;
        let token = admin.access.clone();
        async move {
            app.send_json(
                reqwest::Method::DELETE,
                &format!("/api/v1/admin/products/{target}"),
                &token,
                None,
            )
            .await
            .status()
        }
    };
    assert_eq!(delete(id.clone()).await, 204);
    assert_eq!(delete(id.clone()).await, 404);
    assert_eq!(
        app.get(&format!("/api/v1/products/{id}")).await.status(),
        404
    );
    let missing = app
        .send_json(
            reqwest::Method::PATCH,
            &format!("/api/v1/admin/products/{}", Uuid::new_v4()),
            &admin.access,
            Some(json!({"stock": 1})),
        )
        .await;
    assert_eq!(missing.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn every_failing_product_field_is_listed_at_once_and_unknown_fields_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in_admin().await;
    let response = app
        .post_bearer(
            "/api/v1/admin/products",
            &admin.access,
            Some(json!({
                "name": "",
                "description": "x".repeat(5001),
                "price_cents": -1,
                "currency": "EURO"
            })),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body = problem(response).await;
    assert_eq!(body["code"], "validation_failed");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["name", "description", "price_cents", "currency", "stock"]
    );

    let mut mass = tea();
    mass["id"] = json!(Uuid::new_v4());
    let response = app
        .post_bearer("/api/v1/admin/products", &admin.access, Some(mass))
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(problem(response).await["errors"][0]["field"], "id");
    let products: Value = app.get("/api/v1/products").await.json().await.unwrap();
    assert_eq!(products["total"], 0);
    app.stop().await;
}

#[tokio::test]
async fn descriptions_and_bios_keep_b_and_https_links_and_lose_scripts_handlers_and_javascript_urls()
 {
    let app = TestApp::spawn().await;
    let admin = app.signed_in_admin().await;
    let html = r#"<p><b>Bold</b> <a href="https://example.com/tea">link</a></p><script>alert(1)</script><img src=x onerror=alert(1)><a href="javascript:alert(1)">click</a>"#;
    let mut body = tea();
    body["description"] = json!(html);
    let product: Value = app
        .post_bearer("/api/v1/admin/products", &admin.access, Some(body))
        .await
        .json()
        .await
        .unwrap();
    let patched: Value = app
        .client
        .patch(app.url("/api/v1/me"))
        .bearer_auth(&admin.access)
        .json(&json!({"bio": html}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored = app
        .get(&format!(
            "/api/v1/products/{}",
            product["id"].as_str().unwrap()
        ))
        .await
        .json::<Value>()
        .await
        .unwrap();
    for text in [
        stored["description"].as_str().unwrap(),
        patched["bio"].as_str().unwrap(),
    ] {
        assert!(text.contains("<b>Bold</b>"), "{text}");
        assert!(
            text.contains(r#"<a href="https://example.com/tea""#),
            "{text}"
        );
        assert!(
            text.contains(r#"rel="noopener noreferrer nofollow""#),
            "{text}"
        );
        for bad in [
            "<script",
            "alert(1)</script>",
            "onerror",
            "javascript:",
            "<img",
        ] {
            assert!(!text.contains(bad), "{bad} survived in {text}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_non_admin_gets_403_on_every_admin_product_route_and_the_event_is_logged() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let product = app.product("Oolong", 900).await;
    let target = format!("/api/v1/admin/products/{}", product.id);
    let attempts = [
        app.post_bearer("/api/v1/admin/products", &user.access, Some(tea()))
            .await,
        app.send_json(
            reqwest::Method::PATCH,
            &target,
            &user.access,
            Some(json!({"price_cents": 1})),
        )
        .await,
        app.send_json(reqwest::Method::DELETE, &target, &user.access, None)
            .await,
    ];
    for response in attempts {
        assert_eq!(response.status(), 403);
        assert_eq!(problem(response).await["code"], "forbidden");
    }
    let anonymous = app
        .client
        .post(app.url("/api/v1/admin/products"))
        .json(&tea())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let unchanged: Value = app
        .get(&format!("/api/v1/products/{}", product.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["price_cents"], 900);

    let admin = app.signed_in_admin().await;
    let events = app
        .get_bearer(
            &format!(
                "/api/v1/admin/security-events?type=forbidden&user_id={}",
                user.user_id()
            ),
            &admin.access,
        )
        .await;
    assert_eq!(events.headers()["x-total-count"], "3");
    app.stop().await;
}
