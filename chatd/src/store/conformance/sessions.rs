//! Sessions: creation, listing and touches, refresh rotation and reuse, expiry, revocation, and
//! the sweep of dead sessions.

use super::*;

fn new_session(user_id: u64, hash: &str, now_ms: i64) -> NewSession {
    NewSession {
        user_id,
        device_name: "laptop".into(),
        address: "192.0.2.1:4433".into(),
        refresh_hash: hash.to_string(),
        now_ms,
        checked_hash: None,
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

/// A session of a sign-in checked against a password hash is made only while that hash is the
/// user's and the user active; nothing is kept otherwise.
pub async fn sessions_need_the_checked_credentials<S: Store + 'static>(s: S) {
    let u = user(&s, "cora").await;
    let first = "$argon2id$fake$cora".to_string();
    let signed_in = |hash: &str, token: &str| NewSession {
        checked_hash: Some(hash.to_string()),
        ..new_session(u, token, T0)
    };
    s.create_session(signed_in(&first, "c1"))
        .await
        .expect("the hash checked is the user's");
    s.set_password_hash(u, "$argon2id$fake$new", None)
        .await
        .expect("new password");
    assert_conflict(
        s.create_session(signed_in(&first, "c2")).await,
        ConflictKind::CredentialsChanged,
    );
    s.create_session(signed_in("$argon2id$fake$new", "c3"))
        .await
        .expect("the new one");
    s.set_disabled(u, true, None).await.expect("disable");
    assert_conflict(
        s.create_session(signed_in("$argon2id$fake$new", "c4"))
            .await,
        ConflictKind::CredentialsChanged,
    );
    let live = s.list_sessions(u).await.expect("list").len();
    assert!(live <= 2, "{live} live sessions: a refused one was kept");
    for refused in ["c2", "c4"] {
        assert_eq!(
            s.rotate_refresh(refused, &format!("{refused}x"), T0 + 1)
                .await
                .expect("rotate"),
            RefreshOutcome::Invalid,
            "the refused session's token works"
        );
    }
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

/// A token's owner is known for live and used tokens, also of a revoked session, and asking
/// spends nothing.
pub async fn sessions_refresh_owner<S: Store + 'static>(s: S) {
    let (olga, pete) = (user(&s, "olga").await, user(&s, "pete").await);
    s.create_session(new_session(olga, "o1", T0))
        .await
        .expect("session");
    let petes = s
        .create_session(new_session(pete, "p1", T0))
        .await
        .expect("session");
    assert_eq!(s.refresh_owner("o1").await.expect("owner"), Some(olga));
    assert_eq!(s.refresh_owner("o1").await.expect("owner"), Some(olga));
    assert!(matches!(
        s.rotate_refresh("o1", "o2", T0 + 1).await.expect("rotate"),
        RefreshOutcome::Rotated(_)
    ));
    assert_eq!(s.refresh_owner("o1").await.expect("used"), Some(olga));
    assert_eq!(s.refresh_owner("o2").await.expect("live"), Some(olga));
    s.revoke_session(pete, petes.id, T0 + 2)
        .await
        .expect("revoke");
    assert_eq!(s.refresh_owner("p1").await.expect("revoked"), Some(pete));
    assert_eq!(s.refresh_owner("unknown").await.expect("unknown"), None);
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
        (first.gone.len(), first.deleted),
        (2, 2),
        "a batch deletes at most its limit: {first:?}"
    );
    assert_eq!(first.gone, sorted(first.gone.clone()), "ascending");
    let second = left().await;
    assert_eq!(
        sorted([first.gone, second.clone()].concat()),
        sorted(dead.to_vec())
    );
    assert_eq!(
        s.delete_dead_sessions(DeadSessions::at(cutoff), 2)
            .await
            .expect("delete"),
        SweptSessions {
            gone: second,
            deleted: 1
        }
    );
    assert_eq!(left().await, Vec::<u64>::new());
    assert_eq!(
        s.delete_dead_sessions(DeadSessions::at(cutoff), 2)
            .await
            .expect("delete"),
        SweptSessions::default()
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

/// Sweeps at once (every node runs one) each delete a dead session once between them: what
/// they say they deleted adds up to the dead sessions, however their batches overlapped.
pub async fn sessions_swept_once_by_sweeps_at_once<S: Store + 'static>(s: S) {
    use crate::store::DeadSessions;
    let u = user(&s, "swept").await;
    let mut dead = Vec::new();
    for n in 0..30 {
        let id = s
            .create_session(new_session(u, &format!("swept{n}"), T0))
            .await
            .expect("session")
            .id;
        s.revoke_session(u, id, T0 + 1).await.expect("revoke");
        dead.push(id);
    }
    let sweeps = (0..4).map(|_| s.delete_dead_sessions(DeadSessions::at(T0 + 1), 30));
    let swept = futures_util::future::join_all(sweeps).await;
    let mut gone = Vec::new();
    let mut deleted = 0;
    for sweep in swept {
        let sweep = sweep.expect("sweep");
        gone.extend(sweep.gone);
        deleted += sweep.deleted;
    }
    gone.sort_unstable();
    gone.dedup();
    assert_eq!(deleted, 30, "each session counted by one sweep");
    assert_eq!(gone, dead);
    for id in dead {
        assert_eq!(s.session(id).await.expect("read"), None);
    }
}
