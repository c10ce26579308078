//! Conformance cases for chat lifecycle, membership and per-user state.

use std::sync::Arc;

use super::*;

fn member_ids(members: &[MemberRecord]) -> Vec<u64> {
    let mut ids: Vec<u64> = members.iter().map(|m| m.user_id).collect();
    ids.sort_unstable();
    ids
}

/// A pair has one private chat, created with a `chat_created` event at seq 1.
pub async fn chats_private_is_unique<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let (chat, created) = s.open_private_chat(a, b, T0).await.expect("open");
    assert!(created);
    assert_eq!(chat.kind, pb::ChatKind::Private);
    assert_eq!((chat.title.as_str(), chat.owner_id), ("", 0));
    assert_eq!(
        (
            chat.last_seq,
            chat.member_count,
            chat.created_at_ms,
            chat.last_activity_ms
        ),
        (1, 2, T0, T0)
    );
    let (again, created) = s.open_private_chat(b, a, T0 + 1).await.expect("open");
    assert!(!created);
    assert_eq!(again, chat);
    assert!(!s.open_private_chat(a, b, T0 + 2).await.expect("open").1);

    let events = all_events(&s, chat.id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].chat_id, events[0].seq, events[0].at_ms),
        (chat.id, 1, T0)
    );
    match body(&events[0]) {
        Body::ChatCreated(created) => {
            assert_eq!(created.id, chat.id);
            assert_eq!(created.kind, pb::ChatKind::Private as i32);
            let mut ids: Vec<u64> = created.members.iter().map(|m| m.user_id).collect();
            ids.sort_unstable();
            assert_eq!(ids, vec![a, b]);
        }
        other => panic!("expected chat_created, got {other:?}"),
    }
    let members = s.members(chat.id).await.expect("members");
    assert_eq!(member_ids(&members), vec![a, b]);
    assert!(members.iter().all(|m| m.role == pb::MemberRole::Member
        && m.joined_at_seq == 1
        && m.left_at_seq.is_none()));

    assert_conflict(
        s.open_private_chat(a, a, T0).await,
        ConflictKind::PrivateChatWithSelf,
    );
    assert_not_found(s.open_private_chat(a, 999_999, T0).await, "user");
    let c = user(&s, "c").await;
    let other = private(&s, a, c).await;
    assert_ne!(other, chat.id);
}

/// Concurrent opens of the same pair create exactly one chat.
pub async fn chats_private_concurrent_opens<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let s = Arc::new(s);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = Arc::clone(&s);
            let (x, y) = if i % 2 == 0 { (a, b) } else { (b, a) };
            tokio::spawn(async move { s.open_private_chat(x, y, T0).await })
        })
        .collect();
    let mut ids = Vec::new();
    let mut created = 0;
    for task in tasks {
        let (chat, new) = task.await.expect("task").expect("open");
        ids.push(chat.id);
        created += usize::from(new);
    }
    assert_eq!(created, 1, "exactly one open creates the chat");
    assert!(ids.iter().all(|&id| id == ids[0]));
    assert_eq!(all_events(&*s, ids[0]).await.len(), 1);
    assert_eq!(s.shared_chat_peers(a).await.expect("peers"), vec![b]);
}

/// After a private chat is deleted, the pair gets a new one.
pub async fn chats_private_reopen_after_delete<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let first = private(&s, a, b).await;
    s.delete_chat(first, Actor::unjudged(a), T0 + 1)
        .await
        .expect("delete");
    assert_eq!(s.chat(first).await.expect("chat"), None);
    let (second, created) = s.open_private_chat(b, a, T0 + 2).await.expect("open");
    assert!(created);
    assert_ne!(second.id, first);
    assert_eq!(second.last_seq, 1);
}

/// Groups and channels start with the owner and the deduplicated members in `chat_created`.
pub async fn chats_group_creation<S: Store + 'static>(s: S) {
    let o = user(&s, "owner").await;
    let m1 = user(&s, "m1").await;
    let m2 = user(&s, "m2").await;
    let (chat, event) = s
        .create_group(NewGroup {
            kind: pb::ChatKind::Group,
            title: "Team".into(),
            description: "about".into(),
            owner: o,
            member_ids: vec![m1, o, m2, m1],
            now_ms: T0,
        })
        .await
        .expect("create");
    assert_eq!(chat.kind, pb::ChatKind::Group);
    assert_eq!(
        (
            chat.title.as_str(),
            chat.description.as_str(),
            chat.owner_id
        ),
        ("Team", "about", o)
    );
    assert_eq!(
        (chat.last_seq, chat.member_count, chat.created_at_ms),
        (1, 3, T0)
    );
    assert_eq!(
        (event.chat_id, event.seq, event.actor_id, event.at_ms),
        (chat.id, 1, o, T0)
    );
    match body(&event) {
        Body::ChatCreated(created) => {
            assert_eq!((created.id, created.title.as_str()), (chat.id, "Team"));
            assert_eq!(created.owner_id, o);
            let mut ids: Vec<u64> = created.members.iter().map(|m| m.user_id).collect();
            ids.sort_unstable();
            assert_eq!(ids, vec![o, m1, m2]);
            for m in &created.members {
                let want = if m.user_id == o {
                    pb::MemberRole::Owner
                } else {
                    pb::MemberRole::Member
                };
                assert_eq!(m.role, want as i32);
            }
        }
        other => panic!("expected chat_created, got {other:?}"),
    }
    assert_eq!(all_events(&s, chat.id).await, vec![event]);
    assert_eq!(s.chat(chat.id).await.expect("chat"), Some(chat.clone()));
    let owner = s.member(chat.id, o).await.expect("member").expect("exists");
    assert_eq!(
        (owner.role, owner.joined_at_seq, owner.left_at_seq),
        (pb::MemberRole::Owner, 1, None)
    );
    assert_eq!(
        member_ids(&s.members(chat.id).await.expect("members")),
        vec![o, m1, m2]
    );

    let (channel, _) = s
        .create_group(NewGroup {
            kind: pb::ChatKind::Channel,
            title: "News".into(),
            description: String::new(),
            owner: o,
            member_ids: vec![],
            now_ms: T0,
        })
        .await
        .expect("channel");
    assert_eq!(
        (channel.kind, channel.member_count),
        (pb::ChatKind::Channel, 1)
    );
    for kind in [pb::ChatKind::Private, pb::ChatKind::Unspecified] {
        assert_conflict(
            s.create_group(NewGroup {
                kind,
                title: "x".into(),
                description: String::new(),
                owner: o,
                member_ids: vec![],
                now_ms: T0,
            })
            .await,
            ConflictKind::NotAGroupKind,
        );
    }
    assert_not_found(
        s.create_group(NewGroup {
            kind: pb::ChatKind::Group,
            title: "x".into(),
            description: String::new(),
            owner: o,
            member_ids: vec![999_999],
            now_ms: T0,
        })
        .await,
        "user",
    );
    assert_eq!(s.chat(999_999).await.expect("chat"), None);
}

/// Updates change only the given fields and append `chat_updated` with the new values.
pub async fn chats_update<S: Store + 'static>(s: S) {
    let o = user(&s, "o").await;
    let g = group(&s, o, &[]).await;
    let (chat, event) = s
        .update_chat(
            g,
            Actor::unjudged(o),
            ChatPatch {
                title: Some("New".into()),
                ..Default::default()
            },
            T0 + 10,
        )
        .await
        .expect("update");
    assert_eq!(
        (chat.title.as_str(), chat.last_seq, chat.last_activity_ms),
        ("New", 2, T0 + 10)
    );
    assert_eq!((event.seq, event.actor_id, event.at_ms), (2, o, T0 + 10));
    assert_eq!(
        body(&event),
        &Body::ChatUpdated(pb::ChatUpdated {
            title: "New".into(),
            description: String::new(),
            avatar_file_id: String::new(),
        })
    );
    let (chat, event) = s
        .update_chat(
            g,
            Actor::unjudged(o),
            ChatPatch {
                description: Some("desc".into()),
                avatar_file_id: Some("img".into()),
                ..Default::default()
            },
            T0 + 11,
        )
        .await
        .expect("update");
    assert_eq!(
        (
            chat.title.as_str(),
            chat.description.as_str(),
            chat.avatar_file_id.as_str()
        ),
        ("New", "desc", "img")
    );
    assert_eq!(
        body(&event),
        &Body::ChatUpdated(pb::ChatUpdated {
            title: "New".into(),
            description: "desc".into(),
            avatar_file_id: "img".into(),
        })
    );
    assert_eq!(s.chat(g).await.expect("chat"), Some(chat));
    assert_not_found(
        s.update_chat(999_999, Actor::unjudged(o), ChatPatch::default(), T0)
            .await,
        "chat",
    );
}

/// An ended call takes the chat's next seq as `call_ended`, reads back from the log like any
/// event, and is refused in a chat that does not exist or was deleted.
pub async fn chats_record_call<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let p = private(&s, a, b).await;
    send(&s, p, a, "call me", T0 + 1).await;
    let call = pb::CallEnded {
        call_id: 77,
        caller_id: a,
        video: true,
        reason: pb::CallEndReason::HungUp as i32,
        started_at_ms: T0 + 2,
        duration_ms: 95_000,
        group: false,
    };
    let event = s
        .record_call(p, b, call, T0 + 100_000)
        .await
        .expect("record");
    assert_eq!((event.chat_id, event.seq, event.actor_id), (p, 3, b));
    assert_eq!(event.at_ms, T0 + 100_000);
    assert_eq!(body(&event), &Body::CallEnded(call));
    let events = all_events(&s, p).await;
    assert_eq!(events.last(), Some(&event));
    assert_not_found(s.record_call(999_999, a, call, T0).await, "chat");
    s.delete_chat(p, Actor::unjudged(a), T0 + 200_000)
        .await
        .expect("delete");
    assert_not_found(s.record_call(p, a, call, T0).await, "chat");
}

/// Deleting ends the log with `chat_deleted`, turns members into former members and refuses
/// further changes; the log stays readable.
pub async fn chats_delete<S: Store + 'static>(s: S) {
    let o = user(&s, "o").await;
    let m = user(&s, "m").await;
    let g = group(&s, o, &[m]).await;
    send(&s, g, m, "hi", T0 + 1).await;
    let event = s
        .delete_chat(g, Actor::unjudged(o), T0 + 2)
        .await
        .expect("delete");
    assert_eq!((event.seq, event.actor_id), (3, o));
    assert_eq!(body(&event), &Body::ChatDeleted(pb::ChatDeleted {}));
    assert_eq!(s.chat(g).await.expect("chat"), None);
    assert!(s.members(g).await.expect("members").is_empty());
    for u in [o, m] {
        let former = s.member(g, u).await.expect("member").expect("row kept");
        assert_eq!(former.left_at_seq, Some(3));
    }
    let events = all_events(&s, g).await;
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(seqs(&full_history(&s, g, m).await), vec![2]);

    assert_not_found(
        s.update_chat(g, Actor::unjudged(o), ChatPatch::default(), T0)
            .await,
        "chat",
    );
    assert_not_found(s.delete_chat(g, Actor::unjudged(o), T0).await, "chat");
    assert_not_found(
        s.append_message(text_message(g, o, "late", T0)).await,
        "chat",
    );
    assert_not_found(
        s.add_members(g, Actor::unjudged(o), &[m], u32::MAX, T0)
            .await,
        "chat",
    );
    assert_not_found(
        s.remove_member(g, Actor::unjudged(o), m, false, T0).await,
        "chat",
    );
    assert_not_found(s.delete_chat(999_999, Actor::unjudged(o), T0).await, "chat");
}

/// `members_added` lists only those actually added; re-adding a former member renews the row.
pub async fn chats_add_members<S: Store + 'static>(s: S) {
    let o = user(&s, "o").await;
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = user(&s, "c").await;
    let g = group(&s, o, &[a]).await;
    let event = s
        .add_members(g, Actor::unjudged(o), &[b, a, b, c], u32::MAX, T0 + 5)
        .await
        .expect("add");
    assert_eq!((event.seq, event.actor_id, event.at_ms), (2, o, T0 + 5));
    match body(&event) {
        Body::MembersAdded(added) => {
            let mut ids: Vec<u64> = added.members.iter().map(|m| m.user_id).collect();
            ids.sort_unstable();
            assert_eq!(ids, vec![b, c]);
            assert!(
                added
                    .members
                    .iter()
                    .all(|m| m.role == pb::MemberRole::Member as i32 && m.joined_at_ms == T0 + 5)
            );
        }
        other => panic!("expected members_added, got {other:?}"),
    }
    assert_eq!(
        s.chat(g).await.expect("chat").expect("exists").member_count,
        4
    );
    assert_conflict(
        s.add_members(g, Actor::unjudged(o), &[a, b], u32::MAX, T0)
            .await,
        ConflictKind::AlreadyMembers,
    );
    assert_conflict(
        s.add_members(g, Actor::unjudged(o), &[], u32::MAX, T0)
            .await,
        ConflictKind::AlreadyMembers,
    );
    assert_eq!(s.chat(g).await.expect("chat").expect("exists").last_seq, 2);

    s.remove_member(g, Actor::unjudged(o), b, false, T0 + 6)
        .await
        .expect("remove");
    let event = s
        .add_members(g, Actor::unjudged(o), &[b], u32::MAX, T0 + 7)
        .await
        .expect("re-add");
    let back = s.member(g, b).await.expect("member").expect("exists");
    assert_eq!(
        (back.joined_at_seq, back.left_at_seq, back.joined_at_ms),
        (event.seq, None, T0 + 7)
    );
    assert_eq!(
        s.chat(g).await.expect("chat").expect("exists").member_count,
        4
    );
    assert_not_found(
        s.add_members(g, Actor::unjudged(o), &[999_999], u32::MAX, T0)
            .await,
        "user",
    );

    // The limit counts current members and those joining, not those already in.
    let d = user(&s, "d").await;
    let e = user(&s, "e").await;
    let last = s.chat(g).await.expect("chat").expect("exists").last_seq;
    assert_conflict(
        s.add_members(g, Actor::unjudged(o), &[d, e], 5, T0 + 8)
            .await,
        ConflictKind::ChatFull { max_members: 5 },
    );
    let unchanged = s.chat(g).await.expect("chat").expect("exists");
    assert_eq!((unchanged.member_count, unchanged.last_seq), (4, last));
    assert_eq!(s.member(g, d).await.expect("member"), None);
    s.add_members(g, Actor::unjudged(o), &[a, d], 5, T0 + 9)
        .await
        .expect("up to the limit");
    assert_conflict(
        s.add_members(g, Actor::unjudged(o), &[e], 5, T0 + 10).await,
        ConflictKind::ChatFull { max_members: 5 },
    );
    assert_eq!(
        s.chat(g).await.expect("chat").expect("exists").member_count,
        5
    );
    let p = private(&s, a, b).await;
    assert_conflict(
        s.add_members(p, Actor::unjudged(a), &[c], u32::MAX, T0)
            .await,
        ConflictKind::PrivateChatMembers,
    );
}

/// Removal and leaving append `member_removed` and end the membership at that seq; the owner
/// cannot be removed.
pub async fn chats_remove_and_leave<S: Store + 'static>(s: S) {
    let o = user(&s, "o").await;
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let stranger = user(&s, "x").await;
    let g = group(&s, o, &[a, b]).await;
    let removed = s
        .remove_member(g, Actor::unjudged(o), a, false, T0 + 1)
        .await
        .expect("remove");
    assert_eq!((removed.seq, removed.actor_id), (2, o));
    assert_eq!(
        body(&removed),
        &Body::MemberRemoved(pb::MemberRemoved {
            user_id: a,
            left: false
        })
    );
    let left = s
        .remove_member(g, Actor::unjudged(b), b, true, T0 + 2)
        .await
        .expect("leave");
    assert_eq!(
        body(&left),
        &Body::MemberRemoved(pb::MemberRemoved {
            user_id: b,
            left: true
        })
    );
    assert_eq!(left.seq, 3);
    assert_eq!(
        s.member(g, a)
            .await
            .expect("member")
            .expect("kept")
            .left_at_seq,
        Some(2)
    );
    assert_eq!(
        s.member(g, b)
            .await
            .expect("member")
            .expect("kept")
            .left_at_seq,
        Some(3)
    );
    assert_eq!(member_ids(&s.members(g).await.expect("members")), vec![o]);
    assert_eq!(
        s.chat(g).await.expect("chat").expect("exists").member_count,
        1
    );
    assert_not_found(
        s.remove_member(g, Actor::unjudged(o), a, false, T0).await,
        "member",
    );
    assert_not_found(
        s.remove_member(g, Actor::unjudged(o), stranger, false, T0)
            .await,
        "member",
    );
    assert_conflict(
        s.remove_member(g, Actor::unjudged(o), o, true, T0).await,
        ConflictKind::OwnerMustTransfer,
    );
    assert_eq!(s.member(g, stranger).await.expect("member"), None);
}

/// Roles change by event; ownership moves with two events, the new owner's first.
pub async fn chats_roles_and_ownership<S: Store + 'static>(s: S) {
    let o = user(&s, "o").await;
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let x = user(&s, "x").await;
    let g = group(&s, o, &[a, b]).await;
    let event = s
        .set_member_role(g, Actor::unjudged(o), a, pb::MemberRole::Admin, T0 + 1)
        .await
        .expect("promote");
    assert_eq!(
        body(&event),
        &Body::MemberRoleChanged(pb::MemberRoleChanged {
            user_id: a,
            role: pb::MemberRole::Admin as i32
        })
    );
    assert_eq!(
        s.member(g, a).await.expect("m").expect("exists").role,
        pb::MemberRole::Admin
    );
    assert_conflict(
        s.set_member_role(g, Actor::unjudged(o), a, pb::MemberRole::Admin, T0)
            .await,
        ConflictKind::SameRole,
    );
    assert_conflict(
        s.set_member_role(g, Actor::unjudged(o), b, pb::MemberRole::Owner, T0)
            .await,
        ConflictKind::InvalidRole,
    );
    assert_conflict(
        s.set_member_role(g, Actor::unjudged(o), o, pb::MemberRole::Member, T0)
            .await,
        ConflictKind::OwnerRole,
    );
    assert_not_found(
        s.set_member_role(g, Actor::unjudged(o), x, pb::MemberRole::Admin, T0)
            .await,
        "member",
    );

    // Only from the owner: a transfer decided before another one committed changes nothing.
    assert_conflict(
        s.transfer_ownership(g, o, b, x, T0).await,
        ConflictKind::NotOwner,
    );
    let events = s
        .transfer_ownership(g, o, o, b, T0 + 2)
        .await
        .expect("transfer");
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].seq, events[0].seq + 1);
    assert_eq!(
        body(&events[0]),
        &Body::MemberRoleChanged(pb::MemberRoleChanged {
            user_id: b,
            role: pb::MemberRole::Owner as i32
        })
    );
    assert_eq!(
        body(&events[1]),
        &Body::MemberRoleChanged(pb::MemberRoleChanged {
            user_id: o,
            role: pb::MemberRole::Admin as i32
        })
    );
    assert_eq!(s.chat(g).await.expect("chat").expect("exists").owner_id, b);
    assert_eq!(
        s.member(g, b).await.expect("m").expect("exists").role,
        pb::MemberRole::Owner
    );
    assert_eq!(
        s.member(g, o).await.expect("m").expect("exists").role,
        pb::MemberRole::Admin
    );
    assert_not_found(s.transfer_ownership(g, b, b, x, T0).await, "member");
    assert_conflict(
        s.transfer_ownership(g, b, b, b, T0).await,
        ConflictKind::AlreadyOwner,
    );
    // The old owner, an admin now, transfers nothing: no event, no role changes.
    let before = s.chat(g).await.expect("chat").expect("exists").last_seq;
    assert_conflict(
        s.transfer_ownership(g, o, o, a, T0 + 3).await,
        ConflictKind::NotOwner,
    );
    let after = s.chat(g).await.expect("chat").expect("exists");
    assert_eq!((after.owner_id, after.last_seq), (b, before));
    for (user, role) in [(o, pb::MemberRole::Admin), (a, pb::MemberRole::Admin)] {
        assert_eq!(
            s.member(g, user).await.expect("m").expect("exists").role,
            role
        );
    }
    // The old owner is an admin now and may leave.
    s.remove_member(g, Actor::unjudged(o), o, true, T0 + 3)
        .await
        .expect("old owner leaves");
    let p = private(&s, a, x).await;
    assert_conflict(
        s.set_member_role(p, Actor::unjudged(a), x, pb::MemberRole::Admin, T0)
            .await,
        ConflictKind::PrivateChatRoles,
    );
    assert_conflict(
        s.transfer_ownership(p, a, a, x, T0).await,
        ConflictKind::PrivateChatOwner,
    );
}

/// Per-user state changes only the given fields, for that user only, without an event.
pub async fn chats_user_state<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = user(&s, "c").await;
    let p = private(&s, a, b).await;
    let state = s
        .set_user_state(
            p,
            a,
            UserChatPatch {
                pinned: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("pin");
    assert_eq!(
        state,
        UserChatState {
            pinned: true,
            ..Default::default()
        }
    );
    let state = s
        .set_user_state(
            p,
            a,
            UserChatPatch {
                muted_until_ms: Some(i64::MAX),
                archived: Some(true),
                mentions_only: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("mute");
    assert_eq!(
        (
            state.pinned,
            state.muted_until_ms,
            state.archived,
            state.mentions_only
        ),
        (true, i64::MAX, true, true)
    );
    let mine = s.user_chat(p, a).await.expect("mine").expect("exists");
    assert_eq!(mine.state, state);
    let theirs = s.user_chat(p, b).await.expect("theirs").expect("exists");
    assert_eq!(theirs.state, UserChatState::default());
    assert_eq!(s.chat(p).await.expect("chat").expect("exists").last_seq, 1);
    assert_not_found(
        s.set_user_state(p, c, UserChatPatch::default()).await,
        "member",
    );
}

/// Membership rows and own states of many users in one read: current and former members among
/// those asked, by ascending user id; others (never members, unknown ids) are left out.
pub async fn chats_member_states<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = user(&s, "c").await;
    let d = user(&s, "d").await;
    let g = group(&s, a, &[b, c]).await;
    let muted = s
        .set_user_state(
            g,
            b,
            UserChatPatch {
                muted_until_ms: Some(T0 + 1),
                mentions_only: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("mute");
    let removed = s
        .remove_member(g, Actor::unjudged(a), c, false, T0)
        .await
        .expect("remove");
    let found = s
        .member_states(g, &[d, c, 999_999, b])
        .await
        .expect("member states");
    let users: Vec<u64> = found.iter().map(|(m, _)| m.user_id).collect();
    assert_eq!(users, vec![b, c]);
    let (member_b, state_b) = &found[0];
    assert_eq!(member_b.chat_id, g);
    assert_eq!(member_b.left_at_seq, None);
    assert_eq!(*state_b, muted);
    assert_eq!(found[1].0.left_at_seq, Some(removed.seq));
    assert_eq!(
        found[1].0,
        s.member(g, c).await.expect("member").expect("c")
    );
    assert!(s.member_states(g, &[]).await.expect("none").is_empty());
    assert!(
        s.member_states(999_999, &[a])
            .await
            .expect("no chat")
            .is_empty()
    );
}
