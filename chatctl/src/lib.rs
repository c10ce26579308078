//! chatctl, the admin CLI for chatd (planned).
//!
//! The server side exists: the `Admin*` requests of `spec/chat.proto` (list, disable, enable and
//! delete users, reset passwords, set roles, list and revoke sessions) are implemented by chatd and
//! reachable through `chatproto::client`. The command-line front end is scheduled work; this crate
//! holds its place in the workspace.
