//! Property tests (issue 13, Deliver 7): arbitrary bytes and strings into every parser of
//! untrusted input. None may panic, and none may produce output out of proportion to its
//! input (a parser that allocates without bound shows it in what it returns: every
//! property below bounds the output by the input's size).
//!
//! The case count is proptest's: `PROPTEST_CASES` (256 when unset, so the ordinary test
//! stages stay quick); `./scripts/test.sh`'s `props` stage runs 6 000 per parser. The
//! whole-pipeline property runs a tenth of that (a request per case) and the key-file one
//! a hundredth (a directory per case), but never fewer than 16.
//!
//! Two levels: the parsers themselves (JSON guard and extractor, suspicious-input scans,
//! query parameters, trusted proxies and `X-Forwarded-For`, domain types, the HTML
//! sanitizer, rate-limit policy strings and durations through `Config::load`, PEM key
//! files, upload magic bytes), and the whole pipeline in process (`app::build`, no socket),
//! which is the only way to reach the private ones (`Authorization`/bearer parsing,
//! cookies, UUID path segments) exactly as a client does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::LazyLock,
};

use axum::body::Body;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use proptest::prelude::*;
use rampart::{
    app,
    application::Application,
    clock::Clock,
    config::{Config, parse_duration},
    domain::{
        FieldError,
        avatar::ImageType,
        codes::{CountryCode, CurrencyCode},
        html,
        order::{CouponCode, IdempotencyKey, OrderStatus, PlaceOrder, PostalCode, Quantity},
        paging::PageRequest,
        product::{NewProduct, ProductPatch, ProductQuery, SearchText},
        user::{DisplayName, EmailAddress, Role},
    },
    error::AppError,
    http::{
        catalog_admin::{NewProductInput, ProductPatchInput},
        json,
        orders::PlaceOrderInput,
    },
};
use rampart_layers::{
    client_ip::{ConnectionInfo, TrustedProxies},
    limits::json_guard,
    suspicious::{self, SecretFields},
};
use tower::ServiceExt as _;

/// The configured case count (proptest reads `PROPTEST_CASES` itself; this is for the
/// properties that take a fraction of it).
fn cases() -> u32 {
    ProptestConfig::default().cases
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases.max(16),
        // A failure is shrunk, but not for minutes.
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

/// Every field error is bounded: a name of at most a few hundred bytes (a path through the
/// input at worst) and a fixed message, and no more errors than input bytes.
fn bounded_errors(errors: &[FieldError], input_len: usize) -> Result<(), TestCaseError> {
    prop_assert!(errors.len() <= input_len + 8, "{} errors", errors.len());
    for e in errors {
        prop_assert!(e.field.len() <= input_len + 256, "field {:?}", e.field);
        prop_assert!(e.message.len() <= 256, "message {:?}", e.message);
    }
    Ok(())
}

fn app_error_bounded(e: &AppError, input_len: usize) -> Result<(), TestCaseError> {
    if let AppError::Validation(errors) = e {
        bounded_errors(errors, input_len)?;
    }
    Ok(())
}

/// JSON-looking text: mostly the characters JSON is made of, so the parsers get past the
/// first byte, with arbitrary Unicode mixed in.
fn jsonish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            6 => prop::sample::select(vec![
                "{", "}", "[", "]", ":", ",", "\"", "\\", "null", "true", "1", "-0.5e3",
                "\"items\"", "\"product_id\"", "\"quantity\"", "\"shipping_address\"",
                "\"street\"", "\"city\"", "\"postal_code\"", "\"country\"", "\"coupon_code\"",
                "\"name\"", "\"description\"", "\"price_cents\"", "\"currency\"", "\"stock\"",
                "\"__proto__\"", "\"constructor\"", "\"password\"", "\" OR 1=1 --\"", " ",
                "\"<script>\"", "\"\\u0000\"", "\"\\ud800\"", "99999999999999999999",
            ])
            .prop_map(str::to_owned),
            1 => any::<String>(),
        ],
        0..64,
    )
    .prop_map(|parts| parts.concat())
}

/// A well-formed order body with arbitrary values in every field.
fn order_json() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            9 => prop::collection::vec((any::<String>(), any::<i64>()), 0..5),
            // Around the 50-line limit.
            1 => prop::collection::vec(("\\PC{0,8}", any::<i64>()), 49..53),
        ],
        [any::<String>(), any::<String>(), any::<String>(), any::<String>()],
        prop::option::of(any::<String>()),
    )
        .prop_map(|(items, [street, city, postal_code, country], coupon)| {
            serde_json::json!({
                "items": items.iter().map(|(id, q)| serde_json::json!({"product_id": id, "quantity": q})).collect::<Vec<_>>(),
                "shipping_address": {"street": street, "city": city, "postal_code": postal_code, "country": country},
                "coupon_code": coupon,
            })
            .to_string()
        })
}

/// A well-formed product body with arbitrary values in every field.
fn product_json() -> impl Strategy<Value = String> {
    (
        prop::option::of(any::<String>()),
        prop::option::of(any::<String>()),
        prop::option::of(any::<i64>()),
        prop::option::of(any::<String>()),
        prop::option::of(any::<i64>()),
    )
        .prop_map(|(name, description, price_cents, currency, stock)| {
            serde_json::json!({
                "name": name, "description": description, "price_cents": price_cents,
                "currency": currency, "stock": stock,
            })
            .to_string()
        })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..512)
}

proptest! {
    #![proptest_config(config(cases()))]

    #[test]
    fn the_json_guard_and_the_suspicious_body_scan_take_any_bytes(
        raw in prop_oneof![bytes(), jsonish().prop_map(String::into_bytes)],
    ) {
        let _ = json_guard::check(&raw, 32);
        let secrets = SecretFields::new(["password", "token", "secret", "code"]);
        let findings = suspicious::scan_json(&raw, &secrets);
        prop_assert!(findings.len() <= raw.len());
        for f in &findings {
            prop_assert!(f.excerpt.chars().count() <= 64 * 12, "excerpt {:?}", f.excerpt);
            prop_assert!(f.field.len() <= raw.len() * 8 + 64);
        }
    }

    #[test]
    fn the_json_extractor_refuses_any_malformed_body_with_bounded_errors(
        raw in prop_oneof![bytes(), jsonish().prop_map(String::into_bytes)],
    ) {
        if let Err(e) = json::parse::<PlaceOrderInput>(&raw) {
            app_error_bounded(&e, raw.len())?;
        }
        if let Err(e) = json::parse::<NewProductInput>(&raw) {
            app_error_bounded(&e, raw.len())?;
        }
        if let Err(e) = json::parse::<ProductPatchInput>(&raw) {
            app_error_bounded(&e, raw.len())?;
        }
        if let Err(e) = json::parse::<serde_json::Value>(&raw) {
            app_error_bounded(&e, raw.len())?;
        }
    }

    #[test]
    fn orders_and_products_with_arbitrary_values_parse_or_fail_with_bounded_errors(
        order in order_json(),
        product in product_json(),
    ) {
        match json::parse::<PlaceOrderInput>(order.as_bytes()) {
            Ok(input) => {
                if let Err(errors) = PlaceOrder::parse(input.into()) {
                    bounded_errors(&errors, order.len())?;
                }
            }
            Err(e) => app_error_bounded(&e, order.len())?,
        }
        match json::parse::<NewProductInput>(product.as_bytes()) {
            Ok(input) => {
                if let Err(errors) = NewProduct::parse(input.into()) {
                    bounded_errors(&errors, product.len())?;
                }
            }
            Err(e) => app_error_bounded(&e, product.len())?,
        }
        match json::parse::<ProductPatchInput>(product.as_bytes()) {
            Ok(input) => {
                if let Err(errors) = ProductPatch::parse(input.into()) {
                    bounded_errors(&errors, product.len())?;
                }
            }
            Err(e) => app_error_bounded(&e, product.len())?,
        }
    }

    #[test]
    fn domain_types_take_any_string(raw in any::<String>(), n in any::<i64>()) {
        let field = "f";
        let check = |r: Result<(), FieldError>| bounded_errors(r.err().as_slice(), raw.len());
        check(EmailAddress::parse(&raw, field).map(|_| ()))?;
        check(DisplayName::parse(&raw).map(|_| ()))?;
        check(PostalCode::parse(&raw, field).map(|_| ()))?;
        check(CouponCode::parse(&raw, field).map(|_| ()))?;
        check(CountryCode::parse(&raw, field).map(|_| ()))?;
        check(CurrencyCode::parse(&raw, field).map(|_| ()))?;
        check(SearchText::parse(&raw).map(|_| ()))?;
        check(IdempotencyKey::parse(raw.as_bytes()).map(|_| ()))?;
        check(Quantity::parse(n, field).map(|_| ()))?;
        let _ = Role::parse(&raw);
        let _ = OrderStatus::parse(&raw);
        let _ = uuid::Uuid::parse_str(&raw);
    }

    #[test]
    fn the_html_sanitizer_output_is_bounded_by_its_input(raw in prop_oneof![
        any::<String>(),
        prop::collection::vec(prop::sample::select(vec![
            "<", ">", "/", "p", "a", " href=", "\"", "'", "javascript:", "<script>", "</script>",
            "&", "&amp;", "<b>", "<!--", "-->", "<![CDATA[", "<svg onload=x>", "x",
        ]), 0..200).prop_map(|p| p.concat()),
    ]) {
        let clean = html::sanitize(&raw);
        // Escaping grows a character to at most `&quot;` (6 bytes).
        prop_assert!(clean.len() <= raw.len() * 6 + 16, "{} -> {}", raw.len(), clean.len());
        prop_assert!(!clean.to_ascii_lowercase().contains("<script"));
    }

    #[test]
    fn query_parameters_take_any_pairs_duplicates_included(
        pairs in prop::collection::vec(
            (
                prop_oneof![
                    3 => prop::sample::select(vec!["page", "limit", "q", "min_price", "max_price", "sort"])
                        .prop_map(str::to_owned),
                    1 => any::<String>(),
                ],
                prop_oneof![
                    2 => any::<String>(),
                    1 => any::<i64>().prop_map(|n| n.to_string()),
                    1 => any::<u64>().prop_map(|n| n.to_string()),
                ],
            ),
            0..8,
        ),
    ) {
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let size: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
        if let Err(errors) = PageRequest::parse(borrowed.iter().copied()) {
            bounded_errors(&errors, size)?;
        }
        if let Err(errors) = ProductQuery::parse(borrowed.iter().copied()) {
            bounded_errors(&errors, size)?;
        }
        // And the raw target, as the suspicious-input scan reads it.
        let query: String = pairs.iter().map(|(k, v)| format!("{k}={v}&")).collect();
        let secrets = SecretFields::new(["password", "token"]);
        let findings = suspicious::scan_target("/api/v1/products", Some(&query), &secrets);
        prop_assert!(findings.len() <= query.len() + 1);
    }

    #[test]
    fn trusted_proxies_and_forwarded_for_take_any_text(
        list in prop_oneof![any::<String>(), "[0-9a-f:./, ]{0,80}"],
        forwarded in prop::collection::vec(
            prop_oneof![any::<String>(), "[0-9a-f:.\\[\\], ]{0,60}", Just("10.0.0.1, 203.0.113.7".to_owned())],
            0..4,
        ),
        peer in any::<(u8, u8, u8, u8, u16)>(),
        v6 in any::<u128>(),
        tls in any::<bool>(),
    ) {
        let _ = TrustedProxies::parse(&list);
        let proxies = TrustedProxies::parse("127.0.0.0/8, ::1/128, 10.0.0.0/8").unwrap();
        let mut headers = HeaderMap::new();
        for value in &forwarded {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.append("x-forwarded-for", v);
            }
        }
        let (a, b, c, d, port) = peer;
        for ip in [
            IpAddr::from([a, b, c, d]),
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([10, b, c, d]),
            IpAddr::from(v6.to_be_bytes()),
        ] {
            let conn = ConnectionInfo { peer: SocketAddr::new(ip, port), tls };
            let client = proxies.resolve(&conn, &headers);
            let _ = client.key();
        }
    }

    #[test]
    fn durations_and_rate_limit_policies_take_any_string(raw in prop_oneof![
        any::<String>(),
        "[0-9]{0,25}(/|/[0-9]{0,25})?(ms|s|m|h|d|x)?",
    ]) {
        let _ = parse_duration(&raw);
        let env: HashMap<String, String> = [
            "RAMPART_RATE_LIMIT_GLOBAL",
            "RAMPART_RATE_LIMIT_LOGIN_IP",
            "RAMPART_RATE_LIMIT_REGISTER",
            "RAMPART_REQUEST_TIMEOUT",
            "RAMPART_DB_ACQUIRE_TIMEOUT",
            "RAMPART_TRUSTED_PROXIES",
        ]
        .into_iter()
        .map(|k| (k.to_owned(), raw.clone()))
        .collect();
        if let Err(errors) = Config::load(&env) {
            // Every error is named by its variable, never by echoing a giant value.
            let text = errors.to_string();
            prop_assert!(text.len() <= 4096 + raw.len() * 6, "{}", text.len());
        }
    }

    #[test]
    fn upload_magic_bytes_and_declared_types_take_any_input(
        raw in bytes(),
        declared in prop_oneof![any::<String>(), "image/[a-z+]{0,10}(;.{0,20})?"],
    ) {
        let _ = ImageType::parse_declared(&declared);
        let _ = ImageType::parse_stored(&declared);
        for t in ["image/png", "image/jpeg", "image/gif", "image/webp"] {
            if let Some(t) = ImageType::parse_declared(t) {
                let _ = t.matches(&raw);
            }
        }
    }
}

proptest! {
    // Each case writes a key directory: a hundredth of the count.
    #![proptest_config(config(cases() / 100))]

    #[test]
    fn a_key_file_with_any_content_is_refused_or_loaded_never_a_panic(
        content in prop_oneof![
            bytes(),
            (bytes(), prop::sample::select(vec!["PRIVATE KEY", "PUBLIC KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"]))
                .prop_map(|(body, label)| {
                    use base64_like::encode;
                    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", encode(&body)).into_bytes()
                }),
        ],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        let path = keys.join("k1.pem");
        std::fs::write(&path, &content).unwrap();
        set_private(&keys, &path);
        let result = rampart::auth::keys::KeyRing::load(
            &keys,
            time::OffsetDateTime::now_utc(),
            std::time::Duration::from_secs(900),
        );
        if let Err(e) = result {
            // The error names the file, not its content.
            let text = format!("{e:#}");
            prop_assert!(text.len() <= 2048, "{} bytes", text.len());
        }
    }
}

#[cfg(unix)]
fn set_private(dir: &std::path::Path, file: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[cfg(not(unix))]
fn set_private(_: &std::path::Path, _: &std::path::Path) {}

/// Standard base64 without a crate of its own in this test binary.
mod base64_like {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

/// The whole app, in process: one runtime and one app (SQLite in a temp dir) for every case.
struct InProcess {
    runtime: tokio::runtime::Runtime,
    service: axum::Router,
    _dir: tempfile::TempDir,
}

static APP: LazyLock<InProcess> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env: HashMap<String, String> = [
        (
            "RAMPART_DATA_DIR",
            dir.path().join("data").display().to_string(),
        ),
        (
            "DATABASE_URL",
            format!("sqlite://{}/rampart.db", dir.path().join("data").display()),
        ),
        ("RAMPART_LISTEN", "127.0.0.1:0".to_owned()),
        // Every case comes from one address; the limits are not under test here.
        ("RAMPART_RATE_LIMIT_GLOBAL", "100000000/1h".to_owned()),
        ("RAMPART_RATE_LIMIT_LOGIN_IP", "100000000/1h".to_owned()),
        (
            "RAMPART_RATE_LIMIT_LOGIN_ACCOUNT",
            "100000000/1h".to_owned(),
        ),
        ("RAMPART_RATE_LIMIT_REGISTER", "100000000/1h".to_owned()),
        ("RAMPART_RATE_LIMIT_FORGOT", "100000000/1h".to_owned()),
        ("RAMPART_RATE_LIMIT_MFA", "100000000/1h".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let service = runtime.block_on(async {
        let loaded = Config::load(&env).expect("config");
        let application = Application::build(loaded, Clock::system())
            .await
            .expect("app");
        let state = application.state().clone();
        axum::Router::new().fallback_service(app::build(state))
    });
    InProcess {
        runtime,
        service,
        _dir: dir,
    }
});

/// Percent-encode every byte outside the unreserved set, so any input makes a valid target.
fn encode(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len() * 3);
    for &b in raw {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn header_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        "(Bearer|bearer|Basic|BEARER)?[ \t]{0,3}[A-Za-z0-9._~+/=-]{0,200}"
            .prop_map(String::into_bytes),
        "([a-z_]{1,12}=[^;]{0,40}; ?){0,6}".prop_map(String::into_bytes),
        Just(b"Bearer eyJhbGciOiJFZERTQSIsImtpZCI6IngifQ.e30.".to_vec()),
    ]
}

prop_compose! {
    fn any_request()(
        method in prop::sample::select(vec![
            Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS,
            Method::HEAD,
        ]),
        route in prop::sample::select(vec![
            "/health", "/health/ready", "/api/v1/products", "/api/v1/products/", "/api/v1/me",
            "/api/v1/me/avatar", "/api/v1/me/sessions/", "/api/v1/orders", "/api/v1/orders/",
            "/api/v1/auth/login", "/api/v1/auth/register", "/api/v1/auth/refresh",
            "/api/v1/auth/logout", "/api/v1/auth/forgot-password", "/api/v1/admin/products",
            "/api/v1/admin/products/", "/api/v1/admin/users/", "/.well-known/jwks.json", "/",
        ]),
        segment in prop::collection::vec(any::<u8>(), 0..48),
        query in prop::option::of(prop::collection::vec(
            (
                prop_oneof![
                    Just(b"page".to_vec()), Just(b"limit".to_vec()), Just(b"q".to_vec()),
                    prop::collection::vec(any::<u8>(), 0..12),
                ],
                prop::collection::vec(any::<u8>(), 0..32),
            ),
            0..6,
        )),
        headers in prop::collection::vec(
            (
                prop::sample::select(vec![
                    "authorization", "cookie", "x-forwarded-for", "content-type", "origin",
                    "x-request-id", "idempotency-key", "accept", "content-length",
                ]),
                header_text(),
            ),
            0..5,
        ),
        body in prop_oneof![
            bytes(),
            jsonish().prop_map(String::into_bytes),
            order_json().prop_map(String::into_bytes),
            product_json().prop_map(String::into_bytes),
        ],
        json in any::<bool>(),
    ) -> (Request<Body>, usize) {
        let mut target = format!("{route}{}", if route.ends_with('/') { encode(&segment) } else { String::new() });
        if let Some(pairs) = query {
            target.push('?');
            let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
            target.push_str(&joined.join("&"));
        }
        let size = target.len() + body.len() + headers.iter().map(|(_, v)| v.len()).sum::<usize>();
        let mut request = Request::builder().method(method).uri(target);
        if json {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                request = request.header(HeaderName::from_static(name), value);
            }
        }
        let mut request = request.body(Body::from(body)).unwrap();
        request.extensions_mut().insert(ConnectionInfo {
            peer: "127.0.0.1:40000".parse().unwrap(),
            tls: false,
        });
        (request, size)
    }
}

proptest! {
    // A whole request per case: a tenth of the count.
    #![proptest_config(config(cases() / 10))]

    /// Through the whole pipeline: bearer and cookie parsing, UUID path segments, query
    /// parameters, body checks and extractors. Never a 5xx (the database is up), never a
    /// response out of proportion to the request.
    #[test]
    fn the_pipeline_answers_any_request_without_a_server_error((request, size) in any_request()) {
        let app = &*APP;
        let target = request.uri().to_string();
        let (status, body) = app.runtime.block_on(async {
            let response = app.service.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await;
            (status, body)
        });
        prop_assert!(!status.is_server_error(), "{status} for {target}");
        let body = body.expect("a body under 1 MiB");
        prop_assert!(body.len() <= 16 * 1024 + size * 2, "{} bytes for {target}", body.len());
    }
}
