//! Chats end to end: private chat uniqueness and blocks, group and channel rules, updates and
//! deletion, per-user chat state and the chat list, and the rule that a chat one is not a member
//! of looks exactly like a chat that does not exist. Membership is in membership.rs.

use crate::support::*;
use chatproto::client::ClientEvent;
use chatproto::pb;
use chatproto::pb::chat_event::Body;
use pb::ErrorCode as E;

#[tokio::test]
async fn private_chats_are_unique_per_pair_and_refused_across_blocks() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let carol = register(&server, "carol").await;
    let dave = register(&server, "dave").await;

    let chat = alice.client.create_private_chat(bob.id).await.unwrap();
    assert_eq!(chat.kind(), pb::ChatKind::Private);
    assert_eq!(chat.member_count, 2);
    let mut members: Vec<u64> = chat.members.iter().map(|m| m.user_id).collect();
    members.sort_unstable();
    assert_eq!(members, vec![alice.id, bob.id]);
    assert_eq!(
        alice.client.create_private_chat(bob.id).await.unwrap().id,
        chat.id
    );
    assert_eq!(
        bob.client.create_private_chat(alice.id).await.unwrap().id,
        chat.id
    );
    // Bob learns of it live, from its first event.
    let first = bob.next_chat_event(chat.id).await;
    assert_eq!(first.seq, 1);
    assert!(matches!(first.body, Some(Body::ChatCreated(_))));

    assert_field(
        alice.client.create_private_chat(alice.id).await,
        E::InvalidArgument,
        "create_private_chat.user_id",
    );
    assert_field(
        alice.client.create_private_chat(0).await,
        E::InvalidArgument,
        "create_private_chat.user_id",
    );
    assert_code(
        alice.client.create_private_chat(9_999_999).await,
        E::NotFound,
    );
    server
        .store()
        .set_disabled(dave.id, true, None)
        .await
        .unwrap();
    assert_code(alice.client.create_private_chat(dave.id).await, E::NotFound);

    // A block in either direction refuses the chat.
    carol
        .client
        .block_user(pb::BlockUser { user_id: alice.id })
        .await
        .unwrap();
    assert_eq!(
        assert_code(
            alice.client.create_private_chat(carol.id).await,
            E::PermissionDenied
        )
        .message,
        "blocked"
    );
    assert_eq!(
        assert_code(
            carol.client.create_private_chat(alice.id).await,
            E::PermissionDenied
        )
        .message,
        "blocked"
    );
    carol
        .client
        .unblock_user(pb::UnblockUser { user_id: alice.id })
        .await
        .unwrap();
    assert!(alice.client.create_private_chat(carol.id).await.is_ok());
}

#[tokio::test]
async fn groups_and_channels_are_created_with_their_rules() {
    let server = start().await;
    let owner = register(&server, "owner").await;
    let ann = register(&server, "ann").await;
    let ben = register(&server, "ben").await;
    let grumpy = register(&server, "grumpy").await;
    grumpy
        .client
        .block_user(pb::BlockUser { user_id: owner.id })
        .await
        .unwrap();

    let create = |kind: pb::ChatKind, title: &str, members: Vec<u64>| pb::CreateGroup {
        kind: kind as i32,
        title: title.into(),
        description: String::new(),
        member_ids: members,
    };
    let c = &owner.client;
    assert_field(
        c.create_group(create(pb::ChatKind::Unspecified, "t", vec![]))
            .await,
        E::InvalidArgument,
        "create_group.kind",
    );
    assert_field(
        c.create_group(create(pb::ChatKind::Private, "t", vec![]))
            .await,
        E::InvalidArgument,
        "create_group.kind",
    );
    assert_field(
        c.create_group(create(pb::ChatKind::Group, "  ", vec![]))
            .await,
        E::InvalidArgument,
        "create_group.title",
    );
    assert_field(
        c.create_group(create(pb::ChatKind::Group, &"x".repeat(129), vec![]))
            .await,
        E::TooLarge,
        "create_group.title",
    );
    assert_field(
        c.create_group(create(pb::ChatKind::Group, "t", vec![0]))
            .await,
        E::InvalidArgument,
        "create_group.member_ids",
    );
    let too_many: Vec<u64> = (1..=10_000).map(|i| i + 1_000_000).collect();
    assert_field(
        c.create_group(create(pb::ChatKind::Group, "t", too_many))
            .await,
        E::InvalidArgument,
        "create_group.member_ids",
    );
    assert_code(
        c.create_group(create(pb::ChatKind::Group, "t", vec![ann.id, 9_999_999]))
            .await,
        E::NotFound,
    );
    assert_code(
        c.create_group(create(pb::ChatKind::Group, "t", vec![ann.id, grumpy.id]))
            .await,
        E::PermissionDenied,
    );

    // Duplicates and the creator in the list are harmless.
    let g = c
        .create_group(create(
            pb::ChatKind::Group,
            "team",
            vec![ann.id, ben.id, ann.id, owner.id],
        ))
        .await
        .unwrap();
    assert_eq!(g.kind(), pb::ChatKind::Group);
    assert_eq!(
        (g.title.as_str(), g.member_count, g.owner_id),
        ("team", 3, owner.id)
    );
    assert_eq!(role_of(&g, owner.id), Some(pb::MemberRole::Owner));
    assert_eq!(role_of(&g, ann.id), Some(pb::MemberRole::Member));
    assert_eq!(g.state.as_ref().unwrap().role(), pb::MemberRole::Owner);
    for member in [&ann, &ben] {
        let ev = member.next_chat_event(g.id).await;
        assert_eq!(ev.seq, 1);
        let Some(Body::ChatCreated(snapshot)) = ev.body else {
            panic!("expected chat_created")
        };
        assert_eq!(snapshot.members.len(), 3);
    }

    let ch = group(&owner, pb::ChatKind::Channel, "news", &[&ann]).await;
    assert_eq!(ch.kind(), pb::ChatKind::Channel);
}

#[tokio::test]
async fn chats_are_updated_by_admins_and_deleted_by_owners_or_server_admins() {
    let server = start().await;
    let owner = register(&server, "owner").await;
    let admin = register(&server, "admin").await;
    let member = register(&server, "member").await;
    let g = group(&owner, pb::ChatKind::Group, "team", &[&admin, &member]).await;
    owner
        .client
        .set_member_role(pb::SetMemberRole {
            chat_id: g.id,
            user_id: admin.id,
            role: pb::MemberRole::Admin as i32,
        })
        .await
        .unwrap();

    let update = |title: &str| pb::UpdateChat {
        chat_id: g.id,
        title: Some(title.into()),
        description: Some("about".into()),
        avatar_file_id: None,
    };
    assert_code(
        member.client.update_chat(update("mine")).await,
        E::PermissionDenied,
    );
    assert_field(
        admin.client.update_chat(update("")).await,
        E::InvalidArgument,
        "update_chat.title",
    );
    let updated = admin.client.update_chat(update("renamed")).await.unwrap();
    assert_eq!(
        (updated.title.as_str(), updated.description.as_str()),
        ("renamed", "about")
    );
    let (_, seen) = member
        .chat_event(g.id, |b| match b {
            Body::ChatUpdated(u) => Some(u.clone()),
            _ => None,
        })
        .await;
    assert_eq!(seen.title, "renamed");
    let private = owner.client.create_private_chat(member.id).await.unwrap();
    assert_code(
        owner
            .client
            .update_chat(pb::UpdateChat {
                chat_id: private.id,
                title: Some("x".into()),
                ..Default::default()
            })
            .await,
        E::PermissionDenied,
    );

    // Admins cannot delete; the owner can, and every member is told.
    owner.send(g.id, "last words").await;
    assert_code(
        admin
            .client
            .delete_chat(pb::DeleteChat { chat_id: g.id })
            .await,
        E::PermissionDenied,
    );
    owner
        .client
        .delete_chat(pb::DeleteChat { chat_id: g.id })
        .await
        .unwrap();
    let (deleted, _) = member
        .chat_event(g.id, |b| matches!(b, Body::ChatDeleted(_)).then_some(()))
        .await;
    assert_chat_not_found(member.client.get_chat(pb::GetChat { chat_id: g.id }).await);
    assert_chat_not_found(member.client.send_message(text(g.id, "hello?")).await);
    // Former members still read the log up to the deletion, and Sync reports where it ended.
    let events = member
        .client
        .get_chat_events(pb::GetChatEvents {
            chat_id: g.id,
            after_seq: 0,
            limit: 0,
        })
        .await
        .unwrap();
    assert_eq!(events.events.last().map(|e| e.seq), Some(deleted.seq));
    assert!(!events.more);
    let sync = member
        .client
        .sync(pb::Sync {
            cursors: vec![pb::ChatCursor {
                chat_id: g.id,
                seq: deleted.seq,
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let head = sync
        .heads
        .iter()
        .find(|h| h.chat_id == g.id)
        .expect("head of the deleted chat");
    assert_eq!((head.last_seq, head.member), (deleted.seq, false));

    // Either member deletes a private chat; opening it again makes a new one.
    member
        .client
        .delete_chat(pb::DeleteChat {
            chat_id: private.id,
        })
        .await
        .unwrap();
    owner
        .chat_event(private.id, |b| {
            matches!(b, Body::ChatDeleted(_)).then_some(())
        })
        .await;
    let reopened = owner.client.create_private_chat(member.id).await.unwrap();
    assert_ne!(reopened.id, private.id);

    // A server admin deletes any chat, also one they are not in; others learn nothing.
    let other = group(&member, pb::ChatKind::Channel, "other", &[&admin]).await;
    assert_chat_not_found(
        owner
            .client
            .delete_chat(pb::DeleteChat { chat_id: other.id })
            .await,
    );
    let root = register_admin(&server, "root").await;
    root.client
        .delete_chat(pb::DeleteChat { chat_id: other.id })
        .await
        .unwrap();
    admin
        .chat_event(other.id, |b| {
            matches!(b, Body::ChatDeleted(_)).then_some(())
        })
        .await;
    assert_chat_not_found(
        root.client
            .delete_chat(pb::DeleteChat { chat_id: 9_999_999 })
            .await,
    );
}

#[tokio::test]
async fn chat_state_syncs_across_devices_and_shapes_the_chat_list() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let alice2 = device(&server, &alice).await;
    let bob = register(&server, "bob").await;
    let private = alice.client.create_private_chat(bob.id).await.unwrap();
    let mut groups = Vec::new();
    for title in ["g1", "g2", "g3", "g4"] {
        groups.push(group(&alice, pb::ChatKind::Group, title, &[&bob]).await.id);
    }
    let (pinned, archived) = (groups[1], groups[2]);

    let set = |chat_id: u64, pinned: Option<bool>, archived: Option<bool>| pb::SetChatState {
        chat_id,
        pinned,
        muted_until_ms: None,
        archived,
        mentions_only: None,
    };
    let chat = alice
        .client
        .set_chat_state(set(pinned, Some(true), None))
        .await
        .unwrap();
    assert!(chat.state.as_ref().unwrap().pinned);
    let changed = alice2
        .wait_for(|e| match e {
            ClientEvent::ChatState(c) => Some(c),
            _ => None,
        })
        .await;
    assert_eq!(changed.chat_id, pinned);
    assert!(changed.state.unwrap().pinned);
    // The device that made the change is not told: the next event it gets is Bob's message.
    bob.send(private.id, "sentinel").await;
    let next = alice
        .wait_for(|e| match e {
            ClientEvent::ChatState(_) => Some(None),
            ClientEvent::Chat(ev) if ev.chat_id == private.id && created(&ev).is_some() => {
                Some(Some(ev))
            }
            _ => None,
        })
        .await;
    assert!(
        next.is_some(),
        "the device that changed the state was sent ChatStateChanged"
    );

    alice
        .client
        .set_chat_state(set(archived, None, Some(true)))
        .await
        .unwrap();
    assert_field(
        alice
            .client
            .set_chat_state(pb::SetChatState {
                chat_id: pinned,
                muted_until_ms: Some(-1),
                ..Default::default()
            })
            .await,
        E::InvalidArgument,
        "set_chat_state.muted_until_ms",
    );
    for i in 0..2 {
        bob.send(private.id, &format!("unread {i}")).await;
    }

    let list = |cursor: String, include_archived: bool| pb::ListChats {
        limit: 2,
        cursor,
        include_archived,
    };
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = alice.client.list_chats(list(cursor, true)).await.unwrap();
        assert!(page.chats.len() <= 2);
        all.extend(page.chats);
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    let ids: Vec<u64> = all.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert_eq!(ids[0], pinned, "pinned chats come first");
    // Then by last activity: the private chat just got messages.
    assert_eq!(ids[1], private.id);
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "pages overlap: {ids:?}");
    let entry = &all[1];
    let state = entry.state.as_ref().unwrap();
    assert_eq!(state.unread_count, 3);
    assert_eq!(
        entry.last_message.as_ref().map(|m| m.text.as_str()),
        Some("unread 1")
    );
    assert!(entry.members.is_empty());

    let without = alice
        .client
        .list_chats(pb::ListChats {
            limit: 0,
            cursor: String::new(),
            include_archived: false,
        })
        .await
        .unwrap();
    assert_eq!(without.chats.len(), 4);
    assert!(without.chats.iter().all(|c| c.id != archived));
    assert!(without.next_cursor.is_empty());

    assert_field(
        alice.client.list_chats(list("garbage".into(), false)).await,
        E::InvalidArgument,
        "list_chats.cursor",
    );
    assert_field(
        alice
            .client
            .list_chats(pb::ListChats {
                limit: 101,
                ..Default::default()
            })
            .await,
        E::InvalidArgument,
        "list_chats.limit",
    );
}

#[tokio::test]
async fn a_chat_one_is_not_in_looks_like_no_chat_at_all() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    // Without datagrams, typing goes as a request and its refusal is visible.
    let eve = register_with(stream_only_config(&server), "eve").await;
    let g = group(&alice, pb::ChatKind::Group, "secret", &[&bob]).await;
    let m = alice.send(g.id, "classified plans").await;

    for chat_id in [g.id, 9_999_999] {
        let c = &eve.client;
        assert_chat_not_found(c.get_chat(pb::GetChat { chat_id }).await);
        assert_chat_not_found(
            c.update_chat(pb::UpdateChat {
                chat_id,
                title: Some("mine".into()),
                ..Default::default()
            })
            .await,
        );
        assert_chat_not_found(c.delete_chat(pb::DeleteChat { chat_id }).await);
        assert_chat_not_found(
            c.add_members(pb::AddMembers {
                chat_id,
                user_ids: vec![eve.id],
            })
            .await,
        );
        assert_chat_not_found(
            c.remove_member(pb::RemoveMember {
                chat_id,
                user_id: bob.id,
            })
            .await,
        );
        assert_chat_not_found(c.leave_chat(pb::LeaveChat { chat_id }).await);
        assert_chat_not_found(
            c.set_member_role(pb::SetMemberRole {
                chat_id,
                user_id: eve.id,
                role: pb::MemberRole::Admin as i32,
            })
            .await,
        );
        assert_chat_not_found(
            c.transfer_ownership(pb::TransferOwnership {
                chat_id,
                user_id: eve.id,
            })
            .await,
        );
        assert_chat_not_found(
            c.set_chat_state(pb::SetChatState {
                chat_id,
                pinned: Some(true),
                ..Default::default()
            })
            .await,
        );
        assert_chat_not_found(c.send_message(text(chat_id, "let me in")).await);
        assert_chat_not_found(
            c.edit_message(pb::EditMessage {
                chat_id,
                seq: m.seq,
                text: "x".into(),
            })
            .await,
        );
        assert_chat_not_found(
            c.delete_message(pb::DeleteMessage {
                chat_id,
                seq: m.seq,
                for_everyone: true,
            })
            .await,
        );
        assert_chat_not_found(
            c.delete_message(pb::DeleteMessage {
                chat_id,
                seq: m.seq,
                for_everyone: false,
            })
            .await,
        );
        assert_chat_not_found(
            c.react(pb::React {
                chat_id,
                seq: m.seq,
                emoji: "👍".into(),
                remove: false,
            })
            .await,
        );
        assert_chat_not_found(
            c.get_history(pb::GetHistory {
                chat_id,
                ..Default::default()
            })
            .await,
        );
        assert_chat_not_found(
            c.search_messages(pb::SearchMessages {
                chat_id,
                query: "classified".into(),
                ..Default::default()
            })
            .await,
        );
        assert_chat_not_found(
            c.mark_receipt(pb::MarkReceipt {
                chat_id,
                kind: pb::ReceiptKind::Read as i32,
                up_to_seq: 1,
            })
            .await,
        );
        assert_chat_not_found(c.get_receipts(pb::GetReceipts { chat_id }).await);
        assert_chat_not_found(
            c.get_message_edits(pb::GetMessageEdits {
                chat_id,
                seq: m.seq,
                ..Default::default()
            })
            .await,
        );
        assert_chat_not_found(
            c.get_chat_events(pb::GetChatEvents {
                chat_id,
                after_seq: 0,
                limit: 0,
            })
            .await,
        );
        assert_chat_not_found(c.send_typing(chat_id).await);
    }
    let found = eve
        .client
        .search_messages(pb::SearchMessages {
            query: "classified".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(found.messages.is_empty());
    let sync = eve
        .client
        .sync(pb::Sync {
            cursors: vec![pb::ChatCursor {
                chat_id: g.id,
                seq: 0,
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(sync.heads.iter().all(|h| h.chat_id != g.id));
    // Nothing Eve tried reached the members' log.
    let history = bob
        .client
        .get_history(pb::GetHistory {
            chat_id: g.id,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(seqs(&history.messages), vec![m.seq]);
    assert_eq!(history.messages[0].text, "classified plans");
}
