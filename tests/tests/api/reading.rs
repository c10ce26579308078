//! Reading end to end: history paging (also for former members), search scope and paging, and
//! delivery and read receipts (cursors, unread counts, pushes).

use crate::support::*;
use chatproto::client::ClientEvent;
use chatproto::pb;
use pb::ErrorCode as E;

async fn next_receipt(user: &User) -> pb::ReceiptUpdate {
    user.wait_for(|e| match e {
        ClientEvent::Receipt(r) => Some(r),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn history_pages_in_every_direction_and_stops_where_membership_ended() {
    let server = start().await;
    let ([alice, bob], g) = group_of(&server).await;
    let mut sent = Vec::new();
    for i in 0..25 {
        sent.push(alice.send(g.id, &format!("message {i}")).await.seq);
    }
    let c = &bob.client;
    let latest = c.get_history(history(g.id, 0, 0, 10)).await.unwrap();
    assert_eq!(seqs(&latest.messages), sent[15..].to_vec());
    let before = c.get_history(history(g.id, sent[15], 0, 10)).await.unwrap();
    assert_eq!(seqs(&before.messages), sent[5..15].to_vec());
    let after = c.get_history(history(g.id, 0, sent[4], 3)).await.unwrap();
    assert_eq!(seqs(&after.messages), sent[5..8].to_vec());
    let all = c.get_history(history(g.id, 0, 0, 0)).await.unwrap();
    assert_eq!(seqs(&all.messages), sent);
    assert_field(
        c.get_history(history(g.id, 0, 0, 101)).await,
        E::InvalidArgument,
        "get_history.limit",
    );
    assert_field(
        c.get_history(history(g.id, 10, 5, 0)).await,
        E::InvalidArgument,
        "get_history.after_seq",
    );

    // A removed member reads up to their removal, and nothing after.
    alice
        .client
        .remove_member(pb::RemoveMember {
            chat_id: g.id,
            user_id: bob.id,
        })
        .await
        .unwrap();
    alice.send(g.id, "after bob left").await;
    let page = c.get_history(history(g.id, 0, 0, 5)).await.unwrap();
    assert_eq!(seqs(&page.messages), sent[20..].to_vec());
    let beyond = c.get_history(history(g.id, 0, sent[24], 0)).await.unwrap();
    assert!(beyond.messages.is_empty());
}

#[tokio::test]
async fn search_finds_only_what_the_caller_may_read() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let carol = register(&server, "carol").await;
    let g1 = group(&alice, pb::ChatKind::Group, "one", &[&bob]).await.id;
    let g2 = group(&carol, pb::ChatKind::Group, "two", &[&alice])
        .await
        .id;
    alice.send(g1, "the quick brown fox").await;
    alice.send(g1, "a lazy dog").await;
    carol.send(g2, "quick silver").await;

    let texts = |list: &pb::MessageList| {
        list.messages
            .iter()
            .map(|m| m.text.clone())
            .collect::<Vec<_>>()
    };
    let everywhere = alice
        .client
        .search_messages(search(0, "quick", 0, String::new()))
        .await
        .unwrap();
    assert_eq!(
        texts(&everywhere),
        vec!["quick silver", "the quick brown fox"],
        "newest first, across chats"
    );
    let one = alice
        .client
        .search_messages(search(g1, "quick", 0, String::new()))
        .await
        .unwrap();
    assert_eq!(texts(&one), vec!["the quick brown fox"]);
    let prefix = alice
        .client
        .search_messages(search(g1, "brown fo", 0, String::new()))
        .await
        .unwrap();
    assert_eq!(texts(&prefix), vec!["the quick brown fox"]);
    // Bob is not in the second chat: never sees its content.
    let bobs = bob
        .client
        .search_messages(search(0, "quick", 0, String::new()))
        .await
        .unwrap();
    assert_eq!(texts(&bobs), vec!["the quick brown fox"]);
    assert_chat_not_found(
        bob.client
            .search_messages(search(g2, "quick", 0, String::new()))
            .await,
    );

    for i in 0..5 {
        alice.send(g1, &format!("alpha {i}")).await;
    }
    let mut found = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page = alice
            .client
            .search_messages(search(g1, "alpha", 2, cursor))
            .await
            .unwrap();
        pages += 1;
        found.extend(texts(&page));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(pages, 3);
    assert_eq!(
        found,
        (0..5)
            .rev()
            .map(|i| format!("alpha {i}"))
            .collect::<Vec<_>>()
    );
    assert_field(
        alice
            .client
            .search_messages(search(g1, "alpha", 2, "%%".into()))
            .await,
        E::InvalidArgument,
        "search_messages.cursor",
    );
    assert_field(
        alice
            .client
            .search_messages(search(g1, "  ", 0, String::new()))
            .await,
        E::InvalidArgument,
        "search_messages.query",
    );
}

#[tokio::test]
async fn receipts_move_forward_count_unread_and_reach_the_other_members() {
    let server = start().await;
    let (alice, bob, private) = pair(&server).await;
    let g = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await.id;
    let ch = group(&alice, pb::ChatKind::Channel, "news", &[&bob])
        .await
        .id;
    let mut last = 0;
    for i in 0..3 {
        last = bob.send(private, &format!("ping {i}")).await.seq;
    }
    let unread = |list: &pb::ChatList, id: u64| {
        list.chats
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.state.as_ref())
            .map(|s| (s.unread_count, s.read_seq))
    };
    let list = alice
        .client
        .list_chats(pb::ListChats::default())
        .await
        .unwrap();
    assert_eq!(unread(&list, private), Some((3, 0)));

    let mark = |chat_id: u64, kind: pb::ReceiptKind, up_to_seq: u64| pb::MarkReceipt {
        chat_id,
        kind: kind as i32,
        up_to_seq,
    };
    alice
        .client
        .mark_receipt(mark(private, pb::ReceiptKind::Delivered, last))
        .await
        .unwrap();
    let r = next_receipt(&bob).await;
    assert_eq!(
        (r.chat_id, r.user_id, r.delivered_seq, r.read_seq),
        (private, alice.id, last, 0)
    );
    alice
        .client
        .mark_receipt(mark(private, pb::ReceiptKind::Read, last - 1))
        .await
        .unwrap();
    let r = next_receipt(&bob).await;
    assert_eq!((r.delivered_seq, r.read_seq), (last, last - 1));
    let list = alice
        .client
        .list_chats(pb::ListChats::default())
        .await
        .unwrap();
    assert_eq!(unread(&list, private), Some((1, last - 1)));
    // Never backwards: a lower cursor changes nothing and tells nobody.
    alice
        .client
        .mark_receipt(mark(private, pb::ReceiptKind::Read, 1))
        .await
        .unwrap();
    let receipts = bob
        .client
        .get_receipts(pb::GetReceipts { chat_id: private })
        .await
        .unwrap();
    let of_alice = receipts
        .receipts
        .iter()
        .find(|r| r.user_id == alice.id)
        .unwrap();
    assert_eq!(
        (of_alice.delivered_seq, of_alice.read_seq),
        (last, last - 1)
    );

    assert_field(
        alice
            .client
            .mark_receipt(mark(private, pb::ReceiptKind::Read, last + 1))
            .await,
        E::InvalidArgument,
        "mark_receipt.up_to_seq",
    );
    assert_field(
        alice
            .client
            .mark_receipt(mark(private, pb::ReceiptKind::Unspecified, 1))
            .await,
        E::InvalidArgument,
        "mark_receipt.kind",
    );

    // Channels: readers' cursors are not pushed to the other members. Bob reads the channel, then
    // the group: the first receipt Alice gets is the group's.
    let post = alice.send(ch, "news").await.seq;
    bob.client
        .mark_receipt(mark(ch, pb::ReceiptKind::Read, post))
        .await
        .unwrap();
    let said = alice.send(g, "team").await.seq;
    bob.client
        .mark_receipt(mark(g, pb::ReceiptKind::Read, said))
        .await
        .unwrap();
    let r = next_receipt(&alice).await;
    assert_eq!((r.chat_id, r.user_id, r.read_seq), (g, bob.id, said));
    // The lower private-chat mark above was not pushed either: Bob's next receipt is a new one.
    alice
        .client
        .mark_receipt(mark(private, pb::ReceiptKind::Read, last))
        .await
        .unwrap();
    let r = next_receipt(&bob).await;
    assert_eq!((r.chat_id, r.read_seq), (private, last));
}
