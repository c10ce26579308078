//! Group and channel membership end to end: adding and removing members, leaving, roles, and
//! transferring ownership, with the events each change sends to whom.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::*;
use chatproto::client::ClientEvent;
use chatproto::pb;
use chatproto::pb::chat_event::Body;
use pb::ErrorCode as E;
use tests::raw::RawSession;
use tests::server::TestServer;

#[tokio::test]
async fn membership_roles_and_ownership_follow_the_rules() {
    let server = start().await;
    let owner = register(&server, "owner").await;
    let admin = register(&server, "admin").await;
    let member = register(&server, "member").await;
    let outsider = register(&server, "outsider").await;
    let grumpy = register(&server, "grumpy").await;
    grumpy
        .client
        .block_user(pb::BlockUser { user_id: admin.id })
        .await
        .unwrap();
    let g = group(&owner, pb::ChatKind::Group, "team", &[&admin, &member]).await;
    let id = g.id;

    let role = |user: u64, role: pb::MemberRole| pb::SetMemberRole {
        chat_id: id,
        user_id: user,
        role: role as i32,
    };
    assert_code(
        admin
            .client
            .set_member_role(role(member.id, pb::MemberRole::Admin))
            .await,
        E::PermissionDenied,
    );
    assert_field(
        owner
            .client
            .set_member_role(role(admin.id, pb::MemberRole::Owner))
            .await,
        E::InvalidArgument,
        "set_member_role.role",
    );
    assert_code(
        owner
            .client
            .set_member_role(role(outsider.id, pb::MemberRole::Admin))
            .await,
        E::NotFound,
    );
    owner
        .client
        .set_member_role(role(admin.id, pb::MemberRole::Admin))
        .await
        .unwrap();
    let (_, changed) = member
        .chat_event(id, |b| match b {
            Body::MemberRoleChanged(c) => Some(*c),
            _ => None,
        })
        .await;
    assert_eq!(
        (changed.user_id, changed.role()),
        (admin.id, pb::MemberRole::Admin)
    );

    let add = |users: Vec<u64>| pb::AddMembers {
        chat_id: id,
        user_ids: users,
    };
    assert_code(
        member.client.add_members(add(vec![outsider.id])).await,
        E::PermissionDenied,
    );
    assert_field(
        admin.client.add_members(add(vec![])).await,
        E::InvalidArgument,
        "add_members.user_ids",
    );
    assert_code(
        admin.client.add_members(add(vec![grumpy.id])).await,
        E::PermissionDenied,
    );
    let after = admin
        .client
        .add_members(add(vec![outsider.id]))
        .await
        .unwrap();
    assert_eq!(after.member_count, 4);
    assert_eq!(role_of(&after, outsider.id), Some(pb::MemberRole::Member));
    assert_code(
        admin
            .client
            .add_members(add(vec![outsider.id, member.id]))
            .await,
        E::Conflict,
    );
    // The new member is told live, and may read the chat's log from its start.
    let (_, added) = outsider
        .chat_event(id, |b| match b {
            Body::MembersAdded(a) => Some(a.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        added.members.iter().map(|m| m.user_id).collect::<Vec<_>>(),
        vec![outsider.id]
    );
    let log = outsider
        .client
        .get_chat_events(pb::GetChatEvents {
            chat_id: id,
            after_seq: 0,
            limit: 0,
        })
        .await
        .unwrap();
    assert_eq!(log.events.first().map(|e| e.seq), Some(1));

    let remove = |user: u64| pb::RemoveMember {
        chat_id: id,
        user_id: user,
    };
    assert_code(
        member.client.remove_member(remove(outsider.id)).await,
        E::PermissionDenied,
    );
    assert_code(
        admin.client.remove_member(remove(owner.id)).await,
        E::PermissionDenied,
    );
    assert_field(
        owner.client.remove_member(remove(owner.id)).await,
        E::InvalidArgument,
        "remove_member.user_id",
    );
    admin
        .client
        .remove_member(remove(outsider.id))
        .await
        .unwrap();
    // The removed user is told, then the chat is gone for them.
    let (ev, removed) = outsider
        .chat_event(id, |b| match b {
            Body::MemberRemoved(r) => Some(*r),
            _ => None,
        })
        .await;
    assert_eq!(
        (removed.user_id, removed.left, ev.actor_id),
        (outsider.id, false, admin.id)
    );
    assert_chat_not_found(outsider.client.get_chat(pb::GetChat { chat_id: id }).await);
    assert_chat_not_found(outsider.client.send_message(text(id, "still here?")).await);
    assert_code(
        owner.client.remove_member(remove(outsider.id)).await,
        E::NotFound,
    );

    assert_code(
        owner.client.leave_chat(pb::LeaveChat { chat_id: id }).await,
        E::Conflict,
    );
    let transfer = |user: u64| pb::TransferOwnership {
        chat_id: id,
        user_id: user,
    };
    assert_code(
        admin.client.transfer_ownership(transfer(member.id)).await,
        E::PermissionDenied,
    );
    assert_code(
        owner.client.transfer_ownership(transfer(outsider.id)).await,
        E::NotFound,
    );
    assert_field(
        owner.client.transfer_ownership(transfer(owner.id)).await,
        E::InvalidArgument,
        "transfer_ownership.user_id",
    );
    owner
        .client
        .transfer_ownership(transfer(member.id))
        .await
        .unwrap();
    let chat = member
        .client
        .get_chat(pb::GetChat { chat_id: id })
        .await
        .unwrap();
    assert_eq!(chat.owner_id, member.id);
    assert_eq!(role_of(&chat, member.id), Some(pb::MemberRole::Owner));
    assert_eq!(role_of(&chat, owner.id), Some(pb::MemberRole::Admin));

    // The former owner, now an admin, may leave; everyone left is told it was a leave.
    owner
        .client
        .leave_chat(pb::LeaveChat { chat_id: id })
        .await
        .unwrap();
    let (_, left) = admin
        .chat_event(id, |b| match b {
            Body::MemberRemoved(r) if r.user_id == owner.id => Some(*r),
            _ => None,
        })
        .await;
    assert!(left.left);
    // The owner removes an admin; admins cannot.
    member.client.remove_member(remove(admin.id)).await.unwrap();
    let chat = member
        .client
        .get_chat(pb::GetChat { chat_id: id })
        .await
        .unwrap();
    assert_eq!(chat.member_count, 1);

    // Private chats have no membership to manage.
    let private = admin.client.create_private_chat(member.id).await.unwrap();
    assert_code(
        admin
            .client
            .leave_chat(pb::LeaveChat {
                chat_id: private.id,
            })
            .await,
        E::PermissionDenied,
    );
    assert_code(
        admin
            .client
            .add_members(pb::AddMembers {
                chat_id: private.id,
                user_ids: vec![owner.id],
            })
            .await,
        E::PermissionDenied,
    );
}

/// Two transfers of one chat sent at once on one connection: the caller owns the chat for only
/// one of them, so exactly one succeeds and the other is refused as from a non-owner.
#[tokio::test]
async fn two_transfers_at_once_hand_the_chat_over_once() {
    let server = start().await;
    let owner = register(&server, "owner").await;
    let first = register(&server, "first").await;
    let second = register(&server, "second").await;
    let g = group(&owner, pb::ChatKind::Group, "team", &[&first, &second]).await;
    let transfer = |user: u64| pb::TransferOwnership {
        chat_id: g.id,
        user_id: user,
    };
    let (a, b) = tokio::join!(
        owner.client.transfer_ownership(transfer(first.id)),
        owner.client.transfer_ownership(transfer(second.id)),
    );
    let (winner, refused) = match (a, b) {
        (Ok(_), refused) => (first.id, refused),
        (refused, Ok(_)) => (second.id, refused),
        (a, b) => panic!("neither transfer succeeded: {a:?}, {b:?}"),
    };
    assert_code(refused, E::PermissionDenied);
    let chat = owner
        .client
        .get_chat(pb::GetChat { chat_id: g.id })
        .await
        .unwrap();
    assert_eq!(chat.owner_id, winner);
    let loser = if winner == first.id {
        second.id
    } else {
        first.id
    };
    assert_eq!(role_of(&chat, winner), Some(pb::MemberRole::Owner));
    assert_eq!(role_of(&chat, owner.id), Some(pb::MemberRole::Admin));
    assert_eq!(role_of(&chat, loser), Some(pb::MemberRole::Member));
}

/// Owner, sender and the member a race removes, with a new group of theirs per round: a member
/// added back would read what they missed (a member reads the whole history, protocol.md 9),
/// which is not what the races test.
struct Removal {
    owner: User,
    sender: User,
    gone: User,
}

impl Removal {
    async fn new(server: &TestServer) -> Self {
        Self {
            owner: register(server, "owner").await,
            sender: register(server, "sender").await,
            gone: register(server, "gone").await,
        }
    }

    /// A new group of the three; then twenty messages ("racing 0" ...) sent at once while the
    /// owner removes `gone` and `during` runs. Returns the chat and what `during` gave.
    async fn race<T>(&self, during: impl AsyncFnOnce(u64) -> T) -> (u64, T) {
        let Self {
            owner,
            sender,
            gone,
        } = self;
        let id = group(owner, pb::ChatKind::Group, "team", &[sender, gone])
            .await
            .id;
        let sends = (0..20).map(|i| sender.client.send_message(text(id, &format!("racing {i}"))));
        let (removed, sent, during) = tokio::join!(
            owner.client.remove_member(pb::RemoveMember {
                chat_id: id,
                user_id: gone.id,
            }),
            futures_util::future::join_all(sends),
            during(id),
        );
        removed.unwrap();
        assert!(sent.iter().all(Result::is_ok), "{sent:?}");
        (id, during)
    }
}

/// Messages sent while a member is being removed reach them only when committed before the
/// removal: an audience read before the removal committed does not carry later events to them.
#[tokio::test]
async fn a_removed_member_gets_nothing_sent_after_the_removal() {
    let server = start().await;
    let removal = Removal::new(&server).await;
    let gone = &removal.gone;
    for round in 0..5 {
        let (id, ()) = removal.race(async |_| ()).await;
        // Every event of the chat was queued for `gone` before the answers came; a chat of
        // their own, created now, is told after all of them.
        let fence = group(gone, pb::ChatKind::Group, "fence", &[]).await.id;
        let mut removed_at = None;
        let mut late = Vec::new();
        gone.wait_for(|e| match e {
            ClientEvent::Chat(ev) if ev.chat_id == fence => Some(()),
            ClientEvent::Chat(ev) if ev.chat_id == id => {
                match ev.body {
                    Some(Body::MemberRemoved(r)) if r.user_id == gone.id => {
                        removed_at = Some(ev.seq)
                    }
                    _ if removed_at.is_some_and(|r| ev.seq > r) => late.push(ev.seq),
                    _ => {}
                }
                None
            }
            _ => None,
        })
        .await;
        assert!(
            removed_at.is_some(),
            "round {round}: the removal did not reach them"
        );
        assert!(
            late.is_empty(),
            "round {round}: removed at seq {removed_at:?}, then got {late:?}"
        );
    }
}

/// A member reading the chat's log while being removed gets it up to the removal and no
/// further, also when the removal commits between the check of the request and its read.
#[tokio::test]
async fn a_member_reading_while_removed_reads_up_to_the_removal() {
    let server = start().await;
    let removal = Removal::new(&server).await;
    let log = |chat_id| pb::GetChatEvents {
        chat_id,
        after_seq: 0,
        limit: 0,
    };
    for round in 0..5 {
        let (id, pages) = removal
            .race(async |id| {
                let mut pages = Vec::new();
                for _ in 0..20 {
                    pages.push(removal.gone.client.get_chat_events(log(id)).await.unwrap());
                }
                pages
            })
            .await;
        let removed_at = removed_at(&removal, id).await;
        for page in &pages {
            let last = page.events.last().map_or(0, |e| e.seq);
            assert!(
                last <= removed_at,
                "round {round}: removed at seq {removed_at}, read up to {last}"
            );
        }
        // Once all is answered, the removal holds for everything (no stale membership left).
        assert_chat_not_found(
            removal
                .gone
                .client
                .send_message(text(id, "still here?"))
                .await,
        );
    }
}

/// The seq of the event that removed `gone` from chat `id`, read by the owner.
async fn removed_at(removal: &Removal, id: u64) -> u64 {
    let log = pb::GetChatEvents {
        chat_id: id,
        after_seq: 0,
        limit: 0,
    };
    let all = removal.owner.client.get_chat_events(log).await.unwrap();
    all.events
        .iter()
        .find(|e| matches!(&e.body, Some(Body::MemberRemoved(r)) if r.user_id == removal.gone.id))
        .expect("the removal is in the log")
        .seq
}

/// A member sending while being removed: each send lands before the removal or answers
/// NOT_FOUND, also when the removal commits between the send's check and its append; nothing
/// of theirs is in the log after the removal.
#[tokio::test]
async fn a_member_sending_while_removed_lands_nothing_after_the_removal() {
    let server = start().await;
    let removal = Removal::new(&server).await;
    let gone = &removal.gone;
    for round in 0..5 {
        let (id, answers) = removal
            .race(async |id| {
                let sends =
                    (0..20).map(|i| gone.client.send_message(text(id, &format!("mine {i}"))));
                futures_util::future::join_all(sends).await
            })
            .await;
        let removed_at = removed_at(&removal, id).await;
        let mut landed = Vec::new();
        for answer in answers {
            match answer {
                Ok(message) => landed.push(message.seq),
                Err(e) => assert_chat_not_found(Err::<(), _>(e)),
            }
        }
        let log = pb::GetChatEvents {
            chat_id: id,
            after_seq: removed_at,
            limit: 0,
        };
        let after = removal.owner.client.get_chat_events(log).await.unwrap();
        let theirs: Vec<u64> = after
            .events
            .iter()
            .filter(|e| created(e).is_some_and(|m| m.sender_id == gone.id))
            .map(|e| e.seq)
            .collect();
        assert!(
            theirs.is_empty() && landed.iter().all(|&seq| seq < removed_at),
            "round {round}: removed at seq {removed_at}; answered {landed:?}, in the log after \
             it {theirs:?}"
        );
    }
}

/// Reads of messages made while the reader is being removed (history, search of the chat and of
/// all chats, edit histories, and the log from past where the removal lands) show nothing
/// committed after the removal, also when it commits between a request's check and its read.
#[tokio::test]
async fn reads_answered_after_the_readers_removal_show_nothing_past_it() {
    let server = start().await;
    let removal = Removal::new(&server).await;
    let reader = &removal.gone.client;
    for round in 0..5 {
        let (id, answers) = removal
            .race(async |id| {
                let mut seen: Vec<(&str, Vec<u64>)> = Vec::new();
                for _ in 0..20 {
                    let search = |chat_id| pb::SearchMessages {
                        query: "racing".into(),
                        chat_id,
                        limit: 50,
                        cursor: String::new(),
                    };
                    let history = pb::GetHistory {
                        chat_id: id,
                        before_seq: 0,
                        after_seq: 0,
                        limit: 50,
                    };
                    let tail = pb::GetChatEvents {
                        chat_id: id,
                        after_seq: 12,
                        limit: 0,
                    };
                    let edits = (2..=24).map(|seq| {
                        reader.get_message_edits(pb::GetMessageEdits {
                            chat_id: id,
                            seq,
                            cursor: String::new(),
                        })
                    });
                    let (history, in_chat, everywhere, tail, edits) = tokio::join!(
                        reader.get_history(history),
                        reader.search_messages(search(id)),
                        reader.search_messages(search(0)),
                        reader.get_chat_events(tail),
                        futures_util::future::join_all(edits),
                    );
                    let seqs = |list: Result<pb::MessageList, _>| {
                        list.map_or_else(
                            |_| Vec::new(),
                            |l| l.messages.iter().map(|m| m.seq).collect(),
                        )
                    };
                    seen.push(("get_history", seqs(history)));
                    seen.push(("search_messages in the chat", seqs(in_chat)));
                    seen.push(("search_messages everywhere", seqs(everywhere)));
                    let tail = tail
                        .map_or_else(|_| Vec::new(), |l| l.events.iter().map(|e| e.seq).collect());
                    seen.push(("get_chat_events", tail));
                    let answered = (2..=24u64).zip(&edits).filter(|(_, e)| e.is_ok());
                    seen.push(("get_message_edits", answered.map(|(seq, _)| seq).collect()));
                }
                seen
            })
            .await;
        let removed_at = removed_at(&removal, id).await;
        let mut late = std::collections::BTreeMap::<&str, BTreeSet<u64>>::new();
        for (what, seqs) in answers {
            let past: Vec<u64> = seqs.into_iter().filter(|s| *s > removed_at).collect();
            if !past.is_empty() {
                late.entry(what).or_default().extend(past);
            }
        }
        assert!(
            late.is_empty(),
            "round {round}: removed at seq {removed_at}, then shown {late:?}"
        );
    }
}

/// Messages sent while a member is being added reach them live when they commit after the
/// addition, also when their audience was read before it (seen on the connection itself: the
/// SDK would fill the gap later).
#[tokio::test]
async fn an_added_member_gets_everything_sent_after_the_addition_live() {
    let server = start().await;
    let owner = register(&server, "owner").await;
    let sender = register(&server, "sender").await;
    let mut joiner = RawSession::register(&server, "joiner").await;
    for round in 0..5 {
        let id = group(&owner, pb::ChatKind::Group, "team", &[&sender])
            .await
            .id;
        let sends = (0..20).map(|i| sender.client.send_message(text(id, &format!("racing {i}"))));
        let (added, sent) = tokio::join!(
            owner.client.add_members(pb::AddMembers {
                chat_id: id,
                user_ids: vec![joiner.user_id],
            }),
            futures_util::future::join_all(sends),
        );
        added.unwrap();
        assert!(sent.iter().all(Result::is_ok), "{sent:?}");
        // Every event of the chat was queued for the joiner before the answers came; a chat of
        // their own, created now, is told after all of them.
        let fence = joiner.create_group("fence", &[]).await;
        let mut got = BTreeSet::new();
        joiner
            .wait_for(Duration::from_secs(10), |e| match &e.kind {
                Some(pb::event::Kind::Chat(ev)) if ev.chat_id == fence => Some(()),
                Some(pb::event::Kind::Chat(ev)) if ev.chat_id == id => {
                    got.insert(ev.seq);
                    None
                }
                _ => None,
            })
            .await
            .expect("the fence arrives");
        let log = pb::GetChatEvents {
            chat_id: id,
            after_seq: 0,
            limit: 0,
        };
        let log = owner.client.get_chat_events(log).await.unwrap().events;
        let added_at = log
            .iter()
            .find(|e| matches!(&e.body, Some(Body::MembersAdded(a)) if a.members.iter().any(|m| m.user_id == joiner.user_id)))
            .expect("the addition is in the log")
            .seq;
        let missed: Vec<u64> = log
            .iter()
            .map(|e| e.seq)
            .filter(|s| *s >= added_at && !got.contains(s))
            .collect();
        assert!(
            missed.is_empty(),
            "round {round}: added at seq {added_at}, then missed {missed:?}"
        );
    }
}
