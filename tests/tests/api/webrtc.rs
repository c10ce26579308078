//! Calls with real WebRTC peers (spec 14.3): two str0m peers, one per device taking part, signal
//! only through chatd with the SDK over real QUIC (offer, answer, trickled ICE candidates), then
//! open a data channel over loopback UDP and exchange a message each way. Then the caller shares
//! its screen: a renegotiation (a new offer and answer in the active call) adds a video track,
//! and the `screen_share` signal names it; the callee's stack reports that very track. Nothing
//! but chatd carries the SDP and candidates from one peer to the other: one chatd, and then two
//! nodes of a cluster with each peer's device on its own node (spec 14.8).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use chatproto::client::ClientEvent;
use chatproto::pb;
use chatproto::pb::call_signal::Kind as Signal;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::support::*;

/// Which end of the call a peer is: the caller's device offers, the callee's answers (14.3).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Caller,
    Callee,
}

/// One WebRTC peer on one device taking part: str0m's sans-IO engine, its UDP socket, and the
/// chatd connection that carries its signaling.
struct Peer<'a> {
    user: &'a User,
    call_id: u64,
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    /// The offer this peer made, until the answer comes.
    pending: Option<SdpPendingOffer>,
    /// True once the remote SDP is applied: candidates that come before it wait (trickle ICE
    /// signals are unsequenced, 14.3, so a candidate may overtake the offer or the answer).
    described: bool,
    early: VecDeque<Candidate>,
    /// True once its host candidate went out (a renegotiation does not gather again).
    trickled: bool,
    /// The caller: the screen track it added by renegotiation, once it did.
    sharing: Option<String>,
    /// The callee: the track the other device said it shares, and the tracks its stack added.
    remote_screen: Option<String>,
    added: Vec<String>,
    /// What this peer says on the data channel once it opens, and what it heard.
    says: &'static str,
    heard: Option<String>,
}

impl<'a> Peer<'a> {
    async fn new(user: &'a User, call_id: u64, says: &'static str) -> Peer<'a> {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
        let local = socket.local_addr().expect("local address");
        Peer {
            user,
            call_id,
            rtc: Rtc::builder().build(Instant::now()),
            socket,
            local,
            pending: None,
            described: false,
            early: VecDeque::new(),
            trickled: false,
            sharing: None,
            remote_screen: None,
            added: Vec::new(),
            says,
            heard: None,
        }
    }

    async fn signal(&self, kind: Signal) {
        self.user
            .client
            .send_call_signal(pb::CallSignal {
                call_id: self.call_id,
                from_user_id: 0,
                kind: Some(kind),
            })
            .await
            .expect("send_call_signal");
    }

    /// Gathers this peer's one host candidate and trickles it through chatd, after the SDP
    /// that went without candidates.
    async fn trickle(&mut self) {
        if std::mem::replace(&mut self.trickled, true) {
            return;
        }
        let candidate = Candidate::host(self.local, "udp").expect("host candidate");
        let added = self
            .rtc
            .add_local_candidate(candidate)
            .expect("candidate accepted")
            .to_sdp_string();
        self.drain();
        self.signal(Signal::Candidate(pb::IceCandidate {
            candidate: added,
            sdp_mid: "0".into(),
            sdp_m_line_index: 0,
            username_fragment: String::new(),
        }))
        .await;
    }

    /// Applies the remote SDP's candidates that waited for it.
    fn described(&mut self) {
        self.described = true;
        while let Some(c) = self.early.pop_front() {
            self.rtc.add_remote_candidate(c);
            self.drain();
        }
    }

    /// Drains the engine after a mutation (str0m's rule): packets go out on the socket, events
    /// are handled (a channel that opens is written to at once), and the next timeout comes back.
    fn drain(&mut self) -> Instant {
        loop {
            match self.rtc.poll_output().expect("poll_output") {
                Output::Timeout(at) => return at,
                Output::Transmit(t) => {
                    // Loopback UDP: a full send buffer would only drop a packet, as a network may.
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(Event::ChannelOpen(id, _)) => {
                    let mut channel = self.rtc.channel(id).expect("open channel");
                    channel.write(false, self.says.as_bytes()).expect("write");
                }
                Output::Event(Event::ChannelData(data)) => {
                    let text = String::from_utf8(data.data).expect("UTF-8 text");
                    self.heard = Some(text);
                }
                Output::Event(Event::MediaAdded(media)) => {
                    assert_eq!(media.kind, MediaKind::Video);
                    self.added.push(media.mid.to_string());
                }
                Output::Event(_) => {}
            }
        }
    }

    /// A signal relayed by chatd from the other device taking part.
    async fn on_signal(&mut self, signal: pb::CallSignal) {
        assert_eq!(signal.call_id, self.call_id);
        match signal.kind.expect("a relayed signal has a kind") {
            Signal::Offer(sdp) => {
                let offer = SdpOffer::from_sdp_string(&sdp).expect("offer parses");
                let answer = self
                    .rtc
                    .sdp_api()
                    .accept_offer(offer)
                    .expect("accept offer");
                self.drain();
                self.signal(Signal::Answer(answer.to_sdp_string())).await;
                self.described();
                self.trickle().await;
            }
            Signal::Answer(sdp) => {
                let answer = SdpAnswer::from_sdp_string(&sdp).expect("answer parses");
                let pending = self.pending.take().expect("an answer to our offer");
                self.rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .expect("accept answer");
                self.drain();
                self.described();
            }
            Signal::ScreenShare(share) => {
                assert!(share.sharing, "{share:?}");
                self.remote_screen = Some(share.mid);
            }
            Signal::Candidate(c) if c.candidate.is_empty() => {}
            Signal::Candidate(c) => {
                let candidate = Candidate::from_sdp_string(&c.candidate).expect("candidate parses");
                if self.described {
                    self.rtc.add_remote_candidate(candidate);
                    self.drain();
                } else {
                    self.early.push_back(candidate);
                }
            }
        }
    }

    /// The caller shares its screen: a new offer with a send-only video track, then the
    /// `screen_share` signal with that track's mid.
    async fn share_screen(&mut self) {
        let mut change = self.rtc.sdp_api();
        let mid = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let (offer, pending) = change.apply().expect("a renegotiation offer");
        self.pending = Some(pending);
        self.drain();
        self.signal(Signal::Offer(offer.to_sdp_string())).await;
        let mid = mid.to_string();
        self.signal(Signal::ScreenShare(pb::ScreenShare {
            sharing: true,
            mid: mid.clone(),
        }))
        .await;
        self.sharing = Some(mid);
    }

    /// Whether this peer got all it waits for: the other's message, then for the caller the
    /// answer to its renegotiation, for the callee the shared screen's track added by its stack.
    fn finished(&self, role: Role) -> bool {
        self.heard.is_some()
            && match role {
                Role::Caller => self.sharing.is_some() && self.pending.is_none(),
                Role::Callee => self
                    .remote_screen
                    .as_ref()
                    .is_some_and(|mid| self.added.contains(mid)),
            }
    }

    /// Runs the peer until both peers got what they wait for (`done` counts those that did).
    async fn run(mut self, role: Role, done: watch::Sender<usize>) -> Peer<'a> {
        if role == Role::Caller {
            let mut change = self.rtc.sdp_api();
            change.add_channel("chat".into());
            let (offer, pending) = change.apply().expect("an offer");
            self.pending = Some(pending);
            self.drain();
            self.signal(Signal::Offer(offer.to_sdp_string())).await;
            self.trickle().await;
        }
        let mut finished = done.subscribe();
        let mut buf = vec![0u8; 2048];
        let mut counted = false;
        loop {
            let at = self.drain();
            // The data channel carried both messages: the caller renegotiates in the active call.
            if role == Role::Caller && self.heard.is_some() && self.sharing.is_none() {
                self.share_screen().await;
                continue;
            }
            if self.finished(role) && !counted {
                counted = true;
                done.send_modify(|n| *n += 1);
            }
            if *finished.borrow_and_update() == 2 {
                return self;
            }
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => {
                    let (n, source) = received.expect("recv_from");
                    let receive = Receive::new(Protocol::Udp, source, self.local, &buf[..n])
                        .expect("a STUN, DTLS or RTP packet");
                    self.rtc
                        .handle_input(Input::Receive(Instant::now(), receive))
                        .expect("handle packet");
                }
                event = self.user.client.next_event() => {
                    if let ClientEvent::CallSignal(s) = event.expect("event stream") {
                        self.on_signal(s).await;
                    }
                }
                () = tokio::time::sleep_until(at.into()) => {
                    self.rtc.handle_input(Input::Timeout(Instant::now())).expect("timeout");
                }
                _ = finished.changed() => {}
            }
        }
    }
}

/// Alice calls Bob in their private chat, Bob answers, and a WebRTC peer for each of their
/// devices connects, talks and renegotiates through chatd only.
async fn call_talk_and_share(alice: &User, bob: &User, chat: u64) {
    let call = alice
        .client
        .start_call(pb::StartCall {
            chat_id: chat,
            video: false,
        })
        .await
        .expect("start_call");
    let id = call.call_id;
    bob.wait_for(|e| match e {
        ClientEvent::Call(c) if c.call_id == id => Some(()),
        _ => None,
    })
    .await;
    bob.client
        .accept_call(pb::AcceptCall { call_id: id })
        .await
        .expect("accept_call");
    alice
        .wait_for(|e| match e {
            ClientEvent::Call(c) if c.call_id == id && c.state == pb::CallState::Active as i32 => {
                Some(())
            }
            _ => None,
        })
        .await;

    let (done, _) = watch::channel(0);
    let caller = Peer::new(alice, id, "hello from alice").await;
    let callee = Peer::new(bob, id, "hello from bob").await;
    let talk = async {
        tokio::join!(
            caller.run(Role::Caller, done.clone()),
            callee.run(Role::Callee, done.clone())
        )
    };
    let (caller, callee) = tokio::time::timeout(WAIT, talk)
        .await
        .expect("the peers connect, talk and renegotiate within the wait");
    assert_eq!(caller.heard.as_deref(), Some("hello from bob"));
    assert_eq!(callee.heard.as_deref(), Some("hello from alice"));
    // The track Alice said she shares is the one the renegotiation added on Bob's side.
    assert_eq!(callee.remote_screen, caller.sharing);
    assert_eq!(callee.added, caller.sharing.into_iter().collect::<Vec<_>>());
}

#[tokio::test]
async fn two_webrtc_peers_signal_through_chatd_talk_on_a_data_channel_and_share_a_screen() {
    str0m::crypto::from_feature_flags().install_process_default();
    let server = start().await;
    let (alice, bob, chat) = pair(&server).await;
    call_talk_and_share(&alice, &bob, chat).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_with_the_two_peers_on_two_nodes_of_a_cluster() {
    str0m::crypto::from_feature_flags().install_process_default();
    // Two nodes sharing one store (a data directory) and one Redis, as cluster nodes share
    // MongoDB and Redis: Alice's device is on one, Bob's on the other.
    let redis = tests::redis::RedisServer::start();
    let store = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let url = format!("--redis-url={}", redis.url());
    let node = |id: &'static str| {
        let store = store.clone();
        let url = url.clone();
        async move {
            let node_id = format!("--node-id={id}");
            let args = [node_id.as_str(), url.as_str(), "--log=warn"];
            tests::server::TestServer::start_in(store, &args).await
        }
    };
    let a = node("node-a").await;
    let b = node("node-b").await;
    let (alice, bob, chat) = pair_across(&a, &b).await;
    call_talk_and_share(&alice, &bob, chat).await;
}
