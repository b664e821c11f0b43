//! The one integration-test binary: each file is a feature, every test starts the real app
//! on 127.0.0.1:0 with a fresh database (SQLite in a temp dir, or a fresh PostgreSQL
//! database when `RAMPART_TEST_DATABASE` names a server).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod cli;
mod cors;
mod errors;
mod headers;
mod limits;
mod products;
mod timeouts;
