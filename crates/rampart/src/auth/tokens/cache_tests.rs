use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::*;

/// 2026-11-22T22:33:20Z.
const T0: i64 = 1_795_386_800;
const ISSUER: &str = "https://api.example.test";

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(T0 + secs).unwrap()
}

fn shared(dir: &std::path::Path) -> SharedTokens {
    let keys = KeyRing::load_or_generate(dir, at(0), DEFAULT_LIFETIME).unwrap();
    SharedTokens::new(keys, TokenSettings::new(ISSUER)).unwrap()
}

fn issue(tokens: &SharedTokens, now: i64) -> String {
    tokens
        .issue(Uuid::new_v4(), Uuid::new_v4(), "user", T0 + now)
        .unwrap()
        .0
}

fn with_payload(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let pieces: Vec<&str> = token.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(pieces[1]).unwrap()).unwrap();
    edit(&mut payload);
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    format!("{}.{payload}.{}", pieces[0], pieces[2])
}

#[test]
fn a_verified_token_is_cached_and_a_tampered_sibling_of_it_is_still_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = shared(tmp.path());
    let token = issue(&tokens, 0);
    let claims = tokens.verify(&token, T0).unwrap();
    assert_eq!(tokens.cache().len(), 1);
    assert_eq!(tokens.verify(&token, T0), Ok(claims.clone()));

    // The cached token's payload with a claim changed, under its good signature.
    let admin = with_payload(&token, |p| p["role"] = json!("admin"));
    assert_eq!(tokens.verify(&admin, T0), Err(TokenError::Invalid));
    let other = with_payload(&token, |p| p["sub"] = json!(Uuid::new_v4()));
    assert_eq!(tokens.verify(&other, T0), Err(TokenError::Invalid));
    let later = with_payload(&token, |p| p["exp"] = json!(claims.exp + 3_600));
    assert_eq!(tokens.verify(&later, T0), Err(TokenError::Invalid));
    // Another good token's signature on the cached token's header and payload.
    let sibling = issue(&tokens, 0);
    tokens.verify(&sibling, T0).unwrap();
    let (head, _) = token.rsplit_once('.').unwrap();
    let (_, signature) = sibling.rsplit_once('.').unwrap();
    let swapped = format!("{head}.{signature}");
    assert_eq!(tokens.verify(&swapped, T0), Err(TokenError::Invalid));
    // A truncated signature.
    assert_eq!(
        tokens.verify(&token[..token.len() - 2], T0),
        Err(TokenError::Invalid)
    );
    // Refusals are never cached.
    assert_eq!(tokens.cache().len(), 2);
    assert_eq!(tokens.verify(&admin, T0), Err(TokenError::Invalid));
}

#[test]
fn a_cached_token_is_judged_by_the_time_of_each_use() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = shared(tmp.path());
    let token = issue(&tokens, 0);
    let exp = tokens.verify(&token, T0).unwrap().exp;
    assert!(tokens.verify(&token, exp + 30).is_ok(), "within the leeway");
    assert_eq!(tokens.verify(&token, exp + 31), Err(TokenError::Expired));
    assert_eq!(tokens.cache().len(), 1);

    // A token not valid before T0+100, cached when it became valid, is not valid earlier.
    let future = issue(&tokens, 100);
    assert!(tokens.verify(&future, T0 + 100).is_ok());
    assert_eq!(tokens.verify(&future, T0 + 69), Err(TokenError::Invalid));
}

#[test]
fn a_cached_token_ends_with_its_key() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = shared(tmp.path());
    let old = issue(&tokens, 0);
    tokens.verify(&old, T0).unwrap();

    // A reload that changes nothing keeps the cache; a new key empties it.
    tokens.reload(tmp.path(), at(10), DEFAULT_LIFETIME);
    assert_eq!(tokens.cache().len(), 1);
    KeyRing::rotate(tmp.path(), at(20), DEFAULT_LIFETIME).unwrap();
    tokens.reload(tmp.path(), at(20), DEFAULT_LIFETIME);
    assert!(tokens.cache().is_empty());

    // Cached again, then its key retires (20 s + the retention): refused though cached,
    // as unknown, not expired.
    let old = issue(&tokens, 20);
    let kid_of = |t: &str| -> Value {
        serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(t.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    let claims = tokens.verify(&old, T0 + 20).unwrap();
    assert_eq!(tokens.cache().len(), 1);
    KeyRing::rotate(tmp.path(), at(30), DEFAULT_LIFETIME).unwrap();
    tokens.reload(tmp.path(), at(30), DEFAULT_LIFETIME);
    let old_again = issue(&tokens, 30);
    assert_ne!(kid_of(&old)["kid"], kid_of(&old_again)["kid"]);
    // Re-cached under the new ring, still verifying until the key retires.
    assert!(tokens.verify(&old, T0 + 30).is_ok());
    let retires = T0 + 30 + DEFAULT_LIFETIME.as_secs() as i64;
    assert!(
        claims.exp + 30 >= retires,
        "the token outlives the key here"
    );
    assert!(tokens.verify(&old, retires).is_ok());
    assert_eq!(tokens.verify(&old, retires + 1), Err(TokenError::Invalid));
}
