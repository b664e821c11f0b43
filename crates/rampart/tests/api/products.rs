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

/// `(names newest first, total)` of a search on `app`.
async fn found(app: &TestApp, query: &[(&str, &str)]) -> (Vec<String>, u64) {
    let response = app
        .client
        .get(app.url("/api/v1/products"))
        .query(query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{query:?}");
    let body: serde_json::Value = response.json().await.unwrap();
    let names = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    (names, body["total"].as_u64().unwrap())
}

async fn admin_send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap_or(serde_json::Value::Null)
}

#[tokio::test]
async fn a_product_written_on_one_instance_is_in_the_very_next_search_on_another() {
    let a = TestApp::spawn().await;
    let shared = a.state.config.database_url.expose().to_owned();
    let b = TestApp::spawn_with(&[("DATABASE_URL", &shared)]).await;
    let admin = a.signed_in_admin().await;
    assert_eq!(found(&b, &[("q", "sencha")]).await, (vec![], 0));

    let created = admin_send(
        &a,
        reqwest::Method::POST,
        "/api/v1/admin/products",
        &admin.access,
        Some(
            serde_json::json!({"name": "Sencha", "description": "<p>green</p>",
            "price_cents": 900, "currency": "EUR", "stock": 5}),
        ),
    )
    .await;
    let path = format!("/api/v1/admin/products/{}", created["id"].as_str().unwrap());
    // No waiting anywhere: each search below is the first one after the write.
    assert_eq!(
        found(&b, &[("q", "SENCHA")]).await,
        (vec!["Sencha".into()], 1)
    );
    assert_eq!(
        found(&a, &[("q", "sencha")]).await,
        (vec!["Sencha".into()], 1)
    );

    let rename = serde_json::json!({"name": "Gyokuro", "price_cents": 2000});
    admin_send(
        &a,
        reqwest::Method::PATCH,
        &path,
        &admin.access,
        Some(rename),
    )
    .await;
    assert_eq!(found(&b, &[("q", "sencha")]).await, (vec![], 0));
    assert_eq!(
        found(&b, &[("q", "gyo")]).await,
        (vec!["Gyokuro".into()], 1)
    );
    let cheap = [("q", "gyokuro"), ("max_price", "1000")];
    assert_eq!(
        found(&b, &cheap).await,
        (vec![], 0),
        "the new price is searched"
    );

    // An order on one instance takes stock without a catalog write: it moves the stock
    // version, so the other instance's very next page shows it.
    let id: uuid::Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let placed = a
        .client
        .post(a.url("/api/v1/orders"))
        .bearer_auth(&admin.access)
        .json(&crate::orders::order_body(&[(id, 3)]))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);
    let body: serde_json::Value = b
        .get("/api/v1/products?q=gyokuro")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["items"][0]["stock"], 2);

    admin_send(&a, reqwest::Method::DELETE, &path, &admin.access, None).await;
    assert_eq!(found(&b, &[("q", "gyokuro")]).await, (vec![], 0));
    assert_eq!(found(&b, &[]).await, (vec![], 0));
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn search_is_case_insensitive_beyond_ascii_and_never_joins_name_and_description() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in_admin().await;
    for (name, description) in [("CAFÉ CRÈME", "<p>Straße</p>"), ("ab", "cd")] {
        admin_send(
            &app,
            reqwest::Method::POST,
            "/api/v1/admin/products",
            &admin.access,
            Some(serde_json::json!({"name": name, "description": description,
                "price_cents": 100, "currency": "EUR", "stock": 1})),
        )
        .await;
    }
    assert_eq!(found(&app, &[("q", "café")]).await.1, 1);
    assert_eq!(found(&app, &[("q", "Crème")]).await.1, 1);
    assert_eq!(
        found(&app, &[("q", "STRASSE")]).await.1,
        0,
        "no full case folding"
    );
    assert_eq!(
        found(&app, &[("q", "STRAẞE")]).await.1,
        1,
        "capital sharp s folds to ß"
    );
    assert_eq!(found(&app, &[("q", "b")]).await.1, 1);
    // The end of the name and the start of the description are not one text.
    assert_eq!(found(&app, &[("q", "bc")]).await.1, 0);
    assert_eq!(found(&app, &[("q", "b c")]).await.1, 0);
    assert_eq!(found(&app, &[("q", "b\u{a0}c")]).await.1, 0);
    app.stop().await;
}

#[tokio::test]
async fn pages_past_the_end_of_a_search_keep_the_true_total() {
    let app = TestApp::spawn().await;
    for i in 0..7 {
        app.product(&format!("prod {i}"), 100).await;
        app.clock.advance(std::time::Duration::from_millis(1));
    }
    for q in ["p", "pr", "pro", "prod", "prod 3"] {
        let (names, total) = found(&app, &[("q", q), ("limit", "3"), ("page", "9")]).await;
        assert!(names.is_empty(), "{q}");
        assert_eq!(total, if q == "prod 3" { 1 } else { 7 }, "{q}");
    }
    let (names, total) = found(&app, &[("q", "prod"), ("limit", "3"), ("page", "3")]).await;
    assert_eq!((names, total), (vec!["prod 0".to_owned()], 7));
    app.stop().await;
}

/// The page is written from each product's stored JSON: texts that JSON must escape come
/// back exactly, in a body that parses, labelled JSON, with the total in both places; the
/// longest `q` and a `q` full of quotes and LIKE syntax are data.
#[tokio::test]
async fn search_pages_carry_any_text_exactly_as_json() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in_admin().await;
    let long = "ü".repeat(50);
    let texts = [
        ("Tea \"quoted\" \\ back", "<p>\"a\" & 'b' \\ c</p>"),
        ("Thé \u{2028}\u{2029} 🍵 tea", "<p>ünï</p>"),
        ("</script><script>alert(1)</script> tea", "<b>x</b>"),
        (long.as_str(), "<p>50%_off \"tea\"</p>"),
    ];
    let mut sent = Vec::new();
    for (name, description) in texts {
        let created = admin_send(
            &app,
            reqwest::Method::POST,
            "/api/v1/admin/products",
            &admin.access,
            Some(serde_json::json!({"name": name, "description": description,
                "price_cents": 100, "currency": "EUR", "stock": 1})),
        )
        .await;
        sent.push(created);
    }
    for (q, expected) in [
        ("tea", 4),
        ("\"", 2),
        ("%_off \"t", 1),
        (long.as_str(), 1),
        ("\u{2028}", 1),
        ("' OR 1=1 --", 0),
    ] {
        let response = app
            .client
            .get(app.url("/api/v1/products"))
            .query(&[("q", q), ("limit", "100")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{q}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let header: u64 = response.headers()["x-total-count"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            (body["total"].as_u64(), header),
            (Some(expected), expected),
            "{q}"
        );
        for item in body["items"].as_array().unwrap() {
            let original = sent.iter().find(|s| s["id"] == item["id"]).unwrap();
            assert_eq!(item, original, "{q}: the page shows the product as created");
        }
    }
    // Past the end: no items, the true total.
    let body: serde_json::Value = app
        .get("/api/v1/products?q=tea&limit=2&page=1000")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            body["items"].as_array().unwrap().len(),
            body["total"].as_u64()
        ),
        (0, Some(4))
    );
    app.stop().await;
}
