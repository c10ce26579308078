//! The MongoDB storage backend (cluster mode), built on the official `mongodb` driver.
//!
//! It implements the same traits as the SQLite backend and passes the same conformance suite, but
//! without multi-document transactions: every rule of [`crate::store`] is kept with single-document
//! atomic operations, unique indexes and a roll-forward protocol on the chat log. It runs on
//! MongoDB 5.0+ and on FerretDB (the test server), so it uses only CRUD, `findAndModify` with
//! `$inc`/upsert, unique indexes and plain queries; MongoDB-only features (a text index) sit behind
//! a capability check with a fallback.
//!
//! # Chat mutations: claiming the next seq
//!
//! A chat mutation (a message, an edit, a membership change...) changes some documents (members,
//! messages) and appends one or more events, which must happen all together or not at all, with
//! gap-free sequence numbers. The chat document's `last_seq` is the committed head. A mutation:
//!
//! 1. **Plans** against the committed chat: reads what it needs and builds a
//!    pending op (`pending::PendingOp`) holding everything needed to finish it (events, document effects, new
//!    chat fields), so that anyone can finish it, not only the caller.
//! 2. **Claims** seq `last_seq + 1` by inserting its first event there with the op attached
//!    (`events` has a unique `(chat_id, seq)` index). Exactly one claim per seq succeeds, on MongoDB
//!    and on FerretDB alike: a unique insert is the one primitive both make atomic (FerretDB's
//!    `findAndModify` and `update` are a read followed by an unconditional write, so two
//!    conditional updates can both "win" there). A claim that finds the seq taken waits for the op
//!    there to finish, then plans again. So mutations of one chat are serialized, and a plan that
//!    depended on state is never applied to a newer state.
//! 3. **Applies** the effects. Every effect is idempotent and guarded: inserts are
//!    insert-if-absent by a unique key, updates carry the op's last seq as a `rev` and only apply to
//!    documents with a lower `rev`, so a late re-application never undoes a later op.
//! 4. **Inserts the other events** of the op (only ownership transfer has two).
//! 5. **Commits**: sets the chat's `last_seq` to the op's last seq (only ever forwards) with the
//!    new chat fields and `$max` of the activity time; then drops the op from its claim.
//!
//! A writer that finds an op in flight waits for its owner and, after
//! [`MongoOptions::repair_after`], finishes it itself (steps 3–5); readers of the log (`events`)
//! finish an op that has been in flight that long. So a crash between any two steps leaves an op
//! that the next writer or reader rolls forward: nothing stays half-written and no seq is lost.
//! Readers see committed heads only, never a claimed seq that could still be given back.
//!
//! The chat's sequence number is thus allocated by the unique insert rather than by a `$inc`
//! counter on the chat document: a counter would need a second, separate write to record what
//! the seq was for, which is exactly the gap a crash would leave. Ids of users, sessions and chats
//! do come from `findAndModify` + `$inc` counters (`counters`); the unique `_id` insert that follows
//! is the arbiter there too, so an id is never used twice even where the counter is not atomic.
//!
//! ## Send idempotency
//!
//! An op that appends messages claims each message's idempotency key: an insert into `send_keys`
//! with `_id = "<sender>:<client_msg_id>"` (unique by `_id`, which stays unique on a sharded cluster
//! where a `(sender_id, client_msg_id)` index on `messages` would not), naming the message's
//! `(chat, seq)` and the op. The keys decide the op: it commits when every key is its own and is
//! *cancelled* when one belongs to another message. The decision is recorded once, by a unique
//! insert (`decision::MongoStore::decide`), so the owner and any helper reach the same decision
//! even when they race. A cancelled op is undone (its events, its claim, its keys, all by op id, so the
//! op that claims the same seqs next is never touched) and its duplicate answered with the
//! original. Cancelling is safe because nothing of the op is visible yet: readers see `last_seq`,
//! and the messages are inserted only after a commit decision. The common retry is answered
//! before claiming anything, by looking the keys up first.
//!
//! ## Group commit
//!
//! Appends do not run one op each: the sends that arrive while a round is in the database wait
//! for the next round, which takes them all, one op per chat, through a handful of commands
//! (see `appends`). The chat's next seq comes from the head this store last committed (or read),
//! so claiming needs no read first; a claim that finds its seq taken reads the chat again.
//!
//! ## Limits on FerretDB
//!
//! Where two writers update the same document at the same moment, FerretDB may lose one update
//! (see above). Chat mutations never do (they are serialized by their claims, and helpers step in
//! only after `repair_after`); user-driven single-document updates can (e.g. two concurrent
//! receipts of one user, or a concurrent hide and edit of one message). MongoDB applies each of
//! them atomically.
//!
//! # Layout
//! - [`MongoOptions`], [`MongoStore::connect`], `Store` (here).
//! - `error`: driver errors → [`StoreError`]. `indexes`: collections and indexes, created at start.
//! - `docs`: the stored documents and their conversion to records and wire types.
//! - `counters`: id allocation. `admins`: the lease that keeps the last admin. `pending`: the
//!   protocol above. `locks`: per-chat writer queues within one process. `appends`: group commit
//!   of message appends.
//! - `users`, `sessions`, `relations`, `chats` (+ `chat_lists`), `messages` (+ `search`,
//!   `tokens`), `files`: the traits, one entity each; `overview`: the reads of server admins;
//!   `audit`: the admin audit log; `notifications`: the notification center; `outbox`: emails
//!   and webhook calls on their way; `two_factor`: two-factor login; `recovery`: email
//!   verification and password reset; `access`: who may connect; `keys`: the server's key
//!   rings.
//!   `schema`: the schema version (in `meta`) and its migrations. `sealing`: user content
//!   encrypted by chatd before it is stored (with a master key).
//!
//! Collections, indexes and shard keys are listed in `README.md` beside this file.

mod access;
mod admins;
mod appends;
mod audit;
mod chat_lists;
mod chats;
mod counters;
mod decision;
mod docs;
mod error;
mod files;
mod indexes;
mod keys;
mod locks;
mod messages;
mod notifications;
mod outbox;
mod overview;
mod pending;
mod recovery;
mod relations;
mod schema;
mod sealing;
mod search;
mod sessions;
mod tokens;
mod two_factor;
mod users;

pub(crate) use error::is_duplicate;
pub use sealing::FieldKeyError;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testserver;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{Document, doc};
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;
use mongodb::options::{Acknowledgment, ClientOptions, WriteConcern};
use mongodb::{Client, Collection, Database};

use crate::store::{SchemaStatus, Store, StoreError, StoreResult};
use prometheus_client::metrics::counter::Counter;
use serde::de::DeserializeOwned;

use docs::{ChatDoc, CounterDoc, EventDoc, MemberDoc, MessageDoc, SessionDoc, UserDoc};

/// Statements per `update` command at most. FerretDB 1.24 keeps the PostgreSQL connection of
/// each statement's read until the whole command ends (a `defer` in its statement loop), and its
/// pool holds 50: one command of 50 statements would wait for a connection that only its own
/// end frees, stalling FerretDB for every client. Two nodes' send rounds issuing commands of
/// this size at once stay far below the pool.
const UPDATE_STATEMENTS: usize = 8;

/// Connection and behaviour settings. The URI wins where it sets the same thing (`w=`,
/// `retryWrites=`, `serverSelectionTimeoutMS=`, `connectTimeoutMS=`); these apply otherwise.
#[derive(Debug, Clone)]
pub struct MongoOptions {
    /// Database name when the URI names none.
    pub database: String,
    /// Acknowledge writes only once a majority of the replica set has them (`w: majority`).
    pub write_concern_majority: bool,
    /// Let the driver retry a write once after a network error or a failover.
    pub retry_writes: bool,
    /// How long to look for a usable server before failing with `Unavailable`.
    pub server_selection_timeout: Duration,
    /// How long to wait for a TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Deadline of one store call (all its round trips); beyond it the call fails with
    /// `Unavailable`. A call cut short leaves at most a pending op, which is rolled forward.
    pub operation_timeout: Duration,
    /// How long a chat's pending op may sit before a reader or a writer finishes it itself
    /// (its owner is then presumed gone).
    pub repair_after: Duration,
    /// Counts every command sent to the server (round trips), when set.
    pub command_counter: Option<Counter>,
    /// Keeps every command sent to the server, when set (tests look at what a call sends).
    #[cfg(test)]
    pub(crate) command_log: Option<CommandLog>,
}

/// Every command sent to the server, in order.
type CommandLog = std::sync::Arc<std::sync::Mutex<Vec<Document>>>;

impl MongoOptions {
    /// The command log to keep, if any (only tests keep one).
    fn command_log(&self) -> Option<CommandLog> {
        #[cfg(test)]
        return self.command_log.clone();
        #[cfg(not(test))]
        None
    }
}

impl Default for MongoOptions {
    fn default() -> Self {
        Self {
            database: "chatd".to_string(),
            write_concern_majority: true,
            retry_writes: true,
            // A call against a dead server fails within this (one selection), under the 2 s a
            // request may take.
            server_selection_timeout: Duration::from_millis(1500),
            connect_timeout: Duration::from_millis(1500),
            operation_timeout: Duration::from_secs(10),
            repair_after: Duration::from_millis(500),
            command_counter: None,
            #[cfg(test)]
            command_log: None,
        }
    }
}

/// Fills in what the URI left unset from `options`.
fn apply_options(client: &mut ClientOptions, options: &MongoOptions) {
    if client.write_concern.is_none() && options.write_concern_majority {
        let mut concern = WriteConcern::default();
        concern.w = Some(Acknowledgment::Majority);
        client.write_concern = Some(concern);
    }
    client.retry_writes.get_or_insert(options.retry_writes);
    client
        .server_selection_timeout
        .get_or_insert(options.server_selection_timeout);
    client
        .connect_timeout
        .get_or_insert(options.connect_timeout);
    client.app_name.get_or_insert_with(|| "chatd".to_string());
    let counter = options.command_counter.clone();
    let log = options.command_log();
    if counter.is_some() || log.is_some() {
        client.command_event_handler = Some(EventHandler::callback(move |event| {
            if let CommandEvent::Started(started) = event {
                if let Some(counter) = &counter {
                    counter.inc();
                }
                if let Some(log) = &log {
                    log.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(started.command);
                }
            }
        }));
    }
}

/// The collections, typed where the documents have a fixed shape.
#[derive(Debug, Clone)]
struct Collections {
    counters: Collection<CounterDoc>,
    users: Collection<UserDoc>,
    sessions: Collection<SessionDoc>,
    used_refresh: Collection<Document>,
    contacts: Collection<Document>,
    blocks: Collection<Document>,
    chats: Collection<ChatDoc>,
    private_pairs: Collection<Document>,
    members: Collection<MemberDoc>,
    messages: Collection<MessageDoc>,
    events: Collection<EventDoc>,
    send_keys: Collection<Document>,
    leases: Collection<Document>,
    uploads: Collection<files::UploadDoc>,
    upload_keys: Collection<Document>,
    upload_outcomes: Collection<files::OutcomeDoc>,
    files: Collection<files::FileDoc>,
    audit: Collection<audit::AuditDoc>,
    notifications: Collection<notifications::NotificationDoc>,
    notification_prefs: Collection<notifications::PrefsDoc>,
    outbox: Collection<outbox::OutboxDoc>,
    outbox_claims: Collection<Document>,
    digest_marks: Collection<Document>,
    two_factor: Collection<two_factor::TwoFactorDoc>,
    two_factor_spent: Collection<Document>,
    account_codes: Collection<recovery::CodeDoc>,
    account_codes_spent: Collection<Document>,
    access_rules: Collection<access::AccessRuleDoc>,
    server_settings: Collection<Document>,
    meta: Collection<Document>,
    key_rings: Collection<keys::KeyRingDoc>,
}

impl Collections {
    fn new(db: &Database) -> Self {
        Self {
            counters: db.collection(indexes::COUNTERS),
            users: db.collection(indexes::USERS),
            sessions: db.collection(indexes::SESSIONS),
            used_refresh: db.collection(indexes::USED_REFRESH),
            contacts: db.collection(indexes::CONTACTS),
            blocks: db.collection(indexes::BLOCKS),
            chats: db.collection(indexes::CHATS),
            private_pairs: db.collection(indexes::PRIVATE_PAIRS),
            members: db.collection(indexes::MEMBERS),
            messages: db.collection(indexes::MESSAGES),
            events: db.collection(indexes::EVENTS),
            send_keys: db.collection(indexes::SEND_KEYS),
            leases: db.collection(indexes::LEASES),
            uploads: db.collection(indexes::UPLOADS),
            upload_keys: db.collection(indexes::UPLOAD_KEYS),
            upload_outcomes: db.collection(indexes::UPLOAD_OUTCOMES),
            files: db.collection(indexes::FILES),
            audit: db.collection(indexes::AUDIT),
            notifications: db.collection(indexes::NOTIFICATIONS),
            notification_prefs: db.collection(indexes::NOTIFICATION_PREFS),
            outbox: db.collection(indexes::OUTBOX),
            outbox_claims: db.collection(indexes::OUTBOX_CLAIMS),
            digest_marks: db.collection(indexes::DIGEST_MARKS),
            two_factor: db.collection(indexes::TWO_FACTOR),
            two_factor_spent: db.collection(indexes::TWO_FACTOR_SPENT),
            account_codes: db.collection(indexes::ACCOUNT_CODES),
            account_codes_spent: db.collection(indexes::ACCOUNT_CODES_SPENT),
            access_rules: db.collection(indexes::ACCESS_RULES),
            server_settings: db.collection(indexes::SERVER_SETTINGS),
            meta: db.collection(indexes::META),
            key_rings: db.collection(indexes::KEY_RINGS),
        }
    }
}

/// The MongoDB store. Cheap to clone (the driver's client is a pool handle).
#[derive(Debug, Clone)]
pub struct MongoStore {
    db: Database,
    c: Collections,
    options: MongoOptions,
    /// The server accepted a text index on message tokens (MongoDB does, FerretDB does not).
    text_index: bool,
    /// This process's per-chat writer queues (shared by clones).
    locks: Arc<locks::ChatLocks>,
    /// Group commit of appends, with the heads and accounts it remembers (shared by clones).
    appends: Arc<appends::Appends>,
    /// Whether user content is sealed before it is stored (see `sealing`).
    fields: sealing::Fields,
}

impl MongoStore {
    /// Connects to `uri` (any MongoDB connection string, e.g. with `replicaSet=`), checks the
    /// server answers, and creates the collections' indexes (idempotent).
    pub async fn connect(uri: &str, options: MongoOptions) -> StoreResult<Self> {
        let mut client_options = ClientOptions::parse(uri)
            .await
            .map_err(|e| StoreError::Internal(format!("invalid mongodb uri: {e}")))?;
        apply_options(&mut client_options, &options);
        let database = client_options
            .default_database
            .clone()
            .unwrap_or_else(|| options.database.clone());
        let client = Client::with_options(client_options).map_err(error::map)?;
        let db = client.database(&database);
        let c = Collections::new(&db);
        let mut store = Self {
            db,
            c,
            options,
            text_index: false,
            locks: Arc::default(),
            appends: Arc::default(),
            fields: sealing::Fields::default(),
        };
        store
            .deadline(async {
                store.ping_db().await?;
                let status = store.bring_up_to_date(true).await?;
                // Creating a new database is not news; upgrading or repairing one is.
                let changed = !status.applied.is_empty() || !status.indexes_created.is_empty();
                if status.version_before > 0 && changed {
                    tracing::info!(
                        version_before = status.version_before,
                        applied = ?status.applied,
                        indexes_created = ?status.indexes_created,
                        "mongodb schema brought up to date"
                    );
                }
                Ok(())
            })
            .await?;
        store.text_index = store.deadline(indexes::try_text_index(&store.db)).await?;
        Ok(store)
    }

    /// The database handle, for what lives beside the store in the same database (the GridFS
    /// file bucket).
    pub fn database(&self) -> Database {
        self.db.clone()
    }

    /// True when search can use the server's text index (false on FerretDB).
    #[cfg(test)]
    pub fn has_text_index(&self) -> bool {
        self.text_index
    }

    /// Runs one store call under [`MongoOptions::operation_timeout`].
    async fn deadline<T>(&self, call: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        match tokio::time::timeout(self.options.operation_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "mongodb did not answer within {} ms",
                self.options.operation_timeout.as_millis()
            ))),
        }
    }

    /// Runs several idempotent update statements on `collection`, [`UPDATE_STATEMENTS`] per
    /// `update` command, with the client's write concern. A statement that fails on a duplicate
    /// key (an upsert of something already there) counts as done; any other failure fails the
    /// call. A server that stops at the first failed statement (FerretDB does, whatever
    /// `ordered` says) is sent the rest again.
    async fn update_statements(&self, collection: &str, updates: Vec<Document>) -> StoreResult<()> {
        for chunk in updates.chunks(UPDATE_STATEMENTS) {
            self.update_chunk(collection, chunk).await?;
        }
        Ok(())
    }

    /// One `update` command of [`update_statements`](Self::update_statements).
    async fn update_chunk(&self, collection: &str, updates: &[Document]) -> StoreResult<()> {
        let mut start = 0;
        while start < updates.len() {
            let rest = updates.get(start..).unwrap_or_default().to_vec();
            let command = doc! { "update": collection, "updates": rest, "ordered": false };
            let reply = self.write_command(command).await?;
            let Ok(errors) = reply.get_array("writeErrors") else {
                return Ok(());
            };
            let mut first_failed = None;
            for failure in errors.iter().filter_map(|e| e.as_document()) {
                let code = failure.get_i32("code").unwrap_or(0);
                if !error::is_duplicate_code(code) {
                    return Err(StoreError::Internal(format!(
                        "mongodb: update of {collection} failed: {failure}"
                    )));
                }
                let index = usize::try_from(failure.get_i32("index").unwrap_or(0)).unwrap_or(0);
                first_failed = Some(first_failed.map_or(index, |f: usize| f.min(index)));
            }
            match first_failed {
                Some(index) => start += index + 1,
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// Runs a write command with the client's write concern (a command run by name does not
    /// get it from the client).
    async fn write_command(&self, mut command: Document) -> StoreResult<Document> {
        if let Some(concern) = self.db.write_concern() {
            let concern = mongodb::bson::to_bson(concern)
                .map_err(|e| StoreError::Internal(format!("write concern: {e}")))?;
            command.insert("writeConcern", concern);
        }
        self.db.run_command(command).await.map_err(error::map)
    }

    async fn ping_db(&self) -> StoreResult<()> {
        self.db
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(error::map)?;
        Ok(())
    }
}

/// The `_id` of every document of `collection` matching `filter` (only the ids are sent back).
async fn ids_matching<T: Send + Sync>(
    collection: &Collection<T>,
    filter: Document,
) -> StoreResult<Vec<mongodb::bson::Bson>> {
    let found: Vec<Document> = collection
        .clone_with_type::<Document>()
        .find(filter)
        .projection(doc! { "_id": 1 })
        .await
        .map_err(error::map)?
        .try_collect()
        .await
        .map_err(error::map)?;
    Ok(found
        .into_iter()
        .filter_map(|mut d| d.remove("_id"))
        .collect())
}

/// Every document of `collection` matching `filter`, in `sort` order when one is given.
async fn find_all<T>(
    collection: &Collection<T>,
    filter: Document,
    sort: Option<Document>,
) -> StoreResult<Vec<T>>
where
    T: DeserializeOwned + Send + Sync,
{
    let mut find = collection.find(filter);
    if let Some(sort) = sort {
        find = find.sort(sort);
    }
    find.await
        .map_err(error::map)?
        .try_collect()
        .await
        .map_err(error::map)
}

#[async_trait]
impl Store for MongoStore {
    fn backend(&self) -> &'static str {
        "mongodb"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.deadline(self.ping_db()).await
    }

    async fn backup(&self, _to: &std::path::Path) -> StoreResult<()> {
        Err(StoreError::Unsupported(
            "admin_backup copies the embedded database only: back up a MongoDB database with \
             mongodump",
        ))
    }

    async fn schema_status(&self) -> StoreResult<SchemaStatus> {
        self.schema_now(self.schema_version().await?, Vec::new(), Vec::new())
            .await
    }

    async fn migrate(&self) -> StoreResult<SchemaStatus> {
        self.bring_up_to_date(true).await
    }

    async fn ensure_indexes(&self) -> StoreResult<SchemaStatus> {
        self.bring_up_to_date(false).await
    }
}
