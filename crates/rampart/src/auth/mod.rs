//! Authentication: second factors (and, later, password hashing, tokens and extractors).

pub mod mfa;
