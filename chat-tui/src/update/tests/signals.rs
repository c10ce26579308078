//! Events that are not history: notifications, typing, the connection, membership changes.

use chatproto::client::ClientEvent;
use chatproto::pb;
use chatproto::pb::chat_event::Body;

use crate::action::Action;
use crate::effect::{Effect, NetCommand};
use crate::model::{ConnState, Focus, Screen};
use crate::testing::*;

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
