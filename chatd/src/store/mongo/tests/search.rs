//! Search through the token fallback (FerretDB has no text index).

use super::{group, text, users};
use crate::store::mongo::testserver;
use crate::store::{Actor, MessageStore, SearchQuery};

fn query(viewer: u64, text: &str, chats: Vec<(u64, u64)>) -> SearchQuery {
    SearchQuery {
        viewer,
        text: text.to_string(),
        chats,
        before: None,
        limit: 10,
        senders_blocked: Vec::new(),
    }
}

fn texts(found: &[chatproto::pb::Message]) -> Vec<&str> {
    found.iter().map(|m| m.text.as_str()).collect()
}

#[tokio::test]
async fn words_phrases_prefixes_and_folding() {
    let store = testserver::store().await;
    let ids = users(&store, &["ann", "bob"]).await;
    let chat = group(&store, ids[0], &[ids[1]]).await;
    for (n, body) in [
        "Hello World",
        "world peace",
        "say hello to the worldwide web",
        "Café au lait",
        "send an e-mail",
    ]
    .iter()
    .enumerate()
    {
        store
            .append_message(text(chat, ids[0], &format!("k{n}"), body, 10 + n as i64))
            .await
            .unwrap();
    }
    let all = vec![(chat, u64::MAX)];
    let found = store
        .search(query(ids[1], "hello wor", all.clone()))
        .await
        .unwrap();
    assert_eq!(
        texts(&found),
        ["say hello to the worldwide web", "Hello World"]
    );
    let found = store
        .search(query(ids[1], "cafe", all.clone()))
        .await
        .unwrap();
    assert_eq!(texts(&found), ["Café au lait"]);
    let found = store
        .search(query(ids[1], "E-MAIL", all.clone()))
        .await
        .unwrap();
    assert_eq!(texts(&found), ["send an e-mail"]);
    // "mail e" is not the phrase "e mail".
    assert!(
        store
            .search(query(ids[1], "mail-e", all.clone()))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .search(query(ids[1], "-- **", all.clone()))
            .await
            .unwrap()
            .is_empty()
    );
    // Limited to the readable range.
    let found = store
        .search(query(ids[1], "world", vec![(chat, 2)]))
        .await
        .unwrap();
    assert_eq!(texts(&found), ["Hello World"]);
}

#[tokio::test]
async fn deleted_edited_and_hidden_content_is_not_found() {
    let store = testserver::store().await;
    let ids = users(&store, &["ann", "bob"]).await;
    let chat = group(&store, ids[0], &[ids[1]]).await;
    let gone = store
        .append_message(text(chat, ids[0], "a", "secret plans", 10))
        .await
        .unwrap()
        .message;
    let edited = store
        .append_message(text(chat, ids[0], "b", "old words", 11))
        .await
        .unwrap()
        .message;
    let hidden = store
        .append_message(text(chat, ids[0], "c", "hidden gem", 12))
        .await
        .unwrap()
        .message;
    store
        .delete_message(chat, gone.seq, Actor::unjudged(ids[0]), 20)
        .await
        .unwrap();
    store
        .edit_message(chat, edited.seq, Actor::unjudged(ids[0]), "new words", 21)
        .await
        .unwrap();
    store.hide_message(chat, hidden.seq, ids[1]).await.unwrap();
    let all = vec![(chat, u64::MAX)];
    assert!(
        store
            .search(query(ids[1], "secret", all.clone()))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .search(query(ids[1], "old", all.clone()))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        texts(
            &store
                .search(query(ids[1], "new", all.clone()))
                .await
                .unwrap()
        ),
        ["new words"]
    );
    assert!(
        store
            .search(query(ids[1], "gem", all.clone()))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        texts(&store.search(query(ids[0], "gem", all)).await.unwrap()),
        ["hidden gem"]
    );
}

#[tokio::test]
async fn pages_run_newest_first_across_chats() {
    let store = testserver::store().await;
    let ids = users(&store, &["ann"]).await;
    let one = group(&store, ids[0], &[]).await;
    let two = group(&store, ids[0], &[]).await;
    // Same time in both chats: the chat id, then the seq, break the tie.
    for n in 0..3 {
        store
            .append_message(text(
                one,
                ids[0],
                &format!("a{n}"),
                &format!("note {n}"),
                100,
            ))
            .await
            .unwrap();
        store
            .append_message(text(
                two,
                ids[0],
                &format!("b{n}"),
                &format!("note {n}"),
                100 + n,
            ))
            .await
            .unwrap();
    }
    let chats = vec![(one, u64::MAX), (two, u64::MAX)];
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = SearchQuery {
            viewer: ids[0],
            text: "note".into(),
            chats: chats.clone(),
            before,
            limit: 2,
            senders_blocked: Vec::new(),
        };
        let found = store.search(page).await.unwrap();
        if found.is_empty() {
            break;
        }
        let last = found.last().unwrap();
        before = Some((last.sent_at_ms, last.chat_id, last.seq));
        seen.extend(found.iter().map(|m| (m.sent_at_ms, m.chat_id, m.seq)));
    }
    let mut expected = seen.clone();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, expected);
    assert_eq!(seen.len(), 6);
    assert_eq!(seen[0], (102, two, 4));
}
