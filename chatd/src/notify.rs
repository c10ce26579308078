//! Producing notifications (protocol.md section 15): where something happens to a user that
//! they should learn of later — a mention, a reply, a private message while offline, a missed
//! call, being added to a chat — [`Notifier`] decides from the user's preferences, their state
//! of the chat and their blocks whether it makes a notification, records it, and sends it live
//! to the user's connections.
//!
//! An admin broadcast is the one notification not caused by a change in a chat: it goes to
//! every active user at once ([`Notifier::broadcast`]).
//!
//! A notification is a side effect of a change that is already committed: failing to record one
//! is logged and never fails the request that caused it.
//!
//! What a recorded notification leads to beyond the user's connections (email digests,
//! webhook calls) is the [`Onward`] the notifier is given (the `outbox`, which stands on this
//! module, not the other way round).

use std::sync::Arc;

use chatproto::pb;

use crate::clock::now_ms;
use crate::delivery::Delivery;
use crate::store::{Store, StoreResult};

/// What happens to a recorded notification beyond the user's live connections.
#[async_trait::async_trait]
pub trait Onward: Send + Sync {
    /// `n` was recorded for `user`, whose preferences are `prefs`. Never fails the caller:
    /// the notification is recorded already.
    async fn recorded(&self, user: u64, n: &pb::Notification, prefs: &pb::NotificationPrefs);
}

/// Characters of a message's text kept as a notification's preview (protocol.md section 10).
pub const PREVIEW_CHARS: usize = 100;

/// Users whose presence one step of a broadcast's live delivery asks for.
const BROADCAST_PRESENCE_CHUNK: usize = 1000;

/// Minutes in a day: do-not-disturb minutes are below it.
pub const MINUTES_PER_DAY: u32 = 24 * 60;

/// Records notifications and delivers them live.
pub struct Notifier {
    store: Arc<dyn Store>,
    delivery: Arc<Delivery>,
    onward: Arc<dyn Onward>,
    kept: u32,
}

/// What happened, for one recipient.
#[derive(Debug, Clone)]
struct Cause {
    kind: pb::NotificationKind,
    chat_id: u64,
    seq: u64,
    actor: u64,
    preview: String,
}

impl Notifier {
    /// A notifier keeping the newest `kept` notifications of each user, handing each on to
    /// `onward`.
    pub fn new(
        store: Arc<dyn Store>,
        delivery: Arc<Delivery>,
        onward: Arc<dyn Onward>,
        kept: u32,
    ) -> Arc<Self> {
        Arc::new(Notifier {
            store,
            delivery,
            onward,
            kept,
        })
    }

    /// After a message was sent: its mentions, the author of the message it replies to, and in
    /// a private chat the other user when they have no live connection; each recipient gets one
    /// notification, the first of mention, reply, private message that applies.
    pub async fn message_sent(&self, private: bool, message: &pb::Message) {
        let mut recipients: Vec<(u64, pb::NotificationKind)> = message
            .mention_ids
            .iter()
            .map(|&id| (id, pb::NotificationKind::Mention))
            .collect();
        if message.reply_to_seq != 0 {
            match self
                .store
                .message(message.chat_id, message.reply_to_seq)
                .await
            {
                Ok(Some(original)) => {
                    recipients.push((original.sender_id, pb::NotificationKind::Reply));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the message replied to"),
            }
        }
        if private {
            match self.store.members(message.chat_id).await {
                Ok(members) => {
                    let others: Vec<u64> = members
                        .iter()
                        .map(|m| m.user_id)
                        .filter(|&id| id != message.sender_id)
                        .collect();
                    let online = self.delivery.online_among(&others).await;
                    recipients.extend(
                        others
                            .into_iter()
                            .filter(|id| !online.contains(id))
                            .map(|id| (id, pb::NotificationKind::PrivateMessage)),
                    );
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the private chat's members"),
            }
        }
        let mut seen: Vec<u64> = Vec::with_capacity(recipients.len());
        for (user, kind) in recipients {
            if user == message.sender_id || seen.contains(&user) {
                continue;
            }
            seen.push(user);
            let cause = Cause {
                kind,
                chat_id: message.chat_id,
                seq: message.seq,
                actor: message.sender_id,
                preview: preview(&message.text),
            };
            self.record(user, cause).await;
        }
    }

    /// After `actor` added `users` to a chat (or created it with them) in event `seq`: each of
    /// them but the actor is told, in the background (a group may be large).
    pub fn members_added(self: &Arc<Self>, chat_id: u64, seq: u64, actor: u64, users: Vec<u64>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            for user in users.into_iter().filter(|&u| u != actor) {
                let cause = Cause {
                    kind: pb::NotificationKind::AddedToChat,
                    chat_id,
                    seq,
                    actor,
                    preview: String::new(),
                };
                this.record(user, cause).await;
            }
        });
    }

    /// After a call's end was recorded in its chat (`event`, a `call_ended`): the callee of a
    /// call that ended `MISSED` is told.
    pub async fn call_ended(&self, event: &pb::ChatEvent) {
        let Some(pb::chat_event::Body::CallEnded(ended)) = &event.body else {
            return;
        };
        if ended.reason() != pb::CallEndReason::Missed {
            return;
        }
        let callee = match self.store.members(event.chat_id).await {
            Ok(members) => members
                .iter()
                .map(|m| m.user_id)
                .find(|&id| id != ended.caller_id),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the call's chat members");
                None
            }
        };
        if let Some(callee) = callee {
            let cause = Cause {
                kind: pb::NotificationKind::MissedCall,
                chat_id: event.chat_id,
                seq: event.seq,
                actor: ended.caller_id,
                preview: String::new(),
            };
            self.record(callee, cause).await;
        }
    }

    /// An admin's announcement (`admin_broadcast`, protocol.md 9.6): recorded for every active
    /// user in one batched store call (15.2's rules do not apply to it), then sent live in the
    /// background, in chunks, to those of them online on any node. Returns how many users it
    /// was recorded for.
    pub async fn broadcast(
        self: &Arc<Self>,
        admin: u64,
        text: String,
        at_ms: i64,
    ) -> StoreResult<u64> {
        let n = pb::Notification {
            id: 0,
            kind: pb::NotificationKind::Broadcast as i32,
            chat_id: 0,
            message_seq: 0,
            actor_id: admin,
            created_at_ms: at_ms,
            read: false,
            silent: false,
            preview: text,
        };
        let recorded = self
            .store
            .broadcast_notification(n.clone(), self.kept)
            .await?;
        let count = recorded.len() as u64;
        let this = Arc::clone(self);
        tokio::spawn(async move { this.send_broadcast(n, recorded).await });
        Ok(count)
    }

    /// The live part of a broadcast: each copy carries its user's own id, so each online user
    /// gets an event of their own; presence is asked for a chunk of users at a time.
    async fn send_broadcast(&self, template: pb::Notification, recorded: Vec<(u64, u64)>) {
        for chunk in recorded.chunks(BROADCAST_PRESENCE_CHUNK) {
            let users: Vec<u64> = chunk.iter().map(|(u, _)| *u).collect();
            let online = self.delivery.online_among(&users).await;
            for &(user, id) in chunk.iter().filter(|(u, _)| online.contains(u)) {
                let event = pb::Event {
                    kind: Some(pb::event::Kind::Notification(pb::Notification {
                        id,
                        ..template.clone()
                    })),
                };
                self.delivery.notify(&[user], &event, None);
            }
        }
    }

    async fn record(&self, user: u64, cause: Cause) {
        match self.try_record(user, cause).await {
            Ok(Some((n, prefs))) => {
                self.onward.recorded(user, &n, &prefs).await;
                let event = pb::Event {
                    kind: Some(pb::event::Kind::Notification(n)),
                };
                self.delivery.notify(&[user], &event, None);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(user, error = %e, "cannot record a notification"),
        }
    }

    /// The notification recorded for `user` with the user's preferences, or `None` when the
    /// rules of protocol.md 15.2 say there is none.
    async fn try_record(
        &self,
        user: u64,
        cause: Cause,
    ) -> StoreResult<Option<(pb::Notification, pb::NotificationPrefs)>> {
        let prefs = self
            .store
            .notification_prefs(user)
            .await?
            .unwrap_or_default();
        if prefs.disabled || self.store.is_blocked(user, cause.actor).await? {
            return Ok(None);
        }
        let Some(chat) = self.store.user_chat(cause.chat_id, user).await? else {
            return Ok(None);
        };
        if chat.member.left_at_seq.is_some() {
            return Ok(None);
        }
        let now = now_ms();
        let muted = chat.state.muted_until_ms > now;
        let mention = cause.kind == pb::NotificationKind::Mention;
        let wanted = if mention {
            !muted || prefs.mentions_in_muted_chats
        } else {
            !muted && !chat.state.mentions_only
        };
        if !wanted {
            return Ok(None);
        }
        let n = pb::Notification {
            id: 0,
            kind: cause.kind as i32,
            chat_id: cause.chat_id,
            message_seq: cause.seq,
            actor_id: cause.actor,
            created_at_ms: now,
            read: false,
            silent: prefs
                .do_not_disturb
                .as_ref()
                .is_some_and(|d| quiet_at(d, now)),
            preview: cause.preview,
        };
        let n = self.store.append_notification(user, n, self.kept).await?;
        Ok(Some((n, prefs)))
    }
}

/// The start of a message's text, at most [`PREVIEW_CHARS`] characters.
fn preview(text: &str) -> String {
    text.chars().take(PREVIEW_CHARS).collect()
}

/// Whether `now_ms` falls in the do-not-disturb hours: from `start_minute` up to (not
/// including) `end_minute` of the local day at `utc_offset_minutes`, across midnight when the end
/// is smaller; all day when they are equal.
pub fn quiet_at(dnd: &pb::DoNotDisturb, now_ms: i64) -> bool {
    if !dnd.enabled {
        return false;
    }
    let local_minutes = now_ms.div_euclid(60_000) + i64::from(dnd.utc_offset_minutes);
    let minute = u32::try_from(local_minutes.rem_euclid(i64::from(MINUTES_PER_DAY))).unwrap_or(0);
    let (start, end) = (dnd.start_minute, dnd.end_minute);
    match start.cmp(&end) {
        std::cmp::Ordering::Equal => true,
        std::cmp::Ordering::Less => (start..end).contains(&minute),
        std::cmp::Ordering::Greater => minute >= start || minute < end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dnd(start: u32, end: u32, offset: i32) -> pb::DoNotDisturb {
        pb::DoNotDisturb {
            enabled: true,
            start_minute: start,
            end_minute: end,
            utc_offset_minutes: offset,
        }
    }

    const fn at(h: i64, m: i64) -> i64 {
        // 2026-01-01T00:00Z plus h:m.
        1_767_225_600_000 + (h * 60 + m) * 60_000
    }

    #[test]
    fn quiet_hours_across_midnight_at_an_offset() {
        let night = dnd(22 * 60, 7 * 60, 60);
        assert!(quiet_at(&night, at(21, 0)), "22:00 local at UTC+1");
        assert!(!quiet_at(&night, at(20, 59)), "21:59 local");
        assert!(quiet_at(&night, at(5, 59)), "06:59 local");
        assert!(!quiet_at(&night, at(6, 0)), "07:00 local ends it");
        let day = dnd(9 * 60, 17 * 60, -300);
        assert!(quiet_at(&day, at(14, 0)), "09:00 at UTC-5");
        assert!(!quiet_at(&day, at(22, 0)), "17:00 at UTC-5");
        assert!(quiet_at(&dnd(0, 0, 0), at(3, 3)), "equal: all day");
        let mut off = night;
        off.enabled = false;
        assert!(!quiet_at(&off, at(21, 0)));
    }

    #[test]
    fn previews_are_bounded_in_characters() {
        assert_eq!(preview(&"é".repeat(500)).chars().count(), PREVIEW_CHARS);
        assert_eq!(preview("hi"), "hi");
    }
}
