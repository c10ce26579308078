//! Writing messages end to end: sending (replies, forwards, mentions, media, validation,
//! idempotent retries), posting rules (channels, blocks), edits, deletes for everyone and for
//! oneself, and reactions. Reading is in reading.rs; the send rate limit in limits.rs.

use crate::support::*;
use chatproto::client::{ClientError, ClientEvent};
use chatproto::pb;
use chatproto::pb::chat_event::Body;
use pb::ErrorCode as E;

fn reaction(chat_id: u64, seq: u64, emoji: &str, remove: bool) -> pb::React {
    pb::React {
        chat_id,
        seq,
        emoji: emoji.into(),
        remove,
    }
}

async fn next_reaction(user: &User, chat_id: u64) -> pb::ReactionChanged {
    user.chat_event(chat_id, |b| match b {
        Body::ReactionChanged(r) => Some(r.clone()),
        _ => None,
    })
    .await
    .1
}

#[tokio::test]
async fn replies_forwards_and_mentions() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let carol = register(&server, "carol").await;
    let dave = register(&server, "dave").await;
    let g = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;

    let original = alice.send(g.id, "hi @Bob, @nobody_here and @carol.").await;
    assert_eq!(original.mention_ids, vec![bob.id, carol.id]);
    assert!(
        !original.client_msg_id.is_empty(),
        "the sender sees their client_msg_id"
    );
    let seen = bob.next_message(g.id).await;
    assert_eq!(seen.seq, original.seq);
    assert!(
        seen.client_msg_id.is_empty(),
        "others never see the sender's client_msg_id"
    );

    // Replies point at a message of the same chat.
    let reply = bob
        .client
        .send_message(pb::SendMessage {
            reply_to_seq: original.seq,
            ..text(g.id, "re")
        })
        .await
        .unwrap();
    assert_eq!(reply.reply_to_seq, original.seq);
    for bad in [999, 1] {
        // 999 does not exist; 1 is the chat_created event, not a message.
        assert_code(
            bob.client
                .send_message(pb::SendMessage {
                    reply_to_seq: bad,
                    ..text(g.id, "re")
                })
                .await,
            E::NotFound,
        );
    }

    // A forward copies the content and keeps the original sender, also when forwarded again.
    let bob_dave = bob.client.create_private_chat(dave.id).await.unwrap();
    let fwd = bob
        .client
        .send_message(forward(bob_dave.id, &original))
        .await
        .unwrap();
    assert_eq!(
        (fwd.sender_id, fwd.kind(), fwd.text.as_str()),
        (bob.id, pb::MessageKind::Text, original.text.as_str())
    );
    let origin = pb::ForwardedFrom {
        chat_id: g.id,
        seq: original.seq,
        sender_id: alice.id,
        sent_at_ms: original.sent_at_ms,
    };
    assert_eq!(fwd.forwarded_from, Some(origin));
    let dave_carol = dave.client.create_private_chat(carol.id).await.unwrap();
    let again = dave
        .client
        .send_message(forward(dave_carol.id, &fwd))
        .await
        .unwrap();
    assert_eq!(again.forwarded_from, Some(origin));
    // Only readable messages can be forwarded; content is exactly one of text, file, forward.
    let e = assert_code(
        dave.client
            .send_message(forward(dave_carol.id, &original))
            .await,
        E::NotFound,
    );
    assert_eq!(e.message, "message not found");
    assert_field(
        bob.client
            .send_message(pb::SendMessage {
                text: "extra".into(),
                ..forward(g.id, &fwd)
            })
            .await,
        E::InvalidArgument,
        "send_message.forward",
    );
    alice
        .client
        .delete_message(pb::DeleteMessage {
            chat_id: g.id,
            seq: reply.seq,
            for_everyone: true,
        })
        .await
        .unwrap();
    assert_code(
        alice.client.send_message(forward(g.id, &reply)).await,
        E::NotFound,
    );
}

#[tokio::test]
async fn message_content_is_validated() {
    let server = start().await;
    let (alice, _bob, chat) = pair(&server).await;
    let c = &alice.client;

    let photo = tests::files::upload(
        c,
        &chatd::testing::png_image(32, 32),
        "photo.png",
        pb::MessageKind::Image,
    )
    .await
    .unwrap();
    let image = pb::SendMessage {
        chat_id: chat,
        kind: pb::MessageKind::Image as i32,
        file_id: photo.id.clone(),
        text: "a caption".into(),
        ..Default::default()
    };
    let sent = c.send_message(image.clone()).await.unwrap();
    assert_eq!(
        (sent.kind(), sent.file_id.as_str(), sent.text.as_str()),
        (pb::MessageKind::Image, photo.id.as_str(), "a caption")
    );
    assert!(
        c.send_message(pb::SendMessage {
            text: String::new(),
            ..image.clone()
        })
        .await
        .is_ok()
    );
    assert_field(
        c.send_message(pb::SendMessage {
            file_id: String::new(),
            ..image.clone()
        })
        .await,
        E::InvalidArgument,
        "send_message.file_id",
    );
    assert_field(
        c.send_message(pb::SendMessage {
            file_id: "../etc".into(),
            ..image
        })
        .await,
        E::InvalidArgument,
        "send_message.file_id",
    );
    assert_field(
        c.send_message(text(chat, "")).await,
        E::InvalidArgument,
        "send_message.text",
    );
    assert_field(
        c.send_message(text(chat, " \n ")).await,
        E::InvalidArgument,
        "send_message.text",
    );
    assert_field(
        c.send_message(text(chat, &"é".repeat(4097))).await,
        E::TooLarge,
        "send_message.text",
    );
    assert!(c.send_message(text(chat, &"é".repeat(4096))).await.is_ok());
    assert_field(
        c.send_message(pb::SendMessage {
            kind: 0,
            ..text(chat, "x")
        })
        .await,
        E::InvalidArgument,
        "send_message.kind",
    );
    assert_field(
        c.send_message(pb::SendMessage {
            client_msg_id: "not ok!".into(),
            ..text(chat, "x")
        })
        .await,
        E::InvalidArgument,
        "send_message.client_msg_id",
    );
}

#[tokio::test]
async fn channels_let_only_admins_post_and_blocks_silence_private_chats() {
    let server = start().await;
    let owner = register(&server, "owner").await;
    let admin = register(&server, "admin").await;
    let reader = register_with(stream_only_config(&server), "reader").await;
    let ch = group(&owner, pb::ChatKind::Channel, "news", &[&admin, &reader]).await;
    owner
        .client
        .set_member_role(pb::SetMemberRole {
            chat_id: ch.id,
            user_id: admin.id,
            role: pb::MemberRole::Admin as i32,
        })
        .await
        .unwrap();

    let e = assert_code(
        reader.client.send_message(text(ch.id, "me too")).await,
        E::PermissionDenied,
    );
    assert!(e.message.contains("channel"), "{e}");
    assert_code(reader.client.send_typing(ch.id).await, E::PermissionDenied);
    let post = admin.send(ch.id, "announcement").await;
    owner.send(ch.id, "from the owner").await;
    // Readers may still react.
    reader
        .client
        .react(reaction(ch.id, post.seq, "🎉", false))
        .await
        .unwrap();
    assert_eq!(reader.next_message(ch.id).await.seq, post.seq);

    let private = owner.client.create_private_chat(reader.id).await.unwrap();
    owner.send(private.id, "before the block").await;
    reader
        .client
        .block_user(pb::BlockUser { user_id: owner.id })
        .await
        .unwrap();
    for (user, who) in [(&owner, "the blocked"), (&reader, "the blocker")] {
        let e = assert_code(
            user.client.send_message(text(private.id, "hello?")).await,
            E::PermissionDenied,
        );
        assert_eq!(e.message, "blocked", "{who}");
    }
    reader
        .client
        .unblock_user(pb::UnblockUser { user_id: owner.id })
        .await
        .unwrap();
    owner.send(private.id, "after the block").await;
}

#[tokio::test]
async fn edits_are_the_senders_and_keep_their_history() {
    let server = start().await;
    let ([alice, bob], g) = group_of(&server).await;
    let m = alice.send(g.id, "first").await;
    let edit = |text: &str| pb::EditMessage {
        chat_id: g.id,
        seq: m.seq,
        text: text.into(),
    };

    assert_code(
        bob.client.edit_message(edit("hijacked")).await,
        E::PermissionDenied,
    );
    let edited = alice.client.edit_message(edit("second")).await.unwrap();
    assert!(edited.edited);
    assert_eq!(edited.text, "second");
    let (ev, change) = bob
        .chat_event(g.id, |b| match b {
            Body::MessageEdited(e) => Some(e.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        (change.message_seq, change.text.as_str(), ev.actor_id),
        (m.seq, "second", alice.id)
    );
    alice.client.edit_message(edit("third")).await.unwrap();
    assert_field(
        alice.client.edit_message(edit("")).await,
        E::InvalidArgument,
        "edit_message.text",
    );

    let page = bob
        .client
        .get_history(history(g.id, 0, 0, 0))
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 1);
    assert_eq!(
        (page.messages[0].text.as_str(), page.messages[0].edited),
        ("third", true)
    );
    let edits = bob
        .client
        .get_message_edits(pb::GetMessageEdits {
            chat_id: g.id,
            seq: m.seq,
            ..Default::default()
        })
        .await
        .unwrap();
    let texts: Vec<&str> = edits.edits.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, vec!["first", "second"]);

    let fwd = bob.client.send_message(forward(g.id, &m)).await.unwrap();
    let e = bob
        .client
        .edit_message(pb::EditMessage {
            chat_id: g.id,
            seq: fwd.seq,
            text: "mine now".into(),
        })
        .await;
    assert_code(e, E::Conflict);
    alice
        .client
        .delete_message(pb::DeleteMessage {
            chat_id: g.id,
            seq: m.seq,
            for_everyone: true,
        })
        .await
        .unwrap();
    assert_code(
        alice.client.edit_message(edit("resurrect")).await,
        E::Conflict,
    );
    assert_code(
        alice
            .client
            .edit_message(pb::EditMessage {
                chat_id: g.id,
                seq: 999,
                text: "x".into(),
            })
            .await,
        E::NotFound,
    );
}

#[tokio::test]
async fn delete_for_everyone_purges_and_leaves_a_tombstone() {
    let server = start().await;
    let ([alice, bob], g) = group_of(&server).await;
    let m = bob.send(g.id, "secret sauce recipe").await;
    alice
        .client
        .react(reaction(g.id, m.seq, "👍", false))
        .await
        .unwrap();
    bob.client
        .edit_message(pb::EditMessage {
            chat_id: g.id,
            seq: m.seq,
            text: "secret sauce v2".into(),
        })
        .await
        .unwrap();
    let other = alice.send(g.id, "keep this").await;

    // A plain member deletes only their own; the chat's owner deletes anyone's.
    let del = |seq: u64| pb::DeleteMessage {
        chat_id: g.id,
        seq,
        for_everyone: true,
    };
    assert_code(
        bob.client.delete_message(del(other.seq)).await,
        E::PermissionDenied,
    );
    alice.client.delete_message(del(m.seq)).await.unwrap();
    let (_, gone) = bob
        .chat_event(g.id, |b| match b {
            Body::MessageDeleted(d) => Some(*d),
            _ => None,
        })
        .await;
    assert_eq!(gone.message_seq, m.seq);
    // Deleting again changes nothing.
    alice.client.delete_message(del(m.seq)).await.unwrap();

    let page = bob
        .client
        .get_history(history(g.id, 0, 0, 0))
        .await
        .unwrap();
    let tomb = page
        .messages
        .iter()
        .find(|x| x.seq == m.seq)
        .expect("the tombstone stays in history");
    assert!(tomb.deleted);
    assert!(tomb.text.is_empty() && tomb.file_id.is_empty() && tomb.reactions.is_empty());
    let events = bob
        .client
        .get_chat_events(pb::GetChatEvents {
            chat_id: g.id,
            after_seq: 0,
            limit: 0,
        })
        .await
        .unwrap();
    for ev in &events.events {
        match &ev.body {
            Some(Body::MessageCreated(x)) if x.seq == m.seq => {
                assert!(x.deleted && x.text.is_empty())
            }
            Some(Body::MessageEdited(e)) => assert!(e.text.is_empty(), "edit texts are purged too"),
            _ => {}
        }
    }
    let edits = bob
        .client
        .get_message_edits(pb::GetMessageEdits {
            chat_id: g.id,
            seq: m.seq,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(edits.edits.is_empty());
    for who in [&alice, &bob] {
        let found = who
            .client
            .search_messages(search(0, "sauce", 0, String::new()))
            .await
            .unwrap();
        assert!(found.messages.is_empty(), "deleted content is never found");
    }
    assert_code(
        bob.client.react(reaction(g.id, m.seq, "👍", false)).await,
        E::Conflict,
    );
}

/// The same delete for everyone sent twice at once (two devices, or a retry): both answer ok,
/// and the chat gets one `message_deleted`.
#[tokio::test]
async fn two_deletes_of_one_message_at_once_both_answer_ok() {
    let server = start().await;
    let ([alice, bob], g) = group_of(&server).await;
    let del = |seq: u64| pb::DeleteMessage {
        chat_id: g.id,
        seq,
        for_everyone: true,
    };
    const MESSAGES: usize = 10;
    let mut sent = Vec::new();
    for n in 0..MESSAGES {
        sent.push(alice.send(g.id, &format!("number {n}")).await.seq);
    }
    for &seq in &sent {
        let (first, second) = tokio::join!(
            alice.client.delete_message(del(seq)),
            alice.client.delete_message(del(seq))
        );
        first.expect("first delete");
        second.expect("second delete");
    }
    let events = bob
        .client
        .get_chat_events(pb::GetChatEvents {
            chat_id: g.id,
            after_seq: 0,
            limit: 0,
        })
        .await
        .unwrap();
    let deleted = events
        .events
        .iter()
        .filter(|e| matches!(e.body, Some(Body::MessageDeleted(_))))
        .count();
    assert_eq!(deleted, MESSAGES);
}

#[tokio::test]
async fn delete_for_me_hides_only_for_me_on_every_device() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let alice2 = device(&server, &alice).await;
    let bob = register(&server, "bob").await;
    let g = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
    let m = bob.send(g.id, "hide me please").await;
    let kept = bob.send(g.id, "keep me please").await;

    alice
        .client
        .delete_message(pb::DeleteMessage {
            chat_id: g.id,
            seq: m.seq,
            for_everyone: false,
        })
        .await
        .unwrap();
    for device in [&alice, &alice2] {
        let hidden = device
            .wait_for(|e| match e {
                ClientEvent::MessageHidden(h) => Some(h),
                _ => None,
            })
            .await;
        assert_eq!((hidden.chat_id, hidden.seq), (g.id, m.seq));
    }
    let mine = alice
        .client
        .get_history(history(g.id, 0, 0, 0))
        .await
        .unwrap();
    assert!(!seqs(&mine.messages).contains(&m.seq));
    assert!(seqs(&mine.messages).contains(&kept.seq));
    let theirs = bob
        .client
        .get_history(history(g.id, 0, 0, 0))
        .await
        .unwrap();
    let still = theirs
        .messages
        .iter()
        .find(|x| x.seq == m.seq)
        .expect("others still see it");
    assert!(!still.deleted);
    assert!(
        alice
            .client
            .search_messages(search(g.id, "hide", 0, String::new()))
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    assert_eq!(
        bob.client
            .search_messages(search(g.id, "hide", 0, String::new()))
            .await
            .unwrap()
            .messages
            .len(),
        1
    );
}

#[tokio::test]
async fn reactions_are_one_per_user_per_emoji() {
    let server = start().await;
    let ([alice, bob], g) = group_of(&server).await;
    let m = alice.send(g.id, "react to me").await;
    let thumbs = |remove| reaction(g.id, m.seq, "👍", remove);

    let after = bob.client.react(thumbs(false)).await.unwrap();
    assert_eq!(
        after.reactions,
        vec![pb::Reaction {
            emoji: "👍".into(),
            user_ids: vec![bob.id],
            count: 1,
        }]
    );
    let r = next_reaction(&alice, g.id).await;
    assert_eq!((r.user_id, r.emoji.as_str(), r.added), (bob.id, "👍", true));
    // Adding twice is a no-op: same answer, no event (the next one Alice sees is her own).
    assert_eq!(
        bob.client.react(thumbs(false)).await.unwrap().reactions,
        after.reactions
    );
    let mine = alice.client.react(thumbs(false)).await.unwrap();
    assert_eq!(mine.reactions[0].user_ids, vec![bob.id, alice.id]);
    assert_eq!(next_reaction(&alice, g.id).await.user_id, alice.id);

    let both = bob
        .client
        .react(reaction(g.id, m.seq, "❤️", false))
        .await
        .unwrap();
    assert_eq!(both.reactions.len(), 2);
    let removed = bob.client.react(thumbs(true)).await.unwrap();
    let thumbs_users: Vec<u64> = removed
        .reactions
        .iter()
        .filter(|r| r.emoji == "👍")
        .flat_map(|r| r.user_ids.clone())
        .collect();
    assert_eq!(thumbs_users, vec![alice.id]);
    let r = next_reaction(&alice, g.id).await;
    assert_eq!((r.emoji.as_str(), r.added), ("❤️", true));
    let r = next_reaction(&alice, g.id).await;
    assert_eq!(
        (r.emoji.as_str(), r.user_id, r.added),
        ("👍", bob.id, false)
    );

    for bad in ["a", "", "👍👍", "👍 "] {
        assert_field(
            bob.client.react(reaction(g.id, m.seq, bad, false)).await,
            E::InvalidArgument,
            "react.emoji",
        );
    }
    assert_code(
        bob.client.react(reaction(g.id, 999, "👍", false)).await,
        E::NotFound,
    );
}

/// Reactions sent at once are judged when they are written: the same reaction twice answers
/// both with it, and two new emoji for a message one short of the limit add one of them.
#[tokio::test]
async fn reactions_at_once_are_judged_when_written() {
    const EMOJI: [&str; 20] = [
        "😀", "😁", "😂", "🤣", "😃", "😄", "😅", "😆", "😉", "😊", "😋", "😎", "😍", "😘", "🥰",
        "😗", "😙", "😚", "🙂", "🤗",
    ];
    let server = start().await;
    let ([alice, bob], g) = group_of(&server).await;
    for round in 0..5 {
        let m = alice.send(g.id, "react to me").await;
        let react = |emoji| bob.client.react(reaction(g.id, m.seq, emoji, false));
        let (one, other) = tokio::join!(react("😀"), react("😀"));
        for answer in [one, other] {
            let shown = answer.unwrap().reactions;
            assert!(
                shown
                    .iter()
                    .any(|r| r.emoji == "😀" && r.user_ids == [bob.id]),
                "round {round}: answered {shown:?}"
            );
        }
        for emoji in &EMOJI[1..19] {
            react(emoji).await.unwrap();
        }
        // 19 different emoji now; the limit is 20.
        let (one, other) = tokio::join!(react(EMOJI[19]), react("🙃"));
        let outcome = |answer: &Result<pb::Message, ClientError>| {
            answer
                .as_ref()
                .map(|m| m.reactions.len())
                .map_err(|e| e.to_string())
        };
        let added = [&one, &other].iter().filter(|a| a.is_ok()).count();
        assert_eq!(
            added,
            1,
            "round {round}: emoji shown after each: {:?} {:?}",
            outcome(&one),
            outcome(&other)
        );
        for answer in [one, other] {
            if answer.is_err() {
                assert_code(answer, E::Conflict);
            }
        }
    }
}

#[tokio::test]
async fn a_retried_send_returns_the_original_and_creates_nothing() {
    let server = start().await;
    let (alice, bob, chat) = pair(&server).await;
    let first = pb::SendMessage {
        client_msg_id: "retry-0001".into(),
        ..text(chat, "once")
    };
    let original = alice.client.send_message(first.clone()).await.unwrap();
    let retry = alice
        .client
        .send_message(pb::SendMessage {
            text: "twice?".into(),
            ..first
        })
        .await
        .unwrap();
    assert_eq!(retry, original);
    alice.send(chat, "after").await;
    assert_eq!(bob.next_message(chat).await.text, "once");
    assert_eq!(
        bob.next_message(chat).await.text,
        "after",
        "the retry published a second event"
    );
    let all = bob
        .client
        .get_history(history(chat, 0, 0, 0))
        .await
        .unwrap();
    assert_eq!(
        all.messages
            .iter()
            .map(|m| m.text.as_str())
            .collect::<Vec<_>>(),
        vec!["once", "after"]
    );
}

/// A retry whose first answer was lost gets the original, whatever changed since: here the
/// sender left the chat (spec 7.5).
#[tokio::test]
async fn a_retry_gets_the_original_after_the_sender_left() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let g = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
    let send = pb::SendMessage {
        client_msg_id: "retried-1".into(),
        ..text(g.id, "sent once")
    };
    let original = bob
        .client
        .send_message(send.clone())
        .await
        .expect("first send");
    bob.client
        .leave_chat(pb::LeaveChat { chat_id: g.id })
        .await
        .expect("leave");
    let retried = bob.client.send_message(send).await.expect("the retry");
    assert_eq!(retried, original);
    // Not a retry: refused as before.
    let fresh = pb::SendMessage {
        client_msg_id: "fresh-1".into(),
        ..text(g.id, "new")
    };
    assert_code(bob.client.send_message(fresh).await, E::NotFound);
}

/// A retry answers the original as it is now, shown as any read shows it: of an emoji more
/// than 100 users reacted with, the first 100 (spec 10), not every reactor.
#[tokio::test]
async fn a_retry_shows_the_reactions_of_the_original_as_a_read_does() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let g = group(&alice, pb::ChatKind::Group, "crowd", &[]).await;
    let store = server.store();
    let mut crowd = Vec::new();
    for i in 0..101 {
        let user = store
            .create_user(chatd::testing::NewUser {
                username: format!("fan{i}"),
                email: format!("fan{i}@example.test"),
                password_hash: String::new(),
                role: pb::Role::User,
                now_ms: 1,
            })
            .await
            .expect("create");
        crowd.push(user.id);
    }
    store
        .add_members(
            g.id,
            chatd::testing::Actor::unjudged(alice.id),
            &crowd,
            10_000,
            2,
        )
        .await
        .expect("add");
    let send = pb::SendMessage {
        client_msg_id: "popular-1".into(),
        ..text(g.id, "react to this")
    };
    let original = alice.client.send_message(send.clone()).await.expect("send");
    for fan in &crowd {
        store
            .set_reaction(
                g.id,
                original.seq,
                chatd::testing::Actor::unjudged(*fan),
                "\u{1F44D}",
                chatd::testing::ReactionChange::Add { max_emoji: 20 },
                3,
            )
            .await
            .expect("react");
    }
    let retried = alice.client.send_message(send).await.expect("the retry");
    assert_eq!(retried.seq, original.seq);
    let shown = &retried.reactions.first().expect("the reaction").user_ids;
    assert_eq!(shown.len(), 100, "{} user ids", shown.len());
    assert_eq!(shown.as_slice(), &crowd[..100]);
}
