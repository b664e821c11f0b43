//! `GET /.well-known/jwks.json`: the public keys of every key that may still verify.

use crate::http::routing::{ApiRouter, routes};
use axum::{Json, extract::State, response::IntoResponse};
use http::header;

use crate::state::AppState;

/// The JWKS route.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new().routes(routes!(jwks))
}

/// Public signing keys (Ed25519, `alg: EdDSA`); never private material.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JSON Web Key Set", body = Object)))]
async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    // Public and shared by every client: caching is fine here, unlike the rest of the API.
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.tokens.jwks()),
    )
}
