//! Authentication: password hashing, signing keys and access tokens, refresh families and
//! random tokens, second factors, and the extractors that state each handler's policy
//! (`CurrentUser`, `RequireRole<Admin>`).

pub mod extract;
pub mod keys;
pub mod mfa;
pub mod password;
pub mod random;
pub mod tokens;
