//! End-to-end test support.
//!
//! # Layout
//! - [`server`]: an in-process chatd with its own temporary data directory.
//! - [`ports`]: free loopback ports.
//! - [`tools`]: locating external servers (Redis, nginx, FerretDB) and the chatd binary.

pub mod ports;
pub mod server;
pub mod tools;
