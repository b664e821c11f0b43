//! ISO code lists: countries (ISO 3166-1 alpha-2) and currencies (ISO 4217).
//!
//! Both are the officially assigned codes, shipped here rather than matched by shape, so
//! `XX` or `ABC` are refused. Input is accepted in any case and stored upper-case.
//!
//! ```
//! use rampart::domain::codes::CountryCode;
//! assert_eq!(CountryCode::parse("de", "country").unwrap().as_str(), "DE");
//! assert!(CountryCode::parse("XX", "country").is_err());
//! ```

use super::FieldError;

/// Every assigned ISO 3166-1 alpha-2 code (249), sorted.
pub const COUNTRIES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// The ISO 4217 codes of currencies in circulation (late 2026: BGN, HRK, CUC, SLL, ZWL and
/// ANG are withdrawn), funds codes included; precious metals, bond units, SDR and the test
/// codes (`XAU`, `XBA`…, `XDR`, `XTS`, `XXX` …) are not money a shop charges in.
pub const CURRENCIES: [&str; 164] = [
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BHD",
    "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF",
    "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE", "CZK", "DJF",
    "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP",
    "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR",
    "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT",
    "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP",
    "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR",
    "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB",
    "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN",
    "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH",
    "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF",
    "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

fn lookup(list: &'static [&'static str], raw: &str) -> Option<&'static str> {
    let upper = raw.to_ascii_uppercase();
    list.binary_search(&upper.as_str()).ok().map(|i| list[i])
}

/// An assigned ISO 3166-1 alpha-2 country code, upper-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountryCode(&'static str);

impl CountryCode {
    /// Parse `raw` for the field `field`.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        lookup(&COUNTRIES, raw)
            .map(Self)
            .ok_or_else(|| FieldError::new(field, "must be an ISO 3166-1 alpha-2 country code"))
    }

    /// The code.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// An ISO 4217 currency code in circulation, upper-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrencyCode(&'static str);

impl CurrencyCode {
    /// Parse `raw` for the field `field`.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        lookup(&CURRENCIES, raw)
            .map(Self)
            .ok_or_else(|| FieldError::new(field, "must be an ISO 4217 currency code"))
    }

    /// The code.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_lists_are_sorted_and_free_of_duplicates() {
        assert!(COUNTRIES.windows(2).all(|w| w[0] < w[1]));
        assert!(CURRENCIES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn assigned_countries_parse_in_any_case_and_unassigned_ones_do_not() {
        assert_eq!(CountryCode::parse("de", "c").unwrap().as_str(), "DE");
        assert_eq!(CountryCode::parse("ZW", "c").unwrap().as_str(), "ZW");
        for bad in ["XX", "ZZ", "UK", "D", "DEU", "", "d\u{0}", "É"] {
            assert!(CountryCode::parse(bad, "c").is_err(), "{bad}");
        }
    }

    #[test]
    fn circulating_currencies_parse_and_withdrawn_or_test_codes_do_not() {
        assert_eq!(CurrencyCode::parse("eur", "c").unwrap().as_str(), "EUR");
        assert!(CurrencyCode::parse("JPY", "c").is_ok());
        for bad in ["XXX", "XTS", "XAU", "HRK", "EU", "EURO", ""] {
            assert!(CurrencyCode::parse(bad, "c").is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(raw in ".{0,8}") {
            let _ = CountryCode::parse(&raw, "c");
            let _ = CurrencyCode::parse(&raw, "c");
        }
    }
}
