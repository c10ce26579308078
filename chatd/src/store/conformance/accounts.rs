//! Conformance cases for users, contacts and blocks.

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
    s.delete_user(dave, T0 + 5, None).await.expect("delete");

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

    s.delete_user(dave, T0 + 6, None)
        .await
        .expect("deleting again is a no-op");
    assert_not_found(
        s.update_profile(dave, ProfilePatch::default()).await,
        "user",
    );
    assert_not_found(s.set_password_hash(dave, "x", None).await, "user");
    assert_not_found(s.set_disabled(dave, false, None).await, "user");
    assert_not_found(s.set_role(dave, pb::Role::Admin, None).await, "user");
    assert_not_found(s.touch_last_seen(dave, T0 + 7).await, "user");
    assert!(s.user(dave).await.expect("user").expect("stored").disabled);
    assert_not_found(s.delete_user(999_999, T0, None).await, "user");

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
    s.set_role(eve, pb::Role::Admin, None).await.expect("role");
    assert_eq!(
        s.user(eve).await.expect("user").expect("exists").role,
        pb::Role::Admin
    );
    assert_eq!(s.count_admins().await.expect("count"), 1);
    assert_conflict(
        s.set_disabled(eve, true, None).await,
        ConflictKind::LastAdmin,
    );
    assert_conflict(
        s.set_role(eve, pb::Role::User, None).await,
        ConflictKind::LastAdmin,
    );
    assert_conflict(s.delete_user(eve, T0, None).await, ConflictKind::LastAdmin);
    let kept = s.user(eve).await.expect("user").expect("exists");
    assert!(kept.role == pb::Role::Admin && !kept.disabled && !kept.deleted);
    let fred = user(&s, "fred").await;
    s.set_role(fred, pb::Role::Admin, None).await.expect("role");
    s.set_disabled(eve, true, None).await.expect("disable");
    assert!(s.user(eve).await.expect("user").expect("exists").disabled);
    assert_eq!(
        s.count_admins().await.expect("count"),
        1,
        "disabled admins do not count"
    );
    s.set_disabled(eve, false, None).await.expect("enable");
    assert_eq!(s.count_admins().await.expect("count"), 2);

    let unknown = 999_999;
    assert_not_found(
        s.update_profile(unknown, ProfilePatch::default()).await,
        "user",
    );
    assert_not_found(s.set_password_hash(unknown, "x", None).await, "user");
    assert_not_found(s.set_role(unknown, pb::Role::User, None).await, "user");
    assert_not_found(s.set_disabled(unknown, true, None).await, "user");
    assert_not_found(s.touch_last_seen(unknown, T0).await, "user");
}

/// A change that takes admin rights away.
#[derive(Debug, Clone, Copy)]
enum Removal {
    Demote,
    Disable,
    Delete,
}

const REMOVALS: [Removal; 3] = [Removal::Demote, Removal::Disable, Removal::Delete];

/// Every ordered pair of removals.
fn removal_pairs() -> impl Iterator<Item = (Removal, Removal)> {
    REMOVALS
        .iter()
        .flat_map(|a| REMOVALS.iter().map(move |b| (*a, *b)))
}

async fn remove<S: Store>(s: &S, id: u64, how: Removal, by: Option<u64>) -> StoreResult<()> {
    match how {
        Removal::Demote => s.set_role(id, pb::Role::User, by).await,
        Removal::Disable => s.set_disabled(id, true, by).await,
        Removal::Delete => s.delete_user(id, T0, by).await,
    }
}

/// Makes `names` (suffixed with `round`) the only active admins.
async fn only_admins<S: Store>(s: &S, names: &[&str], round: usize) -> Vec<u64> {
    let mut admins = Vec::new();
    for name in names {
        let id = user(s, &format!("{name}{round}")).await;
        s.set_role(id, pb::Role::Admin, None)
            .await
            .expect("promote");
        admins.push(id);
    }
    for survivor in s.list_users("", None, 1000).await.expect("list") {
        let active = survivor.role == pb::Role::Admin && !survivor.disabled;
        if active && !admins.contains(&survivor.id) {
            s.set_disabled(survivor.id, true, None)
                .await
                .expect("retire");
        }
    }
    assert_eq!(
        s.count_admins().await.expect("count"),
        admins.len() as u64,
        "round {round}"
    );
    admins
}

/// Every pair of changes that take admin rights away (demote, disable, delete), run at the same
/// moment on the only two admins: exactly one passes and one admin is left, whatever the order.
pub async fn users_last_admin_race<S: Store + 'static>(s: S) {
    let s = Arc::new(s);
    for (round, (first, second)) in removal_pairs().enumerate() {
        let admins = only_admins(s.as_ref(), &["a", "b"], round).await;
        let (one, two) = (admins[0], admins[1]);
        let (s1, s2) = (Arc::clone(&s), Arc::clone(&s));
        let a = tokio::spawn(async move { remove(s1.as_ref(), one, first, None).await });
        let b = tokio::spawn(async move { remove(s2.as_ref(), two, second, None).await });
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

/// A change made `by` an admin needs them to be an active admin when it is made: of two of
/// three admins removing each other at the same moment, exactly one passes (spec 9.6), and
/// someone who is not an admin changes nothing, promotions included.
pub async fn users_admins_removing_each_other<S: Store + 'static>(s: S) {
    let s = Arc::new(s);
    for (round, (first, second)) in removal_pairs().enumerate() {
        let admins = only_admins(s.as_ref(), &["p", "q", "r"], round).await;
        let (one, two) = (admins[0], admins[1]);
        let (s1, s2) = (Arc::clone(&s), Arc::clone(&s));
        let a = tokio::spawn(async move { remove(s1.as_ref(), two, first, Some(one)).await });
        let b = tokio::spawn(async move { remove(s2.as_ref(), one, second, Some(two)).await });
        let results = [a.await.expect("task"), b.await.expect("task")];
        let passed = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(passed, 1, "{first:?} vs {second:?}: {results:?}");
        for r in results.into_iter().filter(|r| r.is_err()) {
            assert_conflict(r, ConflictKind::NotAdmin);
        }
        assert_eq!(
            s.count_admins().await.expect("count"),
            2,
            "{first:?} vs {second:?}"
        );
    }
    let admin = user(s.as_ref(), "admin").await;
    s.set_role(admin, pb::Role::Admin, None)
        .await
        .expect("promote");
    let plain = user(s.as_ref(), "plain").await;
    let other = user(s.as_ref(), "other").await;
    assert_conflict(
        s.set_role(other, pb::Role::Admin, Some(plain)).await,
        ConflictKind::NotAdmin,
    );
    assert_conflict(
        s.set_disabled(other, true, Some(plain)).await,
        ConflictKind::NotAdmin,
    );
    assert_conflict(
        s.delete_user(other, T0, Some(plain)).await,
        ConflictKind::NotAdmin,
    );
    let kept = s.user(other).await.expect("user").expect("exists");
    assert!(kept.role == pb::Role::User && !kept.disabled && !kept.deleted);
    s.set_role(other, pb::Role::Admin, Some(admin))
        .await
        .expect("an admin promotes");
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
    s.set_disabled(anton.id, true, None).await.expect("disable");
    let andy = s
        .user_by_username("andy")
        .await
        .expect("get")
        .expect("exists");
    s.delete_user(andy.id, T0, None).await.expect("delete");

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
