//! The catalog's read side: `GET /api/v1/products` and `GET /api/v1/products/{id}`.

use std::io::Write as _;

use crate::http::routing::{ApiRouter, routes};
use axum::{
    Json,
    body::Body,
    extract::State,
    http::{HeaderName, HeaderValue, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::{
    IntoParams, ToSchema,
    openapi::path::{Parameter, ParameterIn},
};

use super::{
    FromQuery, Paged, ResourceId, ValidQuery, X_TOTAL_COUNT,
    paged::{integer_schema, query_param},
};
use crate::{
    commerce::catalog::{Catalog, CatalogPage, PageItems},
    domain::{
        FieldError,
        paging::PageOf,
        paging::PageRequest,
        product::{Product, ProductQuery},
        rfc3339,
    },
    error::AppError,
    state::AppState,
};

/// The catalog routes.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
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
) -> Result<Response, AppError> {
    let page = catalog(&state).search_page(&query).await?;
    Ok(page_response(page))
}

/// The response for a page of the search: what `Paged<ProductBody>` answers, byte for
/// byte; a page from the index is written straight from each entry's JSON (see
/// [`crate::commerce::search_index::Entry::write_json`]) instead of through copies of the
/// products.
fn page_response(page: CatalogPage) -> Response {
    let CatalogPage {
        request,
        total,
        items,
    } = page;
    let entries = match items {
        PageItems::Products(products) => {
            return Paged::of(PageOf::new(request, (products, total)), ProductBody::from)
                .into_response();
        }
        PageItems::Indexed(entries) => entries,
    };
    let mut body = Vec::with_capacity(64 + entries.len() * 320);
    body.extend_from_slice(b"{\"items\":[");
    for (n, entry) in entries.iter().enumerate() {
        if n > 0 {
            body.push(b',');
        }
        entry.write_json(&mut body);
    }
    // Writing into a Vec cannot fail.
    let _ = write!(
        body,
        "],\"page\":{},\"limit\":{},\"total\":{total}}}",
        request.page.get(),
        request.limit.get()
    );
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    // As `axum::Json` labels a body.
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        HeaderName::from_static(X_TOTAL_COUNT),
        HeaderValue::from(total),
    );
    response
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        commerce::testing,
        domain::product::{NewProduct, ProductFields},
    };

    async fn body_of(response: Response) -> (String, String, Vec<u8>) {
        let content_type = response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let total = response.headers()[X_TOTAL_COUNT]
            .to_str()
            .unwrap()
            .to_owned();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (content_type, total, body.to_vec())
    }

    /// The page written from the index's JSON is the very response `Paged<ProductBody>`
    /// gives, for texts JSON must escape (quotes, backslashes, HTML, non-ASCII, `\u{2028}`),
    /// a stock changed by an order (no catalog write), pages past the end and the fallback.
    #[tokio::test]
    async fn an_indexed_page_is_byte_for_byte_the_serialized_page() {
        let f = testing::fixture().await;
        let catalog = Catalog::new(f.db.clone());
        let names = [
            "Tea \"quoted\"",
            r"back\slash tea",
            "Thé glacé \u{2028} 🍵",
            "tea </script><b>",
            "tab\ttea",
        ];
        for (n, name) in names.iter().enumerate() {
            let new = NewProduct::parse(ProductFields {
                name: Some((*name).into()),
                description: Some(format!("<p>tea & \"{n}\" <i>ü</i></p>")),
                price_cents: Some(100 + i64::try_from(n).unwrap()),
                currency: Some("EUR".into()),
                stock: Some(3),
            });
            let Ok(new) = new else { continue };
            catalog
                .create(&new, 1_767_225_600_000 + i64::try_from(n).unwrap())
                .await
                .unwrap();
        }
        // Stock and updated_at change without moving the catalog version (as orders do).
        crate::commerce::testing::change_stock_by_price(&f.db, 101..=101, 38, 5).await;
        let queries: &[&[(&str, &str)]] = &[
            &[("q", "tea")],
            &[("q", "TEA"), ("limit", "2"), ("page", "2")],
            &[("q", "te"), ("limit", "1"), ("page", "900")],
            &[("q", "\"")],
            &[("q", "ü")],
            &[],
            &[("min_price", "102")],
            &[("q", "nothing at all")],
        ];
        let mut indexed = 0;
        for pairs in queries {
            let query = ProductQuery::parse(pairs.iter().copied()).unwrap();
            let page = catalog.search_page(&query).await.unwrap();
            indexed += usize::from(matches!(page.items, PageItems::Indexed(_)));
            let expected = Paged::of(page.to_page(), ProductBody::from).into_response();
            let (fast, slow) = (body_of(page_response(page)).await, body_of(expected).await);
            assert_eq!(
                String::from_utf8_lossy(&fast.2),
                String::from_utf8_lossy(&slow.2),
                "{pairs:?}"
            );
            assert_eq!(fast, slow, "{pairs:?}");
        }
        assert_eq!(indexed, queries.len(), "every page came from the index");
        let tea = catalog
            .search(&ProductQuery::parse([("q", "tea")]).unwrap())
            .await
            .unwrap();
        assert!(
            tea.items.iter().any(|p| p.stock == 41),
            "the stock an order-like write changed, on the very next page"
        );
        // The SQL fallback's page goes through `Paged` itself.
        let fallback = CatalogPage {
            request: tea.request,
            total: tea.total,
            items: PageItems::Products(tea.items.clone()),
        };
        let expected = Paged::of(tea, ProductBody::from).into_response();
        assert_eq!(
            body_of(page_response(fallback)).await,
            body_of(expected).await
        );
    }
}
