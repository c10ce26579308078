//! Server admins over chats and messages: listing and reading any chat from outside, its
//! members, deleting one message or purging what a user sent (which members see as ordinary
//! deletes), and the server's counts.

use chatproto::pb;
use chatproto::pb::ErrorCode as E;
use chatproto::pb::chat_event::Body;

use crate::support::{
    assert_chat_not_found, assert_code, assert_field, group, history, register, register_admin,
    start,
};

fn list(kind: pb::ChatKind, query: &str, member_id: u64) -> pb::AdminListChats {
    pb::AdminListChats {
        kind: kind as i32,
        query: query.into(),
        member_id,
        ..Default::default()
    }
}

fn ids(chats: &pb::ChatList) -> Vec<u64> {
    chats.chats.iter().map(|c| c.id).collect()
}

#[tokio::test]
async fn admins_list_and_read_any_chat_from_outside() {
    let server = start().await;
    let root = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let private = alice
        .client
        .create_private_chat(bob.id)
        .await
        .expect("private");
    let team = group(&alice, pb::ChatKind::Group, "Team Alpha", &[&bob]).await;
    let news = group(&alice, pb::ChatKind::Channel, "alpha news", &[]).await;
    let gone = group(&bob, pb::ChatKind::Group, "alpha gone", &[]).await;
    bob.client
        .delete_chat(pb::DeleteChat { chat_id: gone.id })
        .await
        .expect("delete");
    alice.send(team.id, "secret plans").await;

    let all = root
        .client
        .admin_list_chats(pb::AdminListChats::default())
        .await
        .expect("list");
    assert_eq!(ids(&all), vec![private.id, team.id, news.id]);
    assert!(all.next_cursor.is_empty());
    for chat in &all.chats {
        assert!(
            chat.last_message.is_none() && chat.state.is_none() && chat.members.is_empty(),
            "seen from outside: {chat:?}"
        );
    }
    assert_eq!(all.chats[1].title, "Team Alpha");
    assert_eq!(all.chats[1].member_count, 2);
    let only = |request| root.client.admin_list_chats(request);
    let u = pb::ChatKind::Unspecified;
    assert_eq!(
        ids(&only(list(pb::ChatKind::Group, "", 0)).await.unwrap()),
        vec![team.id]
    );
    assert_eq!(
        ids(&only(list(u, "ALPHA", 0)).await.unwrap()),
        vec![team.id, news.id]
    );
    assert_eq!(
        ids(&only(list(u, "", bob.id)).await.unwrap()),
        vec![private.id, team.id]
    );
    assert_eq!(
        ids(&only(list(pb::ChatKind::Channel, "alpha", bob.id))
            .await
            .unwrap()),
        Vec::<u64>::new()
    );

    // One chat a page: the cursor walks through all of them once.
    let mut walked = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = only(pb::AdminListChats {
            limit: 1,
            cursor,
            ..Default::default()
        })
        .await
        .expect("page");
        walked.extend(ids(&page));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(walked, ids(&all));

    let chat = root
        .client
        .admin_get_chat(pb::AdminGetChat { chat_id: team.id })
        .await
        .expect("get");
    assert_eq!(
        (chat.id, chat.owner_id, chat.member_count),
        (team.id, alice.id, 2)
    );
    assert!(chat.last_message.is_none() && chat.state.is_none() && chat.members.is_empty());
    assert_chat_not_found(
        root.client
            .admin_get_chat(pb::AdminGetChat { chat_id: gone.id })
            .await,
    );

    let members = |cursor: String| {
        root.client.admin_list_members(pb::AdminListMembers {
            chat_id: team.id,
            limit: 1,
            cursor,
        })
    };
    let first = members(String::new()).await.expect("members");
    assert_eq!(first.members.len(), 1);
    assert_eq!(
        (first.members[0].user_id, first.members[0].role()),
        (alice.id, pb::MemberRole::Owner)
    );
    let second = members(first.next_cursor.clone()).await.expect("members");
    assert_eq!(
        (second.members[0].user_id, second.members[0].role()),
        (bob.id, pb::MemberRole::Member)
    );
    assert!(second.next_cursor.is_empty());
    // A cursor of the chat list is not one of the member list.
    let page = only(pb::AdminListChats {
        limit: 1,
        ..Default::default()
    })
    .await
    .expect("page");
    assert_field(
        members(page.next_cursor).await,
        E::InvalidArgument,
        "admin_list_members.cursor",
    );
    assert_chat_not_found(
        root.client
            .admin_list_members(pb::AdminListMembers {
                chat_id: gone.id,
                ..Default::default()
            })
            .await,
    );
    // Members get nothing of it.
    assert_code(
        alice
            .client
            .admin_list_chats(pb::AdminListChats::default())
            .await,
        E::PermissionDenied,
    );
}

#[tokio::test]
async fn an_admin_deletes_a_message_and_members_see_an_ordinary_delete() {
    let server = start().await;
    let root = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let team = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
    let spam = bob.send(team.id, "buy now").await;
    alice.next_message(team.id).await;

    root.client
        .admin_delete_message(pb::AdminDeleteMessage {
            chat_id: team.id,
            seq: spam.seq,
        })
        .await
        .expect("delete");
    for member in [&alice, &bob] {
        let (event, deleted) = member
            .chat_event(team.id, |b| match b {
                Body::MessageDeleted(d) => Some(*d),
                _ => None,
            })
            .await;
        assert_eq!((deleted.message_seq, event.actor_id), (spam.seq, root.id));
    }
    let page = alice
        .client
        .get_history(history(team.id, 0, 0, 0))
        .await
        .expect("history");
    let tomb = page
        .messages
        .iter()
        .find(|m| m.seq == spam.seq)
        .expect("tombstone");
    assert!(tomb.deleted && tomb.text.is_empty());
    // Again: nothing more to do, and no error.
    root.client
        .admin_delete_message(pb::AdminDeleteMessage {
            chat_id: team.id,
            seq: spam.seq,
        })
        .await
        .expect("again");
}

#[tokio::test]
async fn purging_deletes_what_a_user_sent_step_by_step_also_after_the_account_is_gone() {
    let server = start().await;
    let root = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;
    let mallory = register(&server, "mallory").await;
    let first = group(&alice, pb::ChatKind::Group, "first", &[&mallory]).await;
    let second = group(&alice, pb::ChatKind::Group, "second", &[&mallory]).await;
    let kept = alice.send(first.id, "mine").await;
    for i in 0..3 {
        mallory.send(first.id, &format!("spam {i}")).await;
    }
    for i in 0..2 {
        mallory.send(second.id, &format!("spam {i}")).await;
    }
    let purge = |chat_id, limit| {
        root.client.admin_purge_messages(pb::AdminPurgeMessages {
            user_id: mallory.id,
            chat_id,
            limit,
            since_ms: 0,
        })
    };
    // Only the second chat: both of its messages.
    let done = purge(second.id, 0).await.expect("purge");
    assert_eq!((done.deleted, done.more), (2, false));
    // Then everywhere, two at a time.
    let step = purge(0, 2).await.expect("purge");
    assert_eq!((step.deleted, step.more), (2, true));
    // The account goes; what it sent stays until purged.
    root.client
        .admin_delete_user(pb::AdminDeleteUser {
            user_id: mallory.id,
        })
        .await
        .expect("delete user");
    let step = purge(0, 2).await.expect("purge");
    assert_eq!((step.deleted, step.more), (1, false));
    let step = purge(0, 2).await.expect("purge");
    assert_eq!((step.deleted, step.more), (0, false));

    for chat in [first.id, second.id] {
        let page = alice
            .client
            .get_history(history(chat, 0, 0, 0))
            .await
            .expect("history");
        for m in &page.messages {
            assert_eq!(m.deleted, m.sender_id == mallory.id, "{m:?}");
        }
    }
    let page = alice
        .client
        .get_history(history(first.id, 0, 0, 0))
        .await
        .unwrap();
    assert!(
        page.messages
            .iter()
            .any(|m| m.seq == kept.seq && m.text == "mine")
    );
    // Members saw each deletion as it happened.
    let (_, seq) = alice
        .chat_event(second.id, |b| match b {
            Body::MessageDeleted(d) => Some(d.message_seq),
            _ => None,
        })
        .await;
    assert!(seq > 0);
    assert_field(
        purge(0, 101).await,
        E::InvalidArgument,
        "admin_purge_messages.limit",
    );
}

#[tokio::test]
async fn purging_since_a_time_keeps_what_was_sent_before() {
    let server = start().await;
    let root = register_admin(&server, "root").await;
    let (alice, mallory, chat) = crate::support::pair(&server).await;
    let before = mallory.send(chat, "before the raid").await;
    // The next message gets a later server time: wait for the clock to pass it.
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis()
        <= u128::try_from(before.sent_at_ms).expect("positive")
    {
        tokio::task::yield_now().await;
    }
    let raid = mallory.send(chat, "spam").await;
    assert!(raid.sent_at_ms > before.sent_at_ms);
    let purge = |since_ms| {
        root.client.admin_purge_messages(pb::AdminPurgeMessages {
            user_id: mallory.id,
            since_ms,
            ..Default::default()
        })
    };
    let done = purge(raid.sent_at_ms).await.expect("purge");
    assert_eq!((done.deleted, done.more), (1, false));
    let page = alice
        .client
        .get_history(history(chat, 0, 0, 0))
        .await
        .expect("history");
    let deleted: Vec<(u64, bool)> = page.messages.iter().map(|m| (m.seq, m.deleted)).collect();
    assert_eq!(deleted, vec![(before.seq, false), (raid.seq, true)]);
    assert_field(
        purge(-1).await,
        E::InvalidArgument,
        "admin_purge_messages.since_ms",
    );
}

#[tokio::test]
async fn stats_count_the_server_and_this_node() {
    let server = start().await;
    let root = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let team = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
    alice.send(team.id, "one").await;
    let two = bob.send(team.id, "two").await;
    bob.client
        .delete_message(pb::DeleteMessage {
            chat_id: team.id,
            seq: two.seq,
            for_everyone: true,
        })
        .await
        .expect("delete");
    alice
        .client
        .create_private_chat(bob.id)
        .await
        .expect("private");

    let stats = root
        .client
        .admin_stats(pb::AdminStats {})
        .await
        .expect("stats");
    assert_eq!((stats.users, stats.chats, stats.messages), (3, 2, 1));
    assert_eq!(stats.connections, 3, "root, alice and bob are connected");
    assert!(stats.uptime_ms > 0);
    assert!(
        stats.server_name.starts_with("chatd/"),
        "{}",
        stats.server_name
    );
    assert!(!stats.node_id.is_empty());
    assert_eq!(
        stats.messages_last_minute, 2,
        "both messages were stored within the minute (a deletion stores none)"
    );
    bob.client.close().await;
    // The count follows connections as they go.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = root
            .client
            .admin_stats(pb::AdminStats {})
            .await
            .expect("stats");
        if now.connections == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {} connections",
            now.connections
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
