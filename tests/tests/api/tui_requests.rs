//! chat-tui's requests against a real chatd: every command its screens can send (chats,
//! membership, messages, search, chat state, profile, contacts, blocking, sessions) does what
//! it says and reports success, or a failure in words, the way the status bar shows it.

use std::sync::Arc;

use chat_tui::action::NetEvent;
use chat_tui::effect::{NetCommand, UserRef};
use chat_tui::net::requests::run;
use chatproto::client::{Client, HistoryRange};
use chatproto::pb;
use tests::server::TestServer;

use crate::support::{PASSWORD, config, start};

/// A registered user's client, shared the way chat-tui's network task shares it.
async fn person(server: &TestServer, name: &str) -> (Arc<Client>, u64) {
    let client = Client::connect(config(server)).await.expect("connect");
    let auth = client
        .register_user(name, &format!("{name}@example.test"), PASSWORD, "tui")
        .await
        .expect("register");
    (Arc::new(client), auth.user.expect("user").id)
}

fn name(s: &str) -> UserRef {
    UserRef::Name(s.into())
}

/// The feedback of a command that must succeed.
fn done(events: &[NetEvent]) -> String {
    events
        .iter()
        .find_map(|e| match e {
            NetEvent::Done(text) => Some(text.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("expected success, got {events:?}"))
}

/// The feedback of a command that must fail.
fn failed(events: &[NetEvent]) -> String {
    match events {
        [NetEvent::Failed(text)] => text.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn opened(events: &[NetEvent]) -> pb::Chat {
    match events {
        [NetEvent::ChatOpened(chat)] => chat.clone(),
        other => panic!("expected a chat, got {other:?}"),
    }
}

#[tokio::test]
async fn chats_and_membership() {
    let server = start().await;
    let (alice, _) = person(&server, "alice").await;
    let (bob, bob_id) = person(&server, "bob").await;
    let (_carol, carol_id) = person(&server, "carol").await;

    let dm = opened(&run(alice.clone(), NetCommand::OpenPrivate(name("bob"))).await);
    assert_eq!(dm.kind, pb::ChatKind::Private as i32);
    assert_eq!(
        failed(&run(alice.clone(), NetCommand::OpenPrivate(name("zoe"))).await),
        "there is no user @zoe"
    );
    let team = opened(
        &run(
            alice.clone(),
            NetCommand::CreateGroup {
                kind: pb::ChatKind::Group,
                title: "team".into(),
            },
        )
        .await,
    );
    let news = opened(
        &run(
            alice.clone(),
            NetCommand::CreateGroup {
                kind: pb::ChatKind::Channel,
                title: "news".into(),
            },
        )
        .await,
    );
    assert_eq!(news.kind, pb::ChatKind::Channel as i32);

    let chat_id = team.id;
    assert_eq!(
        done(
            &run(
                alice.clone(),
                NetCommand::Invite {
                    chat_id,
                    user: name("bob")
                }
            )
            .await
        ),
        "@bob invited."
    );
    assert_eq!(
        done(
            &run(
                alice.clone(),
                NetCommand::Invite {
                    chat_id,
                    user: UserRef::Id(carol_id)
                }
            )
            .await
        ),
        format!("user #{carol_id} invited.")
    );
    let again = failed(
        &run(
            alice.clone(),
            NetCommand::Invite {
                chat_id,
                user: name("bob"),
            },
        )
        .await,
    );
    assert!(again.starts_with("Could not invite @bob:"), "{again}");
    let role = |user, role| NetCommand::SetRole {
        chat_id,
        user,
        role,
    };
    assert_eq!(
        done(&run(alice.clone(), role(name("carol"), pb::MemberRole::Admin)).await),
        "@carol is now an admin."
    );
    assert_eq!(
        done(&run(alice.clone(), role(name("carol"), pb::MemberRole::Member)).await),
        "@carol is now a member."
    );
    let denied = failed(&run(bob.clone(), role(name("carol"), pb::MemberRole::Admin)).await);
    assert!(denied.contains("not allowed"), "{denied}");
    assert_eq!(
        done(
            &run(
                alice.clone(),
                NetCommand::Kick {
                    chat_id,
                    user: name("carol")
                }
            )
            .await
        ),
        "@carol removed."
    );
    assert_eq!(
        done(
            &run(
                alice.clone(),
                NetCommand::Transfer {
                    chat_id,
                    user: UserRef::Id(bob_id)
                }
            )
            .await
        ),
        format!("user #{bob_id} now owns the chat.")
    );
    assert_eq!(
        done(&run(alice.clone(), NetCommand::Leave(chat_id)).await),
        "You left the chat."
    );
    // A private chat cannot be left: leaving deletes it.
    assert_eq!(
        done(&run(bob.clone(), NetCommand::Leave(dm.id)).await),
        "Chat deleted."
    );

    // Pin, mute and archive come back with the chat in its new state.
    let events = run(
        bob.clone(),
        NetCommand::SetChatState {
            chat_id,
            pinned: Some(true),
            muted_until_ms: Some(i64::MAX),
            archived: None,
        },
    )
    .await;
    match &events[..] {
        [NetEvent::Chat(chat), NetEvent::Done(text)] => {
            let state = chat.state.unwrap();
            assert!(state.pinned && state.muted_until_ms == i64::MAX);
            assert_eq!(text, "Pinned.");
        }
        other => panic!("{other:?}"),
    }
    let chats = match &run(bob.clone(), NetCommand::LoadChats).await[..] {
        [NetEvent::Chats(chats)] => chats.clone(),
        other => panic!("{other:?}"),
    };
    assert!(chats.iter().any(|c| c.id == chat_id));
    match &run(bob.clone(), NetCommand::LoadChat(chat_id)).await[..] {
        [NetEvent::Chat(chat)] => assert_eq!(chat.members.len(), 1, "bob alone after alice left"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn messages_search_and_receipts() {
    let server = start().await;
    let (alice, alice_id) = person(&server, "alice").await;
    let (bob, _) = person(&server, "bob").await;
    let dm = opened(&run(alice.clone(), NetCommand::OpenPrivate(name("bob"))).await);
    let chat_id = dm.id;
    let first = alice
        .send_text(chat_id, "first message about lunch")
        .await
        .unwrap();
    let second = bob.send_text(chat_id, "second").await.unwrap();

    let edit = |client: &Arc<Client>, seq, text: &str| {
        run(
            client.clone(),
            NetCommand::Edit {
                chat_id,
                seq,
                text: text.into(),
            },
        )
    };
    assert_eq!(
        done(&edit(&alice, first.seq, "first message about lunch, edited").await),
        "Message edited."
    );
    let refused = failed(&edit(&alice, second.seq, "not mine").await);
    assert!(
        refused.starts_with("Could not edit: not allowed"),
        "{refused}"
    );
    let react = |remove| NetCommand::React {
        chat_id,
        seq: second.seq,
        emoji: "👍".into(),
        remove,
    };
    assert_eq!(done(&run(alice.clone(), react(false)).await), "Reacted 👍.");
    assert_eq!(
        done(&run(alice.clone(), react(true)).await),
        "Reaction 👍 removed."
    );
    let bad = failed(
        &run(
            alice.clone(),
            NetCommand::React {
                chat_id,
                seq: second.seq,
                emoji: "nope".into(),
                remove: false,
            },
        )
        .await,
    );
    assert!(bad.starts_with("Could not react: emoji"), "{bad}");

    let history = run(
        alice.clone(),
        NetCommand::LoadHistory {
            chat_id,
            token: 7,
            range: HistoryRange::Latest,
        },
    )
    .await;
    match &history[..] {
        [NetEvent::History { token: 7, page, .. }] => {
            let texts: Vec<&str> = page.messages.iter().map(|m| m.text.as_str()).collect();
            assert_eq!(texts, ["first message about lunch, edited", "second"]);
            assert!(page.end);
        }
        other => panic!("{other:?}"),
    }
    match &run(
        bob.clone(),
        NetCommand::SearchMessages {
            token: 3,
            query: "lunch".into(),
            chat_id: 0,
        },
    )
    .await[..]
    {
        [NetEvent::MessageResults { token: 3, messages }] => assert_eq!(messages[0].seq, first.seq),
        other => panic!("{other:?}"),
    }
    assert!(
        run(
            bob.clone(),
            NetCommand::MarkRead {
                chat_id,
                seq: second.seq
            }
        )
        .await
        .is_empty()
    );
    assert!(
        run(bob.clone(), NetCommand::Typing(chat_id))
            .await
            .is_empty()
    );
    match &run(alice.clone(), NetCommand::LoadReceipts(chat_id)).await[..] {
        [NetEvent::Receipts { receipts, .. }] => {
            assert!(
                receipts
                    .iter()
                    .any(|r| r.user_id != alice_id && r.read_seq >= second.seq)
            );
        }
        other => panic!("{other:?}"),
    }

    // Forwarding goes through the outbox, not this path; deleting is here.
    let delete = |seq, for_everyone| NetCommand::Delete {
        chat_id,
        seq,
        for_everyone,
    };
    assert_eq!(
        done(&run(bob.clone(), delete(first.seq, false)).await),
        "Deleted for you."
    );
    assert_eq!(
        done(&run(alice.clone(), delete(first.seq, true)).await),
        "Deleted for everyone."
    );
    let gone = failed(&run(alice.clone(), delete(999, true)).await);
    assert!(gone.starts_with("Could not delete: not found"), "{gone}");
}

#[tokio::test]
async fn profile_contacts_blocking_and_sessions() {
    let server = start().await;
    let (alice, _) = person(&server, "alice").await;
    let (_bob, bob_id) = person(&server, "bob").await;

    let status = pb::UpdateProfile {
        status: pb::UserStatus::Away as i32,
        ..Default::default()
    };
    match &run(alice.clone(), NetCommand::UpdateProfile(status)).await[..] {
        [NetEvent::Me(me), NetEvent::Done(_)] => assert_eq!(me.status, pb::UserStatus::Away as i32),
        other => panic!("{other:?}"),
    }
    let name_change = pb::UpdateProfile {
        display_name: Some("Alice A.".into()),
        ..Default::default()
    };
    match &run(alice.clone(), NetCommand::UpdateProfile(name_change)).await[..] {
        [NetEvent::Me(me), NetEvent::Done(_)] => assert_eq!(me.display_name, "Alice A."),
        other => panic!("{other:?}"),
    }
    match &run(alice.clone(), NetCommand::ShowProfile(name("bob"))).await[..] {
        [NetEvent::Profile(user)] => assert_eq!(user.id, bob_id),
        other => panic!("{other:?}"),
    }
    match &run(
        alice.clone(),
        NetCommand::SearchUsers {
            token: 1,
            query: "bo".into(),
        },
    )
    .await[..]
    {
        [NetEvent::UserResults { users, .. }] => assert_eq!(users[0].username, "bob"),
        other => panic!("{other:?}"),
    }
    match &run(alice.clone(), NetCommand::LoadUsers(vec![bob_id])).await[..] {
        [NetEvent::Users(users)] => assert_eq!(users[0].id, bob_id),
        other => panic!("{other:?}"),
    }

    assert_eq!(
        done(&run(alice.clone(), NetCommand::AddContact(name("bob"))).await),
        "@bob added to your contacts."
    );
    match &run(alice.clone(), NetCommand::ListContacts { token: 2 }).await[..] {
        [NetEvent::UserResults { token: 2, users }] => assert_eq!(users[0].id, bob_id),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        done(&run(alice.clone(), NetCommand::RemoveContact(name("bob"))).await),
        "@bob removed from your contacts."
    );
    assert_eq!(
        done(&run(alice.clone(), NetCommand::Block(name("bob"))).await),
        "@bob blocked."
    );
    match &run(alice.clone(), NetCommand::ListBlocked { token: 4 }).await[..] {
        [NetEvent::UserResults { token: 4, users }] => assert_eq!(users[0].id, bob_id),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        done(&run(alice.clone(), NetCommand::Unblock(name("bob"))).await),
        "@bob unblocked."
    );
    let oneself = failed(&run(alice.clone(), NetCommand::Block(name("alice"))).await);
    assert!(oneself.starts_with("@alice:"), "{oneself}");

    // A second device of alice, revoked from the first.
    let laptop = Client::connect(config(&server)).await.unwrap();
    laptop.login("alice", PASSWORD, "laptop").await.unwrap();
    let sessions = match &run(alice.clone(), NetCommand::ListSessions).await[..] {
        [NetEvent::Sessions(sessions)] => sessions.clone(),
        other => panic!("{other:?}"),
    };
    let other = sessions
        .iter()
        .find(|s| !s.current)
        .expect("the laptop's session");
    assert_eq!(other.device_name, "laptop");
    assert_eq!(
        done(&run(alice.clone(), NetCommand::RevokeSession(other.id)).await),
        format!("Session #{} revoked.", other.id)
    );
}
