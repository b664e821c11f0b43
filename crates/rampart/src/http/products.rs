//! The catalog's read side: `GET /api/v1/products` and `GET /api/v1/products/{id}`.

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::{
    IntoParams, ToSchema,
    openapi::path::{Parameter, ParameterIn},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    FromQuery, Paged, ResourceId, ValidQuery,
    paged::{integer_schema, query_param},
};
use crate::{
    commerce::catalog::Catalog,
    domain::{
        FieldError,
        paging::PageRequest,
        product::{Product, ProductQuery},
        rfc3339,
    },
    error::AppError,
    state::AppState,
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
    #[schema(minimum = 0)]
    price_cents: i64,
    /// ISO 4217.
    currency: String,
    #[schema(minimum = 0)]
    stock: i64,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    created_at: String,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
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

/// The catalog service of `state` (one per process: it holds the search index).
pub(super) fn catalog(state: &AppState) -> &Catalog {
    &state.catalog
}

impl FromQuery for ProductQuery {
    fn from_query<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<FieldError>> {
        ProductQuery::parse(pairs)
    }
}

/// The search parameters of [`ProductQuery`] besides `page` and `limit`.
impl IntoParams for ProductQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            query_param(
                "q",
                "Matched literally against name and description (case-insensitive).",
                crate::http::openapi::search_text(),
            ),
            query_param(
                "min_price",
                "Lowest price in cents (at most `max_price`).",
                integer_schema(0, Some(i64::MAX), None),
            ),
            query_param(
                "max_price",
                "Highest price in cents.",
                integer_schema(0, Some(i64::MAX), None),
            ),
        ]
    }
}

/// Search the catalog, newest first.
#[utoipa::path(get, path = "/api/v1/products", tag = "catalog", params(ProductQuery, PageRequest),
    responses(
        (status = 200, description = "A page of products; `X-Total-Count` holds the total",
            body = Paged<ProductBody>),
        (status = 400, description = "`validation_failed` (a parameter out of its bounds, an unknown one, or `min_price` over `max_price`) or `duplicate_parameter`",
            body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn list_products(
    State(state): State<AppState>,
    ValidQuery(query): ValidQuery<ProductQuery>,
) -> Result<Paged<ProductBody>, AppError> {
    let page = catalog(&state).search(&query).await?;
    Ok(Paged::of(page, ProductBody::from))
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
    let product = catalog(&state).get(id).await?;
    product
        .map(|p| Json(ProductBody::from(p)))
        .ok_or(AppError::NotFound)
}
