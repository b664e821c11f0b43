//! Recognises input that looks like an attack — SQL injection, NoSQL operators, script
//! injection, path traversal — so it can be logged as a security event. Nothing is blocked:
//! parameterised queries, the HTML sanitizer and typed parsing already make these inputs
//! harmless; the log tells operators someone is probing.
//!
//! ```
//! use rampart_layers::suspicious::{Category, SecretFields, classify, scan_json};
//! assert_eq!(classify("' OR 1=1 --"), Some(Category::Sql));
//! assert_eq!(classify("../../etc/passwd"), Some(Category::PathTraversal));
//! assert_eq!(classify("Green tea"), None);
//! let secrets = SecretFields::new(["password", "pin"]);
//! assert!(scan_json(br#"{"pin":"' OR 1=1 --"}"#, &secrets).is_empty());
//! ```
//!
//! # Security
//! Findings carry the field name and a short, escaped excerpt (at most 64 characters), never
//! the whole value: a password that happens to contain `--` is not copied into the log in
//! full, and the excerpt cannot forge log lines. Fields whose values are secrets are skipped
//! entirely: the application names them ([`SecretFields`]); the default covers the usual
//! words (`password`, `secret`, `token`).

use std::{fmt::Write as _, sync::OnceLock};

use aho_corasick::AhoCorasick;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The kind of attack an input resembles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// SQL syntax: tautologies, `UNION SELECT`, stacked statements, comments.
    Sql,
    /// MongoDB-style operators (`$ne`, `$where`, …).
    NoSql,
    /// Markup or URLs that run script.
    Script,
    /// `../` and friends, or well-known system files.
    PathTraversal,
}

impl Category {
    /// A stable name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sql => "sql",
            Self::NoSql => "nosql",
            Self::Script => "script",
            Self::PathTraversal => "path_traversal",
        }
    }
}

/// One suspicious input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Where: `query.q`, `path`, `body.items[0].name`.
    pub field: String,
    /// What it resembles.
    pub category: Category,
    /// At most 64 characters of the value, escaped.
    pub excerpt: String,
}

/// Findings of one request, put in the response extensions by the request-limits layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuspiciousInput(pub Vec<Finding>);

const SQL: &[&str] = &[
    "' or ",
    "\" or ",
    "' and ",
    "or 1=1",
    "or '1'='1",
    "union select",
    "union all select",
    "; drop ",
    ";drop ",
    "; delete ",
    "; insert ",
    "; update ",
    "' --",
    "'--",
    "'#",
    "/*",
    "sleep(",
    "benchmark(",
    "pg_sleep(",
    "waitfor delay",
    "xp_cmdshell",
    "information_schema",
];
const SCRIPT: &[&str] = &[
    "<script",
    "javascript:",
    "vbscript:",
    "onerror=",
    "onload=",
    "onclick=",
    "onmouseover=",
    "<iframe",
    "<svg",
    "<img",
    "<object",
    "<embed",
    "document.cookie",
    "data:text/html",
];
const TRAVERSAL: &[&str] = &[
    "../",
    "..\\",
    "%2e%2e",
    "..%2f",
    "%252e",
    "/etc/passwd",
    "c:\\windows",
    "\0",
];
const NOSQL: &[&str] = &[
    "$ne", "$gt", "$lt", "$where", "$regex", "$expr", "$or", "$nin",
];

/// Whether `value` resembles an attack, and which.
///
/// The rule: lower-case the value and squash each run of whitespace to one space (trimming
/// both ends); then a script pattern wins over a traversal pattern (looked for in the
/// lower-cased value), over SQL, over a NoSQL operator at the start or in quotes.
pub fn classify(value: &str) -> Option<Category> {
    if value.len() < 2 {
        return None;
    }
    if is_plain_ascii(value) {
        classify_plain(value)
    } else {
        classify_folded(value)
    }
}

/// ASCII whose whitespace squashing changes nothing: no tab, line break or form feed, no
/// two spaces in a row, none at either end. Its lower-case form is the squashed one, so
/// one case-insensitive pass over the value itself decides (most input is like this).
fn is_plain_ascii(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.first() != Some(&b' ')
        && bytes.last() != Some(&b' ')
        && !bytes.windows(2).any(|w| w == b"  ")
        && bytes
            .iter()
            .all(|&b| b.is_ascii() && !matches!(b, 0x09..=0x0d))
}

/// Every pattern of every category, and `"$op"` for each NoSQL operator, in one
/// ASCII-case-insensitive automaton; its pattern ids index [`plain_categories`].
fn plain_patterns() -> Option<&'static (AhoCorasick, Vec<Category>)> {
    static PATTERNS: OnceLock<Option<(AhoCorasick, Vec<Category>)>> = OnceLock::new();
    PATTERNS
        .get_or_init(|| {
            let quoted: Vec<String> = NOSQL.iter().map(|op| format!("\"{op}\"")).collect();
            let mut patterns: Vec<&str> = Vec::new();
            let mut categories = Vec::new();
            for (list, category) in [
                (SCRIPT, Category::Script),
                (TRAVERSAL, Category::PathTraversal),
                (SQL, Category::Sql),
            ] {
                patterns.extend(list);
                categories.extend(std::iter::repeat_n(category, list.len()));
            }
            patterns.extend(quoted.iter().map(String::as_str));
            categories.extend(std::iter::repeat_n(Category::NoSql, quoted.len()));
            // A fixed, small list: building does not fail; were it to, the rule spelled out
            // ([`classify_folded`]) answers instead.
            let automaton = AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(&patterns)
                .ok()?;
            Some((automaton, categories))
        })
        .as_ref()
}

fn classify_plain(value: &str) -> Option<Category> {
    let Some((automaton, categories)) = plain_patterns() else {
        return classify_folded(value);
    };
    let mut best: Option<Category> = None;
    for found in automaton.find_overlapping_iter(value) {
        let category = categories[found.pattern().as_usize()];
        if best.is_none_or(|b| rank(category) < rank(b)) {
            best = Some(category);
        }
        if best == Some(Category::Script) {
            break;
        }
    }
    let bytes = value.as_bytes();
    let starts_with_operator = || {
        NOSQL.iter().any(|op| {
            bytes
                .get(..op.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(op.as_bytes()))
        })
    };
    if best.is_none() && starts_with_operator() {
        best = Some(Category::NoSql);
    }
    best
}

/// Which category wins when a value matches several.
fn rank(category: Category) -> u8 {
    match category {
        Category::Script => 0,
        Category::PathTraversal => 1,
        Category::Sql => 2,
        Category::NoSql => 3,
    }
}

/// The rule itself, spelled out: for values with non-ASCII characters or irregular
/// whitespace (and, in the tests, the reference the fast path is checked against).
fn classify_folded(value: &str) -> Option<Category> {
    let lower = value.to_lowercase();
    let squashed: String = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    if SCRIPT.iter().any(|p| squashed.contains(p)) {
        return Some(Category::Script);
    }
    if TRAVERSAL.iter().any(|p| lower.contains(p)) {
        return Some(Category::PathTraversal);
    }
    if SQL.iter().any(|p| squashed.contains(p)) {
        return Some(Category::Sql);
    }
    if NOSQL
        .iter()
        .any(|p| squashed.starts_with(p) || squashed.contains(&format!("\"{p}\"")))
    {
        return Some(Category::NoSql);
    }
    None
}

/// The fields whose values are secrets, never inspected nor excerpted: a field is secret
/// when the last segment of its path (`new_password` in `body.user.new_password`) contains
/// one of these words, ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFields(Vec<String>);

impl SecretFields {
    /// Fields containing any of `words`.
    pub fn new<I, T>(words: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Self(
            words
                .into_iter()
                .map(|w| w.into().to_ascii_lowercase())
                .collect(),
        )
    }

    /// Whether the value of `field` is a secret.
    pub fn contains(&self, field: &str) -> bool {
        let last = field.rsplit(['.', '[']).next().unwrap_or(field).as_bytes();
        self.0.iter().any(|s| {
            s.is_empty()
                || last
                    .windows(s.len())
                    .any(|w| w.eq_ignore_ascii_case(s.as_bytes()))
        })
    }
}

impl Default for SecretFields {
    fn default() -> Self {
        Self::new(["password", "secret", "token"])
    }
}

fn excerpt(value: &str) -> String {
    value
        .chars()
        .take(64)
        .collect::<String>()
        .escape_debug()
        .to_string()
}

fn push(findings: &mut Vec<Finding>, secrets: &SecretFields, field: &str, value: &str) {
    if findings.len() >= 16 {
        return;
    }
    if let Some(category) = classify(value)
        && !secrets.contains(field)
    {
        findings.push(Finding {
            field: field.to_owned(),
            category,
            excerpt: excerpt(value),
        });
    }
}

/// Scan a path and a query string (decoded), skipping the values of `secrets`.
pub fn scan_target(path: &str, query: Option<&str>, secrets: &SecretFields) -> Vec<Finding> {
    let mut findings = Vec::new();
    if path.contains(['%', '+']) {
        let decoded: String =
            form_urlencoded::parse(format!("p={}", path.replace('&', "%26")).as_bytes())
                .map(|(_, v)| v.into_owned())
                .collect();
        push(&mut findings, secrets, "path", &decoded);
    } else {
        // Nothing to decode: the path is its own decoded form.
        push(&mut findings, secrets, "path", path);
    }
    if let Some(query) = query {
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let field = format!("query.{}", key.chars().take(64).collect::<String>());
            push(&mut findings, secrets, &field, &value);
            if NOSQL.iter().any(|op| key.contains(op)) {
                findings.push(Finding {
                    field,
                    category: Category::NoSql,
                    excerpt: excerpt(&key),
                });
            }
        }
    }
    findings
}

/// Scan every key and string of a JSON document (already known to be well-formed),
/// skipping the values of `secrets`.
pub fn scan_json(body: &[u8], secrets: &SecretFields) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut path = String::with_capacity(64);
    path.push_str("body");
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = Walk {
        path: &mut path,
        findings: &mut findings,
        secrets,
    }
    .deserialize(&mut de);
    findings
}

/// One value of the body being walked. `path` is the value's path (`body.items[0].sku`),
/// one buffer for the whole walk: a child appends its step and truncates it off again,
/// so a body's keys cost no allocation each.
struct Walk<'a> {
    path: &'a mut String,
    findings: &'a mut Vec<Finding>,
    secrets: &'a SecretFields,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        push(self.findings, self.secrets, self.path, v);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let parent = self.path.len();
        let mut i = 0usize;
        loop {
            // Writing into a `String` cannot fail.
            let _ = write!(self.path, "[{i}]");
            let child = Walk {
                path: &mut *self.path,
                findings: &mut *self.findings,
                secrets: self.secrets,
            };
            let more = seq.next_element_seed(child)?.is_some();
            self.path.truncate(parent);
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let parent = self.path.len();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            self.path.push('.');
            self.path.extend(key.chars().take(64));
            if key.starts_with('$') && self.findings.len() < 16 {
                self.findings.push(Finding {
                    field: self.path.clone(),
                    category: Category::NoSql,
                    excerpt: excerpt(&key),
                });
            }
            map.next_value_seed(Walk {
                path: &mut *self.path,
                findings: &mut *self.findings,
                secrets: self.secrets,
            })?;
            self.path.truncate(parent);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn each_kind_of_probe_is_recognised() {
        for (input, category) in [
            ("1' OR '1'='1", Category::Sql),
            ("x UNION   SELECT password FROM users", Category::Sql),
            ("a'; DROP TABLE products; --", Category::Sql),
            ("<ScRiPt>alert(1)</script>", Category::Script),
            ("javascript:alert(1)", Category::Script),
            ("..%2f..%2fetc", Category::PathTraversal),
            ("....//....//etc/passwd", Category::PathTraversal),
            ("$where", Category::NoSql),
        ] {
            assert_eq!(classify(input), Some(category), "{input}");
        }
    }

    #[test]
    fn ordinary_text_is_not_suspicious() {
        for input in [
            "Green tea",
            "O'Reilly",
            "50% off",
            "rock & roll",
            "a-b_c.d",
            "Tom's café",
        ] {
            assert_eq!(classify(input), None, "{input}");
        }
    }

    /// Strings built from pieces of every pattern, in mixed case, with spaces, tabs,
    /// line breaks and a few non-ASCII letters (one of them, the Kelvin sign, lower-cases
    /// to an ASCII `k`): the one-pass classification must agree with the rule spelled out.
    fn probe() -> impl Strategy<Value = String> {
        let mut pieces: Vec<String> = SQL
            .iter()
            .chain(SCRIPT)
            .chain(TRAVERSAL)
            .chain(NOSQL)
            .flat_map(|p| {
                let half = p.len() / 2;
                [
                    p.to_string(),
                    p.to_uppercase(),
                    p[..half].to_owned(),
                    p[half..].to_owned(),
                ]
            })
            .collect();
        pieces.extend(
            [
                " ", "  ", "\t", "\n", "\"", "'", "x", "1", "=", "/", "\u{212a}", "é", "İ",
            ]
            .map(str::to_owned),
        );
        proptest::collection::vec(proptest::sample::select(pieces), 0..8).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn the_fast_path_agrees_with_the_rule(value in probe()) {
            let expected = if value.len() < 2 { None } else { classify_folded(&value) };
            prop_assert_eq!(classify(&value), expected, "{:?}", value);
        }
    }

    #[test]
    fn plain_ascii_is_told_from_text_the_squashing_would_change() {
        assert!(is_plain_ascii("/api/v1/products"));
        assert!(is_plain_ascii("a b' or c"));
        for changed in [
            " lead",
            "trail ",
            "two  spaces",
            "tab\there",
            "line\nbreak",
            "café",
        ] {
            assert!(!is_plain_ascii(changed), "{changed:?}");
        }
        // Squashed, a tab makes the SQL pattern; found either way.
        assert_eq!(classify("x'\tor 1"), Some(Category::Sql));
        assert_eq!(classify("x' or 1"), Some(Category::Sql));
    }

    #[test]
    fn secret_field_names_match_in_any_case_on_the_last_segment() {
        let secrets = SecretFields::new(["password", "otp"]);
        assert!(secrets.contains("body.user.NEW_PASSWORD"));
        assert!(secrets.contains("body.codes[0].otp"));
        assert!(secrets.contains("query.Otp"));
        assert!(!secrets.contains("body.password.note"));
        assert!(!secrets.contains("body.pass"));
    }

    #[test]
    fn json_findings_name_the_field_and_skip_passwords() {
        let body = br#"{"name":"<script>x</script>","password":"' OR 1=1 --","filter":{"$ne":null},"items":[{"note":"../../x"}]}"#;
        let findings = scan_json(body, &SecretFields::default());
        let fields: Vec<&str> = findings.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            ["body.name", "body.filter.$ne", "body.items[0].note"]
        );
    }

    #[test]
    fn query_and_path_are_scanned_and_excerpts_are_bounded_and_escaped() {
        let long = format!("' OR 1=1 --\n{}", "x".repeat(200));
        let query = format!("q={}", long.replace(' ', "+").replace('\n', "%0A"));
        let findings = scan_target(
            "/files/..%2f..%2fetc%2fpasswd",
            Some(&query),
            &SecretFields::default(),
        );
        assert_eq!(findings.len(), 2);
        assert_eq!(findings[0].field, "path");
        assert_eq!(findings[1].field, "query.q");
        assert!(!findings[1].excerpt.contains('\n'));
        assert!(findings[1].excerpt.len() <= 64 * 2);
    }

    #[test]
    fn the_application_names_its_secret_fields() {
        let body = br#"{"otp":"' OR 1=1 --","note":"' OR 1=1 --","user":{"NEW_PASSWORD":"../x"}}"#;
        let secrets = SecretFields::new(["otp", "password"]);
        let fields: Vec<String> = scan_json(body, &secrets)
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(fields, ["body.note"]);
        // Not a secret for this application: inspected and excerpted.
        let findings = scan_json(br#"{"otp":"' OR 1=1 --"}"#, &SecretFields::default());
        assert_eq!(findings.len(), 1);
        let query = scan_target("/x", Some("otp=%27+OR+1%3D1+--"), &secrets);
        assert!(query.is_empty());
    }
}
