//! Group and channel membership end to end: adding and removing members, leaving, roles, and
//! transferring ownership, with the events each change sends to whom.

use crate::support::*;
use chatproto::pb;
use chatproto::pb::chat_event::Body;
use pb::ErrorCode as E;

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

/// `set_member_role` is repeat-safe: the same change sent twice at once succeeds twice, and
/// the member's role changes once (the second write finds the role already set).
#[tokio::test]
async fn the_same_role_change_twice_at_once_succeeds_twice() {
    let server = start().await;
    let owner = register(&server, "owner").await;
    let member = register(&server, "member").await;
    let g = group(&owner, pb::ChatKind::Group, "team", &[&member]).await;
    for round in 0..10 {
        let to = if round % 2 == 0 {
            pb::MemberRole::Admin
        } else {
            pb::MemberRole::Member
        };
        let change = pb::SetMemberRole {
            chat_id: g.id,
            user_id: member.id,
            role: to as i32,
        };
        let (a, b) = tokio::join!(
            owner.client.set_member_role(change),
            owner.client.set_member_role(change)
        );
        assert!(a.is_ok() && b.is_ok(), "round {round}: {a:?}, {b:?}");
        let chat = owner
            .client
            .get_chat(pb::GetChat { chat_id: g.id })
            .await
            .expect("chat");
        let role = chat
            .members
            .iter()
            .find(|m| m.user_id == member.id)
            .map(|m| m.role);
        assert_eq!(role, Some(to as i32), "round {round}");
    }
}
