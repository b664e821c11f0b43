//! Orders that meet in the writer's group commits: concurrent, conflicting, from two
//! instances on one database, beside cancels (the batch of `store::orders`).

use serde_json::Value;
use uuid::Uuid;

use crate::{
    accounts::Session,
    harness::TestApp,
    orders::{order_body, orders_total, product_with, stock_of},
};

/// Place every body of `bodies` at once (spawned tasks, so they meet in the
/// writer's group commits), each answered as (status, body).
async fn place_all_at_once(app: &TestApp, who: &Session, bodies: &[Value]) -> Vec<(u16, Value)> {
    let tasks: Vec<_> = bodies
        .iter()
        .map(|body| {
            let (client, url) = (app.client.clone(), app.url("/api/v1/orders"));
            let (token, body) = (who.access.clone(), body.clone());
            tokio::spawn(async move {
                let response = client.post(url).bearer_auth(token).json(&body).send();
                let response = response.await.unwrap();
                (response.status().as_u16(), response.json().await.unwrap())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_orders_some_conflicting_each_answer_is_what_was_committed() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let scarce = product_with(&app, 100, "EUR", 6).await;
    let plenty = product_with(&app, 250, "EUR", 1_000).await;
    let other = product_with(&app, 75, "EUR", 1_000).await;
    let initial = [(scarce.id, 6), (plenty.id, 1_000), (other.id, 1_000)];
    // 40 orders asking 40 of the 6 scarce units between them, beside plentiful lines:
    // every order that loses the race for the scarce product must take none of the rest.
    let shapes: [&[(Uuid, i64)]; 4] = [
        &[(scarce.id, 1), (plenty.id, 1)],
        &[(scarce.id, 2), (other.id, 1)],
        &[(plenty.id, 3), (other.id, 2)],
        &[(other.id, 1), (scarce.id, 1), (plenty.id, 1)],
    ];
    let asked: Vec<&[(Uuid, i64)]> = (0..40).map(|i| shapes[i % 4]).collect();
    let bodies: Vec<Value> = asked.iter().map(|lines| order_body(lines)).collect();
    let answers = place_all_at_once(&app, &user, &bodies).await;

    let mut taken: std::collections::HashMap<Uuid, i64> = Default::default();
    let (mut created, mut conflicts) = (0, 0);
    for ((status, body), lines) in answers.iter().zip(&asked) {
        match status {
            201 => {
                created += 1;
                // The answer is the stored order, with the lines that were asked.
                let id = body["id"].as_str().unwrap();
                let stored = app
                    .get_bearer(&format!("/api/v1/orders/{id}"), &user.access)
                    .await;
                assert_eq!(stored.status(), 200);
                assert_eq!(&stored.json::<Value>().await.unwrap(), body);
                let items = body["items"].as_array().unwrap();
                assert_eq!(items.len(), lines.len());
                for (item, (product, quantity)) in items.iter().zip(lines.iter()) {
                    assert_eq!(item["product_id"], product.to_string());
                    assert_eq!(item["quantity"], *quantity);
                    *taken.entry(*product).or_default() += quantity;
                }
            }
            409 => {
                assert_eq!(body["code"], "conflict");
                assert!(
                    lines.iter().any(|(p, _)| *p == scarce.id),
                    "only the scarce product can run short: {body}"
                );
                conflicts += 1;
            }
            other => panic!("unexpected answer {other}: {body}"),
        }
    }
    assert!(
        created >= 10,
        "the orders without the scarce product all succeed"
    );
    assert!(conflicts >= 24, "the scarce product sells at most 6 units");
    assert_eq!(
        orders_total(&app, &user).await,
        created,
        "no unanswered order"
    );
    for (product, stock) in initial {
        let left = stock_of(&app, product).await;
        assert_eq!(left, stock - taken.get(&product).copied().unwrap_or(0));
        assert!(left >= 0, "never oversold");
    }
    assert!(
        stock_of(&app, scarce.id).await < 2 || conflicts == 0,
        "a refused order found enough stock for none of its scarce asks"
    );
    app.stop().await;
}

/// Check `answers` (to the orders `asked`) against what was committed, seen from `app`:
/// each is a 201 whose body is the stored order or a 409; the lines the 201s took, per
/// product.
async fn committed_lines(
    app: &TestApp,
    who: &Session,
    answers: &[(u16, Value)],
    asked: &[&[(Uuid, i64)]],
) -> std::collections::HashMap<Uuid, i64> {
    let mut taken: std::collections::HashMap<Uuid, i64> = Default::default();
    for ((status, body), lines) in answers.iter().zip(asked) {
        match status {
            201 => {
                let id = body["id"].as_str().unwrap();
                let stored = app
                    .get_bearer(&format!("/api/v1/orders/{id}"), &who.access)
                    .await;
                assert_eq!(stored.status(), 200);
                assert_eq!(&stored.json::<Value>().await.unwrap(), body);
                for (product, quantity) in lines.iter() {
                    *taken.entry(*product).or_default() += quantity;
                }
            }
            409 => assert_eq!(body["code"], "conflict", "{body}"),
            other => panic!("unexpected answer {other}: {body}"),
        }
    }
    taken
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_database_race_for_the_same_products_exactly_and_without_a_500() {
    let first = TestApp::spawn().await;
    let database_url = first.state.config.database_url.expose().to_owned();
    let keys_dir = first.keys_dir.display().to_string();
    let second = TestApp::spawn_with(&[
        ("DATABASE_URL", &database_url),
        ("RAMPART_KEYS_DIR", &keys_dir),
    ])
    .await;
    let (_, _, user) = first.signed_in_user().await;
    second.secret(&user.access);
    let scarce = product_with(&first, 100, "EUR", 15).await;
    let b = product_with(&first, 200, "EUR", 1_000).await;
    let c = product_with(&first, 300, "EUR", 1_000).await;
    let initial = [(scarce.id, 15), (b.id, 1_000), (c.id, 1_000)];
    // The same rows in every order of lines, so that the two instances' batches (each
    // holding its rows until it commits) would lock them in opposite orders if they
    // locked them line by line.
    let shapes: [&[(Uuid, i64)]; 4] = [
        &[(scarce.id, 1), (b.id, 1), (c.id, 1)],
        &[(c.id, 2), (b.id, 1)],
        &[(b.id, 1), (scarce.id, 1)],
        &[(c.id, 1), (scarce.id, 2), (b.id, 3)],
    ];
    let asked: Vec<&[(Uuid, i64)]> = (0..48).map(|i| shapes[i % 4]).collect();
    let bodies: Vec<Value> = asked.iter().map(|lines| order_body(lines)).collect();
    let (half_a, half_b) = bodies.split_at(24);
    let (answers_a, answers_b) = tokio::join!(
        place_all_at_once(&first, &user, half_a),
        place_all_at_once(&second, &user, half_b),
    );
    let mut taken = committed_lines(&first, &user, &answers_a, &asked[..24]).await;
    for (product, quantity) in committed_lines(&second, &user, &answers_b, &asked[24..]).await {
        *taken.entry(product).or_default() += quantity;
    }
    let created = answers_a
        .iter()
        .chain(&answers_b)
        .filter(|(status, _)| *status == 201)
        .count();
    assert!(
        created >= 12,
        "the orders without the scarce product all succeed"
    );
    assert_eq!(orders_total(&second, &user).await, created as i64);
    for (product, stock) in initial {
        let left = stock_of(&first, product).await;
        assert_eq!(left, stock - taken.get(&product).copied().unwrap_or(0));
        assert!(left >= 0, "never oversold");
    }
    assert!(
        stock_of(&first, scarce.id).await < 2,
        "60 asked of 15: sold out"
    );
    second.stop().await;
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancels_racing_new_orders_for_the_same_stock_keep_it_exact() {
    let app = TestApp::spawn().await;
    let (_, _, user) = app.signed_in_user().await;
    let product = product_with(&app, 100, "EUR", 10).await;
    let one = order_body(&[(product.id, 1)]);
    let first: Vec<(u16, Value)> = place_all_at_once(&app, &user, &vec![one.clone(); 10]).await;
    assert!(first.iter().all(|(status, _)| *status == 201));
    assert_eq!(stock_of(&app, product.id).await, 0);
    // Every first order is cancelled (its stock given back by another writer) while 30
    // new orders race for that stock in the writer's batches.
    let cancels: Vec<_> = first
        .iter()
        .map(|(_, order)| {
            let path = format!("/api/v1/orders/{}/cancel", order["id"].as_str().unwrap());
            let (client, url, token) = (app.client.clone(), app.url(&path), user.access.clone());
            tokio::spawn(async move {
                let response = client.post(url).bearer_auth(token).send().await.unwrap();
                response.status().as_u16()
            })
        })
        .collect();
    let line: &[(Uuid, i64)] = &[(product.id, 1)];
    let asked = vec![line; 30];
    let answers = place_all_at_once(&app, &user, &vec![one; 30]).await;
    for cancel in cancels {
        assert_eq!(cancel.await.unwrap(), 200);
    }
    let taken = committed_lines(&app, &user, &answers, &asked).await;
    let sold = taken.get(&product.id).copied().unwrap_or(0);
    assert!(sold <= 10, "never more than was given back");
    assert_eq!(stock_of(&app, product.id).await, 10 - sold);
    app.stop().await;
}
