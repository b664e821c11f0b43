//! The catalog's read side: `GET /api/v1/products` and `GET /api/v1/products/{id}`.

use axum::{
    Json,
    extract::State,
    response::{AppendHeaders, IntoResponse},
};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{FromQuery, ResourceId, ValidQuery, X_TOTAL_COUNT};
use crate::{
    domain::{
        FieldError,
        product::{Product, ProductQuery},
        rfc3339,
    },
    error::AppError,
    state::AppState,
    store,
};

/// The catalog routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_products))
        .routes(routes!(get_product))
}

/// A product as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductBody {
    id: uuid::Uuid,
    name: String,
    /// Sanitized HTML.
    description: String,
    price_cents: i64,
    /// ISO 4217.
    currency: String,
    stock: i64,
    /// RFC 3339 UTC.
    created_at: String,
    /// RFC 3339 UTC.
    updated_at: String,
}

impl From<Product> for ProductBody {
    fn from(p: Product) -> Self {
        Self {
            id: p.id,
            name: p.name,
            description: p.description,
            price_cents: p.price_cents,
            currency: p.currency,
            stock: p.stock,
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
        }
    }
}

/// One page of products.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductList {
    items: Vec<ProductBody>,
    page: u32,
    limit: u32,
    total: i64,
}

/// The parameters of the product search (documentation of [`ProductQuery`]).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ProductSearchParams {
    /// 1–100 characters, matched literally against name and description (case-insensitive).
    q: Option<String>,
    /// Page number, 1 or more (default 1).
    page: Option<u32>,
    /// Page size, 1–100 (default 20).
    limit: Option<u32>,
    /// Lowest price in cents.
    min_price: Option<i64>,
    /// Highest price in cents.
    max_price: Option<i64>,
}

impl FromQuery for ProductQuery {
    fn from_query<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<FieldError>> {
        ProductQuery::parse(pairs)
    }
}

/// Search the catalog.
#[utoipa::path(get, path = "/api/v1/products", tag = "catalog", params(ProductSearchParams),
    responses(
        (status = 200, description = "A page of products; `X-Total-Count` holds the total", body = ProductList),
        (status = 400, description = "Invalid or duplicate parameter", body = crate::http::openapi::ProblemDoc,
            content_type = "application/problem+json"),
    ))]
async fn list_products(
    State(state): State<AppState>,
    ValidQuery(query): ValidQuery<ProductQuery>,
) -> Result<impl IntoResponse, AppError> {
    let (products, total) = store::products::search(&state.db, &query).await?;
    let body = ProductList {
        items: products.into_iter().map(ProductBody::from).collect(),
        page: query.page.get(),
        limit: query.limit.get(),
        total,
    };
    Ok((
        AppendHeaders([(X_TOTAL_COUNT, total.to_string())]),
        Json(body),
    ))
}

/// One product.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "catalog",
    params(("id" = uuid::Uuid, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product", body = ProductBody),
        (status = 404, description = "Unknown or malformed id", body = crate::http::openapi::ProblemDoc,
            content_type = "application/problem+json"),
    ))]
async fn get_product(
    State(state): State<AppState>,
    ResourceId(id): ResourceId,
) -> Result<Json<ProductBody>, AppError> {
    store::products::get(&state.db, id)
        .await?
        .map(|p| Json(ProductBody::from(p)))
        .ok_or(AppError::NotFound)
}
