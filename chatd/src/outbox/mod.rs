//! Delivery of notifications beyond the server (protocol.md section 16): email digests of what
//! a user missed while offline, and webhook calls (for SMS or push gateways), through an outbox
//! in the store.
//!
//! Where a notification is recorded, the notifier hands it to [`Outbox`] (its `notify::Onward`),
//! which queues what it leads to: the user's digest step (one per user while one waits, key
//! `digest:{user}`, due after the user's digest interval) and a webhook call (key
//! `webhook:{notification id}`). Every node runs the worker
//! ([`Outbox::run`]): it claims due entries under a lease in the store (so each is attempted by
//! one node at a time, also across a restart), attempts each, and records the outcome: done
//! (deleted), postponed (a digest of a user who is online, or in their do-not-disturb hours),
//! failed (retried after an exponential backoff with jitter) or, after the last attempt, dead: a
//! dead letter that admins list, retry and purge.
//!
//! A digest step reads the user's state when it runs, not when it was queued, and turns into an
//! email entry (rendered, key `email:{user}:{newest notification id}`) before it moves the user's
//! digest mark; a step repeated after a crash queues the same key, so one email.
//!
//! The account emails of section 18 (codes, the notice of a changed address) are email entries
//! too, queued by the handlers through [`Outbox::queue_code`] and
//! [`Outbox::queue_email_changed`].
//!
//! Layout: `digest` (putting a digest together, its templates), `account` (the account emails,
//! and whose addresses may be used at all), `email` (SMTP), `webhook` (HTTP calls and their
//! signature), `unsubscribe` (the one-click links).

mod account;
mod digest;
mod email;
pub mod unsubscribe;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use chatproto::pb;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::auth::account_codes::AccountCodeKeys;
use crate::clock::now_ms;
use crate::delivery::Delivery;
use crate::notify::Onward;
use crate::ops::config::{OutboxSettings, kind_name};
use crate::ops::metrics::Metrics;
use crate::resilience::backoff::Backoff;
use crate::store::{DeliveryOutcome, DeliveryRecord, NewDelivery, Store, StoreError};

pub use self::account::usable_address;
pub use self::unsubscribe::UnsubscribeLinks;

/// Entries claimed at once by one node.
const CLAIM_BATCH: u32 = 16;

/// The digest interval when the user left it at 0 (protocol.md 15.2).
pub const DEFAULT_DIGEST_MINUTES: u32 = 60;

/// What an email entry carries: the rendered message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct EmailPayload {
    to: String,
    subject: String,
    text: String,
    html: String,
    /// The one-click unsubscribe URL (`List-Unsubscribe`); empty for account emails, which
    /// have none.
    unsubscribe: String,
    /// An account email's code, sealed for the user, hex; filled into the bodies' `{{code}}`
    /// when sent (`account`). Empty for others.
    #[serde(default)]
    sealed_code: String,
}

/// What a webhook entry carries: the notification kind (its endpoint is looked up when the call
/// is made, so a changed setting applies to queued calls) and the JSON body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct WebhookPayload {
    kind: i32,
    body: String,
}

/// How one attempt went, when it did not fail.
enum Step {
    /// Delivered (or nothing to deliver any more).
    Done,
    /// Not now: due again then, without counting an attempt.
    Postpone(i64),
}

/// The outbox of one node: queues deliveries and runs the worker.
pub struct Outbox {
    store: Arc<dyn Store>,
    delivery: Arc<Delivery>,
    settings: OutboxSettings,
    mailer: Option<email::Mailer>,
    webhooks: Option<webhook::Caller>,
    links: Option<UnsubscribeLinks>,
    /// Seals the codes of account emails in their entries, and opens them to send.
    codes: Arc<AccountCodeKeys>,
    metrics: Arc<Metrics>,
    /// This worker's claim token (1..=i64::MAX), new at every start.
    holder: u64,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Why the outbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The SMTP settings are unusable (e.g. a bad CA file).
    #[error("email: {0}")]
    Email(String),
    /// The webhook settings are unusable.
    #[error("webhooks: {0}")]
    Webhooks(String),
}

impl Outbox {
    /// The outbox over `store`; `links` signs the unsubscribe links of emails (required when
    /// email is on); `codes` seals the codes of account emails; `keys` holds the webhook
    /// secrets that sign calls; `metrics` counts the attempts.
    pub fn new(
        store: Arc<dyn Store>,
        delivery: Arc<Delivery>,
        settings: OutboxSettings,
        links: Option<UnsubscribeLinks>,
        codes: Arc<AccountCodeKeys>,
        keys: Arc<crate::auth::keys::Keys>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Outbox>, OutboxError> {
        let mailer = match &settings.email {
            Some(email) => {
                if links.is_none() {
                    return Err(OutboxError::Email(
                        "the unsubscribe links need the https server".into(),
                    ));
                }
                Some(email::Mailer::new(email).map_err(OutboxError::Email)?)
            }
            None => None,
        };
        let webhooks = settings
            .webhooks
            .as_ref()
            .map(|w| webhook::Caller::new(w, keys))
            .transpose()
            .map_err(OutboxError::Webhooks)?;
        Ok(Arc::new(Outbox {
            store,
            delivery,
            settings,
            mailer,
            webhooks,
            links,
            codes,
            metrics,
            holder: (rand::random::<u64>() >> 1).max(1),
        }))
    }

    /// The signer of unsubscribe links, when email is on.
    pub fn links(&self) -> Option<&UnsubscribeLinks> {
        self.links.as_ref()
    }
}

#[async_trait::async_trait]
impl Onward for Outbox {
    /// After `n` was recorded for `user` with these preferences: queues the user's digest step
    /// (email on, for them and on the server, and `n` not silent) and the webhook call (their
    /// webhooks on and one configured for the kind). Failures are logged: the notification is
    /// recorded, and this never fails the request that caused it.
    async fn recorded(&self, user: u64, n: &pb::Notification, prefs: &pb::NotificationPrefs) {
        let now = now_ms();
        if self.mailer.is_some() && prefs.email && !n.silent {
            let minutes = match prefs.email_digest_minutes {
                0 => DEFAULT_DIGEST_MINUTES,
                m => m,
            };
            let new = NewDelivery {
                kind: pb::DeliveryKind::Digest,
                key: format!("digest:{user}"),
                user_id: user,
                payload: Vec::new(),
                due_ms: now.saturating_add(i64::from(minutes) * 60_000),
                now_ms: now,
            };
            if let Err(e) = self.store.enqueue_delivery(new).await {
                tracing::warn!(user, error = %e, "cannot queue a digest");
            }
        }
        let kind = n.kind();
        let configured = self
            .settings
            .webhooks
            .as_ref()
            .is_some_and(|w| w.endpoints.iter().any(|e| e.kind == kind));
        if configured && prefs.webhook {
            let payload = WebhookPayload {
                kind: n.kind,
                body: webhook::body(user, n),
            };
            let new = NewDelivery {
                kind: pb::DeliveryKind::Webhook,
                key: format!("webhook:{}", n.id),
                user_id: user,
                payload: encode(&payload),
                due_ms: now,
                now_ms: now,
            };
            if let Err(e) = self.store.enqueue_delivery(new).await {
                tracing::warn!(user, error = %e, "cannot queue a webhook call");
            }
        }
    }
}

impl Outbox {
    /// Runs the worker until `stop`: claims what is due every poll interval.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.settings.poll) => {}
            }
            // A full batch may mean more are due: go on without waiting.
            while self.tick().await >= CLAIM_BATCH as usize {
                if stop.is_cancelled() {
                    return;
                }
            }
        }
    }

    /// The lease of a claim: longer than any attempt can take (every attempt is cut off at its
    /// timeout), so a live holder never loses an entry to another node.
    fn lease(&self) -> Duration {
        let longest = [
            self.settings.email.as_ref().map(|e| e.timeout),
            self.settings.webhooks.as_ref().map(|w| w.timeout),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(Duration::ZERO);
        longest * 2 + Duration::from_secs(30)
    }

    /// Claims the due entries and attempts them; returns how many were claimed.
    pub async fn tick(&self) -> usize {
        self.tick_at(now_ms()).await
    }

    /// [`tick`](Self::tick) as if the clock said `now` (tests move time forward to digest
    /// intervals this way).
    pub async fn tick_at(&self, now: i64) -> usize {
        let lease = i64::try_from(self.lease().as_millis()).unwrap_or(i64::MAX);
        let claimed = match self
            .store
            .claim_deliveries(self.holder, now, lease, CLAIM_BATCH)
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim deliveries");
                return 0;
            }
        };
        let count = claimed.len();
        futures_util::future::join_all(claimed.iter().map(|d| self.settle(d, now))).await;
        count
    }

    /// Attempts one claimed entry and records how it went.
    async fn settle(&self, d: &DeliveryRecord, now: i64) {
        let result = self.attempt(d, now).await;
        let kind = match d.kind {
            pb::DeliveryKind::Digest => "digest",
            pb::DeliveryKind::Email => "email",
            pb::DeliveryKind::Webhook => "webhook",
            pb::DeliveryKind::Unspecified => "unknown",
        };
        let stored = match result {
            Ok(Step::Done) => {
                self.metrics.delivery(kind, "done");
                self.store.finish_delivery(d.id, self.holder).await
            }
            Ok(Step::Postpone(at_ms)) => {
                self.metrics.delivery(kind, "postponed");
                let outcome = DeliveryOutcome::Postpone { at_ms };
                self.store
                    .release_delivery(d.id, self.holder, outcome, now)
                    .await
            }
            Err(error) => {
                let attempts = d.attempts.saturating_add(1);
                let outcome = if attempts >= self.settings.attempts {
                    self.metrics.delivery(kind, "dead");
                    tracing::warn!(delivery = d.id, attempts, %error, "delivery failed for the last time");
                    DeliveryOutcome::Dead { error }
                } else {
                    let delay = Backoff::new(self.settings.retry_base, self.settings.retry_max)
                        .at_attempt(d.attempts)
                        .next_delay();
                    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
                    self.metrics.delivery(kind, "retry");
                    tracing::info!(delivery = d.id, attempts, %error, delay_ms, "delivery failed; retrying");
                    DeliveryOutcome::Retry {
                        at_ms: now.saturating_add(delay_ms),
                        error,
                    }
                };
                self.store
                    .release_delivery(d.id, self.holder, outcome, now)
                    .await
            }
        };
        match stored {
            Ok(()) => {}
            Err(StoreError::NotFound(_)) => {
                tracing::warn!(delivery = d.id, "the delivery's lease was taken over")
            }
            Err(e) => {
                tracing::warn!(delivery = d.id, error = %e, "cannot record a delivery's outcome")
            }
        }
    }

    async fn attempt(&self, d: &DeliveryRecord, now: i64) -> Result<Step, String> {
        match d.kind {
            pb::DeliveryKind::Digest => self.digest(d.user_id, now).await,
            pb::DeliveryKind::Email => {
                let Some(mailer) = &self.mailer else {
                    tracing::info!(delivery = d.id, "email is off: a queued email is dropped");
                    return Ok(Step::Done);
                };
                let mut payload: EmailPayload = decode(&d.payload)?;
                account::fill_code(&self.codes, d.user_id, &mut payload)?;
                mailer.send(d.id, &payload).await?;
                Ok(Step::Done)
            }
            pb::DeliveryKind::Webhook => {
                let payload: WebhookPayload = decode(&d.payload)?;
                let kind = pb::NotificationKind::try_from(payload.kind)
                    .unwrap_or(pb::NotificationKind::Unspecified);
                let endpoint = self
                    .settings
                    .webhooks
                    .as_ref()
                    .and_then(|w| w.endpoints.iter().find(|e| e.kind == kind));
                let (Some(caller), Some(endpoint)) = (&self.webhooks, endpoint) else {
                    tracing::info!(delivery = d.id, "no webhook for the kind any more: dropped");
                    return Ok(Step::Done);
                };
                caller.call(d.id, &endpoint.url, &payload.body).await?;
                Ok(Step::Done)
            }
            pb::DeliveryKind::Unspecified => Err("unknown delivery kind".into()),
        }
    }

    /// Where a dead letter was going, for admins: the address, or the webhook's kind.
    pub fn target(d: &DeliveryRecord) -> String {
        match d.kind {
            pb::DeliveryKind::Email => decode::<EmailPayload>(&d.payload)
                .map(|p| p.to)
                .unwrap_or_default(),
            pb::DeliveryKind::Webhook => decode::<WebhookPayload>(&d.payload)
                .ok()
                .and_then(|p| pb::NotificationKind::try_from(p.kind).ok())
                .map(kind_name)
                .unwrap_or_default(),
            _ => String::new(),
        }
    }
}

fn encode<T: Serialize>(payload: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    serde_json::to_vec(payload).unwrap_or_default()
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("unreadable payload: {e}"))
}
