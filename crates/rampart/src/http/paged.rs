//! The one shape of every list (API.md §4): `{"items":[…],"page":P,"limit":L,"total":N}`
//! plus `X-Total-Count: N`, and the OpenAPI documentation of `page` and `limit`.
//!
//! ```text
//! async fn list(…) -> Result<Paged<OrderBody>, AppError> {
//!     Ok(Paged::of(service.list(…).await?, |o| OrderBody::from(&o)))
//! }
//! ```

use axum::{
    Json,
    response::{AppendHeaders, IntoResponse, Response},
};
use serde::Serialize;
use utoipa::{
    IntoParams, ToSchema,
    openapi::{
        Required,
        path::{Parameter, ParameterBuilder, ParameterIn},
        schema::{ObjectBuilder, Type},
    },
};

use super::{FromQuery, X_TOTAL_COUNT};
use crate::domain::{
    FieldError,
    paging::{Limit, Page, PageOf, PageRequest},
};

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paged<T> {
    /// The items of this page (empty past the end).
    items: Vec<T>,
    /// The page number, 1–100 000.
    #[schema(minimum = 1, maximum = 100_000)]
    page: u32,
    /// The page size, 1–100 (a list that is not paged, like the sessions, has every item
    /// on page 1: its size is the item count).
    #[schema(minimum = 1)]
    limit: u32,
    /// How many items the whole list holds; also in `X-Total-Count`.
    #[schema(minimum = 0)]
    total: i64,
}

impl<T> Paged<T> {
    /// The response for `page`, each item converted to its body by `body`.
    pub fn of<U>(page: PageOf<U>, body: impl FnMut(U) -> T) -> Self {
        let PageOf {
            items,
            request,
            total,
        } = page.map(body);
        Self {
            items,
            page: request.page.get(),
            limit: request.limit.get(),
            total,
        }
    }
}

impl<T> Paged<T> {
    /// A list that is not paged (like an account's sessions): every item on page 1, the
    /// page size being the item count (at least 1).
    pub fn whole(items: Vec<T>) -> Self {
        let count = items.len();
        Self {
            items,
            page: 1,
            limit: u32::try_from(count.max(1)).unwrap_or(u32::MAX),
            total: i64::try_from(count).unwrap_or(i64::MAX),
        }
    }
}

impl<T: Serialize> IntoResponse for Paged<T> {
    fn into_response(self) -> Response {
        let total = self.total.to_string();
        (AppendHeaders([(X_TOTAL_COUNT, total)]), Json(self)).into_response()
    }
}

impl FromQuery for PageRequest {
    fn from_query<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<FieldError>> {
        PageRequest::parse(pairs)
    }
}

/// An optional query parameter of `schema`.
pub fn query_param(
    name: &str,
    description: &str,
    schema: impl Into<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// A whole number from `min` to `max`, `default` when absent.
pub fn integer_schema(min: i64, max: Option<i64>, default: Option<i64>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(min))
        .maximum(max)
        .default(default.map(serde_json::Value::from))
}

/// `page` and `limit`, documented once for every list.
impl IntoParams for PageRequest {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            query_param(
                "page",
                "Page number.",
                integer_schema(1, Some(Page::MAX.into()), Some(1)),
            ),
            query_param(
                "limit",
                "Page size.",
                integer_schema(
                    1,
                    Some(Limit::MAX.into()),
                    Some(Limit::default().get().into()),
                ),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_page_answers_its_shape_and_the_total_header() {
        let request = PageRequest::parse([("page", "3"), ("limit", "2")]).unwrap();
        let response = Paged::of(PageOf::new(request, (vec![1, 2], 9)), |n| n * 10).into_response();
        assert_eq!(response.headers()[X_TOTAL_COUNT], "9");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"items": [10, 20], "page": 3, "limit": 2, "total": 9})
        );
    }

    #[test]
    fn a_whole_list_is_one_page_of_all_its_items() {
        let all = Paged::whole(vec!["a", "b", "c"]);
        assert_eq!((all.page, all.limit, all.total), (1, 3, 3));
        let none = Paged::<u8>::whole(Vec::new());
        assert_eq!((none.page, none.limit, none.total), (1, 1, 0));
    }

    #[test]
    fn page_and_limit_are_documented_with_their_bounds() {
        let params = PageRequest::into_params(|| None);
        let doc = serde_json::to_value(&params).unwrap();
        assert_eq!(doc[0]["name"], "page");
        assert_eq!(doc[0]["schema"]["maximum"], 100_000);
        assert_eq!(doc[1]["name"], "limit");
        assert_eq!(doc[1]["schema"]["maximum"], 100);
        assert_eq!(doc[1]["schema"]["default"], 20);
    }
}
