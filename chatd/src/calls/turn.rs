//! ICE servers for WebRTC clients (spec 14.5): the configured STUN and TURN URLs, TURN with
//! time-limited credentials in the TURN REST API scheme that coturn checks with
//! `use-auth-secret`: username `EXPIRY:USER_ID`, credential base64(HMAC-SHA1(secret, username)).
//! Pure: the time and the secret are passed in (the current key of the `turn` ring, which TURN
//! servers must know before it signs: coturn takes several `static-auth-secret`s).

use base64::Engine as _;
use chatproto::pb;

/// The shared secret of the TURN servers. Never a flag (argv is visible to other users): it
/// comes from `CHATD_TURN_SECRET` or `--turn-secret-file`. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnSecret(Vec<u8>);

impl TurnSecret {
    /// The secret as written (a file's trailing newline removed); `None` when empty.
    pub fn new(text: &str) -> Option<TurnSecret> {
        let text = text.trim_end_matches(['\r', '\n']);
        (!text.is_empty()).then(|| TurnSecret(text.as_bytes().to_vec()))
    }

    /// A secret as the key ring keeps it (rotated by `chatctl keys rotate --kind turn`).
    pub fn from_bytes(bytes: Vec<u8>) -> TurnSecret {
        TurnSecret(bytes)
    }

    /// The secret's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TurnSecret(..)")
    }
}

/// True for a TURN URL (`turn:` or `turns:`), which needs credentials.
pub fn is_turn(url: &str) -> bool {
    url.starts_with("turn:") || url.starts_with("turns:")
}

/// The TURN REST API username and credential of `user_id`, valid until `expiry_s` (Unix
/// seconds).
pub fn credentials(secret: &TurnSecret, user_id: u64, expiry_s: i64) -> (String, String) {
    let username = format!("{expiry_s}:{user_id}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &secret.0);
    let tag = ring::hmac::sign(&key, username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    (username, credential)
}

/// What `get_ice_servers` answers `user_id` at `now_ms`: the STUN URLs as one server without
/// credentials, the TURN URLs as one server with credentials valid for `ttl_ms` (left out
/// without a secret, which the configuration does not allow).
pub fn ice_servers(
    urls: &[String],
    secret: Option<&TurnSecret>,
    user_id: u64,
    now_ms: i64,
    ttl_ms: i64,
) -> pb::IceServers {
    let (turn, stun): (Vec<String>, Vec<String>) = urls.iter().cloned().partition(|u| is_turn(u));
    let mut answer = pb::IceServers::default();
    if !stun.is_empty() {
        answer.servers.push(pb::IceServer {
            urls: stun,
            ..Default::default()
        });
    }
    if let Some(secret) = secret.filter(|_| !turn.is_empty()) {
        let expiry_s = now_ms.saturating_add(ttl_ms) / 1000;
        let (username, credential) = credentials(secret, user_id, expiry_s);
        answer.servers.push(pb::IceServer {
            urls: turn,
            username,
            credential,
        });
        answer.expires_at_ms = expiry_s.saturating_mul(1000);
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> TurnSecret {
        TurnSecret::new("example-secret\n").expect("a secret")
    }

    #[test]
    fn credentials_follow_the_turn_rest_api_as_the_vector_shows() {
        // spec/vectors/response.txt, response.ice_servers.
        let (username, credential) = credentials(&secret(), 1001, 1_767_315_600);
        assert_eq!(username, "1767315600:1001");
        assert_eq!(credential, "JydyUTx7DiyEeoKppyuLVwP14II=");
        let other = TurnSecret::new("other").expect("a secret");
        assert_ne!(credentials(&other, 1001, 1_767_315_600).1, credential);
        assert_eq!(TurnSecret::new("\n"), None);
        assert_eq!(format!("{:?}", secret()), "TurnSecret(..)");
    }

    #[test]
    fn stun_goes_bare_and_turn_with_credentials_until_the_expiry() {
        let urls: Vec<String> = [
            "stun:turn.example.org:3478",
            "turn:turn.example.org:3478?transport=udp",
            "turns:turn.example.org:5349?transport=tcp",
        ]
        .map(String::from)
        .to_vec();
        let now_ms = 1_767_229_200_500;
        let answer = ice_servers(&urls, Some(&secret()), 1001, now_ms, 86_400_000);
        let [stun, turn] = answer.servers.as_slice() else {
            panic!("two servers: {answer:?}");
        };
        assert_eq!(stun.urls, ["stun:turn.example.org:3478"]);
        assert!(stun.username.is_empty() && stun.credential.is_empty());
        assert_eq!(turn.urls.len(), 2);
        assert_eq!(turn.username, "1767315600:1001");
        assert_eq!(turn.credential, "JydyUTx7DiyEeoKppyuLVwP14II=");
        assert_eq!(answer.expires_at_ms, 1_767_315_600_000);
        // Without TURN URLs or without a secret: no credentials and no expiry.
        let stun_only = ice_servers(&urls[..1], Some(&secret()), 1001, now_ms, 1);
        assert_eq!((stun_only.servers.len(), stun_only.expires_at_ms), (1, 0));
        assert!(ice_servers(&[], None, 1001, now_ms, 1).servers.is_empty());
    }
}
