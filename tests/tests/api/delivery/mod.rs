//! Email and webhook delivery (spec section 16), against real servers: Mailpit (SMTP with
//! STARTTLS or implicit TLS and authentication, read back through its HTTP API) and a webhook
//! receiver on loopback that checks every call's signature.
//!
//! - `email`: digests batched per user, nothing for muted chats or during do-not-disturb, the
//!   one-click unsubscribe link, implicit TLS, nothing without email settings or a usable address.
//! - `webhooks`: signed calls for the users who turned them on.
//! - `recovery`: email verification and password reset by emailed codes (section 18).
//! - `dead_letters`: a failing endpoint retried, dead-lettered and retried by an admin; purge;
//!   admin-only and audited; a restart in the middle of the retries.

mod dead_letters;
mod email;
mod recovery;
mod webhooks;

use std::time::Duration;

use chatproto::pb;
use tests::webhook::WebhookReceiver;

use crate::support::{User, start_with};
use tests::server::TestServer;

/// The webhook secret the servers here sign with.
pub(super) const SECRET: &str = "webhook-signing-secret-for-tests";

/// Now, ms since the epoch.
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The settings of a server with webhooks for mentions, replies and broadcasts at `receiver`,
/// retrying
/// quickly: `attempts` attempts 100 to 200 ms apart.
pub(super) fn webhook_args(
    receiver: &WebhookReceiver,
    dir: &std::path::Path,
    attempts: u32,
) -> Vec<String> {
    let secret = dir.join("webhook-secret");
    std::fs::write(&secret, SECRET).expect("write secret");
    vec![
        format!(
            "--webhooks=mention={base}/hooks/mention,reply={base}/hooks/reply,\
             broadcast={base}/hooks/broadcast",
            base = receiver.base
        ),
        format!("--webhook-secret-file={}", secret.display()),
        "--webhook-timeout=2s".into(),
        format!("--delivery-attempts={attempts}"),
        "--delivery-retry-base=100ms".into(),
        "--delivery-retry-max=200ms".into(),
        "--delivery-poll=100ms".into(),
    ]
}

/// Starts a server with `args`.
pub(super) async fn server(args: &[String]) -> TestServer {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    start_with(&args).await
}

/// `admin` announces "maintenance tonight" to every user (`admin_broadcast`).
pub(super) async fn announce(admin: &User) {
    admin
        .client
        .admin_broadcast(pb::AdminBroadcast {
            text: "maintenance tonight".into(),
        })
        .await
        .expect("broadcast");
}

/// Replaces `user`'s notification preferences.
pub(super) async fn set_prefs(user: &User, prefs: pb::NotificationPrefs) {
    user.client
        .set_notification_prefs(pb::SetNotificationPrefs { prefs: Some(prefs) })
        .await
        .expect("set prefs");
}

/// Turns `user`'s webhooks on (and nothing else).
pub(super) async fn webhooks_on(user: &User) {
    set_prefs(
        user,
        pb::NotificationPrefs {
            webhook: true,
            ..Default::default()
        },
    )
    .await;
}

/// Waits up to `timeout` for `check`.
pub(super) async fn within(timeout: Duration, check: impl AsyncFnMut() -> bool) -> bool {
    tests::process::eventually(timeout, Duration::from_millis(100), check).await
}
