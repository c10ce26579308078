//! chatd, the chat server daemon.

pub mod admin_http;
pub mod auth;
pub mod config;
pub mod datadir;
pub mod fingerprint;
pub mod logging;
pub mod metrics;
pub mod ratelimit;
pub mod store;
pub mod validate;
