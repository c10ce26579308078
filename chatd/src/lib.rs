//! chatd, the chat server daemon.

pub mod ratelimit;
pub mod store;
pub mod validate;
