//! Profiles, user search, contacts and blocks end to end.

use std::time::Duration;

use chatproto::client::ClientEvent;
use chatproto::pb;
use chatproto::pb::ErrorCode;
use tests::client::{code, register, remote, wait_event};
use tests::server::TestServer;

#[tokio::test]
async fn profiles_update_and_public_views_hide_private_fields() {
    let server = TestServer::start().await;
    let (alice, a) = register(&server, "alice").await;
    let (bob, _) = register(&server, "bob").await;
    let alice_id = a.user.expect("user").id;

    let me = alice
        .update_profile(pb::UpdateProfile {
            display_name: Some("Alice A.".into()),
            bio: Some("line one\nline two".into()),
            avatar_file_id: None,
            status: pb::UserStatus::Busy as i32,
        })
        .await
        .expect("update");
    assert_eq!(
        (me.display_name.as_str(), me.status()),
        ("Alice A.", pb::UserStatus::Busy)
    );

    let seen = bob
        .get_users(pb::GetUsers {
            user_ids: vec![alice_id, 999_999],
        })
        .await
        .expect("get_users")
        .users;
    assert_eq!(seen.len(), 1, "unknown ids are left out");
    let seen = &seen[0];
    assert_eq!(seen.display_name, "Alice A.");
    assert_eq!(seen.bio, "line one\nline two");
    assert_eq!(seen.status(), pb::UserStatus::Busy);
    assert!(seen.email.is_empty(), "email is private");
    assert_eq!(seen.role, 0, "role is private");

    // Absent fields stay unchanged; bad ones name the field and change nothing.
    let err = remote(
        alice
            .update_profile(pb::UpdateProfile {
                display_name: Some("x".repeat(65)),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(err.field, "update_profile.display_name");
    let err = remote(
        alice
            .update_profile(pb::UpdateProfile {
                bio: Some("bell\u{7}".into()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(
        (err.code, err.field.as_str()),
        (ErrorCode::InvalidArgument, "update_profile.bio")
    );
    let err = remote(
        alice
            .update_profile(pb::UpdateProfile {
                avatar_file_id: Some("../etc/passwd".into()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(err.field, "update_profile.avatar_file_id");
    let me = alice.get_me(pb::GetMe {}).await.expect("me");
    assert_eq!(
        (me.display_name.as_str(), me.bio.as_str()),
        ("Alice A.", "line one\nline two")
    );
}

#[tokio::test]
async fn user_search_is_a_case_insensitive_prefix_search_with_paging() {
    let server = TestServer::start().await;
    let (searcher, _) = register(&server, "zed").await;
    for name in ["mark", "martha", "marvin", "mary", "maxine", "other"] {
        register(&server, name).await;
    }
    let (named, _) = register(&server, "nobody_special").await;
    named
        .update_profile(pb::UpdateProfile {
            display_name: Some("Marigold".into()),
            ..Default::default()
        })
        .await
        .expect("display name");

    let mut found = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = searcher
            .search_users(pb::SearchUsers {
                query: "MAR".into(),
                limit: 2,
                cursor: cursor.clone(),
            })
            .await
            .expect("search");
        assert!(page.users.len() <= 2);
        found.extend(page.users.into_iter().map(|u| u.username));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(
        found,
        vec!["mark", "martha", "marvin", "mary", "nobody_special"]
    );

    assert_eq!(
        code(
            searcher
                .search_users(pb::SearchUsers {
                    query: String::new(),
                    ..Default::default()
                })
                .await
        ),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(
            searcher
                .search_users(pb::SearchUsers {
                    query: "ma".into(),
                    limit: 101,
                    cursor: String::new()
                })
                .await
        ),
        ErrorCode::InvalidArgument
    );
}

#[tokio::test]
async fn contacts_are_added_listed_and_removed() {
    let server = TestServer::start().await;
    let (alice, _) = register(&server, "alice").await;
    let (_bob, b) = register(&server, "bob").await;
    let bob_id = b.user.expect("user").id;

    alice
        .add_contact(pb::AddContact { user_id: bob_id })
        .await
        .expect("add");
    alice
        .add_contact(pb::AddContact { user_id: bob_id })
        .await
        .expect("adding twice is fine");
    let contacts = alice
        .list_contacts(pb::ListContacts::default())
        .await
        .expect("list")
        .users;
    assert_eq!(
        contacts.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![bob_id]
    );
    assert_eq!(
        code(alice.add_contact(pb::AddContact { user_id: 424_242 }).await),
        ErrorCode::NotFound
    );
    alice
        .remove_contact(pb::RemoveContact { user_id: bob_id })
        .await
        .expect("remove");
    assert!(
        alice
            .list_contacts(pb::ListContacts::default())
            .await
            .expect("list")
            .users
            .is_empty()
    );
}

#[tokio::test]
async fn a_blocked_user_cannot_reach_the_blocker() {
    let server = TestServer::start().await;
    let (alice, a) = register(&server, "alice").await;
    let (bob, b) = register(&server, "bob").await;
    let alice_id = a.user.expect("user").id;
    let bob_id = b.user.expect("user").id;

    // Bob watches Alice's presence as a contact.
    bob.add_contact(pb::AddContact { user_id: alice_id })
        .await
        .expect("contact");
    alice
        .block_user(pb::BlockUser { user_id: bob_id })
        .await
        .expect("block");
    let blocked = alice
        .list_blocked(pb::ListBlocked::default())
        .await
        .expect("list")
        .users;
    assert_eq!(
        blocked.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![bob_id]
    );

    // No private chat, no group invitation.
    assert_eq!(
        code(bob.create_private_chat(alice_id).await),
        ErrorCode::PermissionDenied
    );
    let group = bob
        .create_group(pb::CreateGroup {
            kind: pb::ChatKind::Group as i32,
            title: "g".into(),
            ..Default::default()
        })
        .await
        .expect("group");
    assert_eq!(
        code(
            bob.add_members(pb::AddMembers {
                chat_id: group.id,
                user_ids: vec![alice_id]
            })
            .await
        ),
        ErrorCode::PermissionDenied
    );

    // No presence: Bob sees Alice offline with no last-seen time, even though she is online.
    let seen = bob
        .get_users(pb::GetUsers {
            user_ids: vec![alice_id],
        })
        .await
        .expect("get")
        .users;
    assert_eq!(seen[0].status(), pb::UserStatus::Offline);
    assert_eq!(seen[0].last_seen_at_ms, 0);
    alice
        .update_profile(pb::UpdateProfile {
            status: pb::UserStatus::Away as i32,
            ..Default::default()
        })
        .await
        .expect("status");
    // A third user who is Alice's contact does see the change (presence works at all) ...
    let (carol, _) = register(&server, "carol").await;
    carol
        .add_contact(pb::AddContact { user_id: alice_id })
        .await
        .expect("contact");
    alice
        .update_profile(pb::UpdateProfile {
            status: pb::UserStatus::Busy as i32,
            ..Default::default()
        })
        .await
        .expect("status");
    wait_event(&carol, Duration::from_secs(5), |e| match e {
        ClientEvent::Presence(p) if p.user_id == alice_id && p.status() == pb::UserStatus::Busy => {
            Some(())
        }
        _ => None,
    })
    .await;
    // ... while Bob got nothing about Alice but the "offline" sent when she blocked him.
    while let Some(event) = bob.try_next_event() {
        if let ClientEvent::Presence(p) = event {
            assert!(
                p.user_id != alice_id || p.status() == pb::UserStatus::Offline,
                "leaked presence {p:?}"
            );
        }
    }

    // Unblocking restores everything.
    alice
        .unblock_user(pb::UnblockUser { user_id: bob_id })
        .await
        .expect("unblock");
    assert!(
        alice
            .list_blocked(pb::ListBlocked::default())
            .await
            .expect("list")
            .users
            .is_empty()
    );
    bob.create_private_chat(alice_id)
        .await
        .expect("private chat after unblock");
}

#[tokio::test]
async fn blocking_yourself_or_nobody_is_invalid() {
    let server = TestServer::start().await;
    let (alice, a) = register(&server, "alice").await;
    let alice_id = a.user.expect("user").id;
    assert_eq!(
        code(alice.block_user(pb::BlockUser { user_id: alice_id }).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(alice.block_user(pb::BlockUser { user_id: 0 }).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(alice.block_user(pb::BlockUser { user_id: 777_777 }).await),
        ErrorCode::NotFound
    );
}
