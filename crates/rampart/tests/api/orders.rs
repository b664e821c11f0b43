//! API.md §5: orders. Server-side prices, stock that never oversells under concurrency,
//! idempotency keys, and object-level authorization (another user's order is a 404).

use rampart::{
    domain::product::{NewProduct, Product},
    http::orders::{PlaceOrderInput, request_hash},
    store::{self, idempotency},
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    accounts::Session,
    harness::{TestApp, problem},
};

pub(crate) async fn product_with(
    app: &TestApp,
    price_cents: i64,
    currency: &str,
    stock: i64,
) -> Product {
    store::products::create(
        &app.db,
        &NewProduct {
            name: format!("Product {}", &Uuid::new_v4().simple().to_string()[..6]),
            description: "A product".to_owned(),
            price_cents,
            currency: currency.to_owned(),
            stock,
        },
        app.clock.now_ms(),
    )
    .await
    .unwrap()
}

pub(crate) async fn stock_of(app: &TestApp, id: Uuid) -> i64 {
    store::products::get(&app.db, id)
        .await
        .unwrap()
        .unwrap()
        .stock
}

pub(crate) fn order_body(items: &[(Uuid, i64)]) -> Value {
    json!({
        "items": items
            .iter()
            .map(|(id, quantity)| json!({"product_id": id, "quantity": quantity}))
            .collect::<Vec<_>>(),
        "shipping_address": {
            "street": "1 Main Street",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE"
        }
    })
}

async fn place(app: &TestApp, who: &Session, body: &Value, key: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&who.access)
        .json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await.unwrap()
}

/// How many orders `who` sees in their list.
pub(crate) async fn orders_total(app: &TestApp, who: &Session) -> i64 {
    let list: Value = app
        .get_bearer("/api/v1/orders", &who.access)
        .await
        .json()
        .await
        .unwrap();
    list["total"].as_i64().unwrap()
}

/// Place `n` orders of `body` at once (spawned tasks, so they run in parallel), each
/// answered as (status, body text).
async fn place_concurrently(
    app: &TestApp,
    who: &Session,
    body: &Value,
    key: Option<&str>,
    n: usize,
) -> Vec<(u16, String)> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (client, url) = (app.client.clone(), app.url("/api/v1/orders"));
            let (token, body) = (who.access.clone(), body.clone());
            let key = key.map(str::to_owned);
            tokio::spawn(async move {
                let mut request = client.post(url).bearer_auth(token).json(&body);
                if let Some(key) = key {
                    request = request.header("idempotency-key", key);
                }
                let response = request.send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// A problem body without its request id, for comparing two answers.
async fn problem_without_id(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let mut body = problem(response).await;
    body.as_object_mut().unwrap().remove("request_id");
    (status, body)
}

fn error_fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_order_is_priced_by_the_server_and_takes_its_stock() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let tea = product_with(&app, 250, "EUR", 10).await;
    let cup = product_with(&app, 1000, "EUR", 3).await;
    let mut body = order_body(&[(tea.id, 2), (cup.id, 1), (tea.id, 1)]);
    body["coupon_code"] = json!("WELCOME10");
    let response = place(&app, &user, &body, None).await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["status"], "placed");
    assert_eq!(order["total_cents"], 250 * 3 + 1000);
    assert_eq!(order["currency"], "EUR");
    assert_eq!(order["coupon_code"], "WELCOME10");
    assert_eq!(order["shipping_address"]["country"], "DE");
    let items = order["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["unit_price_cents"], 250);
    assert_eq!(items[0]["line_total_cents"], 500);
    assert_eq!(items[1]["name"], cup.name.as_str());
    assert_eq!(stock_of(&app, tea.id).await, 7);
    assert_eq!(stock_of(&app, cup.id).await, 2);

    let id = order["id"].as_str().unwrap();
    let read: Value = app
        .get_bearer(&format!("/api/v1/orders/{id}"), &user.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read, order);
    let list = app.get_bearer("/api/v1/orders", &user.access).await;
    assert_eq!(list.headers()["x-total-count"], "1");
    let list: Value = list.json().await.unwrap();
    assert_eq!(
        (list["page"].clone(), list["limit"].clone()),
        (json!(1), json!(20))
    );
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0], order);

    // Lists are paged like every other list.
    for _ in 0..2 {
        let response = place(&app, &user, &order_body(&[(tea.id, 1)]), None).await;
        assert_eq!(response.status(), 201);
    }
    let page = app
        .get_bearer("/api/v1/orders?limit=2&page=2", &user.access)
        .await;
    assert_eq!(page.headers()["x-total-count"], "3");
    let page: Value = page.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        (page["page"].clone(), page["limit"].clone()),
        (json!(2), json!(2))
    );
    let bad = app
        .get_bearer("/api/v1/orders?limit=101&status=placed", &user.access)
        .await;
    assert_eq!(bad.status(), 400);
    assert_eq!(error_fields(&problem(bad).await), ["limit", "status"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_concurrent_orders_against_a_stock_of_five_sell_exactly_five() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let product = product_with(&app, 100, "EUR", 5).await;
    let body = order_body(&[(product.id, 1)]);
    let mut created = 0;
    let mut conflicts = 0;
    for (status, text) in place_concurrently(&app, &user, &body, None, 30).await {
        match status {
            201 => created += 1,
            409 => {
                let code = serde_json::from_str::<Value>(&text).unwrap()["code"].clone();
                assert_eq!(code, "conflict");
                conflicts += 1;
            }
            other => panic!("unexpected answer {other}: {text}"),
        }
    }
    assert_eq!((created, conflicts), (5, 25));
    assert_eq!(stock_of(&app, product.id).await, 0);
    let list = app.get_bearer("/api/v1/orders", &user.access).await;
    assert_eq!(list.headers()["x-total-count"], "5");
    app.stop().await;
}

#[tokio::test]
async fn an_order_short_of_stock_is_409_and_takes_nothing_from_any_line() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let plenty = product_with(&app, 100, "EUR", 10).await;
    let scarce = product_with(&app, 100, "EUR", 1).await;
    let response = place(
        &app,
        &user,
        &order_body(&[(plenty.id, 4), (scarce.id, 2)]),
        None,
    )
    .await;
    assert_eq!(response.status(), 409);
    assert_eq!(problem(response).await["code"], "conflict");
    assert_eq!(stock_of(&app, plenty.id).await, 10);
    assert_eq!(stock_of(&app, scarce.id).await, 1);
    assert_eq!(orders_total(&app, &user).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_product_is_400_naming_its_line_and_mixed_currencies_are_409() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let euro = product_with(&app, 100, "EUR", 10).await;
    let dollar = product_with(&app, 100, "USD", 10).await;
    let response = place(
        &app,
        &user,
        &order_body(&[(euro.id, 1), (Uuid::new_v4(), 1)]),
        None,
    )
    .await;
    assert_eq!(response.status(), 400);
    let body = problem(response).await;
    assert_eq!(body["code"], "validation_failed");
    assert_eq!(error_fields(&body), ["items[1].product_id"]);

    let response = place(
        &app,
        &user,
        &order_body(&[(euro.id, 1), (dollar.id, 1)]),
        None,
    )
    .await;
    assert_eq!(response.status(), 409);
    assert_eq!(problem(response).await["code"], "conflict");
    assert_eq!(stock_of(&app, euro.id).await, 10);
    assert_eq!(stock_of(&app, dollar.id).await, 10);
    app.stop().await;
}

#[tokio::test]
async fn client_prices_totals_statuses_and_owners_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let product = product_with(&app, 100, "EUR", 10).await;
    let mut priced = order_body(&[(product.id, 1)]);
    priced["items"][0]["price_cents"] = json!(1);
    let response = place(&app, &user, &priced, None).await;
    assert_eq!(response.status(), 400);
    let body = problem(response).await;
    assert_eq!(body["code"], "validation_failed");
    assert_eq!(error_fields(&body), ["items[0].price_cents"]);

    for field in ["status", "total", "total_cents", "user_id"] {
        let mut body = order_body(&[(product.id, 1)]);
        body[field] = json!("cancelled");
        let response = place(&app, &user, &body, None).await;
        assert_eq!(response.status(), 400, "{field}");
        assert_eq!(error_fields(&problem(response).await), [field]);
    }
    let mut nested = order_body(&[(product.id, 1)]);
    nested["shipping_address"]["is_verified"] = json!(true);
    let response = place(&app, &user, &nested, None).await;
    assert_eq!(
        error_fields(&problem(response).await),
        ["shipping_address.is_verified"]
    );
    assert_eq!(stock_of(&app, product.id).await, 10);
    app.stop().await;
}

#[tokio::test]
async fn fifty_one_items_a_zero_quantity_and_a_bad_country_are_reported_together() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let product = product_with(&app, 100, "EUR", 1000).await;
    let mut body = order_body(&vec![(product.id, 1); 51]);
    body["items"][3]["quantity"] = json!(0);
    body["shipping_address"]["country"] = json!("XX");
    let response = place(&app, &user, &body, None).await;
    assert_eq!(response.status(), 400);
    let body = problem(response).await;
    assert_eq!(body["code"], "validation_failed");
    assert_eq!(
        error_fields(&body),
        ["items", "items[3].quantity", "shipping_address.country"]
    );
    let mut body = order_body(&[(product.id, 101)]);
    body["shipping_address"]["postal_code"] = json!("1 2");
    body["coupon_code"] = json!("TEN%OFF");
    let fields = error_fields(&problem(place(&app, &user, &body, None).await).await);
    assert_eq!(
        fields,
        [
            "items[0].quantity",
            "shipping_address.postal_code",
            "coupon_code"
        ]
    );
    assert_eq!(stock_of(&app, product.id).await, 1000);
    app.stop().await;
}

#[tokio::test]
async fn another_users_order_is_the_same_404_as_a_random_id_and_an_admin_sees_it() {
    let app = TestApp::spawn().await;
    let (_, _, alice) = app.signed_in_user().await;
    let (_, _, bob) = app.signed_in_user().await;
    let product = product_with(&app, 100, "EUR", 10).await;
    let order: Value = place(&app, &alice, &order_body(&[(product.id, 2)]), None)
        .await
        .json()
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap().to_owned();
    let random = Uuid::new_v4().to_string();

    let read = |target: String| {
        let app = &app;
        let token = bob.access.clone();
        async move {
            problem_without_id(
                app.get_bearer(&format!("/api/v1/orders/{target}"), &token)
                    .await,
            )
            .await
        }
    };
    let cancel = |target: String| {
        let app = &app;
        let token = bob.access.clone();
        async move {
            problem_without_id(
                app.post_bearer(&format!("/api/v1/orders/{target}/cancel"), &token, None)
                    .await,
            )
            .await
        }
    };
    let (alices, unknown) = (read(id.clone()).await, read(random.clone()).await);
    assert_eq!(alices.0, 404);
    assert_eq!(alices.1["code"], "not_found");
    assert_eq!(alices, unknown);
    let (alices, unknown) = (cancel(id.clone()).await, cancel(random.clone()).await);
    assert_eq!(alices.0, 404);
    assert_eq!(alices, unknown);
    // Bob's cancel changed nothing.
    assert_eq!(stock_of(&app, product.id).await, 8);

    let bobs: Value = app
        .get_bearer("/api/v1/orders", &bob.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bobs["total"], 0);
    assert!(!bobs.to_string().contains(&id));

    let admin = app.signed_in_admin().await;
    let seen = app
        .get_bearer(&format!("/api/v1/orders/{id}"), &admin.access)
        .await;
    assert_eq!(seen.status(), 200);
    assert_eq!(seen.json::<Value>().await.unwrap(), order);
    let all: Value = app
        .get_bearer("/api/v1/orders", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == id.as_str())
    );

    // An admin may cancel it too; the stock comes back.
    let cancelled = app
        .post_bearer(&format!("/api/v1/orders/{id}/cancel"), &admin.access, None)
        .await;
    assert_eq!(cancelled.status(), 200);
    assert_eq!(
        cancelled.json::<Value>().await.unwrap()["status"],
        "cancelled"
    );
    assert_eq!(stock_of(&app, product.id).await, 10);

    // Each probe of an existing order is a `forbidden` event; the random ids are not.
    let events: Value = app
        .get_bearer(
            &format!(
                "/api/v1/admin/security-events?type=forbidden&user_id={}",
                bob.user_id()
            ),
            &admin.access,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["total"], 2);
    assert_eq!(events["items"][0]["details"]["order_id"], id.as_str());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_cancels_restore_stock_exactly_once_and_a_second_cancel_is_harmless() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let product = product_with(&app, 100, "EUR", 10).await;
    let order: Value = place(
        &app,
        &user,
        &order_body(&[(product.id, 3), (product.id, 1)]),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(stock_of(&app, product.id).await, 6);
    let path = format!("/api/v1/orders/{}/cancel", order["id"].as_str().unwrap());
    let url = app.url(&path);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (client, url, token) = (app.client.clone(), url.clone(), user.access.clone());
            tokio::spawn(async move {
                let response = client.post(url).bearer_auth(token).send().await.unwrap();
                (
                    response.status().as_u16(),
                    response.json::<Value>().await.unwrap(),
                )
            })
        })
        .collect();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body["status"], "cancelled");
        assert_eq!(body["id"], order["id"]);
    }
    assert_eq!(stock_of(&app, product.id).await, 10);
    let again = app.post_bearer(&path, &user.access, None).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "cancelled");
    assert_eq!(stock_of(&app, product.id).await, 10);
    app.stop().await;
}

#[tokio::test]
async fn the_same_idempotency_key_twice_creates_one_order_and_replays_the_identical_body() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let product = product_with(&app, 100, "EUR", 10).await;
    let body = order_body(&[(product.id, 2)]);
    let first = place(&app, &user, &body, Some("order-1")).await;
    assert_eq!(first.status(), 201);
    let first = first.text().await.unwrap();
    // The same body with its keys in another order and other whitespace is the same request.
    let reordered = format!(
        r#"{{ "shipping_address": {{"country":"DE","postal_code":"10115","city":"Berlin","street":"1 Main Street"}},
            "items": [ {{"quantity": 2, "product_id": "{}"}} ] }}"#,
        product.id
    );
    let second = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&user.access)
        .header("content-type", "application/json")
        .header("idempotency-key", "order-1")
        .body(reordered)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.text().await.unwrap(), first);
    assert_eq!(stock_of(&app, product.id).await, 8);
    assert_eq!(orders_total(&app, &user).await, 1);

    // Keys are scoped per user: another user's identical key is a new order of theirs.
    let (_, _, other) = app.signed_in_user().await;
    let theirs = place(&app, &other, &body, Some("order-1")).await;
    assert_eq!(theirs.status(), 201);
    assert_ne!(theirs.text().await.unwrap(), first);
    assert_eq!(stock_of(&app, product.id).await, 6);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_requests_with_one_idempotency_key_place_one_order() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let product = product_with(&app, 100, "EUR", 50).await;
    let body = order_body(&[(product.id, 1)]);
    let mut created = Vec::new();
    for (status, text) in place_concurrently(&app, &user, &body, Some("double-click"), 12).await {
        match status {
            201 => created.push(text),
            409 => assert!(text.contains("\"conflict\""), "{text}"),
            other => panic!("unexpected {other}: {text}"),
        }
    }
    // Whoever got 201 got the one order (first or replayed); the rest were told it was in flight.
    assert!(!created.is_empty());
    assert!(created.iter().all(|t| *t == created[0]));
    assert_eq!(stock_of(&app, product.id).await, 49);
    assert_eq!(orders_total(&app, &user).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn the_same_idempotency_key_with_another_body_is_422_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let product = product_with(&app, 100, "EUR", 10).await;
    let first = place(&app, &user, &order_body(&[(product.id, 1)]), Some("k-42")).await;
    assert_eq!(first.status(), 201);
    let reused = place(&app, &user, &order_body(&[(product.id, 5)]), Some("k-42")).await;
    assert_eq!(reused.status(), 422);
    assert_eq!(problem(reused).await["code"], "idempotency_key_reused");
    assert_eq!(stock_of(&app, product.id).await, 9);
    app.stop().await;
}

#[tokio::test]
async fn a_key_whose_first_request_is_in_flight_is_409_and_a_malformed_key_is_400() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let product = product_with(&app, 100, "EUR", 10).await;
    let body = order_body(&[(product.id, 1)]);
    // The first request has claimed the key and not finished: claim it as that request does.
    let input: PlaceOrderInput = serde_json::from_value(body.clone()).unwrap();
    let key = idempotency::Key {
        user_id: user.user_id(),
        key: "in-flight",
    };
    let claim = idempotency::claim(
        &app.db,
        &key,
        &request_hash(&input),
        app.clock.now_ms(),
        86_400_000,
        60_000,
    )
    .await
    .unwrap();
    assert_eq!(claim, idempotency::Claim::Claimed);
    let second = place(&app, &user, &body, Some("in-flight")).await;
    assert_eq!(second.status(), 409);
    assert_eq!(problem(second).await["code"], "conflict");
    assert_eq!(stock_of(&app, product.id).await, 10);

    for bad in ["", &"k".repeat(256), "tab\there"] {
        let response = place(&app, &user, &body, Some(bad)).await;
        assert_eq!(response.status(), 400, "{bad:?}");
        assert_eq!(error_fields(&problem(response).await), ["Idempotency-Key"]);
    }
    assert_eq!(stock_of(&app, product.id).await, 10);
    app.stop().await;
}

#[tokio::test]
async fn a_stored_answer_is_replayed_for_24_hours_and_the_key_is_free_after() {
    let app = TestApp::spawn().await;
    let (email, password, user) = app.signed_in_user().await;
    let product = product_with(&app, 100, "EUR", 1).await;
    let body = order_body(&[(product.id, 2)]);
    // A short-stock answer is the answer to that request, replayed like a success.
    let first = place(&app, &user, &body, Some("retry-me")).await;
    assert_eq!(first.status(), 409);
    let first = problem_without_id(first).await;
    let again = place(&app, &user, &body, Some("retry-me")).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(problem_without_id(again).await, first);

    store::products::update(
        &app.db,
        product.id,
        &rampart::domain::product::ProductPatch {
            stock: Some(5),
            ..Default::default()
        },
        app.clock.now_ms(),
    )
    .await
    .unwrap();
    app.clock
        .advance(std::time::Duration::from_secs(24 * 60 * 60 + 1));
    let user = app.login(&email, &password).await;
    let later = place(&app, &user, &body, Some("retry-me")).await;
    assert_eq!(later.status(), 201);
    assert!(later.headers().get("idempotent-replayed").is_none());
    assert_eq!(stock_of(&app, product.id).await, 3);
    app.stop().await;
}
