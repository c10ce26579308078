//! chatd, the chat server daemon.

pub mod store;
pub mod validate;
