//! API.md §3: slow clients are cut off while others are served.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::harness::TestApp;

/// Read until the server closes the connection; what it sent, or `None` if it stayed open
/// past `bound`.
async fn read_until_closed(stream: &mut TcpStream, bound: Duration) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(bound, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn a_client_slower_than_the_header_timeout_is_disconnected_and_others_are_served() {
    let app = TestApp::spawn_with(&[("RAMPART_HEADER_READ_TIMEOUT", "1s")]).await;
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    // While the slow head is pending, others are served.
    assert_eq!(app.get("/health").await.status(), 200);
    let closed = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(closed.is_some(), "the slow connection was left open");
    assert!(!closed.unwrap().contains("200 OK"));
    // A new connection: the pooled one idled past the same header timeout and was closed.
    let fresh = reqwest::get(app.url("/health")).await.unwrap();
    assert_eq!(fresh.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn a_body_slower_than_the_body_deadline_gets_408_and_the_connection_closes() {
    let app = TestApp::spawn_with(&[("RAMPART_BODY_TIMEOUT", "1s")]).await;
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(
        b"POST /api/v1/admin/products HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"a\":",
    )
    .await
    .unwrap();
    assert_eq!(app.get("/health").await.status(), 200);
    let answer = read_until_closed(&mut slow, Duration::from_secs(10))
        .await
        .expect("the slow body's connection was left open");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"));
    app.stop().await;
}
