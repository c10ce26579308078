//! One-click unsubscribe links (RFC 8058) in digest emails: `{base}/unsubscribe?u={user}&t={token}`
//! on the HTTPS server, where `token` is the HMAC-SHA256 of `"chat-unsubscribe/1\n{user}"` in
//! URL-safe base64 without padding, keyed with a key derived from the access-token key (which
//! every node of a cluster shares). A link does not expire: an old email must still stop the
//! next ones. A `POST` to it (what mail clients send for `List-Unsubscribe-Post`) turns the
//! user's email digests off; a `GET` (a person following the link, or a scanner fetching it)
//! only shows a page with the button that posts, so nothing is turned off by fetching.

use base64::Engine as _;
use ring::hmac;

use crate::store::{Store, StoreResult};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The path of the links.
pub const PATH: &str = "/unsubscribe";

/// Makes and checks unsubscribe links.
pub struct UnsubscribeLinks {
    key: hmac::Key,
    base: String,
}

impl std::fmt::Debug for UnsubscribeLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnsubscribeLinks")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl UnsubscribeLinks {
    /// Links under `base` (the HTTPS server's public URL) with a key derived from `secret`.
    pub fn new(secret: &[u8], base: &str) -> Self {
        let derive = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derived = hmac::sign(&derive, b"chatd unsubscribe key/1");
        UnsubscribeLinks {
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    fn message(user: u64) -> String {
        format!("chat-unsubscribe/1\n{user}")
    }

    /// The link of `user`.
    pub fn url(&self, user: u64) -> String {
        let tag = hmac::sign(&self.key, Self::message(user).as_bytes());
        format!(
            "{}{PATH}?u={user}&t={}",
            self.base,
            B64.encode(tag.as_ref())
        )
    }

    /// The user a link's query (`u=..&t=..`) names, when its token is theirs.
    pub fn check(&self, query: &str) -> Option<u64> {
        let mut user = None;
        let mut token = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("u", v)) => user = v.parse::<u64>().ok(),
                Some(("t", v)) => token = B64.decode(v).ok(),
                _ => {}
            }
        }
        let (user, token) = (user?, token?);
        hmac::verify(&self.key, Self::message(user).as_bytes(), &token).ok()?;
        Some(user)
    }
}

/// Turns the email digests of `user` off (their other preferences stay).
pub async fn unsubscribe(store: &dyn Store, user: u64) -> StoreResult<()> {
    let mut prefs = store.notification_prefs(user).await?.unwrap_or_default();
    if prefs.email {
        prefs.email = false;
        store.set_notification_prefs(user, prefs).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_names_its_user_only() {
        let links = UnsubscribeLinks::new(b"key", "https://chat.example/");
        let url = links.url(42);
        let query = url
            .strip_prefix("https://chat.example/unsubscribe?")
            .expect("under the base");
        assert_eq!(links.check(query), Some(42));
        assert_eq!(links.check(&query.replace("u=42", "u=43")), None);
        assert_eq!(links.check("u=42"), None);
        let other = UnsubscribeLinks::new(b"other key", "https://chat.example");
        assert_eq!(other.check(query), None);
    }
}
