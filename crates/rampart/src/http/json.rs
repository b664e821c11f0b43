//! `ValidJson<T>`: the JSON body extractor of every handler.
//!
//! It replaces axum's `Json`, whose rejections echo serde's messages (type names, the
//! offending input). Here a body that does not fit `T` is a 400 `validation_failed` naming
//! the field by its path (`items[0].quantity`) with a fixed message; unknown fields are
//! refused because every request type is `#[serde(deny_unknown_fields)]`. Size, depth,
//! dangerous keys and the media type were already checked by the request-limits layer; the
//! media type is checked again here so the extractor is safe on its own.
//!
//! Every request body of the API is an object: a top-level array or scalar is refused
//! before serde sees it, because serde's derived structs also accept the sequence form
//! (`["Evil","<b>x</b>"]` read positionally into `name` and `bio`), which API.md §3 counts
//! as a wrong type. The same holds at every depth (an order line `["<uuid>", 2]` inside
//! `items`, an address as an array): the body is read through [`strict::Strict`], under
//! which a struct is read only from a JSON object, so a nested array where an object is
//! expected is a 400 `validation_failed` naming its field.

mod strict;

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
};
use http::header;
use serde::de::DeserializeOwned;

use crate::{domain::FieldError, error::AppError};

/// A JSON body deserialised into `T`.
#[derive(Debug)]
pub struct ValidJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ValidJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(AppError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| AppError::field("body", "could not be read"))?;
        parse(&bytes).map(ValidJson)
    }
}

/// Deserialise the JSON object in `bytes` into `T`, turning serde's error into a field
/// error without its text.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(AppError::field("body", "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(strict::Strict(&mut de));
    let value = result.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        AppError::Validation(vec![describe(&path, &inner)])
    })?;
    de.end()
        .map_err(|_| AppError::field("body", "must hold exactly one JSON value"))?;
    Ok(value)
}

/// A fixed message for each kind of serde failure; a missing field's name is taken from
/// serde's message.
fn describe(path: &str, error: &serde_json::Error) -> FieldError {
    let text = error.to_string();
    let join = |name: &str| {
        if path.is_empty() || path == "." {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    let quoted = |prefix: &str| {
        text.strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .filter(|name| name.len() <= 64)
            .map(str::to_owned)
    };
    // serde_path_to_error's path already ends with an unknown key, but stops at the
    // enclosing object for a missing one.
    if quoted("unknown field `").is_some() {
        return FieldError::new(path, "unknown field");
    }
    if let Some(name) = quoted("missing field `") {
        return FieldError::new(join(&name), "is required");
    }
    let field = if path.is_empty() || path == "." {
        "body".to_owned()
    } else {
        path.to_owned()
    };
    let message = match error.classify() {
        serde_json::error::Category::Data => "has the wrong type or an invalid value",
        _ => "is not valid JSON",
    };
    FieldError::new(field, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Order {
        items: Vec<Item>,
        note: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        product_id: String,
        quantity: u32,
    }

    fn field_error(body: &str) -> FieldError {
        match parse::<Order>(body.as_bytes()) {
            Err(AppError::Validation(mut errors)) => errors.remove(0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_mass_assigned_field_is_named_by_its_path() {
        let e = field_error(r#"{"items":[{"product_id":"p","quantity":1,"price_cents":1}]}"#);
        assert_eq!(e.field, "items[0].price_cents");
        assert_eq!(e.message, "unknown field");
        let e = field_error(r#"{"items":[],"role":"admin"}"#);
        assert_eq!(e.field, "role");
    }

    #[test]
    fn wrong_types_and_missing_fields_are_named_without_serde_text() {
        let e = field_error(r#"{"items":[{"product_id":"p","quantity":"many"}]}"#);
        assert_eq!(e.field, "items[0].quantity");
        assert!(!e.message.contains("string"));
        let e = field_error(r#"{"items":[{"product_id":"p"}]}"#);
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("items[0].quantity", "is required")
        );
    }

    #[test]
    fn an_array_or_a_scalar_where_an_object_is_expected_is_refused() {
        // serde's derived structs would read the array positionally.
        for body in [
            r#"[[{"product_id":"p","quantity":1}],null]"#,
            r#"  ["x"]"#,
            "42",
            r#""items""#,
            "null",
            "",
        ] {
            let e = field_error(body);
            assert_eq!(
                (e.field.as_str(), e.message.as_str()),
                ("body", "must be a JSON object"),
                "{body}"
            );
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nested {
        address: Option<Address>,
        tags: Vec<String>,
        pair: (u8, u8),
        kind: Kind,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Address {
        city: String,
        zip: Zip,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Zip(String);

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Kind {
        Plain,
        Boxed { width: u32 },
    }

    fn nested_error(body: &str) -> FieldError {
        match parse::<Nested>(body.as_bytes()) {
            Err(AppError::Validation(mut errors)) => errors.remove(0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_nested_array_where_an_object_is_expected_is_refused_at_its_path() {
        // An order line in the sequence form, inside `items`.
        let e = field_error(r#"{"items":[["p",2]]}"#);
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("items[0]", "has the wrong type or an invalid value")
        );
        let e = field_error(r#"{"items":[{"product_id":"p","quantity":1},["p",2]]}"#);
        assert_eq!(e.field, "items[1]");
        // Behind an Option, and inside a struct variant.
        let e =
            nested_error(r#"{"address":["Paris","75001"],"tags":[],"pair":[1,2],"kind":"plain"}"#);
        assert_eq!(e.field, "address");
        let e = nested_error(r#"{"address":null,"tags":[],"pair":[1,2],"kind":{"boxed":[3]}}"#);
        assert_eq!(e.field, "kind.boxed");
    }

    #[test]
    fn sequences_newtypes_tuples_and_enums_still_parse_under_the_object_rule() {
        let n: Nested = parse(
            br#"{"address":{"city":"Paris","zip":"75001"},"tags":["a"],"pair":[1,2],"kind":{"boxed":{"width":3}}}"#,
        )
        .unwrap();
        assert_eq!(n.pair, (1, 2));
        assert!(matches!(n.kind, Kind::Boxed { width: 3 }));
        let n: Nested =
            parse(br#"{"address":null,"tags":[],"pair":[0,0],"kind":"plain"}"#).unwrap();
        assert!(n.address.is_none());
    }

    #[test]
    fn a_well_formed_body_parses() {
        let order: Order =
            parse(br#"{"items":[{"product_id":"p","quantity":2}],"note":null}"#).unwrap();
        assert_eq!(order.items[0].quantity, 2);
    }
}
