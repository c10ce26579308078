//! Access tokens: JWTs signed with HS256 and a server secret.
//!
//! The secret is the current key of the `tokens` key ring (`auth::keys`), whose id is the
//! header's `kid`; verification takes the key of the token's `kid` among those that have not
//! retired. A token without a `kid` was signed with the key from before rotation (the token
//! key itself), which verifies until its overlap ends.
//!
//! Claims: `iss` "chatd", `aud` "chat/1", `sub` (user id, decimal string), `sid` (session id),
//! `typ` "access", `iat`, `exp` (seconds) and `role` ("user" or "admin"). Verification pins
//! HS256 (any other `alg`, `none` included, is refused before the signature is looked at),
//! checks the signature, then every claim, with [`LEEWAY`] of clock tolerance. Time is passed
//! in (`now_ms`), so expiry is testable and consistent with the rest of the server.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chatproto::pb;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

/// The `iss` claim.
pub const ISSUER: &str = "chatd";
/// The `aud` claim.
pub const AUDIENCE: &str = "chat/1";
/// The `typ` claim of access tokens.
pub const ACCESS_TYPE: &str = "access";
/// Longest access-token lifetime the server accepts or issues.
pub const MAX_ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// Clock tolerance when checking `exp` and `iat`.
pub const LEEWAY: Duration = Duration::from_secs(5);
/// Shortest signing secret.
pub const MIN_KEY_BYTES: usize = 32;
/// Longest token text that is parsed at all.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// The HMAC secret that signs access tokens. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenKey(Vec<u8>);

/// A token key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenKeyError {
    /// Not hexadecimal.
    #[error("token key is not hexadecimal")]
    NotHex,
    /// Fewer than [`MIN_KEY_BYTES`] bytes.
    #[error("token key has {0} bytes; at least 32 are required")]
    TooShort(usize),
}

impl TokenKey {
    /// A key from raw bytes (at least [`MIN_KEY_BYTES`]).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<TokenKey, TokenKeyError> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(TokenKeyError::TooShort(bytes.len()));
        }
        Ok(TokenKey(bytes))
    }

    /// A key from its hex text form (surrounding whitespace ignored), as kept in `token.key`
    /// and `CHATD_TOKEN_KEY`.
    pub fn from_hex(text: &str) -> Result<TokenKey, TokenKeyError> {
        let bytes = hex::decode(text.trim()).map_err(|_| TokenKeyError::NotHex)?;
        TokenKey::from_bytes(bytes)
    }

    /// A new random 32-byte key.
    pub fn generate() -> TokenKey {
        let mut bytes = vec![0u8; MIN_KEY_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        TokenKey(bytes)
    }

    /// The hex text form (lowercase).
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// The raw secret.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A 32-byte key for one purpose, derived from this key (HMAC-SHA256 of the purpose's
    /// label), so that no two uses share a key and none is the token key.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        let mut out = [0u8; 32];
        out.copy_from_slice(ring::hmac::sign(&key, label.as_bytes()).as_ref());
        out
    }
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey([redacted])")
    }
}

/// Why a token was refused (or could not be made).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// `exp` has passed (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `iat` is in the future (beyond the leeway): another node's clock is ahead.
    #[error("token issued in the future")]
    NotYetValid,
    /// The signature does not match: tampered, or signed with another key.
    #[error("bad token signature")]
    BadSignature,
    /// The header names an algorithm other than HS256.
    #[error("token algorithm {0:?} is not accepted")]
    WrongAlgorithm(String),
    /// `aud` is not "chat/1".
    #[error("wrong token audience")]
    WrongAudience,
    /// `iss` is not "chatd".
    #[error("wrong token issuer")]
    WrongIssuer,
    /// `typ` is not "access".
    #[error("wrong token type")]
    WrongType,
    /// Not a JWT, or a required claim is missing or of the wrong shape.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The lifetime given to [`TokenIssuer::new`] is out of bounds.
    #[error("access token ttl must be between 1s and 15m")]
    BadTtl,
    /// The header's `kid` names no key that still verifies: a retired key (its overlap ended),
    /// or one this node has not heard of yet.
    #[error("token key retired or unknown")]
    UnknownKey,
    /// Signing failed (a bug: HMAC signing has no failure mode for valid keys).
    #[error("cannot sign token: {0}")]
    Signing(String),
}

/// What a verified access token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessClaims {
    /// `sub`.
    pub user_id: u64,
    /// `sid`.
    pub session_id: u64,
    /// `role`: [`pb::Role::User`] or [`pb::Role::Admin`].
    pub role: pb::Role,
    /// `iat`, in milliseconds.
    pub issued_at_ms: i64,
    /// `exp`, in milliseconds.
    pub expires_at_ms: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct WireClaims {
    iss: String,
    aud: String,
    sub: String,
    sid: u64,
    typ: String,
    iat: i64,
    exp: i64,
    role: String,
}

fn role_claim(role: pb::Role) -> &'static str {
    // Least privilege: anything but an explicit admin is a user.
    match role {
        pb::Role::Admin => "admin",
        _ => "user",
    }
}

/// Issues and verifies access tokens with one lifetime; the keys are given to each call.
pub struct TokenIssuer {
    validation: Validation,
    ttl_secs: i64,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer of tokens living `ttl`, in whole seconds, 1 s..=[`MAX_ACCESS_TTL`].
    pub fn new(ttl: Duration) -> Result<TokenIssuer, TokenError> {
        if ttl < Duration::from_secs(1) || ttl > MAX_ACCESS_TTL {
            return Err(TokenError::BadTtl);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        // Claims are checked below against the caller's clock, with our own error variants;
        // the library only checks the algorithm and the signature.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        Ok(TokenIssuer {
            validation,
            ttl_secs: i64::try_from(ttl.as_secs()).map_err(|_| TokenError::BadTtl)?,
        })
    }

    /// A token for `user_id`'s session `session_id` issued at `now_ms`, signed with `secret`
    /// under the key id `kid` (`None`: no `kid`, the key from before rotation), and its expiry
    /// in milliseconds (whole seconds, as in the token).
    pub fn issue(
        &self,
        kid: Option<u32>,
        secret: &[u8],
        user_id: u64,
        session_id: u64,
        role: pb::Role,
        now_ms: i64,
    ) -> Result<(String, i64), TokenError> {
        let iat = now_ms.div_euclid(1000);
        let exp = iat.saturating_add(self.ttl_secs);
        let claims = WireClaims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: user_id.to_string(),
            sid: session_id,
            typ: ACCESS_TYPE.to_owned(),
            iat,
            exp,
            role: role_claim(role).to_owned(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = kid.map(|k| k.to_string());
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        Ok((token, exp.saturating_mul(1000)))
    }

    /// Checks `token` at `now_ms` with the secret `key` gives for its `kid` (`None` when it has
    /// none; `None` back when no key of that id verifies), and returns its claims.
    pub fn verify(
        &self,
        token: &str,
        now_ms: i64,
        key: impl FnOnce(Option<u32>) -> Option<Vec<u8>>,
    ) -> Result<AccessClaims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed("token too long".into()));
        }
        let (alg, kid) = header_fields(token)?;
        if alg != "HS256" {
            return Err(TokenError::WrongAlgorithm(alg));
        }
        let kid = kid
            .map(|k| k.parse::<u32>())
            .transpose()
            .map_err(|_| TokenError::Malformed("kid is not a key id".into()))?;
        let secret = key(kid).ok_or(TokenError::UnknownKey)?;
        let decoding = DecodingKey::from_secret(&secret);
        let data = jsonwebtoken::decode::<WireClaims>(token, &decoding, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidAlgorithm => TokenError::WrongAlgorithm(alg.clone()),
                _ => TokenError::Malformed(e.to_string()),
            },
        )?;
        let c = data.claims;
        if c.iss != ISSUER {
            return Err(TokenError::WrongIssuer);
        }
        if c.aud != AUDIENCE {
            return Err(TokenError::WrongAudience);
        }
        if c.typ != ACCESS_TYPE {
            return Err(TokenError::WrongType);
        }
        let user_id: u64 = c
            .sub
            .parse()
            .ok()
            .filter(|&id| id != 0)
            .ok_or_else(|| TokenError::Malformed("sub is not a user id".into()))?;
        let role = match c.role.as_str() {
            "user" => pb::Role::User,
            "admin" => pb::Role::Admin,
            _ => return Err(TokenError::Malformed("unknown role".into())),
        };
        let max_ttl_secs = i64::try_from(MAX_ACCESS_TTL.as_secs()).unwrap_or(i64::MAX);
        if c.exp.saturating_sub(c.iat) > max_ttl_secs || c.exp < c.iat {
            return Err(TokenError::Malformed("lifetime out of bounds".into()));
        }
        let leeway_ms = i64::try_from(LEEWAY.as_millis()).unwrap_or(i64::MAX);
        let issued_at_ms = c.iat.saturating_mul(1000);
        let expires_at_ms = c.exp.saturating_mul(1000);
        if now_ms >= expires_at_ms.saturating_add(leeway_ms) {
            return Err(TokenError::Expired);
        }
        if issued_at_ms > now_ms.saturating_add(leeway_ms) {
            return Err(TokenError::NotYetValid);
        }
        Ok(AccessClaims {
            user_id,
            session_id: c.sid,
            role,
            issued_at_ms,
            expires_at_ms,
        })
    }
}

/// The `alg` and `kid` of a compact JWS header, read without trusting anything else in the
/// token.
fn header_fields(token: &str) -> Result<(String, Option<String>), TokenError> {
    let malformed = |why: &str| TokenError::Malformed(why.to_owned());
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("not three dot-separated parts"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed("header is not base64url"))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| malformed("header is not json"))?;
    let alg = value
        .get("alg")
        .and_then(|a| a.as_str())
        .map(str::to_owned)
        .ok_or_else(|| malformed("header has no alg"))?;
    let kid = match value.get("kid") {
        None => None,
        Some(serde_json::Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(malformed("kid is not a string")),
    };
    Ok((alg, kid))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_123;

    fn key() -> TokenKey {
        TokenKey::from_bytes(vec![7u8; 32]).expect("key")
    }

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(MAX_ACCESS_TTL).expect("issuer")
    }

    /// The keys of a server that never rotated: the token key, for tokens without a kid.
    fn legacy(kid: Option<u32>) -> Option<Vec<u8>> {
        kid.is_none().then(|| key().as_bytes().to_vec())
    }

    fn claims(now_ms: i64) -> WireClaims {
        WireClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: "42".into(),
            sid: 9,
            typ: ACCESS_TYPE.into(),
            iat: now_ms / 1000,
            exp: now_ms / 1000 + 600,
            role: "user".into(),
        }
    }

    fn sign(header: Header, claims: &WireClaims, secret: &[u8]) -> String {
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).expect("encode")
    }

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s.as_bytes())
    }

    #[test]
    fn issue_then_verify_round_trips() {
        let iss = issuer();
        let (token, exp_ms) = iss
            .issue(None, key().as_bytes(), 42, 9, pb::Role::Admin, NOW)
            .expect("issue");
        assert_eq!(exp_ms, (NOW / 1000 + 900) * 1000);
        let c = iss.verify(&token, NOW, legacy).expect("verify");
        assert_eq!(
            c,
            AccessClaims {
                user_id: 42,
                session_id: 9,
                role: pb::Role::Admin,
                issued_at_ms: NOW / 1000 * 1000,
                expires_at_ms: exp_ms,
            }
        );
        // The payload carries the documented claims.
        let payload = token.split('.').nth(1).expect("payload");
        let json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        assert_eq!(json["iss"], "chatd");
        assert_eq!(json["aud"], "chat/1");
        assert_eq!(json["sub"], "42");
        assert_eq!(json["sid"], 9);
        assert_eq!(json["typ"], "access");
        assert_eq!(json["role"], "admin");
    }

    #[test]
    fn unspecified_role_is_issued_as_user() {
        let iss = issuer();
        let (token, _) = iss
            .issue(None, key().as_bytes(), 1, 1, pb::Role::Unspecified, NOW)
            .expect("issue");
        assert_eq!(
            iss.verify(&token, NOW, legacy).map(|c| c.role),
            Ok(pb::Role::User)
        );
    }

    #[test]
    fn expiry_with_leeway() {
        let iss = TokenIssuer::new(Duration::from_secs(60)).expect("issuer");
        let (token, exp_ms) = iss
            .issue(None, key().as_bytes(), 1, 1, pb::Role::User, NOW)
            .expect("issue");
        assert!(iss.verify(&token, exp_ms - 1, legacy).is_ok());
        assert!(iss.verify(&token, exp_ms + 4_999, legacy).is_ok());
        assert_eq!(
            iss.verify(&token, exp_ms + 5_000, legacy),
            Err(TokenError::Expired)
        );
        assert_eq!(
            iss.verify(&token, exp_ms + 86_400_000, legacy),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn issued_in_the_future_is_refused() {
        let iss = issuer();
        let (token, _) = iss
            .issue(None, key().as_bytes(), 1, 1, pb::Role::User, NOW + 60_000)
            .expect("issue");
        assert_eq!(
            iss.verify(&token, NOW, legacy),
            Err(TokenError::NotYetValid)
        );
        // Within the leeway it is fine.
        let (token, _) = iss
            .issue(None, key().as_bytes(), 1, 1, pb::Role::User, NOW + 4_000)
            .expect("issue");
        assert!(iss.verify(&token, NOW, legacy).is_ok());
    }

    #[test]
    fn tampered_payload_fails_the_signature() {
        let iss = issuer();
        let (token, _) = iss
            .issue(None, key().as_bytes(), 42, 9, pb::Role::User, NOW)
            .expect("issue");
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims(NOW);
        forged.role = "admin".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"));
        let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(
            iss.verify(&tampered, NOW, legacy),
            Err(TokenError::BadSignature)
        );
        // A flipped signature character too.
        let mut sig = parts[2].to_owned();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        sig.replace_range(0..1, flipped);
        let bad_sig = format!("{}.{}.{}", parts[0], parts[1], sig);
        assert_eq!(
            iss.verify(&bad_sig, NOW, legacy),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn another_key_fails_the_signature() {
        let token = sign(Header::new(Algorithm::HS256), &claims(NOW), &[8u8; 32]);
        assert_eq!(
            issuer().verify(&token, NOW, legacy),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn other_algorithms_are_refused() {
        let iss = issuer();
        // alg none, unsigned.
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(NOW)).expect("json"));
        let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), payload);
        assert_eq!(
            iss.verify(&none, NOW, legacy),
            Err(TokenError::WrongAlgorithm("none".into()))
        );
        let none_cased = format!("{}.{}.", b64(r#"{"alg":"NONE"}"#), payload);
        assert_eq!(
            iss.verify(&none_cased, NOW, legacy),
            Err(TokenError::WrongAlgorithm("NONE".into()))
        );
        // HS384 with the right secret.
        let hs384 = sign(
            Header::new(Algorithm::HS384),
            &claims(NOW),
            key().as_bytes(),
        );
        assert_eq!(
            iss.verify(&hs384, NOW, legacy),
            Err(TokenError::WrongAlgorithm("HS384".into()))
        );
        // An RS256 header over an HMAC signature (the key-confusion attack).
        let good = sign(
            Header::new(Algorithm::HS256),
            &claims(NOW),
            key().as_bytes(),
        );
        let parts: Vec<&str> = good.split('.').collect();
        let rs = format!("{}.{}.{}", b64(r#"{"alg":"RS256"}"#), parts[1], parts[2]);
        assert_eq!(
            iss.verify(&rs, NOW, legacy),
            Err(TokenError::WrongAlgorithm("RS256".into()))
        );
    }

    #[test]
    fn wrong_claims_are_refused_with_their_own_errors() {
        let iss = issuer();
        let k = key();
        let with = |f: &dyn Fn(&mut WireClaims)| {
            let mut c = claims(NOW);
            f(&mut c);
            sign(Header::new(Algorithm::HS256), &c, k.as_bytes())
        };
        let cases: Vec<(String, TokenError)> = vec![
            (
                with(&|c| c.aud = "chat/2".into()),
                TokenError::WrongAudience,
            ),
            (with(&|c| c.iss = "evil".into()), TokenError::WrongIssuer),
            (with(&|c| c.typ = "refresh".into()), TokenError::WrongType),
            (
                with(&|c| c.sub = "bob".into()),
                TokenError::Malformed("sub is not a user id".into()),
            ),
            (
                with(&|c| c.sub = "0".into()),
                TokenError::Malformed("sub is not a user id".into()),
            ),
            (
                with(&|c| c.role = "root".into()),
                TokenError::Malformed("unknown role".into()),
            ),
            (
                with(&|c| c.exp = c.iat + 3600),
                TokenError::Malformed("lifetime out of bounds".into()),
            ),
        ];
        for (token, want) in cases {
            assert_eq!(iss.verify(&token, NOW, legacy), Err(want));
        }
    }

    #[test]
    fn missing_claims_are_malformed() {
        #[derive(Serialize)]
        struct NoSid<'a> {
            iss: &'a str,
            aud: &'a str,
            sub: &'a str,
            typ: &'a str,
            iat: i64,
            exp: i64,
            role: &'a str,
        }
        let c = NoSid {
            iss: ISSUER,
            aud: AUDIENCE,
            sub: "1",
            typ: ACCESS_TYPE,
            iat: NOW / 1000,
            exp: NOW / 1000 + 60,
            role: "user",
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &c,
            &EncodingKey::from_secret(key().as_bytes()),
        )
        .expect("encode");
        assert!(matches!(
            issuer().verify(&token, NOW, legacy),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn garbage_is_malformed() {
        let iss = issuer();
        for junk in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "!!!.???.###",
            &format!("{}.e30.", b64("not json")),
            &format!("{}.e30.", b64("{}")),
            &"a".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert!(
                matches!(iss.verify(junk, NOW, legacy), Err(TokenError::Malformed(_))),
                "{junk:?} gave {:?}",
                iss.verify(junk, NOW, legacy)
            );
        }
        // With a well-formed HS256 header the signature is checked before the payload is
        // parsed, so an unsigned garbage payload is a signature failure.
        let unsigned = format!("{}.@@@.sig", b64(r#"{"alg":"HS256"}"#));
        assert_eq!(
            iss.verify(&unsigned, NOW, legacy),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn the_kid_names_the_key_that_verifies() {
        let iss = issuer();
        let (token, _) = iss
            .issue(Some(7), &[9u8; 32], 1, 1, pb::Role::User, NOW)
            .expect("issue");
        let header = token.split('.').next().expect("header");
        let json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("b64")).expect("json");
        assert_eq!(json["kid"], "7");
        let ring = |kid: Option<u32>| match kid {
            Some(7) => Some(vec![9u8; 32]),
            None => Some(key().as_bytes().to_vec()),
            _ => None,
        };
        assert!(iss.verify(&token, NOW, ring).is_ok());
        // Without kid 7 (retired), and under another key of the same id.
        assert_eq!(iss.verify(&token, NOW, legacy), Err(TokenError::UnknownKey));
        assert_eq!(
            iss.verify(&token, NOW, |_| Some(vec![1u8; 32])),
            Err(TokenError::BadSignature)
        );
        // A kid that is not a key id.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("seven".into());
        let odd = sign(header, &claims(NOW), &[9u8; 32]);
        assert!(matches!(
            iss.verify(&odd, NOW, ring),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn ttl_is_bounded() {
        assert!(TokenIssuer::new(Duration::from_secs(15 * 60 + 1)).is_err());
        assert!(TokenIssuer::new(Duration::ZERO).is_err());
        assert!(TokenIssuer::new(Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn token_keys() {
        assert_eq!(
            TokenKey::from_hex(&"ab".repeat(31)),
            Err(TokenKeyError::TooShort(31))
        );
        assert_eq!(TokenKey::from_hex("zz"), Err(TokenKeyError::NotHex));
        let k = TokenKey::from_hex(&format!(" {}\n", "0f".repeat(32))).expect("hex key");
        assert_eq!(k.as_bytes(), &[0x0f; 32]);
        assert_eq!(TokenKey::from_hex(&k.to_hex()), Ok(k.clone()));
        let g = TokenKey::generate();
        assert_eq!(g.as_bytes().len(), 32);
        assert_ne!(g, TokenKey::generate());
        assert_eq!(format!("{g:?}"), "TokenKey([redacted])");
    }
}
