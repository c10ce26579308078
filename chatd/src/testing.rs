//! What the end-to-end suites, the benches and the fuzz targets reach inside chatd (the
//! `testing` feature): the store conformance suite and the store stack of a node to run it
//! through, the decoders of the paging cursors clients send back, the TURN credentials of a user at a
//! given expiry (to hand coturn expired ones), and delivery's pieces for the
//! benches ([`delivery`]). A running server's hooks are methods of
//! [`Daemon`](crate::daemon::Daemon) under the same feature.

pub use crate::auth::master_key::ADOPT_LEAD as MASTER_KEY_ADOPT_LEAD;
pub use crate::calls::turn::{TurnSecret, credentials as turn_credentials};
pub use crate::cluster::cache::{CacheTtls, CachedStore, codec};
pub use crate::cluster::redis::{Redis, RedisTarget};
pub use crate::cluster::routing::{FORWARD_MARGIN, owner as chat_owner};
pub use crate::delivery::outbox::CONNECTION_QUEUE;
pub use crate::error::ApiError;
pub use crate::files::testdata::{png_bomb, png_image};
pub use crate::handlers::cursor::{ChatListCursor, EditsCursor, SearchCursor};
pub use crate::handlers::users::cursor_username;
pub use crate::limits::keyed::KeyedLimiter;
pub use crate::ops::metrics::Metrics;
pub use crate::rate::Rate;
pub use crate::resilience::guarded_store::GuardedStore;
pub use crate::state::now_ms;
pub use crate::store::faults::Fail;
pub use crate::store::mongo::{MongoOptions, MongoStore};
pub use crate::store::sqlite::SqliteStore;
pub use crate::store::{
    Actor, ChatStore, KeyStore, MessageStore, NewGroup, NewMessage, NewSession, NewUser,
    NotificationQuery, NotificationStore, OutboxStore, ProfilePatch, ReactionChange, RelationStore,
    SessionStore, Store, UserStore, conformance,
};

/// Delivery's pieces, as the criterion benches (`chatd/benches/delivery.rs`) drive them.
pub mod delivery {
    pub use crate::cluster::wire::{Body, ChatFrame, Envelope};
    pub use crate::delivery::Delivery;
    pub use crate::delivery::kick::Kick;
    pub use crate::delivery::members::{Audience, ChatMembers, MemberCache};
    pub use crate::delivery::outbox::Outbox;
    pub use crate::delivery::redact::{ChatEventFrames, Viewer};
    pub use crate::delivery::registry::ConnHandle;
    pub use crate::delivery::relay::InProcessRelay;
}

/// Every document of `collection` in `store`'s database as raw BSON bytes: what a dump of it
/// holds (binary fields as their bytes, strings as UTF-8), for suites that look for plaintext.
pub async fn raw_documents(store: &MongoStore, collection: &str) -> Result<Vec<Vec<u8>>, String> {
    use futures_util::TryStreamExt as _;
    let docs: Vec<mongodb::bson::RawDocumentBuf> = store
        .database()
        .collection::<mongodb::bson::RawDocumentBuf>(collection)
        .find(mongodb::bson::doc! {})
        .await
        .map_err(|e| format!("find in {collection}: {e}"))?
        .try_collect()
        .await
        .map_err(|e| format!("read {collection}: {e}"))?;
    Ok(docs.into_iter().map(|d| d.into_bytes()).collect())
}
