//! A tiny chat/1 server for the client tests, built from `chatproto::server`'s stream helpers.
//!
//! It implements just enough of the protocol to exercise the client: Hello (with capabilities and
//! an optional redirect), Register/Login/Authenticate/Refresh/Logout, GetMe, CreateGroup, Sync,
//! GetChatEvents, SendMessage (idempotent by client_msg_id), SendTyping, typing datagrams,
//! ListChats, GetHistory, GetUsers, and an event publisher. Every user can read every chat. Knobs make it misbehave on purpose
//! (rate limiting, dropping the connection after committing a send, refusing access tokens).
//! Test code only.

#![allow(dead_code, missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chatproto::error::CloseCode;
use chatproto::io::{decode_datagram, encode_datagram};
use chatproto::pb;
use chatproto::pb::request::Kind as K;
use chatproto::pb::response::Result as R;
use chatproto::server::{EventStream, RequestStream};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::sync::mpsc;

/// A certificate chain and key for the server.
#[derive(Clone)]
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key_der: Vec<u8>,
}

impl Identity {
    /// A self-signed certificate for "localhost".
    pub fn self_signed() -> Self {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        Self {
            chain: vec![ck.cert.der().clone()],
            key_der: ck.signing_key.serialize_der(),
        }
    }

    /// The end-entity certificate's DER.
    pub fn leaf_der(&self) -> &[u8] {
        self.chain[0].as_ref()
    }
}

/// A test CA that issues server certificates.
pub struct TestCa {
    pub pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server certificate for `names`, signed by this CA.
    pub fn issue(&self, names: &[&str]) -> Identity {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Identity {
            chain: vec![cert.der().clone()],
            key_der: key.serialize_der(),
        }
    }
}

/// Knobs that make the server misbehave.
#[derive(Debug, Default, Clone)]
pub struct Knobs {
    /// Welcome carries a redirect to these addresses.
    pub redirect: Option<Vec<String>>,
    /// Answer this many requests (after Hello) with RATE_LIMITED.
    pub rate_limit_next: u32,
    /// The next SendMessage is committed, then the connection is closed without an answer.
    pub drop_after_commit: bool,
    /// Authenticate is refused (as if every access token had expired).
    pub reject_access_tokens: bool,
    /// Offer the datagrams capability.
    pub no_datagrams: bool,
}

#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub hellos: u64,
    pub requests: BTreeMap<&'static str, u64>,
    pub typing_datagrams: u64,
}

struct ConnEntry {
    id: u64,
    conn: quinn::Connection,
    user: Option<u64>,
    datagrams: bool,
    events: Option<mpsc::UnboundedSender<pb::Event>>,
    /// The event stream's writer: done once the client acknowledged all of the stream.
    writer: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Default)]
pub struct Inner {
    pub chats: BTreeMap<u64, Vec<pb::ChatEvent>>,
    users: HashMap<String, (u64, String)>,
    access: HashMap<String, (u64, u64)>,
    refresh: HashMap<String, (u64, u64)>,
    sent: HashMap<(u64, String), pb::Message>,
    conns: Vec<ConnEntry>,
    next_id: u64,
    pub knobs: Knobs,
    pub counters: Counters,
}

impl Inner {
    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn user(&self, id: u64) -> pb::User {
        let name = self
            .users
            .iter()
            .find(|(_, (uid, _))| *uid == id)
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        pb::User {
            id,
            username: name.clone(),
            display_name: name,
            ..Default::default()
        }
    }

    /// Appends an event to a chat and publishes it to every authenticated connection, under the
    /// same lock so every connection gets a chat's events in seq order.
    pub fn append(
        &mut self,
        chat_id: u64,
        actor_id: u64,
        body: pb::chat_event::Body,
    ) -> pb::ChatEvent {
        let events = self.chats.entry(chat_id).or_default();
        let ev = pb::ChatEvent {
            chat_id,
            seq: events.len() as u64 + 1,
            at_ms: 0,
            actor_id,
            body: Some(body),
        };
        events.push(ev.clone());
        self.publish(
            pb::Event {
                kind: Some(pb::event::Kind::Chat(ev.clone())),
            },
            None,
        );
        ev
    }

    fn publish(&mut self, event: pb::Event, except_conn: Option<u64>) {
        for c in &self.conns {
            if c.user.is_some()
                && Some(c.id) != except_conn
                && let Some(tx) = &c.events
            {
                let _ = tx.send(event.clone());
            }
        }
    }

    /// Takes over another server's accounts and tokens (a cluster sharing its store).
    pub fn import_accounts(&mut self, other: &Inner) {
        self.users = other.users.clone();
        self.access = other.access.clone();
        self.refresh = other.refresh.clone();
        self.next_id = self.next_id.max(other.next_id);
    }

    fn issue_tokens(&mut self, user_id: u64, session_id: u64) -> (String, String) {
        let n = self.next();
        let access = format!("access-{user_id}-{n}");
        let refresh = format!("refresh-{user_id}-{n}");
        self.access.insert(access.clone(), (user_id, session_id));
        self.refresh.insert(refresh.clone(), (user_id, session_id));
        (access, refresh)
    }
}

/// One test server: an endpoint on loopback plus shared state that survives restarts.
pub struct TestServer {
    pub addr: SocketAddr,
    pub node_id: String,
    pub identity: Identity,
    pub state: Arc<Mutex<Inner>>,
    endpoint: Mutex<Option<quinn::Endpoint>>,
}

fn error(code: pb::ErrorCode, message: &str, field: &str) -> R {
    R::Error(pb::Error {
        code: code as i32,
        message: message.into(),
        field: field.into(),
        retry_after_ms: 0,
    })
}

impl TestServer {
    pub async fn start(node_id: &str) -> Arc<Self> {
        Self::start_with(
            node_id,
            Identity::self_signed(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
    }

    pub async fn start_with(node_id: &str, identity: Identity, bind: SocketAddr) -> Arc<Self> {
        let endpoint = Self::bind(&identity, bind).await;
        let addr = endpoint.local_addr().unwrap();
        let server = Arc::new(Self {
            addr,
            node_id: node_id.into(),
            identity,
            state: Arc::new(Mutex::new(Inner::default())),
            endpoint: Mutex::new(Some(endpoint.clone())),
        });
        server.spawn_accept(endpoint);
        server
    }

    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.state.lock().unwrap()
    }

    async fn bind(identity: &Identity, addr: SocketAddr) -> quinn::Endpoint {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_der.clone()));
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(identity.chain.clone(), key)
            .unwrap();
        tls.alpn_protocols = vec![chatproto::ALPN.to_vec()];
        let quic = quinn::crypto::rustls::QuicServerConfig::try_from(Arc::new(tls)).unwrap();
        let config = quinn::ServerConfig::with_crypto(Arc::new(quic));
        // After a restart the old socket may take a moment to be released.
        for _ in 0..50 {
            match quinn::Endpoint::server(config.clone(), addr) {
                Ok(e) => return e,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        panic!("cannot bind {addr}");
    }

    fn spawn_accept(self: &Arc<Self>, endpoint: quinn::Endpoint) {
        let server = self.clone();
        tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    if let Ok(conn) = incoming.await {
                        server.serve(conn).await;
                    }
                });
            }
        });
    }

    /// Closes every connection (the endpoint keeps accepting).
    pub fn kill_connections(&self) {
        let mut inner = self.lock();
        for c in inner.conns.drain(..) {
            c.conn.close(1u32.into(), b"killed by test");
        }
    }

    /// Ends every connection as a draining server does: `last` is the last event on each event
    /// stream, and a connection closes once its client acknowledged the whole stream.
    pub async fn drain(&self, last: pb::Event) {
        let conns: Vec<ConnEntry> = self.lock().conns.drain(..).collect();
        for mut c in conns {
            if let Some(events) = c.events.take() {
                let _ = events.send(last.clone());
            }
            if let Some(writer) = c.writer.take() {
                let _ = writer.await;
            }
            c.conn
                .close(CloseCode::GoingAway.code().into(), b"draining");
        }
    }

    /// Stops the endpoint and starts a new one on the same port; the state survives.
    pub async fn restart(self: &Arc<Self>, downtime: Duration) {
        let old = self.endpoint.lock().unwrap().take();
        self.kill_connections();
        if let Some(old) = old {
            old.close(2u32.into(), b"restart");
            old.wait_idle().await;
            drop(old);
        }
        tokio::time::sleep(downtime).await;
        let endpoint = Self::bind(&self.identity, self.addr).await;
        *self.endpoint.lock().unwrap() = Some(endpoint.clone());
        self.spawn_accept(endpoint);
    }

    /// Sends an event to every authenticated connection.
    pub fn broadcast(&self, event: pb::Event) {
        self.lock().publish(event, None);
    }

    /// Posts a text message into a chat as user 999 (a server-side producer).
    pub fn post(&self, chat_id: u64, text: &str) -> pb::ChatEvent {
        let mut inner = self.lock();
        let seq = inner.chats.get(&chat_id).map_or(0, |c| c.len() as u64) + 1;
        inner.append(
            chat_id,
            999,
            pb::chat_event::Body::MessageCreated(pb::Message {
                chat_id,
                seq,
                sender_id: 999,
                kind: pb::MessageKind::Text as i32,
                text: text.into(),
                ..Default::default()
            }),
        )
    }

    /// Creates a chat (its seq 1 event) without publishing anything else.
    pub fn create_chat(&self, title: &str) -> u64 {
        let mut inner = self.lock();
        let chat_id = inner.next();
        inner.append(
            chat_id,
            999,
            pb::chat_event::Body::ChatCreated(pb::Chat {
                id: chat_id,
                kind: pb::ChatKind::Group as i32,
                title: title.into(),
                ..Default::default()
            }),
        );
        chat_id
    }

    pub fn last_seq(&self, chat_id: u64) -> u64 {
        self.lock()
            .chats
            .get(&chat_id)
            .map_or(0, |c| c.len() as u64)
    }

    pub fn count(&self, kind: &str) -> u64 {
        self.lock()
            .counters
            .requests
            .get(kind)
            .copied()
            .unwrap_or(0)
    }

    async fn serve(self: Arc<Self>, conn: quinn::Connection) {
        let conn_id = {
            let mut inner = self.lock();
            let id = inner.next();
            inner.conns.push(ConnEntry {
                id,
                conn: conn.clone(),
                user: None,
                datagrams: false,
                events: None,
                writer: None,
            });
            id
        };
        // Typing datagrams: forward to every other authenticated connection, as a datagram when
        // it negotiated them, else on its event stream.
        let server = self.clone();
        let dconn = conn.clone();
        tokio::spawn(async move {
            while let Ok(bytes) = dconn.read_datagram().await {
                let Ok(pb::Datagram {
                    kind: Some(pb::datagram::Kind::Typing(mut typing)),
                }) = decode_datagram(&bytes)
                else {
                    continue;
                };
                let mut inner = server.lock();
                inner.counters.typing_datagrams += 1;
                let Some(user) = inner
                    .conns
                    .iter()
                    .find(|c| c.id == conn_id)
                    .and_then(|c| c.user)
                else {
                    continue;
                };
                typing.user_id = user;
                typing.expires_in_ms = 5000;
                server.fan_out_typing(&inner, conn_id, typing);
            }
        });
        while let Ok((send, recv)) = conn.accept_bi().await {
            let server = self.clone();
            let conn = conn.clone();
            tokio::spawn(async move {
                let mut stream = RequestStream::with_default_limit(send, recv);
                let request = match stream.read_request().await {
                    Ok(r) => r,
                    Err(e) => {
                        if let Some(err) = e.to_error() {
                            let _ = stream
                                .respond(&pb::Response {
                                    request_id: 0,
                                    result: Some(R::Error(err)),
                                })
                                .await;
                        }
                        return;
                    }
                };
                let id = request.request_id;
                let Some(kind) = request.kind else {
                    return;
                };
                let result = server.handle(conn_id, &conn, kind);
                let Some(result) = result else {
                    // Committed, then the connection is dropped without an answer.
                    // Any close that does not revoke the session (3 would).
                    conn.close(1u32.into(), b"dropped after commit");
                    return;
                };
                let authed = matches!(result, R::Auth(_));
                let _ = stream
                    .respond(&pb::Response {
                        request_id: id,
                        result: Some(result),
                    })
                    .await;
                if authed {
                    server.open_event_stream(conn_id, &conn).await;
                }
            });
        }
        self.lock().conns.retain(|c| c.id != conn_id);
    }

    fn fan_out_typing(&self, inner: &Inner, from_conn: u64, typing: pb::Typing) {
        for c in &inner.conns {
            if c.id == from_conn || c.user.is_none() {
                continue;
            }
            if c.datagrams {
                let d = pb::Datagram {
                    kind: Some(pb::datagram::Kind::Typing(typing)),
                };
                let _ = c.conn.send_datagram(encode_datagram(&d));
            } else if let Some(tx) = &c.events {
                let _ = tx.send(pb::Event {
                    kind: Some(pb::event::Kind::Typing(typing)),
                });
            }
        }
    }

    async fn open_event_stream(&self, conn_id: u64, conn: &quinn::Connection) {
        let Ok(send) = conn.open_uni().await else {
            return;
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<pb::Event>();
        let writer = tokio::spawn(async move {
            let mut stream = EventStream::new(send);
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                if stream.send(&batch).await.is_err() {
                    return;
                }
            }
            stream.finish().await;
        });
        let mut inner = self.lock();
        // A connection that is gone drops `tx`, which ends the writer.
        if let Some(entry) = inner.conns.iter_mut().find(|c| c.id == conn_id) {
            entry.events = Some(tx);
            entry.writer = Some(writer);
        }
    }

    /// Answers one request; `None` means "drop the connection without answering".
    fn handle(&self, conn_id: u64, conn: &quinn::Connection, kind: K) -> Option<R> {
        use pb::ErrorCode as E;
        let mut inner = self.lock();
        *inner.counters.requests.entry(kind.name()).or_default() += 1;
        if !matches!(kind, K::Hello(_)) && inner.knobs.rate_limit_next > 0 {
            inner.knobs.rate_limit_next -= 1;
            return Some(R::Error(pb::Error {
                code: E::RateLimited as i32,
                message: "slow down".into(),
                field: String::new(),
                retry_after_ms: 30,
            }));
        }
        let user = inner
            .conns
            .iter()
            .find(|c| c.id == conn_id)
            .and_then(|c| c.user);
        let result = match kind {
            K::Hello(hello) => {
                inner.counters.hellos += 1;
                let mut server_caps = vec!["redirect"];
                if !inner.knobs.no_datagrams {
                    server_caps.push("datagrams");
                }
                let caps: Vec<String> = hello
                    .capabilities
                    .iter()
                    .filter(|c| server_caps.contains(&c.as_str()))
                    .cloned()
                    .collect();
                let datagrams = caps.iter().any(|c| c == "datagrams");
                if let Some(entry) = inner.conns.iter_mut().find(|c| c.id == conn_id) {
                    entry.datagrams = datagrams;
                }
                let redirect = inner
                    .knobs
                    .redirect
                    .clone()
                    .filter(|_| caps.iter().any(|c| c == "redirect"))
                    .map(|addresses| pb::Redirect {
                        addresses,
                        reason: "test redirect".into(),
                    });
                R::Welcome(pb::Welcome {
                    protocol_major: 1,
                    protocol_minor: 0,
                    capabilities: caps,
                    server_name: "testd/0".into(),
                    node_id: self.node_id.clone(),
                    server_time_ms: 0,
                    limits: Some(pb::Limits {
                        max_frame_bytes: 256 * 1024,
                        max_text_chars: 4096,
                        max_page_size: 50,
                        max_concurrent_requests: 100,
                        max_chat_members: 1000,
                        ..Default::default()
                    }),
                    redirect,
                })
            }
            K::Register(r) => {
                if inner.users.contains_key(&r.username) {
                    error(E::Conflict, "username taken", "register.username")
                } else {
                    let id = inner.next();
                    inner.users.insert(r.username.clone(), (id, r.password));
                    self.login(&mut inner, conn_id, id)
                }
            }
            K::Login(l) => match inner.users.get(&l.username).cloned() {
                Some((id, pw)) if pw == l.password => self.login(&mut inner, conn_id, id),
                _ => error(E::Unauthenticated, "wrong username or password", ""),
            },
            K::Authenticate(a) => match inner.access.get(&a.access_token).copied() {
                Some((uid, sid)) if !inner.knobs.reject_access_tokens => {
                    set_user(&mut inner, conn_id, Some(uid));
                    R::Auth(pb::AuthResult {
                        user: Some(inner.user(uid)),
                        session_id: sid,
                        ..Default::default()
                    })
                }
                _ => error(E::Unauthenticated, "access token expired", ""),
            },
            K::Refresh(r) => match inner.refresh.remove(&r.refresh_token) {
                Some((uid, sid)) => {
                    let (access, refresh) = inner.issue_tokens(uid, sid);
                    set_user(&mut inner, conn_id, Some(uid));
                    R::Auth(pb::AuthResult {
                        user: Some(inner.user(uid)),
                        session_id: sid,
                        access_token: access,
                        access_expires_at_ms: 0,
                        refresh_token: refresh,
                    })
                }
                None => error(E::Unauthenticated, "refresh token unknown", ""),
            },
            _ if user.is_none() => error(E::Unauthenticated, "authenticate first", ""),
            K::Logout(_) => {
                set_user(&mut inner, conn_id, None);
                if let Some(entry) = inner.conns.iter_mut().find(|c| c.id == conn_id) {
                    // Dropping the sender finishes the event stream.
                    entry.events = None;
                }
                R::Ok(pb::Ok {})
            }
            K::GetMe(_) => R::User(inner.user(user.unwrap_or_default())),
            K::CreateGroup(g) => {
                let chat_id = inner.next();
                let chat = pb::Chat {
                    id: chat_id,
                    kind: g.kind,
                    title: g.title,
                    owner_id: user.unwrap_or_default(),
                    last_seq: 1,
                    ..Default::default()
                };
                inner.append(
                    chat_id,
                    user.unwrap_or_default(),
                    pb::chat_event::Body::ChatCreated(chat.clone()),
                );
                R::Chat(chat)
            }
            K::Sync(_) => R::Sync(pb::SyncResult {
                heads: inner
                    .chats
                    .iter()
                    .map(|(&chat_id, evs)| pb::ChatHead {
                        chat_id,
                        last_seq: evs.len() as u64,
                        member: true,
                    })
                    .collect(),
                ..Default::default()
            }),
            K::GetChatEvents(g) => match inner.chats.get(&g.chat_id) {
                None => error(E::NotFound, "no such chat", "get_chat_events.chat_id"),
                Some(evs) => {
                    let limit = g.limit.clamp(1, 50) as usize;
                    let start = (g.after_seq as usize).min(evs.len());
                    let end = (start + limit).min(evs.len());
                    R::Events(pb::ChatEventList {
                        events: evs[start..end].to_vec(),
                        more: end < evs.len(),
                    })
                }
            },
            K::SendMessage(m) => {
                let uid = user.unwrap_or_default();
                if m.text.is_empty() {
                    error(E::InvalidArgument, "text is empty", "send_message.text")
                } else if !inner.chats.contains_key(&m.chat_id) {
                    error(E::NotFound, "no such chat", "send_message.chat_id")
                } else if let Some(existing) = inner.sent.get(&(uid, m.client_msg_id.clone())) {
                    R::Message(existing.clone())
                } else {
                    let seq = inner.chats[&m.chat_id].len() as u64 + 1;
                    let message = pb::Message {
                        chat_id: m.chat_id,
                        seq,
                        sender_id: uid,
                        kind: m.kind,
                        text: m.text,
                        client_msg_id: m.client_msg_id.clone(),
                        ..Default::default()
                    };
                    inner.append(
                        m.chat_id,
                        uid,
                        pb::chat_event::Body::MessageCreated(message.clone()),
                    );
                    inner.sent.insert((uid, m.client_msg_id), message.clone());
                    if std::mem::take(&mut inner.knobs.drop_after_commit) {
                        return None;
                    }
                    R::Message(message)
                }
            }
            K::ListChats(l) => {
                let all: Vec<pb::Chat> = inner
                    .chats
                    .iter()
                    .map(|(&id, evs)| {
                        let title = match evs.first().and_then(|e| e.body.as_ref()) {
                            Some(pb::chat_event::Body::ChatCreated(c)) => c.title.clone(),
                            _ => String::new(),
                        };
                        pb::Chat {
                            id,
                            title,
                            last_seq: evs.len() as u64,
                            ..Default::default()
                        }
                    })
                    .collect();
                let start: usize = l.cursor.parse().unwrap_or(0);
                let end = (start + l.limit.clamp(1, 50) as usize).min(all.len());
                R::Chats(pb::ChatList {
                    chats: all[start.min(end)..end].to_vec(),
                    next_cursor: if end < all.len() {
                        end.to_string()
                    } else {
                        String::new()
                    },
                })
            }
            K::GetHistory(h) => match inner.chats.get(&h.chat_id) {
                None => error(E::NotFound, "no such chat", "get_history.chat_id"),
                Some(evs) => {
                    let all: Vec<pb::Message> = evs
                        .iter()
                        .filter_map(|e| match &e.body {
                            Some(pb::chat_event::Body::MessageCreated(m)) => Some(m.clone()),
                            _ => None,
                        })
                        .collect();
                    let limit = h.limit.clamp(1, 50) as usize;
                    let messages: Vec<pb::Message> = if h.after_seq > 0 {
                        all.into_iter()
                            .filter(|m| m.seq > h.after_seq)
                            .take(limit)
                            .collect()
                    } else {
                        let below: Vec<_> = all
                            .into_iter()
                            .filter(|m| h.before_seq == 0 || m.seq < h.before_seq)
                            .collect();
                        below[below.len().saturating_sub(limit)..].to_vec()
                    };
                    R::Messages(pb::MessageList {
                        messages,
                        next_cursor: String::new(),
                    })
                }
            },
            K::GetUsers(g) => {
                let known: Vec<u64> = inner.users.values().map(|(id, _)| *id).collect();
                R::Users(pb::UserList {
                    users: g
                        .user_ids
                        .iter()
                        .filter(|id| known.contains(id))
                        .map(|&id| inner.user(id))
                        .collect(),
                    next_cursor: String::new(),
                })
            }
            K::SendTyping(t) => {
                let typing = pb::Typing {
                    chat_id: t.chat_id,
                    user_id: user.unwrap_or_default(),
                    expires_in_ms: 5000,
                };
                inner.publish(
                    pb::Event {
                        kind: Some(pb::event::Kind::Typing(typing)),
                    },
                    Some(conn_id),
                );
                R::Ok(pb::Ok {})
            }
            _ => error(E::Unimplemented, "not in the test server", ""),
        };
        let _ = conn;
        Some(result)
    }

    fn login(&self, inner: &mut Inner, conn_id: u64, user_id: u64) -> R {
        let session_id = inner.next();
        let (access, refresh) = inner.issue_tokens(user_id, session_id);
        set_user(inner, conn_id, Some(user_id));
        R::Auth(pb::AuthResult {
            user: Some(inner.user(user_id)),
            session_id,
            access_token: access,
            access_expires_at_ms: 0,
            refresh_token: refresh,
        })
    }
}

fn set_user(inner: &mut Inner, conn_id: u64, user: Option<u64>) {
    if let Some(entry) = inner.conns.iter_mut().find(|c| c.id == conn_id) {
        entry.user = user;
    }
}

/// A client configuration pinned to the first server's certificate, listing every server, with
/// quick test timings.
pub fn config(servers: &[&TestServer]) -> chatproto::client::ClientConfig {
    let pin = chatproto::fingerprint::fingerprint_of_der(servers[0].identity.leaf_der());
    let mut config = chatproto::client::ClientConfig::new(
        servers[0].address(),
        chatproto::tls::Verification::Pin(pin),
    );
    config.servers = servers.iter().map(|s| s.address()).collect();
    config.server_name = Some("localhost".into());
    config.client_name = "client-test/0".into();
    config.retry.connect_timeout = Duration::from_millis(1500);
    config.retry.backoff = chatproto::session::BackoffConfig {
        base: Duration::from_millis(50),
        factor: 2,
        cap: Duration::from_millis(800),
    };
    config
}

/// Registers `name` (password "password123") on a connected client.
pub async fn register(client: &chatproto::client::Client, name: &str) -> pb::AuthResult {
    client
        .register_user(name, &format!("{name}@example.test"), "password123", "test")
        .await
        .expect("register")
}

/// Installs a log subscriber once (RUST_LOG controls it), so failures can be diagnosed.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
