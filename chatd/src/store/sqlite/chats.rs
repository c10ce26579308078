//! Chats and membership changes: the writing half of [`ChatStore`](crate::store::ChatStore)
//! (the per-user lists are in `chat_lists`).
//!
//! A membership row is never deleted: leaving, removal and chat deletion set `left_at_seq`, and
//! joining again resets it. Each membership row has a `user_chat_state` row created with it.
//! `chats.member_count` counts the rows with `left_at_seq IS NULL` and is kept in step by every
//! change here.

use chatproto::pb;
use chatproto::pb::chat_event::Body;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::convert::{count_u32, get_enum, get_opt_u64, get_u64, json_ids, sql_u64};
use super::events;
use super::users::ensure_user;
use crate::store::{Actor, ConflictKind};
use crate::store::{
    ChatPatch, ChatRecord, MemberRecord, NewGroup, StoreError, StoreResult, UserChatPatch,
    UserChatState,
};

/// The columns [`chat_from_row`] reads, from `chats` aliased as `c` ([`CHAT_WIDTH`] columns).
pub(super) const CHAT_COLUMNS: &str = "c.id, c.kind, c.title, c.description, c.avatar_file_id, \
     c.owner_id, c.created_at_ms, c.last_seq, c.last_activity_ms, c.member_count, \
     c.members_seq";

/// How many columns [`CHAT_COLUMNS`] has.
pub(super) const CHAT_WIDTH: usize = 11;

/// Reads [`CHAT_COLUMNS`] starting at column `at`.
pub(super) fn chat_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<ChatRecord> {
    Ok(ChatRecord {
        id: get_u64(row, at)?,
        kind: get_enum(row, at + 1)?,
        title: row.get(at + 2)?,
        description: row.get(at + 3)?,
        avatar_file_id: row.get(at + 4)?,
        owner_id: get_u64(row, at + 5)?,
        created_at_ms: row.get(at + 6)?,
        last_seq: get_u64(row, at + 7)?,
        last_activity_ms: row.get(at + 8)?,
        member_count: count_u32(row.get(at + 9)?),
        members_seq: get_u64(row, at + 10)?,
    })
}

/// The columns [`member_from_row`] reads, from `members` aliased as `m` ([`MEMBER_WIDTH`]
/// columns).
pub(super) const MEMBER_COLUMNS: &str =
    "m.chat_id, m.user_id, m.role, m.joined_at_ms, m.joined_at_seq, m.left_at_seq";

/// How many columns [`MEMBER_COLUMNS`] has.
pub(super) const MEMBER_WIDTH: usize = 6;

/// Reads [`MEMBER_COLUMNS`] starting at column `at`.
pub(super) fn member_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<MemberRecord> {
    Ok(MemberRecord {
        chat_id: get_u64(row, at)?,
        user_id: get_u64(row, at + 1)?,
        role: get_enum(row, at + 2)?,
        joined_at_ms: row.get(at + 3)?,
        joined_at_seq: get_u64(row, at + 4)?,
        left_at_seq: get_opt_u64(row, at + 5)?,
    })
}

/// The columns [`state_from_row`] reads, from `user_chat_state` aliased as `s` (6 columns).
pub(super) const STATE_COLUMNS: &str =
    "s.pinned, s.muted_until_ms, s.archived, s.delivered_seq, s.read_seq, s.mentions_only";

/// Reads [`STATE_COLUMNS`] starting at column `at`.
pub(super) fn state_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<UserChatState> {
    Ok(UserChatState {
        pinned: row.get(at)?,
        muted_until_ms: row.get(at + 1)?,
        archived: row.get(at + 2)?,
        delivered_seq: get_u64(row, at + 3)?,
        read_seq: get_u64(row, at + 4)?,
        mentions_only: row.get(at + 5)?,
    })
}

/// A chat that was not deleted.
pub(super) fn chat(c: &Connection, id: u64) -> StoreResult<Option<ChatRecord>> {
    let sql = format!("SELECT {CHAT_COLUMNS} FROM chats c WHERE c.id = ?1 AND c.deleted = 0");
    Ok(c.prepare_cached(&sql)?
        .query_row([sql_u64(id)], |row| chat_from_row(row, 0))
        .optional()?)
}

/// The chat, or `NotFound("chat")` when it does not exist or was deleted.
pub(super) fn live_chat(c: &Connection, id: u64) -> StoreResult<ChatRecord> {
    chat(c, id)?.ok_or(StoreError::NotFound("chat"))
}

/// One membership row, current or former.
pub(super) fn member(
    c: &Connection,
    chat_id: u64,
    user_id: u64,
) -> StoreResult<Option<MemberRecord>> {
    let sql =
        format!("SELECT {MEMBER_COLUMNS} FROM members m WHERE m.chat_id = ?1 AND m.user_id = ?2");
    Ok(c.prepare_cached(&sql)?
        .query_row(params![sql_u64(chat_id), sql_u64(user_id)], |row| {
            member_from_row(row, 0)
        })
        .optional()?)
}

/// The membership rows and own states of those of `user_ids` who are or were members.
pub(super) fn member_states(
    c: &Connection,
    chat_id: u64,
    user_ids: &[u64],
) -> StoreResult<Vec<(MemberRecord, UserChatState)>> {
    let sql = format!(
        "SELECT {MEMBER_COLUMNS}, {STATE_COLUMNS} FROM members m \
         JOIN user_chat_state s ON s.chat_id = m.chat_id AND s.user_id = m.user_id \
         WHERE m.chat_id = ?1 AND m.user_id IN (SELECT value FROM json_each(?2)) \
         ORDER BY m.user_id"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![sql_u64(chat_id), json_ids(user_ids)], |row| {
        Ok((member_from_row(row, 0)?, state_from_row(row, MEMBER_WIDTH)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A current membership, or `NotFound("member")`.
fn current_member(c: &Connection, chat_id: u64, user_id: u64) -> StoreResult<MemberRecord> {
    member(c, chat_id, user_id)?
        .filter(|m| m.left_at_seq.is_none())
        .ok_or(StoreError::NotFound("member"))
}

pub(super) fn members(c: &Connection, chat_id: u64) -> StoreResult<Vec<MemberRecord>> {
    let sql = format!(
        "SELECT {MEMBER_COLUMNS} FROM members m \
         WHERE m.chat_id = ?1 AND m.left_at_seq IS NULL ORDER BY m.user_id"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([sql_u64(chat_id)], |row| member_from_row(row, 0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Makes `user_id` a current member (a new row, or a former member's row renewed) and counts it.
fn join(
    c: &Connection,
    chat_id: u64,
    user_id: u64,
    role: pb::MemberRole,
    now_ms: i64,
    seq: u64,
) -> StoreResult<pb::Member> {
    c.prepare_cached(
        "INSERT INTO members (chat_id, user_id, role, joined_at_ms, joined_at_seq) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (chat_id, user_id) DO UPDATE SET role = excluded.role, \
             joined_at_ms = excluded.joined_at_ms, joined_at_seq = excluded.joined_at_seq, \
             left_at_seq = NULL",
    )?
    .execute(params![
        sql_u64(chat_id),
        sql_u64(user_id),
        role as i32,
        now_ms,
        sql_u64(seq)
    ])?;
    c.prepare_cached("INSERT OR IGNORE INTO user_chat_state (chat_id, user_id) VALUES (?1, ?2)")?
        .execute(params![sql_u64(chat_id), sql_u64(user_id)])?;
    c.prepare_cached("UPDATE chats SET member_count = member_count + 1 WHERE id = ?1")?
        .execute([sql_u64(chat_id)])?;
    Ok(pb::Member {
        user_id,
        role: role as i32,
        joined_at_ms: now_ms,
    })
}

/// Turns a current member into a former one whose readable range ends at `seq`.
fn leave(c: &Connection, chat_id: u64, user_id: u64, seq: u64) -> StoreResult<()> {
    c.prepare_cached(
        "UPDATE members SET left_at_seq = ?3 \
         WHERE chat_id = ?1 AND user_id = ?2 AND left_at_seq IS NULL",
    )?
    .execute(params![sql_u64(chat_id), sql_u64(user_id), sql_u64(seq)])?;
    c.prepare_cached("UPDATE chats SET member_count = member_count - 1 WHERE id = ?1")?
        .execute([sql_u64(chat_id)])?;
    Ok(())
}

fn set_role(c: &Connection, chat_id: u64, user_id: u64, role: pb::MemberRole) -> StoreResult<()> {
    c.prepare_cached("UPDATE members SET role = ?3 WHERE chat_id = ?1 AND user_id = ?2")?
        .execute(params![sql_u64(chat_id), sql_u64(user_id), role as i32])?;
    Ok(())
}

/// The wire form of a chat with its member list (for `chat_created`).
fn chat_snapshot(record: &ChatRecord, members: Vec<pb::Member>) -> pb::Chat {
    pb::Chat {
        id: record.id,
        kind: record.kind as i32,
        title: record.title.clone(),
        description: record.description.clone(),
        avatar_file_id: record.avatar_file_id.clone(),
        owner_id: record.owner_id,
        created_at_ms: record.created_at_ms,
        last_seq: record.last_seq,
        last_activity_ms: record.last_activity_ms,
        last_message: None,
        member_count: record.member_count,
        members,
        state: None,
    }
}

/// Inserts the chats row of a new chat (seq 0, no members yet) and returns its id.
fn insert_chat(
    c: &Connection,
    kind: pb::ChatKind,
    title: &str,
    description: &str,
    owner_id: u64,
    now_ms: i64,
) -> StoreResult<u64> {
    Ok(c.prepare_cached(
        "INSERT INTO chats (kind, title, description, owner_id, created_at_ms, last_activity_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING id",
    )?
    .query_row(
        params![kind as i32, title, description, sql_u64(owner_id), now_ms],
        |row| get_u64(row, 0),
    )?)
}

/// Appends `chat_created` (seq 1) with the chat as it is after its first members joined.
fn created_event(
    c: &Connection,
    chat_id: u64,
    actor: u64,
    seq: u64,
    now_ms: i64,
    members: Vec<pb::Member>,
) -> StoreResult<(ChatRecord, pb::ChatEvent)> {
    let mut record = live_chat(c, chat_id)?;
    let event = pb::ChatEvent {
        chat_id,
        seq,
        at_ms: now_ms,
        actor_id: actor,
        body: Some(Body::ChatCreated(chat_snapshot(&record, members))),
    };
    events::insert(c, &event)?;
    // The creation is the chat's first membership change.
    record.members_seq = seq;
    Ok((record, event))
}

pub(super) fn open_private_chat(
    c: &Connection,
    a: u64,
    b: u64,
    now_ms: i64,
) -> StoreResult<(ChatRecord, bool)> {
    if a == b {
        return Err(StoreError::Conflict(ConflictKind::PrivateChatWithSelf));
    }
    ensure_user(c, a)?;
    ensure_user(c, b)?;
    let (low, high) = (a.min(b), a.max(b));
    let existing: Option<u64> = c
        .prepare_cached(
            "SELECT chat_id FROM private_pairs WHERE low_user_id = ?1 AND high_user_id = ?2",
        )?
        .query_row(params![sql_u64(low), sql_u64(high)], |row| get_u64(row, 0))
        .optional()?;
    if let Some(chat_id) = existing {
        return Ok((live_chat(c, chat_id)?, false));
    }
    let chat_id = insert_chat(c, pb::ChatKind::Private, "", "", 0, now_ms)?;
    c.prepare_cached(
        "INSERT INTO private_pairs (low_user_id, high_user_id, chat_id) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![sql_u64(low), sql_u64(high), sql_u64(chat_id)])?;
    let seq = events::next_seq(c, chat_id, now_ms)?;
    let members = vec![
        join(c, chat_id, low, pb::MemberRole::Member, now_ms, seq)?,
        join(c, chat_id, high, pb::MemberRole::Member, now_ms, seq)?,
    ];
    let (record, _) = created_event(c, chat_id, a, seq, now_ms, members)?;
    Ok((record, true))
}

pub(super) fn create_group(
    c: &Connection,
    new: &NewGroup,
) -> StoreResult<(ChatRecord, pb::ChatEvent)> {
    if !matches!(new.kind, pb::ChatKind::Group | pb::ChatKind::Channel) {
        return Err(StoreError::Conflict(ConflictKind::NotAGroupKind));
    }
    ensure_user(c, new.owner)?;
    let mut others: Vec<u64> = Vec::with_capacity(new.member_ids.len());
    for &id in &new.member_ids {
        if id != new.owner && !others.contains(&id) {
            ensure_user(c, id)?;
            others.push(id);
        }
    }
    let chat_id = insert_chat(
        c,
        new.kind,
        &new.title,
        &new.description,
        new.owner,
        new.now_ms,
    )?;
    let seq = events::next_seq(c, chat_id, new.now_ms)?;
    let mut members = Vec::with_capacity(others.len() + 1);
    members.push(join(
        c,
        chat_id,
        new.owner,
        pb::MemberRole::Owner,
        new.now_ms,
        seq,
    )?);
    for id in others {
        members.push(join(
            c,
            chat_id,
            id,
            pb::MemberRole::Member,
            new.now_ms,
            seq,
        )?);
    }
    created_event(c, chat_id, new.owner, seq, new.now_ms, members)
}

pub(super) fn update_chat(
    c: &Connection,
    id: u64,
    actor: u64,
    patch: &ChatPatch,
    now_ms: i64,
) -> StoreResult<(ChatRecord, pb::ChatEvent)> {
    live_chat(c, id)?;
    c.prepare_cached(
        "UPDATE chats SET title = coalesce(?2, title), description = coalesce(?3, description), \
             avatar_file_id = coalesce(?4, avatar_file_id) \
         WHERE id = ?1",
    )?
    .execute(params![
        sql_u64(id),
        patch.title,
        patch.description,
        patch.avatar_file_id
    ])?;
    let updated = live_chat(c, id)?;
    let event = events::append(
        c,
        id,
        actor,
        now_ms,
        Body::ChatUpdated(pb::ChatUpdated {
            title: updated.title,
            description: updated.description,
            avatar_file_id: updated.avatar_file_id,
        }),
    )?;
    Ok((live_chat(c, id)?, event))
}

pub(super) fn delete_chat(
    c: &Connection,
    id: u64,
    actor: Actor,
    now_ms: i64,
) -> StoreResult<pb::ChatEvent> {
    live_chat(c, id)?;
    events::ensure_members_unchanged(c, id, actor.members_seq)?;
    let body = Body::ChatDeleted(pb::ChatDeleted {});
    let event = events::append(c, id, actor.user_id, now_ms, body)?;
    c.prepare_cached(
        "UPDATE members SET left_at_seq = ?2 WHERE chat_id = ?1 AND left_at_seq IS NULL",
    )?
    .execute(params![sql_u64(id), sql_u64(event.seq)])?;
    c.prepare_cached("UPDATE chats SET deleted = 1, member_count = 0 WHERE id = ?1")?
        .execute([sql_u64(id)])?;
    // The pair may open a new private chat later.
    c.prepare_cached("DELETE FROM private_pairs WHERE chat_id = ?1")?
        .execute([sql_u64(id)])?;
    Ok(event)
}

pub(super) fn record_call(
    c: &Connection,
    chat_id: u64,
    actor: u64,
    call: pb::CallEnded,
    now_ms: i64,
) -> StoreResult<pb::ChatEvent> {
    live_chat(c, chat_id)?;
    events::append(c, chat_id, actor, now_ms, Body::CallEnded(call))
}

pub(super) fn add_members(
    c: &Connection,
    chat_id: u64,
    actor: u64,
    user_ids: &[u64],
    max_members: u32,
    now_ms: i64,
) -> StoreResult<pb::ChatEvent> {
    let chat = live_chat(c, chat_id)?;
    if chat.kind == pb::ChatKind::Private {
        return Err(StoreError::Conflict(ConflictKind::PrivateChatMembers));
    }
    let mut joining: Vec<u64> = Vec::with_capacity(user_ids.len());
    for &id in user_ids {
        if joining.contains(&id) {
            continue;
        }
        ensure_user(c, id)?;
        let is_member = member(c, chat_id, id)?.is_some_and(|m| m.left_at_seq.is_none());
        if !is_member {
            joining.push(id);
        }
    }
    if joining.is_empty() {
        return Err(StoreError::Conflict(ConflictKind::AlreadyMembers));
    }
    if u64::from(chat.member_count) + joining.len() as u64 > u64::from(max_members) {
        return Err(StoreError::Conflict(ConflictKind::ChatFull { max_members }));
    }
    let seq = events::next_seq(c, chat_id, now_ms)?;
    let mut added = Vec::with_capacity(joining.len());
    for id in joining {
        added.push(join(c, chat_id, id, pb::MemberRole::Member, now_ms, seq)?);
    }
    let event = pb::ChatEvent {
        chat_id,
        seq,
        at_ms: now_ms,
        actor_id: actor,
        body: Some(Body::MembersAdded(pb::MembersAdded { members: added })),
    };
    events::insert(c, &event)?;
    Ok(event)
}

pub(super) fn remove_member(
    c: &Connection,
    chat_id: u64,
    actor: u64,
    user_id: u64,
    left: bool,
    now_ms: i64,
) -> StoreResult<pb::ChatEvent> {
    live_chat(c, chat_id)?;
    let current = current_member(c, chat_id, user_id)?;
    if current.role == pb::MemberRole::Owner {
        return Err(StoreError::Conflict(ConflictKind::OwnerMustTransfer));
    }
    let event = events::append(
        c,
        chat_id,
        actor,
        now_ms,
        Body::MemberRemoved(pb::MemberRemoved { user_id, left }),
    )?;
    leave(c, chat_id, user_id, event.seq)?;
    Ok(event)
}

pub(super) fn set_member_role(
    c: &Connection,
    chat_id: u64,
    actor: u64,
    user_id: u64,
    role: pb::MemberRole,
    now_ms: i64,
) -> StoreResult<pb::ChatEvent> {
    let chat = live_chat(c, chat_id)?;
    if chat.kind == pb::ChatKind::Private {
        return Err(StoreError::Conflict(ConflictKind::PrivateChatRoles));
    }
    if !matches!(role, pb::MemberRole::Member | pb::MemberRole::Admin) {
        return Err(StoreError::Conflict(ConflictKind::InvalidRole));
    }
    let current = current_member(c, chat_id, user_id)?;
    if current.role == pb::MemberRole::Owner {
        return Err(StoreError::Conflict(ConflictKind::OwnerRole));
    }
    if current.role == role {
        return Err(StoreError::Conflict(ConflictKind::SameRole));
    }
    let event = events::append(
        c,
        chat_id,
        actor,
        now_ms,
        Body::MemberRoleChanged(pb::MemberRoleChanged {
            user_id,
            role: role as i32,
        }),
    )?;
    set_role(c, chat_id, user_id, role)?;
    Ok(event)
}

pub(super) fn transfer_ownership(
    c: &Connection,
    chat_id: u64,
    actor: u64,
    from: u64,
    new_owner: u64,
    now_ms: i64,
) -> StoreResult<Vec<pb::ChatEvent>> {
    let chat = live_chat(c, chat_id)?;
    if chat.kind == pb::ChatKind::Private {
        return Err(StoreError::Conflict(ConflictKind::PrivateChatOwner));
    }
    if chat.owner_id != from {
        return Err(StoreError::Conflict(ConflictKind::NotOwner));
    }
    let target = current_member(c, chat_id, new_owner)?;
    if target.role == pb::MemberRole::Owner {
        return Err(StoreError::Conflict(ConflictKind::AlreadyOwner));
    }
    let mut changes = Vec::with_capacity(2);
    changes.push((new_owner, pb::MemberRole::Owner));
    // The owner cannot leave, so the old owner is a current member; checked all the same.
    if current_member(c, chat_id, chat.owner_id).is_ok() {
        changes.push((chat.owner_id, pb::MemberRole::Admin));
    }
    let mut out = Vec::with_capacity(changes.len());
    for (user_id, role) in changes {
        out.push(events::append(
            c,
            chat_id,
            actor,
            now_ms,
            Body::MemberRoleChanged(pb::MemberRoleChanged {
                user_id,
                role: role as i32,
            }),
        )?);
        set_role(c, chat_id, user_id, role)?;
    }
    c.prepare_cached("UPDATE chats SET owner_id = ?2 WHERE id = ?1")?
        .execute(params![sql_u64(chat_id), sql_u64(new_owner)])?;
    Ok(out)
}

pub(super) fn set_user_state(
    c: &Connection,
    chat_id: u64,
    user_id: u64,
    patch: &UserChatPatch,
) -> StoreResult<UserChatState> {
    c.prepare_cached(
        "UPDATE user_chat_state SET pinned = coalesce(?3, pinned), \
             muted_until_ms = coalesce(?4, muted_until_ms), archived = coalesce(?5, archived), \
             mentions_only = coalesce(?6, mentions_only) \
         WHERE chat_id = ?1 AND user_id = ?2 \
         RETURNING pinned, muted_until_ms, archived, delivered_seq, read_seq, mentions_only",
    )?
    .query_row(
        params![
            sql_u64(chat_id),
            sql_u64(user_id),
            patch.pinned,
            patch.muted_until_ms,
            patch.archived,
            patch.mentions_only
        ],
        |row| state_from_row(row, 0),
    )
    .optional()?
    .ok_or(StoreError::NotFound("member"))
}
