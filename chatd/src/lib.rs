//! chatd, the chat server daemon.

pub mod auth;
pub mod config;
pub mod datadir;
pub mod fingerprint;
pub mod ratelimit;
pub mod store;
pub mod validate;
