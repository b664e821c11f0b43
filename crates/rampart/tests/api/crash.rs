//! Durability: `SIGKILL` in the middle of a burst of orders loses no acknowledged order and
//! leaves no half-written one (API.md §8: nothing committed is lost, nothing half-written is
//! kept). Runs on SQLite and, in the PostgreSQL stage, on PostgreSQL.

use std::{collections::HashMap, io::Write as _, process::Stdio, sync::Arc, time::Duration};

use serde_json::{Value, json};

use crate::{cli::spawn_serve, harness::fresh_database_url};

const ADMIN: &str = "crash-admin@example.com";
const PASSWORD: &str = "Granite-Meadow-51-Lantern!";
const INITIAL_STOCK: i64 = 5_000;

fn create_admin(dir: &std::path::Path, database_url: &str) {
    let mut child = crate::cli::rampart(
        dir,
        &["create-admin", "--email", ADMIN, "--password-stdin"],
        &[("DATABASE_URL", database_url)],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn login(client: &reqwest::Client, addr: &str) -> String {
    let r = client
        .post(format!("http://{addr}/api/v1/auth/login"))
        .json(&json!({"email": ADMIN, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn order_body(products: &[String], n: usize) -> Value {
    // Two lines per order, over different products, with quantities 1–3.
    let a = &products[n % products.len()];
    let b = &products[(n + 1) % products.len()];
    json!({
        "items": [
            {"product_id": a, "quantity": n % 3 + 1},
            {"product_id": b, "quantity": (n + 1) % 3 + 1},
        ],
        "shipping_address": {"street": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "DE"},
    })
}

/// Every order of the admin (admins see all orders), paged.
async fn all_orders(client: &reqwest::Client, addr: &str, token: &str) -> Vec<Value> {
    let mut orders = Vec::new();
    for page in 1.. {
        let r = client
            .get(format!("http://{addr}/api/v1/orders?page={page}&limit=100"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        let items = body["items"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        orders.extend(items);
    }
    orders
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_answered_201_survives_sigkill_and_no_order_is_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url(dir.path()).await;
    tokio::task::block_in_place(|| create_admin(dir.path(), &database_url));
    let vars = [
        ("DATABASE_URL", database_url.as_str()),
        ("RAMPART_RATE_LIMIT_GLOBAL", "1000000/1h"),
        ("RAMPART_LOG", "warn,rampart::application=info"),
    ];
    let (mut child, addr) = tokio::task::block_in_place(|| spawn_serve(dir.path(), &vars));
    let client = reqwest::Client::new();
    let token = login(&client, &addr).await;

    let mut products = Vec::new();
    for i in 0..4 {
        let r = client
            .post(format!("http://{addr}/api/v1/admin/products"))
            .bearer_auth(&token)
            .json(
                &json!({"name": format!("Crash test {i}"), "description": "<p>x</p>",
                "price_cents": 100 + i, "currency": "EUR", "stock": INITIAL_STOCK}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        products.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }

    // A burst of concurrent orders; the process is killed once 40 have been answered 201,
    // while others are still in flight.
    let answered = Arc::new(tokio::sync::watch::Sender::new(0_usize));
    let (killed_tx, killed_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for n in 0..400 {
        let (client, addr, token) = (client.clone(), addr.clone(), token.clone());
        let body = order_body(&products, n);
        let answered = Arc::clone(&answered);
        let mut killed = killed_rx.clone();
        tasks.push(tokio::spawn(async move {
            if *killed.borrow() {
                return None;
            }
            let send = client
                .post(format!("http://{addr}/api/v1/orders"))
                .bearer_auth(&token)
                .json(&body)
                .send();
            let response = tokio::select! {
                r = send => r.ok()?,
                _ = killed.wait_for(|k| *k) => return None,
            };
            if response.status() != 201 {
                return None;
            }
            let order: Value = response.json().await.ok()?;
            answered.send_modify(|n| *n += 1);
            Some(order)
        }));
    }
    let mut progress = answered.subscribe();
    tokio::time::timeout(Duration::from_secs(60), progress.wait_for(|n| *n >= 40))
        .await
        .expect("40 orders answered within 60 s")
        .unwrap();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    killed_tx.send(true).unwrap();
    let mut acknowledged = Vec::new();
    for task in tasks {
        if let Some(order) = task.await.unwrap() {
            acknowledged.push(order);
        }
    }
    assert!(
        acknowledged.len() >= 40,
        "{} acknowledged",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() < 400,
        "the kill came after the whole burst: it proves nothing"
    );

    // Restart on the same database.
    let (child, addr) = tokio::task::block_in_place(|| spawn_serve(dir.path(), &vars));
    let token = login(&client, &addr).await;
    let orders = all_orders(&client, &addr, &token).await;
    let stored: HashMap<&str, &Value> = orders
        .iter()
        .map(|o| (o["id"].as_str().unwrap(), o))
        .collect();
    for order in &acknowledged {
        let id = order["id"].as_str().unwrap();
        let found = stored
            .get(id)
            .unwrap_or_else(|| panic!("order {id} was answered 201 and is gone"));
        assert_eq!(found["items"], order["items"], "order {id} changed");
    }
    eprintln!(
        "crash: {} orders answered 201 before SIGKILL, {} stored after the restart",
        acknowledged.len(),
        orders.len()
    );
    // Every stored order is whole: both lines, and its stock movement.
    let mut taken: HashMap<String, i64> = HashMap::new();
    for order in &orders {
        let items = order["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "a half-written order: {order}");
        assert_eq!(order["status"], "placed");
        for item in items {
            *taken
                .entry(item["product_id"].as_str().unwrap().to_owned())
                .or_default() += item["quantity"].as_i64().unwrap();
        }
    }
    for id in &products {
        let product: Value = client
            .get(format!("http://{addr}/api/v1/products/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            product["stock"].as_i64().unwrap(),
            INITIAL_STOCK - taken.get(id).copied().unwrap_or(0),
            "stock of {id} disagrees with the orders that exist"
        );
    }
    tokio::task::block_in_place(|| crate::cli::stop_serve(child));
}
