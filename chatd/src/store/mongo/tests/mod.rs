//! Tests of what is specific to the MongoDB backend, against a real FerretDB: the pending-slot
//! protocol (repair after a crash at each step, cancellation of a duplicate send, concurrency),
//! the search fallback, connection behaviour. The behaviour every backend shares is covered by the
//! conformance suite.

mod appends;
mod basics;
mod broadcast;
mod pending;
mod sealing;
mod search;

// The backend-agnostic suite, each case on a fresh database of this process's FerretDB.
crate::store::conformance::store_conformance!(conformance, async {
    (crate::store::mongo::testserver::store().await, ())
});

// The same suite with message texts and file metadata sealed by a master key.
crate::store::conformance::store_conformance!(sealed: sealed_conformance, async {
    let mut store = crate::store::mongo::testserver::store().await;
    let keys = crate::atrest::MasterKeys::new(&[5; 32], &[]);
    store
        .seal_fields(Some(std::sync::Arc::new(keys)))
        .await
        .expect("seal fields");
    (store, ())
});

use chatproto::pb;

use super::MongoStore;
use crate::store::{ChatStore, NewGroup, NewMessage, UserStore};

/// Creates users named `names` and returns their ids.
pub(super) async fn users(store: &MongoStore, names: &[&str]) -> Vec<u64> {
    let mut ids = Vec::new();
    for name in names {
        let user = store
            .create_user(crate::store::NewUser {
                username: (*name).to_string(),
                email: format!("{name}@example.com"),
                password_hash: "$argon2id$test".to_string(),
                role: pb::Role::User,
                now_ms: 1_000,
            })
            .await
            .expect("create user");
        ids.push(user.id);
    }
    ids
}

/// A group owned by `owner` with `members`.
pub(super) async fn group(store: &MongoStore, owner: u64, members: &[u64]) -> u64 {
    let (chat, _) = store
        .create_group(NewGroup {
            kind: pb::ChatKind::Group,
            title: "team".to_string(),
            description: String::new(),
            owner,
            member_ids: members.to_vec(),
            now_ms: 2_000,
        })
        .await
        .expect("create group");
    chat.id
}

/// A text message.
pub(super) fn text(
    chat_id: u64,
    sender_id: u64,
    client_msg_id: &str,
    text: &str,
    now_ms: i64,
) -> NewMessage {
    NewMessage {
        chat_id,
        sender_id,
        client_msg_id: client_msg_id.to_string(),
        kind: pb::MessageKind::Text,
        text: text.to_string(),
        file_id: String::new(),
        attachment: None,
        reply_to_seq: 0,
        forwarded_from: None,
        mention_ids: Vec::new(),
        now_ms,
        members_seq: None,
    }
}
