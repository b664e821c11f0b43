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
    // A repeat from the same client within the window would fold into the first row
    // (API.md §7): let it close, so the second is a row of its own.
    app.clock.advance(std::time::Duration::from_secs(61));
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

/// The flood kinds of the test below, each with the request that raises it once.
const FLOOD_KINDS: [&str; 3] = ["cors_rejected", "token_invalid", "suspicious_input"];
/// Clients of the flood, and requests of each kind from each.
const FLOOD_CLIENTS: usize = 50;
const FLOOD_PER_CLIENT_AND_KIND: usize = 67;

/// One request that raises `kind` once, from `client`.
fn flood_request(app: &TestApp, kind: &str, client: &str) -> reqwest::RequestBuilder {
    let request = match kind {
        "cors_rejected" => app
            .client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/products"))
            .header("origin", "https://evil.example.com")
            .header("access-control-request-method", "POST"),
        "token_invalid" => app.client.get(app.url("/api/v1/me")).bearer_auth("a.b.c"),
        _ => app
            .client
            .get(app.url("/api/v1/products?limit=1&q=%27%20OR%201%3D1%20--")),
    };
    request.header("x-forwarded-for", client)
}

/// API.md §7 and the README's ceiling: a flood of the folded kinds from many clients writes
/// one row and two log lines per (kind, client) per 60 s window: the first event in full at
/// once with its own request id, and the window's count once it closes; nothing is lost
/// from the count.
#[tokio::test]
async fn a_flood_of_folded_events_from_many_clients_stays_under_the_ceiling_and_counts_add_up() {
    let app = std::sync::Arc::new(
        TestApp::spawn_with(&[
            ("RAMPART_CORS_ORIGINS", "https://app.example.com"),
            ("RAMPART_TRUSTED_PROXIES", "127.0.0.1/32"),
            ("RAMPART_RATE_LIMIT_GLOBAL", "10000000/1h"),
        ])
        .await,
    );
    let jobs: Vec<(&str, String)> = (0..FLOOD_PER_CLIENT_AND_KIND)
        .flat_map(|_| {
            FLOOD_KINDS.into_iter().flat_map(|kind| {
                (0..FLOOD_CLIENTS).map(move |c| (kind, format!("100.64.7.{}", c + 1)))
            })
        })
        .collect();
    let sent = jobs.len();
    assert!(sent >= 10_000, "{sent}");
    let jobs = std::sync::Arc::new(jobs);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (app, jobs, next) = (app.clone(), jobs.clone(), next.clone());
        workers.spawn(async move {
            // (kind, client) -> request ids answered
            let mut ids: Vec<(&'static str, String, String)> = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((kind, client)) = jobs.get(i) else {
                    return ids;
                };
                let response = flood_request(&app, kind, client).send().await.unwrap();
                let expected = match *kind {
                    "cors_rejected" => 403,
                    "token_invalid" => 401,
                    _ => 200,
                };
                assert_eq!(response.status(), expected, "{kind} from {client}");
                let id = response.headers()["x-request-id"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                ids.push((kind, client.clone(), id));
            }
        });
    }
    let mut answered: std::collections::HashMap<(String, String), Vec<String>> =
        std::collections::HashMap::new();
    while let Some(done) = workers.join_next().await {
        for (kind, client, id) in done.unwrap() {
            answered
                .entry((kind.to_owned(), client))
                .or_default()
                .push(id);
        }
    }
    assert_eq!(answered.values().map(Vec::len).sum::<usize>(), sent);

    let rows_of = |kind: &'static str| {
        let db = app.db.clone();
        async move {
            let (rows, total) = rampart::store::events::list(
                &db,
                Some(kind),
                None,
                rampart::domain::paging::Page::default(),
                rampart::domain::paging::Limit::parse("100").unwrap(),
            )
            .await
            .unwrap();
            assert!(total <= 100, "{kind}: {total} rows, more than one page");
            rows
        }
    };
    // Every first event is stored at once: one row per (kind, client), before any window
    // closed, each with the id of one of that client's own requests.
    for kind in FLOOD_KINDS {
        let rows = eventually(&format!("a {kind} row per client"), || async {
            let rows = rows_of(kind).await;
            (rows.len() >= FLOOD_CLIENTS).then_some(rows)
        })
        .await;
        assert_eq!(rows.len(), FLOOD_CLIENTS, "{kind}: one row per client");
        for row in &rows {
            let ids = &answered[&(kind.to_owned(), row.ip.clone())];
            assert!(
                ids.contains(&row.request_id),
                "{kind} from {}: {} is not one of its requests",
                row.ip,
                row.request_id
            );
            let details: Value = serde_json::from_str(&row.details).unwrap();
            assert!(details.get("repeats").is_none(), "the window is still open");
        }
    }
    // The window closes on the app's clock; the sweep then adds each count to its row.
    app.clock.advance(std::time::Duration::from_secs(61));
    for kind in FLOOD_KINDS {
        let rows = eventually(&format!("{kind} repeats written"), || async {
            let rows = rows_of(kind).await;
            rows.iter()
                .all(|r| {
                    let details: Value = serde_json::from_str(&r.details).unwrap();
                    details["repeats"].as_u64().is_some()
                })
                .then_some(rows)
        })
        .await;
        assert_eq!(
            rows.len(),
            FLOOD_CLIENTS,
            "{kind}: still one row per client"
        );
        for row in rows {
            let details: Value = serde_json::from_str(&row.details).unwrap();
            let count = 1 + details["repeats"].as_u64().unwrap();
            let ids = &answered[&(kind.to_owned(), row.ip.clone())];
            assert_eq!(
                usize::try_from(count).unwrap(),
                ids.len(),
                "{kind} from {}: the row counts every request",
                row.ip
            );
        }
    }
    // And the log: per (kind, client) one full line at once and one line with the count.
    let mut full = std::collections::HashMap::<(String, String), usize>::new();
    let mut repeated = std::collections::HashMap::<(String, String), u64>::new();
    for line in crate::logs::captured().lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let fields = &entry["fields"];
        let kind = fields["event"].as_str().unwrap_or_default().to_owned();
        match fields["message"].as_str() {
            Some("security event") => {
                let ip = fields["ip"].as_str().unwrap_or_default();
                if ip.starts_with("100.64.7.") {
                    *full.entry((kind, ip.to_owned())).or_default() += 1;
                }
            }
            Some("security event repeated") => {
                let client = fields["client"].as_str().unwrap_or_default();
                if client.starts_with("100.64.7.") {
                    *repeated.entry((kind, client.to_owned())).or_default() +=
                        fields["repeats"].as_u64().unwrap_or_default();
                }
            }
            _ => {}
        }
    }
    assert_eq!(full.len(), FLOOD_KINDS.len() * FLOOD_CLIENTS);
    assert!(
        full.values().all(|n| *n == 1),
        "one full line per (kind, client)"
    );
    assert_eq!(repeated.len(), FLOOD_KINDS.len() * FLOOD_CLIENTS);
    for (key, repeats) in &repeated {
        assert_eq!(
            usize::try_from(*repeats).unwrap() + 1,
            answered[key].len(),
            "{key:?}: one count line with every repeat"
        );
    }
    std::sync::Arc::try_unwrap(app)
        .ok()
        .expect("workers are done")
        .stop()
        .await;
}
