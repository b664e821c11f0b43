use std::path::Path;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::*;

/// 2026-11-22T22:33:20Z.
const T0: i64 = 1_795_386_800;
const ISSUER: &str = "https://api.example.test";
const LEEWAY: i64 = 30;
const LIFETIME: i64 = 900;

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(T0 + secs).unwrap()
}

fn ring(dir: &Path, now: i64) -> KeyRing {
    KeyRing::load_or_generate(dir, at(now), DEFAULT_LIFETIME).unwrap()
}

fn service(keys: KeyRing) -> TokenService {
    TokenService::new(keys, TokenSettings::new(ISSUER)).unwrap()
}

fn issue(tokens: &TokenService, now: i64) -> (String, AccessClaims) {
    tokens
        .issue(Uuid::new_v4(), Uuid::new_v4(), "user", T0 + now)
        .unwrap()
}

fn b64(json: &Value) -> String {
    URL_SAFE_NO_PAD.encode(json.to_string())
}

fn part(token: &str, i: usize) -> Value {
    let raw = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(i).unwrap())
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

/// The public key as an attacker reads it from the JWKS.
fn public_x(tokens: &TokenService) -> String {
    tokens.keys().jwks()["keys"][0]["x"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Sign any header and claims with the service's own current key.
fn sign_with_our_key(tokens: &TokenService, header: &Header, claims: &Value) -> String {
    jsonwebtoken::encode(header, claims, tokens.keys().signing_key()).unwrap()
}

fn our_header(tokens: &TokenService) -> Header {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(TOKEN_TYPE.to_owned());
    header.kid = Some(tokens.keys().current_kid().to_owned());
    header
}

#[test]
fn an_issued_token_verifies_and_carries_its_claims() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = service(ring(tmp.path(), 0));
    let (sub, sid) = (Uuid::new_v4(), Uuid::new_v4());
    let (token, claims) = tokens.issue(sub, sid, "admin", T0).unwrap();

    assert_eq!(tokens.verify(&token, T0), Ok(claims.clone()));
    assert_eq!(claims.iss, ISSUER);
    assert_eq!(claims.aud, AUDIENCE);
    assert_eq!((claims.sub, claims.sid), (sub, sid));
    assert_eq!(claims.role, "admin");
    assert_eq!(
        (claims.iat, claims.nbf, claims.exp),
        (T0, T0, T0 + LIFETIME)
    );
    assert_eq!(Uuid::parse_str(&claims.jti).unwrap().get_version_num(), 4);

    let header = part(&token, 0);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["kid"], tokens.keys().current_kid());
    assert_eq!(tokens.lifetime(), DEFAULT_LIFETIME);
}

#[test]
fn every_token_gets_its_own_jti() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = service(ring(tmp.path(), 0));
    assert_ne!(issue(&tokens, 0).1.jti, issue(&tokens, 0).1.jti);
}

#[test]
fn an_alg_none_token_is_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = service(ring(tmp.path(), 0));
    let (token, _) = issue(&tokens, 0);
    let payload = token.split('.').nth(1).unwrap();
    let kid = tokens.keys().current_kid();
    for alg in ["none", "None", "NONE"] {
        let header = b64(&json!({"alg": alg, "typ": "at+jwt", "kid": kid}));
        let forged = format!("{header}.{payload}.");
        assert_eq!(
            tokens.verify(&forged, T0),
            Err(TokenError::Invalid),
            "{alg}"
        );
    }
}

#[test]
fn hmac_tokens_keyed_with_the_public_key_are_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = service(ring(tmp.path(), 0));
    let (_, claims) = issue(&tokens, 0);
    let x = public_x(&tokens);
    let raw = URL_SAFE_NO_PAD.decode(&x).unwrap();
    // The SubjectPublicKeyInfo PEM of the same key (RFC 8410), as a confused verifier
    // would read it from a file.
    let mut spki = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    spki.extend_from_slice(&raw);
    let public_pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&spki)
    );
    let private_pem = std::fs::read(
        tmp.path()
            .join(format!("{}.pem", tokens.keys().current_kid())),
    )
    .unwrap();
    let secrets: [&[u8]; 4] = [&raw, x.as_bytes(), public_pem.as_bytes(), &private_pem];
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        for secret in secrets {
            let mut header = Header::new(alg);
            header.typ = Some(TOKEN_TYPE.to_owned());
            header.kid = Some(tokens.keys().current_kid().to_owned());
            let forged =
                jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap();
            assert_eq!(tokens.verify(&forged, T0), Err(TokenError::Invalid));
        }
    }
}

#[test]
fn rsa_and_ecdsa_headers_are_invalid_even_over_a_good_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = service(ring(tmp.path(), 0));
    let (token, _) = issue(&tokens, 0);
    let mut pieces = token.split('.');
    let (_, payload, signature) = (
        pieces.next().unwrap(),
        pieces.next().unwrap(),
        pieces.next().unwrap(),
    );
    let kid = tokens.keys().current_kid();
    for alg in ["RS256", "PS256", "ES256", "ES384", "Ed25519", "eddsa"] {
        let header = b64(&json!({"alg": alg, "typ": "at+jwt", "kid": kid}));
        let forged = format!("{header}.{payload}.{signature}");
        assert_eq!(
            tokens.verify(&forged, T0),
            Err(TokenError::Invalid),
            "{alg}"
        );
    }
}

#[test]
fn a_token_with_an_unknown_or_missing_kid_is_invalid() {
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    let tokens = service(ring(ours.path(), 0));
    let attacker = service(ring(theirs.path(), 0));

    // Their key, their kid: not one of ours.
    let (forged, _) = issue(&attacker, 0);
    assert_eq!(tokens.verify(&forged, T0), Err(TokenError::Invalid));

    // Their key under our kid: the signature fails.
    let (_, claims) = issue(&attacker, 0);
    let mut header = our_header(&attacker);
    header.kid = Some(tokens.keys().current_kid().to_owned());
    let forged = jsonwebtoken::encode(&header, &claims, attacker.keys().signing_key()).unwrap();
    assert_eq!(tokens.verify(&forged, T0), Err(TokenError::Invalid));

    // Our key, no kid or a path for a kid.
    let claims = serde_json::to_value(issue(&tokens, 0).1).unwrap();
    let mut header = our_header(&tokens);
    header.kid = None;
    let token = sign_with_our_key(&tokens, &header, &claims);
    assert_eq!(tokens.verify(&token, T0), Err(TokenError::Invalid));
    header.kid = Some(format!("../{}", tokens.keys().current_kid()));
    let token = sign_with_our_key(&tokens, &header, &claims);
    assert_eq!(tokens.verify(&token, T0), Err(TokenError::Invalid));
}

#[test]
fn a_tampered_payload_is_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = service(ring(tmp.path(), 0));
    let (token, claims) = issue(&tokens, 0);
    let pieces: Vec<&str> = token.split('.').collect();
    let mut payload = part(&token, 1);
    payload["role"] = json!("admin");
    let forged = format!("{}.{}.{}", pieces[0], b64(&payload), pieces[2]);
    assert_eq!(tokens.verify(&forged, T0), Err(TokenError::Invalid));

    // A tampered token is Invalid even once it would have expired.
    let late = claims.exp + LEEWAY + 1;
    assert_eq!(tokens.verify(&forged, late), Err(TokenError::Invalid));
    // A truncated or garbled signature too.
    let cut = &token[..token.len() - 4];
    assert_eq!(tokens.verify(cut, T0), Err(TokenError::Invalid));
    for garbage in ["", ".", "..", "a.b.c", "a.b.c.d", &format!("{token}.")] {
        assert_eq!(
            tokens.verify(garbage, T0),
            Err(TokenError::Invalid),
            "{garbage}"
        );
    }
}

#[test]
fn a_token_for_another_audience_is_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = service(ring(tmp.path(), 0));
    let other = TokenService::new(
        ring(tmp.path(), 0),
        TokenSettings {
            audience: "billing".to_owned(),
            ..TokenSettings::new(ISSUER)
        },
    )
    .unwrap();
    let (token, claims) = issue(&other, 0);
    assert_eq!(tokens.verify(&token, T0), Err(TokenError::Invalid));
    // Not `Expired` either, once past its expiry.
    let late = claims.exp + LEEWAY + 1;
    assert_eq!(tokens.verify(&token, late), Err(TokenError::Invalid));

    // An audience array holding ours is not our token's shape.
    let mut payload = serde_json::to_value(&claims).unwrap();
    payload["aud"] = json!([AUDIENCE, "billing"]);
    let token = sign_with_our_key(&tokens, &our_header(&tokens), &payload);
    assert_eq!(tokens.verify(&token, T0), Err(TokenError::Invalid));
}

#[test]
fn a_token_from_another_issuer_is_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = service(ring(tmp.path(), 0));
    let other = service_with_issuer(ring(tmp.path(), 0), "https://evil.example.test");
    let (token, claims) = issue(&other, 0);
    assert_eq!(tokens.verify(&token, T0), Err(TokenError::Invalid));
    let late = claims.exp + LEEWAY + 1;
    assert_eq!(tokens.verify(&token, late), Err(TokenError::Invalid));
}

fn service_with_issuer(keys: KeyRing, issuer: &str) -> TokenService {
    TokenService::new(keys, TokenSettings::new(issuer)).unwrap()
}

#[test]
fn a_token_past_its_expiry_and_the_leeway_is_expired_and_within_the_leeway_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = service(ring(tmp.path(), 0));
    let (token, claims) = issue(&tokens, 0);
    assert!(tokens.verify(&token, claims.exp).is_ok());
    assert!(tokens.verify(&token, claims.exp + LEEWAY).is_ok());
    assert_eq!(
        tokens.verify(&token, claims.exp + LEEWAY + 1),
        Err(TokenError::Expired)
    );
    assert_eq!(
        tokens.verify(&token, claims.exp + 86_400),
        Err(TokenError::Expired)
    );
}

#[test]
fn a_token_not_yet_valid_beyond_the_leeway_is_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = service(ring(tmp.path(), 0));
    let (token, claims) = issue(&tokens, 0);
    assert!(tokens.verify(&token, claims.nbf - LEEWAY).is_ok());
    assert_eq!(
        tokens.verify(&token, claims.nbf - LEEWAY - 1),
        Err(TokenError::Invalid)
    );
}

#[test]
fn a_token_missing_a_required_claim_is_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = service(ring(tmp.path(), 0));
    let (_, claims) = issue(&tokens, 0);
    let full = serde_json::to_value(&claims).unwrap();
    let header = our_header(&tokens);
    assert!(
        tokens
            .verify(&sign_with_our_key(&tokens, &header, &full), T0)
            .is_ok()
    );
    for claim in [
        "iss", "aud", "sub", "sid", "role", "iat", "nbf", "exp", "jti",
    ] {
        let mut payload = full.clone();
        payload.as_object_mut().unwrap().remove(claim);
        let token = sign_with_our_key(&tokens, &header, &payload);
        assert_eq!(
            tokens.verify(&token, T0),
            Err(TokenError::Invalid),
            "{claim}"
        );
    }
    let mut payload = full.clone();
    payload["sub"] = json!("not-a-uuid");
    let token = sign_with_our_key(&tokens, &header, &payload);
    assert_eq!(tokens.verify(&token, T0), Err(TokenError::Invalid));
}

#[test]
fn a_token_of_another_type_signed_by_our_key_is_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = service(ring(tmp.path(), 0));
    let claims = serde_json::to_value(issue(&tokens, 0).1).unwrap();
    let mut header = our_header(&tokens);
    for typ in [None, Some("JWT"), Some("id+jwt"), Some("")] {
        header.typ = typ.map(str::to_owned);
        let token = sign_with_our_key(&tokens, &header, &claims);
        assert_eq!(
            tokens.verify(&token, T0),
            Err(TokenError::Invalid),
            "{typ:?}"
        );
    }
    header.typ = Some("application/at+jwt".to_owned());
    let token = sign_with_our_key(&tokens, &header, &claims);
    assert!(tokens.verify(&token, T0).is_ok());
}

#[test]
fn a_token_with_a_critical_header_extension_is_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = service(ring(tmp.path(), 0));
    let claims = serde_json::to_value(issue(&tokens, 0).1).unwrap();
    let mut header = our_header(&tokens);
    header.crit = Some(vec!["exp".to_owned()]);
    let token = sign_with_our_key(&tokens, &header, &claims);
    assert_eq!(tokens.verify(&token, T0), Err(TokenError::Invalid));
}

#[test]
fn a_token_signed_by_a_replaced_key_verifies_until_the_key_retires() {
    let tmp = tempfile::tempdir().unwrap();
    let before = service(ring(tmp.path(), 0));
    let old_kid = before.keys().current_kid().to_owned();
    let (old_token, _) = issue(&before, 10);

    let new_kid = KeyRing::rotate(tmp.path(), at(20), DEFAULT_LIFETIME).unwrap();
    let after = service(KeyRing::load(tmp.path(), at(30), DEFAULT_LIFETIME).unwrap());
    assert_eq!(after.keys().current_kid(), new_kid);
    let (new_token, _) = issue(&after, 30);
    assert_eq!(part(&new_token, 0)["kid"], new_kid.as_str());
    assert!(after.verify(&new_token, T0 + 30).is_ok());
    assert_eq!(part(&old_token, 0)["kid"], old_kid.as_str());
    assert!(after.verify(&old_token, T0 + 30).is_ok());
    // The old key retires at 20 + 900: its tokens are then unknown, not merely expired,
    // both for the ring loaded before and for one loaded after.
    assert!(after.verify(&old_token, T0 + 20 + LIFETIME).is_ok());
    assert_eq!(
        after.verify(&old_token, T0 + 20 + LIFETIME + 1),
        Err(TokenError::Invalid)
    );
    let later_ring = KeyRing::load(tmp.path(), at(20 + LIFETIME + 1), DEFAULT_LIFETIME);
    let later = service(later_ring.unwrap());
    assert_eq!(
        later.verify(&old_token, T0 + 20 + LIFETIME + 1),
        Err(TokenError::Invalid)
    );
    assert!(later.verify(&new_token, T0 + 20 + LIFETIME + 1).is_ok());
}

#[test]
fn unsafe_settings_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let refused =
        |settings: TokenSettings| TokenService::new(ring(tmp.path(), 0), settings).is_err();
    let base = TokenSettings::new(ISSUER);
    assert!(refused(TokenSettings {
        leeway: Duration::from_secs(31),
        ..base.clone()
    }));
    assert!(refused(TokenSettings {
        lifetime: Duration::ZERO,
        ..base.clone()
    }));
    assert!(refused(TokenSettings {
        lifetime: DEFAULT_LIFETIME + Duration::from_secs(1),
        ..base.clone()
    }));
    assert!(refused(TokenSettings::new(" ")));
    assert!(refused(TokenSettings {
        audience: String::new(),
        ..base.clone()
    }));
    assert!(!refused(base));
}
