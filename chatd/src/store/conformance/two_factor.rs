//! Conformance cases for two-factor login ([`TwoFactorStore`]).

use super::*;

fn codes(prefix: &str) -> Vec<String> {
    (0..3).map(|n| format!("{prefix}{n}")).collect()
}

/// A secret is staged (replacing a pending one), enabled only with the secret it was staged
/// with, and then no longer replaced by staging; the record shows each state.
pub async fn two_factor_stage_and_enable<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    assert_eq!(s.two_factor(a).await.expect("read"), None);
    assert!(
        !s.enable_two_factor(a, vec![1], 5, codes("r"))
            .await
            .expect("enable")
    );
    assert!(s.stage_two_factor(a, vec![1, 1]).await.expect("stage"));
    assert!(
        s.stage_two_factor(a, vec![2, 2])
            .await
            .expect("stage again")
    );
    let pending = s.two_factor(a).await.expect("read").expect("pending");
    assert_eq!(
        pending,
        TwoFactorRecord {
            sealed_secret: vec![2, 2],
            enabled: false,
            last_step: 0,
            recovery_codes_left: 0,
        }
    );
    // A code checked against the replaced secret enables nothing.
    assert!(
        !s.enable_two_factor(a, vec![1, 1], 5, codes("r"))
            .await
            .expect("enable")
    );
    assert!(
        !s.spend_two_factor_step(a, 9)
            .await
            .expect("pending: no step")
    );
    assert!(
        s.enable_two_factor(a, vec![2, 2], 5, codes("r"))
            .await
            .expect("enable")
    );
    assert!(
        !s.enable_two_factor(a, vec![2, 2], 6, codes("q"))
            .await
            .expect("again")
    );
    assert!(
        !s.stage_two_factor(a, vec![3])
            .await
            .expect("stage when enabled")
    );
    let enabled = s.two_factor(a).await.expect("read").expect("enabled");
    assert_eq!(
        enabled,
        TwoFactorRecord {
            sealed_secret: vec![2, 2],
            enabled: true,
            last_step: 5,
            recovery_codes_left: 3,
        }
    );
    let b = user(&s, "b").await;
    assert_eq!(s.two_factor(b).await.expect("read"), None, "per user");
}

/// Steps are spent only forwards and codes only once; replaced codes stop working; disabling
/// forgets everything and says whether it was enabled.
pub async fn two_factor_spend_replace_disable<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    assert!(!s.spend_recovery_code(a, "r0").await.expect("nothing yet"));
    assert!(s.stage_two_factor(a, vec![7]).await.expect("stage"));
    assert!(!s.spend_recovery_code(a, "r0").await.expect("pending"));
    assert!(
        !s.replace_recovery_codes(a, codes("q"))
            .await
            .expect("pending")
    );
    assert!(
        s.enable_two_factor(a, vec![7], 10, codes("r"))
            .await
            .expect("enable")
    );
    assert!(!s.spend_two_factor_step(a, 10).await.expect("the same step"));
    assert!(
        !s.spend_two_factor_step(a, 9)
            .await
            .expect("an earlier step")
    );
    assert!(s.spend_two_factor_step(a, 12).await.expect("a later step"));
    assert!(
        !s.spend_two_factor_step(a, 11)
            .await
            .expect("behind the last")
    );
    assert_eq!(s.two_factor(a).await.unwrap().unwrap().last_step, 12);
    assert!(s.has_recovery_code(a, "r1").await.expect("has"));
    assert!(!s.has_recovery_code(a, "x").await.expect("never issued"));
    assert!(s.spend_recovery_code(a, "r1").await.expect("spend"));
    assert!(!s.has_recovery_code(a, "r1").await.expect("spent"));
    assert!(!s.spend_recovery_code(a, "r1").await.expect("spent"));
    assert!(!s.spend_recovery_code(a, "x").await.expect("never issued"));
    assert_eq!(
        s.two_factor(a).await.unwrap().unwrap().recovery_codes_left,
        2
    );
    assert!(
        s.replace_recovery_codes(a, codes("q"))
            .await
            .expect("replace")
    );
    assert!(!s.spend_recovery_code(a, "r0").await.expect("replaced"));
    assert!(s.spend_recovery_code(a, "q0").await.expect("new code"));
    assert!(s.disable_two_factor(a).await.expect("disable"));
    assert_eq!(s.two_factor(a).await.expect("read"), None);
    assert!(!s.disable_two_factor(a).await.expect("again"));
    assert!(!s.spend_recovery_code(a, "q1").await.expect("forgotten"));
    assert!(!s.has_recovery_code(a, "q1").await.expect("forgotten"));
    // A pending secret was not enabled: it stays, to be confirmed.
    assert!(s.stage_two_factor(a, vec![8]).await.expect("stage"));
    assert!(!s.disable_two_factor(a).await.expect("pending"));
    let pending = s.two_factor(a).await.expect("read").expect("kept");
    assert!(!pending.enabled);
    assert_eq!(pending.sealed_secret, vec![8]);
}

/// Of many requests spending the same step or the same recovery code at once, exactly one
/// succeeds.
pub async fn two_factor_concurrent_spends<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    assert!(s.stage_two_factor(a, vec![1]).await.expect("stage"));
    assert!(
        s.enable_two_factor(a, vec![1], 1, codes("r"))
            .await
            .expect("enable")
    );
    let s = std::sync::Arc::new(s);
    let mut steps = Vec::new();
    let mut recoveries = Vec::new();
    for _ in 0..6 {
        let st = s.clone();
        steps.push(tokio::spawn(
            async move { st.spend_two_factor_step(a, 2).await },
        ));
        let st = s.clone();
        recoveries.push(tokio::spawn(async move {
            st.spend_recovery_code(a, "r2").await
        }));
    }
    let mut won = (0, 0);
    for t in steps {
        won.0 += usize::from(t.await.expect("task").expect("spend step"));
    }
    for t in recoveries {
        won.1 += usize::from(t.await.expect("task").expect("spend code"));
    }
    assert_eq!(won, (1, 1));
}
