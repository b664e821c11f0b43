//! A single pass over a JSON document that refuses, before any handler deserialises it:
//! nesting deeper than the limit, and the keys `__proto__`, `constructor` and `prototype`
//! anywhere (escaped spellings included, since the keys are decoded before comparison).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Keys that poison JavaScript objects when a body is forwarded to a Node.js service.
pub const DANGEROUS_KEYS: &[&str] = &["__proto__", "constructor", "prototype"];

/// Why a JSON body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonViolation {
    /// Not well-formed JSON (or not UTF-8); line and column of the first error.
    Malformed { line: usize, column: usize },
    /// Nested deeper than the limit.
    TooDeep { limit: usize },
    /// A dangerous key, with the path of the object holding it.
    DangerousKey { path: String, key: &'static str },
}

/// Check `body` against the depth limit and the dangerous keys.
pub fn check(body: &[u8], max_depth: usize) -> Result<(), JsonViolation> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let mut state = State {
        max_depth,
        violation: None,
    };
    let seed = Node {
        state: &mut state,
        depth: 0,
        path: String::new(),
    };
    let result = seed.deserialize(&mut de).and_then(|()| de.end());
    match (state.violation, result) {
        (Some(violation), _) => Err(violation),
        (None, Err(e)) => Err(JsonViolation::Malformed {
            line: e.line(),
            column: e.column(),
        }),
        (None, Ok(())) => Ok(()),
    }
}

struct State {
    max_depth: usize,
    violation: Option<JsonViolation>,
}

struct Node<'a> {
    state: &'a mut State,
    depth: usize,
    path: String,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Node<'_> {
    fn enter<E: serde::de::Error>(&mut self) -> Result<usize, E> {
        let depth = self.depth + 1;
        if depth > self.state.max_depth {
            self.state.violation = Some(JsonViolation::TooDeep {
                limit: self.state.max_depth,
            });
            return Err(E::custom("too deep"));
        }
        Ok(depth)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
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
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.enter()?;
        let mut index = 0usize;
        loop {
            let path = format!("{}[{index}]", self.path);
            let child = Node {
                state: self.state,
                depth,
                path,
            };
            if seq.next_element_seed(child)?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let depth = self.enter()?;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if let Some(bad) = DANGEROUS_KEYS.iter().find(|k| **k == key) {
                self.state.violation = Some(JsonViolation::DangerousKey {
                    path: self.path.clone(),
                    key: bad,
                });
                return Err(serde::de::Error::custom("dangerous key"));
            }
            let path = if self.path.is_empty() {
                key.into_owned()
            } else {
                format!("{}.{key}", self.path)
            };
            map.next_value_seed(Node {
                state: self.state,
                depth,
                path,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn depth_32_passes_and_33_is_refused() {
        assert_eq!(check(nested(32).as_bytes(), 32), Ok(()));
        assert_eq!(
            check(nested(33).as_bytes(), 32),
            Err(JsonViolation::TooDeep { limit: 32 })
        );
        // Far past serde_json's own recursion limit: still our answer, not a crash.
        assert_eq!(
            check(nested(10_000).as_bytes(), 32),
            Err(JsonViolation::TooDeep { limit: 32 })
        );
    }

    #[test]
    fn dangerous_keys_are_found_anywhere_and_in_any_spelling() {
        let cases = [
            (r#"{"__proto__":{"isAdmin":true}}"#, ""),
            (r#"{"a":[{"b":{"constructor":{}}}]}"#, "a[0].b"),
            (r#"{"x":{"\u005f_proto__":1}}"#, "x"),
            (r#"{"prototype":null}"#, ""),
        ];
        for (body, path) in cases {
            match check(body.as_bytes(), 32) {
                Err(JsonViolation::DangerousKey { path: p, .. }) => assert_eq!(p, path, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        // As a value, the word is data.
        assert_eq!(check(br#"{"name":"__proto__"}"#, 32), Ok(()));
    }

    #[test]
    fn malformed_json_and_invalid_utf8_are_refused() {
        assert!(matches!(
            check(b"{\"a\":", 32),
            Err(JsonViolation::Malformed { .. })
        ));
        assert!(matches!(
            check(b"{} {}", 32),
            Err(JsonViolation::Malformed { .. })
        ));
        assert!(matches!(
            check(b"{\"a\":\"\xff\"}", 32),
            Err(JsonViolation::Malformed { .. })
        ));
    }

    proptest! {
        #[test]
        fn check_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = check(&bytes, 32);
        }
    }
}
