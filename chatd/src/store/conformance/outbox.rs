//! Conformance cases for the outbox ([`OutboxStore`]).

use super::*;

fn delivery(key: &str, user_id: u64, due_ms: i64) -> NewDelivery {
    NewDelivery {
        kind: pb::DeliveryKind::Webhook,
        key: key.into(),
        user_id,
        payload: format!("payload of {key}").into_bytes(),
        due_ms,
        now_ms: T0,
    }
}

fn keys(entries: &[DeliveryRecord]) -> Vec<&str> {
    entries.iter().map(|d| d.key.as_str()).collect()
}

/// An entry is queued once per live key, claimed only when due, earliest first, by one holder
/// while its lease runs, taken over after the lease expired, and deleted by its holder only.
pub async fn outbox_queue_claim_and_finish<S: Store + 'static>(s: S) {
    let (a, queued) = s
        .enqueue_delivery(delivery("a", 7, T0 + 10))
        .await
        .expect("queue");
    assert!(queued);
    assert_eq!(
        (
            a.kind,
            a.user_id,
            a.attempts,
            a.dead,
            a.due_ms,
            a.created_at_ms
        ),
        (pb::DeliveryKind::Webhook, 7, 0, false, T0 + 10, T0)
    );
    assert_eq!(a.payload, b"payload of a");
    let mut again = delivery("a", 8, T0);
    again.kind = pb::DeliveryKind::Email;
    let (same, queued) = s.enqueue_delivery(again).await.expect("queue again");
    assert!(!queued, "a live key is queued once");
    assert_eq!(same, a);
    let (b, _) = s
        .enqueue_delivery(delivery("b", 7, T0))
        .await
        .expect("queue");
    s.enqueue_delivery(delivery("later", 7, T0 + 1_000))
        .await
        .expect("queue");
    assert!(a.id != b.id);

    let (h1, h2) = (11, 22);
    assert!(
        s.claim_deliveries(h1, T0 - 1, 100, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let claimed = s
        .claim_deliveries(h1, T0 + 10, 100, 10)
        .await
        .expect("claim");
    assert_eq!(keys(&claimed), vec!["b", "a"], "due ones, earliest first");
    assert_eq!(claimed[1], a);
    assert!(
        s.claim_deliveries(h2, T0 + 50, 100, 10)
            .await
            .expect("claim")
            .is_empty(),
        "held while the lease runs"
    );
    // h1's lease (until T0 + 110) expired: h2 takes `a` and `b` over.
    let taken = s
        .claim_deliveries(h2, T0 + 200, 100, 1)
        .await
        .expect("claim");
    assert_eq!(keys(&taken), vec!["b"], "at most the limit");
    assert!(
        matches!(
            s.finish_delivery(b.id, h1).await,
            Err(StoreError::NotFound("delivery"))
        ),
        "the old holder lost it"
    );
    s.finish_delivery(b.id, h2).await.expect("finish");
    assert!(matches!(
        s.finish_delivery(b.id, h2).await,
        Err(StoreError::NotFound("delivery"))
    ));
    let (b2, queued) = s
        .enqueue_delivery(delivery("b", 7, T0))
        .await
        .expect("queue b again");
    assert!(queued, "a finished entry frees its key");
    assert!(b2.id > b.id, "ids increase");
    assert!(
        matches!(
            s.release_delivery(a.id, h2, DeliveryOutcome::Postpone { at_ms: T0 }, T0)
                .await,
            Err(StoreError::NotFound("delivery"))
        ),
        "releasing needs the claim"
    );
}

/// Failed attempts count and move the due time; postponing does not count; the last failure
/// makes a dead letter, which admins list, bring back and purge.
pub async fn outbox_retries_and_dead_letters<S: Store + 'static>(s: S) {
    let h = 5;
    let (a, _) = s
        .enqueue_delivery(delivery("a", 1, T0))
        .await
        .expect("queue");
    let (b, _) = s
        .enqueue_delivery(delivery("b", 2, T0))
        .await
        .expect("queue");
    let (c, _) = s
        .enqueue_delivery(delivery("c", 3, T0))
        .await
        .expect("queue");
    assert_eq!(
        s.claim_deliveries(h, T0, 10, 10)
            .await
            .expect("claim")
            .len(),
        3
    );
    let retry = DeliveryOutcome::Retry {
        at_ms: T0 + 100,
        error: "timed out".into(),
    };
    s.release_delivery(a.id, h, retry, T0).await.expect("retry");
    s.release_delivery(b.id, h, DeliveryOutcome::Postpone { at_ms: T0 + 100 }, T0)
        .await
        .expect("postpone");
    let dead = DeliveryOutcome::Dead {
        error: "refused".into(),
    };
    s.release_delivery(c.id, h, dead, T0 + 5)
        .await
        .expect("dead");
    assert!(
        s.claim_deliveries(h, T0 + 99, 10, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let claimed = s
        .claim_deliveries(h, T0 + 100, 10, 10)
        .await
        .expect("claim");
    assert_eq!(
        keys(&claimed),
        vec!["a", "b"],
        "the dead letter is not claimed"
    );
    assert_eq!(
        (claimed[0].attempts, claimed[0].last_error.as_str()),
        (1, "timed out")
    );
    assert_eq!(
        (claimed[1].attempts, claimed[1].last_error.as_str()),
        (0, "")
    );
    for d in &claimed {
        s.finish_delivery(d.id, h).await.expect("finish");
    }

    let letters = s.dead_letters(None, 10).await.expect("dead letters");
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(
        (letter.id, letter.dead, letter.attempts, letter.dead_at_ms),
        (c.id, true, 1, T0 + 5)
    );
    assert_eq!(letter.last_error, "refused");
    assert_eq!(letter.key, format!("dead:{}", c.id));
    assert_eq!(letter.payload, c.payload);
    let (c2, queued) = s
        .enqueue_delivery(delivery("c", 3, T0))
        .await
        .expect("queue c");
    assert!(queued, "a dead letter frees its key");

    // Kill c2 too, then page, retry one and purge the rest.
    let claimed = s
        .claim_deliveries(h, T0 + 500, 10, 10)
        .await
        .expect("claim");
    assert_eq!(keys(&claimed), vec!["c"]);
    let dead = DeliveryOutcome::Dead {
        error: "again".into(),
    };
    s.release_delivery(c2.id, h, dead, T0 + 6)
        .await
        .expect("dead");
    let first = s.dead_letters(None, 1).await.expect("page");
    assert_eq!(first.iter().map(|d| d.id).collect::<Vec<_>>(), vec![c.id]);
    let next = s.dead_letters(Some(c.id), 10).await.expect("page");
    assert_eq!(next.iter().map(|d| d.id).collect::<Vec<_>>(), vec![c2.id]);

    let n = s
        .retry_dead_letters(DeliverySet::Ids(vec![c.id, a.id, 999_999]), T0 + 600)
        .await
        .expect("retry");
    assert_eq!(n, 1, "only dead letters are retried");
    let back = s
        .claim_deliveries(h, T0 + 600, 10, 10)
        .await
        .expect("claim");
    assert_eq!(back.len(), 1, "retried: live and due");
    assert_eq!(
        (back[0].attempts, back[0].dead, back[0].dead_at_ms),
        (0, false, 0)
    );
    assert_eq!(back[0].key, format!("retry:{}", c.id));
    assert_eq!(
        s.purge_dead_letters(DeliverySet::All).await.expect("purge"),
        1
    );
    assert!(
        s.dead_letters(None, 10)
            .await
            .expect("dead letters")
            .is_empty()
    );
    assert_eq!(
        s.purge_dead_letters(DeliverySet::Ids(vec![c.id]))
            .await
            .expect("purge"),
        0,
        "a live entry is not purged"
    );
}

/// Claimers racing over the same entries each get different ones, and together all of them.
pub async fn outbox_concurrent_claims<S: Store + 'static>(s: S) {
    let s = std::sync::Arc::new(s);
    let mut ids = Vec::new();
    for n in 0..24 {
        let (d, _) = s
            .enqueue_delivery(delivery(&format!("k{n}"), n, T0))
            .await
            .expect("queue");
        ids.push(d.id);
    }
    let mut tasks = Vec::new();
    for holder in 1..=4_u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            // Until nothing is left to claim (leases outlast the test).
            let mut got = Vec::new();
            loop {
                let claimed = s
                    .claim_deliveries(holder, T0, 60_000, 3)
                    .await
                    .expect("claim");
                if claimed.is_empty() {
                    return got;
                }
                got.extend(claimed.into_iter().map(|d| (d.id, holder)));
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("claimer"));
    }
    let mut claimed: Vec<u64> = all.iter().map(|(id, _)| *id).collect();
    claimed.sort_unstable();
    let before = claimed.len();
    claimed.dedup();
    assert_eq!(before, claimed.len(), "an entry was claimed twice: {all:?}");
    assert_eq!(claimed, ids, "every entry was claimed");
    for (id, holder) in all {
        s.finish_delivery(id, holder)
            .await
            .expect("finish by its holder");
    }
}

/// The digest mark starts at 0 and only moves up.
pub async fn outbox_digest_marks<S: Store + 'static>(s: S) {
    assert_eq!(s.digest_mark(4).await.expect("mark"), 0);
    s.set_digest_mark(4, 10).await.expect("set");
    s.set_digest_mark(4, 3).await.expect("set lower");
    assert_eq!(s.digest_mark(4).await.expect("mark"), 10);
    assert_eq!(s.digest_mark(5).await.expect("mark"), 0, "per user");
}
