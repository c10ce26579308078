//! Calls (spec section 14): the state of every call and its transitions.
//!
//! - [`machine`]: the call state machine, sans-IO (pure transitions over a [`machine::CallBook`]);
//!   its module doc says how the state moves to the shared store for cluster mode.
//! - [`turn`]: the ICE servers a client gets, with TURN REST API credentials.

pub mod machine;
#[cfg(test)]
mod tests;
pub mod turn;
