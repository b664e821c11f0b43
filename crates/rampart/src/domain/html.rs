//! User-supplied HTML, sanitized to a small allowlist with ammonia: `p br b i em strong ul
//! ol li a[href]`; links keep only http, https and mailto URLs and get
//! `rel="noopener noreferrer nofollow"`.
//!
//! # Security
//! Sanitizing is the last step before storage; the stored text is what is served. Scripts,
//! event handlers, `style`, `javascript:` and `data:` URLs never survive.

use std::{collections::HashSet, sync::LazyLock};

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::empty();
    builder
        .tags(HashSet::from([
            "p", "br", "b", "i", "em", "strong", "ul", "ol", "li", "a",
        ]))
        .tag_attributes(std::collections::HashMap::from([(
            "a",
            HashSet::from(["href"]),
        )]))
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .strip_comments(true);
    builder
});

/// Sanitize `raw` to the allowlist.
pub fn sanitize(raw: &str) -> String {
    SANITIZER.clean(raw).to_string()
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn allowed_markup_is_kept_and_links_get_rel() {
        let out = sanitize(r#"<p><b>bold</b> <a href="https://example.com/x">link</a></p>"#);
        assert!(out.contains("<b>bold</b>"));
        assert!(out.contains(r#"href="https://example.com/x""#));
        assert!(out.contains(r#"rel="noopener noreferrer nofollow""#));
    }

    #[test]
    fn scripts_handlers_and_javascript_urls_are_removed() {
        let out = sanitize(
            r#"<script>alert(1)</script><img src=x onerror=alert(1)><a href="javascript:alert(1)">x</a><p onclick="x()" style="color:red">t</p>"#,
        );
        for bad in [
            "<script",
            "onerror",
            "javascript:",
            "onclick",
            "style",
            "<img",
        ] {
            assert!(!out.contains(bad), "{bad} survived in {out}");
        }
    }
}
