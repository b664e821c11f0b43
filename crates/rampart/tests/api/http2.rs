//! HTTP/2: ALPN `h2` over TLS with HTTP/1.1 beside it, cleartext h2c only when configured,
//! and every limit of API.md §3 on HTTP/2 too (header list, body, idle and slow clients,
//! the stream cap, rapid reset), with graceful shutdown.

use std::time::Duration;

use bytes::Bytes;
use reqwest::Version;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::harness::{TestApp, problem};

/// The client preface and an empty SETTINGS frame (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

fn h2c_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

async fn h2c_app(vars: &[(&str, &str)]) -> TestApp {
    let mut all = vec![("RAMPART_H2C", "on")];
    all.extend_from_slice(vars);
    TestApp::spawn_with(&all).await
}

/// An `h2` client connection over plain TCP (prior knowledge), its driver spawned; the
/// driver's result says how the server ended the connection.
async fn h2_connect(
    app: &TestApp,
) -> (
    h2::client::SendRequest<Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let tcp = TcpStream::connect(app.addr).await.unwrap();
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    (send, tokio::spawn(connection))
}

fn get(app: &TestApp, path: &str) -> http::Request<()> {
    http::Request::get(format!("http://{}{path}", app.addr))
        .body(())
        .unwrap()
}

/// Read until the server closes; `false` if it stayed open past `bound`.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    tokio::time::timeout(bound, async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn tls_clients_offering_h2_get_http2_and_http11_clients_still_get_http11() {
    let app = TestApp::spawn_tls().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_2);
    crate::harness::assert_security_headers(response.headers());
    assert!(response.headers().contains_key("strict-transport-security"));

    let pem = std::fs::read(app.keys_dir.join("../../cert.pem")).unwrap();
    let http11 = reqwest::Client::builder()
        .http1_only()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let response = http11.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_11);
    app.stop().await;
}

#[tokio::test]
async fn curl_http2_over_tls_negotiates_h2() {
    // scripts/test.sh installs curl where it is missing: without it this test fails.
    let curl = which_curl().expect("curl on PATH (Debian package `curl`)");
    let app = TestApp::spawn_tls().await;
    let url = app.url("/health");
    // Blocking, off the runtime thread that serves the app.
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(curl)
            .args([
                "--http2",
                "-k",
                "-sS",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
            ])
            .args(["-w", "%{http_version} %{http_code}"])
            .arg(&url)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "2 200",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    app.stop().await;
}

fn which_curl() -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("curl"))
                .find(|candidate| candidate.is_file())
        })
        .ok_or(())
}

#[tokio::test]
async fn body_and_header_limits_hold_on_http2() {
    let app = TestApp::spawn_tls().await;
    let response = app
        .client
        .post(app.url("/api/v1/admin/products"))
        .header("content-type", "application/json")
        .body(format!("{{\"a\":\"{}\"}}", "x".repeat(11 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.status(), 413);
    assert_eq!(problem(response).await["code"], "payload_too_large");

    // Streamed, without a length: cut off at the limit all the same.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..64).map(|_| Ok(vec![b' '; 1024])).collect();
    let response = app
        .client
        .post(app.url("/api/v1/admin/products"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    // Over 16 KiB of headers: the pipeline's 431 problem.
    let mut request = app.client.get(app.url("/health"));
    for i in 0..5 {
        request = request.header(format!("x-filler-{i}"), "v".repeat(4000));
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.status(), 431);
    assert_eq!(problem(response).await["code"], "headers_too_large");

    // Far over (HPACK would let a small frame decode to this): refused by the protocol
    // layer before any handler, with a 431 or a reset stream, never served.
    let mut request = app.client.get(app.url("/health"));
    for i in 0..40 {
        request = request.header(format!("x-filler-{i}"), "v".repeat(4000));
    }
    match request.send().await {
        Ok(response) => assert_eq!(response.status(), 431),
        Err(e) => assert!(!e.is_timeout(), "{e}"),
    }
    // The connection is still good for the next request.
    assert_eq!(app.get("/health").await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn h2c_is_served_only_when_configured_and_http11_stays_on_the_same_port() {
    let app = h2c_app(&[]).await;
    let response = h2c_client().get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_2);
    let response = app.get("/health").await;
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.status(), 200);
    app.stop().await;

    let app = TestApp::spawn().await;
    assert!(
        h2c_client().get(app.url("/health")).send().await.is_err(),
        "h2c answered although RAMPART_H2C is off"
    );
    assert_eq!(app.get("/health").await.status(), 200);
    app.stop().await;
}

#[test]
fn an_h2c_setting_other_than_on_or_off_is_an_error_naming_it() {
    let vars = std::collections::HashMap::from([("RAMPART_H2C".to_owned(), "yes".to_owned())]);
    let errors = rampart::config::Config::load(&vars)
        .unwrap_err()
        .to_string();
    assert!(errors.contains("RAMPART_H2C"), "{errors}");
}

#[tokio::test]
async fn the_server_caps_concurrent_streams_at_100() {
    let app = h2c_app(&[]).await;
    let (send, _driver) = h2_connect(&app).await;
    let mut send = send.ready().await.unwrap();
    let (response, _) = send.send_request(get(&app, "/health"), true).unwrap();
    assert_eq!(response.await.unwrap().status(), 200);
    // The server's SETTINGS arrived before its first response.
    assert_eq!(
        send.current_max_send_streams(),
        rampart::server::MAX_CONCURRENT_STREAMS as usize
    );
    app.stop().await;
}

#[tokio::test]
async fn a_connection_that_never_sends_a_request_is_closed_on_either_protocol() {
    let app = h2c_app(&[("RAMPART_HEADER_READ_TIMEOUT", "1s")]).await;
    // Nothing at all (not even the protocol is known yet).
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    // An HTTP/2 preface and settings, then nothing.
    let mut idle_h2 = TcpStream::connect(app.addr).await.unwrap();
    idle_h2.write_all(PREFACE).await.unwrap();
    // Meanwhile others are served.
    let response = h2c_client().get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        closed_within(&mut silent, Duration::from_secs(10)).await,
        "a silent connection was left open"
    );
    assert!(
        closed_within(&mut idle_h2, Duration::from_secs(10)).await,
        "an idle HTTP/2 connection was left open"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_http2_request_in_flight_is_not_cut_by_the_idle_limit() {
    let app = h2c_app(&[("RAMPART_HEADER_READ_TIMEOUT", "1s")]).await;
    let (send, driver) = h2_connect(&app).await;
    let mut send = send.ready().await.unwrap();
    let request = http::Request::post(format!("http://{}/api/v1/auth/login", app.addr))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (response, mut body) = send.send_request(request, false).unwrap();
    body.send_data(Bytes::from_static(b"{\"email\":"), false)
        .unwrap();
    // Longer than the idle limit with the body open: the in-flight stream keeps it.
    let mut idle_h2 = TcpStream::connect(app.addr).await.unwrap();
    idle_h2.write_all(PREFACE).await.unwrap();
    assert!(closed_within(&mut idle_h2, Duration::from_secs(10)).await);
    body.send_data(
        Bytes::from_static(b"\"nobody@example.com\",\"password\":\"wrong-password-1\"}"),
        true,
    )
    .unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(!driver.is_finished());
    app.stop().await;
}

#[tokio::test]
async fn a_rapid_reset_flood_closes_the_connection_and_other_clients_are_served() {
    let app = h2c_app(&[]).await;
    let (send, driver) = h2_connect(&app).await;
    let mut send = Some(send);
    let mut opened = 0;
    for _ in 0..10_000 {
        let Some(ready) = send.take() else { break };
        let Ok(mut ready) = ready.ready().await else {
            break;
        };
        // A request the server starts on (it waits for the body), reset at once.
        let request = http::Request::post(format!("http://{}/api/v1/auth/login", app.addr))
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let Ok((_response, mut stream)) = ready.send_request(request, false) else {
            break;
        };
        stream.send_reset(h2::Reason::CANCEL);
        opened += 1;
        // Let the connection write what was queued (one runtime thread serves both ends).
        tokio::task::yield_now().await;
        send = Some(ready);
    }
    drop(send);
    let ended = tokio::time::timeout(Duration::from_secs(10), driver)
        .await
        .expect("the flooding connection was left open")
        .unwrap();
    // Either h2's own limit (GOAWAY ENHANCE_YOUR_CALM) or the server's cancellation budget
    // (the connection dropped) stopped it, long before the flood's end.
    let error = ended.expect_err("the flood ended without an error from the server");
    assert!(
        error.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM)
            || error.is_io()
            || error.is_go_away(),
        "{error} after {opened} streams"
    );
    assert!(opened < 2_000, "{opened} streams were opened and reset");
    let response = h2c_client().get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn shutdown_sends_goaway_to_idle_http2_connections_and_finishes_in_flight_streams() {
    let app = h2c_app(&[("RAMPART_SHUTDOWN_GRACE", "30s")]).await;
    let addr = app.addr;
    let (send, idle_driver) = h2_connect(&app).await;
    let mut send_idle = send.ready().await.unwrap();
    let (response, _) = send_idle.send_request(get(&app, "/health"), true).unwrap();
    assert_eq!(response.await.unwrap().status(), 200);

    let (send, busy_driver) = h2_connect(&app).await;
    let mut send = send.ready().await.unwrap();
    let request = http::Request::post(format!("http://{addr}/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (response, mut body) = send.send_request(request, false).unwrap();
    body.send_data(Bytes::from_static(b"{\"email\":"), false)
        .unwrap();

    let stopping = tokio::spawn(app.stop());
    // Shutdown has begun once the listener is gone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still accepting");
        tokio::task::yield_now().await;
    }
    // The idle connection is told to go away and ends cleanly, well within the grace.
    let idle = tokio::time::timeout(Duration::from_secs(10), idle_driver)
        .await
        .expect("idle HTTP/2 connection kept open during shutdown")
        .unwrap();
    assert!(idle.is_ok(), "{idle:?}");
    // The stream in flight still gets its answer.
    body.send_data(
        Bytes::from_static(b"\"nobody@example.com\",\"password\":\"wrong-password-1\"}"),
        true,
    )
    .unwrap();
    assert_eq!(response.await.unwrap().status(), 401);
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("shutdown did not finish after the last stream")
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), busy_driver).await;
}

#[tokio::test]
async fn an_http2_body_slower_than_the_body_deadline_gets_408_and_others_are_served() {
    let app = h2c_app(&[("RAMPART_BODY_TIMEOUT", "1s")]).await;
    let (send, _driver) = h2_connect(&app).await;
    let mut send = send.ready().await.unwrap();
    let request = http::Request::post(format!("http://{}/api/v1/auth/login", app.addr))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (response, mut body) = send.send_request(request, false).unwrap();
    body.send_data(Bytes::from_static(b"{\"email\":"), false)
        .unwrap();
    // Meanwhile, on the same connection, another stream is served.
    let (other, _) = send.send_request(get(&app, "/health"), true).unwrap();
    assert_eq!(other.await.unwrap().status(), 200);
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("the slow body was never cut off")
        .unwrap();
    assert_eq!(response.status(), 408);
    app.stop().await;
}
