//! The HTTP resources, one file each, each with `pub fn router() -> ApiRouter<AppState>`,
//! and the extractors that turn raw request parts into domain types.

pub mod admin;
pub mod auth;
pub mod avatars;
pub mod catalog_admin;
pub mod health;
pub mod json;
pub mod jwks;
pub mod me;
pub mod openapi;
pub mod orders;
pub mod paged;
pub mod products;
pub mod routing;

use axum::{
    extract::{FromRequestParts, Path},
    http::request::Parts,
};
use rampart_layers::problem::FieldError;
use uuid::Uuid;

use crate::error::AppError;

pub use json::ValidJson;
pub use paged::Paged;

/// Types parsed from the decoded pairs of a query string.
pub trait FromQuery: Sized {
    /// Parse, listing every failing parameter.
    fn from_query<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<FieldError>>;
}

/// A query string parsed into `T`; a failure is 400 `validation_failed`.
#[derive(Debug)]
pub struct ValidQuery<T>(pub T);

impl<S: Send + Sync, T: FromQuery> FromRequestParts<S> for ValidQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        T::from_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map(ValidQuery)
            .map_err(AppError::Validation)
    }
}

/// A resource id from the last path segment. A malformed id is the same 404 as an unknown
/// one, so ids cannot be probed for shape.
#[derive(Debug, Clone, Copy)]
pub struct ResourceId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for ResourceId {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::NotFound)?;
        Uuid::try_parse(&raw)
            .map(ResourceId)
            .map_err(|_| AppError::NotFound)
    }
}

/// The rate-limit key of the client: its IP, or its IPv6 /64 (from the client-IP layer).
#[derive(Debug, Clone)]
pub struct ClientKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<rampart_layers::client_ip::ClientIp>()
                .map_or_else(|| "unknown".to_owned(), |c| c.key().to_string()),
        ))
    }
}

/// `X-Total-Count`, on every list.
pub const X_TOTAL_COUNT: &str = "x-total-count";
