//! chatd, the chat server daemon: serves the chat/1 protocol over QUIC.
//!
//! # Layout
//! - [`server`]: QUIC endpoint, accept loop, connections, drain.
//! - [`handlers`]: one function per request kind.
//! - [`store`]: storage traits and backends (SQLite embedded default).
//! - [`hub`]: in-process fan-out of events to connections; [`fanout`]: the API handlers use to
//!   reach connections on every node; [`presence`]; [`members`] cache.
//! - [`cluster`]: cluster mode over Redis (pub/sub between nodes, presence, registry and
//!   steering, shared rate limits, read cache); [`resilience`]: breakers, backoff, store deadline.
//! - [`auth`], [`ratelimit`], [`limits`], [`validate`]: security and input rules.
//! - [`config`], [`datadir`], [`daemon`], [`logging`], [`metrics`], [`admin_http`]: operations.
//! - [`cli`]: the subcommands of the `chatd` binary.

pub mod admin_http;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod datadir;
pub mod error;
pub mod fanout;
pub mod fingerprint;
pub mod handlers;
pub mod hub;
pub mod limits;
pub mod logging;
pub mod members;
pub mod metrics;
pub mod presence;
pub mod ratelimit;
pub mod resilience;
pub mod server;
pub mod state;
pub mod store;
pub mod validate;
