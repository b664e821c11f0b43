//! Second factor: TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, one step of skew
//! either way) and one-time recovery codes.
//!
//! ```
//! use rampart::auth::mfa;
//!
//! let secret = mfa::new_secret();
//! let uri = mfa::otpauth_uri(&secret, "Rampart", "ada@example.com").unwrap();
//! assert!(uri.starts_with("otpauth://totp/Rampart:ada%40example.com?secret="));
//! // At login: accept a code at most once, and never a step older than the last one used.
//! let last_used_step: Option<i64> = None; // stored with the secret
//! let accepted = mfa::verify_code(&secret, "123456", 1_700_000_000, last_used_step);
//! // On Some(step): store `step` as the new last used step, with a conditional UPDATE.
//! # let _ = accepted;
//! let codes = mfa::new_recovery_codes(); // shown once; store only the hashes
//! let stored: Vec<String> = codes.iter().map(|c| mfa::hash_recovery_code(c)).collect();
//! # assert_eq!(stored.len(), 10);
//! ```
//!
//! # Security
//! - A code is accepted at most once: [`verify_code`] takes the last step used and only
//!   accepts a later one (RFC 6238 §5.2). The caller must store the returned step with a
//!   conditional write (`… WHERE last_used_step IS NULL OR last_used_step < ?`), or two
//!   concurrent requests could both spend the same code.
//! - Codes are compared in constant time (totp-rs's `Token`). Time is an argument, so
//!   tests and callers control the clock.
//! - The TOTP secret must be stored reversibly (the server recomputes codes from it): it is
//!   a [`SecretString`] whose `Debug` is redacted; never log it.
//! - Recovery codes have 50 bits of entropy each and are stored as unsalted SHA-256 of
//!   their normalised form, so that a code can be looked up by its hash. That is enough
//!   against online guessing (MFA attempts are rate limited) but not against an offline
//!   search of a leaked table; whoever holds the table also holds the TOTP secrets.
//! - Nothing here is rate limited: API.md §6 limits failed MFA attempts per `mfa_token`
//!   and per account.

use std::collections::BTreeSet;

use rand::{Rng as _, RngCore as _};
use secrecy::{ExposeSecret as _, SecretString, zeroize::Zeroizing};
use sha2::{Digest as _, Sha256};
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Seconds per TOTP step (RFC 6238's recommended 30).
pub const STEP_SECONDS: u64 = 30;
/// Digits per TOTP code.
pub const DIGITS: usize = 6;
/// How many recovery codes [`new_recovery_codes`] makes.
pub const RECOVERY_CODE_COUNT: usize = 10;

/// Bytes of randomness in a new TOTP secret: 160 bits, as RFC 4226 §4 recommends.
const SECRET_BYTES: usize = 20;
/// Characters in a recovery code, hyphen excluded.
const RECOVERY_CODE_LEN: usize = 10;
/// Crockford's base 32 in lower case: no `i`, `l`, `o` or `u`, so nothing reads as
/// something else; 5 bits a character, 50 bits a code.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A TOTP shared secret, as the RFC 4648 base 32 text authenticator apps take.
/// `Debug` is redacted; there is no `Display`.
#[derive(Clone)]
pub struct TotpSecret(SecretString);

impl TotpSecret {
    /// Wrap a stored secret, checking that it is base 32 of at least 128 bits (RFC 4226 §4).
    pub fn from_base32(text: SecretString) -> Result<Self, MfaError> {
        let bytes = Secret::try_from_base32(text.expose_secret().trim_end_matches('='))
            .map_err(|_| MfaError::InvalidSecret)?;
        if bytes.as_bytes().len() < 16 {
            return Err(MfaError::InvalidSecret);
        }
        Ok(Self(text))
    }

    /// The base 32 text: for storing it and for showing it once at setup, nothing else.
    pub fn expose_base32(&self) -> &str {
        self.0.expose_secret()
    }

    fn totp(&self) -> Result<Totp, MfaError> {
        let secret = Secret::try_from_base32(self.expose_base32().trim_end_matches('='))
            .map_err(|_| MfaError::InvalidSecret)?;
        // Skew 0: `verify_code` walks the ±1 window itself, to skip spent steps.
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_step_duration(STEP_SECONDS)
            .with_skew(0)
            .with_secret(secret)
            .build()
            .map_err(|_| MfaError::InvalidSecret)
    }
}

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([REDACTED])")
    }
}

/// Why an MFA value could not be made. Never holds the secret.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// The secret is not base 32 of at least 128 bits.
    #[error("the TOTP secret is not base 32 of at least 128 bits")]
    InvalidSecret,
    /// The issuer or account name is empty or contains `:`, which the otpauth label forbids.
    #[error("the issuer or account name is empty or contains ':'")]
    InvalidLabel,
}

/// A new random TOTP secret of 160 bits.
pub fn new_secret() -> TotpSecret {
    let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
    rand::rng().fill_bytes(bytes.as_mut());
    TotpSecret(SecretString::from(Secret::from(*bytes).to_base32()))
}

/// The `otpauth://totp/…` URI for authenticator apps (Google's Key URI format), with the
/// parameters spelled out even where they are the defaults: `algorithm=SHA1`, `digits=6`,
/// `period=30`. The label and issuer are percent-encoded.
pub fn otpauth_uri(
    secret: &TotpSecret,
    issuer: &str,
    account_email: &str,
) -> Result<String, MfaError> {
    if issuer.is_empty() || account_email.is_empty() {
        return Err(MfaError::InvalidLabel);
    }
    let totp = secret.totp()?;
    let uri = Builder::new()
        .with_algorithm(totp.algorithm())
        .with_digits(totp.digits())
        .with_step_duration(totp.step())
        .with_secret(totp.secret().as_bytes())
        .with_issuer(Some(issuer))
        .with_account_name(account_email)
        .build()
        .and_then(|t| t.to_url())
        .map_err(|_| MfaError::InvalidLabel)?;
    // totp-rs leaves out parameters equal to the defaults; some apps want them all.
    Ok(format!(
        "{uri}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}"
    ))
}

/// Check a 6-digit code at `now_unix` (seconds), allowing one step of clock skew either
/// way. Returns the matched step when the code is right **and** that step is later than
/// `last_used_step`, so a code is accepted at most once and never after a newer one;
/// `None` otherwise, including for anything but exactly 6 ASCII digits.
pub fn verify_code(
    secret: &TotpSecret,
    code: &str,
    now_unix: u64,
    last_used_step: Option<i64>,
) -> Option<i64> {
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = secret.totp().ok()?;
    let current = now_unix / STEP_SECONDS;
    // Oldest first, so a code matching two steps of the window spends the older one.
    [
        current.checked_sub(1),
        Some(current),
        current.checked_add(1),
    ]
    .into_iter()
    .flatten()
    .filter_map(|step| Some((step, i64::try_from(step).ok()?)))
    .filter(|&(_, step)| last_used_step.is_none_or(|last| step > last))
    .find_map(|(step, signed)| {
        let time = step.checked_mul(STEP_SECONDS)?;
        totp.check(code, time).map(|_| signed)
    })
}

/// Ten new recovery codes, `xxxxx-xxxxx` in lower-case Crockford base 32 (50 bits each),
/// all different. Show them once; store only [`hash_recovery_code`] of each.
pub fn new_recovery_codes() -> Vec<String> {
    let mut rng = rand::rng();
    let mut codes = BTreeSet::new();
    let mut ordered = Vec::with_capacity(RECOVERY_CODE_COUNT);
    while ordered.len() < RECOVERY_CODE_COUNT {
        let mut code = String::with_capacity(RECOVERY_CODE_LEN + 1);
        for i in 0..RECOVERY_CODE_LEN {
            if i == RECOVERY_CODE_LEN / 2 {
                code.push('-');
            }
            let index = rng.random_range(0..RECOVERY_ALPHABET.len());
            code.push(char::from(RECOVERY_ALPHABET[index]));
        }
        if codes.insert(code.clone()) {
            ordered.push(code);
        }
    }
    ordered
}

/// The canonical form of a recovery code as typed: lower case, hyphens and white space
/// removed, Crockford's look-alikes mapped (`o` → `0`, `i`/`l` → `1`); `None` unless that
/// leaves exactly 10 characters of the code alphabet.
pub fn normalise_recovery_code(input: &str) -> Option<String> {
    // Bound the work on hostile input before looking at it.
    if input.len() > 64 {
        return None;
    }
    let code = canonical(input);
    (code.len() == RECOVERY_CODE_LEN && code.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)))
        .then_some(code)
}

/// SHA-256, in lower-case hex, of the code's canonical form, for storing and looking up.
/// Any spelling [`normalise_recovery_code`] accepts hashes the same; normalise first and
/// refuse what it rejects, rather than hashing arbitrary input.
pub fn hash_recovery_code(code: &str) -> String {
    Sha256::digest(canonical(code).as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn canonical(input: &str) -> String {
    input
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A fixed time well inside a step: 2023-11-14T22:13:05Z, step 56 666 666 + 5 s.
    const T: u64 = 1_699_999_985;

    fn code_at(secret: &TotpSecret, time: u64) -> String {
        secret.totp().unwrap().generate(time).to_string()
    }

    #[test]
    fn a_new_secret_is_160_bits_of_base32() {
        let secret = new_secret();
        assert_eq!(secret.expose_base32().len(), 32);
        let bytes = Secret::try_from_base32(secret.expose_base32()).unwrap();
        assert_eq!(bytes.as_bytes().len(), 20);
        assert_ne!(
            secret.expose_base32(),
            new_secret().expose_base32(),
            "two secrets should differ"
        );
        TotpSecret::from_base32(SecretString::from(secret.expose_base32().to_owned())).unwrap();
    }

    #[test]
    fn codes_match_the_rfc_6238_test_vector() {
        // RFC 6238 appendix B, SHA-1, secret "12345678901234567890", T = 59 → 94287082
        // (8 digits); its last 6 digits are the 6-digit code.
        let secret = TotpSecret::from_base32(SecretString::from(
            Secret::from(*b"12345678901234567890").to_base32(),
        ))
        .unwrap();
        assert_eq!(verify_code(&secret, "287082", 59, None), Some(1));
    }

    #[test]
    fn a_code_verifies_within_one_step_either_way_and_not_beyond() {
        let secret = new_secret();
        let code = code_at(&secret, T);
        let step = i64::try_from(T / STEP_SECONDS).unwrap();
        for now in [T, T - 30, T + 30] {
            assert_eq!(
                verify_code(&secret, &code, now, None),
                Some(step),
                "at {now}"
            );
        }
        for now in [T - 90, T + 90] {
            assert_eq!(verify_code(&secret, &code, now, None), None, "at {now}");
        }
    }

    #[test]
    fn the_same_code_cannot_be_used_twice() {
        let secret = new_secret();
        let code = code_at(&secret, T);
        let step = verify_code(&secret, &code, T, None).unwrap();
        assert_eq!(verify_code(&secret, &code, T, Some(step)), None);
        assert_eq!(verify_code(&secret, &code, T + 29, Some(step)), None);
    }

    #[test]
    fn an_older_code_is_refused_after_a_newer_one_was_used() {
        let secret = new_secret();
        let older = code_at(&secret, T - 30);
        let newer = code_at(&secret, T);
        let used = verify_code(&secret, &newer, T, None).unwrap();
        assert_eq!(verify_code(&secret, &older, T, Some(used)), None);
        // While the next step's code is still good.
        let next = code_at(&secret, T + 30);
        assert_eq!(
            verify_code(&secret, &next, T + 30, Some(used)),
            Some(used + 1)
        );
    }

    #[test]
    fn wrong_and_malformed_codes_are_refused() {
        let secret = new_secret();
        let code = code_at(&secret, T);
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        let padded = format!(" {code}");
        let plus = format!("+{}", &code[1..]);
        for bad in [
            wrong.as_str(),
            &code[..5],
            &format!("{code}0"),
            "abcdef",
            "12345a",
            "",
            padded.as_str(),
            plus.as_str(),
            "１２３４５６",
        ] {
            assert_eq!(verify_code(&secret, bad, T, None), None, "{bad:?}");
        }
    }

    #[test]
    fn the_otpauth_uri_spells_out_every_parameter() {
        let secret = new_secret();
        let uri = otpauth_uri(&secret, "Rampart", "ada@example.com").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Rampart:ada%40example.com?"),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={}", secret.expose_base32())));
        for part in ["issuer=Rampart", "algorithm=SHA1", "digits=6", "period=30"] {
            assert!(uri.contains(part), "{part} missing from {uri}");
        }
        // What an authenticator app reads back is the same TOTP.
        let parsed = Totp::from_url(&uri).unwrap();
        assert_eq!(parsed.generate(T).to_string(), code_at(&secret, T));
    }

    #[test]
    fn a_colon_in_the_label_is_refused() {
        let secret = new_secret();
        assert!(matches!(
            otpauth_uri(&secret, "Ramp:art", "ada@example.com"),
            Err(MfaError::InvalidLabel)
        ));
        assert!(matches!(
            otpauth_uri(&secret, "Rampart", "ada:x@example.com"),
            Err(MfaError::InvalidLabel)
        ));
        assert!(matches!(
            otpauth_uri(&secret, "", "ada@example.com"),
            Err(MfaError::InvalidLabel)
        ));
    }

    #[test]
    fn short_or_malformed_secrets_are_refused() {
        for bad in ["", "not base 32!", "MFRGGZDF"] {
            assert!(
                TotpSecret::from_base32(SecretString::from(bad)).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_secret_never_appears_in_debug_output() {
        let secret = new_secret();
        let debug = format!("{secret:?}");
        assert!(!debug.contains(secret.expose_base32()), "{debug}");
        assert_eq!(debug, "TotpSecret([REDACTED])");
    }

    #[test]
    fn ten_distinct_well_formed_recovery_codes_are_made() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
        assert_eq!(
            codes.iter().collect::<BTreeSet<_>>().len(),
            RECOVERY_CODE_COUNT
        );
        for code in &codes {
            assert_eq!(code.len(), 11, "{code}");
            assert_eq!(code.as_bytes()[5], b'-', "{code}");
            assert_eq!(
                normalise_recovery_code(code).as_deref(),
                Some(code.replace('-', "").as_str())
            );
        }
    }

    #[test]
    fn recovery_codes_hash_alike_whatever_the_case_hyphens_or_spaces() {
        let code = "ab3de-fg7hk";
        let expected = hash_recovery_code(code);
        assert_eq!(expected.len(), 64);
        for spelling in ["AB3DE-FG7HK", "ab3defg7hk", " ab3de fg7hk ", "Ab3De-Fg7hK"] {
            assert_eq!(hash_recovery_code(spelling), expected, "{spelling:?}");
            assert_eq!(
                normalise_recovery_code(spelling).as_deref(),
                Some("ab3defg7hk")
            );
        }
        // Look-alikes read as the digits they resemble.
        assert_eq!(
            normalise_recovery_code("O1ILo-00000").as_deref(),
            Some("0111000000")
        );
        assert_ne!(hash_recovery_code("ab3de-fg7hm"), expected);
    }

    #[test]
    fn recovery_codes_of_the_wrong_length_or_alphabet_are_rejected() {
        for bad in [
            "",
            "ab3de-fg7h",
            "ab3de-fg7hkk",
            "ab3de-fg7hu",
            "ab3de_fg7hk",
            "ab3dé-fg7hk",
            &"a".repeat(100),
        ] {
            assert_eq!(normalise_recovery_code(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn verify_code_never_panics(
            code in ".*",
            now in any::<u64>(),
            last in any::<Option<i64>>(),
        ) {
            let secret = new_secret();
            let _ = verify_code(&secret, &code, now, last);
        }

        #[test]
        fn six_digit_codes_never_panic_even_at_the_end_of_time(
            code in "[0-9]{6}",
            now in (u64::MAX - 100)..=u64::MAX,
        ) {
            let secret = new_secret();
            let _ = verify_code(&secret, &code, now, None);
        }

        #[test]
        fn normalising_never_panics_and_is_stable(input in ".*") {
            if let Some(code) = normalise_recovery_code(&input) {
                prop_assert_eq!(normalise_recovery_code(&code), Some(code.clone()));
                prop_assert_eq!(hash_recovery_code(&code), hash_recovery_code(&input));
            }
        }
    }
}
