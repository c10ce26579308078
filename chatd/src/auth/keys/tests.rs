//! Rings shared by nodes through one store, rotations, the schedule and publication.

use super::*;
use crate::store::sqlite::SqliteStore;

/// A sink that keeps what was published (coturn's database has tests of its own).
#[derive(Default)]
struct Published(Mutex<Vec<Vec<u8>>>);

impl Published {
    fn secrets(&self) -> Vec<Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl SecretSink for Published {
    fn publish(&self, secrets: &[Vec<u8>]) -> Result<(), String> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = secrets.to_vec();
        Ok(())
    }

    fn place(&self) -> String {
        "the test's sink".into()
    }
}

fn settings() -> KeySettings {
    KeySettings {
        rotation_interval: None,
        webhook_rotation_interval: None,
        turn_rotation_interval: None,
        overlap: Duration::from_secs(60),
    }
}

async fn keys(store: Arc<dyn Store>, root: &TokenKey) -> Arc<Keys> {
    let keys = Keys::new(
        store,
        root,
        None,
        Some(b"turn-one".to_vec()),
        None,
        settings(),
    )
    .expect("keys");
    keys.start().await.expect("start");
    keys
}

#[tokio::test]
async fn two_nodes_share_a_ring_and_see_each_other_s_rotations() {
    let dir = tempfile::tempdir().expect("dir");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("chat.db")).expect("open"));
    let root = TokenKey::generate();
    let a = keys(store.clone(), &root).await;
    let b = keys(store.clone(), &root).await;
    let now = crate::clock::now_ms();
    // Both wrote or adopted the same first ring: kid 1 signs, kid 0 verifies.
    let current = a.current(pb::KeyKind::Tokens).expect("current");
    assert_eq!(current.kid, 1);
    assert_eq!(b.current(pb::KeyKind::Tokens), Some(current.clone()));
    assert_eq!(
        a.secret(pb::KeyKind::Tokens, 0, now).as_deref(),
        Some(root.as_bytes())
    );
    // Refresh: kid 0 is the plain hash.
    assert_eq!(a.verifying(pb::KeyKind::Refresh, now).len(), 2);
    // No webhook configured: no keys and no rotation.
    assert!(a.current(pb::KeyKind::Webhook).is_none());
    assert!(matches!(
        a.rotate(pb::KeyKind::Webhook, Some(vec![1; 16]), now).await,
        Err(KeyError::NotConfigured("webhook"))
    ));
    // TURN: the configured secret until the first rotation.
    assert_eq!(a.current(pb::KeyKind::Turn).map(|k| k.kid), Some(0));
    assert_eq!(
        a.rotate(pb::KeyKind::Turn, Some(b"turn-two".to_vec()), now)
            .await
            .expect("rotate"),
        1
    );
    assert_eq!(
        a.current(pb::KeyKind::Turn).map(|k| k.secret),
        Some(b"turn-two".to_vec())
    );
    // Node b learns it when it reads again; a miss makes it read at once.
    assert_eq!(b.current(pb::KeyKind::Turn).map(|k| k.kid), Some(0));
    assert_eq!(
        a.rotate(pb::KeyKind::Tokens, None, now)
            .await
            .expect("rotate"),
        2
    );
    assert_eq!(b.secret(pb::KeyKind::Tokens, 2, now), None);
    assert!(b.reload_on_miss().await);
    assert_eq!(
        b.secret(pb::KeyKind::Tokens, 2, now),
        a.secret(pb::KeyKind::Tokens, 2, now)
    );
    assert!(!b.reload_on_miss().await, "not again at once");
    // A ring full of keys that verify takes no more.
    for _ in 3..=MAX_RING_KEYS {
        a.rotate(pb::KeyKind::Refresh, None, now)
            .await
            .expect("rotate");
    }
    assert!(matches!(
        a.rotate(pb::KeyKind::Refresh, None, now).await,
        Err(KeyError::Full("refresh"))
    ));
    assert_eq!(
        b.verifying(pb::KeyKind::Tokens, now)
            .iter()
            .map(|k| k.kid)
            .collect::<Vec<_>>(),
        [2, 1, 0]
    );
    // Ending the overlap leaves the current key only.
    assert!(b.retire(pb::KeyKind::Tokens).await.expect("retire"));
    assert!(!b.retire(pb::KeyKind::Tokens).await.expect("retire"));
    a.reload().await.expect("reload");
    assert_eq!(
        a.verifying(pb::KeyKind::Tokens, now)
            .iter()
            .map(|k| k.kid)
            .collect::<Vec<_>>(),
        [2]
    );
    // The listing shows no secret.
    let list = a.list(now);
    assert_eq!(list.rings.len(), 4);
    assert!(!format!("{list:?}").contains("turn-two"));
    // Another root opens none of the sealed keys: it starts with a new current key of its
    // own, and a's keys are not among those it verifies with.
    let other =
        Keys::new(store, &TokenKey::generate(), None, None, None, settings()).expect("keys");
    other
        .start()
        .await
        .expect("start over keys sealed elsewhere");
    let mine = other
        .current(pb::KeyKind::Tokens)
        .expect("a key to sign with");
    assert_eq!(mine.kid, 3);
    assert_eq!(other.secret(pb::KeyKind::Tokens, 2, now), None);
    // a keeps signing with the newest key it opens (2, retiring now), never with 3.
    a.reload().await.expect("reload");
    assert_eq!(a.current(pb::KeyKind::Tokens).map(|k| k.kid), Some(2));
}

#[tokio::test]
async fn the_schedule_rotates_once_for_all_nodes() {
    let dir = tempfile::tempdir().expect("dir");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("chat.db")).expect("open"));
    let root = TokenKey::generate();
    let scheduled = KeySettings {
        rotation_interval: Some(Duration::from_secs(1)),
        ..settings()
    };
    let nodes: Vec<Arc<Keys>> = (0..3)
        .map(|_| Keys::new(store.clone(), &root, None, None, None, scheduled).expect("keys"))
        .collect();
    for node in &nodes {
        node.start().await.expect("start");
    }
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // All three find kid 1 due at once; the ring moves by one rotation.
    let runs: Vec<_> = nodes
        .iter()
        .map(|n| {
            let n = Arc::clone(n);
            tokio::spawn(async move { n.scheduled().await })
        })
        .collect();
    for r in runs {
        r.await.expect("task").expect("scheduled");
    }
    let ring = store
        .key_ring(pb::KeyKind::Tokens)
        .await
        .expect("read")
        .expect("ring");
    assert_eq!(
        ring.keys.iter().map(|k| k.kid).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(ring.version, 2);
}

/// The schedule replaces configured webhook and TURN secrets with text secrets of its own, one
/// interval after it first saw them; the TURN servers' database holds every TURN secret that
/// verifies, and a new TURN key signs only once it has been published for the lead.
#[tokio::test]
async fn the_schedule_makes_shared_secrets_and_publishes_the_turn_ones() {
    let dir = tempfile::tempdir().expect("dir");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("chat.db")).expect("open"));
    let root = TokenKey::generate();
    let db = Arc::new(Published::default());
    let scheduled = KeySettings {
        webhook_rotation_interval: Some(Duration::from_secs(1)),
        turn_rotation_interval: Some(Duration::from_secs(1)),
        ..settings()
    };
    let keys = Keys::new(
        store.clone(),
        &root,
        Some(b"webhook-zero".to_vec()),
        Some(b"turn-zero".to_vec()),
        Some(db.clone() as Arc<dyn SecretSink>),
        scheduled,
    )
    .expect("keys");
    keys.start().await.expect("start");
    // Published at start; not due yet: the configured secrets' age counts from now.
    assert_eq!(db.secrets(), [b"turn-zero".to_vec()]);
    keys.scheduled().await.expect("scheduled");
    let ring = store.key_ring(pb::KeyKind::Turn).await.expect("read");
    assert_eq!(ring.map(|r| r.keys.len()), Some(1), "adopted, not rotated");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    keys.scheduled().await.expect("scheduled");
    keys.publish().await.expect("publish");
    let now = crate::clock::now_ms();
    for kind in [pb::KeyKind::Webhook, pb::KeyKind::Turn] {
        let kids: Vec<u32> = keys.verifying(kind, now).iter().map(|k| k.kid).collect();
        assert_eq!(kids, [1, 0], "{kind:?} rotated once");
        let made = keys.secret(kind, 1, now).expect("the new secret");
        assert_eq!(made.len(), 43, "32 bytes as base64url");
        assert!(
            made.iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        );
        // Given to admins with the states and times the listing shows.
        let given = keys.secrets(kind, now).expect("secrets");
        let shown: Vec<(u32, Vec<u8>)> = given
            .keys
            .iter()
            .map(|k| (k.key.as_ref().map_or(99, |i| i.kid), k.secret.clone()))
            .collect();
        let zero = if kind == pb::KeyKind::Turn {
            "turn-zero"
        } else {
            "webhook-zero"
        };
        assert_eq!(shown, [(1, made.clone()), (0, zero.as_bytes().to_vec())]);
    }
    assert!(matches!(
        keys.secrets(pb::KeyKind::Unspecified, now),
        Err(KeyError::NotConfigured(_))
    ));
    let new_turn = keys.secret(pb::KeyKind::Turn, 1, now).expect("secret");
    let mut both = vec![b"turn-zero".to_vec(), new_turn.clone()];
    both.sort();
    assert_eq!(db.secrets(), both, "coturn knows both");
    // The webhook's new secret signs at once (calls carry every signature); the TURN one only
    // after the lead, until then the one TURN servers surely know.
    assert_eq!(keys.current(pb::KeyKind::Webhook).map(|k| k.kid), Some(1));
    assert_eq!(keys.current(pb::KeyKind::Turn).map(|k| k.kid), Some(0));
    // Ending the overlap takes the old secret out of coturn's database at once.
    assert!(keys.retire(pb::KeyKind::Turn).await.expect("retire"));
    assert_eq!(db.secrets(), [new_turn]);
    assert_eq!(keys.current(pb::KeyKind::Turn).map(|k| k.kid), Some(1));
}

#[tokio::test]
async fn a_turn_key_signs_once_the_lead_has_passed() {
    let dir = tempfile::tempdir().expect("dir");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("chat.db")).expect("open"));
    let db: Arc<dyn SecretSink> = Arc::new(Published::default());
    let keys = Keys::new(
        store.clone(),
        &TokenKey::generate(),
        None,
        Some(b"turn-zero".to_vec()),
        Some(db),
        settings(),
    )
    .expect("keys");
    keys.start().await.expect("start");
    let lead = i64::try_from(TURN_PUBLISH_LEAD.as_millis()).expect("ms");
    let made_at = crate::clock::now_ms() - lead - 1;
    keys.rotate(pb::KeyKind::Turn, Some(b"turn-one".to_vec()), made_at)
        .await
        .expect("rotate");
    assert_eq!(keys.current(pb::KeyKind::Turn).map(|k| k.kid), Some(1));
    // Without a database to publish to, a TURN key signs from its rotation.
    let plain = Keys::new(
        store,
        &TokenKey::generate(),
        None,
        Some(b"turn-zero".to_vec()),
        None,
        settings(),
    )
    .expect("keys");
    plain.start().await.expect("start");
    plain
        .rotate(
            pb::KeyKind::Turn,
            Some(b"turn-two".to_vec()),
            crate::clock::now_ms(),
        )
        .await
        .expect("rotate");
    assert_eq!(
        plain.current(pb::KeyKind::Turn).map(|k| k.secret),
        Some(b"turn-two".to_vec())
    );
}
