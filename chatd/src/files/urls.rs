//! Signed, expiring download URLs (protocol.md 13.6).
//!
//! `{base}/f/{file_id}?u={user id}&e={expiry, Unix seconds}&s={signature}`, where the signature
//! is HMAC-SHA256 over `"chat-file-url/1\n{file_id}\n{user id}\n{expiry}"`, in URL-safe base64
//! without padding. The key is derived from the access-token key, which every node of a cluster
//! shares, so a URL made by one node is honoured by all. Changing the file id, the user or the
//! expiry breaks the signature; the server also checks, at every request, that the user may
//! still read the file.

use std::time::Duration;

use base64::Engine as _;
use ring::hmac;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Why a URL is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// A parameter is missing or malformed.
    #[error("malformed download url")]
    Malformed,
    /// The signature does not match the file, user and expiry.
    #[error("bad signature")]
    BadSignature,
    /// The expiry has passed.
    #[error("download url expired")]
    Expired,
}

/// Makes and checks download URLs.
pub struct UrlSigner {
    key: hmac::Key,
    base: String,
    ttl: Duration,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlSigner")
            .field("base", &self.base)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl UrlSigner {
    /// A signer with a key derived from `secret` (the access-token key), URLs under `base`
    /// (e.g. `https://files.example.com`, no trailing slash needed) valid for `ttl`.
    pub fn new(secret: &[u8], base: &str, ttl: Duration) -> Self {
        let derive = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derived = hmac::sign(&derive, b"chatd download url key/1");
        UrlSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            base: base.trim_end_matches('/').to_owned(),
            ttl,
        }
    }

    fn message(file_id: &str, user_id: u64, expires_s: i64) -> String {
        format!("chat-file-url/1\n{file_id}\n{user_id}\n{expires_s}")
    }

    /// A URL for `user_id` to download `file_id`, and when it expires (ms since the epoch).
    pub fn sign(&self, file_id: &str, user_id: u64, now_ms: i64) -> (String, i64) {
        let ttl_s = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let expires_s = (now_ms / 1000).saturating_add(ttl_s.max(1));
        let tag = hmac::sign(
            &self.key,
            Self::message(file_id, user_id, expires_s).as_bytes(),
        );
        let url = format!(
            "{}/f/{file_id}?u={user_id}&e={expires_s}&s={}",
            self.base,
            B64.encode(tag.as_ref())
        );
        (url, expires_s.saturating_mul(1000))
    }

    /// Checks the query string (`u=..&e=..&s=..`) of a URL for `file_id`; returns the user and
    /// the expiry (Unix seconds).
    pub fn verify(&self, file_id: &str, query: &str, now_ms: i64) -> Result<(u64, i64), UrlError> {
        let (mut user, mut expiry, mut sig) = (None, None, None);
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("u", v)) => user = v.parse::<u64>().ok(),
                Some(("e", v)) => expiry = v.parse::<i64>().ok(),
                Some(("s", v)) => sig = B64.decode(v).ok(),
                _ => {}
            }
        }
        let (Some(user), Some(expiry), Some(sig)) = (user, expiry, sig) else {
            return Err(UrlError::Malformed);
        };
        hmac::verify(
            &self.key,
            Self::message(file_id, user, expiry).as_bytes(),
            &sig,
        )
        .map_err(|_| UrlError::BadSignature)?;
        if expiry.saturating_mul(1000) <= now_ms {
            return Err(UrlError::Expired);
        }
        Ok((user, expiry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(url: &str) -> &str {
        url.split_once('?').expect("query").1
    }

    #[test]
    fn urls_verify_until_they_expire_and_not_when_changed() {
        let signer = UrlSigner::new(
            &[7u8; 32],
            "https://files.example/",
            Duration::from_secs(60),
        );
        let now = 1_700_000_000_000;
        let (url, expires) = signer.sign("abc_DEF-1", 42, now);
        assert!(url.starts_with("https://files.example/f/abc_DEF-1?u=42&e="));
        assert_eq!(expires, now + 60_000);
        assert_eq!(
            signer.verify("abc_DEF-1", query(&url), now),
            Ok((42, expires / 1000))
        );
        assert_eq!(
            signer.verify("abc_DEF-1", query(&url), expires),
            Err(UrlError::Expired)
        );
        assert_eq!(
            signer.verify("other", query(&url), now),
            Err(UrlError::BadSignature)
        );
        let other_user = query(&url).replace("u=42", "u=43");
        assert_eq!(
            signer.verify("abc_DEF-1", &other_user, now),
            Err(UrlError::BadSignature)
        );
        let later = query(&url).replace(&format!("e={}", expires / 1000), "e=99999999999");
        assert_eq!(
            signer.verify("abc_DEF-1", &later, now),
            Err(UrlError::BadSignature)
        );
        assert_eq!(
            signer.verify("abc_DEF-1", "u=42", now),
            Err(UrlError::Malformed)
        );
        let another_key = UrlSigner::new(&[8u8; 32], "https://x", Duration::from_secs(60));
        assert_eq!(
            another_key.verify("abc_DEF-1", query(&url), now),
            Err(UrlError::BadSignature)
        );
    }
}
