//! What drives the machine on a node: the [`CallBook`] in its [`BookHome`] (this node's memory,
//! never locked across an await, or the cluster's shared store), the timer that ends unanswered
//! calls and, in a cluster, the sweep that ends the part in calls of nodes that went away, and
//! the effects of each transition (the `call` event to both users' connections that negotiated
//! `calls`, the `group_call` event to the group's members, the `call_ended` entry in the chat's
//! history), which delivery carries to whichever node each connection is on. The handlers
//! (`handlers::calls`, `handlers::group_calls`) call it; so does the connection layer when a
//! connection goes away.

use std::sync::{Arc, Weak};
use std::time::Duration;

use chatproto::pb;

use super::group::GroupRecord;
use super::home::{BookError, BookHome};
use super::machine::{CallBook, Device, Gone, Transition};
use super::turn::TurnSecret;
use crate::delivery::Delivery;
use crate::delivery::members::Audience;
use crate::notify::Notifier;
use crate::store::{Store, StoreError};

/// The ICE servers clients get (spec 14.5).
#[derive(Debug, Clone)]
pub struct IceSettings {
    /// STUN and TURN URLs.
    pub urls: Vec<String>,
    /// The keys, whose current `turn` key signs TURN credentials (configured when there are
    /// TURN URLs).
    pub keys: Arc<crate::auth::keys::Keys>,
    /// How long TURN credentials stay valid.
    pub ttl: Duration,
}

/// How often a node of a cluster looks at the shared book (ring deadlines set by other nodes,
/// nodes gone) when nothing wakes it earlier.
pub const SHARED_TICK: Duration = Duration::from_millis(500);

/// The calls of this node (and, in a cluster, its share of the cluster's).
pub struct CallService {
    home: BookHome,
    ring: Duration,
    ice: IceSettings,
    store: Arc<dyn Store>,
    delivery: Arc<Delivery>,
    /// Tells the callee of a missed call (protocol.md section 15).
    notifier: Arc<Notifier>,
    /// Wakes the timer when a deadline may have moved earlier.
    wake: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for CallService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallService")
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}

impl CallService {
    /// Calls kept in `home`, ringing for `ring`, recorded in `store`, announced through
    /// `delivery`. Call [`start`](Self::start) inside a runtime.
    pub fn new(
        home: BookHome,
        ring: Duration,
        ice: IceSettings,
        store: Arc<dyn Store>,
        delivery: Arc<Delivery>,
        notifier: Arc<Notifier>,
    ) -> Arc<Self> {
        Arc::new(CallService {
            home,
            ring,
            ice,
            store,
            delivery,
            notifier,
            wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Starts the timer that ends unanswered calls as MISSED (and, with a shared book, sweeps
    /// for gone nodes); it stops with the last handle.
    pub fn start(self: &Arc<Self>) {
        let weak: Weak<CallService> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(service) = weak.upgrade() else {
                    return;
                };
                let now = crate::clock::now_ms();
                let next = match service.tick(now).await {
                    Ok(next) => next,
                    Err(e) => {
                        tracing::warn!(error = %e, "call timer: the call state is unavailable");
                        Some(now.saturating_add(1000))
                    }
                };
                let mut wait = next.map_or(Duration::from_secs(3600), |at| {
                    Duration::from_millis(u64::try_from(at.saturating_sub(now)).unwrap_or(0))
                });
                if service.home.is_shared() {
                    wait = wait.min(SHARED_TICK);
                }
                let wake = Arc::clone(&service.wake);
                // Not holding the service while asleep, so dropping the node stops the timer.
                // A wake-up sent meanwhile is kept by the Notify as a permit.
                drop(service);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = wake.notified() => {}
                }
            }
        });
    }

    /// One round of the timer: unanswered calls end MISSED; with a shared book this node says
    /// it is alive and ends the part in calls of nodes that are gone. Returns the next deadline.
    async fn tick(&self, now: i64) -> Result<Option<i64>, BookError> {
        let me = self.delivery.node_tag();
        let (expired, in_use, mine, next) = self
            .home
            .update(|b| {
                (
                    b.expire(now),
                    b.nodes_in_use(),
                    b.devices_on(me),
                    b.next_deadline(),
                )
            })
            .await?;
        for t in expired {
            self.apply(t, now).await;
        }
        let BookHome::Shared(shared) = &self.home else {
            return Ok(next);
        };
        shared.heartbeat(me).await?;
        // Connections of this node that closed while the shared book could not be changed: the
        // book still has them taking part.
        let closed: Vec<Device> = mine
            .into_iter()
            .filter(|d| !self.delivery.is_connected(d.user_id, d.conn_id))
            .collect();
        if !closed.is_empty() {
            let gone = self
                .home
                .update(|b| b.all_disconnected(&closed, now))
                .await?;
            self.apply_gone(gone, now).await;
        }
        let others: Vec<u32> = in_use.into_iter().filter(|n| *n != me).collect();
        for node in shared.gone(&others).await? {
            let gone = self.home.update(|b| b.node_gone(node, now)).await?;
            tracing::info!(
                node,
                calls = gone.calls.len(),
                groups = gone.groups.len(),
                "a node taking part in calls is gone"
            );
            self.apply_gone(gone, now).await;
        }
        Ok(next)
    }

    /// Carries out what connections that went away ended.
    async fn apply_gone(&self, gone: Gone, now: i64) {
        for t in gone.calls {
            self.apply(t, now).await;
        }
        for call in &gone.groups {
            self.apply_group(call, now).await;
        }
    }

    /// How long a call rings, in milliseconds.
    pub fn ring_ms(&self) -> i64 {
        i64::try_from(self.ring.as_millis()).unwrap_or(i64::MAX)
    }

    /// Runs the transition `f` on the book (see [`BookHome::update`]: it may run more than
    /// once), then lets the timer look at the deadlines again.
    pub async fn with_book<R>(&self, f: impl FnMut(&mut CallBook) -> R) -> Result<R, BookError> {
        let out = self.home.update(f).await;
        self.wake.notify_one();
        out
    }

    /// Reads the book.
    pub async fn read_book<R>(&self, f: impl FnOnce(&CallBook) -> R) -> Result<R, BookError> {
        self.home.read(f).await
    }

    /// Carries out a transition: the `call` event to both users, and once the call ended its
    /// entry in the chat's history (delivered to the chat's members like any chat event).
    pub async fn apply(&self, t: Transition, now_ms: i64) {
        let call = t.call.to_pb();
        if t.notify {
            let users = [call.caller_id, call.callee_id];
            let event = pb::Event {
                kind: Some(pb::event::Kind::Call(call)),
            };
            self.delivery.notify_calls(&users, &event);
        }
        if let Some(record) = t.record() {
            let users = [call.caller_id, call.callee_id];
            self.record_ended(call.chat_id, call.ended_by, record, &users, now_ms)
                .await;
        }
    }

    /// Carries out a change of a group call: the `group_call` event to the connections of every
    /// member of its chat that negotiated `group_calls`, and once it ended its entry in the
    /// chat's history (spec 14.7).
    pub async fn apply_group(&self, call: &GroupRecord, now_ms: i64) {
        self.apply_group_telling(call, &[], now_ms).await;
    }

    /// Takes back call `id`, whose start was refused after it was made and before anyone was
    /// told (see [`CallBook::withdraw`]); when it cannot, the ring timeout ends it.
    pub async fn withdraw(&self, id: u64) {
        if let Err(e) = self.with_book(|b| b.withdraw(id)).await {
            tracing::warn!(call_id = id, error = %e, "cannot take back a refused call");
        }
    }

    /// Takes back the join of `device` to group call `id` of `chat_id`, refused after it was
    /// made and before anyone was told: a call it started goes without a trace
    /// ([`CallBook::withdraw_group`]); otherwise the device leaves as
    /// [`members_gone`](Self::members_gone) says.
    pub async fn withdraw_join(&self, chat_id: u64, id: u64, device: Device) {
        match self.with_book(|b| b.withdraw_group(id, device)).await {
            Ok(true) => {}
            Ok(false) => self.members_gone(chat_id, &[device.user_id]).await,
            Err(e) => {
                tracing::warn!(call_id = id, error = %e, "cannot take back a refused join");
                self.members_gone(chat_id, &[device.user_id]).await;
            }
        }
    }

    /// `blocker` blocked `blocked`: the private call they share, ringing or active, ends as if
    /// the blocker ended it (spec 9.2).
    pub async fn blocked(&self, blocker: u64, blocked: u64) {
        self.end_by(|b, now| b.end_shared(blocker, blocked, now))
            .await;
    }

    /// `by` deleted `chat_id`, whose members were `members`: its calls end. A private call ends
    /// as if `by` ended it (by its caller when `by` is a server admin who takes no part); a
    /// group call as [`members_gone`](Self::members_gone) says. Neither is recorded in the
    /// history, which is gone.
    pub async fn chat_deleted(&self, chat_id: u64, by: u64, members: &[u64]) {
        self.end_by(|b, now| b.end_in_chat(chat_id, members, by, now))
            .await;
        self.members_gone(chat_id, members).await;
    }

    /// Ends the private call `end` picks and ends in the book, if any, and carries it out.
    async fn end_by(&self, mut end: impl FnMut(&mut CallBook, i64) -> Option<Transition>) {
        let now = crate::clock::now_ms();
        match self.with_book(|b| end(b, now)).await {
            Ok(Some(transition)) => self.apply(transition, now).await,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot end a call in the book"),
        }
    }

    /// `users` are no longer members of `chat_id` (removed, left, or the chat was deleted):
    /// their devices leave its group call, each change told as [`apply_group`](Self::apply_group)
    /// does and to them too, so that nobody outside the group stays in its call.
    pub async fn members_gone(&self, chat_id: u64, users: &[u64]) {
        let now = crate::clock::now_ms();
        let changes = self
            .with_book(|b| {
                let Some(id) = b.group_of_chat(chat_id).map(|call| call.id) else {
                    return Vec::new();
                };
                users
                    .iter()
                    .filter_map(|&user| b.leave_group(id, user, now).ok().flatten())
                    .collect::<Vec<_>>()
            })
            .await;
        match changes {
            Ok(changes) => {
                for call in changes {
                    self.apply_group_telling(&call, users, now).await;
                }
            }
            Err(e) => {
                tracing::warn!(chat_id, error = %e, "cannot take former members out of the group call")
            }
        }
    }

    /// [`apply_group`](Self::apply_group), telling `also` besides the chat's members.
    async fn apply_group_telling(&self, call: &GroupRecord, also: &[u64], now_ms: i64) {
        let mut members = match self
            .delivery
            .members()
            .get(&*self.store, call.chat_id)
            .await
        {
            Ok(Some(members)) => members.ids().to_vec(),
            Ok(None) => Vec::new(),
            Err(e) => {
                // The participants at least learn of the change.
                tracing::warn!(call_id = call.id, error = %e, "cannot read the group call's chat members");
                call.participants.iter().map(|p| p.device.user_id).collect()
            }
        };
        let others: Vec<u64> = also
            .iter()
            .copied()
            .filter(|u| !members.contains(u))
            .collect();
        members.extend(others);
        let event = pb::Event {
            kind: Some(pb::event::Kind::GroupCall(call.to_pb(None))),
        };
        self.delivery
            .notify_group_calls(&members, call.chat_id, &event);
        if let Some(record) = call.ended_event() {
            // Its actor is the last participant, who ended it.
            self.record_ended(call.chat_id, call.last_left, record, &[], now_ms)
                .await;
        }
    }

    /// Appends an ended call to its chat's history and delivers it to the chat's members (to
    /// `fallback` when they cannot be read).
    async fn record_ended(
        &self,
        chat_id: u64,
        actor: u64,
        record: pb::CallEnded,
        fallback: &[u64],
        now_ms: i64,
    ) {
        let call_id = record.call_id;
        match self.store.record_call(chat_id, actor, record, now_ms).await {
            Ok(event) => {
                let members = self.delivery.members().get(&*self.store, chat_id).await;
                let audience = match members {
                    Ok(Some(members)) => Audience::members(members),
                    _ => Audience::users(fallback.to_vec()),
                };
                self.notifier.call_ended(&event).await;
                self.delivery.append(event, audience);
            }
            // The chat was deleted: its history went with it; the call still ended.
            Err(StoreError::NotFound(_)) => {
                tracing::debug!(call_id, chat_id, "the ended call's chat is gone");
            }
            Err(e) => {
                // The call still ended.
                tracing::warn!(call_id, chat_id, error = %e, "cannot record the ended call");
            }
        }
    }

    /// A connection went away: the call it took part in ends DISCONNECTED, or it leaves its
    /// group call.
    pub async fn disconnected(&self, device: Device) {
        let now = crate::clock::now_ms();
        let ended = self
            .with_book(|b| {
                (
                    b.disconnected(device, now),
                    b.group_disconnected(device, now),
                )
            })
            .await;
        match ended {
            Ok((call, group)) => {
                if let Some(t) = call {
                    self.apply(t, now).await;
                }
                if let Some(call) = group {
                    self.apply_group(&call, now).await;
                }
            }
            // The timer ends its part once the book can be changed again (`tick`).
            Err(e) => {
                tracing::warn!(user_id = device.user_id, error = %e, "cannot end the calls of a closed connection")
            }
        }
    }

    /// What `get_ice_servers` answers `user_id`.
    pub fn ice_servers(&self, user_id: u64) -> pb::IceServers {
        let secret = self
            .ice
            .keys
            .current(chatproto::pb::KeyKind::Turn)
            .map(|k| TurnSecret::from_bytes(k.secret));
        super::turn::ice_servers(
            &self.ice.urls,
            secret.as_ref(),
            user_id,
            crate::clock::now_ms(),
            i64::try_from(self.ice.ttl.as_millis()).unwrap_or(i64::MAX),
        )
    }
}
