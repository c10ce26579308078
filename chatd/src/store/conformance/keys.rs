//! Conformance cases for the server's key rings ([`KeyStore`]).

use super::*;

fn key(kid: u32, created_at_ms: i64, retire_at_ms: i64) -> StoredKey {
    StoredKey {
        kid,
        sealed: if kid == 0 {
            Vec::new()
        } else {
            vec![kid as u8; 45]
        },
        created_at_ms,
        retire_at_ms,
    }
}

fn ring(kind: pb::KeyKind, version: u64, keys: Vec<StoredKey>) -> KeyRingRecord {
    KeyRingRecord {
        kind,
        version,
        keys,
    }
}

/// A ring comes back as written; a write is taken only at the version after the stored one
/// (1 where there is none), replaces every key, and leaves the other kinds alone.
pub async fn key_rings_versions_and_kinds<S: Store + 'static>(s: S) {
    use pb::KeyKind::{Refresh, Tokens, Turn};
    assert_eq!(s.key_ring(Tokens).await.expect("read"), None);
    assert!(
        !s.put_key_ring(ring(Tokens, 2, vec![key(1, T0, 0)]))
            .await
            .expect("put"),
        "version 2 needs a version 1 first"
    );
    let first = ring(Tokens, 1, vec![key(0, T0, T0 + 10), key(1, T0, 0)]);
    assert!(s.put_key_ring(first.clone()).await.expect("put"));
    assert_eq!(s.key_ring(Tokens).await.expect("read"), Some(first.clone()));
    assert!(
        !s.put_key_ring(ring(Tokens, 1, vec![key(7, T0, 0)]))
            .await
            .expect("put"),
        "a second first ring loses"
    );
    assert!(
        !s.put_key_ring(ring(Tokens, 3, vec![key(7, T0, 0)]))
            .await
            .expect("put"),
        "a version that skips one loses"
    );
    assert_eq!(s.key_ring(Tokens).await.expect("read"), Some(first));
    let second = ring(Tokens, 2, vec![key(1, T0, T0 + 20), key(2, T0 + 5, 0)]);
    assert!(s.put_key_ring(second.clone()).await.expect("put"));
    assert_eq!(
        s.key_ring(Tokens).await.expect("read"),
        Some(second.clone()),
        "kid 0 is gone: the keys are replaced, not merged"
    );
    assert_eq!(s.key_ring(Refresh).await.expect("read"), None);
    let turn = ring(Turn, 1, vec![key(3, T0, 0)]);
    assert!(s.put_key_ring(turn.clone()).await.expect("put"));
    assert_eq!(s.key_ring(Turn).await.expect("read"), Some(turn));
    assert_eq!(s.key_ring(Tokens).await.expect("read"), Some(second));
}

/// Of writers racing for the same version, exactly one wins and its keys are what is stored.
pub async fn key_rings_concurrent_writes<S: Store + 'static>(s: S) {
    use pb::KeyKind::Webhook;
    let s = std::sync::Arc::new(s);
    for version in 1..=3u64 {
        let tasks: Vec<_> = (0..6u32)
            .map(|writer| {
                let st = s.clone();
                let keys = vec![key(100 * u32::try_from(version).unwrap() + writer, T0, 0)];
                tokio::spawn(async move {
                    let won = st
                        .put_key_ring(ring(Webhook, version, keys.clone()))
                        .await
                        .expect("put");
                    (won, keys)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            let (won, keys) = t.await.expect("task");
            if won {
                winners.push(keys);
            }
        }
        assert_eq!(winners.len(), 1, "version {version}: {winners:?}");
        let stored = s.key_ring(Webhook).await.expect("read").expect("ring");
        assert_eq!((stored.version, &stored.keys), (version, &winners[0]));
    }
}
