//! The SQLite backend: one database file in WAL mode, one writer thread with group commit, and a
//! small pool of read-only connections.
//!
//! SQLite calls block, so almost none of them runs on the async runtime: writes are queued to the
//! writer thread (see `writer` for the group-commit design and what a reply guarantees) and reads
//! run on tokio's blocking pool, each in one snapshot transaction. The exception are the reads of a
//! few rows by key that every reconnect makes (session, user, a user's chat heads): they run on
//! the calling worker when a connection is idle, which costs less than the trip, and move to the
//! pool if they turn out long (a user in thousands of chats; `readers`).
//!
//! # Layout
//! - `writer`: the writer thread and its group-commit loop.
//! - `readers`: the pool of read-only connections.
//! - `migrations`: the versioned schema; `schema`: its version and indexes as the admin
//!   requests report and repair them.
//! - `convert`: value conversions and the mapping of SQLite errors onto [`StoreError`].
//! - `users`, `sessions`, `relations`, `chats`, `chat_lists`, `messages`, `events`, `search`,
//!   `files`: the SQL of each entity, as synchronous functions on a `rusqlite::Connection`;
//!   `users`, `sessions`, `relations` and `files` with their trait implementations.
//! - `backup`: consistent copies of the database while it is written (online backup).
//! - `cipher`: encryption at rest (the database key, opening a connection with it);
//!   `reencrypt`: encrypting a plain database and changing the key (`chatd db encrypt|rekey`);
//!   `rekey`: changing the key while the store serves (a master-key rotation).
//! - `overview`: the reads of server admins, `audit`: the admin audit log, and
//!   `notifications`: the notification center, `outbox`: emails and webhook calls on their way,
//!   `two_factor`: two-factor login, `recovery`: email verification and password reset, `access`: who may connect, and
//!   `keys`: the server's key rings, each with its trait
//!   implementation beside the SQL.
//! - this file: opening the database and the other trait implementations. Every trait method
//!   is a one-line hand-off to the writer or the readers.

mod access;
mod audit;
mod backup;
mod chat_lists;
mod chats;
mod checkpointer;
pub mod cipher;
mod convert;
mod events;
mod files;
mod keys;
mod messages;
mod migrations;
mod notifications;
mod outbox;
mod overview;
mod readers;
mod recovery;
pub mod reencrypt;
mod rekey;
mod relations;
mod schema;
mod search;
mod sessions;
mod two_factor;
mod users;
mod writer;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chatproto::pb;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use self::checkpointer::Checkpointer;
use self::cipher::{DatabaseKey, OpenError};
use self::readers::Readers;
use self::writer::Writer;
use super::*;

/// How much a committed write survives (`--durability`): an acknowledged write was committed,
/// and this says what the commit survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// `synchronous=NORMAL`: in WAL mode a committed transaction survives a crash of the process,
    /// but the last transactions may be lost on power loss or an OS crash. Cheapest.
    #[default]
    ProcessCrash,
    /// `synchronous=FULL`: the WAL is fsynced at every commit (once per group-commit batch), so a
    /// committed transaction also survives power loss.
    PowerLoss,
}

impl Durability {
    /// The `synchronous` setting that gives it, for every connection that writes.
    fn synchronous(self) -> &'static str {
        match self {
            Durability::ProcessCrash => "NORMAL",
            Durability::PowerLoss => "FULL",
        }
    }
}

/// Tuning of [`SqliteStore::open_with`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// What a committed write survives.
    pub durability: Durability,
    /// Read-only connections in the pool (at least 1).
    pub read_connections: usize,
    /// How long a connection waits for a lock held by another process before giving up.
    pub busy_timeout: Duration,
    /// Most write commands committed in one transaction.
    pub max_batch: usize,
    /// Write commands that may wait for the writer before senders wait for room.
    pub queue_capacity: usize,
    /// The encryption key of the database; `None`: a plain database.
    pub key: Option<DatabaseKey>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::default(),
            read_connections: 4,
            busy_timeout: Duration::from_secs(5),
            max_batch: 256,
            queue_capacity: 4096,
            key: None,
        }
    }
}

/// The SQLite store. Cheap to share behind an `Arc`; dropping the last handle stops the writer
/// thread after it has finished the queued writes, then the checkpointer thread.
pub struct SqliteStore {
    // Dropped before the checkpointer (fields drop in order): the writer's last commits may
    // still ask it for a round.
    writer: Writer,
    checkpointer: Checkpointer,
    readers: Arc<Readers>,
    /// The database file and its key, for the connections a backup opens of its own and those
    /// a rekey replaces.
    path: std::path::PathBuf,
    key: std::sync::RwLock<Option<DatabaseKey>>,
    /// Held by a backup for its whole copy, whose connections keep the key they opened with,
    /// and by a rekey: a rekey waits here for a running backup *before* it holds every read
    /// permit, so the reads go on meanwhile.
    key_in_use: tokio::sync::Mutex<()>,
    busy_timeout: Duration,
    durability: Durability,
}

/// Prepared statements each serving connection keeps: more than the store has distinct queries
/// (about 150), so none is compiled twice. With rusqlite's default of 16, a wave of connections
/// spent about 5% of chatd's CPU compiling the same statements again (BENCHMARKS.md).
const STATEMENT_CACHE: usize = 256;

/// What every serving connection (the writer and each reader) is set up with.
///
/// The query planner stability guarantee (QPSG) is on: otherwise SQLite marks a statement whose
/// plan looked at a bound value (since 3.54 that includes `col = ?` in most joins) to be compiled
/// again whenever that binding changes, and rusqlite clears the bindings of every statement it
/// puts back into its cache. Every join with a parameter was parsed and planned anew on each use:
/// ~9 % of chatd's CPU in a wave of reconnects (BENCHMARKS.md). No query here depends on a
/// value-specific plan: the store runs no ANALYZE and no `LIKE ?`.
fn configure_serving(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<()> {
    conn.busy_timeout(busy_timeout)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// Opens `count` read-only connections of the pool.
fn open_readers(
    path: &Path,
    key: Option<&DatabaseKey>,
    count: usize,
    busy_timeout: Duration,
) -> Result<Vec<Connection>, OpenError> {
    let mut reads = Vec::with_capacity(count);
    for _ in 0..count {
        let mut read = cipher::open(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            key,
        )?;
        configure_serving(&read, busy_timeout)?;
        readers::bound_inline_reads(&mut read)?;
        read.pragma_update(None, "query_only", true)?;
        reads.push(read);
    }
    Ok(reads)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with default options and brings its
    /// schema up to date.
    #[cfg(any(test, feature = "testing"))]
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens the database at `path` with the given options. Fails when the key does not fit the
    /// database ([`OpenError::Key`]), when the database's schema is newer than this code knows,
    /// or when WAL mode cannot be enabled.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, OpenError> {
        let path = path.as_ref();
        let key = options.key.as_ref();
        let mut write = cipher::open(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            key,
        )?;
        configure_serving(&write, options.busy_timeout)?;
        let mode: String = write.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "cannot enable wal mode on {} (journal mode is {mode})",
                path.display()
            ))
            .into());
        }
        write.pragma_update(None, "synchronous", options.durability.synchronous())?;
        write.pragma_update(None, "foreign_keys", true)?;
        // Overwrite freed pages where that costs no extra I/O: purged message text should not
        // linger in the file.
        write.pragma_update(None, "secure_delete", "FAST")?;
        let before = migrations::current_version(&write)?;
        let applied = migrations::migrate(&mut write)?;
        let created = schema::ensure_indexes(&write)?;
        // Creating a new database is not news; upgrading or repairing an existing one is.
        if before > 0 && (!applied.is_empty() || !created.is_empty()) {
            tracing::info!(
                version_before = before,
                ?applied,
                indexes_created = ?created,
                "sqlite schema brought up to date"
            );
        }

        let reads = open_readers(
            path,
            key,
            options.read_connections.max(1),
            options.busy_timeout,
        )?;
        let checkpoints = checkpointer::open(path, key, options.busy_timeout, options.durability)?;
        let checkpointer = Checkpointer::spawn(checkpoints, &mut write, checkpointer::LIMITS)?;
        Ok(SqliteStore {
            writer: Writer::spawn(write, options.max_batch, options.queue_capacity)?,
            checkpointer,
            readers: Arc::new(Readers::new(reads)),
            path: path.to_path_buf(),
            key: std::sync::RwLock::new(options.key),
            key_in_use: tokio::sync::Mutex::new(()),
            busy_timeout: options.busy_timeout,
            durability: options.durability,
        })
    }

    async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.writer.write(work).await
    }

    async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.readers.read(work).await
    }

    /// A read of a few rows by key: see [`Readers::read_point`].
    async fn read_point<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.readers.read_point(work).await
    }
}

#[async_trait]
impl ChatStore for SqliteStore {
    async fn open_private_chat(
        &self,
        a: u64,
        b: u64,
        now_ms: i64,
    ) -> StoreResult<(ChatRecord, bool)> {
        self.write(move |c| chats::open_private_chat(c, a, b, now_ms))
            .await
    }

    async fn create_group(&self, new: NewGroup) -> StoreResult<(ChatRecord, pb::ChatEvent)> {
        self.write(move |c| chats::create_group(c, &new)).await
    }

    async fn chat(&self, id: u64) -> StoreResult<Option<ChatRecord>> {
        self.read(move |c| chats::chat(c, id)).await
    }

    async fn update_chat(
        &self,
        id: u64,
        actor: Actor,
        patch: ChatPatch,
        now_ms: i64,
    ) -> StoreResult<(ChatRecord, pb::ChatEvent)> {
        self.write(move |c| {
            events::ensure_members_unchanged(c, id, actor.members_seq)?;
            chats::update_chat(c, id, actor.user_id, &patch, now_ms)
        })
        .await
    }

    async fn delete_chat(&self, id: u64, actor: Actor, now_ms: i64) -> StoreResult<pb::ChatEvent> {
        self.write(move |c| chats::delete_chat(c, id, actor, now_ms))
            .await
    }

    async fn record_call(
        &self,
        chat_id: u64,
        actor: u64,
        call: pb::CallEnded,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent> {
        self.write(move |c| chats::record_call(c, chat_id, actor, call, now_ms))
            .await
    }

    async fn members(&self, chat_id: u64) -> StoreResult<Vec<MemberRecord>> {
        self.read(move |c| chats::members(c, chat_id)).await
    }

    async fn member(&self, chat_id: u64, user_id: u64) -> StoreResult<Option<MemberRecord>> {
        self.read(move |c| chats::member(c, chat_id, user_id)).await
    }

    async fn member_states(
        &self,
        chat_id: u64,
        user_ids: &[u64],
    ) -> StoreResult<Vec<(MemberRecord, UserChatState)>> {
        let user_ids = user_ids.to_vec();
        self.read(move |c| chats::member_states(c, chat_id, &user_ids))
            .await
    }

    async fn add_members(
        &self,
        chat_id: u64,
        actor: Actor,
        user_ids: &[u64],
        max_members: u32,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent> {
        let user_ids = user_ids.to_vec();
        self.write(move |c| {
            events::ensure_members_unchanged(c, chat_id, actor.members_seq)?;
            let actor = actor.user_id;
            chats::add_members(c, chat_id, actor, &user_ids, max_members, now_ms)
        })
        .await
    }

    async fn remove_member(
        &self,
        chat_id: u64,
        actor: Actor,
        user_id: u64,
        left: bool,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent> {
        self.write(move |c| {
            events::ensure_members_unchanged(c, chat_id, actor.members_seq)?;
            chats::remove_member(c, chat_id, actor.user_id, user_id, left, now_ms)
        })
        .await
    }

    async fn set_member_role(
        &self,
        chat_id: u64,
        actor: Actor,
        user_id: u64,
        role: pb::MemberRole,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent> {
        self.write(move |c| {
            events::ensure_members_unchanged(c, chat_id, actor.members_seq)?;
            chats::set_member_role(c, chat_id, actor.user_id, user_id, role, now_ms)
        })
        .await
    }

    async fn transfer_ownership(
        &self,
        chat_id: u64,
        actor: u64,
        from: u64,
        new_owner: u64,
        now_ms: i64,
    ) -> StoreResult<Vec<pb::ChatEvent>> {
        self.write(move |c| chats::transfer_ownership(c, chat_id, actor, from, new_owner, now_ms))
            .await
    }

    async fn set_user_state(
        &self,
        chat_id: u64,
        user_id: u64,
        patch: UserChatPatch,
    ) -> StoreResult<UserChatState> {
        self.write(move |c| chats::set_user_state(c, chat_id, user_id, &patch))
            .await
    }

    async fn user_chats(&self, user_id: u64, query: UserChatsQuery) -> StoreResult<Vec<UserChat>> {
        self.read(move |c| chat_lists::user_chats(c, user_id, &query))
            .await
    }

    async fn user_chat(&self, chat_id: u64, user_id: u64) -> StoreResult<Option<UserChat>> {
        self.read(move |c| chat_lists::user_chat(c, chat_id, user_id))
            .await
    }

    async fn heads(&self, user_id: u64, known: &[u64]) -> StoreResult<Vec<pb::ChatHead>> {
        let known = known.to_vec();
        self.read(move |c| chat_lists::heads(c, user_id, &known))
            .await
    }

    async fn sync_state(
        &self,
        user_id: u64,
        known: &[u64],
    ) -> StoreResult<(Vec<pb::ChatHead>, u64)> {
        let known = known.to_vec();
        self.read_point(move |c| {
            Ok((
                chat_lists::heads(c, user_id, &known)?,
                notifications::unread(c, user_id)?,
            ))
        })
        .await
    }

    async fn shared_chat_peers(&self, user_id: u64) -> StoreResult<Vec<u64>> {
        self.read(move |c| chat_lists::shared_chat_peers(c, user_id))
            .await
    }
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn append_message(&self, new: NewMessage) -> StoreResult<SendOutcome> {
        self.write(move |c| messages::append_message(c, &new)).await
    }

    async fn message(&self, chat_id: u64, seq: u64) -> StoreResult<Option<pb::Message>> {
        self.read(move |c| messages::message(c, chat_id, seq)).await
    }

    async fn sent_message(
        &self,
        sender_id: u64,
        client_msg_id: &str,
    ) -> StoreResult<Option<pb::Message>> {
        let id = client_msg_id.to_string();
        self.read_point(move |c| messages::sent_message(c, sender_id, &id))
            .await
    }

    async fn edit_message(
        &self,
        chat_id: u64,
        seq: u64,
        actor: Actor,
        text: &str,
        now_ms: i64,
    ) -> StoreResult<(pb::Message, pb::ChatEvent)> {
        let text = text.to_string();
        self.write(move |c| messages::edit_message(c, chat_id, seq, actor, &text, now_ms))
            .await
    }

    async fn delete_message(
        &self,
        chat_id: u64,
        seq: u64,
        actor: Actor,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent> {
        self.write(move |c| messages::delete_message(c, chat_id, seq, actor, now_ms))
            .await
    }

    async fn hide_message(&self, chat_id: u64, seq: u64, user_id: u64) -> StoreResult<()> {
        self.write(move |c| messages::hide_message(c, chat_id, seq, user_id))
            .await
    }

    async fn set_reaction(
        &self,
        chat_id: u64,
        seq: u64,
        actor: Actor,
        emoji: &str,
        change: ReactionChange,
        now_ms: i64,
    ) -> StoreResult<(pb::Message, Option<pb::ChatEvent>)> {
        let emoji = emoji.to_string();
        self.write(move |c| messages::set_reaction(c, chat_id, seq, actor, &emoji, change, now_ms))
            .await
    }

    async fn history(&self, query: HistoryQuery) -> StoreResult<Vec<pb::Message>> {
        self.read(move |c| messages::history(c, &query)).await
    }

    async fn events(
        &self,
        chat_id: u64,
        after_seq: u64,
        up_to_seq: u64,
        limit: u32,
    ) -> StoreResult<Vec<pb::ChatEvent>> {
        self.read(move |c| events::read(c, chat_id, after_seq, up_to_seq, limit))
            .await
    }

    async fn edits(&self, chat_id: u64, seq: u64) -> StoreResult<Vec<pb::MessageEdit>> {
        self.read(move |c| messages::edits(c, chat_id, seq)).await
    }

    async fn mark_receipt(
        &self,
        chat_id: u64,
        user_id: u64,
        kind: pb::ReceiptKind,
        up_to_seq: u64,
    ) -> StoreResult<Option<(u64, u64)>> {
        self.write(move |c| messages::mark_receipt(c, chat_id, user_id, kind, up_to_seq))
            .await
    }

    async fn receipts(&self, chat_id: u64) -> StoreResult<Vec<pb::MemberReceipt>> {
        self.read(move |c| messages::receipts(c, chat_id)).await
    }

    async fn search(&self, query: SearchQuery) -> StoreResult<Vec<pb::Message>> {
        self.read(move |c| search::search(c, &query)).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        if !self.writer.is_running() {
            return Err(StoreError::Unavailable(
                "the sqlite writer has stopped".into(),
            ));
        }
        self.read(|c| {
            c.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    async fn backup(&self, to: &Path) -> StoreResult<()> {
        let (from, to, busy) = (self.path.clone(), to.to_path_buf(), self.busy_timeout);
        let _copying = self.key_in_use.lock().await;
        let key = self.key();
        tokio::task::spawn_blocking(move || backup::copy(&from, &to, key.as_ref(), busy))
            .await
            .map_err(|e| StoreError::Internal(format!("backup task failed: {e}")))?
    }

    async fn schema_status(&self) -> StoreResult<SchemaStatus> {
        self.read(schema::read_status).await
    }

    async fn migrate(&self) -> StoreResult<SchemaStatus> {
        self.write(schema::migrate).await
    }

    async fn ensure_indexes(&self) -> StoreResult<SchemaStatus> {
        self.write(schema::ensure).await
    }
}
