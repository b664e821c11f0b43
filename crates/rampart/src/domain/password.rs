//! Passwords: the policy a new password must meet (API.md §4), and a holder that keeps any
//! password out of logs.
//!
//! ```text
//! let password = Password::parse_new(body.password, "password", email.as_str())?;
//! let hash = hasher.hash(&password).await?;
//! ```
//!
//! A new password must be 12 to 128 characters long, must not be in the shipped list of
//! common and breached passwords, must score at least 3 with zxcvbn, and must not contain
//! the local part of the account's email address. [`Password::parse_new`] runs every rule
//! and reports every failing one. Passwords presented at login (or as the current password)
//! are not judged by today's policy: [`Password::unchecked`] only wraps them.
//!
//! The common-password list is `assets/common-passwords.txt`: Django's
//! `django/contrib/auth/common-passwords.txt.gz` (Django 5.2.19, BSD-3-Clause, © Django
//! Software Foundation and individual contributors), itself derived from Royce Williams'
//! compilation of common passwords. It is already lower-cased and deduplicated (19 640
//! entries); see `assets/README.md`.
//!
//! # Security
//! [`Password`] holds a [`SecretString`]: it has no `Display`, its `Debug` prints
//! `Password([redacted])`, and its memory is zeroed on drop. Error messages are fixed text
//! and never echo the password. zxcvbn runs only on 12 to 128 characters, so an oversized
//! input costs no more than a length check.

use std::{collections::HashSet, fmt, sync::LazyLock};

use secrecy::{ExposeSecret, SecretString};

use super::FieldError;

/// Fewest characters (Unicode scalar values, not bytes) a new password may have.
pub const MIN_CHARS: usize = 12;
/// Most characters a new password may have.
pub const MAX_CHARS: usize = 128;
/// Most characters a presented password may have and still be worth hashing; see
/// [`Password::is_plausible`].
pub const MAX_PLAUSIBLE_CHARS: usize = 1024;
/// Lowest zxcvbn score (0–4) a new password must reach.
pub const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;
/// Shortest email local part the "must not contain" rule applies to: shorter ones (`jo@…`)
/// would forbid too many good passwords.
const MIN_LOCAL_PART_CHARS: usize = 3;

const LENGTH: &str = "must be 12 to 128 characters long";
const COMMON: &str = "is too common: it appears in a list of breached passwords";
const GUESSABLE: &str = "is too easy to guess: use a longer passphrase of unrelated words";
const CONTAINS_EMAIL: &str = "must not contain the part of your email address before the @";

/// The shipped list of common and breached passwords, lower-cased, one per line.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../assets/common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
});

/// A password: a new one that passed the policy, or one presented for verification.
pub struct Password(SecretString);

impl Password {
    /// Parse a new password (registration, reset, change) for the account with `email`,
    /// reporting every failing rule as a [`FieldError`] on `field`.
    pub fn parse_new(raw: String, field: &str, email: &str) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let chars = raw.chars().count();
        let lowered = raw.to_lowercase();

        if !(MIN_CHARS..=MAX_CHARS).contains(&chars) {
            errors.push(FieldError::new(field, LENGTH));
        }
        // Surrounding spaces do not make a listed password any less common (Django strips
        // them for the same check).
        if COMMON_PASSWORDS.contains(lowered.trim()) {
            errors.push(FieldError::new(field, COMMON));
        }
        let local_part = email.rsplit_once('@').map_or(email, |(local, _)| local);
        // zxcvbn is slow on long inputs: run it only on a length the policy can accept.
        if (MIN_CHARS..=MAX_CHARS).contains(&chars) {
            let user_inputs: Vec<&str> = [local_part, email]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            if zxcvbn::zxcvbn(&raw, &user_inputs).score() < MIN_SCORE {
                errors.push(FieldError::new(field, GUESSABLE));
            }
        }
        if local_part.chars().count() >= MIN_LOCAL_PART_CHARS
            && lowered.contains(&local_part.to_lowercase())
        {
            errors.push(FieldError::new(field, CONTAINS_EMAIL));
        }

        if errors.is_empty() {
            Ok(Self(SecretString::from(raw)))
        } else {
            Err(errors)
        }
    }

    /// Wrap a password presented for verification (login, current password) without judging
    /// it: the policy applies to new passwords only, and an old account's password may
    /// predate it.
    ///
    /// Any length is kept; see [`Password::is_plausible`] for skipping hashing work on
    /// absurdly long input.
    pub fn unchecked(raw: String) -> Self {
        Self(SecretString::from(raw))
    }

    /// Whether this password is at most [`MAX_PLAUSIBLE_CHARS`] characters long. No password
    /// this long can ever have been set, so a caller (and
    /// [`crate::auth::password::PasswordHasher::verify`]) may answer "wrong password"
    /// without spending hashing work on it.
    pub fn is_plausible(&self) -> bool {
        let raw = self.0.expose_secret();
        // Each char is at least one byte: short byte strings need no counting, long ones
        // are counted only up to the limit.
        raw.len() <= MAX_PLAUSIBLE_CHARS || raw.chars().nth(MAX_PLAUSIBLE_CHARS).is_none()
    }

    /// The password itself, for the hasher. Never log or store it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EMAIL: &str = "margaret.hamilton@example.com";
    const STRONG: &str = "correct-Horse-battery-st4ple";

    fn messages(raw: &str, email: &str) -> Vec<String> {
        match Password::parse_new(raw.to_owned(), "password", email) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| e.message).collect(),
        }
    }

    #[test]
    fn a_strong_password_passes() {
        let password = Password::parse_new(STRONG.to_owned(), "password", EMAIL).unwrap();
        assert_eq!(password.expose(), STRONG);
        assert!(password.is_plausible());
    }

    #[test]
    fn the_shipped_list_is_loaded_and_lower_cased() {
        assert!(COMMON_PASSWORDS.len() > 19_000);
        assert!(COMMON_PASSWORDS.contains("password"));
        assert!(COMMON_PASSWORDS.iter().all(|p| p.to_lowercase() == *p));
    }

    #[test]
    fn a_password_shorter_than_12_characters_is_rejected() {
        assert_eq!(messages("Xq7#vL2!pZ", EMAIL), [LENGTH]);
    }

    #[test]
    fn a_password_longer_than_128_characters_is_rejected() {
        let long = "Xq7#vL2!pZw9".repeat(11);
        assert_eq!(long.chars().count(), 132);
        assert_eq!(messages(&long, EMAIL), [LENGTH]);
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // 13 characters, 39 bytes: long enough.
        let cjk = "鍵盤上の猫が走る夜明け前だ";
        assert_eq!(cjk.chars().count(), 13);
        assert!(!messages(cjk, EMAIL).contains(&LENGTH.to_owned()));
        // 128 two-byte characters (256 bytes): not too long.
        let accented = "é".repeat(64) + &"ñ".repeat(64);
        assert!(!messages(&accented, EMAIL).contains(&LENGTH.to_owned()));
        let too_many = "é".repeat(129);
        assert!(messages(&too_many, EMAIL).contains(&LENGTH.to_owned()));
    }

    #[test]
    fn a_password_in_the_common_list_is_rejected() {
        // A 14-character entry of the list that zxcvbn alone would accept.
        assert!(COMMON_PASSWORDS.contains("pe#5gz29ptzmse"));
        assert_eq!(messages("pe#5gz29ptzmse", EMAIL), [COMMON]);
    }

    #[test]
    fn the_common_list_is_compared_without_regard_to_case() {
        assert_eq!(messages("PE#5GZ29PTZMSE", EMAIL), [COMMON]);
        assert_eq!(messages(" Pe#5gZ29ptzMSE ", EMAIL), [COMMON]);
    }

    #[test]
    fn a_guessable_password_is_rejected() {
        assert!(!COMMON_PASSWORDS.contains("abcdefghijklmnop"));
        assert_eq!(messages("abcdefghijklmnop", EMAIL), [GUESSABLE]);
    }

    #[test]
    fn a_password_containing_the_email_local_part_is_rejected() {
        assert_eq!(
            messages("zq!Margaret.Hamilton-w9#Lk", EMAIL),
            [CONTAINS_EMAIL]
        );
    }

    #[test]
    fn a_local_part_shorter_than_3_characters_does_not_count() {
        assert!(messages(STRONG, "st@example.com").is_empty());
        assert_eq!(messages(STRONG, "ple@example.com"), [CONTAINS_EMAIL]);
    }

    #[test]
    fn every_failing_rule_is_listed_at_once() {
        // Too short, on the list, guessable, and it contains the local part `pass`.
        assert_eq!(
            messages("password", "pass@example.com"),
            [LENGTH, COMMON, CONTAINS_EMAIL]
        );
        // zxcvbn runs once the length is acceptable.
        assert_eq!(
            messages("qwerty123456", "qwerty@example.com"),
            [COMMON, GUESSABLE, CONTAINS_EMAIL]
        );
    }

    #[test]
    fn errors_name_the_given_field() {
        let errors = Password::parse_new("short".to_owned(), "new_password", EMAIL).unwrap_err();
        assert!(errors.iter().all(|e| e.field == "new_password"));
    }

    #[test]
    fn error_text_never_contains_the_password() {
        for raw in [
            "qwerty123456",
            "pe#5gz29ptzmse",
            "abcdefghijklmnop",
            "zq!Margaret.Hamilton-w9#Lk",
            "hunter2",
        ] {
            let errors = Password::parse_new(raw.to_owned(), "password", EMAIL).unwrap_err();
            for error in errors {
                assert!(!error.message.contains(raw), "{raw} leaked");
                assert!(!error.field.contains(raw), "{raw} leaked");
            }
        }
    }

    #[test]
    fn debug_output_is_redacted() {
        let password = Password::unchecked(STRONG.to_owned());
        assert_eq!(format!("{password:?}"), "Password([redacted])");
        assert_eq!(
            format!("{:?}", Some(&password)),
            "Some(Password([redacted]))"
        );
    }

    #[test]
    fn an_unchecked_password_is_kept_as_given_and_plausible_up_to_1024_characters() {
        let weak = Password::unchecked("hunter2".to_owned());
        assert_eq!(weak.expose(), "hunter2");
        assert!(weak.is_plausible());
        assert!(Password::unchecked("é".repeat(1024)).is_plausible());
        let absurd = Password::unchecked("é".repeat(1025));
        assert!(!absurd.is_plausible());
        assert_eq!(absurd.expose().chars().count(), 1025);
    }

    proptest! {
        #[test]
        fn parse_new_never_panics_nor_echoes_the_password(
            raw in "\\PC{0,160}",
            email in "\\PC{0,20}(@\\PC{0,20})?",
        ) {
            if let Err(errors) = Password::parse_new(raw.clone(), "password", &email) {
                prop_assert!(!errors.is_empty());
                if raw.chars().count() >= MIN_CHARS {
                    prop_assert!(errors.iter().all(|e| !e.message.contains(&raw)));
                }
            }
        }

        #[test]
        fn unchecked_never_panics(raw in "\\PC{0,1100}") {
            let password = Password::unchecked(raw.clone());
            prop_assert_eq!(password.is_plausible(), raw.chars().count() <= MAX_PLAUSIBLE_CHARS);
        }
    }
}
