//! `rampart audit URL` (issue 11): the real binary against Rampart itself (every check
//! passes), against a deliberately weak server (each check fails for its own reason),
//! against a rate limit (the burst stops at the first 429) and over HTTPS.

use std::{
    collections::HashMap,
    io::Read,
    net::SocketAddr,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::Request,
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::any,
};
use serde_json::Value;

use crate::harness::TestApp;

const BIN: &str = env!("CARGO_BIN_EXE_rampart");

/// What one run of `rampart audit` printed and returned.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }

    /// `(area, check)` → `(status, evidence)`.
    fn findings(&self) -> HashMap<(String, String), (String, String)> {
        let doc = self.json();
        doc["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .map(|f| {
                let text = |k: &str| f[k].as_str().expect(k).to_owned();
                (
                    (text("area"), text("check")),
                    (text("status"), text("evidence")),
                )
            })
            .collect()
    }
}

/// Run the binary in a fresh directory with a clean environment, off the runtime the
/// audited server runs on; killed past 60 s.
async fn audit(args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .arg("audit")
            .args(&args)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Drain both pipes while waiting, so a long report cannot block the child.
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        };
        let stdout = drain(Box::new(child.stdout.take().unwrap()));
        let stderr = drain(Box::new(child.stderr.take().unwrap()));
        let status = crate::cli::wait_bounded(&mut child, Duration::from_secs(60));
        Run {
            code: status.code().unwrap_or(-1),
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn rampart_passes_every_check_of_its_own_audit() {
    let app = TestApp::spawn().await;
    let url = app.url("/");
    let run = audit(&[&url, "--format", "json"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let findings = run.findings();
    for ((area, check), (status, evidence)) in &findings {
        // Plain HTTP on loopback: the one expected warning.
        let expected = if (area.as_str(), check.as_str()) == ("tls", "tls") {
            "warn"
        } else {
            "pass"
        };
        assert_eq!(status, expected, "{area}/{check}: {evidence}");
    }
    for field in [
        "content-security-policy",
        "strict-transport-security",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
        "cross-origin-opener-policy",
        "cross-origin-resource-policy",
        "permissions-policy",
        "server",
        "x-powered-by",
    ] {
        assert!(
            findings.contains_key(&("headers".into(), field.into())),
            "{field}"
        );
    }
    for check in [
        "foreign-origin",
        "null-origin",
        "look-alike-origin",
        "preflight",
    ] {
        assert!(
            findings.contains_key(&("cors".into(), check.into())),
            "{check}"
        );
    }
    for check in [
        "unknown-route",
        "wrong-method",
        "malformed-json",
        "oversized-body",
    ] {
        assert!(
            findings.contains_key(&("errors".into(), check.into())),
            "{check}"
        );
    }
    let burst = &findings[&("rate-limit".into(), "burst".into())].1;
    assert!(burst.contains("ratelimit-policy"), "{burst}");
    let doc = run.json();
    assert!(doc["requests"].as_u64().unwrap() <= 48, "{doc}");

    // --strict turns the plain-HTTP warning into a failing exit status.
    let strict = audit(&[&url, "--strict"]).await;
    assert_eq!(strict.code, 1, "{}", strict.stdout);
    assert!(strict.stdout.contains("warn   tls"), "{}", strict.stdout);
    app.stop().await;
}

/// A server built the way the guides warn against: no security headers, banners, any
/// origin reflected with credentials, a flagless session cookie, stack traces and SQL in
/// its errors, no rate limit. It counts the requests it gets; past `limit_after` it
/// answers everything with 429 and counts what still arrives.
struct WeakServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    after_429: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Counters {
    requests: Arc<AtomicUsize>,
    after_429: Arc<AtomicUsize>,
    limit_after: Option<usize>,
}

const STACK: &str = "TypeError: Cannot read properties of undefined (reading 'user')\n    at handler (/app/server.js:12:5)\n    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)";

async fn weak_middleware(
    axum::extract::State(counters): axum::extract::State<Counters>,
    request: Request,
    next: Next,
) -> Response {
    let n = counters.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(limit) = counters.limit_after {
        if n > limit + 1 {
            counters.after_429.fetch_add(1, Ordering::SeqCst);
        }
        if n > limit {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "3600")],
                "Too many requests",
            )
                .into_response();
        }
    }
    let origin = request.headers().get(header::ORIGIN).cloned();
    let preflight = request.method() == Method::OPTIONS;
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::SERVER, HeaderValue::from_static("Express"));
    headers.insert("x-powered-by", HeaderValue::from_static("Express"));
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        if preflight {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET,HEAD,PUT,PATCH,POST,DELETE"),
            );
        }
    }
    response
}

async fn weak_root(method: Method, body: Bytes) -> Response {
    match method {
        Method::GET | Method::HEAD => (
            [
                (header::SET_COOKIE, "session=abc123; Path=/"),
                (header::CONTENT_TYPE, "text/html"),
            ],
            "<h1>Welcome</h1>",
        )
            .into_response(),
        Method::POST => match serde_json::from_slice::<Value>(&body) {
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "SyntaxError: {e}\n    at JSON.parse (<anonymous>)\n    at parse (/app/node_modules/body-parser/lib/types/json.js:92:19)\nwhile running SELECT * FROM sessions WHERE token = '{{'"
                ),
            )
                .into_response(),
            Ok(_) if body.len() > 100_000 => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "SequelizeDatabaseError: SQLITE_TOOBIG: string or blob too big\nsql: INSERT INTO audit_log (payload) VALUES (?)",
            )
                .into_response(),
            Ok(_) => StatusCode::CREATED.into_response(),
        },
        _ => (StatusCode::INTERNAL_SERVER_ERROR, STACK).into_response(),
    }
}

async fn weak_not_found(method: Method, uri: axum::http::Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html")],
        Body::from(format!("<pre>Cannot {method} {}</pre>", uri.path())),
    )
        .into_response()
}

impl WeakServer {
    async fn start(limit_after: Option<usize>) -> Self {
        let counters = Counters {
            requests: Arc::new(AtomicUsize::new(0)),
            after_429: Arc::new(AtomicUsize::new(0)),
            limit_after,
        };
        let app = Router::new()
            .route("/", any(weak_root))
            .fallback(weak_not_found)
            .layer(middleware::from_fn_with_state(
                counters.clone(),
                weak_middleware,
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            requests: counters.requests,
            after_429: counters.after_429,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for WeakServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn a_weak_server_fails_each_check_for_the_right_reason() {
    let server = WeakServer::start(None).await;
    let run = audit(&[&server.url(), "--format", "json"]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let findings = run.findings();
    let expect = |area: &str, check: &str, status: &str, reasons: &[&str]| {
        let (got, evidence) = findings
            .get(&(area.to_owned(), check.to_owned()))
            .unwrap_or_else(|| panic!("no finding {area}/{check} in {}", run.stdout));
        assert_eq!(got, status, "{area}/{check}: {evidence}");
        for reason in reasons {
            assert!(
                evidence.contains(reason),
                "{area}/{check}: {evidence:?} lacks {reason:?}"
            );
        }
    };
    for field in [
        "content-security-policy",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
        "cross-origin-opener-policy",
        "cross-origin-resource-policy",
    ] {
        expect("headers", field, "fail", &["absent"]);
    }
    for field in [
        "origin-agent-cluster",
        "x-dns-prefetch-control",
        "x-download-options",
        "x-permitted-cross-domain-policies",
        "permissions-policy",
        "cache-control",
    ] {
        expect("headers", field, "warn", &["absent"]);
    }
    expect("headers", "server", "fail", &["Express"]);
    expect("headers", "x-powered-by", "fail", &["Express"]);
    expect(
        "cors",
        "foreign-origin",
        "fail",
        &["reflects Origin https://", "Credentials"],
    );
    expect("cors", "null-origin", "fail", &["reflects Origin null"]);
    expect("cors", "look-alike-origin", "fail", &["audit-evil.example"]);
    expect("cors", "preflight", "fail", &["reflects"]);
    expect(
        "cookie",
        "session",
        "fail",
        &["no Secure", "no HttpOnly", "no SameSite"],
    );
    expect(
        "errors",
        "unknown-route",
        "fail",
        &["framework banner", "Cannot GET"],
    );
    expect(
        "errors",
        "wrong-method",
        "fail",
        &["stack trace", "file path", "type name"],
    );
    expect(
        "errors",
        "malformed-json",
        "fail",
        &["stack trace", "SQL", "type name"],
    );
    expect("errors", "oversized-body", "fail", &["SQL"]);
    expect("rate-limit", "burst", "fail", &["30 requests"]);
    expect("tls", "tls", "warn", &["plain HTTP"]);
    // Bounded: the server saw exactly what the report counts, a few dozen at most.
    let doc = run.json();
    let reported = doc["requests"].as_u64().unwrap() as usize;
    assert_eq!(server.requests.load(Ordering::SeqCst), reported);
    assert!(reported <= 48, "{reported}");
    assert!(doc["summary"]["fail"].as_u64().unwrap() >= 18, "{doc}");
}

#[tokio::test]
async fn the_burst_stops_at_the_first_429_and_honours_retry_after() {
    // The baseline, four error and four CORS probes pass; the fourth request of the
    // burst is the first 429.
    let server = WeakServer::start(Some(12)).await;
    let run = audit(&[&server.url(), "--format", "json"]).await;
    let findings = run.findings();
    let (status, evidence) = &findings[&("rate-limit".into(), "burst".into())];
    assert_eq!(status, "pass", "{evidence}");
    assert!(evidence.contains("429 after 4 requests"), "{evidence}");
    assert!(evidence.contains("Retry-After: 3600"), "{evidence}");
    assert_eq!(server.requests.load(Ordering::SeqCst), 13);
    assert_eq!(
        server.after_429.load(Ordering::SeqCst),
        0,
        "sent after a 429"
    );
}

#[tokio::test]
async fn an_https_target_gets_protocol_and_certificate_checks() {
    let app = TestApp::spawn_tls().await;
    let url = app.url("/");
    // The harness's self-signed certificate sits beside the data dir.
    let cert = app
        .keys_dir
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("cert.pem");
    assert!(cert.exists(), "{}", cert.display());

    let untrusted = audit(&[&url, "--format", "json"]).await;
    assert_eq!(untrusted.code, 1, "{}", untrusted.stdout);
    let findings = untrusted.findings();
    let (status, evidence) = &findings[&("tls".into(), "certificate".into())];
    assert_eq!(status, "fail", "{evidence}");
    assert!(evidence.contains("not trusted"), "{evidence}");
    let (status, evidence) = &findings[&("tls".into(), "protocol".into())];
    assert_eq!(status, "pass", "{evidence}");
    assert!(evidence.contains("TLSv1_3"), "{evidence}");
    assert!(evidence.contains("TLS 1.0/1.1 not probed"), "{evidence}");
    let (status, evidence) = &findings[&("headers".into(), "strict-transport-security".into())];
    assert_eq!(status, "pass", "{evidence}");
    assert!(evidence.contains("max-age=31536000"), "{evidence}");

    let trusted = audit(&[
        &url,
        "--format",
        "json",
        "--ca-cert",
        cert.to_str().unwrap(),
    ])
    .await;
    assert_eq!(trusted.code, 0, "{}\n{}", trusted.stdout, trusted.stderr);
    let findings = trusted.findings();
    let (status, evidence) = &findings[&("tls".into(), "certificate".into())];
    assert_eq!(status, "pass", "{evidence}");
    assert!(evidence.contains("valid for localhost"), "{evidence}");
    assert!(!findings.contains_key(&("tls".into(), "tls".into())));
    app.stop().await;
}

#[tokio::test]
async fn usage_errors_exit_2_and_an_unreachable_target_exits_1() {
    let not_http = audit(&["ftp://127.0.0.1/"]).await;
    assert_eq!(not_http.code, 2, "{}", not_http.stderr);
    let bad_format = audit(&["http://127.0.0.1/", "--format", "xml"]).await;
    assert_eq!(bad_format.code, 2, "{}", bad_format.stderr);
    let no_ca = audit(&["https://127.0.0.1/", "--ca-cert", "/nonexistent/ca.pem"]).await;
    assert_eq!(no_ca.code, 2, "{}", no_ca.stderr);
    // A port nothing listens on any more.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let gone = audit(&[&format!("http://127.0.0.1:{port}/"), "--timeout", "2s"]).await;
    assert_eq!(gone.code, 1, "{}", gone.stderr);
    assert!(gone.stderr.contains("cannot reach"), "{}", gone.stderr);
    assert!(gone.stdout.is_empty(), "{}", gone.stdout);
}

#[tokio::test]
async fn a_server_that_stops_answering_cannot_hold_the_audit_past_its_deadline() {
    // The first request is answered; every later one hangs forever.
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let app = Router::new().fallback(any(move || {
        let counter = counter.clone();
        async move {
            if counter.fetch_add(1, Ordering::SeqCst) > 0 {
                std::future::pending::<()>().await;
            }
            "hello"
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let started = std::time::Instant::now();
    let run = audit(&[
        &format!("http://{addr}/"),
        "--format",
        "json",
        "--timeout",
        "1s",
        "--deadline",
        "3s",
    ])
    .await;
    let elapsed = started.elapsed();
    task.abort();
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let findings = run.findings();
    let (status, evidence) = &findings[&("errors".into(), "unknown-route".into())];
    assert_eq!(status, "warn", "{evidence}");
    assert!(evidence.contains("no answer within"), "{evidence}");
    let (status, evidence) = &findings[&("rate-limit".into(), "burst".into())];
    assert_eq!(status, "warn", "{evidence}");
    assert!(evidence.contains("deadline"), "{evidence}");
    // The baseline and the three probes that fit in 3 s; nothing after the deadline.
    let sent = requests.load(Ordering::SeqCst);
    assert!((2..=5).contains(&sent), "{sent} requests");
    assert_eq!(run.json()["requests"].as_u64().unwrap() as usize, sent);
}
