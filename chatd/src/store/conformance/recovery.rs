//! Conformance cases for email verification and password reset ([`RecoveryStore`]).

use super::*;

fn code(user_id: u64, purpose: CodePurpose, hash: &str, now_ms: i64) -> NewAccountCode {
    NewAccountCode {
        user_id,
        purpose,
        hash: hash.into(),
        email: "a@example.com".into(),
        expires_at_ms: now_ms + 60_000,
        now_ms,
        resend_gap_ms: 0,
    }
}

/// Addresses: a new account's is unverified; it is verified only while it is still the
/// account's, a change makes it unverified again, and lookups by address find the active
/// accounts that hold it (also in another case), whatever their state of verification.
pub async fn recovery_addresses<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = user(&s, "c").await;
    assert!(!s.user(a).await.expect("read").expect("a").email_verified);
    assert!(
        !s.mark_email_verified(a, "old@example.com")
            .await
            .expect("mark")
    );
    assert!(
        s.mark_email_verified(a, "a@example.com")
            .await
            .expect("mark")
    );
    assert!(s.user(a).await.expect("read").expect("a").email_verified);
    s.set_email(a, "Shared@Example.com").await.expect("set");
    let again = s.user(a).await.expect("read").expect("a");
    assert_eq!(again.email, "Shared@Example.com");
    assert!(!again.email_verified, "a new address starts unverified");
    s.set_email(b, "shared@example.com").await.expect("set");
    s.set_email(c, "shared@example.com").await.expect("set");
    s.set_disabled(c, true, None).await.expect("disable");
    let ids = |users: Vec<UserRecord>| users.into_iter().map(|u| u.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s
            .users_by_email("shared@example.com")
            .await
            .expect("lookup")),
        vec![b]
    );
    assert_eq!(
        ids(s
            .users_by_email("Shared@Example.com")
            .await
            .expect("lookup")),
        vec![a, b],
        "as written, and folded to lowercase"
    );
    assert!(s.users_by_email("").await.expect("lookup").is_empty());
    assert!(
        s.users_by_email("nobody@example.com")
            .await
            .expect("lookup")
            .is_empty()
    );
    s.delete_user(b, T0, None).await.expect("delete");
    assert!(matches!(
        s.set_email(b, "x@example.com").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        s.users_by_email("shared@example.com")
            .await
            .expect("lookup")
            .is_empty()
    );
}

/// Codes: one live code per user and purpose, replaced by a new one unless the live one is
/// younger than the resend gap; redeemed once with the right hash before it expires; wrong
/// attempts counted up to the limit, which removes it; purposes and users apart.
pub async fn recovery_codes_single_use_expiry_and_attempts<S: Store + 'static>(s: S) {
    let (reset, verify) = (CodePurpose::ResetPassword, CodePurpose::VerifyEmail);
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let redeem = |user_id, purpose, hash: &'static str, now| {
        let s = &s;
        async move {
            s.redeem_account_code(user_id, purpose, hash, now, 3)
                .await
                .expect("redeem")
        }
    };
    assert_eq!(redeem(a, reset, "h1", T0).await, Redemption::Missing);
    assert!(
        s.put_account_code(code(a, reset, "h1", T0))
            .await
            .expect("put")
    );
    let gap = NewAccountCode {
        resend_gap_ms: 30_000,
        ..code(a, reset, "h2", T0 + 10_000)
    };
    assert!(
        !s.put_account_code(gap.clone()).await.expect("put"),
        "within the gap"
    );
    assert!(
        s.put_account_code(NewAccountCode {
            now_ms: T0 + 40_000,
            ..gap
        })
        .await
        .expect("put"),
        "after the gap"
    );
    assert_eq!(
        redeem(a, reset, "h1", T0 + 41_000).await,
        Redemption::Wrong,
        "replaced"
    );
    assert_eq!(
        redeem(a, verify, "h2", T0 + 41_000).await,
        Redemption::Missing
    );
    assert_eq!(
        redeem(b, reset, "h2", T0 + 41_000).await,
        Redemption::Missing
    );
    assert_eq!(
        redeem(a, reset, "h2", T0 + 42_000).await,
        Redemption::Redeemed {
            email: "a@example.com".into()
        }
    );
    assert_eq!(
        redeem(a, reset, "h2", T0 + 42_000).await,
        Redemption::Missing,
        "spent"
    );

    // Expiry: the code's last good moment is just before `expires_at_ms`.
    assert!(
        s.put_account_code(code(a, verify, "v1", T0))
            .await
            .expect("put")
    );
    assert_eq!(
        redeem(a, verify, "v1", T0 + 60_000).await,
        Redemption::Missing
    );
    assert_eq!(
        redeem(a, verify, "v1", T0 + 1).await,
        Redemption::Missing,
        "gone"
    );

    // Attempts: the third wrong one (the limit) removes the code.
    assert!(
        s.put_account_code(code(b, verify, "v2", T0))
            .await
            .expect("put")
    );
    assert_eq!(redeem(b, verify, "x", T0).await, Redemption::Wrong);
    assert_eq!(redeem(b, verify, "y", T0).await, Redemption::Wrong);
    assert_eq!(redeem(b, verify, "z", T0).await, Redemption::Wrong);
    assert_eq!(redeem(b, verify, "v2", T0).await, Redemption::Missing);
    // A new code starts with no wrong attempts.
    assert!(
        s.put_account_code(code(b, verify, "v3", T0))
            .await
            .expect("put")
    );
    assert_eq!(redeem(b, verify, "x", T0).await, Redemption::Wrong);
    assert_eq!(redeem(b, verify, "x", T0).await, Redemption::Wrong);
    assert!(matches!(
        redeem(b, verify, "v3", T0).await,
        Redemption::Redeemed { .. }
    ));
}

/// Two (and more) concurrent redemptions of one code: exactly one wins.
pub async fn recovery_concurrent_redemptions<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let s = std::sync::Arc::new(s);
    for round in 0..3 {
        let now = T0 + round;
        assert!(
            s.put_account_code(code(a, CodePurpose::ResetPassword, "h", now))
                .await
                .expect("put")
        );
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let st = s.clone();
                tokio::spawn(async move {
                    st.redeem_account_code(a, CodePurpose::ResetPassword, "h", now, 5)
                        .await
                })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            match t.await.expect("task").expect("redeem") {
                Redemption::Redeemed { .. } => won += 1,
                Redemption::Missing => {}
                Redemption::Wrong => panic!("the right code counted as wrong"),
            }
        }
        assert_eq!(won, 1, "round {round}");
    }
}

/// Wrong codes sent at once count one attempt each: no more than `max_attempts` are judged, and
/// the code is gone after them, also for the right one.
pub async fn recovery_concurrent_wrong_codes<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let s = std::sync::Arc::new(s);
    assert!(
        s.put_account_code(code(a, CodePurpose::VerifyEmail, "h", T0))
            .await
            .expect("put")
    );
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let st = s.clone();
            tokio::spawn(async move {
                let guess = format!("wrong {n}");
                st.redeem_account_code(a, CodePurpose::VerifyEmail, &guess, T0, 5)
                    .await
            })
        })
        .collect();
    let mut judged = 0;
    for t in tasks {
        match t.await.expect("task").expect("redeem") {
            Redemption::Wrong => judged += 1,
            Redemption::Missing => {}
            Redemption::Redeemed { .. } => panic!("a wrong code redeemed"),
        }
    }
    assert!(judged <= 5, "{judged} wrong codes judged, at most 5 may be");
    assert_eq!(
        s.redeem_account_code(a, CodePurpose::VerifyEmail, "h", T0, 5)
            .await
            .expect("redeem"),
        Redemption::Missing
    );
}
