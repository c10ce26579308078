//! Answers bounded by the frame (spec 9.8): every paged request over items of the largest size
//! answers pages that fit, short of `limit` where the frame ends, and paging through them sees
//! every item exactly once; the SDK's catch-up over such a range completes.

use std::collections::BTreeSet;

use chatd::testing::{NewUser, ProfilePatch};
use chatproto::client::{HistoryRange, UnknownChatPolicy};
use chatproto::pb;

use crate::support::*;

/// Longest message text, in characters (`Limits.max_text_chars`).
const MAX_TEXT: usize = 4096;
/// A letter of four UTF-8 bytes (Gothic hwair).
const FOUR: char = '\u{10348}';

/// A text of exactly `MAX_TEXT` characters starting with the word `head`, filled with `fill`.
fn full_text(head: &str, fill: char) -> String {
    let mut text = format!("{head} ");
    let pad = MAX_TEXT - text.chars().count();
    text.extend(std::iter::repeat_n(fill, pad));
    text
}

fn repeat(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

/// Page sizes seen while paging: each page must be non-empty while items remain, and at least
/// one must have stopped short of `limit` for the test to prove anything.
#[track_caller]
fn assert_cut_by_size(pages: &[usize], limit: usize) {
    assert!(pages.iter().all(|n| *n > 0), "an empty page: {pages:?}");
    assert!(
        pages.iter().any(|n| *n < limit) && pages.len() > 1,
        "no page was cut by size: {pages:?}"
    );
}

#[tokio::test]
async fn message_pages_of_the_largest_messages_fit_and_cover_the_chat() {
    let server = start().await;
    let (alice, bob, chat) = pair(&server).await;
    // 70 messages of 4096 ASCII characters and 30 of 4096 four-byte characters: 780 KB of text.
    let mut seqs = Vec::new();
    for i in 0..100 {
        let fill = if i < 70 { 'a' } else { FOUR };
        seqs.push(
            alice
                .send(chat, &full_text(&format!("big{i}"), fill))
                .await
                .seq,
        );
    }
    let last = *seqs.last().expect("sent");

    // get_chat_events: the SDK's page of 100 and the largest, 500.
    for limit in [0, 100, 500] {
        let (mut after, mut pages, mut seen) = (0, Vec::new(), Vec::new());
        loop {
            let page = bob
                .client
                .get_chat_events(pb::GetChatEvents {
                    chat_id: chat,
                    after_seq: after,
                    limit,
                })
                .await
                .expect("events page");
            pages.push(page.events.len());
            seen.extend(page.events.iter().map(|e| e.seq));
            after = page.events.last().map_or(after, |e| e.seq);
            if !page.more {
                break;
            }
        }
        assert_eq!(seen, (1..=last).collect::<Vec<_>>(), "limit {limit}");
        assert_cut_by_size(&pages, if limit == 0 { 100 } else { limit as usize });
    }

    // get_history, backwards from the latest, then forwards from the start.
    let (mut before, mut pages, mut seen) = (0, Vec::new(), BTreeSet::new());
    loop {
        let page = bob
            .client
            .get_history(pb::GetHistory {
                chat_id: chat,
                before_seq: before,
                limit: 100,
                ..Default::default()
            })
            .await
            .expect("history page");
        let Some(first) = page.messages.first() else {
            break;
        };
        // The page nearest to the start point: the newest below `before`.
        if before == 0 {
            assert_eq!(page.messages.last().map(|m| m.seq), Some(last));
        }
        before = first.seq;
        pages.push(page.messages.len());
        for m in &page.messages {
            assert!(seen.insert(m.seq), "seq {} twice", m.seq);
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), seqs);
    assert_cut_by_size(&pages, 100);
    let (mut after, mut pages, mut seen) = (1, Vec::new(), Vec::new());
    loop {
        let page = bob
            .client
            .get_history(pb::GetHistory {
                chat_id: chat,
                after_seq: after,
                limit: 100,
                ..Default::default()
            })
            .await
            .expect("history page");
        let Some(last) = page.messages.last() else {
            break;
        };
        after = last.seq;
        pages.push(page.messages.len());
        seen.extend(page.messages.iter().map(|m| m.seq));
    }
    assert_eq!(seen, seqs);
    assert_cut_by_size(&pages, 100);
    // The SDK's history takes a page cut by size for what it is, not for the end.
    for range in [HistoryRange::Latest, HistoryRange::After(seqs[0])] {
        let page = bob.client.history(chat, range, 100).await.expect("history");
        assert!(page.messages.len() < 100, "{range:?}: not cut");
        assert!(!page.end, "{range:?}: a page cut by size is not the end");
    }
    let oldest = bob
        .client
        .history(chat, HistoryRange::Before(seqs[3]), 100)
        .await
        .expect("history");
    assert_eq!((oldest.messages.len(), oldest.end), (3, true));

    // search_messages: every message starts with a word "big<i>".
    let (mut cursor, mut pages, mut seen) = (String::new(), Vec::new(), BTreeSet::new());
    loop {
        let page = bob
            .client
            .search_messages(pb::SearchMessages {
                query: "big".into(),
                chat_id: chat,
                limit: 100,
                cursor,
            })
            .await
            .expect("search page");
        pages.push(page.messages.len());
        seen.extend(page.messages.iter().map(|m| m.seq));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), seqs);
    assert_cut_by_size(&pages, 100);

    // The SDK's catch-up over the whole range completes, in order, without a gap.
    let mut all = config(&server);
    all.unknown_chats = UnknownChatPolicy::Backfill;
    let fresh = device_with(all, &bob).await;
    for seq in 1..=last {
        assert_eq!(fresh.next_chat_event(chat).await.seq, seq);
    }
}

#[tokio::test]
async fn the_edit_history_of_a_message_edited_at_full_size_pages_by_cursor() {
    let server = start().await;
    let (alice, bob, chat) = pair(&server).await;
    let m = alice.send(chat, "draft").await;
    let mut texts = vec!["draft".to_string()];
    for i in 0..20 {
        let text = full_text(&format!("v{i}"), FOUR);
        alice
            .client
            .edit_message(pb::EditMessage {
                chat_id: chat,
                seq: m.seq,
                text: text.clone(),
            })
            .await
            .expect("edit");
        texts.push(text);
    }
    // The history holds the texts a message had before its current one.
    texts.pop();
    let (mut cursor, mut pages, mut seen) = (String::new(), Vec::new(), Vec::new());
    loop {
        let page = bob
            .client
            .get_message_edits(pb::GetMessageEdits {
                chat_id: chat,
                seq: m.seq,
                cursor,
            })
            .await
            .expect("edits page");
        pages.push(page.edits.len());
        seen.extend(page.edits.into_iter().map(|e| e.text));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(seen, texts);
    assert_cut_by_size(&pages, texts.len());
}

#[tokio::test]
async fn a_member_of_many_chats_with_the_largest_last_messages_lists_them_all() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let mut chats = BTreeSet::new();
    for i in 0..20 {
        let chat = alice
            .client
            .create_group(pb::CreateGroup {
                kind: pb::ChatKind::Group as i32,
                title: repeat(FOUR, 128),
                description: repeat(FOUR, 1000),
                member_ids: vec![bob.id],
            })
            .await
            .expect("group");
        alice
            .send(chat.id, &full_text(&format!("last{i}"), FOUR))
            .await;
        chats.insert(chat.id);
    }
    let (mut cursor, mut pages, mut seen) = (String::new(), Vec::new(), BTreeSet::new());
    loop {
        let page = bob
            .client
            .list_chats(pb::ListChats {
                limit: 100,
                cursor,
                include_archived: false,
            })
            .await
            .expect("chats page");
        pages.push(page.chats.len());
        for c in &page.chats {
            assert!(
                c.last_message.is_some(),
                "chat {} without its last message",
                c.id
            );
            assert!(seen.insert(c.id), "chat {} twice", c.id);
        }
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(seen, chats);
    assert_cut_by_size(&pages, 100);
}

/// Pages through a user list request until `next_cursor` is empty; returns the page sizes and
/// the usernames in order.
async fn page_users<F, Fut>(mut ask: F) -> (Vec<usize>, Vec<String>)
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = pb::UserList>,
{
    let (mut cursor, mut pages, mut names) = (String::new(), Vec::new(), Vec::new());
    loop {
        let page = ask(cursor).await;
        pages.push(page.users.len());
        names.extend(page.users.into_iter().map(|u| u.username));
        if page.next_cursor.is_empty() {
            return (pages, names);
        }
        cursor = page.next_cursor;
    }
}

#[tokio::test]
async fn user_lists_of_the_largest_profiles_page_by_size() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let store = server.store();
    store
        .set_role(alice.id, pb::Role::Admin, None)
        .await
        .expect("admin");
    // 110 users with every profile field at its limit, as contacts and as blocked users of
    // Alice's: about 2.7 KB each, 300 KB in all.
    let mut names = Vec::new();
    let mut ids = Vec::new();
    for i in 0..110 {
        let username = format!("u{i:03}");
        let email = format!("{}@example.test", repeat('e', 254 - "@example.test".len()));
        let user = store
            .create_user(NewUser {
                username: username.clone(),
                email,
                password_hash: "unused".into(),
                role: pb::Role::User,
                now_ms: 1,
            })
            .await
            .expect("user");
        store
            .update_profile(
                user.id,
                ProfilePatch {
                    display_name: Some(repeat(FOUR, 64)),
                    bio: Some(repeat(FOUR, 500)),
                    avatar_file_id: Some(repeat('f', 128)),
                    status: None,
                },
            )
            .await
            .expect("profile");
        store.add_contact(alice.id, user.id).await.expect("contact");
        store.block(alice.id, user.id).await.expect("block");
        names.push(username);
        ids.push(user.id);
    }
    let c = &alice.client;

    let (pages, seen) = page_users(|cursor| async move {
        c.list_contacts(pb::ListContacts { limit: 0, cursor })
            .await
            .expect("contacts page")
    })
    .await;
    assert_eq!(seen, names);
    assert_cut_by_size(&pages, 100);

    let (pages, seen) = page_users(|cursor| async move {
        c.list_blocked(pb::ListBlocked { limit: 0, cursor })
            .await
            .expect("blocked page")
    })
    .await;
    assert_eq!(seen, names);
    assert_cut_by_size(&pages, 100);

    // Admins see every field, the email too.
    let (pages, seen) = page_users(|cursor| async move {
        c.admin_list_users(pb::AdminListUsers {
            query: "u".into(),
            limit: 100,
            cursor,
        })
        .await
        .expect("admin page")
    })
    .await;
    assert_eq!(seen, names);
    assert_cut_by_size(&pages, 100);

    let (pages, seen) = page_users(|cursor| async move {
        c.search_users(pb::SearchUsers {
            query: "u".into(),
            limit: 100,
            cursor,
        })
        .await
        .expect("search page")
    })
    .await;
    assert_eq!(seen, names);
    assert!(pages.iter().all(|n| *n > 0), "{pages:?}");

    // get_users answers in the order asked, asking again after the last one answered.
    let mut rest: Vec<u64> = ids.iter().rev().take(100).copied().collect();
    let asked = rest.clone();
    let mut answered = Vec::new();
    while !rest.is_empty() {
        let page = c
            .get_users(pb::GetUsers {
                user_ids: rest.clone(),
            })
            .await
            .expect("users");
        let last = page.users.last().expect("a user answered").id;
        answered.extend(page.users.iter().map(|u| u.id));
        if page.next_cursor.is_empty() {
            break;
        }
        assert_eq!(page.next_cursor, last.to_string());
        let at = rest.iter().position(|id| *id == last).expect("asked");
        rest.drain(..=at);
    }
    assert_eq!(answered, asked);
    // The SDK does the same: every user, however many answers it takes.
    let all = c.users_by_id(&ids).await.expect("users by id");
    assert_eq!(all.iter().map(|u| u.id).collect::<Vec<_>>(), ids);
}

#[tokio::test]
async fn a_message_takes_twenty_different_emoji_and_counts_every_reaction() {
    let server = start().await;
    let (alice, bob, chat) = pair(&server).await;
    let m = alice.send(chat, "react").await;
    let react = |emoji: char, remove| pb::React {
        chat_id: chat,
        seq: m.seq,
        emoji: emoji.to_string(),
        remove,
    };
    let emoji: Vec<char> = ('\u{1F600}'..='\u{1F614}').collect();
    let (first20, twenty_first) = emoji.split_at(20);
    for e in first20 {
        bob.client.react(react(*e, false)).await.expect("react");
    }
    let answer = alice
        .client
        .react(react(first20[0], false))
        .await
        .expect("same emoji");
    assert_eq!(answer.reactions.len(), 20);
    assert_eq!(answer.reactions[0].count, 2);
    assert_eq!(answer.reactions[0].user_ids, vec![bob.id, alice.id]);
    assert_code(
        alice.client.react(react(twenty_first[0], false)).await,
        pb::ErrorCode::Conflict,
    );
    // Removing one makes room again.
    bob.client
        .react(react(first20[1], true))
        .await
        .expect("remove");
    let answer = alice
        .client
        .react(react(twenty_first[0], false))
        .await
        .expect("room again");
    assert_eq!(answer.reactions.len(), 20);
}
