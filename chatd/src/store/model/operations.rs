//! What operators read and the server keeps for them: audit entries, notifications, the
//! delivery outbox, schema status and key rings.

use chatproto::pb;

/// One admin action to record in the audit log ([`AuditStore`](crate::store::AuditStore)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// When it was answered, in Unix milliseconds.
    pub at_ms: i64,
    /// Who asked: a user id, 0 when the connection was not authenticated.
    pub actor_id: u64,
    /// The address the request came from (`ip:port`).
    pub address: String,
    /// The request kind, e.g. `admin_delete_user`.
    pub action: String,
    /// What it acted on, e.g. `user:42`, `chat:7/seq:3`; empty when nothing in particular.
    pub subject: String,
    /// The parameters that say what it did beyond its kind, e.g. `disabled=true`; empty when
    /// the kind says it all. Never a secret (no password).
    pub detail: String,
    /// How it was answered: [`pb::ErrorCode::Unspecified`] for a success.
    pub outcome: pb::ErrorCode,
}

/// A recorded admin action: the entry with the id the store gave it, increasing in the order
/// the entries were appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The entry's id, from 1.
    pub id: u64,
    /// What was recorded.
    pub entry: NewAuditEntry,
}

/// Filters and paging of [`AuditStore::audit_entries`](crate::store::AuditStore::audit_entries).
/// Filters combine; an unset one matches every entry.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only actions of this user.
    pub actor_id: Option<u64>,
    /// Only this request kind.
    pub action: Option<String>,
    /// Only actions on this subject (exact).
    pub subject: Option<String>,
    /// Only entries at or after this time (Unix milliseconds).
    pub since_ms: Option<i64>,
    /// Only entries with a smaller id (paging backwards from the newest); `None` from the newest.
    pub before_id: Option<u64>,
    /// Page size.
    pub limit: u32,
}

/// Which of a user's notifications a change applies to
/// ([`NotificationStore`](crate::store::NotificationStore)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationSet {
    /// These ids (those that are not the user's are ignored).
    Ids(Vec<u64>),
    /// Every one with an id at or below this.
    UpTo(u64),
}

/// Paging of [`NotificationStore::notifications`](crate::store::NotificationStore::notifications).
#[derive(Debug, Clone, Default)]
pub struct NotificationQuery {
    /// Whose.
    pub user_id: u64,
    /// Only the unread ones.
    pub unread_only: bool,
    /// Only ids below this (paging backwards from the newest); `None` from the newest.
    pub before_id: Option<u64>,
    /// Page size.
    pub limit: u32,
}

/// Input of [`OutboxStore::enqueue_delivery`](crate::store::OutboxStore::enqueue_delivery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// What it delivers.
    pub kind: pb::DeliveryKind,
    /// Unique among the entries waiting or in flight: a second entry with the same key is not
    /// queued (so two nodes, or a retried step, queue one delivery).
    pub key: String,
    /// Whom it is for (0: nobody in particular).
    pub user_id: u64,
    /// What the sender needs, opaque to the store.
    pub payload: Vec<u8>,
    /// When it is first due.
    pub due_ms: i64,
    /// Now.
    pub now_ms: i64,
}

/// An outbox entry as stored: waiting, in flight, or dead (a dead letter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// Increasing in the order entries were queued.
    pub id: u64,
    /// What it delivers.
    pub kind: pb::DeliveryKind,
    /// The key it was queued under; `dead:{id}` once dead and `retry:{id}` once retried from
    /// the dead letters, so its first key is free for a new entry.
    pub key: String,
    /// Whom it is for.
    pub user_id: u64,
    /// What the sender needs.
    pub payload: Vec<u8>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When it is due next.
    pub due_ms: i64,
    /// When it was queued.
    pub created_at_ms: i64,
    /// Why the last attempt failed; empty before any failure.
    pub last_error: String,
    /// Dead after its last attempt: it waits for an admin.
    pub dead: bool,
    /// When it died; 0 while alive.
    pub dead_at_ms: i64,
}

/// How an attempt ended, for
/// [`OutboxStore::release_delivery`](crate::store::OutboxStore::release_delivery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// It failed and is tried again at `at_ms` (the attempt counts).
    Retry {
        /// When it is due again.
        at_ms: i64,
        /// Why it failed.
        error: String,
    },
    /// Not now, without failing (e.g. the user is online): due again at `at_ms`, the attempt
    /// does not count.
    Postpone {
        /// When it is due again.
        at_ms: i64,
    },
    /// It failed for the last time: it becomes a dead letter (the attempt counts).
    Dead {
        /// Why it failed.
        error: String,
    },
}

/// Which dead letters an admin change applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliverySet {
    /// These ids (others, and ids of entries that are not dead, are ignored).
    Ids(Vec<u64>),
    /// Every dead letter.
    All,
}

/// The storage schema as [`Store::schema_status`](crate::store::Store::schema_status) and the calls
/// that change it report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The schema version before the call.
    pub version_before: u32,
    /// The schema version after it.
    pub version: u32,
    /// The version this code writes and understands.
    pub latest_version: u32,
    /// The migrations the call applied, oldest first, as `"N: what"`.
    pub applied: Vec<String>,
    /// The indexes the call created because they were missing.
    pub indexes_created: Vec<String>,
    /// How many indexes the schema has.
    pub indexes: u32,
    /// The schema's indexes missing after the call.
    pub indexes_missing: Vec<String>,
}

/// One key of a ring as the store keeps it: its secret sealed by the server, so the store alone
/// opens none (see [`KeyStore`](crate::store::KeyStore)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The key id, unique in its ring; 0 is the key from before rotation, kept without a secret.
    pub kid: u32,
    /// The sealed secret; empty for kid 0.
    pub sealed: Vec<u8>,
    /// When it was made.
    pub created_at_ms: i64,
    /// When it stops verifying; 0 for the key that signs.
    pub retire_at_ms: i64,
}

/// The keys of one kind and the version of the ring, which every write moves on by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRingRecord {
    /// What the keys are for.
    pub kind: pb::KeyKind,
    /// 1 for the first ring written, then one more per write.
    pub version: u64,
    /// The keys, in the order written.
    pub keys: Vec<StoredKey>,
}
