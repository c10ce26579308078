//! Operating a chatd process: configuration, the data directory, logging, metrics and the admin
//! HTTP server (metrics, health, readiness).
//!
//! # Layout
//! - [`config`]: flags, environment and TOML merged and validated into a `Config`.
//! - [`datadir`]: the data directory (database, TLS pair, key files).
//! - [`logging`]: log output.
//! - [`metrics`]: the Prometheus metrics; [`admin_http`]: the HTTP server that exposes them
//!   (and the signed file URLs), each connection bounded by `http_conn`;
//!   [`recent`]: the per-second ring behind the counts of the last minute.
//! - `file_store`: the file store, encrypted with the master keys when they are configured;
//!   `master_key_files`: the master key files a rotation rewrites.
//! - [`node`]: this node as admins see and steer it (uptime, address, drain).

pub(crate) mod admin_http;
pub mod config;
pub mod datadir;
pub(crate) mod file_store;
pub(crate) mod http_conn;
pub mod logging;
pub(crate) mod master_key_files;
pub(crate) mod metrics;
pub mod node;
pub(crate) mod recent;
