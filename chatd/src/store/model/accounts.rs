//! Accounts: users, sessions, two-factor login and the emailed account codes.

use chatproto::pb;

/// A user account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Server-assigned id, never reused.
    pub id: u64,
    /// Lowercase, unique.
    pub username: String,
    /// Empty when deleted.
    pub email: String,
    /// Whether `email` was verified with a code sent to it (protocol.md section 18); false
    /// again whenever the address changes.
    pub email_verified: bool,
    /// PHC string (argon2id); empty when deleted.
    pub password_hash: String,
    /// Display name; empty when unset.
    pub display_name: String,
    /// Free text.
    pub bio: String,
    /// Opaque file id; empty when unset.
    pub avatar_file_id: String,
    /// The status the user chose (what others see while they are connected).
    pub status: pb::UserStatus,
    /// Last activity; 0 when never seen.
    pub last_seen_at_ms: i64,
    /// Server-wide role.
    pub role: pb::Role,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
    /// Deleted accounts are also disabled; their username stays reserved.
    pub deleted: bool,
    /// Creation time.
    pub created_at_ms: i64,
}

impl UserRecord {
    /// Whether the account may be signed in: neither disabled nor deleted.
    pub fn is_active(&self) -> bool {
        !self.disabled && !self.deleted
    }
}

/// Input of [`UserStore::create_user`](crate::store::UserStore::create_user).
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Lowercase username.
    pub username: String,
    /// Email address.
    pub email: String,
    /// PHC string.
    pub password_hash: String,
    /// Initial role.
    pub role: pb::Role,
    /// Creation time.
    pub now_ms: i64,
}

/// A partial profile update; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default)]
pub struct ProfilePatch {
    /// New display name.
    pub display_name: Option<String>,
    /// New bio.
    pub bio: Option<String>,
    /// New avatar file id.
    pub avatar_file_id: Option<String>,
    /// New chosen status.
    pub status: Option<pb::UserStatus>,
}

/// A login session (one refresh-token family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Server-assigned id.
    pub id: u64,
    /// Owner.
    pub user_id: u64,
    /// Client-chosen device name.
    pub device_name: String,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last refresh or authentication.
    pub last_seen_at_ms: i64,
    /// Last client address, "ip:port".
    pub address: String,
    /// Set when revoked.
    pub revoked_at_ms: Option<i64>,
}

impl SessionRecord {
    /// Whether the session is `user_id`'s and not revoked.
    pub fn is_live_for(&self, user_id: u64) -> bool {
        self.revoked_at_ms.is_none() && self.user_id == user_id
    }
}

#[cfg(test)]
impl NewUser {
    /// A user `username` created at 1 ms, with a password hash nothing verifies, for tests.
    pub fn sample(username: &str) -> Self {
        Self {
            username: username.into(),
            email: format!("{username}@example.test"),
            password_hash: "$argon2id$sample".into(),
            role: pb::Role::User,
            now_ms: 1,
        }
    }
}

#[cfg(test)]
impl NewSession {
    /// A session of `user_id` on a phone, created at `now_ms` with the refresh token hash
    /// `refresh_hash`, for tests.
    pub fn sample(user_id: u64, refresh_hash: &str, now_ms: i64) -> Self {
        Self {
            user_id,
            device_name: "phone".into(),
            address: "192.0.2.1:1".into(),
            refresh_hash: refresh_hash.into(),
            now_ms,
            checked_hash: None,
        }
    }
}

#[cfg(test)]
impl SessionRecord {
    /// A live session of user 1 on a phone, last seen at `last_seen_at_ms`, for tests.
    pub fn sample(id: u64, last_seen_at_ms: i64) -> Self {
        Self {
            id,
            user_id: 1,
            device_name: "phone".into(),
            created_at_ms: 1,
            last_seen_at_ms,
            address: "192.0.2.1:1".into(),
            revoked_at_ms: None,
        }
    }
}

/// Input of [`SessionStore::create_session`](crate::store::SessionStore::create_session).
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Owner.
    pub user_id: u64,
    /// Client-chosen device name.
    pub device_name: String,
    /// Client address.
    pub address: String,
    /// Hash of the first refresh token.
    pub refresh_hash: String,
    /// Creation time.
    pub now_ms: i64,
    /// The password hash the sign-in was checked against, when it was: the session is made
    /// only while it is still the user's and the user active, so that a sign-in checked just
    /// before a change of password, a disabling or a deletion does not outlive it
    /// (`Conflict(CredentialsChanged)`, nothing kept).
    pub checked_hash: Option<String>,
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was live: it is now used up and `new_hash` is the session's live token.
    Rotated(SessionRecord),
    /// The token had been used before: the whole session is now revoked.
    Reused {
        /// The revoked session.
        session_id: u64,
        /// Its owner.
        user_id: u64,
    },
    /// The token was live but its session had expired (idle or too old by
    /// [`DeadSessions::at`] the time of the call): the session is now revoked, and the token was
    /// not rotated.
    Expired {
        /// The revoked session.
        session_id: u64,
        /// Its owner.
        user_id: u64,
    },
    /// No such token (also one of a deleted session), or its session was already revoked.
    Invalid,
}

/// A session's refresh token expires after this long without use: 7 days.
pub const REFRESH_IDLE_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// A session's refresh token expires this long after the session was created: 30 days.
pub const REFRESH_ABSOLUTE_TTL_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// Which sessions
/// [`SessionStore::delete_dead_sessions`](crate::store::SessionStore::delete_dead_sessions)
/// deletes: those revoked at or before [`revoked_by_ms`](Self::revoked_by_ms), and those whose
/// refresh token had [`expired`](Self::expired) by then. [`at`](Self::at) computes the bounds from
/// one time; the stores' rotation and sweep and the server's listing all judge expiry by it, so
/// they agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadSessions {
    /// Revoked at or before this time.
    pub revoked_by_ms: i64,
    /// Last used (or created, when that is later) at or before this time: idle too long.
    pub last_used_by_ms: i64,
    /// Created at or before this time: too old, however recently used.
    pub created_by_ms: i64,
}

impl DeadSessions {
    /// The sessions that are dead at `at_ms`: revoked by then, or with their refresh token
    /// expired by then (last used [`REFRESH_IDLE_TTL_MS`] before, or created
    /// [`REFRESH_ABSOLUTE_TTL_MS`] before).
    pub fn at(at_ms: i64) -> Self {
        Self {
            revoked_by_ms: at_ms,
            last_used_by_ms: at_ms.saturating_sub(REFRESH_IDLE_TTL_MS),
            created_by_ms: at_ms.saturating_sub(REFRESH_ABSOLUTE_TTL_MS),
        }
    }

    /// Whether a session created at `created_at_ms` and last used at `last_seen_at_ms` had its
    /// refresh token expired by these bounds (revocation aside).
    pub fn expired(&self, created_at_ms: i64, last_seen_at_ms: i64) -> bool {
        last_seen_at_ms.max(created_at_ms) <= self.last_used_by_ms
            || created_at_ms <= self.created_by_ms
    }
}

/// What one
/// [`SessionStore::delete_dead_sessions`](crate::store::SessionStore::delete_dead_sessions) call
/// deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweptSessions {
    /// The sessions of its batch that are gone, ascending: every one it deleted, and those of
    /// the batch that another call deleted at the same time.
    pub gone: Vec<u64>,
    /// How many of them this call deleted: a session two calls at once reached counts in one.
    pub deleted: u64,
}

/// One user's two-factor login (protocol.md section 17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwoFactorRecord {
    /// The TOTP secret, sealed (`auth::two_factor`); the store never sees it in the clear.
    pub sealed_secret: Vec<u8>,
    /// False while the secret is pending (begun, not confirmed): logins ignore it then.
    pub enabled: bool,
    /// The last TOTP step a code was used for (0 for none); only later ones are accepted.
    pub last_step: u64,
    /// How many unused recovery codes are left.
    pub recovery_codes_left: u32,
}

/// What an emailed account code is for (protocol.md section 18). A user has at most one live
/// code per purpose: a new one replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodePurpose {
    /// Verifying the address the code was sent to.
    VerifyEmail,
    /// Setting a new password without the old one.
    ResetPassword,
}

impl CodePurpose {
    /// The purpose's stable number in the stores.
    pub fn number(self) -> u8 {
        match self {
            CodePurpose::VerifyEmail => 1,
            CodePurpose::ResetPassword => 2,
        }
    }
}

/// Input of [`RecoveryStore::put_account_code`](crate::store::RecoveryStore::put_account_code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccountCode {
    /// Whose code.
    pub user_id: u64,
    /// What for.
    pub purpose: CodePurpose,
    /// The keyed hash of the code (`auth::recovery`); the store never sees the code.
    pub hash: String,
    /// The address the code was sent to.
    pub email: String,
    /// When it stops working.
    pub expires_at_ms: i64,
    /// Now.
    pub now_ms: i64,
    /// When the user's live code of this purpose was made less than this long ago, nothing
    /// changes (0: always replace).
    pub resend_gap_ms: i64,
}

/// How [`RecoveryStore::redeem_account_code`](crate::store::RecoveryStore::redeem_account_code)
/// went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// The code was right and is now spent; it was sent to `email`.
    Redeemed {
        /// The address the code was sent to.
        email: String,
    },
    /// A live code exists and this is not it; the attempt was counted (the last allowed
    /// attempt removes the code).
    Wrong,
    /// No live code: never sent, spent, expired or out of attempts.
    Missing,
}
