//! Receiving pub/sub messages: reference-counted channel subscriptions, one subscriber
//! connection per Redis shard, and our own re-subscription after every disconnect.
//!
//! # Why we own re-subscription
//! The redis crate can resubscribe by itself after a dropped pub/sub connection, but for sharded
//! channels it sends one `SSUBSCRIBE a b c ...` per node, which the server rejects with
//! CROSSSLOT as soon as the channels hash to different slots; those channels then silently stop
//! receiving (checked against a real 3-master cluster, see
//! `/work/shared/design/engineering-facts.md`). Plain SUBSCRIBE would resubscribe correctly, but
//! on a cluster every PUBLISH is broadcast over the cluster bus to every node, which defeats
//! sharding the channels at all. So on a cluster we keep sharded pub/sub and drive it ourselves:
//! - one dedicated RESP3 connection per master (a [`ShardWorker`]), not shared with commands;
//! - every channel is (un)subscribed with its own one-channel command, so no command can span
//!   slots, and a confirmation always answers exactly one request;
//! - a dropped connection (the library's `Disconnection` push, a failed PING) makes the worker
//!   reconnect with backoff and resubscribe every channel it owns, one by one;
//! - a MOVED answer, or a `sunsubscribe` the server sends by itself (the slot moved), refreshes
//!   the slot map and moves the channel to its new master; the map is also refreshed every few
//!   seconds, so failovers are followed.
//!
//! A standalone Redis is the same with one shard and plain SUBSCRIBE.
//!
//! Messages go to the broker through a bounded queue; when the broker cannot keep up, messages
//! are dropped (and counted) rather than buffered without bound: clients recover missed chat
//! events from the store by gap detection. After a reconnect the broker is told
//! ([`Delivery::Resubscribed`]) so it can drop state that assumed it had seen every message.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::cluster::redis::{Redis, RedisTarget};
use crate::cluster::slots::{SlotMap, key_slot};
use crate::ops::metrics::Metrics;
use crate::resilience::backoff::Backoff;

/// Messages buffered between the subscriber connections and the broker.
pub const DELIVERY_QUEUE: usize = 65_536;

/// How long `subscribe` waits for Redis to confirm a new subscription.
const CONFIRM_WAIT: Duration = Duration::from_millis(500);

/// How often an idle subscriber connection is checked with PING.
const PING_EVERY: Duration = Duration::from_secs(2);

/// How often the slot map is refreshed (cluster only).
const SLOT_REFRESH_EVERY: Duration = Duration::from_secs(5);

/// The pending confirmation of a new subscription (none when the channel was already held, or
/// its shard is not connected: it is then subscribed on reconnect).
#[derive(Debug)]
#[must_use = "await it to know the subscription is live, or drop it"]
pub struct Confirmation(Option<oneshot::Receiver<bool>>);

impl Confirmation {
    /// Waits briefly for Redis to confirm (so a registration is live before the caller answers
    /// its client); never longer than [`CONFIRM_WAIT`].
    pub async fn wait(self) {
        if let Some(ack) = self.0 {
            let _ = tokio::time::timeout(CONFIRM_WAIT, ack).await;
        }
    }
}

/// What the subscriber hands the broker.
#[derive(Debug)]
pub enum Delivery {
    /// A message on a subscribed channel.
    Message {
        /// The channel.
        channel: String,
        /// The payload as published.
        payload: Bytes,
    },
    /// A shard connection came back after a drop and resubscribed: messages published in
    /// between were missed.
    Resubscribed,
}

enum ShardCmd {
    Subscribe(String, Option<oneshot::Sender<bool>>),
    Unsubscribe(String),
}

/// The handle of one shard's worker task.
struct ShardHandle {
    tx: mpsc::UnboundedSender<ShardCmd>,
    connected: Arc<AtomicBool>,
    stop: CancellationToken,
}

#[derive(Default)]
struct Routing {
    slots: SlotMap,
    shards: HashMap<String, ShardHandle>,
    /// The shard each wanted channel was sent to.
    placed: HashMap<String, String>,
}

struct Shared {
    redis: Redis,
    cluster: bool,
    refcounts: Mutex<HashMap<String, usize>>,
    routing: Mutex<Routing>,
    deliveries: mpsc::Sender<Delivery>,
    refresh: Notify,
    cancel: CancellationToken,
    dropped: AtomicU64,
    metrics: Arc<Metrics>,
}

/// The node's pub/sub subscriptions. Cheap to clone.
#[derive(Clone)]
pub struct Subscriber {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("cluster", &self.shared.cluster)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Subscriber {
    /// Starts subscribing through `redis`'s target; messages arrive on the returned receiver.
    /// Everything stops when `cancel` is cancelled.
    pub fn start(
        redis: Redis,
        metrics: Arc<Metrics>,
        cancel: CancellationToken,
    ) -> (Subscriber, mpsc::Receiver<Delivery>) {
        let (tx, rx) = mpsc::channel(DELIVERY_QUEUE);
        let cluster = redis.is_cluster();
        let shared = Arc::new(Shared {
            redis,
            cluster,
            refcounts: Mutex::new(HashMap::new()),
            routing: Mutex::new(Routing::default()),
            deliveries: tx,
            refresh: Notify::new(),
            cancel,
            dropped: AtomicU64::new(0),
            metrics,
        });
        match shared.redis.target().clone() {
            RedisTarget::Standalone(info) => {
                let handle = spawn_worker(shared.clone(), info);
                lock(&shared.routing).shards.insert(String::new(), handle);
            }
            RedisTarget::Cluster(seeds) => {
                tokio::spawn(slot_refresher(shared.clone(), seeds));
            }
        }
        (Subscriber { shared }, rx)
    }

    /// Holds `channel`: the first holder subscribes it in Redis. Synchronous, so callers can
    /// keep it in step with their own bookkeeping under their lock; await the returned
    /// [`Confirmation`] (outside any lock) to know the subscription is live.
    pub fn hold(&self, channel: &str) -> Confirmation {
        // The count and the command change together, so a release racing with a hold cannot
        // leave Redis subscribed to a channel nobody holds (or the reverse).
        let mut counts = lock(&self.shared.refcounts);
        let count = counts.entry(channel.to_owned()).or_insert(0);
        *count += 1;
        if *count > 1 {
            return Confirmation(None);
        }
        let (ack_tx, ack_rx) = oneshot::channel();
        Confirmation(self.shared.place(channel, Some(ack_tx)).then_some(ack_rx))
    }

    /// [`hold`](Self::hold) and wait for the confirmation.
    pub async fn subscribe(&self, channel: &str) {
        self.hold(channel).wait().await;
    }

    /// Releases `channel`: the last holder unsubscribes it.
    pub fn unsubscribe(&self, channel: &str) {
        let mut counts = lock(&self.shared.refcounts);
        match counts.get_mut(channel) {
            Some(count) if *count > 1 => *count -= 1,
            Some(_) => {
                counts.remove(channel);
                let mut routing = lock(&self.shared.routing);
                if let Some(shard) = routing.placed.remove(channel)
                    && let Some(handle) = routing.shards.get(&shard)
                {
                    let _ = handle.tx.send(ShardCmd::Unsubscribe(channel.to_owned()));
                }
            }
            None => {}
        }
    }

    /// True when `channel` is held.
    #[cfg(any(test, feature = "testing"))]
    pub fn is_subscribed(&self, channel: &str) -> bool {
        lock(&self.shared.refcounts).contains_key(channel)
    }
}

impl Shared {
    /// The shard that should carry `channel` under the current map.
    fn shard_of(&self, routing: &Routing, channel: &str) -> Option<String> {
        if self.cluster {
            routing
                .slots
                .master_of(key_slot(channel.as_bytes()))
                .map(str::to_owned)
        } else {
            Some(String::new())
        }
    }

    /// Sends `channel` to its shard. Returns true when an ack will come (the shard is connected).
    fn place(&self, channel: &str, ack: Option<oneshot::Sender<bool>>) -> bool {
        let mut routing = lock(&self.routing);
        let Some(shard) = self.shard_of(&routing, channel) else {
            // No slot map yet: placed when it arrives.
            return false;
        };
        let Some(handle) = routing.shards.get(&shard) else {
            return false;
        };
        let connected = handle.connected.load(Ordering::SeqCst);
        let sent = handle
            .tx
            .send(ShardCmd::Subscribe(
                channel.to_owned(),
                ack.filter(|_| connected),
            ))
            .is_ok();
        routing.placed.insert(channel.to_owned(), shard);
        connected && sent
    }

    /// Applies a new slot map: starts workers for new masters, stops those of vanished ones, and
    /// moves every channel whose master changed.
    fn apply_slots(self: &Arc<Self>, slots: SlotMap, seed: &ConnectionInfo) {
        let wanted: Vec<String> = lock(&self.refcounts).keys().cloned().collect();
        let mut routing = lock(&self.routing);
        if routing.slots == slots && !routing.shards.is_empty() {
            return;
        }
        let masters: HashSet<String> = slots.masters().into_iter().collect();
        routing.shards.retain(|addr, handle| {
            let keep = masters.contains(addr);
            if !keep {
                handle.stop.cancel();
            }
            keep
        });
        for master in &masters {
            if !routing.shards.contains_key(master) {
                match shard_info(seed, master) {
                    Some(info) => {
                        let handle = spawn_worker(self.clone(), info);
                        routing.shards.insert(master.clone(), handle);
                    }
                    None => tracing::warn!(%master, "cannot parse the address of a cluster master"),
                }
            }
        }
        routing.slots = slots;
        for channel in wanted {
            let Some(shard) = self.shard_of(&routing, &channel) else {
                continue;
            };
            let previous = routing.placed.get(&channel).cloned();
            if previous.as_deref() == Some(shard.as_str()) {
                continue;
            }
            if let Some(old) = previous.and_then(|p| routing.shards.get(&p)) {
                let _ = old.tx.send(ShardCmd::Unsubscribe(channel.clone()));
            }
            if let Some(handle) = routing.shards.get(&shard) {
                let _ = handle.tx.send(ShardCmd::Subscribe(channel.clone(), None));
            }
            routing.placed.insert(channel, shard);
        }
    }

    fn forward(&self, push: PushInfo) {
        let mut data = push.data.into_iter();
        let (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) =
            (data.next(), data.next())
        else {
            return;
        };
        let Ok(channel) = String::from_utf8(channel) else {
            return;
        };
        let delivery = Delivery::Message {
            channel,
            payload: Bytes::from(payload),
        };
        if self.deliveries.try_send(delivery).is_err() {
            self.metrics.cluster_dropped("subscriber_behind", 1);
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    "pub/sub messages dropped: the broker is behind"
                );
            }
        }
    }
}

/// Connection settings of a master: its address with the seed's credentials, RESP3.
fn shard_info(seed: &ConnectionInfo, master: &str) -> Option<ConnectionInfo> {
    let (host, port) = master.rsplit_once(':')?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port: u16 = port.parse().ok()?;
    Some(
        seed.clone()
            .set_addr(redis::ConnectionAddr::Tcp(host, port))
            .set_redis_settings(seed.redis_settings().clone()),
    )
}

/// Keeps the slot map current (cluster only).
async fn slot_refresher(shared: Arc<Shared>, seeds: Vec<ConnectionInfo>) {
    let Some(seed) = seeds.first().cloned() else {
        return;
    };
    let fallback_host = match seed.addr() {
        redis::ConnectionAddr::Tcp(host, _) | redis::ConnectionAddr::TcpTls { host, .. } => {
            host.clone()
        }
        _ => "127.0.0.1".to_owned(),
    };
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    loop {
        let wait = match shared
            .redis
            .query::<Value>(redis::cmd("CLUSTER").arg("SLOTS"))
            .await
        {
            Ok(reply) => match SlotMap::from_cluster_slots(&reply, &fallback_host) {
                Ok(map) if !map.is_empty() => {
                    shared.apply_slots(map, &seed);
                    backoff.reset();
                    SLOT_REFRESH_EVERY
                }
                Ok(_) => backoff.next_delay(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the cluster slot map");
                    backoff.next_delay()
                }
            },
            Err(e) => {
                tracing::debug!(error = %e, "cluster slot map refresh failed");
                backoff.next_delay()
            }
        };
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            () = shared.refresh.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

fn spawn_worker(shared: Arc<Shared>, info: ConnectionInfo) -> ShardHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let connected = Arc::new(AtomicBool::new(false));
    let stop = shared.cancel.child_token();
    let worker = ShardWorker {
        shared,
        info,
        commands: rx,
        connected: connected.clone(),
        stop: stop.clone(),
        wanted: HashSet::new(),
    };
    tokio::spawn(worker.run());
    ShardHandle {
        tx,
        connected,
        stop,
    }
}

/// Why a connected worker stopped using its connection.
enum Exit {
    Reconnect,
    Stop,
}

/// One subscriber connection to one shard, reconnected and resubscribed for as long as the node
/// runs.
struct ShardWorker {
    shared: Arc<Shared>,
    info: ConnectionInfo,
    commands: mpsc::UnboundedReceiver<ShardCmd>,
    connected: Arc<AtomicBool>,
    stop: CancellationToken,
    wanted: HashSet<String>,
}

impl ShardWorker {
    fn verbs(&self) -> (&'static str, &'static str) {
        if self.shared.cluster {
            ("SSUBSCRIBE", "SUNSUBSCRIBE")
        } else {
            ("SUBSCRIBE", "UNSUBSCRIBE")
        }
    }

    async fn run(mut self) {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
        let mut first = true;
        loop {
            if self.stop.is_cancelled() || self.shared.redis.is_halted() {
                return;
            }
            match self.connect().await {
                Ok((conn, pushes, lost)) => {
                    match self.serve(conn, pushes, lost, first).await {
                        Exit::Stop => return,
                        Exit::Reconnect => {}
                    }
                    self.connected.store(false, Ordering::SeqCst);
                    first = false;
                    backoff.reset();
                }
                Err(e) => {
                    tracing::debug!(addr = %self.info.addr(), error = %e, "pub/sub connection failed")
                }
            }
            // Wait before the next attempt, still taking note of (un)subscriptions.
            let sleep = tokio::time::sleep(backoff.next_delay());
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    () = &mut sleep => break,
                    () = self.stop.cancelled() => return,
                    cmd = self.commands.recv() => match cmd {
                        Some(cmd) => self.note(cmd),
                        None => return,
                    },
                }
            }
        }
    }

    /// Records a command while disconnected: it takes effect on the next connection.
    fn note(&mut self, cmd: ShardCmd) {
        match cmd {
            ShardCmd::Subscribe(channel, ack) => {
                self.wanted.insert(channel);
                if let Some(ack) = ack {
                    let _ = ack.send(false);
                }
            }
            ShardCmd::Unsubscribe(channel) => {
                self.wanted.remove(&channel);
            }
        }
    }

    async fn connect(
        &self,
    ) -> redis::RedisResult<(MultiplexedConnection, mpsc::Receiver<PushInfo>, Arc<Notify>)> {
        let info = self.info.clone().set_redis_settings(
            self.info
                .redis_settings()
                .clone()
                .set_protocol(ProtocolVersion::RESP3),
        );
        let client = redis::Client::open(info)?;
        let (tx, rx) = mpsc::channel::<PushInfo>(DELIVERY_QUEUE);
        let lost = Arc::new(Notify::new());
        let lost_signal = lost.clone();
        let shared = self.shared.clone();
        let sender = move |push: PushInfo| -> Result<(), std::convert::Infallible> {
            if push.kind == PushKind::Disconnection {
                lost_signal.notify_one();
            } else if tx.try_send(push).is_err() {
                shared.metrics.cluster_dropped("subscriber_behind", 1);
                shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        };
        let timeout = self.shared.redis.timeout();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_push_sender(sender);
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok((conn, rx, lost))
    }

    /// Sends one command: a one-channel (un)subscribe, or a PING (no channel).
    async fn send(
        &self,
        conn: &mut MultiplexedConnection,
        verb: &str,
        channel: Option<&str>,
    ) -> redis::RedisResult<()> {
        let mut cmd = redis::cmd(verb);
        if let Some(channel) = channel {
            cmd.arg(channel);
        }
        let fut = cmd.query_async::<()>(conn);
        match tokio::time::timeout(self.shared.redis.timeout(), fut).await {
            Ok(result) => result,
            Err(_) => Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "pub/sub command timed out",
            ))),
        }
    }

    /// Subscribes one channel; `Err(())` means the connection must be replaced.
    async fn subscribe_one(
        &self,
        conn: &mut MultiplexedConnection,
        channel: &str,
    ) -> Result<bool, ()> {
        let (subscribe, _) = self.verbs();
        match self.send(conn, subscribe, Some(channel)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Moved) => {
                // The slot moved: the refreshed map places the channel on its new master.
                self.shared.refresh.notify_one();
                Ok(false)
            }
            Err(e) => {
                tracing::debug!(channel, error = %e, "subscribe failed: reconnecting");
                Err(())
            }
        }
    }

    async fn serve(
        &mut self,
        mut conn: MultiplexedConnection,
        mut pushes: mpsc::Receiver<PushInfo>,
        lost: Arc<Notify>,
        first: bool,
    ) -> Exit {
        let channels: Vec<String> = self.wanted.iter().cloned().collect();
        for channel in &channels {
            if self.subscribe_one(&mut conn, channel).await.is_err() {
                return Exit::Reconnect;
            }
        }
        self.connected.store(true, Ordering::SeqCst);
        if !first {
            tracing::info!(addr = %self.info.addr(), channels = channels.len(), "pub/sub reconnected and resubscribed");
            let _ = self.shared.deliveries.send(Delivery::Resubscribed).await;
        }
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (subscribe_kind, unsubscribe_kind) = if self.shared.cluster {
            (PushKind::SMessage, PushKind::SUnsubscribe)
        } else {
            (PushKind::Message, PushKind::Unsubscribe)
        };
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return Exit::Stop,
                () = lost.notified() => return Exit::Reconnect,
                push = pushes.recv() => {
                    let Some(push) = push else { return Exit::Reconnect };
                    if push.kind == subscribe_kind {
                        self.shared.forward(push);
                    } else if push.kind == unsubscribe_kind {
                        // The server unsubscribed us from a channel we still want (its slot
                        // moved): the connection's request/reply pairing is no longer
                        // trustworthy, so start over with a fresh map.
                        let still_wanted = matches!(push.data.first(), Some(Value::BulkString(c))
                            if std::str::from_utf8(c).is_ok_and(|c| self.wanted.contains(c)));
                        if still_wanted {
                            self.shared.refresh.notify_one();
                            return Exit::Reconnect;
                        }
                    }
                }
                cmd = self.commands.recv() => match cmd {
                    None => return Exit::Stop,
                    Some(ShardCmd::Subscribe(channel, ack)) => {
                        self.wanted.insert(channel.clone());
                        let result = self.subscribe_one(&mut conn, &channel).await;
                        if let Some(ack) = ack {
                            let _ = ack.send(matches!(result, Ok(true)));
                        }
                        if result.is_err() {
                            return Exit::Reconnect;
                        }
                    }
                    Some(ShardCmd::Unsubscribe(channel)) => {
                        self.wanted.remove(&channel);
                        let (_, unsubscribe) = self.verbs();
                        if self.send(&mut conn, unsubscribe, Some(&channel)).await.is_err() {
                            return Exit::Reconnect;
                        }
                    }
                },
                _ = ping.tick() => {
                    if self.shared.redis.is_halted() {
                        return Exit::Stop;
                    }
                    if self.send(&mut conn, "PING", None).await.is_err() {
                        return Exit::Reconnect;
                    }
                }
            }
        }
    }
}
