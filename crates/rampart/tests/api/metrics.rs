//! Prometheus metrics on `RAMPART_METRICS_LISTEN`, never on the public listener.

use crate::{
    cli::{spawn_serve, stop_serve},
    harness::eventually,
};

/// A loopback port that nothing listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The value of the first sample of `family` whose labels include every one of `labels`.
fn sample(body: &str, family: &str, labels: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn scrape(client: &reqwest::Client, url: &str) -> String {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_listener_shows_every_family_and_values_move_while_the_public_one_has_none() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let (child, addr) = tokio::task::block_in_place(|| {
        spawn_serve(
            dir.path(),
            &[("RAMPART_METRICS_LISTEN", metrics_addr.as_str())],
        )
    });
    let client = reqwest::Client::new();
    let url = format!("http://{metrics_addr}/metrics");
    // The metrics listener is bound before the server reports that it serves.
    let first = scrape(&client, &url).await;

    for _ in 0..3 {
        let r = client
            .get(format!("http://{addr}/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let missing = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        missing.status(),
        404,
        "the public listener never serves metrics"
    );
    let email = "metrics-probe@example.com";
    let login = client
        .post(format!("http://{addr}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": "not the password at all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 401);

    let health = ["route=\"/health\"", "method=\"GET\"", "status=\"2xx\""];
    let before = sample(&first, "rampart_http_requests_total", &health).unwrap_or(0.0);
    // Events are counted off the response path.
    let body = eventually("the login_failed event counted", || async {
        let body = scrape(&client, &url).await;
        sample(
            &body,
            "rampart_security_events_total",
            &["type=\"login_failed\""],
        )
        .map(|_| body)
    })
    .await;
    assert_eq!(
        sample(&body, "rampart_http_requests_total", &health),
        Some(before + 3.0)
    );
    assert_eq!(
        sample(
            &body,
            "rampart_http_requests_total",
            &["route=\"(unmatched)\"", "status=\"4xx\""]
        ),
        Some(1.0),
        "the public /metrics was a 404 of no route"
    );
    assert!(
        sample(
            &body,
            "rampart_http_request_duration_seconds_count",
            &["route=\"/health\""]
        )
        .is_some_and(|n| n >= 3.0)
    );
    assert!(body.contains("rampart_http_request_duration_seconds_bucket{"));
    assert!(
        sample(
            &body,
            "rampart_rate_limit_decisions_total",
            &["policy=\"global\"", "outcome=\"allowed\""]
        )
        .is_some_and(|n| n >= 5.0)
    );
    for family in [
        "rampart_http_requests_in_flight",
        "rampart_rate_limit_store_degraded",
        "rampart_password_hash_queue_depth",
        "rampart_password_hash_running",
        "rampart_db_pool_max_connections",
    ] {
        assert!(
            sample(&body, family, &[]).is_some(),
            "{family} missing:\n{body}"
        );
    }
    assert_eq!(
        sample(&body, "rampart_rate_limit_store_degraded", &[]),
        Some(0.0)
    );
    assert!(sample(&body, "rampart_db_pool_connections", &["state=\"idle\""]).is_some());
    assert!(sample(&body, "rampart_build_info", &["version=\""]) == Some(1.0));

    // Nothing identifying in any label.
    assert!(!body.contains(email), "an email in the metrics");
    assert!(!body.contains("127.0.0.1"), "an address in the metrics");

    // Values keep moving.
    client
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    let again = scrape(&client, &url).await;
    assert_eq!(
        sample(&again, "rampart_http_requests_total", &health),
        Some(before + 4.0)
    );
    tokio::task::block_in_place(|| stop_serve(child));
}
