//! What the network task reports: the connection and sign-in steps, answers to requests, the
//! outbox, and the SDK's events (chat events exactly once and in order, signals, connection
//! changes).

use chatproto::client::ClientEvent;
use chatproto::pb;
use chatproto::pb::chat_event::Body;

use super::{calls, chat, files, overlay};
use crate::action::NetEvent;
use crate::effect::{Effect, NetCommand};
use crate::model::calls::Calls;
use crate::model::chats::Row;
use crate::model::{ConnState, Focus, Level, Model, Overlay, Screen, TrustPrompt};
use crate::widgets::auth::{ACCOUNT, AuthForm, RESET_CODE};
use crate::widgets::picker::{Item, Picker, Purpose, Value};
use crate::widgets::{clock_time, shorten};

/// The bell rings at most this often.
const BELL_EVERY_MS: i64 = 1_000;
/// A typing indicator without `expires_in_ms` lasts this long.
const DEFAULT_TYPING_MS: i64 = 5_000;

pub(super) fn on_net(model: &mut Model, event: NetEvent, effects: &mut Vec<Effect>) {
    match event {
        NetEvent::ConnectFailed { error, retry_in_ms } => {
            model.screen = Screen::Connecting {
                detail: format!("Cannot connect: {error}"),
                retry_at_ms: retry_in_ms.map(|ms| model.clock.now_ms + ms as i64),
            };
        }
        NetEvent::TrustUnknown {
            address,
            fingerprint,
            file,
        } => {
            model.screen = Screen::Trust(TrustPrompt {
                address,
                fingerprint,
                known: None,
                file,
            });
        }
        NetEvent::TrustChanged {
            address,
            fingerprint,
            known,
            file,
        } => {
            model.screen = Screen::Trust(TrustPrompt {
                address,
                fingerprint,
                known: Some(known),
                file,
            });
        }
        NetEvent::NeedSignIn { reason } => match (&mut model.screen, reason) {
            // Already asking (after a revoked session): keep the form and its message.
            (Screen::Auth(form), None) => form.busy = false,
            (_, reason) => {
                let mut form = AuthForm::new(false, "");
                form.error = reason;
                model.screen = Screen::Auth(form);
            }
        },
        NetEvent::NeedTwoFactorCode { error } => {
            if let Screen::Auth(form) = &mut model.screen {
                form.ask_two_factor_code(error);
            }
        }
        NetEvent::ResetCodeSent { valid_for_seconds } => {
            if let Screen::Auth(form) = &mut model.screen {
                form.busy = false;
                form.notice = Some(format!(
                    "If the account has a verified address, a code is on its way: it works for {}. \
                     Enter it and a new password.",
                    crate::action::lifetime(valid_for_seconds)
                ));
                form.focus = form.field_index(RESET_CODE).unwrap_or(form.focus);
            }
        }
        NetEvent::PasswordReset => {
            if let Screen::Auth(form) = &mut model.screen {
                let account = form.value(ACCOUNT).trim().to_string();
                let username = if account.contains('@') { "" } else { &account };
                let mut signin = AuthForm::new(false, username);
                signin.notice = Some(
                    "Your password is changed and every session signed out. Sign in with it."
                        .into(),
                );
                *form = signin;
            }
        }
        NetEvent::SignInFailed { error } => {
            if let Screen::Auth(form) = &mut model.screen {
                form.busy = false;
                form.error = Some(error);
            }
        }
        NetEvent::SignedIn {
            me,
            max_text_chars,
            outbox,
        } => {
            if max_text_chars > 0 {
                model.max_text_chars = max_text_chars;
            }
            model.users.upsert([me.clone()]);
            model.calls = Calls::new(me.id);
            model.me = Some(me);
            model.screen = Screen::Main;
            model.focus = Focus::Chats;
            for request in outbox {
                model.pending.push(request);
            }
            effects.push(Effect::Net(NetCommand::LoadChats));
        }
        NetEvent::SignedOut => {
            let username = model.me.take().map(|u| u.username).unwrap_or_default();
            model.chats = Default::default();
            model.view = None;
            model.pending = Default::default();
            model.transfers = Default::default();
            model.calls = Default::default();
            model.overlay = None;
            model.screen = Screen::Auth(AuthForm::new(false, &username));
        }
        NetEvent::Client(event) => on_client(model, event, effects),
        NetEvent::CallRecords { chat_id, events } => {
            for event in events.into_iter().filter(|e| e.chat_id == chat_id) {
                if let Some(Body::CallEnded(c)) = &event.body {
                    calls::on_logged(model, &event, c);
                }
            }
        }
        NetEvent::CallStarted(call) => calls::on_started(model, call, effects),
        NetEvent::CallAccepted(call) => calls::on_accepted(model, call, effects),
        NetEvent::GroupCall(call) => {
            model.calls.tracker.group_answer(call);
        }
        NetEvent::CallFailed { call_id, error } => calls::on_failed(model, call_id, error),
        NetEvent::Chats(chats) => {
            model.chats.merge_all(chats);
            let peers = model.chats.missing_peers();
            for id in peers {
                effects.push(Effect::Net(NetCommand::LoadChat(id)));
            }
            let ids: Vec<u64> = model
                .chats
                .iter()
                .flat_map(|e| {
                    e.peer
                        .into_iter()
                        .chain(e.chat.last_message.as_ref().map(|m| m.sender_id))
                })
                .collect();
            chat::ask_users(model, ids, effects);
            select_first_if_none(model);
        }
        NetEvent::Chat(c) => {
            let ids: Vec<u64> = c.members.iter().map(|m| m.user_id).collect();
            if let Some(view) = model.view.as_mut().filter(|v| v.chat_id == c.id)
                && !c.members.is_empty()
            {
                view.members.clone_from(&c.members);
            }
            model.chats.upsert(c, model.me_id());
            chat::ask_users(model, ids, effects);
            select_first_if_none(model);
        }
        NetEvent::ChatOpened(c) => {
            let id = c.id;
            let title_known = c.kind != pb::ChatKind::Private as i32;
            on_net(model, NetEvent::Chat(c), effects);
            chat::open(model, id, effects);
            if title_known {
                let title = model.chats.title(id, &model.users);
                model.notify(Level::Ok, format!("{title} is open."));
            }
        }
        NetEvent::History {
            chat_id,
            token,
            range,
            page,
        } => {
            let asked = model
                .view
                .as_ref()
                .is_some_and(|v| v.chat_id == chat_id && v.loads.iter().any(|l| l.token == token));
            if asked {
                calls::load_records(model, chat_id, range, &page, effects);
            }
            chat::on_history(model, chat_id, token, range, page, effects);
        }
        NetEvent::HistoryFailed {
            chat_id,
            token,
            error,
        } => {
            if let Some(view) = model.view.as_mut().filter(|v| v.chat_id == chat_id) {
                view.loads.retain(|l| l.token != token);
            }
            model.notify(Level::Error, format!("Could not load messages: {error}"));
        }
        NetEvent::Users(users) => model.users.upsert(users),
        NetEvent::Receipts { chat_id, receipts } => {
            if let Some(view) = model.view.as_mut().filter(|v| v.chat_id == chat_id) {
                for r in receipts {
                    view.set_receipt(r.user_id, r.delivered_seq, r.read_seq);
                }
            }
        }
        NetEvent::UserResults { token, users } => {
            let items = users
                .iter()
                .filter(|u| u.id != model.me_id())
                .map(|u| {
                    Item::new(
                        format!("@{}", u.username),
                        u.display_name.clone(),
                        Value::User(u.id),
                    )
                })
                .collect();
            model.users.upsert(users);
            overlay::fill(model, token, items);
        }
        NetEvent::MessageResults { token, messages } => {
            let items = messages
                .iter()
                .map(|m| {
                    let chat = model.chats.title(m.chat_id, &model.users);
                    Item::new(
                        format!(
                            "{}: {}",
                            model.users.name(m.sender_id),
                            shorten(&m.text, 60)
                        ),
                        format!(
                            "{chat} · {}",
                            clock_time(m.sent_at_ms, model.clock.utc_offset_s)
                        ),
                        Value::Message {
                            chat_id: m.chat_id,
                            seq: m.seq,
                        },
                    )
                })
                .collect();
            chat::ask_users(model, messages.iter().map(|m| m.sender_id), effects);
            overlay::fill(model, token, items);
        }
        NetEvent::Sessions(sessions) => {
            let items = sessions
                .iter()
                .map(|s| {
                    let device = if s.device_name.is_empty() {
                        "unnamed device"
                    } else {
                        &s.device_name
                    };
                    let current = if s.current { " · this one" } else { "" };
                    Item::new(
                        format!("#{} {device}", s.id),
                        format!("{}{current}", s.address),
                        Value::Session(s.id),
                    )
                })
                .collect();
            model.overlay = Some(Overlay::Picker(Picker::local(
                "My sessions (enter revokes one)",
                Purpose::Sessions,
                items,
            )));
        }
        NetEvent::Me(me) => {
            model.users.upsert([me.clone()]);
            model.me = Some(me);
        }
        NetEvent::Profile(user) => {
            model.users.upsert([user.clone()]);
            overlay::show_profile(model, &user);
        }
        NetEvent::Queued(_) => {}
        NetEvent::QueueFailed {
            client_msg_id,
            text,
            error,
        } => {
            model.pending.remove(&client_msg_id);
            give_back(model, text);
            model.notify(Level::Error, format!("Message not queued: {error}"));
        }
        NetEvent::Sent { request, message } => {
            model.pending.remove(&request.client_msg_id);
            if let Some(view) = model.view.as_mut().filter(|v| v.chat_id == message.chat_id)
                && view.window.get(message.seq).is_none()
            {
                // Only when its event has not come yet: the event may already carry later
                // changes (a reaction), which this answer predates.
                view.window.upsert(&message);
            }
            model
                .chats
                .on_message(&message, model.me_id(), false, message.sent_at_ms);
            chat::mark_read(model, effects);
        }
        NetEvent::SendRefused { request, error } => {
            model.pending.remove(&request.client_msg_id);
            give_back(model, request.text);
            model.notify(Level::Error, format!("Message not sent: {error}"));
        }
        NetEvent::TransferProgress { token, done, total } => {
            files::on_progress(model, token, done, total)
        }
        NetEvent::Uploaded { token, file } => files::on_uploaded(model, token, file, effects),
        NetEvent::Downloaded { token, path } => files::on_downloaded(model, token, &path),
        NetEvent::TransferFailed { token, error } => files::on_failed(model, token, &error),
        NetEvent::Done(text) => model.notify(Level::Ok, text),
        NetEvent::TwoFactorSecret { secret, uri } => super::two_factor::secret(model, &secret, uri),
        NetEvent::RecoveryCodes(codes) => super::two_factor::recovery_codes(model, codes),
        NetEvent::Failed(text) => model.notify(Level::Error, text),
    }
}

/// Highlights the first chat of the list when none is.
fn select_first_if_none(model: &mut Model) {
    if model.chats.selected.is_none() {
        model.chats.selected = model
            .chats
            .rows(&model.users)
            .into_iter()
            .find_map(|r| match r {
                Row::Chat(id) => Some(id),
                Row::Archived(_) => None,
            });
    }
}

/// Puts the text of a message that could not be sent back into an empty composer.
fn give_back(model: &mut Model, text: String) {
    if model.composer.input.is_empty() && !text.is_empty() {
        model.composer.input.set(text);
    }
}

fn on_client(model: &mut Model, event: ClientEvent, effects: &mut Vec<Effect>) {
    let me = model.me_id();
    match event {
        ClientEvent::Chat(ev) => on_chat_event(model, ev, effects),
        ClientEvent::Receipt(r) => {
            if r.user_id == me {
                model.chats.mark_read(r.chat_id, r.read_seq);
            }
            if let Some(view) = model.view.as_mut().filter(|v| v.chat_id == r.chat_id) {
                view.set_receipt(r.user_id, r.delivered_seq, r.read_seq);
            }
        }
        ClientEvent::Presence(p) => model.users.set_presence(&p),
        ClientEvent::Typing(t) => {
            if t.user_id != me {
                let lasts = if t.expires_in_ms == 0 {
                    DEFAULT_TYPING_MS
                } else {
                    i64::from(t.expires_in_ms)
                };
                model
                    .typing
                    .set(t.chat_id, t.user_id, model.clock.now_ms + lasts);
                chat::ask_users(model, [t.user_id], effects);
            }
        }
        ClientEvent::ChatState(s) => {
            if let Some(state) = s.state {
                model.chats.set_state(s.chat_id, state);
            }
        }
        ClientEvent::MessageHidden(h) => {
            if let Some(view) = model.view.as_mut().filter(|v| v.chat_id == h.chat_id) {
                view.window.hide(h.seq);
            }
        }
        ClientEvent::Call(call) => calls::on_event(model, call, effects),
        // Signaling is for a media stack; chat-tui has none (it only rings and answers).
        ClientEvent::CallSignal(_) => {}
        // chat-tui shows private calls only; `chatproto::calls::CallTracker` follows group
        // calls for a client that shows them.
        ClientEvent::GroupCall(call) => {
            model.calls.tracker.on_group_event(call);
        }
        // chat-tui carries no media: group call signaling is for devices that do.
        ClientEvent::GroupCallSignal(_) => {}
        // chat-tui shows no notification center yet.
        ClientEvent::Notification(_) | ClientEvent::NotificationsUpdated(_) => {}
        ClientEvent::GoAway(g) => {
            model.notify(
                Level::Info,
                format!("The server is going away ({}); reconnecting.", g.reason),
            );
        }
        ClientEvent::SessionRevoked(r) => {
            model.conn = ConnState::Offline("session revoked".into());
            on_net(model, NetEvent::SignedOut, effects);
            if let Screen::Auth(form) = &mut model.screen {
                form.error = Some(format!(
                    "Your session was revoked ({}). Sign in again.",
                    r.reason
                ));
            }
        }
        ClientEvent::AuthFailed { reason } => {
            model.conn = ConnState::Offline("signed out".into());
            on_net(model, NetEvent::SignedOut, effects);
            if let Screen::Auth(form) = &mut model.screen {
                form.error = Some(format!(
                    "The saved session no longer works ({reason}). Sign in again."
                ));
            }
        }
        ClientEvent::Skipped {
            chat_id,
            from_seq,
            to_seq,
        } => {
            model.notify(
                Level::Error,
                format!("Events {from_seq}–{to_seq} of a chat could not be loaded; reloading it."),
            );
            if model.open_chat() == Some(chat_id) {
                model.view = None;
                chat::open(model, chat_id, effects);
            }
        }
        ClientEvent::CaughtUp => {
            // Unsequenced state (unread counts, pins, receipts) may have changed meanwhile.
            effects.push(Effect::Net(NetCommand::LoadChats));
            if let Some(chat_id) = model.open_chat() {
                // A group call that changed while the connection was down is told again.
                chat::load_details(chat_id, effects);
            }
        }
        ClientEvent::Connected { address, .. } => model.conn = ConnState::Connected { address },
        ClientEvent::Disconnected { reason } => {
            model.conn = ConnState::Reconnecting {
                at_ms: model.clock.now_ms,
                reason,
            };
            calls::on_connection_lost(model);
        }
        ClientEvent::Reconnecting { after } => {
            let reason = match &model.conn {
                ConnState::Reconnecting { reason, .. } => reason.clone(),
                _ => String::new(),
            };
            model.conn = ConnState::Reconnecting {
                at_ms: model.clock.now_ms + after.as_millis() as i64,
                reason,
            };
        }
        ClientEvent::TokensRefreshed(_) => {}
    }
}

/// A chat event: the chat list, the open chat, notifications.
fn on_chat_event(model: &mut Model, ev: pb::ChatEvent, effects: &mut Vec<Effect>) {
    let me = model.me_id();
    let chat_id = ev.chat_id;
    if model.chats.get(chat_id).is_none() {
        if let Some(Body::ChatCreated(c)) = &ev.body {
            model.chats.upsert(c.clone(), me);
        }
        // A chat the list does not know yet: ask for it (with my state of it).
        effects.push(Effect::Net(NetCommand::LoadChat(chat_id)));
    }
    let in_view = model
        .view
        .as_ref()
        .is_some_and(|v| v.chat_id == chat_id && v.follows_latest());
    if let Some(view) = model.view.as_mut().filter(|v| v.chat_id == chat_id) {
        view.window.apply(&ev);
    }
    match &ev.body {
        Some(Body::MessageCreated(m)) => {
            model.typing.clear(chat_id, m.sender_id);
            chat::ask_users(model, [m.sender_id], effects);
            if m.sender_id == me {
                model.pending.on_own_message(m);
                model.chats.on_message(m, me, false, ev.at_ms);
            } else {
                let unread = !in_view;
                model.chats.on_message(m, me, unread, ev.at_ms);
                if unread {
                    notify_new_message(model, m, effects);
                }
            }
            if in_view {
                chat::mark_read(model, effects);
            }
        }
        Some(Body::MessageEdited(e)) => {
            if let Some(entry) = model.chats.get_mut(chat_id)
                && let Some(last) = entry
                    .chat
                    .last_message
                    .as_mut()
                    .filter(|l| l.seq == e.message_seq)
                && !e.text.is_empty()
            {
                last.text.clone_from(&e.text);
                last.edited = true;
            }
        }
        Some(Body::MessageDeleted(d)) => {
            if let Some(entry) = model.chats.get_mut(chat_id)
                && let Some(last) = entry
                    .chat
                    .last_message
                    .as_mut()
                    .filter(|l| l.seq == d.message_seq)
            {
                last.deleted = true;
                last.text.clear();
            }
        }
        Some(Body::MembersAdded(added)) => {
            // The chat (member count, member list) is read again rather than counted here:
            // the answer to my own invitation may carry the new count already.
            effects.push(Effect::Net(NetCommand::LoadChat(chat_id)));
            chat::ask_users(model, added.members.iter().map(|m| m.user_id), effects);
        }
        Some(Body::MemberRemoved(r)) => {
            if r.user_id == me {
                let title = model.chats.title(chat_id, &model.users);
                model.chats.remove(chat_id);
                close_if_open(model, chat_id);
                let text = if r.left {
                    format!("You left {title}.")
                } else {
                    format!("You were removed from {title}.")
                };
                model.notify(Level::Info, text);
            } else {
                effects.push(Effect::Net(NetCommand::LoadChat(chat_id)));
                if let Some(view) = model.view.as_mut().filter(|v| v.chat_id == chat_id) {
                    view.receipts.remove(&r.user_id);
                }
            }
        }
        Some(Body::MemberRoleChanged(c)) => {
            if let Some(view) = model.view.as_mut().filter(|v| v.chat_id == chat_id)
                && let Some(member) = view.members.iter_mut().find(|m| m.user_id == c.user_id)
            {
                member.role = c.role;
            }
            if c.user_id == me
                && let Some(entry) = model.chats.get_mut(chat_id)
            {
                let mut state = entry.state();
                state.role = c.role;
                model.chats.set_state(chat_id, state);
            }
        }
        Some(Body::ChatUpdated(u)) => {
            if let Some(entry) = model.chats.get_mut(chat_id) {
                entry.chat.title.clone_from(&u.title);
                entry.chat.description.clone_from(&u.description);
                entry.chat.avatar_file_id.clone_from(&u.avatar_file_id);
            }
        }
        Some(Body::ChatDeleted(_)) => {
            let title = model.chats.title(chat_id, &model.users);
            model.chats.remove(chat_id);
            close_if_open(model, chat_id);
            model.notify(Level::Info, format!("{title} was deleted."));
        }
        // Calls are not shown yet: the history entry only advances the chat.
        Some(Body::CallEnded(c)) => calls::on_logged(model, &ev, c),
        Some(Body::ChatCreated(_) | Body::ReactionChanged(_)) | None => {}
    }
}

fn close_if_open(model: &mut Model, chat_id: u64) {
    if model.open_chat() == Some(chat_id) {
        model.view = None;
        model.focus = Focus::Chats;
        model.composer.mode = crate::widgets::composer::Mode::New;
    }
}

/// A new message from someone else that is not on screen: bell and desktop notification,
/// unless the chat is muted.
fn notify_new_message(model: &mut Model, m: &pb::Message, effects: &mut Vec<Effect>) {
    let muted = model
        .chats
        .get(m.chat_id)
        .is_some_and(|e| e.muted(model.clock.now_ms));
    if muted {
        return;
    }
    let settings = &model.config.notifications;
    if !(settings.bell || settings.desktop)
        || model.clock.now_ms - model.last_bell_ms < BELL_EVERY_MS
    {
        return;
    }
    model.last_bell_ms = model.clock.now_ms;
    if settings.bell {
        effects.push(Effect::Bell);
    }
    if settings.desktop {
        let title = model.chats.title(m.chat_id, &model.users);
        let body = format!(
            "{}: {}",
            model.users.name(m.sender_id),
            shorten(&crate::widgets::messages::preview(m), 120)
        );
        effects.push(Effect::Notify { title, body });
    }
}
