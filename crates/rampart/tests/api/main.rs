//! The one integration-test binary: each file is a feature, every test starts the real app
//! on 127.0.0.1:0 with a fresh database (SQLite in a temp dir, or a fresh PostgreSQL
//! database when `RAMPART_TEST_DATABASE` names a server).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access_log;
mod accounts;
mod harness;
mod logs;

mod admin;
mod assembly;
mod audit;
mod avatars;
mod browser;
mod catalog_admin;
mod cli;
mod cors;
mod crash;
mod deploy;
mod errors;
mod events;
mod headers;
mod http2;
mod identity;
mod keys;
mod limits;
mod metrics;
mod mfa;
mod openapi;
mod order_batches;
mod orders;
mod outage;
mod pages;
mod products;
mod rate_limits;
mod redirect;
mod redis;
mod timeouts;
mod tokens;
