//! Orders: the client's order parsed into types ([`PlaceOrder::parse`] lists every failing
//! field at once, with paths like `items[3].quantity`), pricing by the server from the
//! catalog ([`price`]), the order as stored, and the `Idempotency-Key` header.
//!
//! ```
//! use rampart::domain::order::Quantity;
//! assert!(Quantity::parse(0, "items[0].quantity").is_err());
//! assert_eq!(Quantity::parse(3, "items[0].quantity").unwrap().get(), 3);
//! ```
//!
//! # Security
//! A client never names a price, a total, a status or an owner: those fields do not exist
//! in the input types, and the HTTP body refuses unknown fields.

use std::collections::HashMap;

use uuid::Uuid;

use super::{FieldError, codes::CountryCode};

/// Most lines in one order.
pub const MAX_ITEMS: usize = 50;

/// A quantity of one line: 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i64);

impl Quantity {
    /// Parse `raw` for the field `field`.
    pub fn parse(raw: i64, field: &str) -> Result<Self, FieldError> {
        if (1..=100).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(FieldError::new(
                field,
                "must be a whole number from 1 to 100",
            ))
        }
    }

    /// The quantity.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A postal code: 3 to 10 ASCII letters and digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostalCode(String);

impl PostalCode {
    /// Parse `raw` for the field `field`.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        if (3..=10).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(
                field,
                "must be 3 to 10 letters and digits (A-Z, a-z, 0-9)",
            ))
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A coupon code: 1 to 20 ASCII letters and digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponCode(String);

impl CouponCode {
    /// Parse `raw` for the field `field`.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        if (1..=20).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(
                field,
                "must be 1 to 20 letters and digits (A-Z, a-z, 0-9)",
            ))
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Trimmed text of 1 to `max` characters without control characters.
fn line_of_text(raw: &str, max: usize, field: &str) -> Result<String, FieldError> {
    let text = raw.trim();
    if !(1..=max).contains(&text.chars().count()) {
        return Err(FieldError::new(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(text.to_owned())
}

/// A shipping address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingAddress {
    /// 1–200 characters.
    pub street: String,
    /// 1–100 characters.
    pub city: String,
    /// The postal code.
    pub postal_code: PostalCode,
    /// The country.
    pub country: CountryCode,
}

/// One line as the client asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderLine {
    /// The product.
    pub product_id: Uuid,
    /// How many.
    pub quantity: Quantity,
}

/// The order input before checks: plain values, as the HTTP body carried them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFields {
    /// Lines: product id text and quantity.
    pub items: Vec<(String, i64)>,
    /// Street.
    pub street: String,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// Country code.
    pub country: String,
    /// Optional coupon.
    pub coupon_code: Option<String>,
}

/// An order to place, every field checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceOrder {
    /// 1–50 lines, in the client's order.
    pub lines: Vec<OrderLine>,
    /// Where to ship.
    pub shipping_address: ShippingAddress,
    /// A coupon, recorded with the order.
    pub coupon_code: Option<CouponCode>,
}

impl PlaceOrder {
    /// Check every field of `fields`, listing every failure (`items`, `items[3].quantity`,
    /// `shipping_address.country` …).
    pub fn parse(fields: OrderFields) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !(1..=MAX_ITEMS).contains(&fields.items.len()) {
            errors.push(FieldError::new("items", "must hold 1 to 50 items"));
        }
        let mut lines = Vec::with_capacity(fields.items.len());
        for (i, (product_id, quantity)) in fields.items.iter().enumerate() {
            let id = Uuid::try_parse(product_id)
                .map_err(|_| FieldError::new(format!("items[{i}].product_id"), "must be a UUID"));
            let quantity = Quantity::parse(*quantity, &format!("items[{i}].quantity"));
            match (id, quantity) {
                (Ok(product_id), Ok(quantity)) => lines.push(OrderLine {
                    product_id,
                    quantity,
                }),
                (id, quantity) => errors.extend(id.err().into_iter().chain(quantity.err())),
            }
        }
        let street = line_of_text(&fields.street, 200, "shipping_address.street");
        let city = line_of_text(&fields.city, 100, "shipping_address.city");
        let postal_code = PostalCode::parse(&fields.postal_code, "shipping_address.postal_code");
        let country = CountryCode::parse(&fields.country, "shipping_address.country");
        let coupon_code = fields
            .coupon_code
            .as_deref()
            .map(|c| CouponCode::parse(c, "coupon_code"))
            .transpose();
        match (street, city, postal_code, country, coupon_code) {
            (Ok(street), Ok(city), Ok(postal_code), Ok(country), Ok(coupon_code))
                if errors.is_empty() =>
            {
                Ok(Self {
                    lines,
                    shipping_address: ShippingAddress {
                        street,
                        city,
                        postal_code,
                        country,
                    },
                    coupon_code,
                })
            }
            (street, city, postal_code, country, coupon_code) => {
                errors.extend(
                    [
                        street.err(),
                        city.err(),
                        postal_code.err(),
                        country.err(),
                        coupon_code.err(),
                    ]
                    .into_iter()
                    .flatten(),
                );
                Err(errors)
            }
        }
    }

    /// The stock each product needs, one entry per product, sorted by id (so concurrent
    /// transactions lock rows in the same order and cannot deadlock).
    pub fn stock_needed(&self) -> Vec<(Uuid, i64)> {
        let mut needed: Vec<(Uuid, i64)> = Vec::new();
        for line in &self.lines {
            match needed.iter_mut().find(|(id, _)| *id == line.product_id) {
                Some((_, qty)) => *qty += line.quantity.get(),
                None => needed.push((line.product_id, line.quantity.get())),
            }
        }
        needed.sort_by_key(|(id, _)| *id);
        needed
    }
}

/// What pricing needs to know of a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceListEntry {
    /// Its name, copied into the order.
    pub name: String,
    /// Unit price in minor units.
    pub price_cents: i64,
    /// ISO 4217.
    pub currency: String,
}

/// One priced line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderItem {
    /// The product.
    pub product_id: Uuid,
    /// Its name when the order was placed.
    pub name: String,
    /// How many.
    pub quantity: i64,
    /// Unit price when the order was placed.
    pub unit_price_cents: i64,
    /// `quantity × unit_price_cents`.
    pub line_total_cents: i64,
}

/// Why an order cannot be priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PricingError {
    /// These lines (indices) name no product.
    UnknownProducts(Vec<usize>),
    /// The products are priced in more than one currency.
    MixedCurrencies,
    /// The total does not fit the money type.
    TooLarge,
}

/// The lines priced from `catalog`, their total and the one currency.
pub fn price(
    order: &PlaceOrder,
    catalog: &HashMap<Uuid, PriceListEntry>,
) -> Result<(Vec<OrderItem>, i64, String), PricingError> {
    let unknown: Vec<usize> = order
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !catalog.contains_key(&l.product_id))
        .map(|(i, _)| i)
        .collect();
    if !unknown.is_empty() {
        return Err(PricingError::UnknownProducts(unknown));
    }
    let mut items = Vec::with_capacity(order.lines.len());
    let mut total: i64 = 0;
    let mut currency: Option<&str> = None;
    for line in &order.lines {
        let Some(entry) = catalog.get(&line.product_id) else {
            return Err(PricingError::UnknownProducts(Vec::new()));
        };
        match currency {
            Some(c) if c != entry.currency => return Err(PricingError::MixedCurrencies),
            _ => currency = Some(&entry.currency),
        }
        let line_total = entry
            .price_cents
            .checked_mul(line.quantity.get())
            .ok_or(PricingError::TooLarge)?;
        total = total
            .checked_add(line_total)
            .ok_or(PricingError::TooLarge)?;
        items.push(OrderItem {
            product_id: line.product_id,
            name: entry.name.clone(),
            quantity: line.quantity.get(),
            unit_price_cents: entry.price_cents,
            line_total_cents: line_total,
        });
    }
    Ok((items, total, currency.unwrap_or_default().to_owned()))
}

/// The life of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Placed; stock is reserved.
    Placed,
    /// Cancelled; its stock was given back once.
    Cancelled,
}

impl OrderStatus {
    /// The stored and published name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "placed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parse a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "placed" => Some(Self::Placed),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// A stored shipping address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAddress {
    /// Street.
    pub street: String,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Its id.
    pub id: Uuid,
    /// Its owner.
    pub user_id: Uuid,
    /// Placed or cancelled.
    pub status: OrderStatus,
    /// The priced lines, in the client's order.
    pub items: Vec<OrderItem>,
    /// Sum of the line totals.
    pub total_cents: i64,
    /// ISO 4217.
    pub currency: String,
    /// Where to ship.
    pub shipping_address: StoredAddress,
    /// The coupon given, if any.
    pub coupon_code: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// An `Idempotency-Key` header value: 1 to 255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parse the raw header bytes.
    pub fn parse(raw: &[u8]) -> Result<Self, FieldError> {
        let printable = raw.iter().all(|b| (0x20..=0x7e).contains(b));
        match std::str::from_utf8(raw) {
            Ok(text) if printable && (1..=255).contains(&raw.len()) => Ok(Self(text.to_owned())),
            _ => Err(FieldError::new(
                "Idempotency-Key",
                "must be 1 to 255 printable ASCII characters",
            )),
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fields(items: Vec<(String, i64)>) -> OrderFields {
        OrderFields {
            items,
            street: "1 Main St".into(),
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
            coupon_code: None,
        }
    }

    fn fields_of(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_quantity_of_zero_or_over_100_is_rejected() {
        assert!(Quantity::parse(0, "q").is_err());
        assert!(Quantity::parse(101, "q").is_err());
        assert!(Quantity::parse(-1, "q").is_err());
        assert_eq!(Quantity::parse(100, "q").unwrap().get(), 100);
    }

    #[test]
    fn postal_and_coupon_codes_are_short_alphanumerics() {
        assert!(PostalCode::parse("10115", "p").is_ok());
        assert!(PostalCode::parse("SW1A1AA", "p").is_ok());
        for bad in ["12", "12345678901", "SW1A 1AA", "1011'", "١٢٣"] {
            assert!(PostalCode::parse(bad, "p").is_err(), "{bad}");
        }
        assert!(CouponCode::parse("SAVE10", "c").is_ok());
        assert!(CouponCode::parse("", "c").is_err());
        assert!(CouponCode::parse(&"A".repeat(21), "c").is_err());
        assert!(CouponCode::parse("SAVE-10", "c").is_err());
    }

    #[test]
    fn too_many_items_a_zero_quantity_and_a_bad_country_are_all_reported() {
        let id = Uuid::new_v4().to_string();
        let mut items: Vec<(String, i64)> = (0..51).map(|_| (id.clone(), 1)).collect();
        items[3].1 = 0;
        let mut f = fields(items);
        f.country = "XX".into();
        let errors = PlaceOrder::parse(f).unwrap_err();
        assert_eq!(
            fields_of(&errors),
            ["items", "items[3].quantity", "shipping_address.country"]
        );
    }

    #[test]
    fn every_address_field_and_a_malformed_product_id_are_reported() {
        let errors = PlaceOrder::parse(OrderFields {
            items: vec![("not-a-uuid".into(), 1)],
            street: String::new(),
            city: "c\u{7}".into(),
            postal_code: "!".into(),
            country: "de".into(),
            coupon_code: Some("no way".into()),
        })
        .unwrap_err();
        assert_eq!(
            fields_of(&errors),
            [
                "items[0].product_id",
                "shipping_address.street",
                "shipping_address.city",
                "shipping_address.postal_code",
                "coupon_code"
            ]
        );
        assert!(PlaceOrder::parse(fields(Vec::new())).is_err());
    }

    #[test]
    fn stock_needed_merges_lines_of_one_product_and_sorts_by_id() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let order = PlaceOrder::parse(fields(vec![
            (a.to_string(), 2),
            (b.to_string(), 1),
            (a.to_string(), 3),
        ]))
        .unwrap();
        let mut expected = vec![(a, 5), (b, 1)];
        expected.sort_by_key(|(id, _)| *id);
        assert_eq!(order.stock_needed(), expected);
    }

    #[test]
    fn pricing_uses_the_catalog_and_refuses_unknown_products_and_mixed_currencies() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let entry = |price: i64, currency: &str| PriceListEntry {
            name: "p".into(),
            price_cents: price,
            currency: currency.into(),
        };
        let order =
            PlaceOrder::parse(fields(vec![(a.to_string(), 2), (b.to_string(), 3)])).unwrap();
        let catalog = HashMap::from([(a, entry(250, "EUR")), (b, entry(100, "EUR"))]);
        let (items, total, currency) = price(&order, &catalog).unwrap();
        assert_eq!(items[0].line_total_cents, 500);
        assert_eq!((total, currency.as_str()), (800, "EUR"));
        let mixed = HashMap::from([(a, entry(250, "EUR")), (b, entry(100, "USD"))]);
        assert_eq!(price(&order, &mixed), Err(PricingError::MixedCurrencies));
        let partial = HashMap::from([(a, entry(250, "EUR"))]);
        assert_eq!(
            price(&order, &partial),
            Err(PricingError::UnknownProducts(vec![1]))
        );
    }

    #[test]
    fn idempotency_keys_are_1_to_255_printable_ascii() {
        assert!(IdempotencyKey::parse(b"order-2026-11-22 #1").is_ok());
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
        assert!(IdempotencyKey::parse(&[b'k'; 256]).is_err());
        assert!(IdempotencyKey::parse(b"").is_err());
        assert!(IdempotencyKey::parse(b"a\tb").is_err());
        assert!(IdempotencyKey::parse("é".as_bytes()).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(id in ".{0,40}", q in any::<i64>(), text in ".{0,30}") {
            let _ = PlaceOrder::parse(OrderFields {
                items: vec![(id, q)],
                street: text.clone(),
                city: text.clone(),
                postal_code: text.clone(),
                country: text.clone(),
                coupon_code: Some(text.clone()),
            });
            let _ = IdempotencyKey::parse(text.as_bytes());
        }
    }
}
