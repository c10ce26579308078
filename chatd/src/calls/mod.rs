//! Calls (spec section 14): the state of every call and its transitions.
//!
//! - [`machine`]: the call state machine, sans-IO (pure transitions over a [`machine::CallBook`],
//!   which has one encoding so that a cluster's nodes share it).
//! - [`group`]: group calls (spec 14.7), the same sans-IO way, on the same book.
//! - [`home`]: where the book lives: this node's memory, or the cluster's shared store.
//! - [`service`]: the book of a node, its ring timer (and a cluster's sweep for gone nodes) and
//!   the effects of transitions, delivered to whichever node each connection is on.
//! - [`turn`]: the ICE servers a client gets, with TURN REST API credentials.
//! - [`turn_db`]: coturn's user database, where the TURN secrets that verify are published.

pub mod group;
#[cfg(test)]
mod group_tests;
pub mod home;
pub mod machine;
pub mod service;
#[cfg(test)]
mod tests;
pub mod turn;
pub mod turn_db;
