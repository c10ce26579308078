//! chatd, the chat server daemon: serves the chat/1 protocol over QUIC.
//!
//! # Layout
//! - [`server`]: QUIC endpoint, accept loop, connections, drain.
//! - [`conn`]: what a handler knows about its connection; [`handlers`]: one function per request
//!   kind.
//! - [`store`]: storage traits and backends (SQLite embedded default, MongoDB).
//! - [`delivery`]: fan-out of events to connections on every node, presence, membership cache.
//! - [`cluster`]: cluster mode over Redis (pub/sub between nodes, presence, registry and
//!   steering, read cache); [`resilience`]: breakers, backoff, store deadline.
//! - [`auth`], [`limits`], [`validate`]: security and input rules.
//! - [`ops`]: configuration, data directory, logging, metrics, admin HTTP; [`daemon`] assembles
//!   a whole server from them.
//! - [`cli`]: the subcommands of the `chatd` binary.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod conn;
pub mod daemon;
pub mod delivery;
pub mod error;
pub mod fingerprint;
pub mod handlers;
pub mod limits;
pub mod ops;
pub mod resilience;
pub mod server;
pub mod state;
pub mod store;
pub mod validate;
