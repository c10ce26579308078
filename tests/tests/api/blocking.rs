//! Blocking in groups and channels end to end (spec 9.2), from both sides: the blocked user
//! still posts and the other members see everything; the blocker gets placeholders wherever
//! messages reach them (live, history, chat list, catch-up after a reconnect, search leaves
//! them out) and none of the blocked user's typing or receipts; unblocking restores the view.

use crate::support::*;
use chatproto::client::ClientEvent;
use chatproto::pb;
use chatproto::pb::chat_event::Body;

/// Asserts that `seen` is the placeholder of `original`.
#[track_caller]
fn assert_placeholder(seen: &pb::Message, original: &pb::Message) {
    assert_eq!(
        seen,
        &pb::Message {
            chat_id: original.chat_id,
            seq: original.seq,
            sender_id: original.sender_id,
            kind: original.kind,
            sent_at_ms: original.sent_at_ms,
            from_blocked_user: true,
            ..Default::default()
        }
    );
}

/// The message with `seq` in a list.
#[track_caller]
fn find(messages: &[pb::Message], seq: u64) -> &pb::Message {
    messages
        .iter()
        .find(|m| m.seq == seq)
        .unwrap_or_else(|| panic!("message {seq} missing"))
}

/// How many earlier texts `get_message_edits` lists for `by`.
async fn edit_count(by: &User, chat_id: u64, seq: u64) -> usize {
    let edits = by
        .client
        .get_message_edits(pb::GetMessageEdits {
            chat_id,
            seq,
            cursor: String::new(),
        })
        .await
        .expect("edits");
    edits.edits.len()
}

/// The seqs `by` finds for `query` in all their chats.
async fn search_hits(by: &User, query: &str) -> Vec<u64> {
    let found = by
        .client
        .search_messages(search(0, query, 10, String::new()))
        .await
        .expect("search");
    seqs(&found.messages)
}

/// The users whose receipt cursors `by` gets for `chat_id`.
async fn receipt_users(by: &User, chat_id: u64) -> Vec<u64> {
    let list = by
        .client
        .get_receipts(pb::GetReceipts { chat_id })
        .await
        .expect("receipts");
    list.receipts.iter().map(|r| r.user_id).collect()
}

async fn block(blocker: &User, blocked: &User) {
    blocker
        .client
        .block_user(pb::BlockUser {
            user_id: blocked.id,
        })
        .await
        .expect("block");
}

#[tokio::test]
async fn the_blocked_user_posts_the_others_see_it_and_the_blocker_gets_placeholders() {
    let server = start().await;
    let alice = register_with(stream_only_config(&server), "alice").await;
    let bob = register(&server, "bob").await;
    let carol = register(&server, "carol").await;
    let g = group(&alice, pb::ChatKind::Group, "plans", &[&bob, &carol])
        .await
        .id;
    block(&alice, &bob).await;

    // Bob may still post; Carol sees the text live, Alice the placeholder.
    let sent = bob.send(g, "secret plans").await;
    assert!(!sent.from_blocked_user);
    let seen = carol.next_message(g).await;
    assert_eq!(
        (seen.text.as_str(), seen.from_blocked_user),
        ("secret plans", false)
    );
    assert_placeholder(&alice.next_message(g).await, &sent);

    // An edit by Bob reaches Alice without its text.
    bob.client
        .edit_message(pb::EditMessage {
            chat_id: g,
            seq: sent.seq,
            text: "secret plans, revised".into(),
        })
        .await
        .expect("edit");
    let edited = |b: &Body| match b {
        Body::MessageEdited(e) => Some(e.text.clone()),
        _ => None,
    };
    assert_eq!(carol.chat_event(g, edited).await.1, "secret plans, revised");
    assert_eq!(alice.chat_event(g, edited).await.1, "");

    // Carol reacts to Bob's message; the placeholder in answers still has no reactions.
    carol
        .client
        .react(pb::React {
            chat_id: g,
            seq: sent.seq,
            emoji: "\u{1f44d}".into(),
            remove: false,
        })
        .await
        .expect("react");
    let reacted = alice
        .client
        .react(pb::React {
            chat_id: g,
            seq: sent.seq,
            emoji: "\u{1f44d}".into(),
            remove: false,
        })
        .await
        .expect("the blocker reacts to the placeholder");
    assert_placeholder(&reacted, &sent);

    // History, the chat list and the edit history.
    let theirs = carol
        .client
        .get_history(history(g, 0, 0, 50))
        .await
        .unwrap();
    let full = find(&theirs.messages, sent.seq);
    assert_eq!(
        (full.text.as_str(), full.reactions.len()),
        ("secret plans, revised", 1)
    );
    let mine = alice
        .client
        .get_history(history(g, 0, 0, 50))
        .await
        .unwrap();
    assert_placeholder(find(&mine.messages, sent.seq), &sent);
    let chats = alice
        .client
        .list_chats(pb::ListChats::default())
        .await
        .unwrap();
    let listed = chats.chats.iter().find(|c| c.id == g).expect("listed");
    assert_placeholder(listed.last_message.as_ref().expect("last message"), &sent);
    assert_eq!(edit_count(&carol, g, sent.seq).await, 1);
    assert!(edit_count(&alice, g, sent.seq).await == 0);

    // Search: Carol finds Bob's words, Alice does not.
    assert_eq!(search_hits(&carol, "secret").await, vec![sent.seq]);
    assert!(search_hits(&alice, "secret").await.is_empty());

    // Typing and receipts of Bob reach Carol, not Alice; Alice's get_receipts leaves Bob out.
    bob.client.send_typing(g).await.expect("typing");
    bob.client
        .mark_receipt(pb::MarkReceipt {
            chat_id: g,
            kind: pb::ReceiptKind::Read as i32,
            up_to_seq: sent.seq,
        })
        .await
        .expect("receipt");
    // Both reach Carol, in whichever order (typing may come by datagram).
    let (mut typing, mut receipt) = (false, false);
    carol
        .wait_for(|e| {
            match e {
                ClientEvent::Typing(t) if t.user_id == bob.id => typing = true,
                ClientEvent::Receipt(r) if r.user_id == bob.id => receipt = true,
                _ => {}
            }
            (typing && receipt).then_some(())
        })
        .await;
    // Alice's event stream carries typing too (no datagrams): the sentinel comes first.
    let sentinel = carol.send(g, "sentinel").await;
    let next = alice
        .wait_for(|e| match e {
            ClientEvent::Typing(t) if t.user_id == bob.id => Some(Err("typing")),
            ClientEvent::Receipt(r) if r.user_id == bob.id => Some(Err("receipt")),
            ClientEvent::Chat(ev) => created(&ev)
                .filter(|m| m.seq == sentinel.seq)
                .map(|_| Ok(())),
            _ => None,
        })
        .await;
    assert_eq!(next, Ok(()), "bob's signal reached the blocker");
    assert!(receipt_users(&carol, g).await.contains(&bob.id));
    assert!(!receipt_users(&alice, g).await.contains(&bob.id));

    // In a channel where Bob is an admin, the same: his posts go through, Alice sees
    // placeholders.
    let channel = group(&carol, pb::ChatKind::Channel, "news", &[&alice, &bob])
        .await
        .id;
    carol
        .client
        .set_member_role(pb::SetMemberRole {
            chat_id: channel,
            user_id: bob.id,
            role: pb::MemberRole::Admin as i32,
        })
        .await
        .expect("bob becomes a channel admin");
    let news = bob.send(channel, "breaking").await;
    assert_eq!(carol.next_message(channel).await.text, "breaking");
    assert_placeholder(&alice.next_message(channel).await, &news);

    // Unblocking restores the full view in every answer.
    alice
        .client
        .unblock_user(pb::UnblockUser { user_id: bob.id })
        .await
        .expect("unblock");
    let mine = alice
        .client
        .get_history(history(g, 0, 0, 50))
        .await
        .unwrap();
    let restored = find(&mine.messages, sent.seq);
    assert_eq!(
        (
            restored.text.as_str(),
            restored.from_blocked_user,
            restored.reactions.len()
        ),
        ("secret plans, revised", false, 1)
    );
    assert_eq!(search_hits(&alice, "secret").await, vec![sent.seq]);
    assert_eq!(edit_count(&alice, g, sent.seq).await, 1);
    assert!(receipt_users(&alice, g).await.contains(&bob.id));
    let again = bob.send(g, "hello again").await;
    assert_eq!(alice.next_message(g).await.text, again.text);
}

#[tokio::test]
async fn catching_up_after_a_reconnect_brings_placeholders_without_gaps() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let carol = register(&server, "carol").await;
    let g = group(&alice, pb::ChatKind::Group, "away", &[&bob, &carol])
        .await
        .id;
    block(&alice, &bob).await;
    let before = carol.send(g, "before").await;
    assert_eq!(alice.next_message(g).await.seq, before.seq);

    // Alice is away while Bob and Carol write; her client reconnects and catches up.
    assert_eq!(server.kick_connections_of(alice.id), 1);
    let mut sent = Vec::new();
    for i in 0..6 {
        let from = if i % 2 == 0 { &bob } else { &carol };
        sent.push(from.send(g, &format!("while away {i}")).await);
    }
    let mut last = before.seq;
    for original in &sent {
        let ev = alice.next_chat_event(g).await;
        assert_eq!(ev.seq, last + 1, "gap or duplicate in the catch-up");
        last = ev.seq;
        let got = created(&ev).expect("a message");
        if original.sender_id == bob.id {
            assert_placeholder(got, original);
        } else {
            assert_eq!(got.text, original.text);
        }
    }

    // The log itself, as get_chat_events pages it for Alice: every seq, Bob's as placeholders.
    let log = alice
        .client
        .get_chat_events(pb::GetChatEvents {
            chat_id: g,
            after_seq: 0,
            limit: 0,
        })
        .await
        .unwrap();
    let log_seqs: Vec<u64> = log.events.iter().map(|e| e.seq).collect();
    assert_eq!(log_seqs, (1..=last).collect::<Vec<_>>());
    for original in &sent {
        let ev = log
            .events
            .iter()
            .find(|e| e.seq == original.seq)
            .expect("in the log");
        let got = created(ev).expect("a message");
        assert_eq!(got.from_blocked_user, original.sender_id == bob.id);
        assert_eq!(got.text.is_empty(), original.sender_id == bob.id);
    }
    let heads = alice.client.sync(pb::Sync::default()).await.unwrap().heads;
    let head = heads.iter().find(|h| h.chat_id == g).expect("head");
    assert_eq!(head.last_seq, last);
}
