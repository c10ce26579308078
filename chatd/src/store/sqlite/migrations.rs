//! The versioned schema.
//!
//! The schema version is `PRAGMA user_version`: the number of migrations applied. At open every
//! migration above it runs in its own transaction, which also sets the new version, so a crash
//! between migrations leaves a consistent database at the previous version and the next open
//! continues from there. Re-opening an up-to-date database runs nothing. A database whose version
//! is newer than [`MIGRATIONS`] knows is refused: this code would misread its tables.
//!
//! Never edit a migration that has shipped; append a new one.

use rusqlite::Connection;

use crate::store::{StoreError, StoreResult};

/// Every migration in order, with what it is about; migration `i` brings the schema from
/// version `i` to `i + 1`.
pub(super) const MIGRATIONS: &[(&str, &str)] = &[
    ("first release", V1_INITIAL),
    ("files", V2_FILES),
    ("blocks by target", V3_BLOCKS_BY_TARGET),
    ("audit log", V4_AUDIT),
    ("notifications", V5_NOTIFICATIONS),
    ("two-factor login", V6_TWO_FACTOR),
    ("outbox", V7_OUTBOX),
    ("access rules", V8_ACCESS_RULES),
    ("email verification and password reset", V9_RECOVERY),
    ("key rings", V10_KEY_RINGS),
    ("dead sessions", V11_DEAD_SESSIONS),
    ("membership versions", V12_MEMBERS_SEQ),
];

/// The schema version this code writes and understands.
pub(super) fn latest_version() -> u32 {
    u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX)
}

/// The database's schema version.
pub(super) fn current_version(conn: &Connection) -> StoreResult<u32> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    u32::try_from(v).map_err(|_| StoreError::Internal(format!("invalid schema version {v}")))
}

/// How a migration is reported: `"7: access rules"`.
fn label(version: u32, what: &str) -> String {
    format!("{version}: {what}")
}

/// The migrations `conn` lacks, as `(version, what, sql)`; `Internal` for a database newer
/// than this code.
fn pending(conn: &Connection) -> StoreResult<Vec<(u32, &'static str, &'static str)>> {
    let latest = latest_version();
    let found = current_version(conn)?;
    if found > latest {
        return Err(newer_schema(found, latest));
    }
    Ok(MIGRATIONS
        .iter()
        .enumerate()
        .skip(found as usize)
        .map(|(index, (what, sql))| (u32::try_from(index + 1).unwrap_or(u32::MAX), *what, *sql))
        .collect())
}

/// Brings the schema up to [`latest_version`], one transaction per migration (at open, before
/// the writer owns the connection). Returns the migrations applied, as [`label`]s.
pub(super) fn migrate(conn: &mut Connection) -> StoreResult<Vec<String>> {
    let mut applied = Vec::new();
    for (target, what, sql) in pending(conn)? {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the write lock.
        let now = current_version(&tx)?;
        if now > latest_version() {
            return Err(newer_schema(now, latest_version()));
        }
        if now >= target {
            continue;
        }
        apply(&tx, target, sql)?;
        tx.commit()?;
        applied.push(label(target, what));
    }
    Ok(applied)
}

/// [`migrate`] inside a transaction the caller holds (the writer's, for `admin_db_migrate`):
/// every missing migration or none.
pub(super) fn migrate_in(conn: &Connection) -> StoreResult<Vec<String>> {
    let mut applied = Vec::new();
    for (target, what, sql) in pending(conn)? {
        apply(conn, target, sql)?;
        applied.push(label(target, what));
    }
    Ok(applied)
}

/// Runs one migration's SQL and records its version, in the caller's transaction.
fn apply(conn: &Connection, target: u32, sql: &str) -> StoreResult<()> {
    conn.execute_batch(sql).map_err(|e| {
        StoreError::Internal(format!("schema migration to version {target} failed: {e}"))
    })?;
    conn.pragma_update(None, "user_version", target)?;
    Ok(())
}

fn newer_schema(found: u32, latest: u32) -> StoreError {
    StoreError::Internal(format!(
        "database schema version {found} is newer than this chatd supports ({latest}); \
         upgrade chatd or use a matching database"
    ))
}

/// Version 1: every table of the first release.
///
/// Notes on choices that are not obvious:
/// - `AUTOINCREMENT` on users, sessions and chats: ids are never reused, even after the row with
///   the highest id would be removed.
/// - `user_chat_state` is one row per membership row (also for former members) and is never
///   deleted, so cursors survive leaving and re-joining.
/// - `events.body` is the protobuf encoding of the whole `ChatEvent` except for
///   `message_created`, whose message is joined from `messages` at read time so edits, deletes
///   and reactions show. `message_seq` indexes the events about one message, to purge the text of
///   its `message_edited` events when it is deleted.
/// - `messages_fts` is an external-content FTS5 index over `messages.text`, kept in sync by
///   triggers; purging a message's text removes its terms from the index.
const V1_INITIAL: &str = r#"
CREATE TABLE users (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    username          TEXT    NOT NULL UNIQUE,
    email             TEXT    NOT NULL,
    password_hash     TEXT    NOT NULL,
    display_name      TEXT    NOT NULL DEFAULT '',
    display_name_fold TEXT    NOT NULL DEFAULT '',
    bio               TEXT    NOT NULL DEFAULT '',
    avatar_file_id    TEXT    NOT NULL DEFAULT '',
    status            INTEGER NOT NULL,
    last_seen_at_ms   INTEGER NOT NULL DEFAULT 0,
    role              INTEGER NOT NULL,
    disabled          INTEGER NOT NULL DEFAULT 0,
    deleted           INTEGER NOT NULL DEFAULT 0,
    deleted_at_ms     INTEGER,
    created_at_ms     INTEGER NOT NULL
);

CREATE TABLE sessions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER NOT NULL REFERENCES users(id),
    device_name     TEXT    NOT NULL,
    address         TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    last_seen_at_ms INTEGER NOT NULL,
    revoked_at_ms   INTEGER
);
CREATE INDEX sessions_by_user ON sessions(user_id, id);

CREATE TABLE refresh_tokens (
    hash          TEXT    PRIMARY KEY,
    session_id    INTEGER NOT NULL REFERENCES sessions(id),
    used          INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    used_at_ms    INTEGER
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_by_session ON refresh_tokens(session_id);

CREATE TABLE contacts (
    owner_id  INTEGER NOT NULL REFERENCES users(id),
    target_id INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (owner_id, target_id)
) WITHOUT ROWID;
CREATE INDEX contacts_by_target ON contacts(target_id, owner_id);

CREATE TABLE blocks (
    owner_id  INTEGER NOT NULL REFERENCES users(id),
    target_id INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (owner_id, target_id)
) WITHOUT ROWID;

CREATE TABLE chats (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             INTEGER NOT NULL,
    title            TEXT    NOT NULL,
    description      TEXT    NOT NULL,
    avatar_file_id   TEXT    NOT NULL DEFAULT '',
    owner_id         INTEGER NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    last_seq         INTEGER NOT NULL DEFAULT 0,
    last_activity_ms INTEGER NOT NULL,
    member_count     INTEGER NOT NULL DEFAULT 0,
    deleted          INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE private_pairs (
    low_user_id  INTEGER NOT NULL REFERENCES users(id),
    high_user_id INTEGER NOT NULL REFERENCES users(id),
    chat_id      INTEGER NOT NULL UNIQUE REFERENCES chats(id),
    PRIMARY KEY (low_user_id, high_user_id),
    CHECK (low_user_id < high_user_id)
) WITHOUT ROWID;

CREATE TABLE members (
    chat_id       INTEGER NOT NULL REFERENCES chats(id),
    user_id       INTEGER NOT NULL REFERENCES users(id),
    role          INTEGER NOT NULL,
    joined_at_ms  INTEGER NOT NULL,
    joined_at_seq INTEGER NOT NULL,
    left_at_seq   INTEGER,
    PRIMARY KEY (chat_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members(user_id, chat_id);

CREATE TABLE user_chat_state (
    chat_id        INTEGER NOT NULL,
    user_id        INTEGER NOT NULL,
    pinned         INTEGER NOT NULL DEFAULT 0,
    muted_until_ms INTEGER NOT NULL DEFAULT 0,
    archived       INTEGER NOT NULL DEFAULT 0,
    delivered_seq  INTEGER NOT NULL DEFAULT 0,
    read_seq       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, user_id),
    FOREIGN KEY (chat_id, user_id) REFERENCES members(chat_id, user_id)
) WITHOUT ROWID;

CREATE TABLE messages (
    id             INTEGER PRIMARY KEY,
    chat_id        INTEGER NOT NULL REFERENCES chats(id),
    seq            INTEGER NOT NULL,
    sender_id      INTEGER NOT NULL REFERENCES users(id),
    client_msg_id  TEXT    NOT NULL,
    kind           INTEGER NOT NULL,
    text           TEXT    NOT NULL,
    file_id        TEXT    NOT NULL,
    reply_to_seq   INTEGER NOT NULL DEFAULT 0,
    fwd_chat_id    INTEGER,
    fwd_seq        INTEGER,
    fwd_sender_id  INTEGER,
    fwd_sent_at_ms INTEGER,
    sent_at_ms     INTEGER NOT NULL,
    edited         INTEGER NOT NULL DEFAULT 0,
    edited_at_ms   INTEGER NOT NULL DEFAULT 0,
    deleted        INTEGER NOT NULL DEFAULT 0,
    deleted_at_ms  INTEGER NOT NULL DEFAULT 0,
    mention_ids    TEXT    NOT NULL DEFAULT '',
    UNIQUE (chat_id, seq),
    UNIQUE (sender_id, client_msg_id)
);

CREATE TABLE message_edits (
    id      INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    text    TEXT    NOT NULL,
    at_ms   INTEGER NOT NULL,
    FOREIGN KEY (chat_id, seq) REFERENCES messages(chat_id, seq)
);
CREATE INDEX message_edits_by_message ON message_edits(chat_id, seq, id);

CREATE TABLE reactions (
    id      INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    emoji   TEXT    NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id),
    at_ms   INTEGER NOT NULL,
    UNIQUE (chat_id, seq, emoji, user_id),
    FOREIGN KEY (chat_id, seq) REFERENCES messages(chat_id, seq)
);

CREATE TABLE hidden (
    chat_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (chat_id, user_id, seq)
) WITHOUT ROWID;

CREATE TABLE events (
    chat_id     INTEGER NOT NULL REFERENCES chats(id),
    seq         INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    actor_id    INTEGER NOT NULL,
    kind        INTEGER NOT NULL,
    message_seq INTEGER,
    body        BLOB,
    PRIMARY KEY (chat_id, seq)
) WITHOUT ROWID;
CREATE INDEX events_by_message ON events(chat_id, message_seq) WHERE message_seq IS NOT NULL;

CREATE VIRTUAL TABLE messages_fts USING fts5(
    text,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text);
END;
"#;

/// Version 2: uploads and files (capability `files`).
///
/// - `uploads_open` makes "the user's open upload of this content" unique, so concurrent
///   `open_upload` calls of one content find one row.
/// - `files.info` is the protobuf encoding of the `FileInfo` readers see; the columns beside it
///   are what the server queries by. `sha256` is the lowercase hex content key: rows of equal
///   content share their bytes.
/// - `messages.attachment` is the protobuf `FileInfo` of a media message, purged with it;
///   `messages_by_file` and the avatar indexes answer "who references this file".
const V2_FILES: &str = r#"
CREATE TABLE uploads (
    id            TEXT    PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    size          INTEGER NOT NULL,
    sha256        BLOB    NOT NULL,
    name          TEXT    NOT NULL,
    kind          INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    state         INTEGER NOT NULL DEFAULT 0,
    file_id       TEXT,
    failure       TEXT
) WITHOUT ROWID;
CREATE UNIQUE INDEX uploads_open ON uploads(user_id, sha256, size) WHERE state = 0;
CREATE INDEX uploads_by_time ON uploads(created_at_ms);

CREATE TABLE files (
    id            TEXT    PRIMARY KEY,
    owner_id      INTEGER NOT NULL,
    parent_id     TEXT,
    sha256        TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    public        INTEGER NOT NULL DEFAULT 0,
    info          BLOB    NOT NULL
) WITHOUT ROWID;
CREATE INDEX files_by_owner ON files(owner_id);
CREATE INDEX files_by_parent ON files(parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX files_by_sha ON files(sha256);
CREATE INDEX files_by_time ON files(created_at_ms) WHERE parent_id IS NULL;

ALTER TABLE messages ADD COLUMN attachment BLOB;
CREATE INDEX messages_by_file ON messages(file_id, chat_id, seq) WHERE file_id != '';
CREATE INDEX users_by_avatar ON users(avatar_file_id) WHERE avatar_file_id != '';
CREATE INDEX chats_by_avatar ON chats(avatar_file_id) WHERE avatar_file_id != '';
"#;

/// Version 3: who blocked a user is read on every message sent (placeholders for the blockers,
/// spec 9.2).
const V3_BLOCKS_BY_TARGET: &str = r#"
CREATE INDEX blocks_by_target ON blocks(target_id, owner_id);
"#;

/// Version 4: the admin audit log (spec 9.6), read newest first, by actor or by action.
const V4_AUDIT: &str = r#"
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    actor_id INTEGER NOT NULL,
    address TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    outcome INTEGER NOT NULL
);
CREATE INDEX audit_by_actor ON audit_log(actor_id, id);
CREATE INDEX audit_by_action ON audit_log(action, id);
"#;

/// Version 5: the notification center (spec section 15): each user's notifications, read newest
/// first (`body` is the wire's `Notification` without id and read flag), their preferences (the
/// wire's `NotificationPrefs`), and the per-chat mentions-only switch.
const V5_NOTIFICATIONS: &str = r#"
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    read INTEGER NOT NULL DEFAULT 0,
    body BLOB NOT NULL
);
CREATE INDEX notifications_by_user ON notifications(user_id, id);
CREATE INDEX notifications_unread ON notifications(user_id, read, id);
CREATE TABLE notification_prefs (
    user_id INTEGER PRIMARY KEY,
    prefs BLOB NOT NULL
);
ALTER TABLE user_chat_state ADD COLUMN mentions_only INTEGER NOT NULL DEFAULT 0;
"#;

/// Version 6: two-factor login (spec section 17): each user's sealed TOTP secret, pending or
/// enabled, with the last step used, and the hashes of their unused recovery codes.
const V6_TWO_FACTOR: &str = r#"
CREATE TABLE two_factor (
    user_id INTEGER PRIMARY KEY,
    secret BLOB NOT NULL,
    enabled INTEGER NOT NULL,
    last_step INTEGER NOT NULL
);
CREATE TABLE recovery_codes (
    user_id INTEGER NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (user_id, hash)
) WITHOUT ROWID;
"#;

/// Version 7: the outbox of emails and webhook calls (spec section 16): live entries by due
/// time, a key unique among all rows (a dead or retried entry's key is rewritten to name its
/// id, so the first key is free again), the lease of the holder attempting it; and how far each
/// user's digests got.
const V7_OUTBOX: &str = r#"
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind INTEGER NOT NULL,
    key TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due_ms INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    dead INTEGER NOT NULL DEFAULT 0,
    dead_at_ms INTEGER NOT NULL DEFAULT 0,
    holder INTEGER NOT NULL DEFAULT 0,
    lease_until_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox(dead, due_ms, id);
CREATE TABLE digest_marks (
    user_id INTEGER PRIMARY KEY,
    up_to INTEGER NOT NULL
);
"#;

/// Version 8: who may connect (spec 9.6, access rules): each rule is the wire's `AccessRule`
/// under its kind and canonical range, with its expiry as a column for the removal of expired
/// ones; and the server-wide settings, of which allow-list mode is the first.
const V8_ACCESS_RULES: &str = r#"
CREATE TABLE access_rules (
    kind INTEGER NOT NULL,
    cidr TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (kind, cidr)
) WITHOUT ROWID;
CREATE INDEX access_rules_by_expiry ON access_rules(expires_at_ms) WHERE expires_at_ms > 0;
CREATE TABLE server_settings (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// Version 9: email verification and password reset (spec section 18): whether each account's
/// address is verified, addresses looked up for a reset, and the live emailed code of each user
/// and purpose (its keyed hash, the address it went to, when it expires, the wrong attempts).
const V9_RECOVERY: &str = r#"
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
CREATE INDEX users_email ON users(email) WHERE email <> '';
CREATE TABLE account_codes (
    user_id INTEGER NOT NULL,
    purpose INTEGER NOT NULL,
    hash TEXT NOT NULL,
    email TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    expires_at_ms INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, purpose)
) WITHOUT ROWID;
"#;

/// Version 10: the server's key rings (spec 9.6, key rotation): per kind the ring's version,
/// which every write moves on (the compare-and-set of a rotation), and its keys, each secret
/// sealed by the server.
const V10_KEY_RINGS: &str = r#"
CREATE TABLE key_rings (
    kind INTEGER PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TABLE ring_keys (
    kind INTEGER NOT NULL,
    kid INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    retire_at_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, kid)
) WITHOUT ROWID;
"#;

/// Version 11: the sessions the sweep deletes (`auth::sweep`), found without reading the live
/// ones: revoked ones by when, and the others by when their refresh token expires, idle (the
/// later of last use and creation, as `refresh_expired` takes it) or of age.
const V11_DEAD_SESSIONS: &str = r#"
CREATE INDEX sessions_by_revoked ON sessions(revoked_at_ms) WHERE revoked_at_ms IS NOT NULL;
CREATE INDEX sessions_by_last_use ON sessions(max(last_seen_at_ms, created_at_ms));
CREATE INDEX sessions_by_created ON sessions(created_at_ms);
"#;

/// Version 12: `chats.members_seq`, the seq of the latest event that changed a chat's members
/// or roles, which an append checks against the membership its send was judged on. Existing
/// chats start at 0: a member list read from them is read at 0 too, and the next change moves
/// it.
const V12_MEMBERS_SEQ: &str = r#"
ALTER TABLE chats ADD COLUMN members_seq INTEGER NOT NULL DEFAULT 0;
"#;
