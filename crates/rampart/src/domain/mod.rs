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

/// Parse decoded query pairs with `field`, which applies a parameter it knows and answers
/// `None` for one it does not. Every failure is collected, an unknown name included (a
/// misspelt filter must not silently match everything); the name is bounded, never the
/// value echoed.
pub fn parse_params<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    mut field: impl FnMut(&str, &str) -> Option<Result<(), FieldError>>,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    for (key, value) in pairs {
        let result = field(key, value).unwrap_or_else(|| {
            Err(FieldError::new(
                key.chars().take(64).collect::<String>(),
                "unknown parameter",
            ))
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

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
