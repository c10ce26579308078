//! How cached records are stored in Redis: protobuf mirrors of the store records, behind a one
//! byte format version. A value that does not decode (another version, corruption) is a miss.

use chatproto::pb;

use crate::store::{ChatRecord, SessionRecord, UserRecord};

/// The format version byte in front of every cached value (2: chats carry `members_seq`, which
/// a value of version 1 would read as 0 and so refuse every send judged on it).
const VERSION: u8 = 2;

/// The value written on invalidation: while it lives, readers go to the store and do not cache.
pub const TOMBSTONE: &[u8] = b"!";

#[derive(Clone, PartialEq, prost::Message)]
struct CachedUser {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(string, tag = "2")]
    username: String,
    #[prost(string, tag = "3")]
    email: String,
    #[prost(string, tag = "4")]
    password_hash: String,
    #[prost(string, tag = "5")]
    display_name: String,
    #[prost(string, tag = "6")]
    bio: String,
    #[prost(string, tag = "7")]
    avatar_file_id: String,
    #[prost(int32, tag = "8")]
    status: i32,
    #[prost(int64, tag = "9")]
    last_seen_at_ms: i64,
    #[prost(int32, tag = "10")]
    role: i32,
    #[prost(bool, tag = "11")]
    disabled: bool,
    #[prost(bool, tag = "12")]
    deleted: bool,
    #[prost(int64, tag = "13")]
    created_at_ms: i64,
    #[prost(bool, tag = "14")]
    email_verified: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CachedUsers {
    #[prost(message, repeated, tag = "1")]
    users: Vec<CachedUser>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CachedChat {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(int32, tag = "2")]
    kind: i32,
    #[prost(string, tag = "3")]
    title: String,
    #[prost(string, tag = "4")]
    description: String,
    #[prost(string, tag = "5")]
    avatar_file_id: String,
    #[prost(uint64, tag = "6")]
    owner_id: u64,
    #[prost(int64, tag = "7")]
    created_at_ms: i64,
    #[prost(uint64, tag = "8")]
    last_seq: u64,
    #[prost(int64, tag = "9")]
    last_activity_ms: i64,
    #[prost(uint32, tag = "10")]
    member_count: u32,
    #[prost(uint64, tag = "11")]
    members_seq: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CachedSession {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(uint64, tag = "2")]
    user_id: u64,
    #[prost(string, tag = "3")]
    device_name: String,
    #[prost(int64, tag = "4")]
    created_at_ms: i64,
    #[prost(int64, tag = "5")]
    last_seen_at_ms: i64,
    #[prost(string, tag = "6")]
    address: String,
    #[prost(int64, optional, tag = "7")]
    revoked_at_ms: Option<i64>,
}

fn framed(msg: &impl prost::Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.encoded_len() + 1);
    out.push(VERSION);
    msg.encode_raw(&mut out);
    out
}

fn unframed<M: prost::Message + Default>(bytes: &[u8]) -> Option<M> {
    match bytes.split_first() {
        Some((&VERSION, body)) => M::decode(body).ok(),
        _ => None,
    }
}

fn user_to(u: &UserRecord) -> CachedUser {
    CachedUser {
        id: u.id,
        username: u.username.clone(),
        email: u.email.clone(),
        email_verified: u.email_verified,
        password_hash: u.password_hash.clone(),
        display_name: u.display_name.clone(),
        bio: u.bio.clone(),
        avatar_file_id: u.avatar_file_id.clone(),
        status: u.status as i32,
        last_seen_at_ms: u.last_seen_at_ms,
        role: u.role as i32,
        disabled: u.disabled,
        deleted: u.deleted,
        created_at_ms: u.created_at_ms,
    }
}

fn user_from(c: CachedUser) -> Option<UserRecord> {
    Some(UserRecord {
        id: c.id,
        username: c.username,
        email: c.email,
        email_verified: c.email_verified,
        password_hash: c.password_hash,
        display_name: c.display_name,
        bio: c.bio,
        avatar_file_id: c.avatar_file_id,
        status: pb::UserStatus::try_from(c.status).ok()?,
        last_seen_at_ms: c.last_seen_at_ms,
        role: pb::Role::try_from(c.role).ok()?,
        disabled: c.disabled,
        deleted: c.deleted,
        created_at_ms: c.created_at_ms,
    })
}

/// Encodes a user record.
pub fn encode_user(u: &UserRecord) -> Vec<u8> {
    framed(&user_to(u))
}

/// Decodes a user record.
pub fn decode_user(bytes: &[u8]) -> Option<UserRecord> {
    user_from(unframed::<CachedUser>(bytes)?)
}

/// Encodes a list of users (a search page).
pub fn encode_users(users: &[UserRecord]) -> Vec<u8> {
    framed(&CachedUsers {
        users: users.iter().map(user_to).collect(),
    })
}

/// Decodes a list of users.
pub fn decode_users(bytes: &[u8]) -> Option<Vec<UserRecord>> {
    unframed::<CachedUsers>(bytes)?
        .users
        .into_iter()
        .map(user_from)
        .collect()
}

/// Encodes a chat record.
pub fn encode_chat(c: &ChatRecord) -> Vec<u8> {
    framed(&CachedChat {
        id: c.id,
        kind: c.kind as i32,
        title: c.title.clone(),
        description: c.description.clone(),
        avatar_file_id: c.avatar_file_id.clone(),
        owner_id: c.owner_id,
        created_at_ms: c.created_at_ms,
        last_seq: c.last_seq,
        last_activity_ms: c.last_activity_ms,
        member_count: c.member_count,
        members_seq: c.members_seq,
    })
}

/// Decodes a chat record.
pub fn decode_chat(bytes: &[u8]) -> Option<ChatRecord> {
    let c = unframed::<CachedChat>(bytes)?;
    Some(ChatRecord {
        id: c.id,
        kind: pb::ChatKind::try_from(c.kind).ok()?,
        title: c.title,
        description: c.description,
        avatar_file_id: c.avatar_file_id,
        owner_id: c.owner_id,
        created_at_ms: c.created_at_ms,
        last_seq: c.last_seq,
        last_activity_ms: c.last_activity_ms,
        member_count: c.member_count,
        members_seq: c.members_seq,
    })
}

/// Encodes a session record.
pub fn encode_session(s: &SessionRecord) -> Vec<u8> {
    framed(&CachedSession {
        id: s.id,
        user_id: s.user_id,
        device_name: s.device_name.clone(),
        created_at_ms: s.created_at_ms,
        last_seen_at_ms: s.last_seen_at_ms,
        address: s.address.clone(),
        revoked_at_ms: s.revoked_at_ms,
    })
}

/// Decodes a session record.
pub fn decode_session(bytes: &[u8]) -> Option<SessionRecord> {
    let c = unframed::<CachedSession>(bytes)?;
    Some(SessionRecord {
        id: c.id,
        user_id: c.user_id,
        device_name: c.device_name,
        created_at_ms: c.created_at_ms,
        last_seen_at_ms: c.last_seen_at_ms,
        address: c.address,
        revoked_at_ms: c.revoked_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: u64) -> UserRecord {
        UserRecord {
            id,
            username: format!("user{id}"),
            email: "u@example.com".into(),
            email_verified: true,
            password_hash: "$argon2id$v=19$...".into(),
            display_name: "U".into(),
            bio: "bio".into(),
            avatar_file_id: String::new(),
            status: pb::UserStatus::Busy,
            last_seen_at_ms: 123,
            role: pb::Role::Admin,
            disabled: false,
            deleted: true,
            created_at_ms: 7,
        }
    }

    #[test]
    fn records_round_trip() {
        assert_eq!(decode_user(&encode_user(&user(3))), Some(user(3)));
        assert_eq!(
            decode_users(&encode_users(&[user(1), user(2)])),
            Some(vec![user(1), user(2)])
        );
        let chat = ChatRecord {
            id: 9,
            kind: pb::ChatKind::Channel,
            title: "t".into(),
            description: "d".into(),
            avatar_file_id: "a".into(),
            owner_id: 4,
            created_at_ms: 1,
            last_seq: 77,
            members_seq: 70,
            last_activity_ms: 2,
            member_count: 3,
        };
        assert_eq!(decode_chat(&encode_chat(&chat)), Some(chat));
        let session = SessionRecord {
            id: 5,
            user_id: 6,
            device_name: "phone".into(),
            created_at_ms: 1,
            last_seen_at_ms: 2,
            address: "192.0.2.1:5".into(),
            revoked_at_ms: Some(3),
        };
        assert_eq!(decode_session(&encode_session(&session)), Some(session));
    }

    #[test]
    fn tombstones_and_other_versions_are_misses() {
        assert_eq!(decode_user(TOMBSTONE), None);
        for version in [VERSION - 1, VERSION + 1] {
            let mut other = encode_user(&user(1));
            other[0] = version;
            assert_eq!(decode_user(&other), None);
        }
        assert_eq!(decode_chat(b""), None);
    }
}
