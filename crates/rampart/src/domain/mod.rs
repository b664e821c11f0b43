//! Parsed input types: untrusted strings become these at the edge, and handlers see only
//! them. No I/O here. Field errors reuse [`rampart_layers::problem::FieldError`], a plain
//! `(field, message)` pair; messages are fixed text and never echo the input.

pub mod avatar;
pub mod codes;
pub mod html;
pub mod order;
pub mod paging;
pub mod password;
pub mod product;
pub mod user;

pub use rampart_layers::problem::FieldError;

/// Format Unix milliseconds as RFC 3339 UTC (`2026-11-22T10:00:00.123Z`).
pub fn rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            super::rfc3339(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
    }
}
