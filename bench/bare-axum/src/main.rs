//! The bare-axum baseline of `bench/side-by-side.sh`: Rampart's benchmark routes answered
//! with the same bodies but with no work and no layers — no database, no validation, no
//! tokens, no headers beyond `Content-Type`, no log.
//!
//! ```text
//! BARE_AXUM_LISTEN=127.0.0.1:0 BARE_AXUM_BODIES=DIR target/release/bare-axum
//! ```
//!
//! It prints `{"listen":"127.0.0.1:PORT"}` once bound. `BARE_AXUM_BODIES` names a directory
//! holding `products.json`, `me.json` and `order.json` (the benchmark script saves
//! Rampart's own answers there, so both send the very same bytes); a missing file falls
//! back to a built-in body of the same shape. `/health` is `{"status":"ok"}`.

use std::{net::SocketAddr, path::Path};

use axum::{
    Router,
    body::Bytes,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::{get, post},
};

type Error = Box<dyn std::error::Error + Send + Sync>;

const JSON: [(header::HeaderName, &str); 1] = [(header::CONTENT_TYPE, "application/json")];

/// The three fixed bodies, leaked once so each handler answers a `&'static str`.
struct Bodies {
    products: &'static str,
    me: &'static str,
    order: &'static str,
}

const TIME: &str = "2026-12-01T12:00:00.000Z";

fn default_products() -> String {
    let items: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"id":"00000000-0000-4000-8000-{i:012}","name":"prod {n}","description":"<p>a product</p>","price_cents":{p},"currency":"EUR","stock":1000000,"created_at":"{TIME}","updated_at":"{TIME}"}}"#,
                n = 1000 - i,
                p = 1100 - i
            )
        })
        .collect();
    format!(
        r#"{{"items":[{}],"page":1,"limit":20,"total":1000}}"#,
        items.join(",")
    )
}

fn default_me() -> String {
    format!(
        r#"{{"id":"00000000-0000-4000-8000-000000000001","email":"load-test@example.com","name":"Admin","bio":"","role":"admin","active":true,"email_verified":true,"mfa_enabled":false,"created_at":"{TIME}"}}"#
    )
}

fn default_order() -> String {
    format!(
        r#"{{"id":"00000000-0000-4000-8000-000000000002","status":"placed","items":[{{"product_id":"00000000-0000-4000-8000-000000000000","name":"prod 1000","quantity":1,"unit_price_cents":1100,"line_total_cents":1100}},{{"product_id":"00000000-0000-4000-8000-000000000001","name":"prod 999","quantity":2,"unit_price_cents":1099,"line_total_cents":2198}}],"total_cents":3298,"currency":"EUR","shipping_address":{{"street":"1 Main St","city":"Springfield","postal_code":"12345","country":"DE"}},"coupon_code":null,"created_at":"{TIME}"}}"#
    )
}

/// `dir/name` when it can be read, otherwise the built-in body.
fn body(dir: Option<&Path>, name: &str, fallback: fn() -> String) -> &'static str {
    let text = dir
        .and_then(|d| std::fs::read_to_string(d.join(name)).ok())
        .map(|t| t.trim_end().to_owned())
        .unwrap_or_else(fallback);
    Box::leak(text.into_boxed_str())
}

fn app(bodies: Bodies) -> Router {
    let Bodies {
        products,
        me,
        order,
    } = bodies;
    Router::new()
        .route("/health", get(|| async { (JSON, r#"{"status":"ok"}"#) }))
        .route(
            "/api/v1/products",
            get(move || async move { (JSON, products) }),
        )
        .route("/api/v1/me", get(move || async move { (JSON, me) }))
        .route(
            "/api/v1/orders",
            // The body is read (as any server must, to keep the connection) and ignored.
            post(move |_body: Bytes| async move { (StatusCode::CREATED, JSON, order) }),
        )
        .fallback(|| async { StatusCode::NOT_FOUND.into_response() })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let addr: SocketAddr = std::env::var("BARE_AXUM_LISTEN")
        .unwrap_or_else(|_| "127.0.0.1:0".to_owned())
        .parse()?;
    let dir = std::env::var_os("BARE_AXUM_BODIES").map(std::path::PathBuf::from);
    let dir = dir.as_deref();
    let bodies = Bodies {
        products: body(dir, "products.json", default_products),
        me: body(dir, "me.json", default_me),
        order: body(dir, "order.json", default_order),
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(r#"{{"listen":"{}"}}"#, listener.local_addr()?);
    axum::serve(listener, app(bodies)).await?;
    Ok(())
}
