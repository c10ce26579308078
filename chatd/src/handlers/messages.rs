//! Writing messages: send (with replies, forwards and mentions), edit, delete, react.
//! Reading them is in [`history`](super::history), receipts in [`receipts`](super::receipts).
//!
//! SendMessage is the hot path: one member-cache lookup, one append (the store batches appends
//! into group commits), one publish. Replies, forwards, mentions and private-chat block checks
//! add a lookup each, only when present.

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::delivery::redact::{MAX_REACTION_EMOJI, Viewer, redact_message};
use crate::error::{ApiError, ApiResult};
use crate::handlers::access::{self, Judge, Reader, message_not_found};
use crate::handlers::mentions::resolve_mentions;
use crate::state::{AppState, now_ms};
use crate::store::{Actor, ConflictKind, NewMessage, ReactionChange, StoreError};
use crate::validate;

/// What a SendMessage carries, once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Content {
    /// A text message.
    Text,
    /// A media message: its kind; the file and the optional caption are in the request.
    Media(pb::MessageKind),
    /// A forward of another message.
    Forward(pb::MessageRef),
}

/// Checks the shape of a SendMessage: exactly one of text, file or forward, with the fields each
/// needs and nothing else. Pure, so the rules are unit-tested.
fn content_of(req: &pb::SendMessage) -> ApiResult<Content> {
    let kind = pb::MessageKind::try_from(req.kind)
        .map_err(|_| ApiError::invalid("send_message.kind", "unknown message kind"))?;
    if let Some(forward) = &req.forward {
        if kind != pb::MessageKind::Unspecified || !req.text.is_empty() || !req.file_id.is_empty() {
            return Err(ApiError::invalid(
                "send_message.forward",
                "a forward copies kind, text and file from the original: leave them unset",
            ));
        }
        if forward.chat_id == 0 || forward.seq == 0 {
            return Err(ApiError::invalid(
                "send_message.forward",
                "chat_id and seq are required",
            ));
        }
        return Ok(Content::Forward(*forward));
    }
    match kind {
        pb::MessageKind::Unspecified => Err(ApiError::invalid(
            "send_message.kind",
            "a message kind is required",
        )),
        pb::MessageKind::Text => {
            if !req.file_id.is_empty() {
                return Err(ApiError::invalid(
                    "send_message.file_id",
                    "text messages carry no file",
                ));
            }
            validate::message_text("send_message.text", &req.text, true)?;
            Ok(Content::Text)
        }
        media => {
            if req.file_id.is_empty() {
                return Err(ApiError::invalid(
                    "send_message.file_id",
                    "required for media messages",
                ));
            }
            validate::file_id("send_message.file_id", &req.file_id)?;
            validate::message_text("send_message.text", &req.text, false)?;
            Ok(Content::Media(media))
        }
    }
}

/// What a new message carries: kind, text and file.
#[derive(Debug, Clone, PartialEq)]
struct Body {
    kind: pb::MessageKind,
    text: String,
    file_id: String,
    attachment: Option<Box<pb::FileInfo>>,
}

/// The copy a forward makes of `source`: its kind, text, file and origin. A message that was
/// itself forwarded keeps its original origin.
fn forward_copy(source: pb::Message) -> (Body, pb::ForwardedFrom) {
    let kind = source.kind();
    let origin = source.forwarded_from.unwrap_or(pb::ForwardedFrom {
        chat_id: source.chat_id,
        seq: source.seq,
        sender_id: source.sender_id,
        sent_at_ms: source.sent_at_ms,
    });
    let body = Body {
        kind,
        text: source.text,
        file_id: source.file_id,
        attachment: source.attachment,
    };
    (body, origin)
}

/// The file of a media message: one the sender may read (NOT_FOUND "file not found" otherwise,
/// also for an id nobody uploaded), an original rather than a thumbnail, whose content fits the
/// message kind.
async fn media_file(
    state: &AppState,
    me: u64,
    kind: pb::MessageKind,
    file_id: &str,
) -> ApiResult<pb::FileInfo> {
    let file = crate::handlers::files::access::readable(state, me, file_id).await?;
    if file.parent_id.is_some() {
        return Err(ApiError::invalid(
            "send_message.file_id",
            "a thumbnail cannot be sent; send its original",
        ));
    }
    let class = crate::files::detect::class_of(&file.info.mime);
    crate::files::detect::check_kind(kind, class, &file.info.mime)
        .map_err(|why| ApiError::invalid("send_message.kind", why))?;
    Ok(file.info)
}

/// The message a forward copies: it must be readable by the caller (a member, or a former member
/// within their range), not deleted and not from a user the caller blocked; NOT_FOUND "message
/// not found" otherwise.
async fn forward_source(state: &AppState, me: u64, r: &pb::MessageRef) -> ApiResult<pb::Message> {
    let reader = match access::reader(state, r.chat_id, me).await {
        Ok(reader) => reader,
        Err(e) if e.code == pb::ErrorCode::NotFound => return Err(message_not_found()),
        Err(e) => return Err(e),
    };
    reader.check_seq(r.seq)?;
    let source = state
        .store
        .message(r.chat_id, r.seq)
        .await?
        .filter(|m| !m.deleted)
        .ok_or_else(message_not_found)?;
    if r.seq > reader.bound_after_read(state, r.chat_id, me).await? {
        return Err(message_not_found());
    }
    // The caller sees a placeholder there: nothing to copy (spec 9.2).
    if Viewer::load(&*state.store, me)
        .await?
        .blocks(source.sender_id)
    {
        return Err(message_not_found());
    }
    Ok(source)
}

/// Sends a message; a retry with the same client_msg_id returns the original and publishes
/// nothing, whatever else it holds and whatever changed since (spec 7.5).
pub async fn send_message(ctx: &ConnCtx, req: pb::SendMessage) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    validate::client_msg_id("send_message.client_msg_id", &req.client_msg_id)?;
    let client_msg_id = req.client_msg_id.clone();
    let mut message = match send_new(ctx, me, req).await {
        Ok(message) => message,
        // A refusal may answer a retry whose first answer was lost: the sender left the chat
        // since, was blocked, sent too much meanwhile. Looked up only then, so the sends that
        // pass pay nothing for it; the store answers passing retries itself.
        Err(refused)
            if refused.code != pb::ErrorCode::Unavailable
                && refused.code != pb::ErrorCode::Internal =>
        {
            match ctx.state.store.sent_message(me, &client_msg_id).await? {
                Some(original) => original,
                None => return Err(refused),
            }
        }
        Err(e) => return Err(e),
    };
    // A retry answers the original as it is now, reactions shown as any read shows them.
    redact_message(&mut message, &Viewer::own(me));
    Ok(Answer::Message(message))
}

/// Sends a message not sent before (as far as the checks before the store can tell).
async fn send_new(ctx: &ConnCtx, me: u64, req: pb::SendMessage) -> ApiResult<pb::Message> {
    let state = &ctx.state;
    let content = content_of(&req)?;
    state.limits.check_send(me).await.map_err(|limited| {
        state.metrics.rate_limited(limited.scope);
        ApiError::from(limited)
    })?;
    let m = access::member(state, req.chat_id, me).await?;
    access::require_can_post(state, &m).await?;
    if req.reply_to_seq != 0
        && state
            .store
            .message(req.chat_id, req.reply_to_seq)
            .await?
            .is_none()
    {
        return Err(message_not_found());
    }
    let (body, forwarded_from) = match content {
        Content::Text => (
            Body {
                kind: pb::MessageKind::Text,
                text: req.text,
                file_id: String::new(),
                attachment: None,
            },
            None,
        ),
        Content::Media(kind) => {
            let attachment = media_file(state, me, kind, &req.file_id).await?;
            let body = Body {
                kind,
                text: req.text,
                file_id: req.file_id,
                attachment: Some(Box::new(attachment)),
            };
            (body, None)
        }
        Content::Forward(source) => {
            let (body, origin) = forward_copy(forward_source(state, me, &source).await?);
            (body, Some(origin))
        }
    };
    let mention_ids = resolve_mentions(state.store.as_ref(), &body.text).await?;
    let new = NewMessage {
        chat_id: req.chat_id,
        sender_id: me,
        client_msg_id: req.client_msg_id,
        kind: body.kind,
        text: body.text,
        file_id: body.file_id,
        attachment: body.attachment,
        reply_to_seq: req.reply_to_seq,
        forwarded_from,
        mention_ids,
        now_ms: now_ms(),
        members_seq: None,
    };
    let (m, outcome) =
        access::under_membership(state, req.chat_id, m, Judge::Post, |members_seq| {
            state.store.append_message(NewMessage {
                members_seq: Some(members_seq),
                ..new.clone()
            })
        })
        .await?;
    if let Some(event) = outcome.event {
        state.metrics.messages_persisted(1);
        state.delivery.append(event, m.audience());
        let private = m.kind() == pb::ChatKind::Private;
        state.notifier.message_sent(private, &outcome.message).await;
    }
    Ok(outcome.message)
}

/// Replaces the text of one's own message (not deleted, not forwarded).
pub async fn edit_message(ctx: &ConnCtx, req: pb::EditMessage) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    let m = access::member(state, req.chat_id, me).await?;
    let message = state
        .store
        .message(req.chat_id, req.seq)
        .await?
        .ok_or_else(message_not_found)?;
    if message.sender_id != me {
        return Err(ApiError::denied("only the sender may edit a message"));
    }
    if message.deleted {
        return Err(ApiError::conflict("the message was deleted"));
    }
    if message.forwarded_from.is_some() {
        return Err(ApiError::conflict("forwarded messages cannot be edited"));
    }
    validate::message_text(
        "edit_message.text",
        &req.text,
        message.kind() == pb::MessageKind::Text,
    )?;
    access::require_can_post(state, &m).await?;
    let mut answer = if message.text == req.text {
        message
    } else {
        let now = now_ms();
        let (m, (edited, event)) =
            access::under_membership(state, req.chat_id, m, Judge::Post, |members_seq| {
                let (store, text) = (&state.store, &req.text);
                let actor = Actor::judged(me, members_seq);
                store.edit_message(req.chat_id, req.seq, actor, text, now)
            })
            .await?;
        state.delivery.append(event, m.audience());
        edited
    };
    redact_message(&mut answer, &Viewer::own(me));
    Ok(Answer::Message(answer))
}

/// Deletes a message for everyone (purging it, leaving a tombstone) or hides it for the caller.
pub async fn delete_message(ctx: &ConnCtx, req: pb::DeleteMessage) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    let reader = access::reader(state, req.chat_id, me).await?;
    reader.check_seq(req.seq)?;
    let message = state
        .store
        .message(req.chat_id, req.seq)
        .await?
        .ok_or_else(message_not_found)?;
    if req.for_everyone {
        let m = match reader {
            Reader::Member(m) => m,
            // Their role is in the member list, which the cache shows once the join is in it.
            Reader::Joining => access::member(state, req.chat_id, me).await?,
            Reader::Former { .. } => {
                return Err(ApiError::denied(
                    "former members cannot delete messages for everyone",
                ));
            }
        };
        let judge = Judge::DeleteForEveryone {
            sender: message.sender_id,
        };
        judge.check(state, &m).await?;
        if message.deleted {
            return Ok(Answer::Ok(pb::Ok {}));
        }
        let now = now_ms();
        let (m, event) = access::under_membership(state, req.chat_id, m, judge, |members_seq| {
            let actor = Actor::judged(me, members_seq);
            async move {
                match state
                    .store
                    .delete_message(req.chat_id, req.seq, actor, now)
                    .await
                {
                    Ok(event) => Ok(Some(event)),
                    // The same request at once (two devices, or a retry): it is deleted, as
                    // asked, and the other request told everyone.
                    Err(StoreError::Conflict(ConflictKind::MessageDeleted)) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        })
        .await?;
        if let Some(event) = event {
            state.delivery.append(event, m.audience());
        }
    } else {
        state.store.hide_message(req.chat_id, req.seq, me).await?;
        let hidden = pb::Event {
            kind: Some(pb::event::Kind::MessageHidden(pb::MessageHidden {
                chat_id: req.chat_id,
                seq: req.seq,
            })),
        };
        state.delivery.notify(&[me], &hidden, None);
    }
    Ok(Answer::Ok(pb::Ok {}))
}

/// Adds or removes the caller's reaction; a change that changes nothing returns the message as
/// it is and publishes nothing.
pub async fn react(ctx: &ConnCtx, req: pb::React) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    validate::emoji("react.emoji", &req.emoji)?;
    let m = access::member(state, req.chat_id, me).await?;
    access::require_not_blocked_private(state, &m).await?;
    let change = if req.remove {
        ReactionChange::Remove
    } else {
        ReactionChange::Add {
            max_emoji: MAX_REACTION_EMOJI,
        }
    };
    let now = now_ms();
    let (m, (mut result, event)) =
        access::under_membership(state, req.chat_id, m, Judge::NotBlocked, |members_seq| {
            let (actor, emoji) = (Actor::judged(me, members_seq), &req.emoji);
            state
                .store
                .set_reaction(req.chat_id, req.seq, actor, emoji, change, now)
        })
        .await?;
    if let Some(event) = event {
        state.delivery.append(event, m.audience());
    }
    redact_message(&mut result, &Viewer::load(&*state.store, me).await?);
    Ok(Answer::Message(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(
        kind: pb::MessageKind,
        text: &str,
        file_id: &str,
        forward: Option<(u64, u64)>,
    ) -> pb::SendMessage {
        pb::SendMessage {
            chat_id: 1,
            client_msg_id: "c1".into(),
            kind: kind as i32,
            text: text.into(),
            file_id: file_id.into(),
            reply_to_seq: 0,
            forward: forward.map(|(chat_id, seq)| pb::MessageRef { chat_id, seq }),
        }
    }

    fn field_of(req: &pb::SendMessage) -> String {
        content_of(req).unwrap_err().field
    }

    #[test]
    fn text_messages_need_text_and_no_file() {
        assert_eq!(
            content_of(&send(pb::MessageKind::Text, "hi", "", None)).unwrap(),
            Content::Text
        );
        assert_eq!(
            field_of(&send(pb::MessageKind::Text, "", "", None)),
            "send_message.text"
        );
        assert_eq!(
            field_of(&send(pb::MessageKind::Text, "hi", "f_1", None)),
            "send_message.file_id"
        );
        let long = "é".repeat(4097);
        assert_eq!(
            field_of(&send(pb::MessageKind::Text, &long, "", None)),
            "send_message.text"
        );
    }

    #[test]
    fn media_messages_need_a_file_and_take_an_optional_caption() {
        let file = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            content_of(&send(pb::MessageKind::Image, "", file, None)).unwrap(),
            Content::Media(pb::MessageKind::Image)
        );
        assert!(content_of(&send(pb::MessageKind::Voice, "caption", file, None)).is_ok());
        assert_eq!(
            field_of(&send(pb::MessageKind::Video, "x", "", None)),
            "send_message.file_id"
        );
    }

    #[test]
    fn kind_is_required_and_must_be_known() {
        assert_eq!(
            field_of(&send(pb::MessageKind::Unspecified, "hi", "", None)),
            "send_message.kind"
        );
        let mut unknown = send(pb::MessageKind::Text, "hi", "", None);
        unknown.kind = 99;
        assert_eq!(field_of(&unknown), "send_message.kind");
    }

    #[test]
    fn forwards_carry_nothing_else() {
        assert_eq!(
            content_of(&send(pb::MessageKind::Unspecified, "", "", Some((4, 5)))).unwrap(),
            Content::Forward(pb::MessageRef { chat_id: 4, seq: 5 })
        );
        assert_eq!(
            field_of(&send(pb::MessageKind::Text, "", "", Some((4, 5)))),
            "send_message.forward"
        );
        assert_eq!(
            field_of(&send(pb::MessageKind::Unspecified, "x", "", Some((4, 5)))),
            "send_message.forward"
        );
        assert_eq!(
            field_of(&send(pb::MessageKind::Unspecified, "", "", Some((0, 5)))),
            "send_message.forward"
        );
    }

    #[test]
    fn forwarding_keeps_the_original_origin() {
        let original = pb::Message {
            chat_id: 3,
            seq: 9,
            sender_id: 42,
            kind: pb::MessageKind::Text as i32,
            text: "hello".into(),
            sent_at_ms: 1000,
            ..Default::default()
        };
        let (body, origin) = forward_copy(original.clone());
        assert_eq!(
            (body.kind, body.text.as_str()),
            (pb::MessageKind::Text, "hello")
        );
        assert_eq!(
            origin,
            pb::ForwardedFrom {
                chat_id: 3,
                seq: 9,
                sender_id: 42,
                sent_at_ms: 1000
            }
        );
        // A forward of that forward (sent by someone else elsewhere) still points at the original.
        let forwarded = pb::Message {
            chat_id: 8,
            seq: 2,
            sender_id: 7,
            forwarded_from: Some(origin),
            ..original
        };
        assert_eq!(forward_copy(forwarded).1, origin);
    }
}
