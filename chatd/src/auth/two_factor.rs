//! Two-factor login (protocol.md section 17): TOTP codes (RFC 6238 with RFC 4226's HOTP:
//! HMAC-SHA1, six digits, 30-second steps, what every authenticator app defaults to) and
//! single-use recovery codes. Sans-IO: time is passed in.
//!
//! Secrets at rest. The server must compute the expected code, so a TOTP secret cannot be kept
//! as a hash like a password; it is sealed (ChaCha20-Poly1305) under a key derived from the
//! token key, the secret that already lives in the key directory (the data directory, or
//! `CHATD_TOKEN_KEY`) and that every node of a cluster shares, never in the database: a copy
//! of the database alone opens no secret. The user's id is the associated data, so a sealed
//! secret copied to another account does not open there. Recovery codes are only compared, so
//! they are kept as keyed hashes (HMAC-SHA256 under a second derived key): 50 random bits each,
//! too many to guess online (attempts are throttled like logins) and, without the key, offline.
//!
//! Replay. A code is good for its 30-second step and the one either side (clock skew). The store
//! keeps the last step used per user and takes only a later one, atomically, so a code, or any
//! code of an earlier step, logs in once, whichever node it reaches.

use ring::hmac;

use crate::auth::seal::Sealer;
pub use crate::auth::seal::{KeyError, SealError};
use crate::auth::token::TokenKey;

/// Digits of a TOTP code.
pub const DIGITS: u32 = 6;
/// Seconds of one TOTP step.
pub const PERIOD_SECS: u64 = 30;
/// Bytes of a TOTP secret (160 bits, RFC 4226's recommendation for HMAC-SHA1).
pub const SECRET_BYTES: usize = 20;
/// Recovery codes issued at once.
pub const RECOVERY_CODES: usize = 10;
/// Steps either side of the current one whose codes are accepted.
pub const SKEW_STEPS: u64 = 1;
/// Characters of a recovery code, not counting the dash in its middle.
const RECOVERY_CHARS: usize = 10;
/// The alphabet of recovery codes: Crockford's base32 in lowercase (digits and letters without
/// i, l, o and u, which read like others), so each character carries 5 bits.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// The keys of two-factor login, derived from the token key. `Debug` shows no key.
pub struct TwoFactorKeys {
    seal: Sealer,
    recovery: hmac::Key,
}

impl std::fmt::Debug for TwoFactorKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TwoFactorKeys(..)")
    }
}

impl TwoFactorKeys {
    /// The keys derived from the token key (each for one purpose, so neither is the token key).
    pub fn derive(token_key: &TokenKey) -> Result<TwoFactorKeys, KeyError> {
        let recovery = token_key.derive("chatd two-factor recovery codes v1");
        Ok(TwoFactorKeys {
            seal: Sealer::derive(token_key, "chatd two-factor secret seal v1")?,
            recovery: hmac::Key::new(hmac::HMAC_SHA256, &recovery),
        })
    }

    /// `secret` sealed for `user_id`: version, random nonce, ciphertext and tag.
    pub fn seal(&self, user_id: u64, secret: &[u8]) -> Result<Vec<u8>, SealError> {
        self.seal.seal(user_id, secret)
    }

    /// The secret [`seal`](Self::seal) sealed for `user_id`.
    pub fn open(&self, user_id: u64, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        self.seal.open(user_id, sealed)
    }

    /// The stored form of a recovery code, or `None` when `code` cannot be one. Case, spaces
    /// and dashes do not matter, so a code read aloud or retyped still matches.
    pub fn recovery_hash(&self, code: &str) -> Option<String> {
        let canonical = canonical_recovery_code(code)?;
        Some(hex::encode(hmac::sign(
            &self.recovery,
            canonical.as_bytes(),
        )))
    }
}

/// A new random TOTP secret.
pub fn new_secret() -> [u8; SECRET_BYTES] {
    rand::random()
}

/// The TOTP step at `now_ms` (Unix time).
pub fn step_at(now_ms: i64) -> u64 {
    u64::try_from(now_ms).unwrap_or(0) / 1000 / PERIOD_SECS
}

/// The code of `step` (RFC 4226 section 5.3: dynamic truncation, then the low digits).
pub fn code_at(secret: &[u8], step: u64) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let tag = tag.as_ref();
    // A SHA-1 tag has 20 bytes and the offset is at most 15, so the four bytes are there.
    let offset = tag.last().map_or(0, |b| usize::from(b & 0x0f));
    let word = tag
        .get(offset..offset + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_be_bytes);
    (word & 0x7fff_ffff) % 10u32.pow(DIGITS)
}

/// Whether `code` has the form of a TOTP code: exactly [`DIGITS`] ASCII digits.
pub fn is_totp_form(code: &str) -> bool {
    code.len() == DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit())
}

/// The step whose code `code` is, among the steps within [`SKEW_STEPS`] of `now_ms` that are
/// later than `after_step` (the last one used), or `None`. The earliest matching step is
/// taken, so that a code of the current step stays usable for its own step only once.
pub fn matching_step(secret: &[u8], code: &str, now_ms: i64, after_step: u64) -> Option<u64> {
    if !is_totp_form(code) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let now = step_at(now_ms);
    (now.saturating_sub(SKEW_STEPS)..=now + SKEW_STEPS)
        .filter(|&step| step > after_step)
        // Codes compare as whole numbers, one machine comparison: unlike a string comparison,
        // its time does not depend on how many leading digits match.
        .find(|&step| code_at(secret, step) == wanted)
}

/// The symbol of a 32-letter alphabet at the low five bits of `index`.
fn symbol(alphabet: &[u8; 32], index: u32) -> char {
    alphabet
        .get((index & 31) as usize)
        .map_or('?', |&b| char::from(b))
}

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(symbol(ALPHABET, buffer >> bits));
        }
    }
    if bits > 0 {
        out.push(symbol(ALPHABET, buffer << (5 - bits)));
    }
    out
}

/// The `otpauth://` URI authenticator apps import (usually from a QR code) for `account` on
/// `issuer`. Both are URI-safe: usernames are (validate::username), and the issuer is ours.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={PERIOD_SECS}",
        base32(secret)
    )
}

/// [`RECOVERY_CODES`] new recovery codes, as shown to the user: `xxxxx-xxxxx`.
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| new_code(RECOVERY_CHARS))
        .collect()
}

/// A new random code of `chars` characters of Crockford's base32 (5 bits each), shown with a
/// dash in its middle: `xxxxx-xxxxx` (recovery codes, and the emailed codes of
/// `auth::account_codes`).
pub(crate) fn new_code(chars: usize) -> String {
    let mut code = String::with_capacity(chars + 1);
    for i in 0..chars {
        if i == chars / 2 {
            code.push('-');
        }
        code.push(symbol(RECOVERY_ALPHABET, u32::from(rand::random::<u8>())));
    }
    code
}

/// `code` lowercased without spaces and dashes, when it has a recovery code's length and
/// alphabet.
fn canonical_recovery_code(code: &str) -> Option<String> {
    canonical_code(code, RECOVERY_CHARS)
}

/// `code` lowercased without spaces and dashes, when it has `chars` characters of
/// [`new_code`]'s alphabet, so a code read aloud or retyped still matches.
pub(crate) fn canonical_code(code: &str, chars: usize) -> Option<String> {
    let canonical: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let valid =
        canonical.len() == chars && canonical.bytes().all(|b| RECOVERY_ALPHABET.contains(&b));
    valid.then_some(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 secret.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    fn keys(byte: u8) -> TwoFactorKeys {
        TwoFactorKeys::derive(&TokenKey::from_bytes(vec![byte; 32]).unwrap()).unwrap()
    }

    #[test]
    fn codes_match_rfc_6238_appendix_b() {
        // The RFC lists 8 digits; six are their low digits.
        for (unix_secs, eight_digits) in [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            let step = step_at(i64::try_from(unix_secs * 1000).unwrap());
            assert_eq!(
                code_at(RFC_SECRET, step),
                eight_digits % 1_000_000,
                "{unix_secs}"
            );
        }
    }

    #[test]
    fn a_code_matches_its_step_and_the_neighbours_only_after_the_last_used() {
        let now_ms = 1_234_567_890_000;
        let now = step_at(now_ms);
        let code = |step| format!("{:06}", code_at(RFC_SECRET, step));
        assert_eq!(matching_step(RFC_SECRET, &code(now), now_ms, 0), Some(now));
        assert_eq!(
            matching_step(RFC_SECRET, &code(now - 1), now_ms, 0),
            Some(now - 1)
        );
        assert_eq!(
            matching_step(RFC_SECRET, &code(now + 1), now_ms, 0),
            Some(now + 1)
        );
        assert_eq!(matching_step(RFC_SECRET, &code(now - 2), now_ms, 0), None);
        assert_eq!(matching_step(RFC_SECRET, &code(now + 2), now_ms, 0), None);
        // Used: the same step, or an earlier one, does not match again.
        assert_eq!(matching_step(RFC_SECRET, &code(now), now_ms, now), None);
        assert_eq!(matching_step(RFC_SECRET, &code(now - 1), now_ms, now), None);
        assert_eq!(
            matching_step(RFC_SECRET, &code(now + 1), now_ms, now),
            Some(now + 1)
        );
        for bad in ["", "12345", "1234567", "12a456", " 12345", "１２３４５６"] {
            assert_eq!(matching_step(RFC_SECRET, bad, now_ms, 0), None, "{bad:?}");
        }
    }

    #[test]
    fn base32_matches_rfc_4648_without_padding() {
        for (input, want) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), want);
        }
        assert_eq!(base32(RFC_SECRET), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn otpauth_uri_names_every_parameter() {
        assert_eq!(
            otpauth_uri("chat", "alice", RFC_SECRET),
            "otpauth://totp/chat:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=chat\
             &algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_user() {
        let secret = new_secret();
        let sealed = keys(1).seal(7, &secret).unwrap();
        assert_ne!(sealed[1..], secret[..], "not the plain secret");
        assert_eq!(keys(1).open(7, &sealed).unwrap(), secret);
        assert_eq!(keys(1).open(8, &sealed), Err(SealError), "another user");
        assert_eq!(keys(2).open(7, &sealed), Err(SealError), "another key");
        let mut damaged = sealed.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert_eq!(keys(1).open(7, &damaged), Err(SealError));
        assert_eq!(keys(1).open(7, &sealed[..5]), Err(SealError));
        assert_eq!(keys(1).open(7, &[]), Err(SealError));
        assert_ne!(
            keys(1).seal(7, &secret).unwrap(),
            sealed,
            "a fresh nonce each time"
        );
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_whatever_their_spelling() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let k = keys(1);
        for code in &codes {
            assert_eq!(code.len(), RECOVERY_CHARS + 1);
            assert_eq!(code.as_bytes()[RECOVERY_CHARS / 2], b'-');
            let hash = k.recovery_hash(code).unwrap();
            let retyped = code.replace('-', " ").to_uppercase();
            assert_eq!(k.recovery_hash(&retyped), Some(hash.clone()));
            assert_ne!(keys(2).recovery_hash(code), Some(hash), "keyed");
        }
        for bad in [
            "",
            "123456",
            "abcde-abcd",
            "abcde-abcdef",
            "abcde-abcdi",
            "abcde-abcdé",
        ] {
            assert_eq!(k.recovery_hash(bad), None, "{bad:?}");
        }
    }
}
