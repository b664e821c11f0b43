//! Rampart: a secure-by-default HTTP API server. The binary (`main.rs`) is a thin CLI over
//! this library; the integration tests drive the same [`app::build`] and [`server`].

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod mail;
pub mod rate_limits;
pub mod security_events;
pub mod server;
pub mod setup;
pub mod state;
pub mod store;
pub mod telemetry;
