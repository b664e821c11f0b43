//! Authentication: password hashing, signing keys and access tokens, second factors, and
//! the extractors that state each handler's policy.

pub mod keys;
pub mod mfa;
pub mod password;
pub mod tokens;
