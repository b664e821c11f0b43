//! The catalog's types: products as stored, the admin's product input parsed field by
//! field (every failing field reported at once), and the search parameters.

use uuid::Uuid;

use super::{FieldError, codes::CurrencyCode, html, paging::PageRequest, parse_params};

/// A product as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Its id.
    pub id: Uuid,
    /// Name, at most 200 characters.
    pub name: String,
    /// Sanitized HTML, at most 5000 characters.
    pub description: String,
    /// Price in the currency's minor unit.
    pub price_cents: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Units in stock.
    pub stock: i64,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// A product to create, as [`NewProduct::parse`] checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    /// Name.
    pub name: String,
    /// Sanitized HTML.
    pub description: String,
    /// Price in minor units.
    pub price_cents: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Units in stock.
    pub stock: i64,
}

/// Highest price in minor units (10^12: a total of 50 lines of 100 cannot overflow `i64`).
pub const MAX_PRICE_CENTS: i64 = 1_000_000_000_000;
/// Largest stock of one product.
pub const MAX_STOCK: i64 = 1_000_000_000;
/// Longest description, in characters, before sanitizing.
pub const MAX_DESCRIPTION_CHARS: usize = 5000;

/// The product fields an admin sends, not yet checked. Every field is optional here so that
/// a missing one is reported together with every other failing field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductFields {
    /// 1–200 characters.
    pub name: Option<String>,
    /// HTML, at most 5000 characters, sanitized on parse.
    pub description: Option<String>,
    /// 0 to [`MAX_PRICE_CENTS`].
    pub price_cents: Option<i64>,
    /// ISO 4217.
    pub currency: Option<String>,
    /// 0 to [`MAX_STOCK`].
    pub stock: Option<i64>,
}

/// A partial change of a product; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductPatch {
    /// New name.
    pub name: Option<String>,
    /// New sanitized description.
    pub description: Option<String>,
    /// New price.
    pub price_cents: Option<i64>,
    /// New currency.
    pub currency: Option<String>,
    /// New stock level.
    pub stock: Option<i64>,
}

fn product_name(raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    if !(1..=200).contains(&name.chars().count()) {
        return Err(FieldError::new("name", "must be 1 to 200 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

fn description(raw: &str) -> Result<String, FieldError> {
    if raw.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(FieldError::new(
            "description",
            "must be at most 5000 characters",
        ));
    }
    Ok(html::sanitize(raw))
}

fn price_cents(raw: i64) -> Result<i64, FieldError> {
    if (0..=MAX_PRICE_CENTS).contains(&raw) {
        Ok(raw)
    } else {
        Err(FieldError::new(
            "price_cents",
            "must be a whole number of cents from 0 to 10^12",
        ))
    }
}

fn stock(raw: i64) -> Result<i64, FieldError> {
    if (0..=MAX_STOCK).contains(&raw) {
        Ok(raw)
    } else {
        Err(FieldError::new(
            "stock",
            "must be a whole number from 0 to 10^9",
        ))
    }
}

impl ProductPatch {
    /// Check every given field, listing every failure.
    pub fn parse(fields: ProductFields) -> Result<Self, Vec<FieldError>> {
        fn keep<T>(errors: &mut Vec<FieldError>, result: Result<T, FieldError>) -> Option<T> {
            result.map_err(|e| errors.push(e)).ok()
        }
        let mut errors = Vec::new();
        let e = &mut errors;
        let patch = Self {
            name: fields
                .name
                .as_deref()
                .and_then(|n| keep(e, product_name(n))),
            description: fields
                .description
                .as_deref()
                .and_then(|d| keep(e, description(d))),
            price_cents: fields.price_cents.and_then(|p| keep(e, price_cents(p))),
            currency: fields.currency.as_deref().and_then(|c| {
                keep(
                    e,
                    CurrencyCode::parse(c, "currency").map(|c| c.as_str().to_owned()),
                )
            }),
            stock: fields.stock.and_then(|s| keep(e, stock(s))),
        };
        if errors.is_empty() {
            Ok(patch)
        } else {
            Err(errors)
        }
    }
}

impl NewProduct {
    /// Check every field (all but `description` are required), listing every failure.
    pub fn parse(fields: ProductFields) -> Result<Self, Vec<FieldError>> {
        let mut missing = Vec::new();
        for (name, given) in [
            ("name", fields.name.is_some()),
            ("price_cents", fields.price_cents.is_some()),
            ("currency", fields.currency.is_some()),
            ("stock", fields.stock.is_some()),
        ] {
            if !given {
                missing.push(FieldError::new(name, "is required"));
            }
        }
        let patch = ProductPatch::parse(fields);
        match (patch, missing.is_empty()) {
            (
                Ok(ProductPatch {
                    name: Some(name),
                    description,
                    price_cents: Some(price_cents),
                    currency: Some(currency),
                    stock: Some(stock),
                }),
                true,
            ) => Ok(Self {
                name,
                description: description.unwrap_or_default(),
                price_cents,
                currency,
                stock,
            }),
            (Ok(_), _) => Err(missing),
            (Err(mut errors), _) => {
                errors.extend(missing);
                Err(errors)
            }
        }
    }
}

/// Search text: 1–100 characters, no control characters, matched literally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    /// Parse a `q` parameter.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let len = raw.chars().count();
        if !(1..=100).contains(&len) {
            return Err(FieldError::new("q", "must be 1 to 100 characters"));
        }
        if raw.chars().any(char::is_control) {
            return Err(FieldError::new("q", "must not contain control characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The parameters of `GET /products`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductQuery {
    /// Literal search text.
    pub q: Option<SearchText>,
    /// Page number and size.
    pub paging: PageRequest,
    /// Lowest price in minor units.
    pub min_price: Option<i64>,
    /// Highest price in minor units.
    pub max_price: Option<i64>,
}

fn price(field: &str, raw: &str) -> Result<i64, FieldError> {
    raw.parse::<i64>()
        .ok()
        .filter(|p| *p >= 0)
        .ok_or_else(|| FieldError::new(field, "must be a whole number of cents, 0 or more"))
}

impl ProductQuery {
    /// Parse decoded query pairs, collecting every failing field.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut query = Self::default();
        let mut errors = parse_params(pairs, |key, value| {
            Some(match key {
                "q" => SearchText::parse(value).map(|q| query.q = Some(q)),
                "min_price" => price(key, value).map(|p| query.min_price = Some(p)),
                "max_price" => price(key, value).map(|p| query.max_price = Some(p)),
                _ => return query.paging.param(key, value),
            })
        })
        .err()
        .unwrap_or_default();
        if let (Some(min), Some(max)) = (query.min_price, query.max_price)
            && min > max
        {
            errors.push(FieldError::new("min_price", "must not exceed max_price"));
        }
        if errors.is_empty() {
            Ok(query)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_failing_parameter_is_listed() {
        let errors = ProductQuery::parse([
            ("page", "0"),
            ("limit", "500"),
            ("min_price", "-1"),
            ("x", "1"),
        ])
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["page", "limit", "min_price", "x"]);
    }

    #[test]
    fn search_text_is_bounded_and_free_of_control_characters() {
        assert!(SearchText::parse("").is_err());
        assert!(SearchText::parse(&"a".repeat(101)).is_err());
        assert!(SearchText::parse("a\0b").is_err());
        assert!(SearchText::parse("' OR 1=1 --").is_ok());
        assert!(SearchText::parse(&"é".repeat(100)).is_ok());
    }

    #[test]
    fn every_failing_product_field_is_listed_at_once() {
        let errors = NewProduct::parse(ProductFields {
            name: Some(" ".into()),
            description: Some("x".repeat(5001)),
            price_cents: Some(-1),
            currency: Some("EURO".into()),
            stock: None,
        })
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["name", "description", "price_cents", "currency", "stock"]
        );
    }

    #[test]
    fn a_product_description_is_sanitized_on_parse() {
        let product = NewProduct::parse(ProductFields {
            name: Some("Tea".into()),
            description: Some("<b>x</b><script>alert(1)</script>".into()),
            price_cents: Some(0),
            currency: Some("eur".into()),
            stock: Some(0),
        })
        .unwrap();
        assert_eq!(product.description, "<b>x</b>");
        assert_eq!(product.currency, "EUR");
    }

    #[test]
    fn a_patch_checks_only_the_given_fields() {
        let patch = ProductPatch::parse(ProductFields {
            stock: Some(3),
            ..ProductFields::default()
        })
        .unwrap();
        assert_eq!(patch.stock, Some(3));
        assert!(patch.name.is_none());
        assert!(
            ProductPatch::parse(ProductFields {
                stock: Some(MAX_STOCK + 1),
                ..ProductFields::default()
            })
            .is_err()
        );
    }

    #[test]
    fn min_above_max_is_rejected() {
        assert!(ProductQuery::parse([("min_price", "10"), ("max_price", "5")]).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(k in ".{0,20}", v in ".{0,200}") {
            let _ = ProductQuery::parse([(k.as_str(), v.as_str())]);
        }

        #[test]
        fn product_parse_never_panics(text in ".{0,300}", n in any::<i64>()) {
            let _ = NewProduct::parse(ProductFields {
                name: Some(text.clone()),
                description: Some(text.clone()),
                price_cents: Some(n),
                currency: Some(text.clone()),
                stock: Some(n),
            });
        }
    }
}
