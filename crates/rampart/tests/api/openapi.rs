//! The OpenAPI document (`/openapi.json`) as a contract: the structural rules that
//! `openapi-spec-validator`, the generated client and schemathesis (`./scripts/test.sh`
//! stage `openapi`) rely on, pinned here so a regression fails the sqlite stage too; and
//! the server held to the bounds the document states.

use serde_json::{Value, json};

use crate::harness::{TestApp, problem};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn document(app: &TestApp) -> Value {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

/// Every operation: `(path, method, operation)`.
fn operations(doc: &Value) -> Vec<(String, &'static str, &Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                all.push((path.clone(), method, operation));
            }
        }
    }
    assert!(all.len() >= 35, "{} operations", all.len());
    all
}

/// `schema`, or the component its `$ref` names.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap(),
        None => schema,
    }
}

fn request_schema<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
    let body = &doc["paths"][path][method]["requestBody"]["content"]["application/json"];
    resolve(doc, &body["schema"])
}

#[tokio::test]
async fn every_response_has_a_description_and_every_error_the_problem_schema() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for (path, method, operation) in operations(&doc) {
        let responses = operation["responses"].as_object().unwrap();
        for (status, response) in responses {
            let description = response["description"].as_str().unwrap_or_default();
            assert!(
                !description.trim().is_empty(),
                "{method} {path} {status}: no description"
            );
            if status.starts_with(['4', '5']) {
                let content = response["content"].as_object().unwrap();
                let keys: Vec<&String> = content.keys().collect();
                assert_eq!(
                    keys,
                    ["application/problem+json"],
                    "{method} {path} {status}"
                );
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
            }
        }
        // What the pipeline answers before any handler, on every operation.
        for status in ["400", "429", "503"] {
            assert!(responses.contains_key(status), "{method} {path}: {status}");
        }
        let secured = operation["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        if secured {
            assert!(responses.contains_key("401"), "{method} {path}: 401");
        }
        if operation.get("requestBody").is_some() {
            for status in ["413", "415"] {
                assert!(responses.contains_key(status), "{method} {path}: {status}");
            }
        }
        if path.contains('{') {
            assert!(responses.contains_key("404"), "{method} {path}: 404");
        }
        if path.starts_with("/api/v1/admin/") {
            assert!(responses.contains_key("403"), "{method} {path}: 403");
        }
    }
    let problem = &doc["components"]["schemas"]["Problem"];
    for field in ["type", "title", "status", "detail", "code", "request_id"] {
        assert!(
            problem["required"]
                .as_array()
                .unwrap()
                .contains(&json!(field)),
            "{field}"
        );
    }
}

#[tokio::test]
async fn every_list_documents_page_and_limit_with_the_bounds_the_server_enforces() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let admin = app.signed_in_admin().await;
    let mut lists = 0;
    for (path, method, operation) in operations(&doc) {
        let Some(params) = operation["parameters"].as_array() else {
            continue;
        };
        let param = |name: &str| {
            params
                .iter()
                .find(|p| p["name"] == name && p["in"] == "query")
                .map(|p| &p["schema"])
        };
        let (Some(page), Some(limit)) = (param("page"), param("limit")) else {
            assert!(
                param("page").is_none() && param("limit").is_none(),
                "{path}"
            );
            continue;
        };
        lists += 1;
        assert_eq!(
            (method, &page["type"]),
            ("get", &json!("integer")),
            "{path}"
        );
        assert_eq!(
            (&page["minimum"], &page["maximum"]),
            (&json!(1), &json!(100_000))
        );
        assert_eq!(
            (&limit["minimum"], &limit["maximum"]),
            (&json!(1), &json!(100))
        );
        assert_eq!(limit["default"], 20, "{path}");
        // The server takes the documented edges and refuses one past them.
        for (query, status) in [
            ("page=100000&limit=100", 200),
            ("page=1&limit=1", 200),
            ("page=100001", 400),
            ("page=0", 400),
            ("limit=101", 400),
            ("limit=0", 400),
        ] {
            let response = app
                .client
                .get(app.url(&format!("{path}?{query}")))
                .bearer_auth(&admin.access)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{path}?{query}");
            if status == 400 {
                assert_eq!(problem(response).await["code"], "validation_failed");
            }
        }
    }
    assert_eq!(lists, 4, "products, orders, admin users, security events");
}

#[tokio::test]
async fn products_are_created_and_changed_through_different_schemas() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let create = request_schema(&doc, "/api/v1/admin/products", "post");
    let update = request_schema(&doc, "/api/v1/admin/products/{id}", "patch");
    assert_ne!(create, update);
    let mut required: Vec<&str> = create["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["currency", "name", "price_cents", "stock"]);
    assert!(update.get("required").is_none(), "{update}");
    for schema in [create, update] {
        assert_eq!(schema["additionalProperties"], false);
        let props = &schema["properties"];
        assert_eq!(props["description"]["maxLength"], 5000);
        assert_eq!(props["price_cents"]["minimum"], 0);
        assert_eq!(props["price_cents"]["maximum"], 1_000_000_000_000_i64);
        assert_eq!(props["stock"]["maximum"], 1_000_000_000);
    }
    // Only the update takes `null` (unchanged) for a required field of the create.
    assert_eq!(create["properties"]["name"]["type"], "string");
    assert_eq!(create["properties"]["name"]["maxLength"], 200);
    let nullable = update["properties"]["name"]["oneOf"].as_array().unwrap();
    assert_eq!(nullable[0]["type"], "null");
    assert_eq!(nullable[1]["maxLength"], 200);
    let currencies = create["properties"]["currency"]["enum"].as_array().unwrap();
    assert!(currencies.contains(&json!("EUR")) && !currencies.contains(&json!("XXX")));
}

#[tokio::test]
async fn the_server_refuses_what_the_documented_bounds_of_a_product_exclude() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let create = request_schema(&doc, "/api/v1/admin/products", "post");
    let max_name =
        usize::try_from(create["properties"]["name"]["maxLength"].as_u64().unwrap()).unwrap();
    let max_price = create["properties"]["price_cents"]["maximum"]
        .as_i64()
        .unwrap();
    let admin = app.signed_in_admin().await;
    let product = |name: String, price: i64| json!({"name": name, "price_cents": price, "currency": "EUR", "stock": 1});
    let edge = app
        .post_bearer(
            "/api/v1/admin/products",
            &admin.access,
            Some(product("é".repeat(max_name), max_price)),
        )
        .await;
    assert_eq!(edge.status(), 201);
    let past = app
        .post_bearer(
            "/api/v1/admin/products",
            &admin.access,
            Some(product("é".repeat(max_name + 1), max_price + 1)),
        )
        .await;
    assert_eq!(past.status(), 400);
    let body = problem(past).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "price_cents"]);
    // A field the schema does not list is refused too (`additionalProperties: false`).
    let mut extra = product("Tea".to_owned(), 1);
    extra["role"] = json!("admin");
    let refused = app
        .post_bearer("/api/v1/admin/products", &admin.access, Some(extra))
        .await;
    assert_eq!(refused.status(), 400);
}

#[tokio::test]
async fn request_strings_carry_the_formats_and_patterns_of_the_domain_types() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let register = &request_schema(&doc, "/api/v1/auth/register", "post")["properties"];
    assert_eq!(register["email"]["format"], "email");
    assert_eq!(register["email"]["maxLength"], 254);
    assert_eq!(
        (
            &register["password"]["minLength"],
            &register["password"]["maxLength"]
        ),
        (&json!(12), &json!(128))
    );
    assert_eq!(
        (
            &register["name"]["minLength"],
            &register["name"]["maxLength"]
        ),
        (&json!(1), &json!(100))
    );
    let verify = &request_schema(&doc, "/api/v1/auth/verify-email", "post")["properties"];
    assert_eq!(verify["token"]["pattern"], "^[A-Za-z0-9_-]{43}$");
    let order = request_schema(&doc, "/api/v1/orders", "post");
    assert_eq!(
        (
            &order["properties"]["items"]["minItems"],
            &order["properties"]["items"]["maxItems"]
        ),
        (&json!(1), &json!(50))
    );
    let line = resolve(&doc, &order["properties"]["items"]["items"]);
    assert_eq!(
        (
            &line["properties"]["quantity"]["minimum"],
            &line["properties"]["quantity"]["maximum"]
        ),
        (&json!(1), &json!(100))
    );
    let address = resolve(&doc, &order["properties"]["shipping_address"]);
    assert_eq!(
        address["properties"]["postal_code"]["pattern"],
        "^[A-Za-z0-9]{3,10}$"
    );
    let countries = address["properties"]["country"]["enum"].as_array().unwrap();
    assert!(countries.contains(&json!("DE")) && !countries.contains(&json!("UK")));
}
