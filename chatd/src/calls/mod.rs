//! Calls (spec section 14): the state of every call and its transitions.
//!
//! - [`machine`]: the call state machine, sans-IO (pure transitions over a [`machine::CallBook`]);
//!   its module doc says how the state moves to the shared store for cluster mode.
//! - [`group`]: group calls (spec 14.7), the same sans-IO way, on the same book.
//! - [`service`]: the book on one node, its ring timer and the effects of transitions.
//! - [`turn`]: the ICE servers a client gets, with TURN REST API credentials.

pub mod group;
#[cfg(test)]
mod group_tests;
pub mod machine;
pub mod service;
#[cfg(test)]
mod tests;
pub mod turn;
