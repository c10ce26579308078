//! A signed-in session: serves the update function's commands, forwards the SDK's events,
//! keeps the session file current, marks messages delivered, and runs the outbox.
//!
//! The outbox is the SDK's [`Outbox`], stored per user: a message is written to it before the
//! screen shows it as "sending", sent one at a time (again after every reconnect, with the same
//! `client_msg_id`), and removed only once the server answered. A restart of the client finds
//! the file and sends what is left; the server recognises a repeated `client_msg_id`, so nothing
//! is sent twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatproto::client::store::{Outbox, OutboxOutcome, TokenFile};
use chatproto::client::{Client, ClientEvent};
use chatproto::pb;
use tokio::sync::{Notify, mpsc};
use tokio::task::{AbortHandle, JoinSet};

use super::describe::describe;
use super::{Actions, NetConfig, files, report, requests};
use crate::action::{Action, NetEvent};
use crate::effect::NetCommand;

/// The outbox is tried again this often even without a reconnect (a server that was busy).
const OUTBOX_RETRY: Duration = Duration::from_secs(5);
/// Delivery receipts are gathered this long and sent once per chat.
const DELIVERED_EVERY: Duration = Duration::from_millis(500);

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Signed out, revoked or refused: connect again and sign in.
    SignedOut,
    /// The app is gone.
    Quit,
}

/// Runs the session of `me` until it ends.
pub async fn run(
    config: &NetConfig,
    client: Arc<Client>,
    me: pb::User,
    actions: &Actions,
    commands: &mut mpsc::UnboundedReceiver<NetCommand>,
) -> End {
    let outbox = open_outbox(config, me.id, actions).await;
    let queued: Vec<pb::SendMessage> = outbox.iter().cloned().collect();
    let outbox = Arc::new(Mutex::new(outbox));
    if !report(
        actions,
        NetEvent::SignedIn {
            me: me.clone(),
            max_text_chars: client
                .welcome()
                .and_then(|w| w.limits)
                .map_or(0, |l| l.max_text_chars as usize),
            outbox: queued,
        },
    )
    .await
    {
        return End::Quit;
    }
    let wake = Arc::new(Notify::new());
    let (ended_tx, mut ended) = mpsc::channel(1);
    let mut tasks = JoinSet::new();
    // Transfers by token, to cancel them.
    let mut transfers: HashMap<u64, AbortHandle> = HashMap::new();
    tasks.spawn(run_outbox(
        client.clone(),
        outbox.clone(),
        wake.clone(),
        actions.clone(),
    ));
    tasks.spawn(pump_events(
        client.clone(),
        config.session_file(),
        me.id,
        wake.clone(),
        actions.clone(),
        ended_tx,
    ));
    wake.notify_one();
    let end = loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => break End::Quit,
                Some(NetCommand::SignOut) => {
                    let revoked = client.logout().await;
                    let _ = config.session_file().clear();
                    if let Err(e) = revoked {
                        report(actions, NetEvent::Failed(format!(
                            "Signed out here; the server could not revoke the session: {}", describe(&e)
                        ))).await;
                    }
                    report(actions, NetEvent::SignedOut).await;
                    break End::SignedOut;
                }
                Some(NetCommand::Queue(request)) => {
                    let stored = outbox.lock().map_err(|_| "outbox lock poisoned".to_string())
                        .and_then(|mut o| o.push(request.clone()).map_err(|e| e.to_string()));
                    let event = match stored {
                        Ok(_) => {
                            wake.notify_one();
                            NetEvent::Queued(request)
                        }
                        Err(error) => NetEvent::QueueFailed {
                            client_msg_id: request.client_msg_id,
                            text: request.text,
                            error,
                        },
                    };
                    report(actions, event).await;
                }
                Some(NetCommand::CancelTransfer(token)) => {
                    if let Some(transfer) = transfers.remove(&token) {
                        transfer.abort();
                    }
                }
                Some(command) if files::token(&command).is_some() => {
                    transfers.retain(|_, t| !t.is_finished());
                    let token = files::token(&command).unwrap_or_default();
                    let transfer = tasks.spawn(files::run(
                        client.clone(),
                        config.download_dir.clone(),
                        command,
                        actions.clone(),
                    ));
                    transfers.insert(token, transfer);
                }
                Some(command) => {
                    let client = client.clone();
                    let actions = actions.clone();
                    tasks.spawn(async move {
                        for event in requests::run(client, command).await {
                            if !report(&actions, event).await {
                                return;
                            }
                        }
                    });
                }
            },
            _ = ended.recv() => break End::SignedOut,
        }
    };
    tasks.abort_all();
    client.close().await;
    end
}

/// The user's outbox file; an unreadable one is set aside (renamed) so that new messages can
/// still be queued, and the user is told.
async fn open_outbox(config: &NetConfig, user_id: u64, actions: &Actions) -> Outbox {
    let path = config.outbox_file(user_id);
    match Outbox::open(&path) {
        Ok(outbox) => outbox,
        Err(e) => {
            let aside = path.with_extension("unreadable");
            let _ = std::fs::rename(&path, &aside);
            report(
                actions,
                NetEvent::Failed(format!(
                    "The outbox could not be read ({e}); it was moved to {}",
                    aside.display()
                )),
            )
            .await;
            Outbox::open(&path).unwrap_or_else(|_| Outbox::in_memory())
        }
    }
}

/// Sends the outbox, oldest first, whenever woken (a new message, a reconnect) and every few
/// seconds while something waits.
async fn run_outbox(
    client: Arc<Client>,
    outbox: Arc<Mutex<Outbox>>,
    wake: Arc<Notify>,
    actions: Actions,
) {
    loop {
        loop {
            let event = match client.send_next(&outbox).await {
                Ok(OutboxOutcome::Empty) => break,
                Ok(OutboxOutcome::Sent { request, message }) => NetEvent::Sent { request, message },
                Ok(OutboxOutcome::Rejected { request, error }) => NetEvent::SendRefused {
                    request,
                    error: describe(&error),
                },
                Err(e) => {
                    tracing::debug!(error = %e, "outbox send failed; retrying later");
                    break;
                }
            };
            if !report(&actions, event).await {
                return;
            }
        }
        let waiting = outbox.lock().map(|o| !o.is_empty()).unwrap_or(false);
        if waiting {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(OUTBOX_RETRY) => {}
            }
        } else {
            wake.notified().await;
        }
    }
}

/// Forwards the SDK's events to the app, saves refreshed tokens, wakes the outbox when the
/// connection is back, and marks received messages delivered.
async fn pump_events(
    client: Arc<Client>,
    session_file: TokenFile,
    me: u64,
    wake: Arc<Notify>,
    actions: Actions,
    ended: mpsc::Sender<()>,
) {
    let mut delivered: HashMap<u64, u64> = HashMap::new();
    let mut sent: HashMap<u64, u64> = HashMap::new();
    let mut flush = tokio::time::interval(DELIVERED_EVERY);
    loop {
        let event = tokio::select! {
            event = client.next_event() => event,
            _ = flush.tick() => {
                for (chat_id, seq) in delivered.drain() {
                    if sent.get(&chat_id).is_some_and(|&s| s >= seq) {
                        continue;
                    }
                    sent.insert(chat_id, seq);
                    let client = client.clone();
                    tokio::spawn(async move {
                        let request = pb::MarkReceipt {
                            chat_id,
                            kind: pb::ReceiptKind::Delivered as i32,
                            up_to_seq: seq,
                        };
                        if let Err(e) = client.mark_receipt(request).await {
                            tracing::debug!(chat_id, error = %e, "delivery receipt not sent");
                        }
                    });
                }
                continue;
            }
        };
        let Some(event) = event else {
            let _ = ended.send(()).await;
            return;
        };
        let mut end = false;
        match &event {
            ClientEvent::TokensRefreshed(tokens) => {
                if let Err(e) = session_file.save(tokens) {
                    tracing::warn!(error = %e, "cannot save the refreshed session");
                }
            }
            ClientEvent::Connected { .. } | ClientEvent::CaughtUp => wake.notify_one(),
            ClientEvent::SessionRevoked(_) | ClientEvent::AuthFailed { .. } => {
                let _ = session_file.clear();
                end = true;
            }
            ClientEvent::Chat(pb::ChatEvent {
                chat_id,
                body: Some(pb::chat_event::Body::MessageCreated(m)),
                ..
            }) if m.sender_id != me => {
                let seq = delivered.entry(*chat_id).or_insert(0);
                *seq = (*seq).max(m.seq);
            }
            _ => {}
        }
        if actions
            .send(Action::Net(NetEvent::Client(event)))
            .await
            .is_err()
        {
            return;
        }
        if end {
            let _ = ended.send(()).await;
            return;
        }
    }
}
