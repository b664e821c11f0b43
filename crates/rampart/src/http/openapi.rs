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
