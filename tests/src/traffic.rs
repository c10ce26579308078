//! Steady message traffic for failure tests, and the check that follows it: every
//! acknowledged message is in every member's view exactly once, in seq order.
//!
//! Each sender sends numbered texts one after the other. A send that fails (its node died, the
//! service is briefly unavailable) is retried with the same `client_msg_id` until it is
//! acknowledged, so every message the test started ends up acknowledged and the views must
//! hold exactly those; the idempotency key is what keeps a retried send from being stored twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chatproto::client::new_client_msg_id;
use chatproto::pb;
use tokio::task::JoinHandle;

use crate::users::{TestUser, messages_in};

/// How long one message may take to be acknowledged, retries included (a client whose node
/// was killed notices only when its connection times out).
pub const ACK_TIMEOUT: Duration = Duration::from_secs(90);

/// An acknowledged message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Acked {
    /// Its seq in the chat.
    pub seq: u64,
    /// Its text (unique per test: `"{sender} {n}"`).
    pub text: String,
}

/// Senders running in the background until stopped.
#[derive(Debug)]
pub struct Traffic {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Vec<Acked>>>,
}

impl Traffic {
    /// Starts one sender per user in `senders`, each sending into `chat_id` every `gap` until
    /// it has sent `max_per_sender` messages or [`Traffic::finish`] is called.
    pub fn start(
        senders: &[&TestUser],
        chat_id: u64,
        gap: Duration,
        max_per_sender: usize,
    ) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = senders
            .iter()
            .map(|user| {
                let client = user.client.clone();
                let name = user.name.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let mut acked = Vec::new();
                    for n in 0..max_per_sender {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let text = format!("{name} {n}");
                        let request = pb::SendMessage {
                            chat_id,
                            client_msg_id: new_client_msg_id(),
                            kind: pb::MessageKind::Text as i32,
                            text: text.clone(),
                            ..Default::default()
                        };
                        let deadline = tokio::time::Instant::now() + ACK_TIMEOUT;
                        let message = loop {
                            match client.send_message(request.clone()).await {
                                Ok(message) => break message,
                                Err(e) if tokio::time::Instant::now() < deadline => {
                                    tracing::info!(%name, n, error = %e, "send failed, retrying with the same id");
                                    tokio::time::sleep(Duration::from_millis(200)).await;
                                }
                                Err(e) => panic!("{name}: message {n} not acknowledged within {ACK_TIMEOUT:?}: {e}"),
                            }
                        };
                        assert_eq!(message.text, text, "{name}: the acknowledged message is another one");
                        acked.push(Acked { seq: message.seq, text });
                        tokio::time::sleep(gap).await;
                    }
                    acked
                })
            })
            .collect();
        Traffic { stop, tasks }
    }

    /// Stops the senders (each finishes the message it is sending) and returns every
    /// acknowledged message, sorted by seq.
    ///
    /// # Panics
    /// When a sender panicked, or two acknowledgements carry the same seq.
    pub async fn finish(self) -> Vec<Acked> {
        self.stop.store(true, Ordering::Relaxed);
        self.join().await
    }

    /// Waits for every sender to send all its messages and returns every acknowledged message,
    /// sorted by seq.
    ///
    /// # Panics
    /// When a sender panicked, or two acknowledgements carry the same seq.
    pub async fn join(self) -> Vec<Acked> {
        let mut all = Vec::new();
        for task in self.tasks {
            all.extend(
                task.await
                    .unwrap_or_else(|e| panic!("a sender failed: {e}")),
            );
        }
        all.sort();
        for pair in all.windows(2) {
            assert_ne!(
                pair[0].seq, pair[1].seq,
                "two acknowledged messages share a seq: {pair:?}"
            );
        }
        all
    }
}

/// Waits until every user has received `acked` in `chat_id` and checks each user's view: the
/// `MessageCreated` events received and the history both hold exactly the acknowledged
/// messages, once each, in seq order.
///
/// # Panics
/// When a view differs, with what is missing or extra.
pub async fn assert_views(users: &[&TestUser], chat_id: u64, acked: &[Acked], timeout: Duration) {
    let expected: Vec<(u64, String)> = acked.iter().map(|a| (a.seq, a.text.clone())).collect();
    for user in users {
        let arrived = user
            .log
            .wait_for(timeout, |events| {
                let received = messages_in(events, chat_id);
                expected
                    .iter()
                    .all(|(seq, _)| received.iter().any(|(s, _)| s == seq))
                    .then_some(())
            })
            .await;
        let received: Vec<(u64, String)> = user
            .received_messages(chat_id)
            .into_iter()
            .map(|(seq, m)| (seq, m.text))
            .collect();
        if arrived.is_none() {
            let missing: Vec<&(u64, String)> = expected
                .iter()
                .filter(|e| !received.iter().any(|r| r.0 == e.0))
                .collect();
            panic!(
                "{} is missing {} acknowledged messages after {timeout:?}: {missing:?}",
                user.name,
                missing.len()
            );
        }
        assert_eq!(
            received, expected,
            "{}: events received (each once, in seq order)",
            user.name
        );
        let history: Vec<(u64, String)> = user
            .history(chat_id)
            .await
            .unwrap_or_else(|e| panic!("{}: history: {e}", user.name))
            .into_iter()
            .map(|m| (m.seq, m.text))
            .collect();
        assert_eq!(history, expected, "{}: history", user.name);
    }
}
