//! chatd, the chat server daemon: serves the chat/1 protocol over QUIC.
//!
//! The public face is small, what the binary and the end-to-end suites need: [`daemon::Daemon`]
//! (a whole server), [`ops::config`], [`ops::datadir`], [`ops::logging`] and the [`cli`]
//! subcommands. Everything else is crate-private, so the compiler reports what nothing uses.
//! The `testing` feature adds [`testing`]: the store conformance suite and the hooks the suites
//! use to look inside a running server.
//!
//! # Layout
//! - `server`: QUIC endpoint, accept loop, connections, drain.
//! - `conn`: what a handler knows about its connection; `handlers`: one function per request
//!   kind.
//! - `store`: storage traits and backends (SQLite embedded default, MongoDB).
//! - `files`: file upload and download, their bytes (filesystem or GridFS), thumbnails,
//!   signed HTTPS download URLs and the collector of unreferenced files.
//! - `calls`: the call state machine (sans-IO) of call signaling.
//! - `delivery`: fan-out of events to connections on every node, presence, membership cache.
//! - `notify`: notifications where things happen; `outbox`: email digests and webhook calls
//!   from them, through an outbox in the store.
//! - `cluster`: cluster mode over Redis (pub/sub between nodes, presence, registry and
//!   steering, read cache); `resilience`: breakers, backoff, store deadline.
//! - `auth`, `limits`, `validate`: security and input rules; `access`: who may connect (bans,
//!   allow-list mode), decided when a connection arrives.
//! - `backups`: a node's one backup at a time and its copy of the database.
//! - [`ops`]: configuration, data directory, logging, metrics, admin HTTP; [`daemon`] assembles
//!   a whole server from them.
//! - [`cli`]: the subcommands of the `chatd` binary.

// Server code never panics on a value: no unwrap/expect, no indexing that may be out of range
// (tests may; the conformance suite is test code shipped for the `testing` feature).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod access;
mod atrest;
mod auth;
mod backups;
mod calls;
pub mod cli;
mod clock;
mod cluster;
mod conn;
pub mod daemon;
mod delivery;
mod error;
mod files;
mod handlers;
mod limits;
mod notify;
pub mod ops;
mod outbox;
mod places;
mod rate;
mod resilience;
mod server;
mod state;
mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod validate;
