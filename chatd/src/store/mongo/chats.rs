//! Chats and membership: [`ChatStore`] (the per-user lists are in `chat_lists`).
//!
//! Every mutation plans against the chat's committed state and claims the next seq (see the module
//! docs of [`super`]); a plan that loses the race to another writer is simply made again. A membership document is never deleted: leaving, removal and chat deletion set
//! `left_at_seq`, joining again resets it and keeps the user's chat state. `member_count` on the
//! chat is set by each op's commit from the count it planned with.

use async_trait::async_trait;
use chatproto::pb;
use chatproto::pb::chat_event::Body;
use mongodb::bson::{Document, doc};
use mongodb::options::ReturnDocument;

use super::counters::Sequence;
use super::docs::{ChatDoc, MemberDoc, i, u};
use super::pending::{ChatChanges, Effect, Finished, PendingOp, number_events};
use super::{MongoStore, error, find_all};
use crate::store::ConflictKind;
use crate::store::{
    Actor, ChatPatch, ChatRecord, ChatStore, MemberRecord, NewGroup, NotificationStore, StoreError,
    StoreResult, UserChat, UserChatPatch, UserChatState, UserChatsQuery, ensure_members_unchanged,
};

impl ChatDoc {
    /// The chat as `op`, committed at `first_seq`, leaves it.
    pub(super) fn after(&self, op: &PendingOp, first_seq: i64) -> ChatDoc {
        let c = &op.commit;
        let mut next = self.clone();
        next.last_seq = first_seq + op.event_count() - 1;
        next.members_seq = op.members_seq(first_seq).unwrap_or(next.members_seq);
        next.last_activity_ms = self.last_activity_ms.max(op.at_ms);
        if let Some(title) = &c.title {
            next.title.clone_from(title);
        }
        if let Some(description) = &c.description {
            next.description.clone_from(description);
        }
        if let Some(avatar) = &c.avatar_file_id {
            next.avatar_file_id.clone_from(avatar);
        }
        next.owner_id = c.owner_id.unwrap_or(next.owner_id);
        next.member_count = c.member_count.unwrap_or(next.member_count);
        next.deleted = c.deleted.unwrap_or(next.deleted);
        next
    }
}

/// An event of a planned op (its seq is set once claimed).
fn event(chat_id: i64, actor: u64, now_ms: i64, body: Body) -> pb::ChatEvent {
    pb::ChatEvent {
        chat_id: u(chat_id),
        seq: 0,
        at_ms: now_ms,
        actor_id: actor,
        body: Some(body),
    }
}

impl MongoStore {
    /// The chat with no op in flight, or `NotFound("chat")` when it does not exist or was deleted.
    /// The chat as committed, or `NotFound("chat")` when it does not exist, was deleted, or was
    /// never created (a creation that did not get as far as claiming seq 1).
    pub(super) async fn live_chat(&self, chat_id: u64) -> StoreResult<ChatDoc> {
        let mut chat = self
            .c
            .chats
            .find_one(doc! { "_id": i(chat_id) })
            .await
            .map_err(error::map)?;
        if chat.as_ref().is_some_and(|c| c.last_seq == 0) {
            // Being created right now: wait for (or finish) the creation.
            chat = self.settled_chat(i(chat_id)).await?;
        }
        match chat {
            Some(chat) if !chat.deleted && chat.last_seq > 0 => Ok(chat),
            _ => Err(StoreError::NotFound("chat")),
        }
    }

    /// Runs `op`, planned against `chat` as read, to its commit. `None` when the chat moved on
    /// since it was read: plan again.
    pub(super) async fn run_planned(
        &self,
        chat: &ChatDoc,
        op: &mut PendingOp,
    ) -> StoreResult<Option<i64>> {
        match self.run_op(chat, op).await? {
            None => Ok(None),
            Some(Finished::Committed { first_seq }) => Ok(Some(first_seq)),
            Some(Finished::Cancelled { .. }) => Err(StoreError::Internal(
                "a chat op without a send key was cancelled".into(),
            )),
        }
    }

    /// The membership document, current or former.
    pub(super) async fn member_doc(
        &self,
        chat_id: u64,
        user_id: u64,
    ) -> StoreResult<Option<MemberDoc>> {
        self.c
            .members
            .find_one(doc! { "chat_id": i(chat_id), "user_id": i(user_id) })
            .await
            .map_err(error::map)
    }

    /// A current membership, or `NotFound("member")`.
    async fn current_member(&self, chat_id: u64, user_id: u64) -> StoreResult<MemberDoc> {
        self.member_doc(chat_id, user_id)
            .await?
            .filter(|m| m.left_at_seq.is_none())
            .ok_or(StoreError::NotFound("member"))
    }

    /// Members matching `filter`, ordered by user id.
    pub(super) async fn member_docs(&self, filter: Document) -> StoreResult<Vec<MemberDoc>> {
        find_all(&self.c.members, filter, Some(doc! { "user_id": 1 })).await
    }

    /// Inserts a new chat document (head 0: not created yet) under a fresh id.
    async fn insert_chat(&self, mut chat: ChatDoc) -> StoreResult<ChatDoc> {
        loop {
            chat.id = self.next_id(Sequence::Chats).await?;
            match self.c.chats.insert_one(&chat).await {
                Ok(_) => return Ok(chat),
                // An id handed out twice (see `counters`): take another.
                Err(e) if error::is_duplicate(&e) => continue,
                Err(e) => return Err(error::map(e)),
            }
        }
    }

    /// Creates the chat's log: claims seq 1 for `chat_created` with `members` joining and
    /// finishes it. `None` when someone else claimed seq 1 (and it is finished now).
    async fn start_chat(
        &self,
        chat: &ChatDoc,
        actor: u64,
        members: &[(u64, pb::MemberRole)],
        now_ms: i64,
    ) -> StoreResult<Option<(ChatDoc, pb::ChatEvent)>> {
        let count = i64::try_from(members.len()).unwrap_or(i64::MAX);
        let wire_members: Vec<pb::Member> = members
            .iter()
            .map(|&(user_id, role)| pb::Member {
                user_id,
                role: role as i32,
                joined_at_ms: now_ms,
            })
            .collect();
        let effects = members
            .iter()
            .map(|&(user_id, role)| Effect::Join {
                user_id: i(user_id),
                role: role as i32,
            })
            .collect();
        let commit = ChatChanges {
            member_count: Some(count),
            ..Default::default()
        };
        // The snapshot shows the chat as of its first event.
        let mut created = chat.clone();
        created.last_seq = 1;
        created.member_count = count;
        created.last_activity_ms = created.last_activity_ms.max(now_ms);
        let mut events = vec![event(
            chat.id,
            actor,
            now_ms,
            Body::ChatCreated(created.wire(wire_members)),
        )];
        let mut op = PendingOp::new(now_ms, events.clone(), effects, commit);
        match self.run_op(chat, &mut op).await? {
            None => Ok(None),
            Some(Finished::Committed { first_seq }) => {
                number_events(&mut events, first_seq);
                Ok(Some((chat.after(&op, first_seq), events.remove(0))))
            }
            Some(Finished::Cancelled { .. }) => {
                Err(StoreError::Internal("a chat creation was cancelled".into()))
            }
        }
    }

    /// A new private chat document for the pair `key` (its id is given when inserted).
    fn private_chat_doc(key: &str, now_ms: i64) -> ChatDoc {
        ChatDoc {
            id: 0,
            kind: pb::ChatKind::Private as i32,
            title: String::new(),
            description: String::new(),
            avatar_file_id: String::new(),
            owner_id: 0,
            created_at_ms: now_ms,
            last_seq: 0,
            members_seq: 0,
            last_activity_ms: now_ms,
            member_count: 0,
            deleted: false,
            private_pair: Some(key.to_string()),
        }
    }
}

#[async_trait]
impl ChatStore for MongoStore {
    async fn open_private_chat(
        &self,
        a: u64,
        b: u64,
        now_ms: i64,
    ) -> StoreResult<(ChatRecord, bool)> {
        self.deadline(async {
            if a == b {
                return Err(StoreError::Conflict(ConflictKind::PrivateChatWithSelf));
            }
            self.ensure_user(a).await?;
            self.ensure_user(b).await?;
            let (low, high) = (a.min(b), a.max(b));
            let key = format!("{low}:{high}");
            let members = vec![
                (low, pb::MemberRole::Member),
                (high, pb::MemberRole::Member),
            ];
            // The chat document is inserted first (claiming its id), then the pair document
            // (`_id` = the pair, so one chat per pair wins), then the chat's log is started. Whoever
            // finds a pair whose chat has no log yet (its creator is slow or gone) starts it: seq 1
            // can be claimed once.
            loop {
                let pair = self
                    .c
                    .private_pairs
                    .find_one(doc! { "_id": &key })
                    .await
                    .map_err(error::map)?;
                let Some(pair) = pair else {
                    let chat = self
                        .insert_chat(Self::private_chat_doc(&key, now_ms))
                        .await?;
                    match self
                        .c
                        .private_pairs
                        .insert_one(doc! { "_id": &key, "chat_id": chat.id })
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if error::is_duplicate(&e) => {
                            // Another chat won the pair; ours was never visible.
                            self.c
                                .chats
                                .delete_one(doc! { "_id": chat.id })
                                .await
                                .map_err(error::map)?;
                            continue;
                        }
                        Err(e) => return Err(error::map(e)),
                    }
                    match self.start_chat(&chat, a, &members, now_ms).await? {
                        Some((chat, _)) => return Ok((chat.record(), true)),
                        None => continue,
                    }
                };
                let chat_id = pair
                    .get_i64("chat_id")
                    .map_err(|e| error::corrupt("private pair", e))?;
                match self.settled_chat(chat_id).await? {
                    Some(chat) if !chat.deleted && chat.last_seq > 0 => {
                        return Ok((chat.record(), false));
                    }
                    Some(chat) if !chat.deleted => {
                        if let Some((chat, _)) = self.start_chat(&chat, a, &members, now_ms).await?
                        {
                            return Ok((chat.record(), true));
                        }
                    }
                    // Deleted (its release of the pair has not happened yet) or gone.
                    _ => {
                        let stale = doc! { "_id": &key, "chat_id": chat_id };
                        self.c
                            .private_pairs
                            .delete_one(stale)
                            .await
                            .map_err(error::map)?;
                    }
                }
            }
        })
        .await
    }

    async fn create_group(&self, new: NewGroup) -> StoreResult<(ChatRecord, pb::ChatEvent)> {
        self.deadline(async {
            if !matches!(new.kind, pb::ChatKind::Group | pb::ChatKind::Channel) {
                return Err(StoreError::Conflict(ConflictKind::NotAGroupKind));
            }
            let mut members = vec![(new.owner, pb::MemberRole::Owner)];
            for &id in &new.member_ids {
                if members.iter().all(|&(m, _)| m != id) {
                    members.push((id, pb::MemberRole::Member));
                }
            }
            let ids: Vec<u64> = members.iter().map(|&(id, _)| id).collect();
            self.ensure_users(&ids).await?;
            let chat = self
                .insert_chat(ChatDoc {
                    id: 0,
                    kind: new.kind as i32,
                    title: new.title,
                    description: new.description,
                    avatar_file_id: String::new(),
                    owner_id: i(new.owner),
                    created_at_ms: new.now_ms,
                    last_seq: 0,
                    members_seq: 0,
                    last_activity_ms: new.now_ms,
                    member_count: 0,
                    deleted: false,
                    private_pair: None,
                })
                .await?;
            // Nobody else knows the new id, so nobody else can claim its seq 1.
            let (chat, event) = self
                .start_chat(&chat, new.owner, &members, new.now_ms)
                .await?
                .ok_or_else(|| {
                    StoreError::Internal("the log of a new chat was started by someone else".into())
                })?;
            Ok((chat.record(), event))
        })
        .await
    }

    async fn chat(&self, id: u64) -> StoreResult<Option<ChatRecord>> {
        self.deadline(async {
            match self.live_chat(id).await {
                Ok(chat) => Ok(Some(chat.record())),
                Err(StoreError::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn record_call(
        &self,
        chat_id: u64,
        actor: u64,
        call: pb::CallEnded,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent> {
        self.deadline(async {
            let _turn = self.locks.turn(i(chat_id)).await;
            loop {
                let chat = self.live_chat(chat_id).await?;
                let body = Body::CallEnded(call);
                let mut events = vec![event(chat.id, actor, now_ms, body)];
                let mut op =
                    PendingOp::new(now_ms, events.clone(), Vec::new(), ChatChanges::default());
                if let Some(first) = self.run_planned(&chat, &mut op).await? {
                    number_events(&mut events, first);
                    return Ok(events.remove(0));
                }
            }
        })
        .await
    }

    async fn update_chat(
        &self,
        id: u64,
        actor: Actor,
        patch: ChatPatch,
        now_ms: i64,
    ) -> StoreResult<(ChatRecord, pb::ChatEvent)> {
        self.deadline(async {
            let _turn = self.locks.turn(i(id)).await;
            loop {
                let chat = self.live_chat(id).await?;
                ensure_members_unchanged(u(chat.members_seq), actor.members_seq)?;
                let commit = ChatChanges {
                    title: Some(patch.title.clone().unwrap_or_else(|| chat.title.clone())),
                    description: Some(
                        patch
                            .description
                            .clone()
                            .unwrap_or_else(|| chat.description.clone()),
                    ),
                    avatar_file_id: Some(
                        patch
                            .avatar_file_id
                            .clone()
                            .unwrap_or_else(|| chat.avatar_file_id.clone()),
                    ),
                    ..Default::default()
                };
                let body = Body::ChatUpdated(pb::ChatUpdated {
                    title: commit.title.clone().unwrap_or_default(),
                    description: commit.description.clone().unwrap_or_default(),
                    avatar_file_id: commit.avatar_file_id.clone().unwrap_or_default(),
                });
                let mut events = vec![event(chat.id, actor.user_id, now_ms, body)];
                let mut op = PendingOp::new(now_ms, events.clone(), Vec::new(), commit);
                if let Some(first) = self.run_planned(&chat, &mut op).await? {
                    number_events(&mut events, first);
                    return Ok((chat.after(&op, first).record(), events.remove(0)));
                }
            }
        })
        .await
    }

    async fn delete_chat(&self, id: u64, actor: Actor, now_ms: i64) -> StoreResult<pb::ChatEvent> {
        self.deadline(async {
            let _turn = self.locks.turn(i(id)).await;
            loop {
                let chat = self.live_chat(id).await?;
                // The op claims the seq after this head, so it commits under this membership.
                ensure_members_unchanged(u(chat.members_seq), actor.members_seq)?;
                let mut effects = vec![Effect::EndMemberships];
                if let Some(key) = &chat.private_pair {
                    effects.push(Effect::ReleasePair { key: key.clone() });
                }
                let commit = ChatChanges {
                    member_count: Some(0),
                    deleted: Some(true),
                    ..Default::default()
                };
                let mut events = vec![event(
                    chat.id,
                    actor.user_id,
                    now_ms,
                    Body::ChatDeleted(pb::ChatDeleted {}),
                )];
                let mut op = PendingOp::new(now_ms, events.clone(), effects, commit);
                if let Some(first) = self.run_planned(&chat, &mut op).await? {
                    number_events(&mut events, first);
                    return Ok(events.remove(0));
                }
            }
        })
        .await
    }

    async fn members(&self, chat_id: u64) -> StoreResult<Vec<MemberRecord>> {
        self.deadline(async {
            let docs = self
                .member_docs(doc! { "chat_id": i(chat_id), "left_at_seq": null })
                .await?;
            Ok(docs.iter().map(MemberDoc::record).collect())
        })
        .await
    }

    async fn member(&self, chat_id: u64, user_id: u64) -> StoreResult<Option<MemberRecord>> {
        self.deadline(async { Ok(self.member_doc(chat_id, user_id).await?.map(|m| m.record())) })
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
        self.deadline(async {
            let _turn = self.locks.turn(i(chat_id)).await;
            loop {
                let chat = self.live_chat(chat_id).await?;
                ensure_members_unchanged(u(chat.members_seq), actor.members_seq)?;
                if chat.kind == pb::ChatKind::Private as i32 {
                    return Err(StoreError::Conflict(ConflictKind::PrivateChatMembers));
                }
                self.ensure_users(user_ids).await?;
                let current: Vec<i64> = user_ids.iter().map(|&id| i(id)).collect();
                let current: std::collections::HashSet<u64> = self
                    .member_docs(doc! {
                        "chat_id": i(chat_id), "user_id": { "$in": current }, "left_at_seq": null,
                    })
                    .await?
                    .iter()
                    .map(|m| u(m.user_id))
                    .collect();
                let mut joining: Vec<u64> = Vec::with_capacity(user_ids.len());
                for &id in user_ids {
                    if !joining.contains(&id) && !current.contains(&id) {
                        joining.push(id);
                    }
                }
                if joining.is_empty() {
                    return Err(StoreError::Conflict(ConflictKind::AlreadyMembers));
                }
                let count = chat.member_count + i64::try_from(joining.len()).unwrap_or(i64::MAX);
                // Judged on the chat this attempt commits against, as in `transfer_ownership`.
                if count > i64::from(max_members) {
                    return Err(StoreError::Conflict(ConflictKind::ChatFull { max_members }));
                }
                let added: Vec<pb::Member> = joining
                    .iter()
                    .map(|&user_id| pb::Member {
                        user_id,
                        role: pb::MemberRole::Member as i32,
                        joined_at_ms: now_ms,
                    })
                    .collect();
                let effects = joining
                    .iter()
                    .map(|&id| Effect::Join {
                        user_id: i(id),
                        role: pb::MemberRole::Member as i32,
                    })
                    .collect();
                let commit = ChatChanges {
                    member_count: Some(count),
                    ..Default::default()
                };
                let body = Body::MembersAdded(pb::MembersAdded { members: added });
                let mut events = vec![event(chat.id, actor.user_id, now_ms, body)];
                let mut op = PendingOp::new(now_ms, events.clone(), effects, commit);
                if let Some(first) = self.run_planned(&chat, &mut op).await? {
                    number_events(&mut events, first);
                    return Ok(events.remove(0));
                }
            }
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
        self.deadline(async {
            let _turn = self.locks.turn(i(chat_id)).await;
            loop {
                let chat = self.live_chat(chat_id).await?;
                ensure_members_unchanged(u(chat.members_seq), actor.members_seq)?;
                let current = self.current_member(chat_id, user_id).await?;
                if current.role == pb::MemberRole::Owner as i32 {
                    return Err(StoreError::Conflict(ConflictKind::OwnerMustTransfer));
                }
                let commit = ChatChanges {
                    member_count: Some(chat.member_count - 1),
                    ..Default::default()
                };
                let body = Body::MemberRemoved(pb::MemberRemoved { user_id, left });
                let mut events = vec![event(chat.id, actor.user_id, now_ms, body)];
                let effects = vec![Effect::Leave {
                    user_id: i(user_id),
                }];
                let mut op = PendingOp::new(now_ms, events.clone(), effects, commit);
                if let Some(first) = self.run_planned(&chat, &mut op).await? {
                    number_events(&mut events, first);
                    return Ok(events.remove(0));
                }
            }
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
        self.deadline(async {
            let _turn = self.locks.turn(i(chat_id)).await;
            loop {
                let chat = self.live_chat(chat_id).await?;
                ensure_members_unchanged(u(chat.members_seq), actor.members_seq)?;
                if chat.kind == pb::ChatKind::Private as i32 {
                    return Err(StoreError::Conflict(ConflictKind::PrivateChatRoles));
                }
                if !matches!(role, pb::MemberRole::Member | pb::MemberRole::Admin) {
                    return Err(StoreError::Conflict(ConflictKind::InvalidRole));
                }
                let current = self.current_member(chat_id, user_id).await?;
                if current.role == pb::MemberRole::Owner as i32 {
                    return Err(StoreError::Conflict(ConflictKind::OwnerRole));
                }
                if current.role == role as i32 {
                    return Err(StoreError::Conflict(ConflictKind::SameRole));
                }
                let body = Body::MemberRoleChanged(pb::MemberRoleChanged {
                    user_id,
                    role: role as i32,
                });
                let mut events = vec![event(chat.id, actor.user_id, now_ms, body)];
                let effects = vec![Effect::SetRole {
                    user_id: i(user_id),
                    role: role as i32,
                }];
                let mut op =
                    PendingOp::new(now_ms, events.clone(), effects, ChatChanges::default());
                if let Some(first) = self.run_planned(&chat, &mut op).await? {
                    number_events(&mut events, first);
                    return Ok(events.remove(0));
                }
            }
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
        self.deadline(async {
            let _turn = self.locks.turn(i(chat_id)).await;
            loop {
                let chat = self.live_chat(chat_id).await?;
                if chat.kind == pb::ChatKind::Private as i32 {
                    return Err(StoreError::Conflict(ConflictKind::PrivateChatOwner));
                }
                // Checked on the chat this attempt commits against: a transfer committed since
                // makes `run_planned` fail and the next attempt read the new owner.
                if u(chat.owner_id) != from {
                    return Err(StoreError::Conflict(ConflictKind::NotOwner));
                }
                let target = self.current_member(chat_id, new_owner).await?;
                if target.role == pb::MemberRole::Owner as i32 {
                    return Err(StoreError::Conflict(ConflictKind::AlreadyOwner));
                }
                let mut changes = vec![(new_owner, pb::MemberRole::Owner)];
                // The owner cannot leave, so the old owner is a current member; checked all the same.
                let old_owner = u(chat.owner_id);
                if self.current_member(chat_id, old_owner).await.is_ok() {
                    changes.push((old_owner, pb::MemberRole::Admin));
                }
                let mut events: Vec<pb::ChatEvent> = changes
                    .iter()
                    .map(|&(user_id, role)| {
                        event(
                            chat.id,
                            actor,
                            now_ms,
                            Body::MemberRoleChanged(pb::MemberRoleChanged {
                                user_id,
                                role: role as i32,
                            }),
                        )
                    })
                    .collect();
                let effects = changes
                    .iter()
                    .map(|&(user_id, role)| Effect::SetRole {
                        user_id: i(user_id),
                        role: role as i32,
                    })
                    .collect();
                let commit = ChatChanges {
                    owner_id: Some(i(new_owner)),
                    ..Default::default()
                };
                let mut op = PendingOp::new(now_ms, events.clone(), effects, commit);
                if let Some(first) = self.run_planned(&chat, &mut op).await? {
                    number_events(&mut events, first);
                    return Ok(events);
                }
            }
        })
        .await
    }

    async fn set_user_state(
        &self,
        chat_id: u64,
        user_id: u64,
        patch: UserChatPatch,
    ) -> StoreResult<UserChatState> {
        self.deadline(async {
            let mut set = Document::new();
            if let Some(pinned) = patch.pinned {
                set.insert("pinned", pinned);
            }
            if let Some(muted) = patch.muted_until_ms {
                set.insert("muted_until_ms", muted);
            }
            if let Some(mentions_only) = patch.mentions_only {
                set.insert("mentions_only", mentions_only);
            }
            if let Some(archived) = patch.archived {
                set.insert("archived", archived);
            }
            let filter = doc! { "chat_id": i(chat_id), "user_id": i(user_id) };
            let updated = if set.is_empty() {
                self.c.members.find_one(filter).await
            } else {
                self.c
                    .members
                    .find_one_and_update(filter, doc! { "$set": set })
                    .return_document(ReturnDocument::After)
                    .await
            };
            updated
                .map_err(error::map)?
                .map(|m| m.state())
                .ok_or(StoreError::NotFound("member"))
        })
        .await
    }

    async fn member_states(
        &self,
        chat_id: u64,
        user_ids: &[u64],
    ) -> StoreResult<Vec<(MemberRecord, UserChatState)>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let users: Vec<i64> = user_ids.iter().map(|&id| i(id)).collect();
        let docs = self
            .deadline(self.member_docs(doc! { "chat_id": i(chat_id), "user_id": { "$in": users } }))
            .await?;
        Ok(docs.iter().map(|m| (m.record(), m.state())).collect())
    }

    async fn user_chats(&self, user_id: u64, query: UserChatsQuery) -> StoreResult<Vec<UserChat>> {
        self.deadline(self.list_user_chats(user_id, &query)).await
    }

    async fn user_chat(&self, chat_id: u64, user_id: u64) -> StoreResult<Option<UserChat>> {
        self.deadline(self.one_user_chat(chat_id, user_id)).await
    }

    async fn heads(&self, user_id: u64, known: &[u64]) -> StoreResult<Vec<pb::ChatHead>> {
        self.deadline(self.sync_heads(user_id, known)).await
    }

    async fn sync_state(
        &self,
        user_id: u64,
        known: &[u64],
    ) -> StoreResult<(Vec<pb::ChatHead>, u64)> {
        // Two collections: both queries at once, one round trip of waiting.
        tokio::try_join!(
            self.heads(user_id, known),
            self.unread_notifications(user_id)
        )
    }

    async fn shared_chat_peers(&self, user_id: u64) -> StoreResult<Vec<u64>> {
        self.deadline(self.peers(user_id)).await
    }
}
