//! Page numbers and page sizes of every list.

use super::FieldError;

/// A page number, 1 or more (default 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page(u32);

/// A page size, 1 to 100 (default 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Page {
    /// Parse a `page` parameter.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        raw.parse::<u32>()
            .ok()
            .filter(|p| *p >= 1)
            .map(Self)
            .ok_or_else(|| FieldError::new("page", "must be a whole number of 1 or more"))
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Page {
    fn default() -> Self {
        Self(1)
    }
}

impl Limit {
    /// Largest page size.
    pub const MAX: u32 = 100;

    /// Parse a `limit` parameter.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        raw.parse::<u32>()
            .ok()
            .filter(|l| (1..=Self::MAX).contains(l))
            .map(Self)
            .ok_or_else(|| FieldError::new("limit", "must be a whole number from 1 to 100"))
    }

    /// The size.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self(20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_of_zero_is_rejected() {
        assert!(Page::parse("0").is_err());
        assert!(Page::parse("-1").is_err());
        assert!(Page::parse("1.5").is_err());
        assert_eq!(Page::parse("3").unwrap().get(), 3);
    }

    #[test]
    fn a_limit_outside_1_to_100_is_rejected() {
        assert!(Limit::parse("0").is_err());
        assert!(Limit::parse("101").is_err());
        assert_eq!(Limit::parse("100").unwrap().get(), 100);
    }
}
