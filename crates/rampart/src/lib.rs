//! Rampart: a secure-by-default HTTP API server. The binary (`main.rs`) is a thin CLI over
//! this library; `rampart serve` and the integration tests start the same
//! [`application::Application`], which assembles [`app::build`]'s pipeline and [`server`].

pub mod access_log;
pub mod admin;
pub mod app;
pub mod application;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod commerce;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod pages;
pub mod private_fs;
pub mod rate_limits;
pub mod redirect;
pub mod security_events;
pub mod server;
pub mod setup;
pub mod state;
pub mod store;
pub mod telemetry;

#[cfg(test)]
pub(crate) mod testing;
