//! API.md §7: events raised by the pipeline itself (refused origins, suspicious input).

use serde_json::{Value, json};

use crate::harness::{TestApp, eventually};

/// Events of `kind`, waiting (bounded) until at least `count` exist: the pipeline records
/// them off the response path.
async fn events(app: &TestApp, admin: &str, kind: &str, count: u64) -> Vec<Value> {
    eventually(&format!("{count} {kind} events"), || async {
        let list: Value = app
            .get_bearer(
                &format!("/api/v1/admin/security-events?type={kind}&limit=100"),
                admin,
            )
            .await
            .json()
            .await
            .unwrap();
        (list["total"].as_u64().unwrap() >= count)
            .then(|| list["items"].as_array().unwrap().clone())
    })
    .await
}

#[tokio::test]
async fn suspicious_input_is_logged_with_field_and_excerpt_but_not_blocked() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in_admin().await;
    let search = app.get("/api/v1/products?q=%27%20OR%201%3D1%20--").await;
    assert_eq!(search.status(), 200, "not blocked");
    let login = app
        .post(
            "/api/v1/auth/login",
            json!({"email": {"$ne": null}, "password": "' OR 1=1 --"}),
        )
        .await;
    assert_eq!(login.status(), 400);
    let found = events(&app, &admin.access, "suspicious_input", 2).await;
    let fields: Vec<&str> = found
        .iter()
        .map(|e| e["details"]["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"query.q"), "{fields:?}");
    assert!(fields.contains(&"body.email.$ne"), "{fields:?}");
    assert!(
        !fields.iter().any(|f| f.contains("password")),
        "password fields are never excerpted"
    );
    let sql = found
        .iter()
        .find(|e| e["details"]["field"] == "query.q")
        .unwrap();
    assert_eq!(sql["details"]["category"], "sql");
    assert_eq!(sql["route"], "/api/v1/products");
    app.stop().await;
}

#[tokio::test]
async fn a_refused_origin_is_a_cors_rejected_event() {
    let app = TestApp::spawn_with(&[("RAMPART_CORS_ORIGINS", "https://app.example.com")]).await;
    let admin = app.signed_in_admin().await;
    app.client
        .get(app.url("/api/v1/products"))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    let found = events(&app, &admin.access, "cors_rejected", 1).await;
    assert_eq!(found[0]["details"]["origin"], "https://evil.example.com");
    app.stop().await;
}
