//! Sealing small secrets the server must read again (authenticated encryption, ChaCha20-Poly1305)
//! under keys derived from the token key, which lives in the key directory and never in the
//! database: two-factor secrets (`two_factor`) and the emailed codes waiting in the outbox
//! (`account_codes`), each under a key of its own. The user's id is the associated data, so a
//! sealed value copied to another account does not open there.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::auth::token::TokenKey;

/// Version byte of a sealed value, so a later key hierarchy can tell its formats apart.
const SEAL_VERSION: u8 = 1;

/// A sealed value that does not open (another key, another user, or damaged bytes), or one
/// that could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sealed secret does not open with this server's key")]
pub struct SealError;

/// The cipher refused a key (never for the 32-byte keys [`TokenKey::derive`] makes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sealing key was refused by the cipher")]
pub struct KeyError;

/// One sealing key.
pub(crate) struct Sealer(LessSafeKey);

impl Sealer {
    /// The key of the purpose `label`, derived from the token key.
    pub(crate) fn derive(token_key: &TokenKey, label: &str) -> Result<Sealer, KeyError> {
        let key = token_key.derive(label);
        let key = UnboundKey::new(&CHACHA20_POLY1305, &key).map_err(|_| KeyError)?;
        Ok(Sealer(LessSafeKey::new(key)))
    }

    /// `plain` sealed for `user_id`: version, random nonce, ciphertext and tag.
    pub(crate) fn seal(&self, user_id: u64, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        // 96 random bits per seal: a nonce repeats (under one key) only after about 2^48
        // seals, far beyond how often values are sealed.
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut body = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(user_id.to_be_bytes()),
                &mut body,
            )
            .map_err(|_| SealError)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + body.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The value [`seal`](Self::seal) sealed for `user_id`.
    pub(crate) fn open(&self, user_id: u64, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let (&version, rest) = sealed.split_first().ok_or(SealError)?;
        if version != SEAL_VERSION || rest.len() < NONCE_LEN {
            return Err(SealError);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError)?;
        let mut body = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(user_id.to_be_bytes()), &mut body)
            .map_err(|_| SealError)?;
        Ok(plain.to_vec())
    }
}
