//! The catalog's types.

use uuid::Uuid;

use super::{
    FieldError,
    paging::{Limit, Page},
};

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

/// A product to create (validated by the admin API, which comes with the commerce issue).
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
    /// Page number.
    pub page: Page,
    /// Page size.
    pub limit: Limit,
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
        let mut errors = Vec::new();
        for (key, value) in pairs {
            let result = match key {
                "q" => SearchText::parse(value).map(|q| query.q = Some(q)),
                "page" => Page::parse(value).map(|p| query.page = p),
                "limit" => Limit::parse(value).map(|l| query.limit = l),
                "min_price" => price(key, value).map(|p| query.min_price = Some(p)),
                "max_price" => price(key, value).map(|p| query.max_price = Some(p)),
                other => Err(FieldError::new(
                    other.chars().take(64).collect::<String>(),
                    "unknown parameter",
                )),
            };
            if let Err(e) = result {
                errors.push(e);
            }
        }
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
    fn min_above_max_is_rejected() {
        assert!(ProductQuery::parse([("min_price", "10"), ("max_price", "5")]).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(k in ".{0,20}", v in ".{0,200}") {
            let _ = ProductQuery::parse([(k.as_str(), v.as_str())]);
        }
    }
}
