//! Rotations of the master key on real stores: the embedded database rekeyed while it serves,
//! file keys re-wrapped, the key files rewritten, a second node taking the key from the ring.

use std::path::Path;

use bytes::Bytes;
use tokio::io::AsyncReadExt as _;

use super::*;
use crate::files::blob::BlobStore;
use crate::files::blob::fs::FsBlobs;
use crate::files::blob::sealed::SealedBlobs;
use crate::ops::datadir::load_database_key;
use crate::ops::master_key_files::KeyFilePair;
use crate::store::sqlite::cipher::{DatabaseKey, KeyError, OpenError};
use crate::store::sqlite::{SqliteOptions, SqliteStore};
use crate::store::{FileStore as _, NewUser, UploadRecord, UploadState, UserStore};

const SECRET: &[u8] = b"the plan nobody may read at rest";

fn open_db(path: &Path, key: [u8; 32]) -> Result<SqliteStore, OpenError> {
    SqliteStore::open_with(
        path,
        SqliteOptions {
            key: Some(DatabaseKey::from_bytes(key)),
            ..SqliteOptions::default()
        },
    )
}

fn files_in(dir: &Path, node: &str) -> KeyFilePair {
    KeyFilePair {
        current: dir.join(format!("{node}.key")),
        previous: dir.join(format!("{node}.key.previous")),
    }
}

fn file_key(path: &Path) -> [u8; 32] {
    *load_database_key(path).expect("key file").bytes()
}

async fn read_all(blobs: &dyn BlobStore, key: &str) -> Vec<u8> {
    let mut reader = blobs.open(key, 0).await.expect("open").expect("content");
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.expect("read");
    out
}

fn user(name: &str) -> NewUser {
    NewUser {
        username: name.into(),
        email: format!("{name}@example.com"),
        password_hash: "$argon2id$test".into(),
        role: pb::Role::User,
        now_ms: crate::clock::now_ms(),
    }
}

fn settings(interval: Option<Duration>) -> MasterKeySettings {
    MasterKeySettings {
        interval,
        overlap: Duration::from_secs(3600),
    }
}

/// What one node is made of.
struct Node {
    keys: Arc<MasterKeys>,
    files: KeyFilePair,
    blobs: Arc<SealedBlobs>,
    ring: Arc<MasterKeyRing>,
}

async fn node(
    dir: &Path,
    name: &str,
    store: &Arc<SqliteStore>,
    database: bool,
    interval: Option<Duration>,
) -> Node {
    let files = files_in(dir, name);
    let keys = Arc::new(MasterKeys::new(&file_key(&files.current), &[]));
    let raw = Arc::new(FsBlobs::open(dir.join("files")).expect("fs"));
    let blobs = Arc::new(SealedBlobs::open(raw, keys.clone()).await.expect("sealed"));
    let mut holders: Vec<Arc<dyn Rewrap>> = vec![blobs.clone()];
    if database {
        holders.push(store.clone());
    }
    let ring = MasterKeyRing::new(
        keys.clone(),
        store.clone(),
        holders,
        Some(Arc::new(files.clone())),
        settings(interval),
    );
    Node {
        keys,
        files,
        blobs,
        ring,
    }
}

fn write_key(path: &Path, key: [u8; 32]) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("key file");
    file.write_all(hex::encode(key).as_bytes()).expect("write");
}

#[tokio::test]
async fn a_rotation_by_command_rekeys_the_database_while_it_serves_and_forgets_the_old_key() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("chatd.sqlite3");
    let old = [1u8; 32];
    write_key(&dir.path().join("a.key"), old);
    let store = Arc::new(open_db(&db, old).expect("open"));
    let a = node(dir.path(), "a", &store, true, None).await;
    a.blobs
        .put("before", Bytes::from_static(SECRET))
        .await
        .expect("put");
    a.ring.step().await.expect("first round");
    // An upload begun under the old key: its bytes are sealed under a key derived from it.
    let owner = store.create_user(user("owner")).await.expect("user").id;
    store
        .open_upload(UploadRecord {
            id: "up1".into(),
            user_id: owner,
            size: SECRET.len() as u64,
            sha256: vec![0; 32],
            name: "plan.txt".into(),
            kind: pb::MessageKind::File,
            created_at_ms: crate::clock::now_ms() - 1,
            state: UploadState::Open,
        })
        .await
        .expect("upload row");
    let mut writer = a.blobs.append("up1", 0).await.expect("append");
    writer.write(SECRET).await.expect("write");
    writer.close().await.expect("close");
    let shown = a.ring.view(crate::clock::now_ms()).await.expect("view");
    assert_eq!(
        shown.keys.len(),
        1,
        "the first ring holds the key from before"
    );

    let now = crate::clock::now_ms();
    let kid = a.ring.rotate(now).await.expect("rotate");
    assert_eq!(kid, 1);
    let new = file_key(&a.files.current);
    assert_ne!(new, old, "the key file holds the new key");
    assert_eq!(
        file_key(&a.files.previous),
        old,
        "and the previous file the old one"
    );
    assert_eq!(a.keys.current_id(), KeyId::of(&new));
    assert!(a.keys.rotating());
    assert!(matches!(
        a.ring.rotate(now).await,
        Err(MasterKeyError::Unfinished(_))
    ));

    // The background round: the database and the file keys go under the new key.
    a.ring.step().await.expect("re-wrap round");
    let user = store
        .create_user(user("after"))
        .await
        .expect("a write after the rekey");
    assert_eq!(
        store
            .user(user.id)
            .await
            .expect("a read")
            .map(|u| u.username),
        Some("after".into()),
        "the read connections were opened again with the new key"
    );
    assert!(matches!(
        open_db(&db, old),
        Err(OpenError::Key(KeyError::Wrong(_)))
    ));
    drop(open_db(&db, new).expect("the new key opens it"));

    // The overlap cannot end before every node took the key, then it does.
    assert!(matches!(
        a.ring.retire(crate::clock::now_ms()).await,
        Err(MasterKeyError::TooSoon(_))
    ));
    let later = crate::clock::now_ms() + ms(ADOPT_LEAD) + 1;
    assert!(a.ring.retire(later).await.expect("retire"));
    a.ring.step().await.expect("a round with the upload open");
    assert!(
        a.keys.rotating(),
        "kept while an upload begun under it is open"
    );
    a.blobs
        .commit("up1", "uploaded")
        .await
        .expect("the upload finishes");
    store.delete_upload("up1").await.expect("collected");
    a.ring.step().await.expect("last round");
    assert!(!a.keys.rotating(), "the old key is forgotten");
    assert!(!a.files.previous.exists());
    let retired = dir
        .path()
        .join(format!("a.key.previous.retired-{}", KeyId::of(&old)));
    assert_eq!(
        file_key(&retired),
        old,
        "kept aside for the backups made under it"
    );
    // What was stored before and after reads with the new key alone.
    a.blobs
        .put("after", Bytes::from_static(SECRET))
        .await
        .expect("put");
    let alone = Arc::new(MasterKeys::new(&new, &[]));
    let raw = Arc::new(FsBlobs::open(dir.path().join("files")).expect("fs"));
    let fresh = SealedBlobs::open(raw, alone).await.expect("new key alone");
    assert_eq!(read_all(&fresh, "before").await, SECRET);
    assert_eq!(read_all(&fresh, "after").await, SECRET);
    assert_eq!(read_all(&fresh, "uploaded").await, SECRET);
    // The ring holds no handover any more: the store alone never gives the key.
    let ring = stored_ring(&store).await;
    assert_eq!(ring.keys.len(), 1);
    assert_eq!(ring.keys[0].sealed.len(), 8, "the id alone");
}

#[tokio::test]
async fn a_rotation_whose_key_files_cannot_be_written_is_refused_before_the_ring_changes() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("ring.sqlite3")).expect("open"));
    write_key(&dir.path().join("a.key"), [5; 32]);
    let keys = Arc::new(MasterKeys::new(&[5; 32], &[]));
    let files = KeyFilePair {
        current: dir.path().join("a.key"),
        previous: dir.path().join("missing/a.key.previous"),
    };
    let ring = MasterKeyRing::new(
        keys.clone(),
        store.clone(),
        Vec::new(),
        Some(Arc::new(files)),
        settings(None),
    );
    ring.step().await.expect("first ring");
    match ring.rotate(crate::clock::now_ms()).await {
        Err(MasterKeyError::NotWritable(e)) => assert!(e.contains("missing"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        stored_ring(&store).await.keys.len(),
        1,
        "no rotation recorded"
    );
    assert_eq!(keys.current_id(), KeyId::of(&[5; 32]));
}

#[tokio::test]
async fn another_node_takes_the_new_key_from_the_ring_and_a_late_one_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    // The ring is shared through one store (plain here: the nodes' content is what is sealed).
    let store = Arc::new(SqliteStore::open(dir.path().join("ring.sqlite3")).expect("open"));
    let old = [7u8; 32];
    for name in ["a", "b", "c"] {
        write_key(&dir.path().join(format!("{name}.key")), old);
    }
    let a = node(dir.path(), "a", &store, false, None).await;
    let b = node(dir.path(), "b", &store, false, None).await;
    a.ring.step().await.expect("a");
    b.ring.step().await.expect("b");
    a.ring.rotate(crate::clock::now_ms()).await.expect("rotate");
    let new = file_key(&a.files.current);
    // Before b's round, a's new content is wrapped by a key b does not have yet.
    a.blobs
        .put("from-a", Bytes::from_static(SECRET))
        .await
        .expect("put");
    b.ring.step().await.expect("b takes the key");
    assert_eq!(file_key(&b.files.current), new);
    assert_eq!(file_key(&b.files.previous), old);
    assert_eq!(b.keys.current_id(), KeyId::of(&new));
    assert_eq!(read_all(&*b.blobs, "from-a").await, SECRET);

    let later = crate::clock::now_ms() + ms(ADOPT_LEAD) + 1;
    assert!(a.ring.retire(later).await.expect("retire"));
    assert!(!a.ring.retire(later).await.expect("nothing left"));
    a.ring.step().await.expect("a forgets");
    b.ring.step().await.expect("b forgets");
    assert!(!a.keys.rotating() && !b.keys.rotating());
    // A node down through the whole overlap cannot take the key from the store any more (nor
    // open the files: the address key is wrapped by the new key too).
    let c_files = files_in(dir.path(), "c");
    let c_keys = MasterKeys::new(&old, &[]);
    let files: Arc<dyn MasterKeyFiles> = Arc::new(c_files.clone());
    match catch_up(&*store, &c_keys, Some(&files), Duration::from_secs(60)).await {
        Err(MasterKeyError::Unknown(id)) => assert_eq!(id, KeyId::of(&new)),
        other => panic!("expected the key to be unknown, got {other:?}"),
    }
    assert_eq!(file_key(&c_files.current), old, "its files are left alone");
    let raw = Arc::new(FsBlobs::open(dir.path().join("files")).expect("fs"));
    assert!(SealedBlobs::open(raw, Arc::new(c_keys)).await.is_err());
}

#[tokio::test]
async fn the_schedule_rotates_once_when_the_key_is_due_and_a_restart_key_is_recorded() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("ring.sqlite3")).expect("open"));
    let old = [3u8; 32];
    write_key(&dir.path().join("a.key"), old);
    write_key(&dir.path().join("b.key"), old);
    let every = Some(Duration::from_secs(1));
    let a = node(dir.path(), "a", &store, false, every).await;
    let b = node(dir.path(), "b", &store, false, every).await;
    a.ring.step().await.expect("first ring");
    b.ring.step().await.expect("not due");
    assert!(!a.keys.rotating() && !b.keys.rotating());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Both find it due; one rotates, the other takes its key.
    a.ring.step().await.expect("a");
    b.ring.step().await.expect("b");
    let ring = stored_ring(&store).await;
    assert_eq!(ring.keys.len(), 2, "one rotation: {ring:?}");
    assert_eq!(a.keys.current_id(), b.keys.current_id());
    assert_ne!(a.keys.current_id(), KeyId::of(&old));
    // Due again, but the overlap has not ended: no new rotation.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    a.ring.step().await.expect("a");
    let again = stored_ring(&store).await;
    assert_eq!(again.keys.len(), 2);

    // A key given from outside at a restart (the ring's key as the previous) is a rotation.
    let outside = [9u8; 32];
    let current = a.keys.current_bytes();
    let keys = Arc::new(MasterKeys::new(&outside, &[current]));
    let ring = catch_up(&*store, &keys, None, Duration::from_secs(60))
        .await
        .expect("recorded");
    let now = crate::clock::now_ms();
    let shown = keyring::view(&ring, now);
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert_eq!(
        Entry::decode(current_key(&ring)).expect("entry").id,
        KeyId::of(&outside)
    );
    // Its overlap (no handover to erase) ends by command like any other.
    let restarted = MasterKeyRing::new(keys, store.clone(), Vec::new(), None, settings(None));
    assert!(
        restarted
            .retire(now + ms(ADOPT_LEAD) + 1)
            .await
            .expect("retire")
    );
    let ring = stored_ring(&store).await;
    assert_eq!(ring.keys.len(), 1);
}

async fn stored_ring(store: &SqliteStore) -> KeyRingRecord {
    store
        .key_ring(pb::KeyKind::Master)
        .await
        .expect("ring")
        .expect("written")
}

fn current_key(ring: &KeyRingRecord) -> &StoredKey {
    current(ring).expect("a current key")
}
