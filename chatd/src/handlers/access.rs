//! Authorization shared by the chat, message, sync and typing handlers.
//!
//! The rules (spec/chat.proto is normative; this is how the handlers apply it):
//! - Only current members read or write a chat. A chat the caller is not a member of answers
//!   NOT_FOUND "chat not found", exactly like a chat that does not exist, so nobody can probe
//!   which chats exist.
//! - Former members (left, removed, or the chat was deleted) may still read the chat's log up to
//!   and including the event that ended their membership, and write nothing.
//! - Posting (send, edit): every member of a group; admins and the owner of a channel; in a
//!   private chat, either member unless one of them blocked the other (PERMISSION_DENIED
//!   "blocked"). Blocking does not silence a member in groups and channels: the blocker hides the
//!   blocked user's typing and presence instead.
//! - Managing a group or channel (update it, add members, remove members): admins and the owner.
//!   Roles and ownership: the owner only.
//! - Operations that make no sense for a kind of chat (leaving, updating or managing the members
//!   of a private chat) are PERMISSION_DENIED, as spec section 9.3 lists them: the caller is not
//!   allowed to manage a private chat, whatever their role.

use std::collections::HashMap;
use std::sync::Arc;

use chatproto::pb;

use crate::delivery::members::{Audience, ChatMembers};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{ConflictKind, StoreError, StoreResult};

/// NOT_FOUND "chat not found": the one answer for a missing chat and for someone else's chat.
pub fn chat_not_found() -> ApiError {
    ApiError::not_found("chat")
}

/// NOT_FOUND "member not found": the user is not a current member of the chat.
pub fn member_not_found() -> ApiError {
    ApiError::not_found("member")
}

/// NOT_FOUND "message not found".
pub fn message_not_found() -> ApiError {
    ApiError::not_found("message")
}

/// A caller's current membership of a chat.
#[derive(Debug, Clone)]
pub struct Membership {
    /// The caller.
    pub user_id: u64,
    /// The caller's role.
    pub role: pb::MemberRole,
    /// Every current member (from the cache).
    pub members: Arc<ChatMembers>,
}

impl Membership {
    /// The chat's kind.
    pub fn kind(&self) -> pb::ChatKind {
        self.members.kind()
    }

    /// The other member of a private chat (none when they were deleted).
    pub fn peer(&self) -> Option<u64> {
        self.members
            .ids()
            .iter()
            .copied()
            .find(|u| *u != self.user_id)
    }

    /// Who gets an event of this chat: its members as read (shared, not copied).
    pub fn audience(&self) -> Audience {
        Audience::members(self.members.clone())
    }

    /// PERMISSION_DENIED unless the caller is an admin or the owner.
    pub fn require_manager(&self) -> ApiResult<()> {
        if can_manage(self.role) {
            Ok(())
        } else {
            Err(ApiError::denied(
                "only chat admins and the owner may do this",
            ))
        }
    }

    /// PERMISSION_DENIED unless the caller owns the chat.
    pub fn require_owner(&self) -> ApiResult<()> {
        if self.role == pb::MemberRole::Owner {
            Ok(())
        } else {
            Err(ApiError::denied("only the chat owner may do this"))
        }
    }

    /// PERMISSION_DENIED when the chat is private.
    pub fn require_not_private(&self, what: &str) -> ApiResult<()> {
        if self.kind() == pb::ChatKind::Private {
            Err(ApiError::denied(format!("private chats cannot {what}")))
        } else {
            Ok(())
        }
    }
}

/// The caller's membership of `chat_id`, or NOT_FOUND "chat not found".
pub async fn member(state: &AppState, chat_id: u64, user_id: u64) -> ApiResult<Membership> {
    if chat_id == 0 {
        return Err(chat_not_found());
    }
    let members = state
        .delivery
        .members()
        .get(state.store.as_ref(), chat_id)
        .await?;
    membership(members, user_id)
}

/// [`member`], read again past every cache ([`MemberCache::reload`]).
///
/// [`MemberCache::reload`]: crate::delivery::members::MemberCache::reload
async fn member_reloaded(state: &AppState, chat_id: u64, user_id: u64) -> ApiResult<Membership> {
    let members = state
        .delivery
        .members()
        .reload(state.store.as_ref(), chat_id)
        .await?;
    membership(members, user_id)
}

fn membership(members: Option<Arc<ChatMembers>>, user_id: u64) -> ApiResult<Membership> {
    let members = members.ok_or_else(chat_not_found)?;
    let role = members.role_of(user_id).ok_or_else(chat_not_found)?;
    Ok(Membership {
        user_id,
        role,
        members,
    })
}

/// NOT_FOUND "chat not found" unless the store, not the member cache, has `user_id` as a
/// current member of `chat_id`. For a change judged on the cache and made where the store does
/// not judge it (the call book): checked after the change, it finds a removal or deletion that
/// was committed, and so had cleaned up, before the change was made.
pub async fn still_member(state: &AppState, chat_id: u64, user_id: u64) -> ApiResult<()> {
    match state.store.member(chat_id, user_id).await? {
        Some(m) if m.left_at_seq.is_none() => Ok(()),
        _ => Err(chat_not_found()),
    }
}

/// How far a caller may read a chat's log, as checked before the read.
#[derive(Debug, Clone)]
pub enum Reader {
    /// A current member: everything.
    Member(Membership),
    /// A current member by the store whom the cached member list did not show yet (it was read
    /// just before they joined): everything, but without the member list.
    Joining,
    /// A former member: events up to and including `up_to_seq`.
    Former {
        /// The seq of the event that ended the membership.
        up_to_seq: u64,
    },
}

impl Reader {
    /// Whether the caller was a current member when checked.
    pub fn is_current(&self) -> bool {
        !matches!(self, Reader::Former { .. })
    }

    /// The highest seq the caller may read (u64::MAX for members: whatever exists).
    pub fn up_to_seq(&self) -> u64 {
        match self {
            Reader::Member(_) | Reader::Joining => u64::MAX,
            Reader::Former { up_to_seq } => *up_to_seq,
        }
    }

    /// Checks that `seq` is within what the caller may read; NOT_FOUND "message not found"
    /// otherwise (a former member asking about later messages learns nothing
    /// about them).
    pub fn check_seq(&self, seq: u64) -> ApiResult<()> {
        if seq == 0 || seq > self.up_to_seq() {
            Err(message_not_found())
        } else {
            Ok(())
        }
    }

    /// The highest seq that a read made after this check may show, judged by the store once the
    /// read is done. A current member's check comes before the read, and a removal may commit
    /// in between: what the read found past the removal is not theirs (protocol.md 7.3). Any
    /// event the read found committed after everything before it, the removal included, so the
    /// membership read after the read sees that removal. A former member's range does not move.
    pub async fn bound_after_read(
        &self,
        state: &AppState,
        chat_id: u64,
        user_id: u64,
    ) -> ApiResult<u64> {
        if !self.is_current() {
            return Ok(self.up_to_seq());
        }
        match state.store.member(chat_id, user_id).await? {
            Some(row) => Ok(row.left_at_seq.unwrap_or(u64::MAX)),
            None => Err(chat_not_found()),
        }
    }
}

/// Whether and how far the caller may read `chat_id`; NOT_FOUND "chat not found" when they never
/// were a member. Also answers for deleted chats (their former members read up to the deletion).
pub async fn reader(state: &AppState, chat_id: u64, user_id: u64) -> ApiResult<Reader> {
    match member(state, chat_id, user_id).await {
        Ok(m) => return Ok(Reader::Member(m)),
        Err(e) if e.code != pb::ErrorCode::NotFound => return Err(e),
        Err(_) => {}
    }
    if chat_id == 0 {
        return Err(chat_not_found());
    }
    match state.store.member(chat_id, user_id).await? {
        Some(row) => match row.left_at_seq {
            Some(up_to_seq) => Ok(Reader::Former { up_to_seq }),
            // The store is the authority.
            None => Ok(Reader::Joining),
        },
        None => Err(chat_not_found()),
    }
}

/// For a read across chats the caller was a current member of when it began: the highest seq of
/// each of `chat_ids` the read may show, judged by the store after it, as
/// [`Reader::bound_after_read`] does for one chat. A chat missing from the map shows nothing.
pub async fn bounds_after_read(
    state: &AppState,
    user_id: u64,
    chat_ids: &[u64],
) -> ApiResult<HashMap<u64, u64>> {
    let heads = state.store.heads(user_id, chat_ids).await?;
    Ok(heads
        .into_iter()
        .map(|h| (h.chat_id, if h.member { u64::MAX } else { h.last_seq }))
        .collect())
}

/// Admins and the owner manage a group or channel.
pub fn can_manage(role: pb::MemberRole) -> bool {
    matches!(role, pb::MemberRole::Admin | pb::MemberRole::Owner)
}

/// Whether a member with `role` may post in a chat of `kind` (blocks aside).
pub fn can_post(kind: pb::ChatKind, role: pb::MemberRole) -> bool {
    match kind {
        pb::ChatKind::Channel => can_manage(role),
        pb::ChatKind::Private | pb::ChatKind::Group => role != pb::MemberRole::Unspecified,
        pb::ChatKind::Unspecified => false,
    }
}

/// Whether `actor` (with `actor_role`) may remove `target` (with `target_role`): admins remove
/// plain members, the owner removes anyone else. Removing oneself is LeaveChat, not this.
pub fn may_remove(actor_role: pb::MemberRole, target_role: pb::MemberRole) -> bool {
    match actor_role {
        pb::MemberRole::Owner => target_role != pb::MemberRole::Owner,
        pb::MemberRole::Admin => target_role == pb::MemberRole::Member,
        _ => false,
    }
}

/// Whether `actor` may delete a message sent by `sender` for everyone: the sender, or a chat
/// admin or the owner.
pub fn may_delete_for_everyone(actor: u64, actor_role: pb::MemberRole, sender: u64) -> bool {
    actor == sender || can_manage(actor_role)
}

/// True when `a` blocked `b` or `b` blocked `a`.
pub async fn blocked_either_way(state: &AppState, a: u64, b: u64) -> ApiResult<bool> {
    let (ab, ba) = tokio::try_join!(state.store.is_blocked(a, b), state.store.is_blocked(b, a))?;
    Ok(ab || ba)
}

/// PERMISSION_DENIED unless the caller may post into the chat now: the channel role rule, and in
/// a private chat no block in either direction.
pub async fn require_can_post(state: &AppState, m: &Membership) -> ApiResult<()> {
    if !can_post(m.kind(), m.role) {
        return Err(ApiError::denied(
            "only channel admins and the owner may post",
        ));
    }
    require_not_blocked_private(state, m).await
}

/// How many times one write judges its caller's membership, at most: membership that changes
/// under every judgement is given up on with UNAVAILABLE (the request may simply be sent again).
const MAX_JUDGEMENTS: u32 = 3;

/// What a chat write asks of its caller's membership, beyond being a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judge {
    /// Posting: [`require_can_post`].
    Post,
    /// Nothing but no block either way in a private chat: [`require_not_blocked_private`].
    NotBlocked,
    /// Deleting for everyone a message of `sender`: [`may_delete_for_everyone`].
    DeleteForEveryone {
        /// The message's sender.
        sender: u64,
    },
    /// Managing a group or channel: not a private chat (which cannot `what`), and a chat admin
    /// or the owner.
    Manage {
        /// What a private chat cannot, for the error ("be updated").
        what: &'static str,
    },
    /// Removing `target` from a group or channel: managing it, someone else (one leaves with
    /// `leave_chat`), a current member, and a role the caller may remove ([`may_remove`]).
    Remove {
        /// Who is removed.
        target: u64,
    },
    /// Owning a group or channel (private chats cannot `what`).
    Own {
        /// What a private chat cannot, for the error ("have member roles").
        what: &'static str,
    },
    /// Deleting the chat as a member: either member of a private chat, the owner of another.
    DeleteChat,
}

impl Judge {
    /// Whether `m` passes.
    pub async fn check(self, state: &AppState, m: &Membership) -> ApiResult<()> {
        match self {
            Judge::Post => require_can_post(state, m).await,
            Judge::NotBlocked => require_not_blocked_private(state, m).await,
            Judge::DeleteForEveryone { sender } => {
                if may_delete_for_everyone(m.user_id, m.role, sender) {
                    Ok(())
                } else {
                    Err(ApiError::denied(
                        "only the sender or a chat admin may delete a message for everyone",
                    ))
                }
            }
            Judge::Manage { what } => {
                m.require_not_private(what)?;
                m.require_manager()
            }
            Judge::Remove { target } => {
                m.require_not_private("have members removed")?;
                m.require_manager()?;
                if target == m.user_id {
                    return Err(ApiError::invalid(
                        "remove_member.user_id",
                        "use leave_chat to leave a chat",
                    ));
                }
                let target_role = m.members.role_of(target).ok_or_else(member_not_found)?;
                if may_remove(m.role, target_role) {
                    Ok(())
                } else {
                    Err(ApiError::denied(
                        "admins may remove members only, and nobody may remove the owner",
                    ))
                }
            }
            Judge::Own { what } => {
                m.require_not_private(what)?;
                m.require_owner()
            }
            Judge::DeleteChat => {
                if m.kind() == pb::ChatKind::Private || m.role == pb::MemberRole::Owner {
                    Ok(())
                } else {
                    Err(ApiError::denied(
                        "only the owner or a server admin may delete a chat",
                    ))
                }
            }
        }
    }
}

/// Runs a chat write under the membership `m`, which `judge` passed. `write` gets the chat's
/// `members_seq` as `m` was read at, for the store to refuse the write if membership changed
/// since (`Conflict(MembersChanged)`): then the caller's membership is read again, judged again,
/// and the write retried. So a write checked before a removal or a change of role does not
/// land after it. Returns the membership the write was made under, and what it wrote.
pub async fn under_membership<T, F>(
    state: &AppState,
    chat_id: u64,
    mut m: Membership,
    judge: Judge,
    mut write: impl FnMut(u64) -> F,
) -> ApiResult<(Membership, T)>
where
    F: Future<Output = StoreResult<T>>,
{
    let mut judged = 1;
    loop {
        match write(m.members.members_seq()).await {
            Err(StoreError::Conflict(ConflictKind::MembersChanged)) if judged < MAX_JUDGEMENTS => {
                // Past every cache: a cached chat that missed the change (its invalidation
                // did not reach Redis) would be refused again and again.
                m = member_reloaded(state, chat_id, m.user_id).await?;
                judge.check(state, &m).await?;
                judged += 1;
            }
            Err(StoreError::Conflict(ConflictKind::MembersChanged)) => {
                return Err(ApiError::unavailable(
                    "the chat's members changed at every try; send the request again",
                ));
            }
            answer => return Ok((m, answer?)),
        }
    }
}

/// PERMISSION_DENIED "blocked" when the chat is private and either member blocked the other.
pub async fn require_not_blocked_private(state: &AppState, m: &Membership) -> ApiResult<()> {
    if m.kind() == pb::ChatKind::Private
        && let Some(peer) = m.peer()
        && blocked_either_way(state, m.user_id, peer).await?
    {
        return Err(ApiError::denied("blocked"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::ChatKind as K;
    use pb::MemberRole as R;

    #[test]
    fn posting_rules() {
        assert!(can_post(K::Group, R::Member));
        assert!(can_post(K::Private, R::Member));
        assert!(!can_post(K::Channel, R::Member));
        assert!(can_post(K::Channel, R::Admin));
        assert!(can_post(K::Channel, R::Owner));
        assert!(!can_post(K::Group, R::Unspecified));
        assert!(!can_post(K::Unspecified, R::Owner));
    }

    #[test]
    fn removal_rules() {
        assert!(may_remove(R::Owner, R::Admin));
        assert!(may_remove(R::Owner, R::Member));
        assert!(!may_remove(R::Owner, R::Owner));
        assert!(may_remove(R::Admin, R::Member));
        assert!(!may_remove(R::Admin, R::Admin));
        assert!(!may_remove(R::Admin, R::Owner));
        assert!(!may_remove(R::Member, R::Member));
    }

    #[test]
    fn delete_for_everyone_rules() {
        assert!(may_delete_for_everyone(1, R::Member, 1));
        assert!(!may_delete_for_everyone(1, R::Member, 2));
        assert!(may_delete_for_everyone(1, R::Admin, 2));
        assert!(may_delete_for_everyone(1, R::Owner, 2));
    }

    #[test]
    fn reader_ranges() {
        let former = Reader::Former { up_to_seq: 10 };
        assert!(former.check_seq(10).is_ok());
        assert_eq!(
            former.check_seq(11).unwrap_err().code,
            pb::ErrorCode::NotFound
        );
        assert!(former.check_seq(0).is_err());
        let m = Membership {
            user_id: 2,
            role: R::Member,
            members: Arc::new(ChatMembers::new(K::Group, [(2, R::Member)])),
        };
        assert!(Reader::Member(m).check_seq(u64::MAX).is_ok());
    }
}
