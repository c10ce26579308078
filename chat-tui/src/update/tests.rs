//! The update function, driven by actions as the app and the network task send them.

use chatproto::client::{ClientEvent, HistoryPage, HistoryRange};
use chatproto::pb;
use chatproto::pb::chat_event::Body;

use crate::action::{Action, MouseAction, NetEvent};
use crate::effect::{Effect, NetCommand, UserRef};
use crate::model::{ConnState, Focus, Overlay, Screen};
use crate::testing::*;
use crate::widgets::composer::Mode;
use crate::widgets::picker::Purpose;

fn history_token(effects: &[Effect], wanted: HistoryRange) -> u64 {
    commands(effects)
        .iter()
        .find_map(|c| match c {
            NetCommand::LoadHistory { token, range, .. } if *range == wanted => Some(*token),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {wanted:?} request in {effects:?}"))
}

fn shown_texts(m: &crate::model::Model) -> Vec<String> {
    m.view
        .as_ref()
        .map(|v| v.window.iter().map(|m| m.text.clone()).collect())
        .unwrap_or_default()
}

#[test]
fn a_new_server_is_trusted_only_with_y_and_a_changed_one_only_quits() {
    let mut m = model();
    net(
        &mut m,
        NetEvent::TrustUnknown {
            address: "chat.example:4433".into(),
            fingerprint: "ab".repeat(32),
            file: "~/.config/chat-tui/known_servers".into(),
        },
    );
    assert!(keys(&mut m, "x").is_empty(), "other keys do nothing");
    assert_eq!(commands(&keys(&mut m, "y")), [NetCommand::Trust(true)]);
    assert!(matches!(m.screen, Screen::Connecting { .. }));

    let mut m = model();
    net(
        &mut m,
        NetEvent::TrustChanged {
            address: "chat.example:4433".into(),
            fingerprint: "ab".repeat(32),
            known: "cd".repeat(32),
            file: "known_servers".into(),
        },
    );
    assert!(
        commands(&keys(&mut m, "y")).is_empty(),
        "a changed certificate cannot be accepted"
    );
    assert!(!m.quit);
    assert!(keys(&mut m, "esc").contains(&Effect::Quit));
}

#[test]
fn the_sign_in_form_checks_before_sending_and_shows_refusals() {
    let mut m = model();
    net(&mut m, NetEvent::NeedSignIn { reason: None });
    type_text(&mut m, "Alice");
    keys(&mut m, "enter");
    let effects = type_text(&mut m, "secret12");
    assert!(effects.is_empty());
    let sent = commands(&keys(&mut m, "enter"));
    assert_eq!(
        sent,
        [NetCommand::SignIn {
            username: "alice".into(),
            password: "secret12".into()
        }]
    );
    assert!(
        keys(&mut m, "enter").is_empty(),
        "nothing is sent twice while busy"
    );
    net(
        &mut m,
        NetEvent::SignInFailed {
            error: "Wrong username or password.".into(),
        },
    );
    let Screen::Auth(form) = &m.screen else {
        panic!("auth screen")
    };
    assert_eq!(form.error.as_deref(), Some("Wrong username or password."));
    assert!(!form.busy);

    // Registration: the username is kept, mistakes are named locally.
    keys(&mut m, "ctrl-r");
    let Screen::Auth(form) = &m.screen else {
        panic!("auth screen")
    };
    assert!(form.register);
    assert_eq!(form.value("Username"), "Alice");
    type_text(&mut m, "alice@example.org");
    keys(&mut m, "tab");
    type_text(&mut m, "longenough");
    keys(&mut m, "tab");
    type_text(&mut m, "different!");
    assert!(commands(&keys(&mut m, "enter")).is_empty());
    let Screen::Auth(form) = &m.screen else {
        panic!("auth screen")
    };
    assert_eq!(form.error.as_deref(), Some("The two passwords differ."));
    assert_eq!(form.focus, 3);
    keys(&mut m, "ctrl-u");
    type_text(&mut m, "longenough");
    assert_eq!(
        commands(&keys(&mut m, "enter")),
        [NetCommand::Register {
            username: "alice".into(),
            email: "alice@example.org".into(),
            password: "longenough".into()
        }]
    );
}

#[test]
fn signing_in_loads_the_chats_and_selects_the_first() {
    let mut m = model();
    let effects = net(
        &mut m,
        NetEvent::SignedIn {
            me: user(ME, "alice", pb::UserStatus::Online),
            outbox: vec![pb::SendMessage {
                chat_id: TEAM,
                client_msg_id: "old-1".into(),
                text: "left from last time".into(),
                ..Default::default()
            }],
        },
    );
    assert_eq!(commands(&effects), [NetCommand::LoadChats]);
    assert_eq!(m.screen, Screen::Main);
    assert_eq!(
        m.pending.shown_in(TEAM).count(),
        1,
        "the outbox of the last run is shown"
    );
    let m = signed_in();
    assert_eq!(m.chats.selected, Some(13), "the pinned chat comes first");
    assert_eq!(m.chats.title(BOB_CHAT, &m.users), "bob");
}

#[test]
fn opening_a_chat_loads_history_members_and_receipts_and_marks_it_read() {
    let mut m = signed_in();
    m.chats.selected = Some(TEAM);
    let effects = keys(&mut m, "enter");
    let token = history_token(&effects, HistoryRange::Latest);
    let sent = commands(&effects);
    assert!(sent.contains(&NetCommand::LoadChat(TEAM)));
    assert!(sent.contains(&NetCommand::LoadReceipts(TEAM)));
    assert_eq!(m.focus, Focus::Composer);
    let effects = net(
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
    assert!(commands(&effects).contains(&NetCommand::MarkRead {
        chat_id: TEAM,
        seq: 9
    }));
    assert_eq!(m.chats.get(TEAM).unwrap().state().unread_count, 0);
    assert_eq!(shown_texts(&m).len(), 8);
    // An answer for a chat that is no longer open is dropped.
    let effects = net(
        &mut m,
        NetEvent::History {
            chat_id: BOB_CHAT,
            token: 999,
            range: HistoryRange::Latest,
            page: HistoryPage {
                messages: vec![],
                end: true,
            },
        },
    );
    assert!(effects.is_empty());
}

#[test]
fn a_sent_message_is_shown_once_whichever_of_answer_and_event_comes_first() {
    for event_first in [true, false] {
        let mut m = team_open();
        let queued = commands(&keys(&mut m, "esc")).is_empty();
        assert!(queued);
        let pending: Vec<pb::SendMessage> = m.pending.shown_in(TEAM).cloned().collect();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].text, "on my way");
        assert_eq!(
            pending[0].client_msg_id, "t-2",
            "ids come from the model's id source"
        );
        let stored = pb::Message {
            client_msg_id: pending[0].client_msg_id.clone(),
            ..msg(TEAM, 10, ME, "on my way", NOW)
        };
        let live = pb::Message {
            client_msg_id: String::new(),
            ..stored.clone()
        };
        let answer = NetEvent::Sent {
            request: pending[0].clone(),
            message: stored,
        };
        if event_first {
            client(&mut m, created(&live));
            assert_eq!(
                m.pending.shown_in(TEAM).count(),
                0,
                "the echo replaces the pending entry"
            );
            net(&mut m, answer);
        } else {
            net(&mut m, answer);
            client(&mut m, created(&live));
        }
        let texts = shown_texts(&m);
        assert_eq!(
            texts.iter().filter(|t| *t == "on my way").count(),
            1,
            "{texts:?}"
        );
        assert!(m.pending.is_empty());
    }
}

#[test]
fn sending_queues_through_the_outbox_and_refusals_give_the_text_back() {
    let mut m = team_open();
    type_text(&mut m, "hello :tada:");
    let effects = keys(&mut m, "enter");
    let queued = commands(&effects)
        .into_iter()
        .find_map(|c| match c {
            NetCommand::Queue(r) => Some(r),
            _ => None,
        })
        .expect("queued");
    assert_eq!(queued.text, "hello 🎉", "shortcodes are expanded");
    assert!(effects.iter().any(|e| matches!(e, Effect::SaveInputHistory(h) if h.last().map(String::as_str) == Some("hello :tada:"))));
    net(
        &mut m,
        NetEvent::SendRefused {
            request: queued,
            error: "not allowed: blocked".into(),
        },
    );
    assert_eq!(m.composer.input.text(), "hello 🎉");
    assert!(m.notice.as_ref().unwrap().text.contains("blocked"));
    // `//` sends a text that starts with a slash.
    m.composer.input.set("//shrug");
    let sent = commands(&keys(&mut m, "enter"));
    assert!(
        matches!(&sent[0], NetCommand::Queue(r) if r.text == "/shrug"),
        "{sent:?}"
    );
}

#[test]
fn catch_up_applies_edits_deletions_and_reactions_without_duplicates() {
    let mut m = team_open();
    let events = [
        Body::MessageEdited(pb::MessageEdited {
            message_seq: 3,
            text: "Agenda, anyone?".into(),
            edited_at_ms: NOW,
        }),
        Body::MessageDeleted(pb::MessageDeleted { message_seq: 6 }),
        Body::ReactionChanged(pb::ReactionChanged {
            message_seq: 9,
            emoji: "🎉".into(),
            user_id: 2,
            added: true,
        }),
    ];
    for (i, body) in events.into_iter().enumerate() {
        client(
            &mut m,
            ClientEvent::Chat(pb::ChatEvent {
                chat_id: TEAM,
                seq: 10 + i as u64,
                at_ms: NOW,
                actor_id: 2,
                body: Some(body),
            }),
        );
    }
    client(&mut m, created(&msg(TEAM, 13, 2, "new after the gap", NOW)));
    let view = m.view.as_ref().unwrap();
    assert_eq!(view.window.get(3).unwrap().text, "Agenda, anyone?");
    assert!(view.window.get(3).unwrap().edited);
    assert!(view.window.get(6).unwrap().deleted);
    assert_eq!(view.window.get(9).unwrap().reactions[0].emoji, "🎉");
    assert_eq!(view.window.len(), 9);
}

#[test]
fn a_page_overtaken_by_a_change_is_asked_for_again() {
    let mut m = signed_in();
    m.chats.selected = Some(TEAM);
    let token = history_token(&keys(&mut m, "enter"), HistoryRange::Latest);
    // The edit arrives before the page that may predate it.
    client(
        &mut m,
        ClientEvent::Chat(pb::ChatEvent {
            chat_id: TEAM,
            seq: 10,
            at_ms: NOW,
            actor_id: 2,
            body: Some(Body::MessageEdited(pb::MessageEdited {
                message_seq: 3,
                text: "edited".into(),
                edited_at_ms: NOW,
            })),
        }),
    );
    let effects = net(
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
    let again = history_token(&effects, HistoryRange::Latest);
    assert_ne!(again, token);
    assert!(shown_texts(&m).is_empty(), "the stale page was not shown");
    let mut fresh = team_history();
    fresh[1].text = "edited".into();
    net(
        &mut m,
        NetEvent::History {
            chat_id: TEAM,
            token: again,
            range: HistoryRange::Latest,
            page: HistoryPage {
                messages: fresh,
                end: true,
            },
        },
    );
    assert_eq!(
        m.view.as_ref().unwrap().window.get(3).unwrap().text,
        "edited"
    );
}

#[test]
fn scrolling_up_loads_older_history_when_the_top_nears_the_window_start() {
    let mut m = signed_in();
    m.chats.selected = Some(TEAM);
    let token = history_token(&keys(&mut m, "enter"), HistoryRange::Latest);
    let page = HistoryPage {
        messages: (951..=1000).map(|s| msg(TEAM, s, 2, "x", NOW)).collect(),
        end: false,
    };
    net(
        &mut m,
        NetEvent::History {
            chat_id: TEAM,
            token,
            range: HistoryRange::Latest,
            page,
        },
    );
    let effects = apply(
        &mut m,
        Action::Viewport {
            chat_id: TEAM,
            top: 980,
            bottom: 1000,
        },
    );
    assert!(
        commands(&effects).is_empty(),
        "far from the start: nothing to load"
    );
    let effects = apply(&mut m, Action::Mouse(MouseAction::ScrollMessages(-30)));
    assert_eq!(m.view.as_ref().unwrap().anchor, Some(970));
    let effects = [
        effects,
        apply(
            &mut m,
            Action::Viewport {
                chat_id: TEAM,
                top: 955,
                bottom: 970,
            },
        ),
    ]
    .concat();
    history_token(&effects, HistoryRange::Before(951));
    // Once is enough while the request is in flight.
    let effects = apply(
        &mut m,
        Action::Viewport {
            chat_id: TEAM,
            top: 952,
            bottom: 968,
        },
    );
    assert!(commands(&effects).is_empty());
}

#[test]
fn message_actions_from_keys() {
    let mut m = team_open();
    keys(&mut m, "esc");
    assert_eq!(m.focus, Focus::Messages);
    keys(&mut m, "k");
    assert_eq!(m.view.as_ref().unwrap().selected, Some(9));
    // Edit my message.
    keys(&mut m, "e");
    assert_eq!(m.composer.mode, Mode::Edit { seq: 9 });
    assert_eq!(m.composer.input.text(), "see you there");
    type_text(&mut m, "!");
    let sent = commands(&keys(&mut m, "enter"));
    assert_eq!(
        sent,
        [NetCommand::Edit {
            chat_id: TEAM,
            seq: 9,
            text: "see you there!".into()
        }]
    );
    // Reply to carol's image, react to it, forward it, delete it.
    keys(&mut m, "esc k");
    assert_eq!(m.view.as_ref().unwrap().selected, Some(8));
    keys(&mut m, "r");
    assert!(
        matches!(&m.composer.mode, Mode::Reply { seq: 8, preview } if preview.starts_with("Carol C.:"))
    );
    type_text(&mut m, "nice");
    let sent = commands(&keys(&mut m, "enter"));
    assert!(
        matches!(&sent[0], NetCommand::Queue(r) if r.reply_to_seq == 8 && r.text == "nice"),
        "{sent:?}"
    );
    // Sending went back to the latest messages: select the image again.
    keys(&mut m, "esc k k");
    assert_eq!(m.view.as_ref().unwrap().selected, Some(8));
    keys(&mut m, "+");
    assert!(
        matches!(&m.overlay, Some(Overlay::Picker(p)) if p.purpose == Purpose::React { chat_id: TEAM, seq: 8 })
    );
    type_text(&mut m, "tada");
    let sent = commands(&keys(&mut m, "enter"));
    assert_eq!(
        sent,
        [NetCommand::React {
            chat_id: TEAM,
            seq: 8,
            emoji: "🎉".into(),
            remove: false
        }]
    );
    keys(&mut m, "f");
    type_text(&mut m, "bob");
    let sent = commands(&keys(&mut m, "enter"));
    assert!(
        matches!(&sent[0], NetCommand::Queue(r) if r.chat_id == BOB_CHAT && r.forward == Some(pb::MessageRef { chat_id: TEAM, seq: 8 })),
        "{sent:?}"
    );
    assert_eq!(
        commands(&keys(&mut m, "d")),
        [NetCommand::Delete {
            chat_id: TEAM,
            seq: 8,
            for_everyone: false
        }]
    );
    assert!(
        commands(&keys(&mut m, "D")).is_empty(),
        "for everyone asks first"
    );
    assert!(matches!(m.overlay, Some(Overlay::Confirm(_))));
    assert_eq!(
        commands(&keys(&mut m, "y")),
        [NetCommand::Delete {
            chat_id: TEAM,
            seq: 8,
            for_everyone: true
        }]
    );
    // Someone else's message cannot be edited.
    keys(&mut m, "e");
    assert!(m.notice.as_ref().unwrap().text.contains("your own"));
}

#[test]
fn slash_commands_become_requests_or_say_what_is_wrong() {
    let mut m = team_open();
    let cases: Vec<(&str, NetCommand)> = vec![
        ("/dm @bob", NetCommand::OpenPrivate(UserRef::Id(2))),
        (
            "/dm zoe",
            NetCommand::OpenPrivate(UserRef::Name("zoe".into())),
        ),
        (
            "/group Book club",
            NetCommand::CreateGroup {
                kind: pb::ChatKind::Group,
                title: "Book club".into(),
            },
        ),
        (
            "/channel News",
            NetCommand::CreateGroup {
                kind: pb::ChatKind::Channel,
                title: "News".into(),
            },
        ),
        (
            "/invite dave",
            NetCommand::Invite {
                chat_id: TEAM,
                user: UserRef::Id(4),
            },
        ),
        (
            "/promote carol",
            NetCommand::SetRole {
                chat_id: TEAM,
                user: UserRef::Id(3),
                role: pb::MemberRole::Admin,
            },
        ),
        (
            "/demote carol",
            NetCommand::SetRole {
                chat_id: TEAM,
                user: UserRef::Id(3),
                role: pb::MemberRole::Member,
            },
        ),
        (
            "/mute 1h",
            NetCommand::SetChatState {
                chat_id: TEAM,
                pinned: None,
                muted_until_ms: Some(NOW + HOUR),
                archived: None,
            },
        ),
        (
            "/mute",
            NetCommand::SetChatState {
                chat_id: TEAM,
                pinned: None,
                muted_until_ms: Some(i64::MAX),
                archived: None,
            },
        ),
        (
            "/pin",
            NetCommand::SetChatState {
                chat_id: TEAM,
                pinned: Some(true),
                muted_until_ms: None,
                archived: None,
            },
        ),
        (
            "/archive",
            NetCommand::SetChatState {
                chat_id: TEAM,
                pinned: None,
                muted_until_ms: None,
                archived: Some(true),
            },
        ),
        (
            "/react :fire:",
            NetCommand::React {
                chat_id: TEAM,
                seq: 9,
                emoji: "🔥".into(),
                remove: false,
            },
        ),
        (
            "/unreact 👍",
            NetCommand::React {
                chat_id: TEAM,
                seq: 9,
                emoji: "👍".into(),
                remove: true,
            },
        ),
        (
            "/edit fixed",
            NetCommand::Edit {
                chat_id: TEAM,
                seq: 9,
                text: "fixed".into(),
            },
        ),
        (
            "/status away",
            NetCommand::UpdateProfile(pb::UpdateProfile {
                status: pb::UserStatus::Away as i32,
                ..Default::default()
            }),
        ),
        (
            "/name Alice A.",
            NetCommand::UpdateProfile(pb::UpdateProfile {
                display_name: Some("Alice A.".into()),
                ..Default::default()
            }),
        ),
        ("/block dave", NetCommand::Block(UserRef::Id(4))),
        ("/unblock dave", NetCommand::Unblock(UserRef::Id(4))),
        ("/addcontact bob", NetCommand::AddContact(UserRef::Id(2))),
        ("/sessions", NetCommand::ListSessions),
    ];
    for (line, expected) in cases {
        m.composer.input.set(line);
        let sent = commands(&keys(&mut m, "enter"));
        assert_eq!(sent, [expected], "{line}");
        assert!(m.composer.input.is_empty());
    }
    for (line, overlay) in [
        ("/kick dave", "confirm"),
        ("/leave", "confirm"),
        ("/transfer bob", "confirm"),
        ("/logout", "confirm"),
        ("/help", "help"),
    ] {
        m.overlay = None;
        m.composer.input.set(line);
        assert!(
            commands(&keys(&mut m, "enter")).is_empty(),
            "{line} asks first"
        );
        let shown = match m.overlay {
            Some(Overlay::Confirm(_)) => "confirm",
            Some(Overlay::Help { .. }) => "help",
            _ => "nothing",
        };
        assert_eq!(shown, overlay, "{line}");
    }
    m.overlay = None;
    m.composer.input.set("/teleport");
    assert!(commands(&keys(&mut m, "enter")).is_empty());
    assert!(
        m.notice
            .as_ref()
            .unwrap()
            .text
            .contains("unknown command /teleport")
    );
    assert_eq!(
        m.composer.input.text(),
        "/teleport",
        "a mistake keeps the line to fix"
    );
}

#[test]
fn tab_completes_mentions_chats_and_commands() {
    let mut m = team_open();
    type_text(&mut m, "hi @ca");
    keys(&mut m, "tab");
    assert_eq!(m.composer.input.text(), "hi @carol ");
    m.composer.input.set("/mu");
    keys(&mut m, "tab");
    assert_eq!(m.composer.input.text(), "/mute ");
    m.composer.input.set("see #fam");
    keys(&mut m, "tab");
    assert_eq!(m.composer.input.text(), "see #family ");
}

#[test]
fn messages_elsewhere_count_as_unread_ring_once_a_second_and_not_when_muted() {
    let mut m = team_open();
    let effects = client(&mut m, created(&msg(BOB_CHAT, 5, 2, "ping", NOW)));
    assert!(effects.contains(&Effect::Bell));
    assert_eq!(m.chats.get(BOB_CHAT).unwrap().state().unread_count, 1);
    let effects = client(&mut m, created(&msg(BOB_CHAT, 6, 2, "ping again", NOW)));
    assert!(
        !effects.contains(&Effect::Bell),
        "at most one bell a second"
    );
    apply(
        &mut m,
        Action::Tick(crate::model::Clock {
            now_ms: NOW + 2_000,
            utc_offset_s: 0,
        }),
    );
    let effects = client(&mut m, created(&msg(12, 40, 2, "muted news", NOW)));
    assert!(!effects.contains(&Effect::Bell));
    // In view: read at once, no bell.
    let effects = client(&mut m, created(&msg(TEAM, 10, 2, "here", NOW + 2_000)));
    assert!(!effects.contains(&Effect::Bell));
    assert!(commands(&effects).contains(&NetCommand::MarkRead {
        chat_id: TEAM,
        seq: 10
    }));
    // Desktop notifications when switched on.
    m.config.notifications.desktop = true;
    apply(
        &mut m,
        Action::Tick(crate::model::Clock {
            now_ms: NOW + 4_000,
            utc_offset_s: 0,
        }),
    );
    let effects = client(&mut m, created(&msg(BOB_CHAT, 7, 2, "ping @alice", NOW)));
    assert!(effects.contains(&Effect::Notify {
        title: "bob".into(),
        body: "bob: ping @alice".into()
    }));
}

#[test]
fn typing_shows_until_it_expires_and_typing_is_said_every_three_seconds() {
    let mut m = team_open();
    assert_eq!(m.typing.in_chat(TEAM), [2]);
    apply(
        &mut m,
        Action::Tick(crate::model::Clock {
            now_ms: NOW + 6_000,
            utc_offset_s: 0,
        }),
    );
    assert!(m.typing.in_chat(TEAM).is_empty());
    let first = commands(&type_text(&mut m, "ab"));
    assert_eq!(first, [NetCommand::Typing(TEAM)]);
    apply(
        &mut m,
        Action::Tick(crate::model::Clock {
            now_ms: NOW + 9_500,
            utc_offset_s: 0,
        }),
    );
    assert_eq!(
        commands(&type_text(&mut m, "c")),
        [NetCommand::Typing(TEAM)]
    );
}

#[test]
fn the_connection_state_follows_the_sdk() {
    let mut m = team_open();
    client(
        &mut m,
        ClientEvent::Disconnected {
            reason: "timed out".into(),
        },
    );
    client(
        &mut m,
        ClientEvent::Reconnecting {
            after: std::time::Duration::from_millis(2_500),
        },
    );
    assert_eq!(
        m.conn,
        ConnState::Reconnecting {
            at_ms: NOW + 2_500,
            reason: "timed out".into()
        }
    );
    let effects = client(&mut m, ClientEvent::CaughtUp);
    assert!(commands(&effects).contains(&NetCommand::LoadChats));
    client(
        &mut m,
        ClientEvent::SessionRevoked(pb::SessionRevoked {
            reason: "signed out elsewhere".into(),
        }),
    );
    let Screen::Auth(form) = &m.screen else {
        panic!("back to sign-in")
    };
    assert!(
        form.error
            .as_ref()
            .unwrap()
            .contains("signed out elsewhere")
    );
    assert_eq!(form.value("Username"), "alice");
}

#[test]
fn leaving_or_losing_the_open_chat_closes_it() {
    let mut m = team_open();
    client(
        &mut m,
        ClientEvent::Chat(pb::ChatEvent {
            chat_id: TEAM,
            seq: 10,
            at_ms: NOW,
            actor_id: 2,
            body: Some(Body::MemberRemoved(pb::MemberRemoved {
                user_id: ME,
                left: false,
            })),
        }),
    );
    assert!(m.view.is_none());
    assert!(m.chats.get(TEAM).is_none());
    assert_eq!(m.focus, Focus::Chats);
    assert!(
        m.notice
            .as_ref()
            .unwrap()
            .text
            .contains("removed from team")
    );
}

#[test]
fn an_event_of_an_unknown_chat_asks_for_it() {
    let mut m = signed_in();
    let effects = client(&mut m, created(&msg(77, 1, 4, "hi", NOW)));
    assert!(commands(&effects).contains(&NetCommand::LoadChat(77)));
}

#[test]
fn the_chat_list_filters_by_typing_and_clicks_open_chats() {
    let mut m = signed_in();
    keys(&mut m, "/");
    type_text(&mut m, "te");
    assert_eq!(m.chats.selected, Some(TEAM));
    let effects = keys(&mut m, "enter");
    assert_eq!(m.open_chat(), Some(TEAM));
    assert!(m.chats.filter.is_none());
    history_token(&effects, HistoryRange::Latest);
    apply(&mut m, Action::Mouse(MouseAction::ClickChat(BOB_CHAT)));
    assert_eq!(m.open_chat(), Some(BOB_CHAT));
    keys(&mut m, "esc esc a");
    assert!(m.chats.show_archived);
}

#[test]
fn configured_keys_replace_the_defaults() {
    let mut m = team_open();
    m.config = crate::config::Config::parse("[keys.messages]\nreply = \"R\"\n", false).unwrap();
    keys(&mut m, "esc k r");
    assert_eq!(m.composer.mode, Mode::New, "r no longer replies");
    keys(&mut m, "R");
    assert!(matches!(m.composer.mode, Mode::Reply { seq: 9, .. }));
}

#[test]
fn the_help_overlay_opens_everywhere_but_in_text() {
    let mut m = team_open();
    type_text(&mut m, "?");
    assert!(m.overlay.is_none(), "in the composer ? is text");
    keys(&mut m, "f1");
    assert!(matches!(m.overlay, Some(Overlay::Help { .. })));
    keys(&mut m, "esc esc ?");
    assert!(matches!(m.overlay, Some(Overlay::Help { .. })));
    keys(&mut m, "q");
    assert!(m.overlay.is_none());
}

#[test]
fn a_search_result_jumps_into_history() {
    let mut m = team_open();
    keys(&mut m, "esc S");
    let effects = type_text(&mut m, "lunch");
    let token = match commands(&effects).last() {
        Some(NetCommand::SearchMessages {
            token,
            query,
            chat_id: 0,
        }) if query == "lunch" => *token,
        other => panic!("{other:?}"),
    };
    net(
        &mut m,
        NetEvent::MessageResults {
            token,
            messages: vec![msg(BOB_CHAT, 400, 2, "lunch?", NOW)],
        },
    );
    let effects = keys(&mut m, "enter");
    assert_eq!(m.open_chat(), Some(BOB_CHAT));
    let token = history_token(&effects, HistoryRange::Before(401));
    let page = HistoryPage {
        messages: (351..=400).map(|s| msg(BOB_CHAT, s, 2, "x", NOW)).collect(),
        end: false,
    };
    net(
        &mut m,
        NetEvent::History {
            chat_id: BOB_CHAT,
            token,
            range: HistoryRange::Before(401),
            page,
        },
    );
    let view = m.view.as_ref().unwrap();
    assert_eq!(view.selected, Some(400));
    assert!(!view.window.at_latest);
    // Going to the bottom reloads the latest page.
    let effects = keys(&mut m, "G");
    history_token(&effects, HistoryRange::Latest);
}
