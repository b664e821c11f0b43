//! Page numbers and page sizes of every list (API.md §4: `page` 1–100 000, `limit` 1–100),
//! parsed in one place, and one page of results.
//!
//! ```
//! use rampart::domain::paging::PageRequest;
//! let mut paging = PageRequest::default();
//! assert!(paging.param("page", "3").is_some_and(|r| r.is_ok()));
//! assert!(paging.param("limit", "101").is_some_and(|r| r.is_err()));
//! assert!(paging.param("q", "tea").is_none()); // not a paging parameter
//! assert_eq!((paging.page.get(), paging.limit.get(), paging.offset()), (3, 20, 40));
//! ```

use super::{FieldError, parse_params};

/// A page number, 1 to 100 000 (default 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page(u32);

/// A page size, 1 to 100 (default 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Page {
    /// Highest page number: deeper pages would only make the database skip rows.
    pub const MAX: u32 = 100_000;

    /// Parse a `page` parameter.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        raw.parse::<u32>()
            .ok()
            .filter(|p| (1..=Self::MAX).contains(p))
            .map(Self)
            .ok_or_else(|| FieldError::new("page", "must be a whole number from 1 to 100000"))
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

/// Which page of a list a client asked for: the `page` and `limit` parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// The page number.
    pub page: Page,
    /// The page size.
    pub limit: Limit,
}

impl PageRequest {
    /// Apply the query parameter `key` if it is `page` or `limit`; `None` for any other
    /// name, so a list with filters handles its own and hands the rest here.
    pub fn param(&mut self, key: &str, value: &str) -> Option<Result<(), FieldError>> {
        match key {
            "page" => Some(Page::parse(value).map(|p| self.page = p)),
            "limit" => Some(Limit::parse(value).map(|l| self.limit = l)),
            _ => None,
        }
    }

    /// Parse the decoded query pairs of a list without filters: only `page` and `limit`
    /// are known; every failure (an unknown name included) is listed.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut paging = Self::default();
        parse_params(pairs, |key, value| paging.param(key, value))?;
        Ok(paging)
    }

    /// How many rows come before this page.
    pub fn offset(self) -> i64 {
        (i64::from(self.page.get()) - 1).saturating_mul(self.rows())
    }

    /// The page size as a row count.
    pub fn rows(self) -> i64 {
        i64::from(self.limit.get())
    }
}

/// One page of a list: its items, the request that chose them, and how many items the
/// whole list holds (a page past the end has no items and the true total).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageOf<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// The page and size asked for.
    pub request: PageRequest,
    /// The number of items over every page.
    pub total: i64,
}

impl<T> PageOf<T> {
    /// `(items, total)` as a store answers, for `request`.
    pub fn new(request: PageRequest, (items, total): (Vec<T>, i64)) -> Self {
        Self {
            items,
            request,
            total,
        }
    }

    /// The same page with every item converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> PageOf<U> {
        PageOf {
            items: self.items.into_iter().map(f).collect(),
            request: self.request,
            total: self.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_page_outside_1_to_100000_is_rejected() {
        assert!(Page::parse("0").is_err());
        assert!(Page::parse("-1").is_err());
        assert!(Page::parse("1.5").is_err());
        assert!(Page::parse("100001").is_err());
        assert!(Page::parse("4294967296").is_err());
        assert_eq!(Page::parse("3").unwrap().get(), 3);
        assert_eq!(Page::parse("100000").unwrap().get(), 100_000);
    }

    #[test]
    fn a_limit_outside_1_to_100_is_rejected() {
        assert!(Limit::parse("0").is_err());
        assert!(Limit::parse("101").is_err());
        assert!(Limit::parse("").is_err());
        assert_eq!(Limit::parse("100").unwrap().get(), 100);
    }

    #[test]
    fn a_list_without_filters_lists_every_bad_or_unknown_parameter() {
        let errors =
            PageRequest::parse([("page", "0"), ("limit", "500"), ("status", "x")]).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["page", "limit", "status"]);
        let paging = PageRequest::parse([("limit", "2"), ("page", "2")]).unwrap();
        assert_eq!((paging.offset(), paging.rows()), (2, 2));
        assert_eq!(PageRequest::parse([]).unwrap(), PageRequest::default());
    }

    #[test]
    fn the_deepest_page_does_not_overflow_the_offset() {
        let paging = PageRequest::parse([("page", "100000"), ("limit", "100")]).unwrap();
        assert_eq!(paging.offset(), 9_999_900);
    }

    #[test]
    fn a_page_maps_its_items_and_keeps_its_total() {
        let page = PageOf::new(PageRequest::default(), (vec![1, 2], 7)).map(|n| n * 10);
        assert_eq!((page.items, page.total), (vec![10, 20], 7));
    }

    proptest! {
        #[test]
        fn parse_never_panics(k in ".{0,10}", v in ".{0,30}") {
            let _ = PageRequest::parse([(k.as_str(), v.as_str())]);
        }
    }
}
