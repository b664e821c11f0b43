//! Authentication: password hashing, signing keys and access tokens, refresh families and
//! random tokens, second factors, and the extractors that state each handler's policy
//! (`CurrentUser`, `RequireRole<Admin>`).
//!
//! The identity services live here too, so that every face of the server (the JSON API,
//! the coming browser pages) runs the same policy: [`login`] (credentials, lockout,
//! session families), [`step_up`] (the second factor), [`session`] (refresh, logout), [`registration`],
//! [`recovery`] and [`account`]. Each takes a parsed command and the current time and
//! returns a domain outcome; the caller only maps it to its own responses.
//!
//! ```text
//! let outcome = auth::login::login(&state, &ctx, &client, Login::parse(email, pw)?, now).await;
//! ```

pub mod account;
pub mod extract;
pub mod keys;
pub mod login;
pub mod mfa;
pub mod password;
pub mod random;
pub mod recovery;
pub mod registration;
pub mod revocation;
pub mod session;
pub mod step_up;
pub mod token_cache;
pub mod tokens;

#[cfg(test)]
pub(crate) mod testing;

use crate::error::AppError;

impl From<password::HashError> for AppError {
    fn from(e: password::HashError) -> Self {
        match e {
            password::HashError::Busy { retry_after_secs } => AppError::Unavailable {
                retry_after: retry_after_secs,
            },
            password::HashError::Internal(e) => AppError::Internal(e),
        }
    }
}
