//! Micro-benchmarks of delivery's pieces, so that a regression shows without a full load test
//! (`cargo bench -p chatd --bench delivery`):
//! - `redact`: encoding a committed message event once for members, and the placeholder a
//!   viewer who blocked the sender gets;
//! - `sequencer`: one committed event through the face (`Delivery::append`) to the 100 members
//!   of a room connected to this node: order, redaction, and a push onto each connection's
//!   queue;
//! - `relay`: what goes over Redis for one chat event, encoded and decoded.

use std::sync::Arc;

use bytes::Bytes;
use chatd::testing::SqliteStore;
use chatd::testing::delivery::{
    Audience, Body, ChatEventFrames, ChatFrame, ChatMembers, ConnHandle, Delivery, Envelope,
    InProcessRelay, MemberCache, Outbox, Viewer,
};
use chatproto::pb;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures_util::FutureExt as _;

/// The workload's message: 128 bytes of text, from user 1.
fn message_event(chat_id: u64, seq: u64) -> pb::ChatEvent {
    pb::ChatEvent {
        chat_id,
        seq,
        at_ms: 1_700_000_000_000,
        actor_id: 1,
        body: Some(pb::chat_event::Body::MessageCreated(pb::Message {
            chat_id,
            seq,
            sender_id: 1,
            kind: pb::MessageKind::Text as i32,
            text: "x".repeat(128),
            client_msg_id: "0123456789abcdef".into(),
            sent_at_ms: 1_700_000_000_000,
            ..Default::default()
        })),
    }
}

fn redact(c: &mut Criterion) {
    let mut group = c.benchmark_group("redact");
    group.bench_function("encode_member_frame", |b| {
        b.iter_batched(
            || message_event(7, 42),
            ChatEventFrames::committed,
            BatchSize::SmallInput,
        )
    });
    let blocker = Viewer::new(2, [1]);
    group.bench_function("placeholder_frame", |b| {
        b.iter_batched(
            || ChatEventFrames::committed(message_event(7, 42)),
            |frames| frames.frame_for(&blocker).len(),
            BatchSize::SmallInput,
        )
    });
    let member = Viewer::new(3, []);
    let frames = ChatEventFrames::committed(message_event(7, 42));
    group.bench_function("frame_for_member", |b| {
        b.iter(|| frames.frame_for(&member).len())
    });
    group.finish();
}

fn sequencer(c: &mut Criterion) {
    const MEMBERS: u64 = 100;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("bench.db")).expect("store");
    let delivery = Delivery::new(
        Arc::new(store),
        Arc::new(InProcessRelay::solo()),
        MemberCache::new(),
    );
    let outboxes: Vec<Arc<Outbox>> = runtime.block_on(async {
        let mut outboxes = Vec::new();
        for user in 1..=MEMBERS {
            let (handle, outbox) = ConnHandle::detached(delivery.next_conn_id(), user);
            let mark = delivery.kick_mark();
            let _ = delivery.attach(handle, mark).await.expect("attach");
            outboxes.push(outbox);
        }
        outboxes
    });
    let members = Arc::new(ChatMembers::new(
        pb::ChatKind::Group,
        (1..=MEMBERS).map(|u| (u, pb::MemberRole::Member)),
    ));
    let mut seq = 0;
    let mut batch = Vec::new();
    c.bench_function("sequencer/append_to_100_connected_members", |b| {
        b.iter_batched(
            || {
                seq += 1;
                // Keep the queues short, as the connections' writers do.
                if seq % 1000 == 0 {
                    for outbox in &outboxes {
                        while !outbox.is_empty() {
                            batch.clear();
                            let _ = outbox.next_batch(&mut batch, usize::MAX).now_or_never();
                        }
                    }
                }
                message_event(9, seq)
            },
            |event| delivery.append(event, Audience::members(members.clone())),
            BatchSize::SmallInput,
        )
    });
}

fn relay(c: &mut Criterion) {
    let frames = ChatEventFrames::committed(message_event(7, 42));
    let envelope = Envelope {
        origin: "node-a".into(),
        body: Some(Body::Chat(ChatFrame {
            chat_id: 7,
            seq: 42,
            frame: frames.member_frame().bytes().clone(),
            actor: frames.actor(),
            ..Default::default()
        })),
    };
    let mut group = c.benchmark_group("relay");
    group.bench_function("encode_chat_event", |b| b.iter(|| envelope.to_bytes()));
    let bytes: Bytes = envelope.to_bytes();
    group.bench_function("decode_chat_event", |b| {
        b.iter(|| Envelope::from_bytes(&bytes).expect("decode"))
    });
    group.finish();
}

// The macros define undocumented functions.
#[allow(missing_docs)]
mod entry {
    use super::*;
    criterion_group!(benches, redact, sequencer, relay);
}
criterion_main!(entry::benches);
