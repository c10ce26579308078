//! End-to-end test support: launchers for the real servers the suites run (chatd, Redis and
//! Redis Cluster, FerretDB, nginx), each on free loopback ports in a temporary directory and
//! stopped with its whole process group when dropped.
//!
//! # Layout
//! - `tools`, `ports`: where the binaries are; free loopback ports.
//! - `process`: process groups, the watchdog, bounded waits.
//! - `redis`, `ferretdb`, `nginx`, `chatd`: one launcher each.

pub mod chatd;
pub mod ferretdb;
pub mod nginx;
pub mod ports;
pub mod process;
pub mod redis;
pub mod tools;
