//! One indexed product and its JSON as the API writes it, cut around the two fields that
//! change without a catalog write (`stock` and `updated_at`).

use std::io::Write as _;

use serde::Serialize;
use uuid::Uuid;

use crate::{
    domain::{product::Product, rfc3339},
    store::products::IndexRow,
};

/// One indexed product: the product as its last versioned write left it, its search text
/// and its JSON.
#[derive(Debug, Clone)]
pub struct Entry {
    pub(super) product: Product,
    pub(super) text: Box<str>,
    /// `{"id":…,"name":…,"description":…,"price_cents":…,"currency":…,"stock":`
    json_head: Box<str>,
    /// `,"created_at":"…","updated_at":`
    json_created: Box<str>,
    /// `"…"}`: the product's own `updated_at` and the closing brace.
    json_updated: Box<str>,
}

/// The fields of the API's product body (`http::products::ProductBody`, whose field order
/// this keeps) that only a versioned write changes.
#[derive(Serialize)]
struct Head<'a> {
    id: Uuid,
    name: &'a str,
    description: &'a str,
    price_cents: i64,
    currency: &'a str,
}

/// `value` as JSON (serde_json's escaping, the same as the API's serializer).
fn json<T: Serialize + ?Sized>(value: &T) -> String {
    // Serializing strings, numbers and a UUID into memory cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// `"<updated_at as RFC 3339>"}`.
fn json_updated(updated_at: i64) -> String {
    let mut out = json(&rfc3339(updated_at));
    out.push('}');
    out
}

impl Entry {
    pub(super) fn new(row: IndexRow) -> Self {
        let p = &row.product;
        let mut head = json(&Head {
            id: p.id,
            name: &p.name,
            description: &p.description,
            price_cents: p.price_cents,
            currency: &p.currency,
        });
        head.pop();
        head.push_str(",\"stock\":");
        let created = format!(
            ",\"created_at\":{},\"updated_at\":",
            json(&rfc3339(p.created_at))
        );
        let updated = json_updated(p.updated_at);
        Self {
            json_head: head.into_boxed_str(),
            json_created: created.into_boxed_str(),
            json_updated: updated.into_boxed_str(),
            product: row.product,
            text: row.search_text.into_boxed_str(),
        }
    }

    /// The product (its `stock` and `updated_at` as of the index's stock version).
    pub fn product(&self) -> &Product {
        &self.product
    }

    /// This entry with `stock` and `updated_at` in place of its own.
    pub(super) fn restocked(&self, stock: i64, updated_at: i64) -> Self {
        let mut entry = self.clone();
        entry.product.stock = stock;
        if updated_at != entry.product.updated_at {
            entry.product.updated_at = updated_at;
            entry.json_updated = json_updated(updated_at).into_boxed_str();
        }
        entry
    }

    /// Append the product's JSON body to `out`: the very bytes serde_json writes for
    /// `http::products::ProductBody`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.json_head.as_bytes());
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{}", self.product.stock);
        out.extend_from_slice(self.json_created.as_bytes());
        out.extend_from_slice(self.json_updated.as_bytes());
    }

    pub(super) fn json_bytes(&self) -> usize {
        self.json_head.len() + self.json_created.len() + self.json_updated.len()
    }

    pub(super) fn key(&self) -> (i64, Uuid) {
        (self.product.created_at, self.product.id)
    }

    pub(super) fn id(&self) -> Uuid {
        self.product.id
    }

    pub(super) fn price(&self) -> i64 {
        self.product.price_cents
    }

    pub(super) fn into_row(self) -> IndexRow {
        IndexRow {
            product: self.product,
            search_text: self.text.into_string(),
        }
    }
}
