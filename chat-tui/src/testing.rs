//! Test fixtures: models in known states, built through the update function where it matters,
//! and helpers to press keys and to render frames as text.

use chatproto::client::{ClientEvent, HistoryPage, HistoryRange};
use chatproto::pb;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use unicode_width::UnicodeWidthStr as _;

use crate::action::{Action, NetEvent};
use crate::config::Config;
use crate::effect::{Effect, NetCommand};
use crate::keys::Key;
use crate::model::{Clock, ConnState, Ids, Model};
use crate::update::update;

/// 2026-12-03 10:30:00 UTC.
pub const NOW: i64 = 1_796_293_800_000;
/// One hour.
pub const HOUR: i64 = 3_600_000;
/// My user id (alice).
pub const ME: u64 = 1;
/// The team group.
pub const TEAM: u64 = 11;
/// The private chat with bob.
pub const BOB_CHAT: u64 = 10;

/// A model connected to `chat.example:4433`, not signed in, at [`NOW`] in UTC.
pub fn model() -> Model {
    Model::new(
        "chat.example:4433",
        Config::default(),
        Ids::new("t"),
        Clock {
            now_ms: NOW,
            utc_offset_s: 0,
        },
    )
}

/// Applies an action.
pub fn apply(model: &mut Model, action: Action) -> Vec<Effect> {
    update(model, action)
}

/// Applies a network event.
pub fn net(model: &mut Model, event: NetEvent) -> Vec<Effect> {
    update(model, Action::Net(event))
}

/// Applies an SDK event.
pub fn client(model: &mut Model, event: ClientEvent) -> Vec<Effect> {
    net(model, NetEvent::Client(event))
}

/// Presses the keys of a space-separated list like `"esc k k e"`.
pub fn keys(model: &mut Model, specs: &str) -> Vec<Effect> {
    specs
        .split(' ')
        .flat_map(|spec| {
            let key = Key::parse(spec).unwrap_or_else(|e| panic!("{e}"));
            update(model, Action::Key(key.to_event()))
        })
        .collect()
}

/// Types text, character by character.
pub fn type_text(model: &mut Model, text: &str) -> Vec<Effect> {
    text.chars()
        .flat_map(|c| {
            let key = Key::parse(&c.to_string()).expect("a character is a key");
            update(model, Action::Key(key.to_event()))
        })
        .collect()
}

/// The network commands among effects.
pub fn commands(effects: &[Effect]) -> Vec<NetCommand> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Net(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// A user.
pub fn user(id: u64, username: &str, status: pb::UserStatus) -> pb::User {
    pb::User {
        id,
        username: username.into(),
        status: status as i32,
        ..Default::default()
    }
}

/// A chat of `kind` with my state.
pub fn chat(id: u64, kind: pb::ChatKind, title: &str, activity: i64) -> pb::Chat {
    pb::Chat {
        id,
        kind: kind as i32,
        title: title.into(),
        last_activity_ms: activity,
        member_count: 4,
        state: Some(pb::ChatUserState {
            role: pb::MemberRole::Member as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A text message.
pub fn msg(chat_id: u64, seq: u64, sender_id: u64, text: &str, at: i64) -> pb::Message {
    pb::Message {
        chat_id,
        seq,
        sender_id,
        kind: pb::MessageKind::Text as i32,
        text: text.into(),
        sent_at_ms: at,
        ..Default::default()
    }
}

/// The chat event creating `m`.
pub fn created(m: &pb::Message) -> ClientEvent {
    ClientEvent::Chat(pb::ChatEvent {
        chat_id: m.chat_id,
        seq: m.seq,
        at_ms: m.sent_at_ms,
        actor_id: m.sender_id,
        body: Some(pb::chat_event::Body::MessageCreated(m.clone())),
    })
}

/// Signed in as alice, with the chat list loaded: a private chat with bob, the "team" group
/// (3 unread, one mentions me), the muted "news" channel, the pinned "family" group and the
/// archived "old" group.
pub fn signed_in() -> Model {
    let mut m = model();
    net(
        &mut m,
        NetEvent::SignedIn {
            me: user(ME, "alice", pb::UserStatus::Online),
            max_text_chars: 0,
            outbox: Vec::new(),
        },
    );
    client(
        &mut m,
        ClientEvent::Connected {
            address: "chat.example:4433".into(),
            node_id: "n1".into(),
        },
    );
    net(
        &mut m,
        NetEvent::Users(vec![
            user(2, "bob", pb::UserStatus::Online),
            pb::User {
                display_name: "Carol C.".into(),
                ..user(3, "carol", pb::UserStatus::Away)
            },
            user(4, "dave", pb::UserStatus::Offline),
        ]),
    );
    let mut private = chat(BOB_CHAT, pb::ChatKind::Private, "", NOW - HOUR / 6);
    private.members = vec![
        pb::Member {
            user_id: ME,
            ..Default::default()
        },
        pb::Member {
            user_id: 2,
            ..Default::default()
        },
    ];
    let mut team = chat(TEAM, pb::ChatKind::Group, "team", NOW - HOUR / 12);
    team.last_seq = 9;
    if let Some(s) = team.state.as_mut() {
        s.unread_count = 3;
        s.read_seq = 6;
    }
    let mut news = chat(12, pb::ChatKind::Channel, "news", NOW - 2 * HOUR);
    news.member_count = 250;
    if let Some(s) = news.state.as_mut() {
        s.muted_until_ms = i64::MAX;
        s.unread_count = 12;
    }
    let mut family = chat(13, pb::ChatKind::Group, "family", NOW - 5 * HOUR);
    if let Some(s) = family.state.as_mut() {
        s.pinned = true;
    }
    let mut old = chat(14, pb::ChatKind::Group, "old", NOW - 90 * 24 * HOUR);
    if let Some(s) = old.state.as_mut() {
        s.archived = true;
    }
    net(
        &mut m,
        NetEvent::Chats(vec![private.clone(), team, news, family, old]),
    );
    net(&mut m, NetEvent::Chat(private));
    m
}

/// The messages of the team chat: a day change, a reply that mentions me, a forward, an edit,
/// a tombstone, an attachment, reactions, and my messages read and delivered.
pub fn team_history() -> Vec<pb::Message> {
    let day = 24 * HOUR;
    let mut mine_read = msg(TEAM, 4, ME, "I do, sending it now", NOW - HOUR);
    mine_read.reactions = vec![pb::Reaction {
        emoji: "👍".into(),
        user_ids: vec![2, 3],
        count: 2,
    }];
    let mut reply = msg(TEAM, 5, 3, "thanks @alice, got it", NOW - HOUR + 60_000);
    reply.reply_to_seq = 4;
    reply.mention_ids = vec![ME];
    reply.edited = true;
    let mut forward = msg(
        TEAM,
        6,
        2,
        "Lunch at noon? The usual place.",
        NOW - HOUR / 2,
    );
    forward.forwarded_from = Some(pb::ForwardedFrom {
        chat_id: 99,
        seq: 1,
        sender_id: 4,
        sent_at_ms: NOW - day,
    });
    let mut tombstone = msg(TEAM, 7, 4, "", NOW - HOUR / 3);
    tombstone.deleted = true;
    let mut image = msg(TEAM, 8, 3, "the whiteboard", NOW - HOUR / 4);
    image.kind = pb::MessageKind::Image as i32;
    image.file_id = "f_whiteboard".into();
    image.attachment = Some(Box::new(pb::FileInfo {
        id: "f_whiteboard".into(),
        name: "whiteboard.png".into(),
        mime: "image/png".into(),
        size: 48_213,
        kind: pb::MessageKind::Image as i32,
        ..Default::default()
    }));
    vec![
        msg(TEAM, 2, 4, "See you all tomorrow.", NOW - day + HOUR),
        msg(
            TEAM,
            3,
            2,
            "Good morning team! Who has the agenda for today's planning meeting?",
            NOW - 2 * HOUR,
        ),
        mine_read,
        reply,
        forward,
        tombstone,
        image,
        msg(TEAM, 9, ME, "see you there", NOW - HOUR / 6),
    ]
}

/// [`signed_in`] with the team chat open, its history and receipts loaded, bob typing, and
/// one message of mine still in the outbox.
pub fn team_open() -> Model {
    let mut m = signed_in();
    m.chats.selected = Some(TEAM);
    let effects = keys(&mut m, "enter");
    let token = commands(&effects)
        .iter()
        .find_map(|c| match c {
            NetCommand::LoadHistory { token, .. } => Some(*token),
            _ => None,
        })
        .expect("opening a chat loads its history");
    net(
        &mut m,
        NetEvent::History {
            chat_id: TEAM,
            token,
            range: HistoryRange::Latest,
            page: HistoryPage {
                messages: team_history(),
                end: true,
            },
        },
    );
    net(
        &mut m,
        NetEvent::Receipts {
            chat_id: TEAM,
            receipts: vec![
                pb::MemberReceipt {
                    user_id: 2,
                    delivered_seq: 9,
                    read_seq: 8,
                },
                pb::MemberReceipt {
                    user_id: 3,
                    delivered_seq: 9,
                    read_seq: 9,
                },
                pb::MemberReceipt {
                    user_id: 4,
                    delivered_seq: 9,
                    read_seq: 4,
                },
            ],
        },
    );
    client(
        &mut m,
        ClientEvent::Typing(pb::Typing {
            chat_id: TEAM,
            user_id: 2,
            expires_in_ms: 5000,
        }),
    );
    type_text(&mut m, "on my way");
    keys(&mut m, "enter");
    m.conn = ConnState::Connected {
        address: "chat.example:4433".into(),
    };
    m
}

/// Bob (user 2), the other member of [`BOB_CHAT`].
pub const BOB: u64 = 2;
/// The call of the call fixtures.
pub const CALL: u64 = 77;

/// Call [`CALL`] in [`BOB_CHAT`] from `caller` (me or [`BOB`]), started at [`NOW`]: ringing for
/// 30 s, answered at `NOW + 1 s` when active, ended 42 s after the answer (or at once) by
/// `ended_by` when ended.
pub fn call(
    caller: u64,
    state: pb::CallState,
    reason: pb::CallEndReason,
    ended_by: u64,
) -> pb::Call {
    let callee = if caller == ME { BOB } else { ME };
    let answered = matches!(state, pb::CallState::Active)
        || (state == pb::CallState::Ended && reason == pb::CallEndReason::HungUp);
    let answered_at_ms = if answered { NOW + 1_000 } else { 0 };
    let ended = state == pb::CallState::Ended;
    pb::Call {
        call_id: CALL,
        chat_id: BOB_CHAT,
        caller_id: caller,
        callee_id: callee,
        video: false,
        state: state as i32,
        end_reason: reason as i32,
        started_at_ms: NOW,
        answered_at_ms,
        ended_at_ms: match (ended, answered) {
            (false, _) => 0,
            (true, true) => answered_at_ms + 42_000,
            (true, false) => NOW + 2_000,
        },
        ring_until_ms: NOW + 30_000,
        ended_by: if ended { ended_by } else { 0 },
    }
}

/// Moves the clock to `now_ms`.
pub fn tick(model: &mut Model, now_ms: i64) -> Vec<Effect> {
    update(
        model,
        Action::Tick(crate::model::Clock {
            now_ms,
            utc_offset_s: 0,
        }),
    )
}

/// Signed in, with the private chat with bob open and its (empty) history loaded.
pub fn bob_open() -> Model {
    let mut m = signed_in();
    m.chats.selected = Some(BOB_CHAT);
    let effects = keys(&mut m, "enter");
    let token = commands(&effects)
        .into_iter()
        .find_map(|c| match c {
            NetCommand::LoadHistory { token, .. } => Some(token),
            _ => None,
        })
        .expect("the chat loads its history");
    net(
        &mut m,
        NetEvent::History {
            chat_id: BOB_CHAT,
            token,
            range: HistoryRange::Latest,
            page: HistoryPage {
                messages: vec![msg(BOB_CHAT, 2, BOB, "call me?", NOW - 60_000)],
                end: true,
            },
        },
    );
    m
}

/// Renders the model into a `width` × `height` frame and returns its text, one line per row
/// (trailing spaces removed).
pub fn render(model: &Model, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| {
            crate::ui::render(model, frame);
        })
        .expect("draw");
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..height {
        let mut line = String::new();
        let mut skip = 0;
        for x in 0..width {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let symbol = buffer[(x, y)].symbol();
            line.push_str(symbol);
            skip = symbol.width().saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Group call 90 in the team chat, started by bob, at `version`, with `participants`.
pub fn group_call(version: u64, state: pb::CallState, participants: &[u64]) -> pb::GroupCall {
    pb::GroupCall {
        call_id: 90,
        chat_id: TEAM,
        started_by: BOB,
        video: false,
        state: state as i32,
        started_at_ms: NOW,
        participants: participants
            .iter()
            .map(|&user_id| pb::GroupCallParticipant {
                user_id,
                device_id: 100 + user_id,
                joined_at_ms: NOW,
            })
            .collect(),
        version,
        ..Default::default()
    }
}
