//! The open chat: loading history, sending through the outbox, catching up, scrolling, jumping.

use chatproto::client::{ClientEvent, HistoryPage, HistoryRange};
use chatproto::pb;
use chatproto::pb::chat_event::Body;

use super::{history_token, shown_texts};
use crate::action::{Action, MouseAction, NetEvent};
use crate::effect::{Effect, NetCommand};
use crate::model::Focus;
use crate::testing::*;

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
