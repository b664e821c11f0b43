//! `/api/v1/orders`: place, list, read and cancel orders.
//!
//! - The body refuses unknown fields at every level (a client `price_cents`, `total`,
//!   `status` or `user_id` is a 400 naming it); prices and totals come from the catalog.
//! - An optional `Idempotency-Key` (1–255 printable ASCII) is scoped to the user: the first
//!   response is stored for 24 h and replayed (with `Idempotent-Replayed: true`) for the
//!   same key and the same body; the same key with another body is 422
//!   `idempotency_key_reused`; while the first request still runs, 409 `conflict`.
//! - Owners see their own orders, admins every order; for anyone else an existing order
//!   is the same 404 as an unknown id, and the probe is recorded as a `forbidden` event.
//!
//! That policy lives in [`crate::commerce::orders`]; this module parses the body and the
//! header, calls the service, and renders its outcomes (and the answers it stores).

use crate::http::routing::{ApiRouter, routes};
use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use rampart_layers::problem::Problem;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Paged, ResourceId, ValidJson, ValidQuery};
use crate::{
    auth::{extract::CurrentUser, random::token_hash},
    commerce::orders::{Answers, Idempotency, Orders, PlaceOrderCommand, Placement, Refusal},
    domain::{
        FieldError,
        order::{IdempotencyKey, Order, OrderFields, PlaceOrder, PricingError},
        paging::PageRequest,
        rfc3339,
    },
    error::AppError,
    security_events::EventContext,
    state::AppState,
};

/// The header naming a replayed response.
const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The order routes.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(place_order, list_orders))
        .routes(routes!(get_order))
        .routes(routes!(cancel_order))
}

/// One requested line.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItemInput {
    /// A product id (UUID).
    #[schema(format = Uuid)]
    product_id: String,
    /// 1–100.
    #[schema(minimum = 1, maximum = 100)]
    quantity: i64,
}

/// Where to ship.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    /// 1–200 characters, no control characters; trimmed.
    #[schema(schema_with = crate::http::openapi::street)]
    street: String,
    /// 1–100 characters, no control characters; trimmed.
    #[schema(schema_with = crate::http::openapi::city)]
    city: String,
    /// 3–10 ASCII letters and digits.
    #[schema(pattern = "^[A-Za-z0-9]{3,10}$")]
    postal_code: String,
    /// ISO 3166-1 alpha-2, like `DE`.
    #[schema(schema_with = crate::http::openapi::country)]
    country: String,
}

/// `POST /orders` body. There is no price, total, status or owner field: the server
/// computes and decides those.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderInput {
    /// 1–50 lines.
    #[schema(min_items = 1, max_items = 50)]
    items: Vec<OrderItemInput>,
    shipping_address: AddressInput,
    /// Up to 20 letters and digits; recorded with the order.
    #[serde(default)]
    #[schema(schema_with = crate::http::openapi::nullable_coupon_code)]
    coupon_code: Option<String>,
}

impl From<PlaceOrderInput> for OrderFields {
    fn from(input: PlaceOrderInput) -> Self {
        Self {
            items: input
                .items
                .into_iter()
                .map(|i| (i.product_id, i.quantity))
                .collect(),
            street: input.shipping_address.street,
            city: input.shipping_address.city,
            postal_code: input.shipping_address.postal_code,
            country: input.shipping_address.country,
            coupon_code: input.coupon_code,
        }
    }
}

/// A priced line.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderItemBody {
    product_id: Uuid,
    /// The product's name when the order was placed.
    name: String,
    quantity: i64,
    unit_price_cents: i64,
    line_total_cents: i64,
}

/// The stored shipping address.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddressBody {
    street: String,
    city: String,
    postal_code: String,
    country: String,
}

/// An order (API.md §5 shape).
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderBody {
    id: Uuid,
    /// `placed` or `cancelled`.
    #[schema(value_type = String, schema_with = crate::http::openapi::order_status)]
    status: &'static str,
    items: Vec<OrderItemBody>,
    total_cents: i64,
    /// ISO 4217; one currency per order.
    currency: String,
    shipping_address: AddressBody,
    coupon_code: Option<String>,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<&Order> for OrderBody {
    fn from(o: &Order) -> Self {
        Self {
            id: o.id,
            status: o.status.as_str(),
            items: o
                .items
                .iter()
                .map(|i| OrderItemBody {
                    product_id: i.product_id,
                    name: i.name.clone(),
                    quantity: i.quantity,
                    unit_price_cents: i.unit_price_cents,
                    line_total_cents: i.line_total_cents,
                })
                .collect(),
            total_cents: o.total_cents,
            currency: o.currency.clone(),
            shipping_address: AddressBody {
                street: o.shipping_address.street.clone(),
                city: o.shipping_address.city.clone(),
                postal_code: o.shipping_address.postal_code.clone(),
                country: o.shipping_address.country.clone(),
            },
            coupon_code: o.coupon_code.clone(),
            created_at: rfc3339(o.created_at),
        }
    }
}

/// The hash an `Idempotency-Key` remembers: SHA-256 of the canonical body, i.e. the parsed
/// input serialised again (fixed field order, no whitespace), so formatting and key order
/// do not make a retry "different".
pub fn request_hash(input: &PlaceOrderInput) -> String {
    token_hash(&serde_json::to_string(input).unwrap_or_default())
}

/// The order service of `state`.
fn orders(state: &AppState) -> Orders {
    Orders::new(
        state.db.clone(),
        state.events.clone(),
        state.config.tunables.request_timeout,
    )
}

/// The answers stored for an `Idempotency-Key`: the bodies this module sends.
struct JsonAnswers;

impl Answers for JsonAnswers {
    fn placed(&self, order: &Order) -> String {
        // Serialising plain strings and numbers cannot fail; an empty body would be visible.
        serde_json::to_string(&OrderBody::from(order)).unwrap_or_default()
    }

    fn refused(&self, refusal: &Refusal) -> (u16, String) {
        let response = refusal_error(refusal.clone()).into_response();
        let body = response
            .extensions()
            .get::<Problem>()
            .and_then(|p| serde_json::to_string(p).ok())
            .unwrap_or_default();
        (response.status().as_u16(), body)
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The `Idempotency-Key` header, if given: once, 1–255 printable ASCII.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, AppError> {
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AppError::field(
            "Idempotency-Key",
            "must be given at most once",
        ));
    }
    IdempotencyKey::parse(first.as_bytes())
        .map(Some)
        .map_err(|e| AppError::Validation(vec![e]))
}

/// A stored answer, sent again.
fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = if status.is_success() {
        json_response(status, body)
    } else {
        // Error bodies are rebuilt as a problem so the finalizer stamps this request's id.
        let stored: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let text = |key: &str| stored[key].as_str().unwrap_or_default().to_owned();
        let mut problem = Problem::new(status, &text("code"))
            .with_title(text("title"))
            .with_detail(text("detail"));
        if let Some(errors) = stored["errors"].as_array() {
            problem = problem.with_errors(
                errors
                    .iter()
                    .map(|e| {
                        FieldError::new(
                            e["field"].as_str().unwrap_or_default(),
                            e["message"].as_str().unwrap_or_default(),
                        )
                    })
                    .collect(),
            );
        }
        problem.into_response()
    };
    response
        .headers_mut()
        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}

/// What a refused placement tells the client.
fn refusal_error(refusal: Refusal) -> AppError {
    match refusal {
        // A product id that names nothing is a property of the request, like a malformed
        // one: 400 naming the line, not 404 (the route exists) nor 409 (no state conflicts).
        Refusal::NotPriced(PricingError::UnknownProducts(lines)) => AppError::Validation(
            lines
                .into_iter()
                .map(|i| FieldError::new(format!("items[{i}].product_id"), "names no product"))
                .collect(),
        ),
        Refusal::NotPriced(PricingError::MixedCurrencies) => {
            AppError::Conflict("The products of one order must share one currency.")
        }
        Refusal::NotPriced(PricingError::TooLarge) => {
            AppError::field("items", "the order total is too large")
        }
        Refusal::OutOfStock => AppError::Conflict("Not enough stock for this order."),
    }
}

/// Place an order: prices and totals are computed from the catalog; stock is taken in one
/// transaction and never oversold.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])),
    request_body = PlaceOrderInput,
    params(("Idempotency-Key" = Option<String>, Header,
        pattern = "^[\\x20-\\x7e]{1,255}$",
        description = "1–255 printable ASCII characters; the first response is replayed for 24 h")),
    responses(
        (status = 201, description = "The order", body = OrderBody),
        (status = 400, description = "Every failing field (unknown fields, unknown products included)",
            body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`conflict`: not enough stock, mixed currencies, or the same Idempotency-Key still in flight",
            body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`: the key was used with another body",
            body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn place_order(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    ValidJson(input): ValidJson<PlaceOrderInput>,
) -> Result<Response, AppError> {
    // The body's hash only when a key will remember it (it was 2 % of an order's CPU).
    let idempotency = idempotency_key(&headers)?.map(|key| Idempotency {
        key,
        request_hash: request_hash(&input),
    });
    let command = PlaceOrderCommand {
        customer: current.user.id,
        order: PlaceOrder::parse(input.into()).map_err(AppError::Validation)?,
        idempotency,
    };
    let placement = orders(&state)
        .place(command, &JsonAnswers, state.clock.now_ms())
        .await?;
    match placement {
        Placement::Placed(order) => Ok(json_response(
            StatusCode::CREATED,
            JsonAnswers.placed(&order),
        )),
        Placement::Refused(refusal) => Err(refusal_error(refusal)),
        Placement::Replayed { status, body } => Ok(replay(status, body)),
        Placement::InFlight => Err(AppError::Conflict(
            "A request with this Idempotency-Key is still in progress.",
        )),
        Placement::KeyReused => Err(AppError::IdempotencyKeyReused),
    }
}

/// The caller's orders (an admin's: every order), newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])),
    params(PageRequest),
    responses(
        (status = 200, description = "A page of orders; `X-Total-Count` holds the total",
            body = Paged<OrderBody>),
        (status = 400, description = "`validation_failed` (a parameter out of its bounds, or an unknown one) or `duplicate_parameter`",
            body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn list_orders(
    State(state): State<AppState>,
    current: CurrentUser,
    ValidQuery(paging): ValidQuery<PageRequest>,
) -> Result<Paged<OrderBody>, AppError> {
    let page = orders(&state).list(&current.user, paging).await?;
    Ok(Paged::of(page, |o| OrderBody::from(&o)))
}

/// One order.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = OrderBody),
        (status = 404, description = "Unknown, malformed, or another user's order",
            body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn get_order(
    State(state): State<AppState>,
    ctx: EventContext,
    current: CurrentUser,
    ResourceId(id): ResourceId,
) -> Result<Json<OrderBody>, AppError> {
    let order = orders(&state).get(&current.user, id, &ctx).await?;
    order
        .map(|o| Json(OrderBody::from(&o)))
        .ok_or(AppError::NotFound)
}

/// Cancel an order and give its stock back (exactly once: cancelling a cancelled order
/// answers 200 with it, changing nothing).
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The cancelled order", body = OrderBody),
        (status = 404, description = "Unknown, malformed, or another user's order",
            body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn cancel_order(
    State(state): State<AppState>,
    ctx: EventContext,
    current: CurrentUser,
    ResourceId(id): ResourceId,
) -> Result<Json<OrderBody>, AppError> {
    let order = orders(&state)
        .cancel(&current.user, id, &ctx, state.clock.now_ms())
        .await?;
    order
        .map(|o| Json(OrderBody::from(&o)))
        .ok_or(AppError::NotFound)
}
