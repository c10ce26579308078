//! The codes emailed for email verification and password reset (protocol.md section 18).
//! Sans-IO.
//!
//! A code is 8 characters of Crockford's base32 (40 random bits), shown as `xxxx-xxxx`; case,
//! spaces and dashes do not matter. The store keeps only a keyed hash of it (HMAC-SHA256 under
//! a key derived from the token key, bound to the user and the purpose), so a copy of the
//! database alone neither shows a live code nor lets one be tested offline. Guessing online is
//! bounded by the code's few attempts and its short life, and by the throttles in front.
//!
//! The outbox must still put the code into an email, after a restart too, so the entry carries
//! it sealed under a second derived key ([`crate::auth::seal`]): the database alone opens no
//! code waiting there either.

use ring::hmac;

use crate::auth::seal::{KeyError, SealError, Sealer};
use crate::auth::token::TokenKey;
use crate::auth::two_factor::{canonical_code, new_code};

/// Characters of a code, not counting the dash in its middle.
pub const CODE_CHARS: usize = 8;

/// Wrong attempts a code survives; the last one removes it.
pub const MAX_ATTEMPTS: u32 = 5;

/// The keys of emailed codes, derived from the token key. `Debug` shows no key.
pub struct AccountCodeKeys {
    hash: hmac::Key,
    seal: Sealer,
}

impl std::fmt::Debug for AccountCodeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountCodeKeys(..)")
    }
}

impl AccountCodeKeys {
    /// The keys derived from the token key (each for one purpose).
    pub fn derive(token_key: &TokenKey) -> Result<AccountCodeKeys, KeyError> {
        let hash = token_key.derive("chatd account codes hash v1");
        Ok(AccountCodeKeys {
            hash: hmac::Key::new(hmac::HMAC_SHA256, &hash),
            seal: Sealer::derive(token_key, "chatd account codes seal v1")?,
        })
    }

    /// A new code and its stored form for `user_id` and `purpose` (a store's purpose number).
    pub fn issue(&self, user_id: u64, purpose: u8) -> (String, String) {
        let code = new_code(CODE_CHARS);
        let hash = self.hash(user_id, purpose, &code).unwrap_or_default();
        (code, hash)
    }

    /// The stored form of `code` for `user_id` and `purpose`, or `None` when `code` cannot be
    /// one (wrong length or alphabet).
    pub fn hash(&self, user_id: u64, purpose: u8, code: &str) -> Option<String> {
        let canonical = canonical_code(code, CODE_CHARS)?;
        let mut ctx = hmac::Context::with_key(&self.hash);
        ctx.update(&user_id.to_be_bytes());
        ctx.update(&[purpose]);
        ctx.update(canonical.as_bytes());
        Some(hex::encode(ctx.sign()))
    }

    /// `code` sealed for the outbox entry of `user_id`.
    pub fn seal(&self, user_id: u64, code: &str) -> Result<Vec<u8>, SealError> {
        self.seal.seal(user_id, code.as_bytes())
    }

    /// The code [`seal`](Self::seal) sealed for `user_id`.
    pub fn open(&self, user_id: u64, sealed: &[u8]) -> Result<String, SealError> {
        String::from_utf8(self.seal.open(user_id, sealed)?).map_err(|_| SealError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(byte: u8) -> AccountCodeKeys {
        AccountCodeKeys::derive(&TokenKey::from_bytes(vec![byte; 32]).unwrap()).unwrap()
    }

    #[test]
    fn a_code_hashes_alike_however_typed_and_only_for_its_user_purpose_and_key() {
        let k = keys(1);
        let (code, hash) = k.issue(7, 2);
        assert_eq!(code.len(), CODE_CHARS + 1);
        assert_eq!(code.as_bytes()[CODE_CHARS / 2], b'-');
        let retyped = code.replace('-', " ").to_uppercase();
        assert_eq!(k.hash(7, 2, &retyped), Some(hash.clone()));
        assert_ne!(k.hash(8, 2, &code), Some(hash.clone()), "another user");
        assert_ne!(k.hash(7, 1, &code), Some(hash.clone()), "another purpose");
        assert_ne!(keys(2).hash(7, 2, &code), Some(hash), "another key");
        for bad in ["", "abcd-abc", "abcd-abcde", "abcd-abci", "abcd-abcé"] {
            assert_eq!(k.hash(7, 2, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_sealed_code_opens_only_for_its_user_and_key() {
        let k = keys(1);
        let sealed = k.seal(7, "abcd-efgh").unwrap();
        assert_eq!(k.open(7, &sealed).unwrap(), "abcd-efgh");
        assert_eq!(k.open(8, &sealed), Err(SealError));
        assert_eq!(keys(2).open(7, &sealed), Err(SealError));
    }
}
