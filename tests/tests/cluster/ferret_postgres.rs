//! The MongoDB store on FerretDB's PostgreSQL handler, the configuration the cluster is
//! benchmarked on, where FerretDB has limits of its own.

use chatd::testing::{
    ChatStore as _, MessageStore as _, MongoOptions, MongoStore, NewGroup, NewMessage, NewUser,
    UserStore as _,
};
use chatproto::pb;
use tests::ferretdb::FerretDb;

/// FerretDB 1.24 holds a PostgreSQL connection for each statement of an `update` command until
/// the command ends, from a pool of 50. A send round over more chats than that moves every
/// chat's head (and later clears every claim) with one statement each: sent as one command, it
/// waited for connections only its own end would free, and FerretDB stopped answering anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_round_over_many_chats_does_not_stall_ferretdb_on_postgresql() {
    const CHATS: usize = 80;
    let (_pg, db) = tokio::task::spawn_blocking(FerretDb::start_on_postgres)
        .await
        .expect("start PostgreSQL and FerretDB on it");
    let store = MongoStore::connect(
        &db.uri_for(&FerretDb::fresh_database("rounds")),
        MongoOptions::default(),
    )
    .await
    .expect("connect");
    let mut users = Vec::new();
    for name in ["ann", "bob"] {
        let user = store
            .create_user(NewUser {
                username: name.into(),
                email: format!("{name}@example.test"),
                password_hash: "$argon2id$x".into(),
                role: pb::Role::User,
                now_ms: 1,
            })
            .await
            .expect("user");
        users.push(user.id);
    }
    let mut chats = Vec::new();
    for n in 0..CHATS {
        let (chat, _) = store
            .create_group(NewGroup {
                kind: pb::ChatKind::Group,
                title: format!("room {n}"),
                description: String::new(),
                owner: users[0],
                member_ids: vec![users[1]],
                now_ms: 1,
            })
            .await
            .expect("group");
        chats.push(chat.id);
    }
    // All at once: the sends after the first wait for its round and go in the next, together.
    let sends = chats.iter().map(|&chat_id| {
        store.append_message(NewMessage {
            chat_id,
            sender_id: users[0],
            client_msg_id: format!("m{chat_id}"),
            kind: pb::MessageKind::Text,
            text: "hello".into(),
            file_id: String::new(),
            attachment: None,
            reply_to_seq: 0,
            forwarded_from: None,
            mention_ids: Vec::new(),
            now_ms: 2,
            members_seq: None,
        })
    });
    let outcomes = futures_util::future::join_all(sends).await;
    for (chat_id, outcome) in chats.iter().zip(outcomes) {
        let sent = outcome.unwrap_or_else(|e| panic!("send to chat {chat_id}: {e}"));
        assert_eq!(sent.message.seq, 2, "after the chat's creation");
    }
    // And FerretDB still answers (the claims' clean-up ran after the round).
    let chat = store
        .chat(chats[CHATS - 1])
        .await
        .expect("read after")
        .expect("chat");
    assert_eq!(chat.last_seq, 2);
}
