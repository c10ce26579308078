//! Opaque refresh tokens.
//!
//! A refresh token is 32 random bytes, base64url without padding (43 characters). The server
//! stores only a hash of it, so a leaked database does not yield usable tokens: since key
//! rotation, an HMAC-SHA256 keyed with the current pepper (`auth::keys`, kind `refresh`), stored
//! as `p<kid>:<hex>` so the pepper is named beside it ([`peppered_hash`]); before it, the plain
//! SHA-256 (hex), which still verifies during the pepper's overlap ([`hash_refresh_token`]).
//! The token's entropy makes a fast hash sufficient (no salt or slow hash needed). A session's
//! refresh token expires after [`REFRESH_IDLE_TTL_MS`] without use or
//! [`REFRESH_ABSOLUTE_TTL_MS`] after the session was created, whichever comes first; the store
//! judges it when rotating ([`RefreshOutcome::Expired`](crate::store::RefreshOutcome::Expired)).
//!
//! [`REFRESH_IDLE_TTL_MS`]: crate::store::REFRESH_IDLE_TTL_MS
//! [`REFRESH_ABSOLUTE_TTL_MS`]: crate::store::REFRESH_ABSOLUTE_TTL_MS

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::store::DeadSessions;

/// Random bytes in a refresh token.
pub const REFRESH_TOKEN_BYTES: usize = 32;

/// Length of the encoded token in characters.
pub const REFRESH_TOKEN_CHARS: usize = 43;

/// The highest `--max-sessions-per-user`: a `list_sessions` answer of that many sessions, each
/// at its largest, stays within one frame (checked in the tests below).
pub const MAX_SESSIONS_PER_USER: u32 = 500;

/// A freshly generated refresh token and the hash to store.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// The token handed to the client, once.
    pub token: String,
    /// What the store keeps: hex SHA-256 of `token`.
    pub hash: String,
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshToken")
            .field("token", &"[redacted]")
            .field("hash", &self.hash)
            .finish()
    }
}

impl RefreshToken {
    /// A new token from the operating system's CSPRNG (via `rand`'s thread RNG, which is
    /// seeded from it and reseeds), hashed under the pepper `kid` ([`peppered_hash`]).
    pub fn generate(kid: u32, pepper: &[u8]) -> RefreshToken {
        let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let hash = peppered_hash(kid, pepper, &token);
        RefreshToken { token, hash }
    }
}

/// The stored form of a presented token: lowercase hex SHA-256 of its text.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The stored form of `token` under the pepper `kid` (kid 0: the plain SHA-256 from before
/// peppers): `p<kid>:` and the lowercase hex HMAC-SHA256 of its text keyed with `pepper`.
pub fn peppered_hash(kid: u32, pepper: &[u8], token: &str) -> String {
    if kid == 0 {
        return hash_refresh_token(token);
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, pepper);
    let tag = ring::hmac::sign(&key, token.as_bytes());
    format!("p{kid}:{}", hex::encode(tag.as_ref()))
}

/// Whether `token` has the shape of a refresh token (43 base64url characters), so that garbage
/// can be refused before a store lookup.
pub fn is_well_formed(token: &str) -> bool {
    token.len() == REFRESH_TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether a session's refresh token has expired at `now_ms`: idle for 7 days or older than
/// 30 days (both bounds inclusive). Times before creation (clock steps) count as not expired.
pub fn refresh_expired(created_at_ms: i64, last_seen_at_ms: i64, now_ms: i64) -> bool {
    DeadSessions::at(now_ms).expired(created_at_ms, last_seen_at_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest list of sessions `--max-sessions-per-user` allows fits into one answer:
    /// device names of 64 four-byte characters, IPv6 addresses with ports, the largest ids and
    /// times.
    #[test]
    fn the_most_sessions_allowed_fit_into_one_answer() {
        use chatproto::pb;
        use prost::Message as _;
        let session = pb::Session {
            id: u64::MAX,
            device_name: "\u{1F600}".repeat(64),
            created_at_ms: i64::MIN,
            last_seen_at_ms: i64::MIN,
            address: "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535".into(),
            current: true,
        };
        let answer = pb::Response {
            request_id: u64::MAX,
            result: Some(pb::response::Result::Sessions(pb::SessionList {
                sessions: vec![session; MAX_SESSIONS_PER_USER as usize],
            })),
        };
        assert!(answer.encoded_len() <= chatproto::frame::MAX_FRAME_BYTES);
    }

    const DAY: i64 = 24 * 60 * 60 * 1000;

    #[test]
    fn generated_tokens_are_distinct_well_formed_and_hashed() {
        let a = RefreshToken::generate(0, &[]);
        let b = RefreshToken::generate(2, b"pepper");
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), REFRESH_TOKEN_CHARS);
        assert!(is_well_formed(&a.token), "{}", a.token);
        let decoded = URL_SAFE_NO_PAD.decode(&a.token).expect("base64url");
        assert_eq!(decoded.len(), REFRESH_TOKEN_BYTES);
        assert_eq!(a.hash, hash_refresh_token(&a.token));
        assert_eq!(a.hash.len(), 64);
        assert_eq!(b.hash, peppered_hash(2, b"pepper", &b.token));
        assert!(!format!("{a:?}").contains(&a.token));
    }

    #[test]
    fn hash_is_hex_sha256() {
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            hash_refresh_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn peppered_hashes_name_their_pepper() {
        let h = peppered_hash(3, b"pepper", "abc");
        assert!(h.starts_with("p3:") && h.len() == 3 + 64, "{h}");
        assert_ne!(h, peppered_hash(3, b"other", "abc"));
        assert_eq!(
            h[3..],
            peppered_hash(4, b"pepper", "abc")[3..],
            "the kid names the pepper only"
        );
        assert_eq!(
            peppered_hash(0, b"ignored", "abc"),
            hash_refresh_token("abc")
        );
    }

    #[test]
    fn well_formed_rejects_other_shapes() {
        assert!(is_well_formed(&"A".repeat(43)));
        assert!(!is_well_formed(&"A".repeat(42)));
        assert!(!is_well_formed(&"A".repeat(44)));
        assert!(!is_well_formed(&format!("{}=", "A".repeat(42))));
        assert!(!is_well_formed(&format!("{}+", "A".repeat(42))));
        assert!(!is_well_formed(""));
    }

    #[test]
    fn expiry_idle_and_absolute() {
        let created = 1_000 * DAY;
        // Fresh.
        assert!(!refresh_expired(created, created, created));
        // Idle bound: 7 days after the last use.
        assert!(!refresh_expired(created, created, created + 7 * DAY - 1));
        assert!(refresh_expired(created, created, created + 7 * DAY));
        // Used regularly: alive until the absolute bound.
        let last = created + 29 * DAY;
        assert!(!refresh_expired(created, last, created + 30 * DAY - 1));
        assert!(refresh_expired(created, last, created + 30 * DAY));
        // Clock stepped back: not expired.
        assert!(!refresh_expired(created, created, created - DAY));
        // A last_seen before creation (bad data) does not shorten the idle window.
        assert!(!refresh_expired(created, 0, created + DAY));
    }
}
