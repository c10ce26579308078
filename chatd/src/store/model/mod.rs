//! Records and inputs of the storage traits. Wire types are used where the store keeps exactly
//! what is sent (messages, chat events); the rest are storage records with fields clients never
//! see (password hashes, flags).

mod accounts;
mod chats;
mod files;
mod messages;
mod operations;

pub use accounts::*;
pub use chats::*;
pub use files::*;
pub use messages::*;
pub use operations::*;
