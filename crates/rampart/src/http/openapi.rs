//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the handlers' annotations
//! and finished here with the answers every operation shares.
//!
//! The annotations state what each handler answers; [`finish`] adds what the pipeline in
//! front of every handler answers, by the operation's shape, so no route can forget one:
//!
//! | answer | operations |
//! |---|---|
//! | 400 `validation_failed` / `duplicate_parameter` | every one (a scalar query parameter given twice is refused before routing) |
//! | 429 `rate_limited` | every one (the global limit per client) |
//! | 503 `unavailable` | every one (request timeout, database unreachable, hashing pool full) |
//! | 401 `unauthenticated` / `invalid_token` / `token_expired` | those with `security` |
//! | 403 `forbidden` | `/api/v1/admin/…` |
//! | 404 `not_found` | those with a path parameter (malformed ids are 404 too) |
//! | 413 `payload_too_large`, 415 `unsupported_media_type` | those with a request body |
//!
//! Every error answer carries the problem schema (`application/problem+json`). The request
//! schemas state the bounds, formats and patterns the domain types enforce (`domain/`), so
//! a generated client and a fuzzer (schemathesis, `./scripts/test.sh` stage `openapi`)
//! agree with the server on what is valid.

use std::sync::{Arc, OnceLock};

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use rampart_layers::problem::Problem;
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::{
        ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder,
        path::{Operation, PathItem},
        schema::{KnownFormat, Object, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use super::routing::Documentation;
use crate::{
    domain::codes::{COUNTRIES, CURRENCIES},
    security_events::EventKind,
};

/// The top of the document; paths come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rampart",
        description = "A secure-by-default HTTP API server: identity and commerce."
    ),
    components(schemas(ProblemDoc, FieldErrorDoc)),
    modifiers(&BearerScheme)
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the protected routes name.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// An RFC 9457 problem (`application/problem+json`).
#[derive(ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)]
pub struct ProblemDoc {
    /// Problem type URI (`about:blank`).
    #[schema(rename = "type")]
    type_uri: String,
    /// The status's reason phrase.
    title: String,
    /// The HTTP status code.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// What went wrong, for people; never a secret, SQL, path or type name.
    detail: String,
    /// Stable machine-readable code: `validation_failed`, `not_found`, …
    code: String,
    /// The request's `X-Request-Id`.
    request_id: String,
    /// Every failing field, for `validation_failed`.
    #[schema(required = false)]
    errors: Option<Vec<FieldErrorDoc>>,
}

/// One failing field.
#[derive(ToSchema)]
#[schema(as = FieldError)]
#[allow(dead_code)]
pub struct FieldErrorDoc {
    /// Path of the field, like `items[0].quantity`.
    field: String,
    /// Why it failed.
    message: String,
}

/// Raw bytes (an image upload or download).
#[derive(ToSchema)]
#[schema(as = Binary, value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct BinaryDoc(Vec<u8>);

/// The schema of a line of text: no control characters (Unicode `Cc`), and something
/// other than white space (the server trims it and refuses what is left empty).
const LINE_OF_TEXT: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

fn line_of_text(max: usize) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(LINE_OF_TEXT))
        .build()
}

/// A display name (`domain::user::DisplayName`): 1–100 characters.
pub fn display_name() -> Object {
    line_of_text(100)
}

/// A product name: 1–200 characters.
pub fn product_name() -> Object {
    line_of_text(200)
}

/// A street: 1–200 characters.
pub fn street() -> Object {
    line_of_text(200)
}

/// A city: 1–100 characters.
pub fn city() -> Object {
    line_of_text(100)
}

/// `schema`, or `null`.
fn or_null(schema: Object) -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .item(schema)
            .build(),
    )
}

/// A display name, or `null` (unchanged).
pub fn nullable_display_name() -> Schema {
    or_null(display_name())
}

/// A product name, or `null` (unchanged).
pub fn nullable_product_name() -> Schema {
    or_null(product_name())
}

/// A currency, or `null` (unchanged).
pub fn nullable_currency() -> Schema {
    or_null(currency())
}

/// A coupon code: 1–20 ASCII letters and digits, or `null`.
pub fn nullable_coupon_code() -> Schema {
    or_null(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[A-Za-z0-9]{1,20}$"))
            .build(),
    )
}

/// An order's status.
pub fn order_status() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["placed", "cancelled"]))
        .build()
}

/// An account role.
pub fn role() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["user", "admin"]))
        .build()
}

/// An account role, or `null` (unchanged).
pub fn nullable_role() -> Schema {
    or_null(role())
}

/// Catalog and account search text: 1–100 characters, no control characters.
pub fn search_text() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(100))
        .pattern(Some(r"^[^\x00-\x1f\x7f-\x9f]*$"))
        .build()
}

/// An email address (`domain::user::EmailAddress`).
pub fn email() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
        .max_length(Some(254))
        .build()
}

/// A new password: 12–128 characters (the server also refuses common and guessable ones,
/// and ones holding the email's local part).
pub fn new_password() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
        .min_length(Some(12))
        .max_length(Some(128))
        .build()
}

/// A random one-time token as Rampart mints them: 256 bits, base64url without padding.
pub fn mail_token() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[A-Za-z0-9_-]{43}$"))
        .build()
}

/// An ISO 4217 currency code in circulation, upper-case.
pub fn currency() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(CURRENCIES))
        .build()
}

/// An ISO 3166-1 alpha-2 country code, upper-case.
pub fn country() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(COUNTRIES))
        .build()
}

/// A security event type.
pub fn event_type() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(EventKind::ALL.map(EventKind::as_str)))
        .build()
}

/// An RFC 3339 UTC time.
pub fn timestamp() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .build()
}

/// The document as served: `doc` (the merged routers) with the shared answers added.
pub fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    for (path, item) in doc.paths.paths.iter_mut() {
        for operation in operations(item) {
            add_shared_answers(path, operation);
        }
    }
    doc
}

/// The whole document: the top ([`ApiDoc`]), every route's operations and schemas, and
/// the answers they share ([`finish`]).
pub fn document(routes: &Documentation) -> utoipa::openapi::OpenApi {
    finish(routes.build(ApiDoc::openapi()))
}

/// The answer to `GET /openapi.json`: the document built from the routes' descriptions
/// ([`Documentation`]) and finished ([`finish`]) on the first request, serialised once and
/// its tree dropped; every later request shares the same bytes. A server nobody asks for
/// its document never builds it (bench/README.md, "Idle memory").
#[derive(Clone)]
pub struct Served(Arc<Lazy>);

struct Lazy {
    routes: Documentation,
    json: OnceLock<Option<Bytes>>,
}

impl Served {
    pub fn new(routes: Documentation) -> Self {
        Self(Arc::new(Lazy {
            routes,
            json: OnceLock::new(),
        }))
    }

    /// The serialised document, built on the first call.
    fn json(&self) -> Option<Bytes> {
        self.0
            .json
            .get_or_init(|| {
                let doc = document(&self.0.routes);
                match serde_json::to_vec(&doc) {
                    Ok(json) => Some(Bytes::from(json)),
                    Err(error) => {
                        tracing::error!(%error, "the OpenAPI document does not serialise");
                        None
                    }
                }
            })
            .clone()
    }
}

impl IntoResponse for Served {
    fn into_response(self) -> Response {
        match self.json() {
            Some(json) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                json,
            )
                .into_response(),
            None => Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response(),
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Whether `response` is a page of a list ([`crate::http::Paged`]).
fn is_page(response: &utoipa::openapi::Response) -> bool {
    matches!(
        response.content.get("application/json"),
        Some(RefOr::T(content)) if matches!(
            &content.schema,
            Some(RefOr::Ref(r)) if r.ref_location.starts_with("#/components/schemas/Paged_")
        )
    )
}

fn add_shared_answers(path: &str, operation: &mut Operation) {
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = operation.request_body.is_some();
    let mut answers = vec![
        (
            "400",
            "`validation_failed` (every failing field listed) or `duplicate_parameter` (a query parameter given twice)",
        ),
        (
            "429",
            "`rate_limited`: too many requests from this client; `Retry-After` says when to retry",
        ),
        (
            "503",
            "`unavailable`: the request timed out or a dependency is unreachable or saturated; retry later",
        ),
    ];
    if secured {
        answers.push((
            "401",
            "`unauthenticated` (no bearer token), `invalid_token` or `token_expired`",
        ));
    }
    if path.starts_with("/api/v1/admin/") {
        answers.push(("403", "`forbidden`: the admin role is required"));
    }
    if path.contains('{') {
        answers.push(("404", "`not_found`: unknown or malformed id"));
    }
    if has_body {
        answers.push((
            "413",
            "`payload_too_large`: the body is over the route's limit",
        ));
        answers.push((
            "415",
            "`unsupported_media_type`: a missing or wrong `Content-Type`",
        ));
    }
    let responses = &mut operation.responses.responses;
    if let Some(RefOr::T(list)) = responses.get_mut("200")
        && is_page(list)
    {
        list.headers.insert(
            "X-Total-Count".to_owned(),
            RefOr::T(
                HeaderBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0)),
                    ))
                    .description(Some("How many items the whole list holds"))
                    .build(),
            ),
        );
    }
    for (status, description) in answers {
        let mut response = ResponseBuilder::new().description(description);
        if status == "429" || status == "503" {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0)),
                    ))
                    .description(Some("Seconds to wait before retrying"))
                    .build(),
            );
        }
        responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(response.build()));
    }
    // Every error answer is a problem, whichever part of the server gives it.
    for (status, response) in responses.iter_mut() {
        if let (RefOr::T(response), true) = (response, status.starts_with(['4', '5'])) {
            response
                .content
                .entry("application/problem+json".to_owned())
                .or_insert_with(|| {
                    RefOr::T(
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    )
                });
            // A problem is never `application/json`.
            response.content.shift_remove("application/json");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::document;
    use crate::http::{admin, catalog_admin, me, orders, products, routing::ApiRouter};

    /// The document of the list routes, resolved: `$ref`s replaced by their schemas.
    fn lists() -> serde_json::Value {
        let (_, routes) = ApiRouter::new()
            .merge(admin::router())
            .merge(products::router())
            .merge(orders::router())
            .merge(catalog_admin::router())
            .merge(me::router())
            .split_for_parts();
        serde_json::to_value(document(&routes)).unwrap()
    }

    fn resolve<'a>(
        doc: &'a serde_json::Value,
        schema: &'a serde_json::Value,
    ) -> &'a serde_json::Value {
        match schema["$ref"].as_str() {
            Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap(),
            None => schema,
        }
    }

    #[test]
    fn every_list_documents_its_page_shape_its_paging_and_its_filters() {
        let doc = lists();
        for (path, item, filters) in [
            ("/api/v1/orders", "total_cents", &[][..]),
            (
                "/api/v1/products",
                "price_cents",
                &["q", "min_price", "max_price"][..],
            ),
            ("/api/v1/admin/users", "email_verified", &["q"][..]),
            (
                "/api/v1/admin/security-events",
                "occurred_at",
                &["type", "user_id"][..],
            ),
        ] {
            let get = &doc["paths"][path]["get"];
            let schema = &get["responses"]["200"]["content"]["application/json"]["schema"];
            let list = resolve(&doc, schema);
            for field in ["items", "page", "limit", "total"] {
                assert!(
                    list["properties"].get(field).is_some(),
                    "{path}: {field} in {list}"
                );
            }
            let items = resolve(&doc, &list["properties"]["items"]["items"]);
            assert!(
                items["properties"].get(item).is_some(),
                "{path}: items are {items}"
            );
            let names: Vec<&str> = get["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            for name in filters.iter().chain(&["page", "limit"]) {
                assert!(names.contains(name), "{path}: {name} in {names:?}");
            }
            assert_eq!(names.len(), filters.len() + 2, "{path}: {names:?}");
        }
    }

    #[test]
    fn the_shared_answers_follow_each_operations_shape() {
        let doc = lists();
        let post = &doc["paths"]["/api/v1/admin/products"]["post"]["responses"];
        for status in ["400", "401", "403", "413", "415", "429", "503"] {
            assert!(post.get(status).is_some(), "POST products: {status}");
            let content = &post[status]["content"];
            assert_eq!(
                content["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "POST products {status}: {content}"
            );
            assert!(content.get("application/json").is_none());
        }
        assert!(post.get("404").is_none(), "no path parameter: no 404");
        let search = &doc["paths"]["/api/v1/products"]["get"]["responses"];
        for status in ["401", "403", "404", "413", "415"] {
            assert!(search.get(status).is_none(), "GET products: no {status}");
        }
        assert!(search["429"]["headers"].get("Retry-After").is_some());
        assert!(search["200"]["headers"].get("X-Total-Count").is_some());
        let one = &doc["paths"]["/api/v1/products/{id}"]["get"]["responses"]["200"];
        assert!(one.get("headers").is_none(), "not a list: {one}");
        let order = &doc["paths"]["/api/v1/orders/{id}"]["get"]["responses"];
        assert!(order.get("404").is_some() && order.get("401").is_some());
        assert!(order.get("403").is_none(), "only the admin API answers 403");
    }
}
