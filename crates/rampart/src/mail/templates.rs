//! The texts of every mail the server sends, in one place: the services choose a template
//! and hand the [`Email`] to the [`Mailer`](super::Mailer).
//!
//! ```
//! let mail = rampart::mail::templates::password_reset(
//!     "http://127.0.0.1:8080", "ada@example.com", "Ada", "TOKEN",
//! );
//! assert!(mail.text.contains("http://127.0.0.1:8080/reset-password?token=TOKEN"));
//! ```
//!
//! # Security
//! Links carry one-time tokens: the resulting [`Email`]'s `Debug` redacts the body, and
//! the tokens are made by `auth::random`, so they are URL-safe and need no escaping.

use super::Email;

/// `{public_url}{path}?token={token}`: the link a mail carries.
pub fn link(public_url: &str, path: &str, token: &str) -> String {
    format!("{public_url}{path}?token={token}")
}

/// The link that confirms a new account's address (valid 24 hours).
pub fn verify_email(public_url: &str, to: &str, name: &str, token: &str) -> Email {
    Email {
        to: to.to_owned(),
        subject: "Confirm your email address".into(),
        text: format!(
            "Hello {name},\n\nconfirm your address for Rampart by opening this link within 24 hours:\n\n{}\n\nIf you did not sign up, ignore this mail.\n",
            link(public_url, "/verify-email", token)
        ),
    }
}

/// The notice to the owner of an address someone tried to register again.
pub fn already_registered(public_url: &str, to: &str) -> Email {
    Email {
        to: to.to_owned(),
        subject: "Someone tried to sign up with your address".into(),
        text: format!(
            "Hello,\n\nsomeone tried to create a Rampart account with this address, which already has one.\nIf it was you, sign in, or reset your password here: {public_url}/reset-password\nOtherwise you can ignore this mail.\n"
        ),
    }
}

/// The password reset link (valid 30 minutes).
pub fn password_reset(public_url: &str, to: &str, name: &str, token: &str) -> Email {
    Email {
        to: to.to_owned(),
        subject: "Reset your password".into(),
        text: format!(
            "Hello {name},\n\nreset your Rampart password within 30 minutes with this link:\n\n{}\n\nIf you did not ask for this, ignore this mail; your password is unchanged.\n",
            link(public_url, "/reset-password", token)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://shop.example";

    #[test]
    fn each_link_mail_carries_its_token_on_its_own_path() {
        let verify = verify_email(URL, "ada@example.com", "Ada", "T1");
        assert_eq!(verify.to, "ada@example.com");
        assert!(
            verify
                .text
                .contains("https://shop.example/verify-email?token=T1\n")
        );
        assert!(verify.text.starts_with("Hello Ada,"));
        let reset = password_reset(URL, "ada@example.com", "Ada", "T2");
        assert!(
            reset
                .text
                .contains("https://shop.example/reset-password?token=T2\n")
        );
        assert!(!reset.text.contains("verify-email"));
    }

    #[test]
    fn the_already_registered_notice_carries_no_token() {
        let notice = already_registered(URL, "ada@example.com");
        assert!(!notice.text.contains("token="));
        assert!(notice.text.contains("https://shop.example/reset-password"));
        assert!(!notice.subject.chars().any(char::is_control));
    }
}
