//! Membership changes racing other requests of the chat: what a removed member still gets,
//! reads, sends and writes, and what an added member gets live. Each race runs a few rounds,
//! since an interleaving that breaks a rule shows up in some rounds only.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::*;
use chatproto::client::{ClientError, ClientEvent};
use chatproto::pb;
use chatproto::pb::chat_event::Body;
use tests::raw::RawSession;
use tests::server::TestServer;

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

/// Each answer is a success or NOT_FOUND "chat not found" (the caller was judged again after the
/// change and is no member now).
fn assert_landed_or_gone<T: std::fmt::Debug>(answers: Vec<Result<T, ClientError>>) {
    for answer in answers {
        if let Err(e) = answer {
            assert_chat_not_found(Err::<(), _>(e));
        }
    }
}

/// The seqs of the events of chat `id` after `after_seq` whose actor is `actor`, read by `reader`.
async fn acted_after(reader: &User, id: u64, after_seq: u64, actor: u64) -> Vec<u64> {
    let log = pb::GetChatEvents {
        chat_id: id,
        after_seq,
        limit: 0,
    };
    let events = reader.client.get_chat_events(log).await.unwrap().events;
    events
        .iter()
        .filter(|e| e.actor_id == actor)
        .map(|e| e.seq)
        .collect()
}

/// A member editing their message and reacting to it while being removed: nothing of it lands
/// after the removal, also when the removal commits between a request's check and its write.
#[tokio::test]
async fn a_member_editing_and_reacting_while_removed_lands_nothing_after_the_removal() {
    let server = start().await;
    let removal = Removal::new(&server).await;
    let (owner, gone) = (&removal.owner, &removal.gone);
    let emoji = ["👍", "🎉", "😀", "🔥", "❤", "👀", "🙏", "💯", "🚀", "✅"];
    for round in 0..10 {
        let id = group(owner, pb::ChatKind::Group, "team", &[&removal.sender, gone])
            .await
            .id;
        let mine = gone
            .client
            .send_message(text(id, "mine"))
            .await
            .unwrap()
            .seq;
        let edits = (0..10).map(|i| {
            gone.client.edit_message(pb::EditMessage {
                chat_id: id,
                seq: mine,
                text: format!("edit {i}"),
            })
        });
        let reactions = emoji.iter().map(|e| {
            gone.client.react(pb::React {
                chat_id: id,
                seq: mine,
                emoji: (*e).into(),
                remove: false,
            })
        });
        let (removed, edited, reacted) = tokio::join!(
            owner.client.remove_member(pb::RemoveMember {
                chat_id: id,
                user_id: gone.id,
            }),
            futures_util::future::join_all(edits),
            futures_util::future::join_all(reactions),
        );
        removed.unwrap();
        assert_landed_or_gone(edited);
        assert_landed_or_gone(reacted);
        let removed_at = removed_at(&removal, id).await;
        let late = acted_after(owner, id, removed_at, gone.id).await;
        assert!(
            late.is_empty(),
            "round {round}: removed at seq {removed_at}, then wrote {late:?}"
        );
    }
}

/// A channel admin posting and deleting others' messages for everyone while made a plain
/// member: nothing of it lands after the change of role; what comes after is refused as from a
/// member.
#[tokio::test]
async fn a_channel_admin_writing_while_demoted_lands_nothing_after_the_demotion() {
    let server = start().await;
    let owner = register(&server, "owner").await;
    let admin = register(&server, "admin").await;
    for round in 0..10 {
        let id = group(&owner, pb::ChatKind::Channel, "news", &[&admin])
            .await
            .id;
        promote(&owner, id, admin.id).await;
        let mut posted = Vec::new();
        for i in 0..10 {
            let sent = owner.client.send_message(text(id, &format!("post {i}")));
            posted.push(sent.await.unwrap().seq);
        }
        let posts = (0..10).map(|i| admin.client.send_message(text(id, &format!("mine {i}"))));
        let deletions = posted.iter().map(|&seq| {
            admin.client.delete_message(pb::DeleteMessage {
                chat_id: id,
                seq,
                for_everyone: true,
            })
        });
        let (demoted, sent, deleted) = tokio::join!(
            owner.client.set_member_role(pb::SetMemberRole {
                chat_id: id,
                user_id: admin.id,
                role: pb::MemberRole::Member as i32,
            }),
            futures_util::future::join_all(posts),
            futures_util::future::join_all(deletions),
        );
        demoted.unwrap();
        let answers =
            (sent.into_iter().map(|r| r.map(drop))).chain(deleted.into_iter().map(|r| r.map(drop)));
        assert_nothing_after_demotion(&owner, id, admin.id, round, answers).await;
    }
}

/// After `admin` of chat `id` was made a plain member while their requests were under way: each
/// answer is a success or PERMISSION_DENIED (judged again after the demotion), and nothing of
/// theirs is in the log after the demotion.
async fn assert_nothing_after_demotion(
    owner: &User,
    id: u64,
    admin: u64,
    round: usize,
    answers: impl Iterator<Item = Result<(), ClientError>>,
) {
    for answer in answers {
        if let Err(e) = answer {
            assert_eq!(e.code(), Some(pb::ErrorCode::PermissionDenied), "{e:?}");
        }
    }
    let demoted_at = demoted_at(owner, id, admin).await;
    let late = acted_after(owner, id, demoted_at, admin).await;
    assert!(
        late.is_empty(),
        "round {round}: demoted at seq {demoted_at}, then wrote {late:?}"
    );
}

/// The seq of the last event of chat `id` that made `user` a plain member, read by `reader`.
async fn demoted_at(reader: &User, id: u64, user: u64) -> u64 {
    let log = pb::GetChatEvents {
        chat_id: id,
        after_seq: 0,
        limit: 0,
    };
    let events = reader.client.get_chat_events(log).await.unwrap().events;
    events
        .iter()
        .rfind(|e| {
            matches!(&e.body, Some(Body::MemberRoleChanged(c))
                if c.user_id == user && c.role == pb::MemberRole::Member as i32)
        })
        .expect("the demotion is in the log")
        .seq
}

/// Makes `user` a chat admin of chat `id` (`owner` owns it).
async fn promote(owner: &User, id: u64, user: u64) {
    let admin = pb::SetMemberRole {
        chat_id: id,
        user_id: user,
        role: pb::MemberRole::Admin as i32,
    };
    owner.client.set_member_role(admin).await.unwrap();
}

/// A group admin updating the chat, adding and removing members while made a plain member:
/// nothing of it lands after the change of role; what comes after is refused as from a member.
#[tokio::test]
async fn a_group_admin_managing_while_demoted_changes_nothing_after_the_demotion() {
    let server = start().await;
    let owner = register(&server, "owner").await;
    let admin = register(&server, "admin").await;
    let mut members = Vec::new();
    let mut joiners = Vec::new();
    for i in 0..5 {
        members.push(register(&server, &format!("member{i}")).await);
        joiners.push(register(&server, &format!("joiner{i}")).await);
    }
    for round in 0..10 {
        let mut invited: Vec<&User> = members.iter().collect();
        invited.push(&admin);
        let id = group(&owner, pb::ChatKind::Group, "team", &invited)
            .await
            .id;
        promote(&owner, id, admin.id).await;
        let updates = (0..5).map(|i| {
            admin.client.update_chat(pb::UpdateChat {
                chat_id: id,
                title: Some(format!("title {i}")),
                ..Default::default()
            })
        });
        let additions = joiners.iter().map(|j| {
            admin.client.add_members(pb::AddMembers {
                chat_id: id,
                user_ids: vec![j.id],
            })
        });
        let removals = members.iter().map(|m| {
            admin.client.remove_member(pb::RemoveMember {
                chat_id: id,
                user_id: m.id,
            })
        });
        let (demoted, updated, added, removed) = tokio::join!(
            owner.client.set_member_role(pb::SetMemberRole {
                chat_id: id,
                user_id: admin.id,
                role: pb::MemberRole::Member as i32,
            }),
            futures_util::future::join_all(updates),
            futures_util::future::join_all(additions),
            futures_util::future::join_all(removals),
        );
        demoted.unwrap();
        let answers = (updated.into_iter().map(|r| r.map(drop)))
            .chain(added.into_iter().map(|r| r.map(drop)))
            .chain(removed.into_iter().map(|r| r.map(drop)));
        assert_nothing_after_demotion(&owner, id, admin.id, round, answers).await;
    }
}

/// An owner handing the chat over and deleting it at once, on one connection: one of the two
/// lands, never both (a chat deleted by someone who no longer owned it).
#[tokio::test]
async fn an_ownership_transfer_and_a_deletion_at_once_do_not_both_land() {
    let server = start().await;
    let owner = register(&server, "owner").await;
    let heir = register(&server, "heir").await;
    for round in 0..30 {
        let id = group(&owner, pb::ChatKind::Group, "team", &[&heir])
            .await
            .id;
        let (transferred, deleted) = tokio::join!(
            owner.client.transfer_ownership(pb::TransferOwnership {
                chat_id: id,
                user_id: heir.id,
            }),
            owner.client.delete_chat(pb::DeleteChat { chat_id: id }),
        );
        match (&transferred, &deleted) {
            (Ok(_), Err(e)) => assert_eq!(
                e.code(),
                Some(pb::ErrorCode::PermissionDenied),
                "round {round}: {e}"
            ),
            (Err(e), Ok(_)) => {
                assert_eq!(
                    e.code(),
                    Some(pb::ErrorCode::NotFound),
                    "round {round}: {e}"
                )
            }
            other => panic!("round {round}: {other:?}"),
        }
    }
}
