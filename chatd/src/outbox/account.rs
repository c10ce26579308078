//! The account emails of protocol.md section 18: a code to verify an address or reset a
//! password, and the notice to an old address that it was replaced. They go through the outbox
//! like digests (a restart keeps them, failures are retried, the last failure is a dead
//! letter), rendered from the templates beside this file, without an unsubscribe link: they
//! are answers to the user's own requests, not notifications.
//!
//! The code itself is not in the rendered bodies: they hold a `{{code}}` placeholder, and the
//! entry carries the code sealed for the user ([`AccountCodeKeys`]); it is opened and filled in
//! only when the email is sent, so a copy of the database shows no live code.

use chatproto::pb;

use super::digest::{escape_html, render};
use super::{EmailPayload, Outbox, encode};
use crate::auth::account_codes::AccountCodeKeys;
use crate::ops::config::EmailSettings;
use crate::rate::format_duration;
use crate::store::{CodePurpose, NewDelivery, StoreError, UserRecord};

const CODE_TEXT: &str = include_str!("templates/account_code.txt");
const CODE_HTML: &str = include_str!("templates/account_code.html");
const CHANGED_TEXT: &str = include_str!("templates/email_changed.txt");
const CHANGED_HTML: &str = include_str!("templates/email_changed.html");

/// The placeholder of the code in rendered bodies.
const CODE_PLACEHOLDER: &str = "{{code}}";

/// Whether the server may use `user`'s address (protocol.md 18.1): verified, or vouched for by
/// the operator (`--email-unverified`); never a deleted or disabled account's.
pub fn usable_address<'a>(user: &'a UserRecord, email: &EmailSettings) -> Option<&'a str> {
    let usable = !user.deleted && !user.disabled && !user.email.is_empty();
    (usable && (user.email_verified || email.unverified)).then_some(user.email.as_str())
}

fn name_of(user: &UserRecord) -> &str {
    if user.display_name.is_empty() {
        &user.username
    } else {
        &user.display_name
    }
}

/// Fills the sealed code into a claimed email's bodies, when it carries one.
pub(super) fn fill_code(
    keys: &AccountCodeKeys,
    user_id: u64,
    payload: &mut EmailPayload,
) -> Result<(), String> {
    if payload.sealed_code.is_empty() {
        return Ok(());
    }
    let sealed = hex::decode(&payload.sealed_code).map_err(|e| format!("sealed code: {e}"))?;
    let code = keys
        .open(user_id, &sealed)
        .map_err(|e| format!("sealed code: {e}"))?;
    payload.text = payload.text.replace(CODE_PLACEHOLDER, &code);
    payload.html = payload.html.replace(CODE_PLACEHOLDER, &code);
    Ok(())
}

impl Outbox {
    /// The email settings, when email is on.
    pub fn email(&self) -> Option<&EmailSettings> {
        self.settings.email.as_ref()
    }

    /// How long a code of `purpose` stays good, when email is on.
    pub fn code_lifetime(&self, purpose: CodePurpose) -> Option<std::time::Duration> {
        self.email().map(|e| match purpose {
            CodePurpose::VerifyEmail => e.verification_code_lifetime,
            CodePurpose::ResetPassword => e.reset_code_lifetime,
        })
    }

    /// Queues the email carrying `code` (of `purpose`) to `to`. Nothing when email is off.
    pub async fn queue_code(
        &self,
        user: &UserRecord,
        to: &str,
        purpose: CodePurpose,
        code: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let Some(lifetime) = self.code_lifetime(purpose) else {
            return Ok(());
        };
        let sealed = self
            .codes
            .seal(user.id, code)
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        let (subject, intro, why) = match purpose {
            CodePurpose::VerifyEmail => (
                "Your email verification code",
                "to confirm that this address is yours, enter this code in the chat app:",
                "If you did not ask for it, ignore this email: the address stays unverified.",
            ),
            CodePurpose::ResetPassword => (
                "Your password reset code",
                "to set a new password, enter this code with it in the chat app:",
                "If you did not ask for it, ignore this email: your password stays as it is.",
            ),
        };
        let lifetime = format_duration(lifetime);
        let vars = [
            ("name", name_of(user)),
            ("username", user.username.as_str()),
            ("subject", subject),
            ("intro", intro),
            ("why", why),
            ("lifetime", lifetime.as_str()),
        ];
        let payload = EmailPayload {
            to: to.to_owned(),
            subject: subject.to_owned(),
            text: render(CODE_TEXT, &vars, &[], |s| s.to_owned()),
            html: render(CODE_HTML, &vars, &[], escape_html),
            unsubscribe: String::new(),
            sealed_code: hex::encode(sealed),
        };
        let nonce: u64 = rand::random();
        self.queue_email(
            user.id,
            format!("code:{}:{nonce:x}", user.id),
            &payload,
            now,
        )
        .await
    }

    /// Queues the notice to `old` that the account's address is now `new`. Nothing when email
    /// is off.
    pub async fn queue_email_changed(
        &self,
        user: &UserRecord,
        old: &str,
        new: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        if self.email().is_none() {
            return Ok(());
        }
        let vars = [
            ("name", name_of(user)),
            ("username", user.username.as_str()),
            ("new", new),
        ];
        let payload = EmailPayload {
            to: old.to_owned(),
            subject: "Your email address was changed".to_owned(),
            text: render(CHANGED_TEXT, &vars, &[], |s| s.to_owned()),
            html: render(CHANGED_HTML, &vars, &[], escape_html),
            unsubscribe: String::new(),
            sealed_code: String::new(),
        };
        let nonce: u64 = rand::random();
        self.queue_email(
            user.id,
            format!("changed:{}:{nonce:x}", user.id),
            &payload,
            now,
        )
        .await
    }

    async fn queue_email(
        &self,
        user_id: u64,
        key: String,
        payload: &EmailPayload,
        now: i64,
    ) -> Result<(), StoreError> {
        let new = NewDelivery {
            kind: pb::DeliveryKind::Email,
            key,
            user_id,
            payload: encode(payload),
            due_ms: now,
            now_ms: now,
        };
        self.store.enqueue_delivery(new).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::token::TokenKey;

    #[test]
    fn a_rendered_code_email_gets_its_code_only_when_sent() {
        let keys = AccountCodeKeys::derive(&TokenKey::from_bytes(vec![3; 32]).unwrap()).unwrap();
        let vars = [
            ("name", "<Ann>"),
            ("username", "ann"),
            ("subject", "s"),
            ("intro", "hi"),
            ("why", "why"),
            ("lifetime", "15m"),
        ];
        let mut payload = EmailPayload {
            to: "ann@example.org".into(),
            subject: "s".into(),
            text: render(CODE_TEXT, &vars, &[], |s| s.to_owned()),
            html: render(CODE_HTML, &vars, &[], escape_html),
            unsubscribe: String::new(),
            sealed_code: hex::encode(keys.seal(7, "abcd-efgh").unwrap()),
        };
        assert!(payload.text.contains(CODE_PLACEHOLDER), "{}", payload.text);
        assert!(payload.html.contains("&lt;Ann&gt;"), "{}", payload.html);
        assert!(
            fill_code(&keys, 8, &mut payload.clone()).is_err(),
            "another user"
        );
        fill_code(&keys, 7, &mut payload).unwrap();
        assert!(payload.text.contains("    abcd-efgh\n"), "{}", payload.text);
        assert!(payload.html.contains("<strong>abcd-efgh</strong>"));
        assert!(!payload.text.contains("{{") && !payload.html.contains("{{"));
    }
}
