//! Opening the windows over the main screen: pickers (users, chats, emoji, results, lists,
//! menus) and the confirmations before what cannot be undone.

use chatproto::pb;

use super::overlay::query_changed;
use crate::effect::{Effect, NetCommand, UserRef};
use crate::model::{Level, Model, Overlay};
use crate::widgets::dialog::Confirm;
use crate::widgets::picker::{Item, Picker, Purpose, Value};

/// Opens a picker of users found by the server as the user types.
pub(super) fn open_user_search(model: &mut Model, purpose: Purpose, effects: &mut Vec<Effect>) {
    let title = match purpose {
        Purpose::Invite(_) => "Invite: type a name",
        Purpose::AddContact => "Add a contact: type a name",
        _ => "New private chat: type a name",
    };
    let token = model.ids.token();
    model.overlay = Some(Overlay::Picker(Picker::remote(
        title,
        purpose,
        token,
        "type the start of a username",
    )));
    let _ = effects;
}

/// Opens message search, running it at once when `words` are given.
pub(super) fn open_search(model: &mut Model, chat_id: u64, words: &str, effects: &mut Vec<Effect>) {
    let title = if chat_id == 0 {
        "Search every chat".to_string()
    } else {
        format!("Search {}", model.chats.title(chat_id, &model.users))
    };
    let token = model.ids.token();
    let mut picker = Picker::remote(
        title,
        Purpose::Search { chat_id },
        token,
        "type words to find",
    );
    picker.query.set(words);
    model.overlay = Some(Overlay::Picker(picker));
    if !words.is_empty() {
        query_changed(model, effects);
    }
}

/// Opens a list the server sends once (contacts, blocked users).
pub(super) fn open_list(model: &mut Model, purpose: Purpose, effects: &mut Vec<Effect>) {
    let token = model.ids.token();
    let (title, command) = match purpose {
        Purpose::Blocked => (
            "Blocked users (enter unblocks)",
            NetCommand::ListBlocked { token },
        ),
        _ => (
            "Contacts (enter opens the chat)",
            NetCommand::ListContacts { token },
        ),
    };
    let mut picker = Picker::remote(title, purpose, token, "nobody yet");
    picker.loading = true;
    model.overlay = Some(Overlay::Picker(picker));
    effects.push(Effect::Net(command));
}

/// Opens the emoji picker for a reaction to `m`.
pub(super) fn open_reactions(model: &mut Model, m: &pb::Message) {
    if m.deleted {
        model.notify(Level::Error, "That message was deleted.");
        return;
    }
    let me = model.me_id();
    let items = crate::emoji::SHORTCODES
        .iter()
        .map(|(name, e)| {
            let mine = m
                .reactions
                .iter()
                .any(|r| r.emoji == *e && r.user_ids.contains(&me));
            let detail = if mine {
                format!(":{name}: (yours: enter removes)")
            } else {
                format!(":{name}:")
            };
            Item::new(*e, detail, Value::Text((*e).to_string()))
        })
        .collect();
    model.overlay = Some(Overlay::Picker(Picker::local(
        "React",
        Purpose::React {
            chat_id: m.chat_id,
            seq: m.seq,
        },
        items,
    )));
}

/// Opens the chat picker to forward `m`.
pub(super) fn open_forward(model: &mut Model, m: &pb::Message) {
    if m.deleted {
        model.notify(Level::Error, "That message was deleted.");
        return;
    }
    let mut items: Vec<Item> = model
        .chats
        .iter()
        .map(|e| {
            Item::new(
                model.chats.title(e.chat.id, &model.users),
                "",
                Value::Chat(e.chat.id),
            )
        })
        .collect();
    items.sort_by_key(|item| item.label.to_lowercase());
    model.overlay = Some(Overlay::Picker(Picker::local(
        "Forward to",
        Purpose::Forward {
            chat_id: m.chat_id,
            seq: m.seq,
        },
        items,
    )));
}

/// Opens the mute durations.
pub(super) fn open_mute(model: &mut Model, chat_id: u64) {
    let items = [
        ("1 hour", "1h"),
        ("8 hours", "8h"),
        ("1 day", "1d"),
        ("1 week", "1w"),
        ("Forever", "forever"),
    ]
    .into_iter()
    .map(|(label, value)| Item::new(label, "", Value::Text(value.into())))
    .collect();
    model.overlay = Some(Overlay::Picker(Picker::local(
        "Mute for",
        Purpose::Mute(chat_id),
        items,
    )));
}

pub(super) fn text_items(items: &[(&str, &str)]) -> Vec<Item> {
    items
        .iter()
        .map(|(label, value)| Item::new(*label, "", Value::Text((*value).into())))
        .collect()
}

/// Opens the chat's menu.
pub(super) fn open_chat_menu(model: &mut Model, chat_id: u64) {
    let Some(entry) = model.chats.get(chat_id) else {
        return;
    };
    let state = entry.state();
    let private = entry.kind() == pb::ChatKind::Private;
    let mut items: Vec<(&str, &str)> = Vec::new();
    if !private {
        items.extend([("Members…", "members"), ("Invite…", "invite")]);
    }
    items.push(if state.pinned {
        ("Unpin", "pin")
    } else {
        ("Pin", "pin")
    });
    items.push(if entry.muted(model.clock.now_ms) {
        ("Unmute", "mute")
    } else {
        ("Mute…", "mute")
    });
    items.push(if state.archived {
        ("Unarchive", "archive")
    } else {
        ("Archive", "archive")
    });
    items.push(("Search in this chat…", "search"));
    items.push(if private {
        ("Delete this private chat…", "leave")
    } else {
        ("Leave…", "leave")
    });
    let title = model.chats.title(chat_id, &model.users);
    model.overlay = Some(Overlay::Picker(Picker::local(
        title,
        Purpose::ChatMenu(chat_id),
        text_items(&items),
    )));
}

/// Opens my menu.
pub(super) fn open_me_menu(model: &mut Model) {
    let items = text_items(&[
        ("Set my status…", "status"),
        ("My profile", "profile"),
        ("Contacts…", "contacts"),
        ("Add a contact…", "add_contact"),
        ("Blocked users…", "blocked"),
        ("My sessions…", "sessions"),
        ("Sign out…", "logout"),
    ]);
    let title = model
        .me
        .as_ref()
        .map_or("Me".to_string(), |u| format!("@{}", u.username));
    model.overlay = Some(Overlay::Picker(Picker::local(
        title,
        Purpose::MeMenu,
        items,
    )));
}

/// Opens the members of a chat (choosing one offers what can be done to them).
pub(super) fn open_members(model: &mut Model, chat_id: u64) {
    let members = model
        .view
        .as_ref()
        .filter(|v| v.chat_id == chat_id)
        .map(|v| v.members.clone())
        .unwrap_or_default();
    if members.is_empty() {
        model.notify(
            Level::Info,
            "The member list is still loading; try again in a moment.",
        );
        return;
    }
    let items = members
        .iter()
        .map(|m| {
            let role = match pb::MemberRole::try_from(m.role).unwrap_or(pb::MemberRole::Unspecified)
            {
                pb::MemberRole::Owner => "owner",
                pb::MemberRole::Admin => "admin",
                _ => "member",
            };
            let handle = model
                .users
                .username(m.user_id)
                .map(|u| format!("@{u} · "))
                .unwrap_or_default();
            Item::new(
                model.users.name(m.user_id),
                format!("{handle}{role}"),
                Value::User(m.user_id),
            )
        })
        .collect();
    model.overlay = Some(Overlay::Picker(Picker::local(
        "Members",
        Purpose::Members(chat_id),
        items,
    )));
}

pub(super) fn open_member_actions(model: &mut Model, chat_id: u64, user_id: u64) {
    let items = text_items(&[
        ("Send a private message", "message"),
        ("Show profile", "profile"),
        ("Make admin", "promote"),
        ("Make member (demote)", "demote"),
        ("Transfer ownership…", "transfer"),
        ("Remove from the chat…", "kick"),
        ("Block…", "block"),
    ]);
    let title = model.users.name(user_id);
    model.overlay = Some(Overlay::Picker(Picker::local(
        title,
        Purpose::MemberAction { chat_id, user_id },
        items,
    )));
}

fn user_label(model: &Model, user: &UserRef) -> String {
    match user {
        UserRef::Id(id) => model.users.name(*id),
        UserRef::Name(name) => format!("@{name}"),
    }
}

/// Asks before removing a member.
pub(super) fn confirm_kick(model: &mut Model, chat_id: u64, user: UserRef) {
    let question = format!(
        "Remove {} from {}?",
        user_label(model, &user),
        model.chats.title(chat_id, &model.users)
    );
    model.overlay = Some(Overlay::Confirm(Confirm {
        question,
        command: NetCommand::Kick { chat_id, user },
    }));
}

/// Asks before handing a chat over.
pub(super) fn confirm_transfer(model: &mut Model, chat_id: u64, user: UserRef) {
    let question = format!(
        "Make {} the owner of {}? You become an admin.",
        user_label(model, &user),
        model.chats.title(chat_id, &model.users)
    );
    model.overlay = Some(Overlay::Confirm(Confirm {
        question,
        command: NetCommand::Transfer { chat_id, user },
    }));
}

/// Asks before leaving (or, for a private chat, deleting) a chat.
pub(super) fn confirm_leave(model: &mut Model, chat_id: u64) {
    let private = model
        .chats
        .get(chat_id)
        .is_some_and(|e| e.kind() == pb::ChatKind::Private);
    let title = model.chats.title(chat_id, &model.users);
    let question = if private {
        format!("Delete the private chat with {title}? It is deleted for both of you.")
    } else {
        format!("Leave {title}?")
    };
    model.overlay = Some(Overlay::Confirm(Confirm {
        question,
        command: NetCommand::Leave(chat_id),
    }));
}
