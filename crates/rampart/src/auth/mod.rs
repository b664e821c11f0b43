//! Authentication: password hashing, and (to come) keys and tokens, refresh families, MFA
//! and the `CurrentUser` / `RequireRole` extractors.

pub mod password;
