//! API.md §5, read side of the catalog: literal search, paging, ids.

use crate::harness::{TestApp, problem};

async fn names(app: &TestApp, query: &[(&str, &str)]) -> Vec<String> {
    let response = app
        .client
        .get(app.url("/api/v1/products"))
        .query(query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{query:?}");
    let total: usize = response.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["total"], total);
    let mut names: Vec<String> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn search_treats_sql_and_like_syntax_as_literal_text() {
    let app = TestApp::spawn().await;
    for name in [
        "50% off",
        "under_score",
        "O'Reilly",
        r"back\slash",
        "' OR 1=1 --",
        "plain tea",
    ] {
        app.product(name, 100).await;
    }
    assert_eq!(names(&app, &[("q", "%")]).await, ["50% off"]);
    assert_eq!(names(&app, &[("q", "_")]).await, ["under_score"]);
    assert_eq!(names(&app, &[("q", r"\")]).await, [r"back\slash"]);
    assert_eq!(
        names(&app, &[("q", "'")]).await,
        ["' OR 1=1 --", "O'Reilly"]
    );
    assert_eq!(names(&app, &[("q", "' OR 1=1 --")]).await, ["' OR 1=1 --"]);
    assert_eq!(
        names(&app, &[("q", "' OR '1'='1")]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        names(&app, &[("q", "%' OR 1=1; DROP TABLE products; --")]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        names(&app, &[("q", "PLAIN")]).await,
        ["plain tea"],
        "case-insensitive"
    );
    assert_eq!(names(&app, &[]).await.len(), 6, "the table survived");
    app.stop().await;
}

#[tokio::test]
async fn paging_and_price_filters_are_applied_and_counted() {
    let app = TestApp::spawn().await;
    for i in 0..25 {
        app.product(&format!("item {i:02}"), i * 100).await;
    }
    let response = app.get("/api/v1/products?limit=10&page=3").await;
    assert_eq!(response.headers()["x-total-count"], "25");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 5);
    assert_eq!(
        (body["page"].as_u64(), body["limit"].as_u64()),
        (Some(3), Some(10))
    );
    let priced = names(
        &app,
        &[("min_price", "500"), ("max_price", "700"), ("limit", "100")],
    )
    .await;
    assert_eq!(priced, ["item 05", "item 06", "item 07"]);
    app.stop().await;
}

#[tokio::test]
async fn invalid_parameters_are_all_listed() {
    let app = TestApp::spawn().await;
    let body = problem(
        app.get("/api/v1/products?page=0&limit=101&min_price=-5&q=")
            .await,
    )
    .await;
    assert_eq!(body["code"], "validation_failed");
    let mut fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(fields, ["limit", "min_price", "page", "q"]);
    let long = "x".repeat(101);
    assert_eq!(
        app.get(&format!("/api/v1/products?q={long}"))
            .await
            .status(),
        400
    );
    assert_eq!(app.get("/api/v1/products?q=a%00b").await.status(), 400);
    assert_eq!(app.get("/api/v1/products?sort=price").await.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn a_product_is_found_by_id_and_unknown_or_malformed_ids_are_the_same_404() {
    let app = TestApp::spawn().await;
    let product = app.product("Green tea", 450).await;
    let response = app.get(&format!("/api/v1/products/{}", product.id)).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["name"], "Green tea");
    assert_eq!(body["price_cents"], 450);
    assert_eq!(body["currency"], "EUR");
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    for key in ["id", "description", "stock", "updated_at"] {
        assert!(body.get(key).is_some(), "{key}");
    }

    let mut unknown = problem(
        app.get(&format!("/api/v1/products/{}", uuid::Uuid::new_v4()))
            .await,
    )
    .await;
    let mut malformed = problem(app.get("/api/v1/products/1'%20OR%20'1'='1").await).await;
    unknown["request_id"] = serde_json::Value::Null;
    malformed["request_id"] = serde_json::Value::Null;
    assert_eq!(unknown, malformed);
    assert_eq!(unknown["status"], 404);
    app.stop().await;
}
