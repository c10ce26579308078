//! End-to-end test support: real chatd servers (in-process or as processes), launchers for the
//! real servers the suites run (Redis and Redis Cluster, FerretDB, nginx, coturn, Mailpit), and SDK clients.
//! Every server runs on free loopback ports in a temporary directory and is stopped with its
//! whole process group when dropped.
//!
//! # Layout
//! - [`server`]: an in-process chatd per test; [`chatd`]: chatd as a process.
//! - [`client`]: SDK clients, registration and event helpers; [`calls`]: group call requests; [`raw`]: a bare connection, and
//!   a raw session that signs in and collects events without the SDK's redirects and retries;
//!   [`files`]: file contents, transfers, upload streams, an HTTPS client, process memory;
//!   [`keys`]: encryption key files.
//! - [`redis`], [`ferretdb`], [`postgres`], [`nginx`], [`turn`], [`mailpit`]: one launcher
//!   each; [`webhook`]: a webhook receiver that checks signatures.
//! - [`cluster`]: several chatd processes on one FerretDB and one Redis Cluster; [`users`]:
//!   SDK clients that collect their events, for assertions with timeouts on cluster services;
//!   [`traffic`]: steady senders and the exactly-once check of every member's view.
//! - [`authenticator`]: TOTP codes from the URI chatd hands out, as an authenticator app.
//! - [`tmux`]: a terminal program (chat-tui) driven through a private tmux server.
//! - [`tools`], [`ports`], [`process`]: binaries, free ports, process groups and bounded waits.
//!
//! The suites are three test binaries: `tests/api` (in-process chatd), `tests/processes` (the
//! shipped binaries, nginx) and `tests/cluster` (FerretDB + Redis Cluster, and in-process nodes
//! sharing one SQLite store on one Redis or Redis Cluster). Each binary links all
//! of chatd, so a new suite is a module in one of them, not a new binary.

pub mod authenticator;
pub mod calls;
pub mod chatd;
pub mod client;
pub mod cluster;
pub mod ferretdb;
pub mod files;
pub mod keys;
pub mod mailpit;
pub mod nginx;
pub mod ports;
pub mod postgres;
mod postgres_dir;
pub mod process;
pub mod raw;
pub mod redis;
pub mod relay;
pub mod server;
pub mod tmux;
pub mod tools;
pub mod traffic;
pub mod turn;
pub mod users;
pub mod webhook;
