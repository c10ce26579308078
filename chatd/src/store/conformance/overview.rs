//! Conformance cases for the reads of server admins ([`OverviewStore`]).

use super::*;

/// A group of `kind` titled `title`, owned by `owner` with `members`; its id.
async fn titled<S: Store>(
    s: &S,
    kind: pb::ChatKind,
    title: &str,
    owner: u64,
    members: &[u64],
) -> u64 {
    let (chat, _) = s
        .create_group(NewGroup {
            kind,
            title: title.into(),
            description: String::new(),
            owner,
            member_ids: members.to_vec(),
            now_ms: T0,
        })
        .await
        .expect("create group");
    chat.id
}

async fn chat_ids<S: Store>(s: &S, query: AllChatsQuery) -> Vec<u64> {
    let chats = s.all_chats(query).await.expect("all chats");
    chats.iter().map(|c| c.id).collect()
}

/// Every chat that is not deleted, by id, filtered by kind, title (ASCII case folded) and
/// current member, paged by id.
pub async fn overview_chats_filters_and_paging<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = user(&s, "c").await;
    let private = private(&s, a, b).await;
    let team = titled(&s, pb::ChatKind::Group, "Team Ärger", a, &[b]).await;
    let news = titled(&s, pb::ChatKind::Channel, "NEWS of the team", c, &[]).await;
    let gone = titled(&s, pb::ChatKind::Group, "team gone", c, &[a]).await;
    s.delete_chat(gone, Actor::unjudged(c), T0 + 1)
        .await
        .expect("delete");
    s.remove_member(team, Actor::unjudged(a), b, false, T0 + 2)
        .await
        .expect("remove b");
    let all = |limit| AllChatsQuery {
        limit,
        ..Default::default()
    };
    assert_eq!(chat_ids(&s, all(10)).await, vec![private, team, news]);
    let records = s.all_chats(all(10)).await.expect("all chats");
    assert_eq!(records[1].title, "Team Ärger");
    assert_eq!(records[1].member_count, 1);
    // Paging by id.
    assert_eq!(chat_ids(&s, all(2)).await, vec![private, team]);
    let rest = AllChatsQuery {
        after_id: team,
        ..all(2)
    };
    assert_eq!(chat_ids(&s, rest).await, vec![news]);
    assert!(chat_ids(&s, all(0)).await.is_empty());
    // By kind.
    let kind = |kind| AllChatsQuery {
        kind: Some(kind),
        ..all(10)
    };
    assert_eq!(
        chat_ids(&s, kind(pb::ChatKind::Private)).await,
        vec![private]
    );
    assert_eq!(chat_ids(&s, kind(pb::ChatKind::Channel)).await, vec![news]);
    // By title: contained, ASCII letters in any case; other letters as they are.
    let title = |text: &str| AllChatsQuery {
        title: text.into(),
        ..all(10)
    };
    assert_eq!(chat_ids(&s, title("team")).await, vec![team, news]);
    assert_eq!(chat_ids(&s, title("NEWS OF")).await, vec![news]);
    assert_eq!(chat_ids(&s, title("Ärger")).await, vec![team]);
    assert!(chat_ids(&s, title("ärger")).await.is_empty());
    assert!(chat_ids(&s, title("t.am")).await.is_empty());
    // By current member: b was removed from the team.
    let member = |id| AllChatsQuery {
        member_id: Some(id),
        ..all(10)
    };
    assert_eq!(chat_ids(&s, member(a)).await, vec![private, team]);
    assert_eq!(chat_ids(&s, member(b)).await, vec![private]);
    assert!(chat_ids(&s, member(9_999_999)).await.is_empty());
    // Combined.
    let both = AllChatsQuery {
        kind: Some(pb::ChatKind::Group),
        title: "team".into(),
        member_id: Some(a),
        ..all(10)
    };
    assert_eq!(chat_ids(&s, both).await, vec![team]);
}

/// A sender's messages that are not deleted, in chats that are not deleted, by (chat, seq).
pub async fn overview_sent_messages<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let first = group(&s, a, &[b]).await;
    let second = group(&s, b, &[a]).await;
    let gone = group(&s, a, &[b]).await;
    let m1 = send(&s, first, b, "one", T0).await.seq;
    send(&s, first, a, "not b's", T0).await;
    let m2 = send(&s, first, b, "two", T0 + 5).await.seq;
    let deleted = send(&s, first, b, "deleted", T0).await.seq;
    s.delete_message(first, deleted, Actor::unjudged(a), T0 + 1)
        .await
        .expect("delete");
    let m3 = send(&s, second, b, "three", T0 + 10).await.seq;
    send(&s, gone, b, "in a deleted chat", T0).await;
    s.delete_chat(gone, Actor::unjudged(a), T0 + 2)
        .await
        .expect("delete chat");

    let sent = |chat_id, after, limit| {
        s.sent_messages(SentQuery {
            sender_id: b,
            chat_id,
            since_ms: None,
            after,
            limit,
        })
    };
    assert_eq!(
        sent(None, (0, 0), 10).await.expect("sent"),
        vec![(first, m1), (first, m2), (second, m3)]
    );
    assert_eq!(
        sent(None, (0, 0), 2).await.expect("sent"),
        vec![(first, m1), (first, m2)]
    );
    assert_eq!(
        sent(None, (first, m2), 2).await.expect("sent"),
        vec![(second, m3)]
    );
    assert_eq!(
        sent(Some(second), (0, 0), 10).await.expect("sent"),
        vec![(second, m3)]
    );
    assert!(sent(Some(gone), (0, 0), 10).await.expect("sent").is_empty());
    assert!(sent(None, (0, 0), 0).await.expect("sent").is_empty());
    let since = |since_ms| {
        s.sent_messages(SentQuery {
            sender_id: b,
            since_ms: Some(since_ms),
            limit: 10,
            ..Default::default()
        })
    };
    assert_eq!(
        since(T0 + 5).await.expect("sent"),
        vec![(first, m2), (second, m3)],
        "sent at or after the time"
    );
    assert!(since(T0 + 11).await.expect("sent").is_empty());
    let nobody = SentQuery {
        sender_id: 9_999_999,
        limit: 10,
        ..Default::default()
    };
    assert!(s.sent_messages(nobody).await.expect("sent").is_empty());
}

/// Users not deleted, chats not deleted, messages not deleted for everyone.
pub async fn overview_counts<S: Store + 'static>(s: S) {
    assert_eq!(s.counts().await.expect("counts"), StoreCounts::default());
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let gone = user(&s, "gone").await;
    s.delete_user(gone, T0, None).await.expect("delete user");
    let chat = group(&s, a, &[b]).await;
    let other = private(&s, a, b).await;
    send(&s, chat, a, "one", T0).await;
    let deleted = send(&s, chat, b, "two", T0).await.seq;
    s.delete_message(chat, deleted, Actor::unjudged(b), T0 + 1)
        .await
        .expect("delete");
    send(&s, other, a, "three", T0).await;
    let dropped = group(&s, b, &[]).await;
    s.delete_chat(dropped, Actor::unjudged(b), T0 + 2)
        .await
        .expect("delete chat");
    assert_eq!(
        s.counts().await.expect("counts"),
        StoreCounts {
            users: 2,
            chats: 2,
            messages: 2,
        }
    );
}
