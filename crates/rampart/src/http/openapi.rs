//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
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
    /// Problem type URI.
    #[schema(rename = "type")]
    type_uri: String,
    title: String,
    status: u16,
    detail: String,
    /// Stable machine-readable code: `validation_failed`, `not_found`, …
    code: String,
    request_id: Option<String>,
    /// Every failing field, for `validation_failed`.
    errors: Option<Vec<FieldErrorDoc>>,
}

/// One failing field.
#[derive(ToSchema)]
#[schema(as = FieldError)]
#[allow(dead_code)]
pub struct FieldErrorDoc {
    /// Path of the field, like `items[0].quantity`.
    field: String,
    message: String,
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi as _;
    use utoipa_axum::router::OpenApiRouter;

    use super::ApiDoc;
    use crate::http::{admin, orders, products};

    /// The document of the list routes, resolved: `$ref`s replaced by their schemas.
    fn lists() -> serde_json::Value {
        let (_, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
            .merge(admin::router())
            .merge(products::router())
            .merge(orders::router())
            .split_for_parts();
        serde_json::to_value(doc).unwrap()
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
}
