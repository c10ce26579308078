//! End-to-end test support: real chatd servers (in-process or as processes), real Redis and
//! MongoDB-wire servers, and SDK clients connected to them.
//!
//! # Layout
//! - [`server`]: an in-process chatd per test.
//! - [`client`]: SDK clients, registration and event helpers.
//! - [`tools`]: where the external binaries are; [`ports`]: free loopback ports.

pub mod client;
pub mod ports;
pub mod raw;
pub mod server;
pub mod tools;
