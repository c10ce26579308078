//! Actions by keys and by slash commands, completion, the chat list, key configuration, help.

use chatproto::client::HistoryRange;
use chatproto::pb;

use super::history_token;
use crate::action::{Action, MouseAction};
use crate::effect::{NetCommand, UserRef};
use crate::model::{Focus, Overlay};
use crate::testing::*;
use crate::widgets::composer::Mode;
use crate::widgets::picker::Purpose;

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
fn a_message_longer_than_the_server_takes_is_not_sent() {
    let mut m = team_open();
    m.max_text_chars = 10;
    type_text(&mut m, "eleven char");
    assert!(commands(&keys(&mut m, "enter")).is_empty());
    let notice = m
        .notice
        .as_ref()
        .map(|n| n.text.clone())
        .unwrap_or_default();
    assert!(notice.contains("at most 10"), "{notice}");
    assert_eq!(
        m.composer.input.text(),
        "eleven char",
        "kept to be shortened"
    );
    keys(&mut m, "backspace");
    let sent = commands(&keys(&mut m, "enter"));
    assert!(
        matches!(&sent[..], [NetCommand::Queue(r)] if r.text == "eleven cha"),
        "{sent:?}"
    );
}
