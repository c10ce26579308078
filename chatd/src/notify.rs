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

use std::collections::HashMap;
use std::sync::Arc;

use chatproto::pb;

use crate::clock::now_ms;
use crate::delivery::Delivery;
use crate::store::{MemberRecord, Store, StoreResult, UserChatState};

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

/// Added members told per batch of store calls.
const ADDED_BATCH: usize = 500;

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

    /// After a message was sent: its mentions (none for a forward), the author of the message
    /// it replies to, and in a private chat the other user when they have no live connection;
    /// each recipient gets one notification, the first of mention, reply, private message that
    /// applies.
    pub async fn message_sent(&self, private: bool, message: &pb::Message) {
        // A forward repeats whom its original named; the forwarder did not call on them.
        let mentioned: &[u64] = if message.forwarded_from.is_some() {
            &[]
        } else {
            &message.mention_ids
        };
        let mut recipients: Vec<(u64, pb::NotificationKind)> = mentioned
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
            self.record(&[user], &cause).await;
        }
    }

    /// After `actor` added `users` to a chat (or created it with them) in event `seq`: each of
    /// them but the actor is told, in the background (a group may be large), a batch of
    /// [`ADDED_BATCH`] users at a time: three reads and one write per batch, not per user.
    pub fn members_added(self: &Arc<Self>, chat_id: u64, seq: u64, actor: u64, users: Vec<u64>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let users: Vec<u64> = users.into_iter().filter(|&u| u != actor).collect();
            let cause = Cause {
                kind: pb::NotificationKind::AddedToChat,
                chat_id,
                seq,
                actor,
                preview: String::new(),
            };
            for batch in users.chunks(ADDED_BATCH) {
                this.record(batch, &cause).await;
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
            self.record(&[callee], &cause).await;
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

    /// What follows the recording of a broadcast, a chunk of users at a time (their presence
    /// and preferences read once per chunk): each notification is handed on as any other is
    /// (a digest, a webhook call: protocol.md 16), and sent live to the users online, each copy
    /// with its user's own id.
    async fn send_broadcast(&self, template: pb::Notification, recorded: Vec<(u64, u64)>) {
        for chunk in recorded.chunks(BROADCAST_PRESENCE_CHUNK) {
            let users: Vec<u64> = chunk.iter().map(|(u, _)| *u).collect();
            let (online, prefs) = tokio::join!(
                self.delivery.online_among(&users),
                self.store.notification_prefs_of(&users)
            );
            let mut prefs = match prefs {
                Ok(prefs) => Some(prefs.into_iter().collect::<HashMap<_, _>>()),
                Err(e) => {
                    // Without them nobody's choice is known: no email or webhook for this chunk
                    // (the notifications are recorded and sent live all the same).
                    tracing::warn!(error = %e, "cannot read preferences for a broadcast");
                    None
                }
            };
            let copy = |id| pb::Notification {
                id,
                ..template.clone()
            };
            // Live first: the hand-on below writes to the store for each user.
            for &(user, id) in chunk.iter().filter(|(u, _)| online.contains(u)) {
                let event = pb::Event {
                    kind: Some(pb::event::Kind::Notification(copy(id))),
                };
                self.delivery.notify(&[user], &event, None);
            }
            if let Some(prefs) = &mut prefs {
                for &(user, id) in chunk {
                    let mine = prefs.remove(&user).unwrap_or_default();
                    self.onward.recorded(user, &copy(id), &mine).await;
                }
            }
        }
    }

    /// Records the notifications `cause` makes for `users` and delivers them; failures are
    /// logged (the change that caused them is committed already).
    async fn record(&self, users: &[u64], cause: &Cause) {
        match self.try_record(users, cause).await {
            Ok(recorded) => {
                for (user, n, prefs) in recorded {
                    self.deliver(user, n, &prefs).await;
                }
            }
            Err(e) => {
                tracing::warn!(chat_id = cause.chat_id, error = %e, "cannot record notifications")
            }
        }
    }

    /// Hands a recorded notification on and sends it to the user's connections.
    async fn deliver(&self, user: u64, n: pb::Notification, prefs: &pb::NotificationPrefs) {
        self.onward.recorded(user, &n, prefs).await;
        let event = pb::Event {
            kind: Some(pb::event::Kind::Notification(n)),
        };
        self.delivery.notify(&[user], &event, None);
    }

    /// The notifications `cause` makes for `users` (protocol.md 15.2), recorded, with each
    /// user's preferences: their preferences, who of them blocked the actor and their
    /// memberships in one read each, at once, then one batched append.
    async fn try_record(
        &self,
        users: &[u64],
        cause: &Cause,
    ) -> StoreResult<Vec<(u64, pb::Notification, pb::NotificationPrefs)>> {
        let (prefs, blockers, states) = tokio::try_join!(
            self.store.notification_prefs_of(users),
            self.store.blocked_by(cause.actor),
            self.store.member_states(cause.chat_id, users),
        )?;
        let mut prefs: HashMap<u64, pb::NotificationPrefs> = prefs.into_iter().collect();
        let now = now_ms();
        let mut wanted = Vec::new();
        // `states` holds only (former) members among `users`.
        for (member, state) in states {
            let user = member.user_id;
            if blockers.contains(&user) {
                continue;
            }
            let prefs = prefs.remove(&user).unwrap_or_default();
            if let Some(n) = notification(cause, &prefs, &member, &state, now) {
                wanted.push((user, n, prefs));
            }
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let batch = wanted
            .iter()
            .map(|(user, n, _)| (*user, n.clone()))
            .collect();
        let stored = self.store.append_notifications(batch, self.kept).await?;
        Ok(wanted
            .into_iter()
            .zip(stored)
            .map(|((user, _, prefs), n)| (user, n, prefs))
            .collect())
    }
}

/// The notification `cause` makes for a user (not blocking the actor) with `prefs` and this
/// membership and state of the chat, by the rules of protocol.md 15.2; `None` when it makes
/// none.
fn notification(
    cause: &Cause,
    prefs: &pb::NotificationPrefs,
    member: &MemberRecord,
    state: &UserChatState,
    now: i64,
) -> Option<pb::Notification> {
    if prefs.disabled || member.left_at_seq.is_some() {
        return None;
    }
    let muted = state.muted_until_ms > now;
    let mention = cause.kind == pb::NotificationKind::Mention;
    let wanted = if mention {
        !muted || prefs.mentions_in_muted_chats
    } else {
        !muted && !state.mentions_only
    };
    wanted.then(|| pb::Notification {
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
        preview: cause.preview.clone(),
    })
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

    /// Keeps what the notifier hands on.
    #[derive(Default)]
    struct HandedOn(std::sync::Mutex<Vec<(u64, pb::Notification)>>);

    #[async_trait::async_trait]
    impl Onward for HandedOn {
        async fn recorded(&self, user: u64, n: &pb::Notification, _: &pb::NotificationPrefs) {
            self.0.lock().expect("handed on").push((user, n.clone()));
        }
    }

    /// Telling the members of a new group costs a few store commands for all of them (on the
    /// MongoDB store, where each is a round trip), not several per member; the rules still
    /// apply to each (a member who blocked the actor, or turned notifications off, is not told).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn added_members_are_told_in_a_few_store_commands() {
        use crate::delivery::members::MemberCache;
        use crate::delivery::relay::InProcessRelay;
        use crate::store::mongo::{MongoOptions, testserver};
        use crate::store::{NewGroup, NewUser, NotificationQuery};
        use prometheus_client::metrics::counter::Counter;

        const MEMBERS: usize = 120;
        let commands = Counter::default();
        let store: Arc<dyn Store> = Arc::new(
            testserver::store_with(MongoOptions {
                command_counter: Some(commands.clone()),
                ..MongoOptions::default()
            })
            .await,
        );
        let mut ids = Vec::new();
        for n in 0..=MEMBERS {
            let user = store
                .create_user(NewUser {
                    username: format!("u{n}"),
                    email: format!("u{n}@example.test"),
                    password_hash: String::new(),
                    role: pb::Role::User,
                    now_ms: 1,
                })
                .await
                .expect("user");
            ids.push(user.id);
        }
        let (owner, blocker, off) = (ids[0], ids[1], ids[2]);
        store.block(blocker, owner).await.expect("block");
        let disabled = pb::NotificationPrefs {
            disabled: true,
            ..Default::default()
        };
        store
            .set_notification_prefs(off, disabled)
            .await
            .expect("prefs");
        let (chat, created) = store
            .create_group(NewGroup {
                kind: pb::ChatKind::Group,
                title: "many".into(),
                description: String::new(),
                owner,
                member_ids: ids[1..].to_vec(),
                now_ms: 1,
            })
            .await
            .expect("group");
        let delivery = Delivery::new(
            store.clone(),
            Arc::new(InProcessRelay::solo()),
            MemberCache::new(),
        );
        let handed_on = Arc::new(HandedOn::default());
        let notifier = Notifier::new(store.clone(), delivery, handed_on.clone(), 50);

        let before = commands.get();
        notifier.members_added(chat.id, created.seq, owner, ids.clone());
        let told = MEMBERS - 2;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while handed_on.0.lock().expect("handed on").len() < told {
            assert!(
                std::time::Instant::now() < deadline,
                "not every member was told"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let used = commands.get() - before;
        assert!(used <= 12, "{used} store commands to tell {told} members");

        let handed_on = handed_on.0.lock().expect("handed on").clone();
        let mut users: Vec<u64> = handed_on.iter().map(|(u, _)| *u).collect();
        users.sort_unstable();
        assert_eq!(
            users,
            ids[3..].to_vec(),
            "each member once, but the owner and those two"
        );
        for (user, n) in &handed_on {
            assert_eq!(n.kind(), pb::NotificationKind::AddedToChat);
            assert_eq!(
                (n.chat_id, n.message_seq, n.actor_id),
                (chat.id, created.seq, owner)
            );
            let stored = store
                .notifications(NotificationQuery {
                    user_id: *user,
                    unread_only: false,
                    before_id: None,
                    limit: 10,
                })
                .await
                .expect("notifications");
            assert_eq!(stored, vec![n.clone()]);
        }
    }

    #[test]
    fn previews_are_bounded_in_characters() {
        assert_eq!(preview(&"é".repeat(500)).chars().count(), PREVIEW_CHARS);
        assert_eq!(preview("hi"), "hi");
    }
}
