//! Credentials: password hashing, access tokens (JWT), refresh tokens and second factors.
//!
//! Layout:
//! - [`password`]: argon2id hashing and verification off the async runtime, with bounded
//!   concurrency and a dummy verification for unknown users;
//! - [`token`]: short-lived HS256 access tokens with the claims of `chat/1`;
//! - [`refresh`]: opaque single-use refresh tokens, stored as peppered hashes, and their expiry;
//! - [`keyring`], [`keys`]: the rotating keys (token signing, the refresh pepper, the webhook
//!   and TURN secrets), sans-IO and as each node holds them from the store;
//! - [`two_factor`]: TOTP codes and recovery codes, and how their secrets are kept;
//! - [`account_codes`]: the emailed codes of email verification and password reset;
//! - [`seal`]: sealing the secrets the server must read again, under derived keys;
//! - [`touches`]: sessions' last use, written behind the answer;
//! - [`sweep`]: the deletion of dead sessions, a while after they were revoked or expired.

pub mod account_codes;
pub mod keyring;
pub mod keys;
pub mod master_key;
pub mod password;
pub mod refresh;
pub mod seal;
pub mod sweep;
pub mod token;
pub mod touches;
pub mod two_factor;
