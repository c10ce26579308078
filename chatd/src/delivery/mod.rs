//! Delivery: getting events from the handlers that create them to every connection that should
//! see them, on this node and (in cluster mode) on the others.
//!
//! # Layout
//! - [`fanout`]: the one API handlers call; local hub first, then the cluster broker.
//! - [`hub`]: this node's connections and the per-chat sequencer.
//! - [`members`]: the chat membership cache fan-out reads.
//! - [`presence`]: who is online, told to those who may know.

pub mod fanout;
pub mod hub;
pub mod kick;
pub mod members;
pub mod presence;
