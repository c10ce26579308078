//! Conformance cases for writes judged on a chat's membership (`NewMessage::members_seq`, and the
//! `members_seq` of edits, deletions and reactions): the store writes only under the membership
//! the writer was judged on.

use std::sync::Arc;

use super::*;

/// Adds a reaction under the protocol's emoji limit.
const ADD: ReactionChange = ReactionChange::Add { max_emoji: 20 };

/// The chat's `members_seq` now.
async fn members_seq<S: Store>(s: &S, chat_id: u64) -> u64 {
    s.chat(chat_id)
        .await
        .expect("chat")
        .expect("exists")
        .members_seq
}

/// A text message judged on the membership at `members_seq`.
fn judged(chat_id: u64, sender_id: u64, members_seq: u64, now_ms: i64) -> NewMessage {
    NewMessage {
        members_seq: Some(members_seq),
        ..text_message(chat_id, sender_id, "judged", now_ms)
    }
}

/// `members_seq` is the seq of the latest event that changed members or roles; a send judged on
/// an earlier one is refused with nothing written, a retry of an appended send is answered
/// with the original whatever the membership, and a send judged on the current one appends.
pub async fn messages_appended_under_the_judged_membership<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = user(&s, "c").await;
    let g = group(&s, a, &[b]).await;
    assert_eq!(
        members_seq(&s, g).await,
        1,
        "the creation is the first change"
    );
    let first = s
        .append_message(NewMessage {
            client_msg_id: "first".into(),
            ..judged(g, b, 1, T0 + 1)
        })
        .await
        .expect("judged on the current membership");
    assert_eq!(first.message.seq, 2);
    assert_eq!(
        members_seq(&s, g).await,
        1,
        "a message changes no membership"
    );

    let added = s
        .add_members(g, Actor::unjudged(a), &[c], 100, T0 + 2)
        .await
        .expect("add");
    assert_eq!(members_seq(&s, g).await, added.seq);
    assert_conflict(
        s.append_message(judged(g, b, 1, T0 + 3)).await,
        ConflictKind::MembersChanged,
    );
    let chat = s.chat(g).await.expect("chat").expect("exists");
    assert_eq!(chat.last_seq, added.seq, "a refused send writes nothing");
    let retry = s
        .append_message(NewMessage {
            client_msg_id: "first".into(),
            ..judged(g, b, 1, T0 + 4)
        })
        .await
        .expect("a retry");
    assert_eq!((retry.message, retry.event), (first.message, None));
    let sent = s
        .append_message(judged(g, b, added.seq, T0 + 5))
        .await
        .expect("judged again");
    assert_eq!(sent.message.seq, added.seq + 1);

    let promoted = s
        .set_member_role(g, Actor::unjudged(a), b, pb::MemberRole::Admin, T0 + 6)
        .await
        .expect("role");
    assert_eq!(
        members_seq(&s, g).await,
        promoted.seq,
        "a role change moves it"
    );
    let removed = s
        .remove_member(g, Actor::unjudged(a), c, false, T0 + 7)
        .await
        .expect("remove");
    assert_eq!(members_seq(&s, g).await, removed.seq, "a removal moves it");
    assert_conflict(
        s.append_message(judged(g, c, promoted.seq, T0 + 8)).await,
        ConflictKind::MembersChanged,
    );
    let unjudged = s
        .append_message(text_message(g, a, "not judged", T0 + 9))
        .await
        .expect("a send without a judgement appends");
    assert_eq!(unjudged.message.seq, removed.seq + 1);
    assert_eq!(members_seq(&s, g).await, removed.seq);
}

/// Sends judged before a removal race it: each either lands before the removal or is refused,
/// none after it.
pub async fn messages_judged_sends_racing_a_removal<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let s = Arc::new(s);
    for round in 0..4 {
        let g = group(&*s, a, &[b]).await;
        let judged_at = members_seq(&*s, g).await;
        // Four senders, each sending until refused (or 40 times): the removal lands among
        // their appends, whether the store takes them one at a time or in rounds.
        let senders: Vec<_> = (0..4)
            .map(|sender| {
                let s = Arc::clone(&s);
                tokio::spawn(async move {
                    let mut landed = Vec::new();
                    for n in 0..40 {
                        let now = T0 + 10 + sender * 100 + n;
                        match s.append_message(judged(g, b, judged_at, now)).await {
                            Ok(out) => landed.push(out.message.seq),
                            Err(StoreError::Conflict(ConflictKind::MembersChanged)) => break,
                            Err(e) => panic!("a send failed otherwise: {e}"),
                        }
                    }
                    landed
                })
            })
            .collect();
        while s.chat(g).await.expect("chat").expect("exists").last_seq < 4 {
            tokio::task::yield_now().await;
        }
        let removed_at = s
            .remove_member(g, Actor::unjudged(a), b, false, T0 + 5)
            .await
            .expect("remove")
            .seq;
        let mut landed = Vec::new();
        for sender in senders {
            landed.extend(sender.await.expect("task"));
        }
        assert!(
            landed.iter().all(|&seq| seq < removed_at),
            "round {round}: messages {landed:?} landed after the removal at {removed_at}"
        );
        let messages = full_history(&*s, g, a).await;
        assert_eq!(seqs(&messages).len(), landed.len(), "round {round}");
    }
}

/// Edits, deletions and reactions judged on an earlier membership are refused with nothing
/// written; judged on the current one, they are made.
pub async fn messages_changed_under_the_judged_membership<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = user(&s, "c").await;
    let g = group(&s, a, &[b]).await;
    let m = send(&s, g, b, "text", T0 + 1).await.seq;
    let before = members_seq(&s, g).await;
    let added = s
        .add_members(g, Actor::unjudged(a), &[c], 100, T0 + 2)
        .await
        .expect("add");
    let now = members_seq(&s, g).await;
    assert_eq!(now, added.seq);
    let head = added.seq;

    assert_conflict(
        s.edit_message(g, m, Actor::judged(b, before), "edited", T0 + 3)
            .await,
        ConflictKind::MembersChanged,
    );
    assert_conflict(
        s.set_reaction(g, m, Actor::judged(b, before), "👍", ADD, T0 + 3)
            .await,
        ConflictKind::MembersChanged,
    );
    assert_conflict(
        s.delete_message(g, m, Actor::judged(b, before), T0 + 3)
            .await,
        ConflictKind::MembersChanged,
    );
    let message = s.message(g, m).await.expect("read").expect("exists");
    assert_eq!(
        (
            message.text.as_str(),
            message.reactions.len(),
            message.deleted
        ),
        ("text", 0, false),
        "refused writes change nothing"
    );
    let chat = s.chat(g).await.expect("chat").expect("exists");
    assert_eq!(chat.last_seq, head, "and append no event");

    let (edited, _) = s
        .edit_message(g, m, Actor::judged(b, now), "edited", T0 + 4)
        .await
        .expect("edit");
    assert_eq!(edited.text, "edited");
    let (reacted, event) = s
        .set_reaction(g, m, Actor::judged(b, now), "👍", ADD, T0 + 5)
        .await
        .expect("react");
    assert_eq!((reacted.reactions.len(), event.is_some()), (1, true));
    s.delete_message(g, m, Actor::judged(b, now), T0 + 6)
        .await
        .expect("delete");
    assert_eq!(
        members_seq(&s, g).await,
        now,
        "none of them changes membership"
    );
}

/// Changes to a chat and its members judged on an earlier membership are refused with nothing
/// written; judged on the current one, they are made.
pub async fn chats_managed_under_the_judged_membership<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = user(&s, "c").await;
    let d = user(&s, "d").await;
    let g = group(&s, a, &[b, c]).await;
    let before = members_seq(&s, g).await;
    let promoted = s
        .set_member_role(g, Actor::unjudged(a), b, pb::MemberRole::Admin, T0 + 1)
        .await
        .expect("promote");
    let now = members_seq(&s, g).await;
    assert_eq!(now, promoted.seq);
    let stale = Actor::judged(b, before);
    let patch = ChatPatch {
        title: Some("renamed".into()),
        ..ChatPatch::default()
    };
    assert_conflict(
        s.update_chat(g, stale, patch.clone(), T0 + 2).await,
        ConflictKind::MembersChanged,
    );
    assert_conflict(
        s.add_members(g, stale, &[d], 100, T0 + 2).await,
        ConflictKind::MembersChanged,
    );
    assert_conflict(
        s.remove_member(g, stale, c, false, T0 + 2).await,
        ConflictKind::MembersChanged,
    );
    assert_conflict(
        s.set_member_role(
            g,
            Actor::judged(a, before),
            c,
            pb::MemberRole::Admin,
            T0 + 2,
        )
        .await,
        ConflictKind::MembersChanged,
    );
    let chat = s.chat(g).await.expect("chat").expect("exists");
    assert_eq!(
        (chat.last_seq, chat.title.as_str(), chat.member_count),
        (promoted.seq, "group", 3),
        "refused changes write nothing"
    );

    let current = Actor::judged(b, now);
    let (renamed, _) = s
        .update_chat(g, current, patch, T0 + 3)
        .await
        .expect("update");
    assert_eq!(renamed.title, "renamed");
    assert_eq!(
        members_seq(&s, g).await,
        now,
        "an update changes no membership"
    );
    let added = s
        .add_members(g, current, &[d], 100, T0 + 4)
        .await
        .expect("add");
    let removed = s
        .remove_member(g, Actor::judged(b, added.seq), c, false, T0 + 5)
        .await
        .expect("remove");
    s.set_member_role(
        g,
        Actor::judged(a, removed.seq),
        d,
        pb::MemberRole::Admin,
        T0 + 6,
    )
    .await
    .expect("role");
}
