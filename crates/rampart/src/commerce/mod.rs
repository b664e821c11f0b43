//! The commerce services of API.md §5: the policy of orders (idempotency, stock,
//! who may see what), the catalog, and avatar storage. Each takes parsed commands (domain
//! types) and the current time and answers a domain outcome; the HTTP handlers in
//! `crate::http` only extract, call one of these and map the outcome to a response.
//!
//! ```text
//! http::orders ──▶ commerce::orders::Orders ──▶ store::{orders, idempotency}, domain::order
//! ```

pub mod avatars;
pub mod catalog;
pub mod orders;
pub mod search_index;

#[cfg(test)]
pub(crate) mod testing;
