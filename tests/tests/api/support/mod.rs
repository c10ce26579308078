//! Helpers shared by the chat suites (chats, membership, messages, reading, realtime, sync):
//! an in-process chatd, SDK clients registered as fresh users, waiting for events, and
//! asserting error answers.
//!
//! Absence of an event is proven with a sentinel, never with a sleep: the event stream of a
//! connection is ordered, so when a later event (the sentinel) arrives first, the earlier one was
//! never sent to that connection.

// Each suite uses a different subset of these helpers.
#![allow(dead_code)]

use std::time::Duration;

use chatproto::client::{Client, ClientConfig, ClientError, ClientEvent, RemoteError};
use chatproto::pb;
use chatproto::session::BackoffConfig;
pub use tests::client::{PASSWORD, remote};
use tests::server::TestServer;

/// How long any expected event or answer may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A fresh in-process chatd with generous limits.
pub async fn start() -> TestServer {
    init_tracing();
    TestServer::start().await
}

/// A fresh in-process chatd with extra settings.
pub async fn start_with(extra: &[&str]) -> TestServer {
    init_tracing();
    TestServer::start_with(extra).await
}

/// A client configuration pinned to the server's certificate, with quick reconnects.
pub fn config(server: &TestServer) -> ClientConfig {
    let mut config = tests::client::config_for(server.addr(), &server.fingerprint());
    config.retry.backoff = BackoffConfig {
        base: Duration::from_millis(50),
        factor: 2,
        cap: Duration::from_millis(500),
    };
    config
}

/// A configuration without the datagrams capability: typing arrives on the ordered event
/// stream and is sent with the SendTyping request.
pub fn stream_only_config(server: &TestServer) -> ClientConfig {
    let mut config = config(server);
    config
        .capabilities
        .retain(|c| c != chatproto::capability::Capability::Datagrams.name());
    config
}

/// One connected device of a user.
pub struct User {
    /// The SDK client.
    pub client: Client,
    /// The account id.
    pub id: u64,
    /// The username.
    pub name: String,
}

/// Registers a new account and returns its first device.
pub async fn register(server: &TestServer, name: &str) -> User {
    register_with(config(server), name).await
}

/// Registers a new account with a specific client configuration.
pub async fn register_with(config: ClientConfig, name: &str) -> User {
    let client = Client::connect(config).await.expect("connect");
    let auth = client
        .register_user(name, &format!("{name}@example.test"), PASSWORD, "suite")
        .await
        .expect("register");
    let id = auth.user.expect("user in auth result").id;
    User {
        client,
        id,
        name: name.into(),
    }
}

/// Registers `name` and makes them a server admin in the store (what `chatd user add --admin`
/// does offline); the role is read on every request, so the connection needs nothing more.
pub async fn register_admin(server: &TestServer, name: &str) -> User {
    let user = register(server, name).await;
    server
        .store()
        .set_role(user.id, chatproto::pb::Role::Admin, None)
        .await
        .expect("set role");
    user
}

/// Logs an existing account in on another device.
pub async fn device(server: &TestServer, user: &User) -> User {
    device_with(config(server), user).await
}

/// Logs an existing account in on another device with a specific configuration.
pub async fn device_with(config: ClientConfig, user: &User) -> User {
    let client = Client::connect(config).await.expect("connect");
    client
        .login(&user.name, PASSWORD, "second device")
        .await
        .expect("login");
    User {
        client,
        id: user.id,
        name: user.name.clone(),
    }
}

impl User {
    /// Reads events until `pick` returns something, failing after [`WAIT`].
    pub async fn wait_for<T>(&self, mut pick: impl FnMut(ClientEvent) -> Option<T>) -> T {
        tokio::time::timeout(WAIT, async {
            loop {
                let event = self.client.next_event().await.expect("event stream ended");
                if let Some(found) = pick(event) {
                    return found;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{}: expected event did not arrive", self.name))
    }

    /// The next chat event of `chat_id` (other events are skipped).
    pub async fn next_chat_event(&self, chat_id: u64) -> pb::ChatEvent {
        self.wait_for(|e| match e {
            ClientEvent::Chat(ev) if ev.chat_id == chat_id => Some(ev),
            _ => None,
        })
        .await
    }

    /// The next chat event of `chat_id` whose body `pick` accepts; earlier ones are skipped.
    pub async fn chat_event<T>(
        &self,
        chat_id: u64,
        mut pick: impl FnMut(&pb::chat_event::Body) -> Option<T>,
    ) -> (pb::ChatEvent, T) {
        self.wait_for(|e| match e {
            ClientEvent::Chat(ev) if ev.chat_id == chat_id => {
                let found = ev.body.as_ref().and_then(&mut pick)?;
                Some((ev, found))
            }
            _ => None,
        })
        .await
    }

    /// The next created message of `chat_id`.
    pub async fn next_message(&self, chat_id: u64) -> pb::Message {
        self.chat_event(chat_id, |b| match b {
            pb::chat_event::Body::MessageCreated(m) => Some(m.clone()),
            _ => None,
        })
        .await
        .1
    }

    /// Sends a text message.
    pub async fn send(&self, chat_id: u64, text: &str) -> pb::Message {
        self.client.send_text(chat_id, text).await.expect("send")
    }
}

/// A SendMessage of a text.
pub fn text(chat_id: u64, text: &str) -> pb::SendMessage {
    pb::SendMessage {
        chat_id,
        kind: pb::MessageKind::Text as i32,
        text: text.into(),
        ..Default::default()
    }
}

/// A SendMessage forwarding `from` into `chat_id`.
pub fn forward(chat_id: u64, from: &pb::Message) -> pb::SendMessage {
    pb::SendMessage {
        chat_id,
        forward: Some(pb::MessageRef {
            chat_id: from.chat_id,
            seq: from.seq,
        }),
        ..Default::default()
    }
}

/// The names the fixtures give their users, in order.
const NAMES: [&str; 8] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];

/// Two users, alice and bob, and their private chat.
pub async fn pair(server: &TestServer) -> (User, User, u64) {
    pair_across(server, server).await
}

/// [`pair`] with alice connected to `a` and bob to `b` (two nodes of a cluster).
pub async fn pair_across(a: &TestServer, b: &TestServer) -> (User, User, u64) {
    let alice = register(a, "alice").await;
    let bob = register(b, "bob").await;
    let chat = alice
        .client
        .create_private_chat(bob.id)
        .await
        .expect("private chat")
        .id;
    (alice, bob, chat)
}

/// `N` users (alice, bob, carol, ...) and a group "team" the first owns with all the others.
pub async fn group_of<const N: usize>(server: &TestServer) -> ([User; N], pb::Chat) {
    let mut users = Vec::with_capacity(N);
    for i in 0..N {
        let name = NAMES
            .get(i)
            .map_or_else(|| format!("user{i}"), |n| (*n).to_owned());
        users.push(register(server, &name).await);
    }
    let Ok(users) = <[User; N]>::try_from(users) else {
        panic!("registered a number of users other than {N}");
    };
    let (owner, members) = users.split_first().expect("a group has an owner");
    let chat = group(
        owner,
        pb::ChatKind::Group,
        "team",
        &members.iter().collect::<Vec<_>>(),
    )
    .await;
    (users, chat)
}

/// Creates a group or channel owned by `owner` with `members`.
pub async fn group(owner: &User, kind: pb::ChatKind, title: &str, members: &[&User]) -> pb::Chat {
    owner
        .client
        .create_group(pb::CreateGroup {
            kind: kind as i32,
            title: title.into(),
            description: String::new(),
            member_ids: members.iter().map(|m| m.id).collect(),
        })
        .await
        .expect("create group")
}

/// Asserts an error answer with `code`.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(
    result: Result<T, ClientError>,
    code: pb::ErrorCode,
) -> RemoteError {
    let e = remote(result);
    assert_eq!(e.code, code, "{e}");
    e
}

/// Asserts an INVALID_ARGUMENT (or TOO_LARGE) answer naming `field`.
#[track_caller]
pub fn assert_field<T: std::fmt::Debug>(
    result: Result<T, ClientError>,
    code: pb::ErrorCode,
    field: &str,
) {
    let e = assert_code(result, code);
    assert_eq!(e.field, field, "{e}");
}

/// Asserts NOT_FOUND "chat not found": the answer for a missing chat and for someone else's.
#[track_caller]
pub fn assert_chat_not_found<T: std::fmt::Debug>(result: Result<T, ClientError>) {
    let e = assert_code(result, pb::ErrorCode::NotFound);
    assert_eq!(e.message, "chat not found");
}

/// The message of a `message_created` event.
pub fn created(event: &pb::ChatEvent) -> Option<&pb::Message> {
    match &event.body {
        Some(pb::chat_event::Body::MessageCreated(m)) => Some(m),
        _ => None,
    }
}

/// The seqs of the messages in a list.
pub fn seqs(messages: &[pb::Message]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}

/// The role of `user` in a chat's member list.
pub fn role_of(chat: &pb::Chat, user: u64) -> Option<pb::MemberRole> {
    chat.members
        .iter()
        .find(|m| m.user_id == user)
        .map(|m| m.role())
}

/// A GetHistory request.
pub fn history(chat_id: u64, before_seq: u64, after_seq: u64, limit: u32) -> pb::GetHistory {
    pb::GetHistory {
        chat_id,
        before_seq,
        after_seq,
        limit,
    }
}

/// A SearchMessages request.
pub fn search(chat_id: u64, query: &str, limit: u32, cursor: String) -> pb::SearchMessages {
    pb::SearchMessages {
        query: query.into(),
        chat_id,
        limit,
        cursor,
    }
}
