//! The backend-agnostic conformance suite: every behaviour the storage traits promise, written
//! against the traits only, so every backend passes exactly the same cases, and so do the
//! wrappers handlers use (`GuardedStore` here, `CachedStore` over a real Redis in the `tests`
//! crate's cluster suite, which turns on the `conformance` feature to reach this module).
//!
//! A backend runs it with
//!
//! ```ignore
//! store_conformance!(sqlite, async {
//!     let dir = tempfile::tempdir().expect("temp dir");
//!     (SqliteStore::open(dir.path().join("chat.db")).expect("open"), dir)
//! });
//! ```
//!
//! which expands to a module `sqlite` with one `#[tokio::test]` per case, named after the case.
//! The expression yields `(store, guard)`: a fresh, empty store and whatever must live as long
//! as it (a temporary directory, a database process).
//!
//! # Layout
//! - `accounts`: users (and keeping the last admin), sessions, contacts and blocks.
//! - `chats`: chat lifecycle, membership and per-user state.
//! - `chat_lists`: chat lists, sync heads and shared peers.
//! - `messages`: messages, the log, reactions, receipts.
//! - `judged_sends`: writes under the membership they were judged on.
//! - `search`: full-text search.
//! - `files`: uploads and files.
//! - `overview`: the reads of server admins.
//! - `audit`: the admin audit log.
//! - `notifications`: the notification center and its preferences.
//! - `outbox`: deliveries, their claims, retries and dead letters.
//! - `two_factor`: two-factor login.
//! - `recovery`: email verification and password reset codes.
//! - `access`: who may connect (access rules, allow-list mode), and the schema calls.
//! - `keys`: the server's key rings.

mod access;
mod accounts;
mod audit;
mod chat_lists;
mod chats;
mod files;
mod judged_sends;
mod keys;
mod messages;
mod notifications;
mod outbox;
mod overview;
mod recovery;
mod search;
mod sessions;
mod two_factor;

pub use access::*;
pub use accounts::*;
pub use audit::*;
pub use chat_lists::*;
pub use chats::*;
pub use files::*;
pub use judged_sends::*;
pub use keys::*;
pub use messages::*;
pub use notifications::*;
pub use outbox::*;
pub use overview::*;
pub use recovery::*;
pub use search::*;
pub use sessions::*;
pub use two_factor::*;

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};

use chatproto::pb;
use chatproto::pb::chat_event::Body;

use super::*;

/// Expands to one test per conformance case for the store built by `$make`.
#[macro_export]
macro_rules! store_conformance {
    ($backend:ident, $make:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $crate::store_conformance!(@shared $make);
            $crate::store_conformance!(@cases $make;
                search_words_and_prefix,
                search_scope_and_visibility,
                search_query_syntax_is_harmless,
                search_paging,
            );
        }
    };
    // A store whose message texts are sealed (MongoDB with a master key): search is refused.
    (sealed: $backend:ident, $make:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $crate::store_conformance!(@shared $make);
            $crate::store_conformance!(@cases $make; search_refused_when_sealed);
        }
    };
    (@shared $make:expr) => {
        $crate::store_conformance!(@cases $make;
                users_create_and_read,
                users_username_conflict_ignores_case,
                users_deleted_username_stays_reserved,
                users_profile_and_flags,
                users_last_admin_race,
                users_admins_removing_each_other,
                users_search_and_list,
                sessions_create_list_touch,
                sessions_read_with_their_user,
                sessions_refresh_rotation,
                sessions_need_the_checked_credentials,
                sessions_refresh_owner,
                sessions_refresh_reuse_revokes_family,
                sessions_refresh_expired,
                sessions_revoke_one,
                sessions_revoke_all_except_keep,
                sessions_delete_dead,
                sessions_swept_once_by_sweeps_at_once,
                relations_contacts,
                relations_blocks,
                chats_private_is_unique,
                chats_private_concurrent_opens,
                chats_private_reopen_after_delete,
                chats_group_creation,
                chats_update,
                chats_delete,
                chats_record_call,
                chats_add_members,
                chats_remove_and_leave,
                chats_roles_and_ownership,
                chats_user_state,
                chats_member_states,
                lists_user_chats_order_pins_archive_paging,
                lists_unread_and_last_message,
                lists_unread_starts_at_joining,
                lists_former_member_view,
                lists_heads,
                lists_shared_chat_peers,
                messages_append_and_read,
                messages_seq_concurrent_senders,
                messages_idempotent_append,
                messages_idempotent_append_concurrent,
                messages_edit_history,
                messages_edit_history_keeps_the_newest,
                messages_delete_purges_content,
                messages_hide_for_one_user,
                messages_reactions,
                messages_history_paging,
                messages_events_range,
                messages_receipts,
                messages_appended_under_the_judged_membership,
                messages_judged_sends_racing_a_removal,
                messages_changed_under_the_judged_membership,
                chats_managed_under_the_judged_membership,
                files_upload_resume_and_complete,
                files_upload_fail_once,
                files_stale_uploads,
                files_shares_and_references,
                files_delete_with_thumbnails_and_shared_content,
                overview_chats_filters_and_paging,
                overview_sent_messages,
                overview_counts,
                audit_append_filter_and_page,
                audit_concurrent_appends,
                notifications_append_list_and_page,
                notifications_mark_read_and_clear,
                notifications_retention,
                notifications_broadcast,
                notifications_prefs,
                notifications_append_batch,
                notifications_prefs_of_many,
                outbox_queue_claim_and_finish,
                outbox_retries_and_dead_letters,
                outbox_concurrent_claims,
                outbox_digest_marks,
                two_factor_stage_and_enable,
                recovery_addresses,
                recovery_codes_single_use_expiry_and_attempts,
                recovery_concurrent_redemptions,
                recovery_concurrent_wrong_codes,
                two_factor_spend_replace_disable,
                two_factor_concurrent_spends,
                access_rules_put_list_replace_delete,
                access_rules_expire,
                access_allow_list_mode,
                schema_is_current_and_calls_are_idempotent,
                key_rings_versions_and_kinds,
                key_rings_concurrent_writes,
                store_ping,
                store_backup,
            );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = $make.await;
                $crate::testing::conformance::$case(store).await;
            }
        )*
    };
}
pub use store_conformance;

/// What a search finds, or `None` on a store that cannot search (message texts sealed, see
/// [`search_refused_when_sealed`]): cases that also check search skip that part there.
async fn searched<S: Store>(s: &S, query: SearchQuery) -> Option<Vec<pb::Message>> {
    match s.search(query).await {
        Ok(found) => Some(found),
        Err(StoreError::Unsupported(_)) => None,
        Err(e) => panic!("search: {e}"),
    }
}

/// A fixed clock origin; cases add offsets to order things in time.
const T0: i64 = 1_700_000_000_000;
/// "No upper bound" for seq ranges.
const MAX: u64 = u64::MAX;

/// The backend's ping works and it names itself.
pub async fn store_ping<S: Store + 'static>(s: S) {
    s.ping().await.expect("ping");
    assert!(!s.backend().is_empty());
}

/// A backup writes a copy at the path it is given, or, on a backend whose copies are made with
/// its own tools, is `Unsupported` (saying what to use) and writes nothing. What a copy holds is
/// the backend's own test (SQLite's opens it).
pub async fn store_backup<S: Store + 'static>(s: S) {
    user(&s, "a").await;
    let to = std::env::temp_dir().join(format!(
        "chatd-conformance-backup-{:016x}",
        rand::random::<u64>()
    ));
    match s.backup(&to).await {
        Ok(()) => {
            let len = std::fs::metadata(&to).expect("the copy").len();
            let _ = std::fs::remove_file(&to);
            assert!(len > 0, "an empty copy");
        }
        Err(StoreError::Unsupported(what)) => {
            assert!(!what.is_empty());
            assert!(!to.exists(), "an unsupported backup wrote {}", to.display());
        }
        Err(e) => panic!("backup: {e}"),
    }
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        username: name.to_string(),
        email: format!("{name}@example.com"),
        password_hash: format!("$argon2id$fake${name}"),
        role: pb::Role::User,
        now_ms: T0,
    }
}

/// `ids` in ascending order.
fn sorted(mut ids: Vec<u64>) -> Vec<u64> {
    ids.sort_unstable();
    ids
}

/// Creates a user and returns its id.
async fn user<S: Store>(s: &S, name: &str) -> u64 {
    s.create_user(new_user(name)).await.expect("create user").id
}

/// Creates a group owned by `owner` with `members` and returns its id.
async fn group<S: Store>(s: &S, owner: u64, members: &[u64]) -> u64 {
    let (chat, _) = s
        .create_group(NewGroup {
            kind: pb::ChatKind::Group,
            title: "group".into(),
            description: String::new(),
            owner,
            member_ids: members.to_vec(),
            now_ms: T0,
        })
        .await
        .expect("create group");
    chat.id
}

/// Opens the private chat of `a` and `b` and returns its id.
async fn private<S: Store>(s: &S, a: u64, b: u64) -> u64 {
    s.open_private_chat(a, b, T0)
        .await
        .expect("open private chat")
        .0
        .id
}

/// A text message with a fresh client_msg_id.
fn text_message(chat_id: u64, sender_id: u64, text: &str, now_ms: i64) -> NewMessage {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NewMessage {
        chat_id,
        sender_id,
        client_msg_id: format!("cmid-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
        kind: pb::MessageKind::Text,
        text: text.to_string(),
        file_id: String::new(),
        attachment: None,
        reply_to_seq: 0,
        forwarded_from: None,
        mention_ids: Vec::new(),
        now_ms,
        members_seq: None,
    }
}

/// Sends a text message and returns it; the send must append an event.
async fn send<S: Store>(
    s: &S,
    chat_id: u64,
    sender_id: u64,
    text: &str,
    now_ms: i64,
) -> pb::Message {
    let out = s
        .append_message(text_message(chat_id, sender_id, text, now_ms))
        .await
        .expect("append message");
    assert!(out.event.is_some(), "a new message appends an event");
    out.message
}

/// Every event of a chat.
async fn all_events<S: Store>(s: &S, chat_id: u64) -> Vec<pb::ChatEvent> {
    s.events(chat_id, 0, MAX, 10_000).await.expect("events")
}

/// The whole history as seen by `viewer`.
async fn full_history<S: Store>(s: &S, chat_id: u64, viewer: u64) -> Vec<pb::Message> {
    s.history(HistoryQuery {
        chat_id,
        viewer,
        before_seq: 0,
        after_seq: 0,
        up_to_seq: MAX,
        limit: 10_000,
    })
    .await
    .expect("history")
}

fn seqs(messages: &[pb::Message]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}

fn body(event: &pb::ChatEvent) -> &Body {
    event.body.as_ref().expect("event has a body")
}

/// Both backends must name the same rule.
#[track_caller]
fn assert_conflict<T: Debug>(result: StoreResult<T>, kind: ConflictKind) {
    match result {
        Err(StoreError::Conflict(got)) if got == kind => {}
        other => panic!("expected a conflict {kind:?}, got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: Debug>(result: StoreResult<T>, what: &str) {
    match result {
        Err(StoreError::NotFound(found)) if found == what => {}
        other => panic!("expected {what} not found, got {other:?}"),
    }
}
