//! Collection names and their indexes, created at start. `createIndexes` with an existing name and
//! the same definition is a no-op, so every chatd instance of a cluster runs this at start-up.

use mongodb::bson::{Document, doc};
use mongodb::error::ErrorKind;
use mongodb::options::IndexOptions;
use mongodb::{Database, IndexModel};

use super::error;
use crate::store::StoreResult;

pub(super) const COUNTERS: &str = "counters";
pub(super) const USERS: &str = "users";
pub(super) const SESSIONS: &str = "sessions";
pub(super) const USED_REFRESH: &str = "used_refresh_tokens";
pub(super) const CONTACTS: &str = "contacts";
pub(super) const BLOCKS: &str = "blocks";
pub(super) const CHATS: &str = "chats";
pub(super) const PRIVATE_PAIRS: &str = "private_pairs";
pub(super) const MEMBERS: &str = "members";
pub(super) const MESSAGES: &str = "messages";
pub(super) const EVENTS: &str = "events";
pub(super) const SEND_KEYS: &str = "send_keys";
pub(super) const LEASES: &str = "leases";
pub(super) const UPLOADS: &str = "uploads";
pub(super) const UPLOAD_KEYS: &str = "upload_keys";
pub(super) const UPLOAD_OUTCOMES: &str = "upload_outcomes";
pub(super) const FILES: &str = "files";
pub(super) const AUDIT: &str = "audit_log";
pub(super) const NOTIFICATIONS: &str = "notifications";
pub(super) const NOTIFICATION_PREFS: &str = "notification_prefs";
pub(super) const TWO_FACTOR: &str = "two_factor";
pub(super) const TWO_FACTOR_SPENT: &str = "two_factor_spent";
pub(super) const ACCOUNT_CODES: &str = "account_codes";
pub(super) const ACCOUNT_CODES_SPENT: &str = "account_codes_spent";
pub(super) const OUTBOX: &str = "outbox";
pub(super) const OUTBOX_CLAIMS: &str = "outbox_claims";
pub(super) const DIGEST_MARKS: &str = "digest_marks";
pub(super) const ACCESS_RULES: &str = "access_rules";
pub(super) const SERVER_SETTINGS: &str = "server_settings";
pub(super) const META: &str = "meta";
pub(super) const KEY_RINGS: &str = "key_rings";

/// Name of the optional text index on message tokens.
const TEXT_INDEX: &str = "messages_tokens_text";

/// One index: (collection, index name, keys with their order, unique).
pub(super) type IndexSpec = (
    &'static str,
    &'static str,
    &'static [(&'static str, i32)],
    bool,
);

pub(super) const INDEXES: &[IndexSpec] = &[
    (USERS, "users_username", &[("username", 1)], true),
    (USERS, "users_display_lower", &[("display_lower", 1)], false),
    (USERS, "users_role", &[("role", 1)], false),
    (USERS, "users_email", &[("email", 1)], false),
    (
        ACCOUNT_CODES_SPENT,
        "account_codes_spent_user",
        &[("user_id", 1), ("at_ms", 1)],
        false,
    ),
    (
        SESSIONS,
        "sessions_refresh_hash",
        &[("refresh_hash", 1)],
        true,
    ),
    (
        SESSIONS,
        "sessions_user",
        &[("user_id", 1), ("created_at_ms", -1)],
        false,
    ),
    (SESSIONS, "sessions_revoked", &[("revoked_at_ms", 1)], false),
    (
        SESSIONS,
        "sessions_last_seen",
        &[("last_seen_at_ms", 1)],
        false,
    ),
    (SESSIONS, "sessions_created", &[("created_at_ms", 1)], false),
    (
        USED_REFRESH,
        "used_refresh_tokens_session",
        &[("session_id", 1)],
        false,
    ),
    (
        CONTACTS,
        "contacts_owner_target",
        &[("owner", 1), ("target", 1)],
        true,
    ),
    (CONTACTS, "contacts_target", &[("target", 1)], false),
    (BLOCKS, "blocks_target", &[("target", 1)], false),
    (
        BLOCKS,
        "blocks_owner_target",
        &[("owner", 1), ("target", 1)],
        true,
    ),
    (
        MEMBERS,
        "members_chat_user",
        &[("chat_id", 1), ("user_id", 1)],
        true,
    ),
    (
        MEMBERS,
        "members_user",
        &[("user_id", 1), ("left_at_seq", 1)],
        false,
    ),
    (
        MESSAGES,
        "messages_chat_seq",
        &[("chat_id", 1), ("seq", 1)],
        true,
    ),
    (MESSAGES, "messages_tokens", &[("tokens", 1)], false),
    (MESSAGES, "messages_file", &[("file_id", 1)], false),
    (
        MESSAGES,
        "messages_sender",
        &[("sender_id", 1), ("chat_id", 1), ("seq", 1)],
        false,
    ),
    (USERS, "users_avatar", &[("avatar_file_id", 1)], false),
    (CHATS, "chats_avatar", &[("avatar_file_id", 1)], false),
    (UPLOADS, "uploads_user", &[("user_id", 1)], false),
    (UPLOADS, "uploads_created", &[("created_at_ms", 1)], false),
    (FILES, "files_owner", &[("owner_id", 1)], false),
    (FILES, "files_parent", &[("parent_id", 1)], false),
    (FILES, "files_sha256", &[("sha256", 1)], false),
    (FILES, "files_created", &[("created_at_ms", 1)], false),
    (
        EVENTS,
        "events_chat_seq",
        &[("chat_id", 1), ("seq", 1)],
        true,
    ),
    (AUDIT, "audit_actor", &[("actor_id", 1), ("_id", -1)], false),
    (AUDIT, "audit_action", &[("action", 1), ("_id", -1)], false),
    (
        NOTIFICATIONS,
        "notifications_user",
        &[("user_id", 1), ("_id", -1)],
        false,
    ),
    (OUTBOX, "outbox_key", &[("key", 1)], true),
    (
        OUTBOX,
        "outbox_due",
        &[("dead", 1), ("due_ms", 1), ("_id", 1)],
        false,
    ),
    (
        TWO_FACTOR_SPENT,
        "two_factor_spent_user",
        &[("user_id", 1), ("step", 1)],
        false,
    ),
];

/// Creates every index (idempotent).
pub(super) async fn create_all(db: &Database) -> StoreResult<()> {
    for spec in INDEXES {
        create(db, spec).await?;
    }
    Ok(())
}

/// Creates one index (a no-op when it exists with the same definition).
pub(super) async fn create(db: &Database, spec: &IndexSpec) -> StoreResult<()> {
    let (collection, name, keys, unique) = spec;
    let mut key_doc = Document::new();
    for (field, order) in *keys {
        key_doc.insert(*field, *order);
    }
    let mut options = IndexOptions::default();
    options.name = Some((*name).to_string());
    options.unique = Some(*unique);
    let model = IndexModel::builder().keys(key_doc).options(options).build();
    db.collection::<Document>(collection)
        .create_index(model)
        .await
        .map_err(error::map)?;
    Ok(())
}

/// The indexes of [`INDEXES`] the database lacks, in that order. A collection that does not
/// exist yet has none.
pub(super) async fn missing(db: &Database) -> StoreResult<Vec<&'static IndexSpec>> {
    let mut present: Vec<(&str, Vec<String>)> = Vec::new();
    let mut missing = Vec::new();
    for spec in INDEXES {
        let collection = spec.0;
        if !present.iter().any(|(c, _)| *c == collection) {
            let names = match db
                .collection::<Document>(collection)
                .list_index_names()
                .await
            {
                Ok(names) => names,
                Err(e) if error::is_namespace_missing(&e) => Vec::new(),
                Err(e) => return Err(error::map(e)),
            };
            present.push((collection, names));
        }
        let has = present
            .iter()
            .any(|(c, names)| *c == collection && names.iter().any(|n| n == spec.1));
        if !has {
            missing.push(spec);
        }
    }
    Ok(missing)
}

/// Tries to create the text index used to narrow searches; false when the server has no text
/// indexes (FerretDB answers "not implemented"). Search is correct either way: the text index only
/// preselects candidates, the token filter decides.
pub(super) async fn try_text_index(db: &Database) -> StoreResult<bool> {
    let mut options = IndexOptions::default();
    options.name = Some(TEXT_INDEX.to_string());
    // "none": no stemming and no stop words, so index terms are exactly our tokens.
    options.default_language = Some("none".to_string());
    let model = IndexModel::builder()
        .keys(doc! { "tokens": "text" })
        .options(options)
        .build();
    match db
        .collection::<Document>(MESSAGES)
        .create_index(model)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => match e.kind.as_ref() {
            ErrorKind::Command(c) => {
                tracing::info!(code = c.code, message = %c.message, "mongodb: no text index, search scans tokens");
                Ok(false)
            }
            _ => Err(error::map(e)),
        },
    }
}
