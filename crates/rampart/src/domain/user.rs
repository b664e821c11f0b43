//! Accounts: email addresses, names, roles, the user as stored.

use uuid::Uuid;

use super::FieldError;

/// An email address that passed syntax checks, stored lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parse `raw` (surrounding whitespace ignored) for the field `field`.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new(field, "must be a valid email address");
        let email = raw.trim().to_lowercase();
        if email.is_empty() || email.len() > 254 {
            return Err(invalid());
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let domain_ok = domain.contains('.')
            && domain.len() <= 253
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if local_ok && domain_ok {
            Ok(Self(email))
        } else {
            Err(invalid())
        }
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`.
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }

    /// The part after `@` (for logs that must not hold the whole address).
    pub fn domain(&self) -> &str {
        self.0.rsplit('@').next().unwrap_or_default()
    }
}

/// A display name: 1–100 characters, no control characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Parse a `name` field.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let name = raw.trim();
        let len = name.chars().count();
        if !(1..=100).contains(&len) {
            return Err(FieldError::new("name", "must be 1 to 100 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(FieldError::new(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An ordinary account.
    User,
    /// May use the admin API.
    Admin,
}

impl Role {
    /// The stored and published name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }

    /// Parse a stored or requested role.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "user" => Some(Self::User),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// An account as stored (the password hash and MFA secrets stay in the store layer's
/// dedicated queries and never reach this type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its id.
    pub id: Uuid,
    /// Lower-cased address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Sanitized HTML.
    pub bio: String,
    /// Role.
    pub role: Role,
    /// Whether the account may sign in.
    pub active: bool,
    /// Whether the address was confirmed.
    pub email_verified: bool,
    /// Whether TOTP is required at login.
    pub mfa_enabled: bool,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_email_is_lower_cased_and_trimmed() {
        let e = EmailAddress::parse("  Alice.Smith@Example.COM ", "email").unwrap();
        assert_eq!(e.as_str(), "alice.smith@example.com");
        assert_eq!(e.local_part(), "alice.smith");
        assert_eq!(e.domain(), "example.com");
    }

    #[test]
    fn malformed_emails_are_rejected_without_echo() {
        for bad in [
            "",
            "no-at",
            "a@b",
            "@example.com",
            "a@.com",
            "a b@example.com",
            "a@exa mple.com",
            "a..b@example.com",
            "a@example.com\r\nBcc: x@y.z",
            "\"quoted\"@example.com",
        ] {
            let err = EmailAddress::parse(bad, "email").unwrap_err();
            assert_eq!(err.field, "email");
            assert!(!err.message.contains(bad) || bad.is_empty());
        }
    }

    #[test]
    fn a_name_of_zero_or_101_characters_is_rejected() {
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"n".repeat(101)).is_err());
        assert!(DisplayName::parse("Ada\u{0}").is_err());
        assert_eq!(DisplayName::parse(" Ada ").unwrap().as_str(), "Ada");
    }

    proptest! {
        #[test]
        fn email_parse_never_panics(s in ".{0,300}") {
            let _ = EmailAddress::parse(&s, "email");
        }
    }
}
