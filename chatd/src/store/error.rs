//! What a store answers when a call fails: [`StoreError`], and [`ConflictKind`] for the rule a
//! conflicting write broke.

/// Which rule a conflicting write broke. Its text is what a client sees in the CONFLICT answer,
/// so backend details (constraint names, SQL) never leave the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConflictKind {
    /// Username taken.
    #[error("username taken")]
    UsernameTaken,
    /// Refresh token already in use.
    #[error("refresh token already in use")]
    RefreshTokenReused,
    /// The password a sign-in was checked against is no longer the account's, or the account
    /// was disabled or deleted since (see [`NewSession::checked_hash`](super::NewSession)).
    #[error("the account's credentials changed")]
    CredentialsChanged,
    /// Client_msg_id already used.
    #[error("client_msg_id already used")]
    ClientMsgIdUsed,
    /// Private chat already exists.
    #[error("private chat already exists")]
    PrivateChatExists,
    /// Reaction already exists.
    #[error("reaction already exists")]
    ReactionExists,
    /// A referenced object does not exist.
    #[error("a referenced object does not exist")]
    MissingReference,
    /// Message is deleted.
    #[error("message is deleted")]
    MessageDeleted,
    /// Receipt kind is unspecified.
    #[error("receipt kind is unspecified")]
    ReceiptKindUnspecified,
    /// A private chat needs two different users.
    #[error("a private chat needs two different users")]
    PrivateChatWithSelf,
    /// A group must be of kind group or channel.
    #[error("a group must be of kind group or channel")]
    NotAGroupKind,
    /// A private chat has exactly two members.
    #[error("a private chat has exactly two members")]
    PrivateChatMembers,
    /// Already members.
    #[error("already members")]
    AlreadyMembers,
    /// The owner cannot leave or be removed; transfer ownership first.
    #[error("the owner cannot leave or be removed; transfer ownership first")]
    OwnerMustTransfer,
    /// A private chat has no roles.
    #[error("a private chat has no roles")]
    PrivateChatRoles,
    /// A member can only become admin or member; ownership is transferred.
    #[error("a member can only become admin or member; ownership is transferred")]
    InvalidRole,
    /// The owner's role changes only by transferring ownership.
    #[error("the owner's role changes only by transferring ownership")]
    OwnerRole,
    /// The member already has that role.
    #[error("the member already has that role")]
    SameRole,
    /// A private chat has no owner.
    #[error("a private chat has no owner")]
    PrivateChatOwner,
    /// The member is already the owner.
    #[error("the member is already the owner")]
    AlreadyOwner,
    /// Adding the members would take the chat past the member limit given.
    #[error("a chat has at most {max_members} members")]
    ChatFull {
        /// The limit.
        max_members: u32,
    },
    /// The password to be replaced was changed first.
    #[error("the password was changed")]
    PasswordChanged,
    /// A send judged on a chat's membership as it was at a `members_seq` the chat has moved
    /// past: who may post is to be judged again.
    #[error("the chat's members changed")]
    MembersChanged,
    /// A reaction with an emoji new to a message that has the most different emoji it takes.
    #[error("a message takes at most {max_emoji} different emoji")]
    TooManyEmoji {
        /// The limit.
        max_emoji: usize,
    },
    /// Ownership is transferred from someone who does not own the chat (any more): a transfer
    /// of the same chat committed first.
    #[error("only the chat owner may do this")]
    NotOwner,
    /// The change would take away the rights of the last active server admin.
    #[error("the last admin cannot be removed")]
    LastAdmin,
    /// The admin making a change (`by` of [`UserStore::set_role`](super::UserStore::set_role)
    /// and the like) is no longer an active admin when it would be made.
    #[error("only server admins may do this")]
    NotAdmin,
    /// An upload with this id exists already.
    #[error("upload id taken")]
    UploadIdTaken,
    /// The upload is finished or failed; `finish_upload` reads which.
    #[error("the upload is not open")]
    UploadNotOpen,
    /// A constraint of the backend without a rule of its own here (the detail is logged).
    #[error("constraint failed")]
    Constraint,
}

/// `Conflict(MembersChanged)` when a write judged on the chat's membership at `judged` (see
/// [`NewMessage::members_seq`](super::NewMessage::members_seq)) meets the chat at
/// `members_seq`; `Ok` when it was not judged.
pub fn ensure_members_unchanged(members_seq: u64, judged: Option<u64>) -> StoreResult<()> {
    match judged {
        Some(judged) if judged != members_seq => {
            Err(StoreError::Conflict(ConflictKind::MembersChanged))
        }
        _ => Ok(()),
    }
}

/// What can go wrong in a store. Backends map their native errors onto these. `Clone`, so one
/// failure can answer every call of a batch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist (or was deleted).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule or a state precondition failed.
    #[error("conflict: {0}")]
    Conflict(ConflictKind),
    /// The backend cannot be reached or timed out; the caller may retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend answered, but the call kept losing to concurrent writers of the same data
    /// (two nodes appending to one chat); the caller may retry. Not a sign that the backend is
    /// down: the store's circuit breaker does not count it.
    #[error("store busy: {0}")]
    Busy(String),
    /// Anything else: corrupt data, a bug.
    #[error("store failure: {0}")]
    Internal(String),
    /// The backend does not do this; the text says what does (e.g. another tool).
    #[error("{0}")]
    Unsupported(&'static str),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;
