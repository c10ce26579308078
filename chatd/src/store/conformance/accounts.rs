//! Conformance cases for users, sessions, contacts and blocks.

use std::sync::Arc;

use super::*;

/// A new account has the given fields and defaults, and every lookup finds it.
pub async fn users_create_and_read<S: Store + 'static>(s: S) {
    let alice = s
        .create_user(NewUser {
            username: "Alice".into(),
            ..new_user("alice")
        })
        .await
        .expect("create");
    assert!(alice.id > 0);
    assert_eq!(alice.username, "alice", "stored lowercase");
    assert_eq!(alice.email, "alice@example.com");
    assert_eq!(alice.password_hash, "$argon2id$fake$alice");
    assert_eq!(alice.display_name, "");
    assert_eq!(alice.bio, "");
    assert_eq!(alice.avatar_file_id, "");
    assert_eq!(alice.status, pb::UserStatus::Online);
    assert_eq!(alice.last_seen_at_ms, 0);
    assert_eq!(alice.role, pb::Role::User);
    assert!(!alice.disabled && !alice.deleted);
    assert_eq!(alice.created_at_ms, T0);

    assert_eq!(s.user(alice.id).await.expect("user"), Some(alice.clone()));
    assert_eq!(s.user(alice.id + 1000).await.expect("user"), None);
    assert_eq!(
        s.user_by_username("alice").await.expect("by name"),
        Some(alice.clone())
    );
    assert_eq!(
        s.user_by_username("ALICE").await.expect("by name"),
        Some(alice.clone())
    );
    assert_eq!(s.user_by_username("nobody").await.expect("by name"), None);

    let bob = user(&s, "bob").await;
    assert!(bob > alice.id, "ids increase");
    let mut found: Vec<u64> = s
        .users(&[bob, 999_999, alice.id, bob])
        .await
        .expect("users")
        .iter()
        .map(|u| u.id)
        .collect();
    found.sort_unstable();
    assert_eq!(found, vec![alice.id, bob]);
    assert!(s.users(&[]).await.expect("users").is_empty());
}

/// Usernames are unique regardless of case.
pub async fn users_username_conflict_ignores_case<S: Store + 'static>(s: S) {
    user(&s, "carol").await;
    for taken in ["carol", "CAROL", "Carol"] {
        match s
            .create_user(NewUser {
                username: taken.into(),
                ..new_user("carol2")
            })
            .await
        {
            Err(StoreError::Conflict(ConflictKind::UsernameTaken)) => {}
            other => panic!("expected a username conflict, got {other:?}"),
        }
    }
    assert_eq!(
        s.list_users("carol", None, 10).await.expect("list").len(),
        1
    );
}

/// Deleting purges the profile, disables the account, keeps the username reserved, and later
/// changes to the account fail.
pub async fn users_deleted_username_stays_reserved<S: Store + 'static>(s: S) {
    let dave = user(&s, "dave").await;
    s.update_profile(
        dave,
        ProfilePatch {
            display_name: Some("Dave D".into()),
            bio: Some("hello".into()),
            avatar_file_id: Some("file-1".into()),
            status: Some(pb::UserStatus::Busy),
        },
    )
    .await
    .expect("profile");
    s.delete_user(dave, T0 + 5).await.expect("delete");

    let gone = s.user(dave).await.expect("user").expect("still stored");
    assert!(gone.deleted && gone.disabled);
    assert_eq!(gone.username, "dave");
    assert_eq!(
        (
            gone.email.as_str(),
            gone.password_hash.as_str(),
            gone.display_name.as_str(),
            gone.bio.as_str(),
            gone.avatar_file_id.as_str()
        ),
        ("", "", "", "", "")
    );
    assert_conflict(
        s.create_user(new_user("dave")).await,
        ConflictKind::UsernameTaken,
    );
    assert_conflict(
        s.create_user(new_user("DAVE")).await,
        ConflictKind::UsernameTaken,
    );

    s.delete_user(dave, T0 + 6)
        .await
        .expect("deleting again is a no-op");
    assert_not_found(
        s.update_profile(dave, ProfilePatch::default()).await,
        "user",
    );
    assert_not_found(s.set_password_hash(dave, "x", None).await, "user");
    assert_not_found(s.set_disabled(dave, false).await, "user");
    assert_not_found(s.set_role(dave, pb::Role::Admin).await, "user");
    assert_not_found(s.touch_last_seen(dave, T0 + 7).await, "user");
    assert!(s.user(dave).await.expect("user").expect("stored").disabled);
    assert_not_found(s.delete_user(999_999, T0).await, "user");

    assert!(
        s.search_users("dave", None, 10)
            .await
            .expect("search")
            .is_empty()
    );
    assert_eq!(s.list_users("dave", None, 10).await.expect("list").len(), 1);
}

/// Profile patches change only the given fields; password, role, disabled and last seen are
/// stored; the admin count counts active admins.
pub async fn users_profile_and_flags<S: Store + 'static>(s: S) {
    let eve = user(&s, "eve").await;
    let updated = s
        .update_profile(
            eve,
            ProfilePatch {
                display_name: Some("Eve Smith".into()),
                status: Some(pb::UserStatus::Busy),
                ..Default::default()
            },
        )
        .await
        .expect("patch");
    assert_eq!(updated.display_name, "Eve Smith");
    assert_eq!(updated.status, pb::UserStatus::Busy);
    assert_eq!(updated.bio, "");
    let updated = s
        .update_profile(
            eve,
            ProfilePatch {
                bio: Some("bio".into()),
                ..Default::default()
            },
        )
        .await
        .expect("patch");
    assert_eq!(
        (updated.display_name.as_str(), updated.bio.as_str()),
        ("Eve Smith", "bio")
    );
    assert_eq!(s.user(eve).await.expect("user"), Some(updated));

    s.set_password_hash(eve, "new-hash", None)
        .await
        .expect("password");
    // A change judged on another hash than the stored one changes nothing.
    assert_conflict(
        s.set_password_hash(eve, "newer-hash", Some("old-hash"))
            .await,
        ConflictKind::PasswordChanged,
    );
    s.touch_last_seen(eve, T0 + 100).await.expect("seen");
    let now = s.user(eve).await.expect("user").expect("exists");
    assert_eq!(now.password_hash, "new-hash");
    assert_eq!(now.last_seen_at_ms, T0 + 100);
    s.set_password_hash(eve, "newer-hash", Some("new-hash"))
        .await
        .expect("a change judged on the stored hash");
    let now = s.user(eve).await.expect("user").expect("exists");
    assert_eq!(now.password_hash, "newer-hash");

    assert_eq!(s.count_admins().await.expect("count"), 0);
    s.set_role(eve, pb::Role::Admin).await.expect("role");
    assert_eq!(
        s.user(eve).await.expect("user").expect("exists").role,
        pb::Role::Admin
    );
    assert_eq!(s.count_admins().await.expect("count"), 1);
    assert_conflict(s.set_disabled(eve, true).await, ConflictKind::LastAdmin);
    assert_conflict(
        s.set_role(eve, pb::Role::User).await,
        ConflictKind::LastAdmin,
    );
    assert_conflict(s.delete_user(eve, T0).await, ConflictKind::LastAdmin);
    let kept = s.user(eve).await.expect("user").expect("exists");
    assert!(kept.role == pb::Role::Admin && !kept.disabled && !kept.deleted);
    let fred = user(&s, "fred").await;
    s.set_role(fred, pb::Role::Admin).await.expect("role");
    s.set_disabled(eve, true).await.expect("disable");
    assert!(s.user(eve).await.expect("user").expect("exists").disabled);
    assert_eq!(
        s.count_admins().await.expect("count"),
        1,
        "disabled admins do not count"
    );
    s.set_disabled(eve, false).await.expect("enable");
    assert_eq!(s.count_admins().await.expect("count"), 2);

    let unknown = 999_999;
    assert_not_found(
        s.update_profile(unknown, ProfilePatch::default()).await,
        "user",
    );
    assert_not_found(s.set_password_hash(unknown, "x", None).await, "user");
    assert_not_found(s.set_role(unknown, pb::Role::User).await, "user");
    assert_not_found(s.set_disabled(unknown, true).await, "user");
    assert_not_found(s.touch_last_seen(unknown, T0).await, "user");
}

/// Every pair of changes that take admin rights away (demote, disable, delete), run at the same
/// moment on the only two admins: exactly one passes and one admin is left, whatever the order.
pub async fn users_last_admin_race<S: Store + 'static>(s: S) {
    #[derive(Debug, Clone, Copy)]
    enum Removal {
        Demote,
        Disable,
        Delete,
    }
    async fn remove<S: Store>(s: &S, id: u64, how: Removal) -> StoreResult<()> {
        match how {
            Removal::Demote => s.set_role(id, pb::Role::User).await,
            Removal::Disable => s.set_disabled(id, true).await,
            Removal::Delete => s.delete_user(id, T0).await,
        }
    }
    let s = Arc::new(s);
    let all = [Removal::Demote, Removal::Disable, Removal::Delete];
    for (round, (first, second)) in all
        .iter()
        .flat_map(|a| all.iter().map(move |b| (*a, *b)))
        .enumerate()
    {
        // The only active admins: the previous round's survivor steps down first.
        let mut admins = Vec::new();
        for name in ["a", "b"] {
            let id = user(s.as_ref(), &format!("{name}{round}")).await;
            s.set_role(id, pb::Role::Admin).await.expect("promote");
            admins.push(id);
        }
        if round > 0 {
            for survivor in s.list_users("", None, 1000).await.expect("list") {
                let active = survivor.role == pb::Role::Admin && !survivor.disabled;
                if active && !admins.contains(&survivor.id) {
                    s.set_disabled(survivor.id, true).await.expect("retire");
                }
            }
        }
        assert_eq!(s.count_admins().await.expect("count"), 2, "round {round}");
        let (one, two) = (admins[0], admins[1]);
        let (s1, s2) = (Arc::clone(&s), Arc::clone(&s));
        let a = tokio::spawn(async move { remove(s1.as_ref(), one, first).await });
        let b = tokio::spawn(async move { remove(s2.as_ref(), two, second).await });
        let results = [a.await.expect("task"), b.await.expect("task")];
        let passed = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(passed, 1, "{first:?} vs {second:?}: {results:?}");
        for r in results.into_iter().filter(|r| r.is_err()) {
            assert_conflict(r, ConflictKind::LastAdmin);
        }
        assert_eq!(
            s.count_admins().await.expect("count"),
            1,
            "{first:?} vs {second:?}"
        );
    }
}

fn names(users: &[UserRecord]) -> Vec<&str> {
    users.iter().map(|u| u.username.as_str()).collect()
}

/// User search matches username or display name prefixes ignoring case, only active users, in
/// username order with paging; the admin list matches usernames and includes everyone.
pub async fn users_search_and_list<S: Store + 'static>(s: S) {
    for name in [
        "anna", "annabel", "bob", "an_x", "anxious", "zed", "anton", "andy",
    ] {
        user(&s, name).await;
    }
    let zed = s
        .user_by_username("zed")
        .await
        .expect("zed")
        .expect("exists");
    s.update_profile(
        zed.id,
        ProfilePatch {
            display_name: Some("Annie Z".into()),
            ..Default::default()
        },
    )
    .await
    .expect("profile");
    let anton = s
        .user_by_username("anton")
        .await
        .expect("get")
        .expect("exists");
    s.set_disabled(anton.id, true).await.expect("disable");
    let andy = s
        .user_by_username("andy")
        .await
        .expect("get")
        .expect("exists");
    s.delete_user(andy.id, T0).await.expect("delete");

    let hits = s.search_users("ann", None, 10).await.expect("search");
    assert_eq!(names(&hits), ["anna", "annabel", "zed"]);
    let hits = s.search_users("ANN", None, 10).await.expect("search");
    assert_eq!(names(&hits), ["anna", "annabel", "zed"]);
    let hits = s.search_users("an", None, 50).await.expect("search");
    assert_eq!(names(&hits), ["an_x", "anna", "annabel", "anxious", "zed"]);
    // `_` and `%` are characters, not wildcards.
    let hits = s.search_users("an_", None, 10).await.expect("search");
    assert_eq!(names(&hits), ["an_x"]);
    assert!(
        s.search_users("an%", None, 10)
            .await
            .expect("search")
            .is_empty()
    );

    let page = s.search_users("ann", None, 2).await.expect("search");
    assert_eq!(names(&page), ["anna", "annabel"]);
    let page = s
        .search_users("ann", Some("annabel"), 2)
        .await
        .expect("search");
    assert_eq!(names(&page), ["zed"]);
    let page = s.search_users("ann", Some("zed"), 2).await.expect("search");
    assert!(page.is_empty());

    let all = s.list_users("an", None, 50).await.expect("list");
    assert_eq!(
        names(&all),
        ["an_x", "andy", "anna", "annabel", "anton", "anxious"]
    );
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.list_users("", after.as_deref(), 3).await.expect("list");
        if page.is_empty() {
            break;
        }
        after = page.last().map(|u| u.username.clone());
        paged.extend(page);
    }
    assert_eq!(
        names(&paged),
        [
            "an_x", "andy", "anna", "annabel", "anton", "anxious", "bob", "zed"
        ]
    );
}

fn new_session(user_id: u64, hash: &str, now_ms: i64) -> NewSession {
    NewSession {
        user_id,
        device_name: "laptop".into(),
        address: "192.0.2.1:4433".into(),
        refresh_hash: hash.to_string(),
        now_ms,
    }
}

/// Sessions are created with their first token, listed newest first and touched.
pub async fn sessions_create_list_touch<S: Store + 'static>(s: S) {
    let sam = user(&s, "sam").await;
    let first = s
        .create_session(new_session(sam, "h1", T0))
        .await
        .expect("session");
    assert_eq!(
        (
            first.user_id,
            first.device_name.as_str(),
            first.address.as_str(),
            first.created_at_ms,
            first.last_seen_at_ms,
            first.revoked_at_ms
        ),
        (sam, "laptop", "192.0.2.1:4433", T0, T0, None)
    );
    let second = s
        .create_session(new_session(sam, "h2", T0 + 1))
        .await
        .expect("session");
    assert_eq!(
        s.list_sessions(sam).await.expect("list"),
        vec![second.clone(), first.clone()]
    );
    assert_eq!(s.session(first.id).await.expect("get"), Some(first.clone()));
    assert_eq!(s.session(999_999).await.expect("get"), None);

    assert_not_found(
        s.create_session(new_session(999_999, "h3", T0)).await,
        "user",
    );
    assert_conflict(
        s.create_session(new_session(sam, "h1", T0)).await,
        ConflictKind::RefreshTokenReused,
    );
    assert_eq!(s.list_sessions(sam).await.expect("list").len(), 2);

    s.touch_session(first.id, "198.51.100.7:5000", T0 + 50)
        .await
        .expect("touch");
    let touched = s.session(first.id).await.expect("get").expect("exists");
    assert_eq!(touched.address, "198.51.100.7:5000");
    assert_eq!(touched.last_seen_at_ms, T0 + 50);
    assert_not_found(s.touch_session(999_999, "x", T0).await, "session");
}

/// A session and a user read in one call are what the two reads give, each `None` when
/// missing, also when the session is another user's.
pub async fn sessions_read_with_their_user<S: Store + 'static>(s: S) {
    let sam = user(&s, "sam").await;
    let kim = user(&s, "kim").await;
    let session = s
        .create_session(new_session(sam, "h1", T0))
        .await
        .expect("session");
    let sam_record = s.user(sam).await.expect("user");
    assert!(sam_record.is_some());
    assert_eq!(
        s.session_and_user(session.id, sam).await.expect("read"),
        (Some(session.clone()), sam_record)
    );
    let (other, kim_record) = s.session_and_user(session.id, kim).await.expect("read");
    assert_eq!(
        other.map(|o| o.user_id),
        Some(sam),
        "as stored: the caller compares"
    );
    assert_eq!(kim_record.map(|k| k.id), Some(kim));
    assert_eq!(
        s.session_and_user(999_999, 999_998).await.expect("read"),
        (None, None)
    );
    s.revoke_session(sam, session.id, T0 + 1)
        .await
        .expect("revoke");
    let (revoked, _) = s.session_and_user(session.id, sam).await.expect("read");
    assert_eq!(revoked.and_then(|r| r.revoked_at_ms), Some(T0 + 1));
}

/// A live token rotates once; unknown tokens are invalid.
pub async fn sessions_refresh_rotation<S: Store + 'static>(s: S) {
    let u = user(&s, "rita").await;
    let session = s
        .create_session(new_session(u, "r1", T0))
        .await
        .expect("session");
    match s.rotate_refresh("r1", "r2", T0 + 10).await.expect("rotate") {
        RefreshOutcome::Rotated(rec) => {
            assert_eq!(rec.id, session.id);
            assert_eq!(rec.last_seen_at_ms, T0 + 10);
            assert_eq!(rec.revoked_at_ms, None);
        }
        other => panic!("expected a rotation, got {other:?}"),
    }
    assert!(matches!(
        s.rotate_refresh("r2", "r3", T0 + 20).await.expect("rotate"),
        RefreshOutcome::Rotated(_)
    ));
    assert_eq!(
        s.rotate_refresh("unknown", "x", T0).await.expect("rotate"),
        RefreshOutcome::Invalid
    );
    // The new hash must not collide with an issued one; a collision changes nothing.
    assert_conflict(
        s.rotate_refresh("r3", "r1", T0 + 30).await,
        ConflictKind::RefreshTokenReused,
    );
    assert!(matches!(
        s.rotate_refresh("r3", "r4", T0 + 40).await.expect("rotate"),
        RefreshOutcome::Rotated(_)
    ));
    assert_eq!(s.list_sessions(u).await.expect("list").len(), 1);
}

/// Presenting a used token revokes its session, which invalidates every later token of it.
pub async fn sessions_refresh_reuse_revokes_family<S: Store + 'static>(s: S) {
    let u = user(&s, "mallory").await;
    let session = s
        .create_session(new_session(u, "a", T0))
        .await
        .expect("session");
    let other = s
        .create_session(new_session(u, "z", T0))
        .await
        .expect("session");
    s.rotate_refresh("a", "b", T0 + 1).await.expect("rotate");
    s.rotate_refresh("b", "c", T0 + 2).await.expect("rotate");
    assert_eq!(
        s.rotate_refresh("a", "d", T0 + 3).await.expect("reuse"),
        RefreshOutcome::Reused {
            session_id: session.id,
            user_id: u
        }
    );
    let revoked = s.session(session.id).await.expect("get").expect("exists");
    assert_eq!(revoked.revoked_at_ms, Some(T0 + 3));
    for token in ["c", "b", "a", "d"] {
        assert_eq!(
            s.rotate_refresh(token, "e", T0 + 4).await.expect("rotate"),
            RefreshOutcome::Invalid,
            "token {token}"
        );
    }
    assert_eq!(s.list_sessions(u).await.expect("list"), vec![other]);
    assert!(matches!(
        s.rotate_refresh("z", "y", T0 + 5).await.expect("rotate"),
        RefreshOutcome::Rotated(_)
    ));
}

/// A live token of an expired session (idle for [`REFRESH_IDLE_TTL_MS`], or
/// [`REFRESH_ABSOLUTE_TTL_MS`] old however recently used) does not rotate: the session is revoked
/// instead. Expiry is judged before the rotation's own use, one millisecond either side of each
/// bound.
pub async fn sessions_refresh_expired<S: Store + 'static>(s: S) {
    use crate::store::{REFRESH_ABSOLUTE_TTL_MS, REFRESH_IDLE_TTL_MS};
    let u = user(&s, "eve").await;
    let idle = s.create_session(new_session(u, "i1", T0)).await.expect("s");
    let aged = s.create_session(new_session(u, "a1", T0)).await.expect("s");
    // Just inside the idle bound: rotates, and counts as a use.
    assert!(matches!(
        s.rotate_refresh("i1", "i2", T0 + REFRESH_IDLE_TTL_MS - 1)
            .await
            .expect("rotate"),
        RefreshOutcome::Rotated(_)
    ));
    let idle_until = T0 + 2 * REFRESH_IDLE_TTL_MS - 1;
    assert_eq!(
        s.rotate_refresh("i2", "i3", idle_until)
            .await
            .expect("rotate"),
        RefreshOutcome::Expired {
            session_id: idle.id,
            user_id: u
        }
    );
    let revoked = s.session(idle.id).await.expect("get").expect("exists");
    assert_eq!(revoked.revoked_at_ms, Some(idle_until));
    assert_eq!(
        revoked.last_seen_at_ms,
        T0 + REFRESH_IDLE_TTL_MS - 1,
        "no use recorded"
    );
    // Not rotated: neither token works now, and the offered hash was not issued.
    for token in ["i2", "i3"] {
        assert_eq!(
            s.rotate_refresh(token, "x", idle_until + 1)
                .await
                .expect("rotate"),
            RefreshOutcome::Invalid,
            "token {token}"
        );
    }
    s.create_session(new_session(u, "i3", T0))
        .await
        .expect("i3 was never issued");

    // Used a day before each rotation, yet too old at the absolute bound.
    let day = 24 * 60 * 60 * 1000;
    let mut token = 1;
    let mut at = T0;
    while at + day < T0 + REFRESH_ABSOLUTE_TTL_MS {
        at += day;
        assert!(
            matches!(
                s.rotate_refresh(&format!("a{token}"), &format!("a{}", token + 1), at)
                    .await
                    .expect("rotate"),
                RefreshOutcome::Rotated(_)
            ),
            "day {token}"
        );
        token += 1;
    }
    assert!(matches!(
        s.rotate_refresh(
            &format!("a{token}"),
            &format!("a{}", token + 1),
            T0 + REFRESH_ABSOLUTE_TTL_MS - 1
        )
        .await
        .expect("rotate"),
        RefreshOutcome::Rotated(_)
    ));
    token += 1;
    assert_eq!(
        s.rotate_refresh(
            &format!("a{token}"),
            &format!("a{}", token + 1),
            T0 + REFRESH_ABSOLUTE_TTL_MS
        )
        .await
        .expect("rotate"),
        RefreshOutcome::Expired {
            session_id: aged.id,
            user_id: u
        }
    );
    assert!(
        s.list_sessions(u)
            .await
            .expect("list")
            .iter()
            .all(|r| r.id != aged.id && r.id != idle.id)
    );
}

/// Revoking one session needs it to be the user's and live.
pub async fn sessions_revoke_one<S: Store + 'static>(s: S) {
    let u = user(&s, "ursula").await;
    let v = user(&s, "victor").await;
    let u1 = s.create_session(new_session(u, "u1", T0)).await.expect("s");
    let u2 = s.create_session(new_session(u, "u2", T0)).await.expect("s");
    let v1 = s.create_session(new_session(v, "v1", T0)).await.expect("s");

    assert_not_found(s.revoke_session(u, v1.id, T0).await, "session");
    assert_eq!(s.list_sessions(v).await.expect("list"), vec![v1]);
    s.revoke_session(u, u1.id, T0 + 5).await.expect("revoke");
    assert_eq!(
        s.session(u1.id)
            .await
            .expect("get")
            .expect("exists")
            .revoked_at_ms,
        Some(T0 + 5)
    );
    assert_not_found(s.revoke_session(u, u1.id, T0 + 6).await, "session");
    assert_eq!(
        s.rotate_refresh("u1", "u1b", T0 + 7).await.expect("rotate"),
        RefreshOutcome::Invalid
    );
    assert_eq!(s.list_sessions(u).await.expect("list"), vec![u2]);
}

/// Revoking all sessions of a user spares the kept one and other users' sessions.
pub async fn sessions_revoke_all_except_keep<S: Store + 'static>(s: S) {
    let u = user(&s, "uma").await;
    let v = user(&s, "vera").await;
    let a = s.create_session(new_session(u, "a", T0)).await.expect("s");
    let b = s.create_session(new_session(u, "b", T0)).await.expect("s");
    let c = s.create_session(new_session(u, "c", T0)).await.expect("s");
    let d = s.create_session(new_session(v, "d", T0)).await.expect("s");

    let mut revoked = s
        .revoke_user_sessions(u, Some(b.id), T0 + 1)
        .await
        .expect("revoke");
    revoked.sort_unstable();
    assert_eq!(revoked, vec![a.id, c.id]);
    assert_eq!(s.list_sessions(u).await.expect("list"), vec![b.clone()]);
    assert_eq!(s.list_sessions(v).await.expect("list"), vec![d]);
    assert_eq!(
        s.revoke_user_sessions(u, None, T0 + 2)
            .await
            .expect("revoke"),
        vec![b.id]
    );
    assert!(
        s.revoke_user_sessions(u, None, T0 + 3)
            .await
            .expect("revoke")
            .is_empty()
    );
    assert!(s.list_sessions(u).await.expect("list").is_empty());
}

/// A session of `user` created at `created` with the token `<name>1`, used at `used` (a touch,
/// so that the rotation finds it live) and rotated then to `<name>2`: one used token and one
/// live one.
async fn rotated_session<S: Store>(s: &S, user: u64, name: &str, created: i64, used: i64) -> u64 {
    let session = s
        .create_session(new_session(user, &format!("{name}1"), created))
        .await
        .expect("session");
    s.touch_session(session.id, "192.0.2.1:1", used)
        .await
        .expect("touch");
    let rotated = s
        .rotate_refresh(&format!("{name}1"), &format!("{name}2"), used)
        .await
        .expect("rotate");
    assert!(matches!(rotated, RefreshOutcome::Rotated(_)), "{rotated:?}");
    session.id
}

/// Dead sessions are deleted in batches with every token they were issued: those revoked by
/// the cutoff and those whose refresh token had expired by then, idle or of age (the bounds of
/// `refresh_expired`, inclusive). Sessions that died later and live ones stay as they were.
pub async fn sessions_delete_dead<S: Store + 'static>(s: S) {
    use crate::store::{DeadSessions, REFRESH_ABSOLUTE_TTL_MS, REFRESH_IDLE_TTL_MS};
    const DAY: i64 = 24 * 60 * 60 * 1000;
    let u = user(&s, "dora").await;
    let v = user(&s, "dirk").await;
    let cutoff = T0 + 2 * REFRESH_ABSOLUTE_TTL_MS;
    let idle_since = cutoff - REFRESH_IDLE_TTL_MS;
    let born = cutoff - REFRESH_ABSOLUTE_TTL_MS;

    let live = rotated_session(&s, u, "live", cutoff - DAY, cutoff).await;
    let revoked_later = rotated_session(&s, u, "late", cutoff - DAY, cutoff - DAY).await;
    s.revoke_session(u, revoked_later, cutoff + 1)
        .await
        .expect("revoke");
    let revoked = rotated_session(&s, u, "gone", cutoff - DAY, cutoff - DAY).await;
    s.revoke_session(u, revoked, cutoff).await.expect("revoke");
    let idle = rotated_session(&s, u, "idle", idle_since - DAY, idle_since).await;
    let idle_later = rotated_session(&s, u, "rest", idle_since - DAY, idle_since + 1).await;
    let aged = rotated_session(&s, v, "aged", born, cutoff - 1).await;
    let aged_later = rotated_session(&s, v, "young", born + 1, cutoff - 1).await;
    let dead = [revoked, idle, aged];
    let mut kept = Vec::new();
    for id in [live, revoked_later, idle_later, aged_later] {
        kept.push(s.session(id).await.expect("read").expect("session"));
    }

    let store = &s;
    let left = move || async move {
        let mut left = Vec::new();
        for id in dead {
            if store.session(id).await.expect("read").is_some() {
                left.push(id);
            }
        }
        left
    };
    let first = s
        .delete_dead_sessions(DeadSessions::at(cutoff), 2)
        .await
        .expect("delete");
    assert_eq!(
        first.len(),
        2,
        "a batch deletes at most its limit: {first:?}"
    );
    assert_eq!(first, sorted(first.clone()), "ascending");
    let second = left().await;
    assert_eq!(
        sorted([first, second.clone()].concat()),
        sorted(dead.to_vec())
    );
    assert_eq!(
        s.delete_dead_sessions(DeadSessions::at(cutoff), 2)
            .await
            .expect("delete"),
        second
    );
    assert_eq!(left().await, Vec::<u64>::new());
    assert_eq!(
        s.delete_dead_sessions(DeadSessions::at(cutoff), 2)
            .await
            .expect("delete"),
        Vec::<u64>::new()
    );
    for session in &kept {
        assert_eq!(
            s.session(session.id).await.expect("read").as_ref(),
            Some(session),
            "session {}",
            session.device_name
        );
    }
    assert_eq!(
        s.list_sessions(u).await.expect("list"),
        vec![kept[2].clone(), kept[0].clone()]
    );
    assert_eq!(
        s.list_sessions(v).await.expect("list"),
        vec![kept[3].clone()]
    );

    // Before, `idle2` and `aged2` rotated and `idle1` and `aged1` were reuse.
    for token in ["gone1", "gone2", "idle1", "idle2", "aged1", "aged2"] {
        assert_eq!(
            s.rotate_refresh(token, "x", cutoff + 2)
                .await
                .expect("rotate"),
            RefreshOutcome::Invalid,
            "token {token}"
        );
    }
    // At the cutoff all three are live still (`rest` and `young` expire a millisecond later).
    for token in ["live", "rest", "young"] {
        let rotated = s
            .rotate_refresh(&format!("{token}2"), &format!("{token}3"), cutoff)
            .await
            .expect("rotate");
        assert!(
            matches!(rotated, RefreshOutcome::Rotated(_)),
            "{token}: {rotated:?}"
        );
    }
    assert_not_found(s.touch_session(idle, "x", cutoff + 4).await, "session");
    // No row of a deleted session's tokens is left: their hashes count as never issued.
    for token in ["gone1", "idle2", "aged1"] {
        s.create_session(new_session(u, token, cutoff + 5))
            .await
            .expect("the hash of a deleted session's token is free");
    }
}

fn sorted(mut ids: Vec<u64>) -> Vec<u64> {
    ids.sort_unstable();
    ids
}

/// Contacts are one-directional and idempotent; `contact_of` is the reverse view.
pub async fn relations_contacts<S: Store + 'static>(s: S) {
    let a = user(&s, "ann").await;
    let b = user(&s, "ben").await;
    let c = user(&s, "cat").await;
    s.add_contact(a, b).await.expect("add");
    s.add_contact(a, b).await.expect("add again");
    s.add_contact(a, c).await.expect("add");
    s.add_contact(c, b).await.expect("add");
    assert_eq!(sorted(s.contacts(a).await.expect("contacts")), vec![b, c]);
    assert!(s.contacts(b).await.expect("contacts").is_empty());
    assert_eq!(sorted(s.contact_of(b).await.expect("of")), vec![a, c]);

    s.remove_contact(a, b).await.expect("remove");
    s.remove_contact(a, b).await.expect("remove again");
    assert_eq!(s.contacts(a).await.expect("contacts"), vec![c]);
    assert_eq!(s.contact_of(b).await.expect("of"), vec![c]);
    assert_not_found(s.add_contact(a, 999_999).await, "user");
}

/// Blocks are one-directional and idempotent.
pub async fn relations_blocks<S: Store + 'static>(s: S) {
    let a = user(&s, "amy").await;
    let b = user(&s, "bill").await;
    s.block(a, b).await.expect("block");
    s.block(a, b).await.expect("block again");
    assert_eq!(s.blocked(a).await.expect("blocked"), vec![b]);
    let c = user(&s, "cora").await;
    s.block(c, b).await.expect("block");
    assert_eq!(s.blocked_by(b).await.expect("by"), vec![a, c]);
    assert!(s.blocked_by(a).await.expect("by").is_empty());
    s.unblock(c, b).await.expect("unblock");
    assert!(s.is_blocked(a, b).await.expect("is"));
    assert!(!s.is_blocked(b, a).await.expect("is"));
    s.unblock(a, b).await.expect("unblock");
    s.unblock(a, b).await.expect("unblock again");
    assert!(!s.is_blocked(a, b).await.expect("is"));
    assert!(s.blocked(a).await.expect("blocked").is_empty());
    assert!(s.blocked_by(b).await.expect("by").is_empty());
    assert_not_found(s.block(a, 999_999).await, "user");
}
