//! chatd, the chat server daemon: serves the chat/1 protocol over QUIC.
//!
//! # Layout
//! - [`server`]: QUIC endpoint, accept loop, connections, drain.
//! - [`handlers`]: one function per request kind.
//! - [`store`]: storage traits and backends (SQLite embedded default).
//! - [`hub`]: in-process fan-out of events to connections; [`presence`]; [`members`] cache.
//! - [`auth`], [`ratelimit`], [`validate`]: security and input rules.
//! - [`config`], [`datadir`], [`logging`], [`metrics`], [`admin_http`]: operations.

pub mod error;
pub mod handlers;
pub mod hub;
pub mod members;
pub mod presence;
pub mod server;
pub mod state;
pub mod store;
