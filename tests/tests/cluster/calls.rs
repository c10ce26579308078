//! Calls on two chatd processes on FerretDB and a Redis Cluster (spec 14.8): a group call
//! started on node0 and joined from node1, signaled across them, outlives node0 killed with
//! SIGKILL: node1 takes node0's device out of it once node0 stops heartbeating, the others go on
//! signaling, and the last to leave ends it in the group's history. A user in the call is busy
//! for a private call from the other node, and a private call ringing from node0 ends
//! DISCONNECTED.

use std::time::Duration;

use chatproto::client::ClientEvent;
use chatproto::pb;
use chatproto::pb::group_call_signal::Kind as Signal;
use tests::calls::{join_group_call, leave_group_call, offer_to_device};
use tests::cluster::{ChatCluster, ClusterSpec};
use tests::users::{TestUser, create_group};

/// How long an event may take to cross nodes, or a killed node to be noticed.
const LIVE: Duration = Duration::from_secs(20);

/// The latest `group_call` event of `call_id` whose users are `users`.
async fn group_with(user: &TestUser, call_id: u64, users: &[u64]) -> pb::GroupCall {
    user.log
        .wait_for(LIVE, |events| {
            events.iter().rev().find_map(|e| match e {
                ClientEvent::GroupCall(c)
                    if c.call_id == call_id
                        && c.participants.iter().map(|p| p.user_id).collect::<Vec<_>>()
                            == users =>
                {
                    Some(c.clone())
                }
                _ => None,
            })
        })
        .await
        .unwrap_or_else(|| panic!("{}: no group call with {users:?}", user.name))
}

/// The `group_call_signal` of `call_id` carrying the offer `text` that `user` got.
async fn offer_from(user: &TestUser, call_id: u64, text: &str) -> pb::GroupCallSignal {
    user.log
        .wait_for(LIVE, |events| {
            events.iter().find_map(|e| match e {
                ClientEvent::GroupCallSignal(s)
                    if s.call_id == call_id && s.kind == Some(Signal::Offer(text.to_owned())) =>
                {
                    Some(s.clone())
                }
                _ => None,
            })
        })
        .await
        .unwrap_or_else(|| panic!("{}: no offer {text:?}", user.name))
}

async fn offer(user: &TestUser, call_id: u64, to_device_id: u64, text: &str) {
    offer_to_device(&user.client, call_id, to_device_id, text).await;
}

async fn join(user: &TestUser, chat_id: u64) -> pb::GroupCall {
    join_group_call(&user.client, chat_id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_call_outlives_the_killed_node_it_was_started_on() {
    let spec = ClusterSpec {
        nodes: 2,
        args: vec![
            "--presence-ttl=2s".into(),
            "--heartbeat-interval=500ms".into(),
        ],
        ..ClusterSpec::default()
    };
    let mut cluster = tokio::task::spawn_blocking(move || ChatCluster::start_with(spec))
        .await
        .expect("start cluster");
    let alice = TestUser::register(cluster.client_config(0), "alice").await;
    let erin = TestUser::register(cluster.client_config(0), "erin").await;
    let bob = TestUser::register(cluster.client_config(1), "bob").await;
    let carol = TestUser::register(cluster.client_config(1), "carol").await;
    let dave = TestUser::register(cluster.client_config(1), "dave").await;
    for (user, node) in [
        (&alice, "node0"),
        (&erin, "node0"),
        (&bob, "node1"),
        (&carol, "node1"),
        (&dave, "node1"),
    ] {
        assert_eq!(user.node_id().as_deref(), Some(node), "{}", user.name);
    }
    let group = create_group(&alice, "crew", &[&bob, &carol]).await.id;

    let started = join(&alice, group).await;
    let id = started.call_id;
    let b = join(&bob, group).await.device_id;
    let c = join(&carol, group).await.device_id;
    group_with(&alice, id, &[alice.id, bob.id, carol.id]).await;
    offer(&bob, id, started.device_id, "bob to alice").await;
    assert_eq!(
        offer_from(&alice, id, "bob to alice").await.from_device_id,
        b
    );
    offer(&alice, id, c, "alice to carol").await;
    assert_eq!(
        offer_from(&carol, id, "alice to carol")
            .await
            .from_device_id,
        started.device_id
    );

    // Carol, in the group call through node1, is busy for a call from node0; Dave rings.
    let call = |chat_id| pb::StartCall {
        chat_id,
        video: false,
    };
    let to_carol = erin
        .client
        .create_private_chat(carol.id)
        .await
        .expect("private chat")
        .id;
    let busy = erin
        .client
        .start_call(call(to_carol))
        .await
        .expect("start_call");
    assert_eq!(busy.end_reason, pb::CallEndReason::Busy as i32);
    let to_dave = erin
        .client
        .create_private_chat(dave.id)
        .await
        .expect("private chat")
        .id;
    let ringing = erin
        .client
        .start_call(call(to_dave))
        .await
        .expect("start_call")
        .call_id;
    let state_of = |user: &TestUser, state: pb::CallState| {
        let log = user.log.clone();
        async move {
            log.wait_for(LIVE, |events| {
                events.iter().find_map(|e| match e {
                    ClientEvent::Call(c) if c.call_id == ringing && c.state == state as i32 => {
                        Some(*c)
                    }
                    _ => None,
                })
            })
            .await
        }
    };
    state_of(&dave, pb::CallState::Ringing)
        .await
        .expect("dave's device rings");

    // node0 dies: node1 notices it stopped heartbeating and takes Alice's device out.
    cluster = tokio::task::spawn_blocking(move || {
        cluster.node_mut(0).sigkill();
        cluster
    })
    .await
    .expect("kill node0");
    let now = group_with(&bob, id, &[bob.id, carol.id]).await;
    assert_eq!(now.state, pb::CallState::Active as i32, "the call goes on");
    let dropped = state_of(&dave, pb::CallState::Ended)
        .await
        .expect("the call from node0 ends");
    assert_eq!(dropped.end_reason, pb::CallEndReason::Disconnected as i32);
    offer(&carol, id, b, "carol to bob").await;
    assert_eq!(offer_from(&bob, id, "carol to bob").await.from_device_id, c);
    for user in [&bob, &carol] {
        leave_group_call(&user.client, id).await;
    }
    let record = bob
        .log
        .wait_for(LIVE, |events| {
            events.iter().find_map(|e| match e {
                ClientEvent::Chat(ev) if ev.chat_id == group => match &ev.body {
                    Some(pb::chat_event::Body::CallEnded(c)) => Some(*c),
                    _ => None,
                },
                _ => None,
            })
        })
        .await
        .expect("the ended call in the group's history");
    assert_eq!(
        (record.call_id, record.group, record.caller_id),
        (id, true, alice.id)
    );
    drop(cluster);
}
