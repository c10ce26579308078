//! End-to-end test support: launchers for the real servers the suites run (chatd, Redis and
//! Redis Cluster, FerretDB, nginx), each on free loopback ports in a temporary directory and
//! stopped with its whole process group when dropped.
//!
//! # Layout
//! - `tools`, `ports`: where the binaries are; free loopback ports.
//! - `process`: process groups, the watchdog, bounded waits.
//! - `redis`, `ferretdb`, `nginx`, `chatd`: one launcher each.
//! - `cluster`: several chatd processes on one FerretDB and one Redis Cluster.
//! - `clients`: SDK clients that collect their events, for assertions with timeouts.
//! - `server`: an in-process chatd, for tests that need no real process.

pub mod chatd;
pub mod clients;
pub mod cluster;
pub mod ferretdb;
pub mod nginx;
pub mod ports;
pub mod process;
pub mod redis;
pub mod server;
pub mod tools;
