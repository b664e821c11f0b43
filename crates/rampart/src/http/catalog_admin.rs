//! `/api/v1/admin/products`: create, change and delete products, for the `admin` role only
//! (others get 403 `forbidden` and a security event, from [`RequireRole<Admin>`]).
//!
//! Every field is checked at once and every failing one listed; `description` is HTML
//! sanitized to the bio allowlist (`p br b i em strong ul ol li a[href]`, http/https/mailto
//! links with `rel="noopener noreferrer nofollow"`) before it is stored.

use crate::http::routing::{ApiRouter, routes};
use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    ResourceId, ValidJson,
    products::{ProductBody, catalog},
};
use crate::{
    auth::extract::{Admin, RequireRole},
    domain::product::{NewProduct, ProductFields, ProductPatch},
    error::AppError,
    state::AppState,
};

/// The catalog administration routes.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(create_product))
        .routes(routes!(patch_product, delete_product))
}

/// A new product. Every field but `description` is required; a missing one is listed
/// with every other failing field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProductInput {
    /// 1–200 characters, no control characters; trimmed.
    #[schema(required = true, schema_with = crate::http::openapi::product_name)]
    name: Option<String>,
    /// HTML, at most 5000 characters; sanitized to `p br b i em strong ul ol li a[href]`.
    #[schema(max_length = 5000)]
    description: Option<String>,
    /// 0 to 10^12, in the currency's minor unit.
    #[schema(required = true, value_type = i64, minimum = 0, maximum = 1_000_000_000_000_i64)]
    price_cents: Option<i64>,
    /// ISO 4217, like `EUR`.
    #[schema(required = true, schema_with = crate::http::openapi::currency)]
    currency: Option<String>,
    /// 0 to 10^9.
    #[schema(required = true, value_type = i64, minimum = 0, maximum = 1_000_000_000)]
    stock: Option<i64>,
}

impl From<NewProductInput> for ProductFields {
    fn from(input: NewProductInput) -> Self {
        Self {
            name: input.name,
            description: input.description,
            price_cents: input.price_cents,
            currency: input.currency,
            stock: input.stock,
        }
    }
}

/// A change of a product: only the given fields change (absent or `null`: unchanged).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatchInput {
    /// 1–200 characters, no control characters; trimmed.
    #[schema(schema_with = crate::http::openapi::nullable_product_name)]
    name: Option<String>,
    /// HTML, at most 5000 characters; sanitized to `p br b i em strong ul ol li a[href]`.
    #[schema(max_length = 5000)]
    description: Option<String>,
    /// 0 to 10^12, in the currency's minor unit.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    price_cents: Option<i64>,
    /// ISO 4217, like `EUR`.
    #[schema(schema_with = crate::http::openapi::nullable_currency)]
    currency: Option<String>,
    /// 0 to 10^9.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    stock: Option<i64>,
}

impl From<ProductPatchInput> for ProductFields {
    fn from(input: ProductPatchInput) -> Self {
        Self {
            name: input.name,
            description: input.description,
            price_cents: input.price_cents,
            currency: input.currency,
            stock: input.stock,
        }
    }
}

/// Create a product.
#[utoipa::path(post, path = "/api/v1/admin/products", tag = "admin", security(("bearer" = [])),
    request_body = NewProductInput,
    responses(
        (status = 201, description = "The product", body = ProductBody),
        (status = 400, description = "`validation_failed`: every failing field", body = crate::http::openapi::ProblemDoc,
            content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not an admin", body = crate::http::openapi::ProblemDoc,
            content_type = "application/problem+json"),
    ))]
async fn create_product(
    State(state): State<AppState>,
    _admin: RequireRole<Admin>,
    ValidJson(input): ValidJson<NewProductInput>,
) -> Result<(StatusCode, Json<ProductBody>), AppError> {
    let new = NewProduct::parse(input.into()).map_err(AppError::Validation)?;
    let product = catalog(&state).create(&new, state.clock.now_ms()).await?;
    Ok((StatusCode::CREATED, Json(ProductBody::from(product))))
}

/// Change some fields of a product.
#[utoipa::path(patch, path = "/api/v1/admin/products/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Product id")),
    request_body = ProductPatchInput,
    responses(
        (status = 200, description = "The changed product", body = ProductBody),
        (status = 400, description = "`validation_failed`: every failing field", body = crate::http::openapi::ProblemDoc,
            content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not an admin"),
        (status = 404, description = "`not_found`: unknown or malformed id"),
    ))]
async fn patch_product(
    State(state): State<AppState>,
    _admin: RequireRole<Admin>,
    ResourceId(id): ResourceId,
    ValidJson(input): ValidJson<ProductPatchInput>,
) -> Result<Json<ProductBody>, AppError> {
    let patch = ProductPatch::parse(input.into()).map_err(AppError::Validation)?;
    let product = catalog(&state)
        .update(id, &patch, state.clock.now_ms())
        .await?;
    product
        .map(|p| Json(ProductBody::from(p)))
        .ok_or(AppError::NotFound)
}

/// Delete a product; placed orders keep their copy of its name and price.
#[utoipa::path(delete, path = "/api/v1/admin/products/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Product id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`: not an admin"),
        (status = 404, description = "`not_found`: unknown or malformed id"),
    ))]
async fn delete_product(
    State(state): State<AppState>,
    _admin: RequireRole<Admin>,
    ResourceId(id): ResourceId,
) -> Result<StatusCode, AppError> {
    if catalog(&state).delete(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound)
    }
}
