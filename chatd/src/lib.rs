//! chatd, the chat server daemon.

pub mod store;
