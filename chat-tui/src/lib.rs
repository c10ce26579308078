//! chat-tui, the terminal client (planned).
//!
//! It will be a ratatui application over `chatproto::client` (model, action, pure update, render
//! by reference; snapshot tests of rendered frames). This crate holds its place in the workspace.
