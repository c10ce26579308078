//! The notification center's requests (protocol.md section 15): listing, marking read,
//! clearing, and the preferences. Notifications are produced by [`crate::notify`]; every change
//! of read state or clear goes to all of the user's connections as `notifications_updated`.

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};
use crate::handlers::cursor::IdList;
use crate::handlers::page::Page;
use crate::notify::MINUTES_PER_DAY;
use crate::store::{NotificationQuery, NotificationSet};
use crate::validate;

/// Largest `|utc_offset_minutes|` of do-not-disturb hours: UTC-14:00..=UTC+14:00.
pub const MAX_UTC_OFFSET_MINUTES: i32 = 14 * 60;

/// Largest email digest interval in minutes (a week).
pub const MAX_DIGEST_MINUTES: u32 = 7 * 24 * 60;

/// Smallest non-zero email digest interval in minutes.
pub const MIN_DIGEST_MINUTES: u32 = 15;

/// The caller's notifications, newest first, paged by id.
pub async fn list_notifications(ctx: &ConnCtx, req: pb::ListNotifications) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let limit = validate::page_limit("list_notifications.limit", req.limit)?;
    let before_id = IdList::Notifications.decode("list_notifications.cursor", &req.cursor)?;
    let store = &ctx.state.store;
    let found = store
        .notifications(NotificationQuery {
            user_id: me,
            unread_only: req.unread_only,
            before_id: (before_id != 0).then_some(before_id),
            limit: limit + 1,
        })
        .await?;
    let page = Page::fill(limit, found)?;
    let next_cursor = match page.items().last() {
        Some(last) if page.more() => IdList::Notifications.encode(last.id),
        _ => String::new(),
    };
    Ok(Answer::Notifications(pb::NotificationList {
        notifications: page.into_items(),
        next_cursor,
        unread_count: store.unread_notifications(me).await?,
    }))
}

/// Marks some of the caller's notifications read.
pub async fn mark_notifications_read(
    ctx: &ConnCtx,
    req: pb::MarkNotificationsRead,
) -> ApiResult<Answer> {
    let ids = required_ids("mark_notifications_read.ids", &req.ids)?;
    change(ctx, NotificationSet::Ids(ids), false).await
}

/// Marks every notification of the caller read, up to the newest.
pub async fn mark_all_notifications_read(
    ctx: &ConnCtx,
    _req: pb::MarkAllNotificationsRead,
) -> ApiResult<Answer> {
    let newest = newest(ctx).await?;
    change(ctx, NotificationSet::UpTo(newest), false).await
}

/// Deletes some or all of the caller's notifications.
pub async fn clear_notifications(ctx: &ConnCtx, req: pb::ClearNotifications) -> ApiResult<Answer> {
    let which = if req.all {
        if !req.ids.is_empty() {
            return Err(ApiError::invalid(
                "clear_notifications.ids",
                "must be empty when all is set",
            ));
        }
        NotificationSet::UpTo(newest(ctx).await?)
    } else {
        NotificationSet::Ids(required_ids("clear_notifications.ids", &req.ids)?)
    };
    change(ctx, which, true).await
}

/// The caller's preferences (the defaults until they set any).
pub async fn get_notification_prefs(
    ctx: &ConnCtx,
    _req: pb::GetNotificationPrefs,
) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let prefs = ctx.state.store.notification_prefs(me).await?;
    Ok(Answer::NotificationPrefs(prefs.unwrap_or_default()))
}

/// Replaces the caller's preferences.
pub async fn set_notification_prefs(
    ctx: &ConnCtx,
    req: pb::SetNotificationPrefs,
) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let prefs = valid_prefs(req.prefs.unwrap_or_default())?;
    ctx.state.store.set_notification_prefs(me, prefs).await?;
    Ok(Answer::NotificationPrefs(prefs))
}

/// 1..=`max_page_size` ids, none 0, without duplicates.
pub(super) fn required_ids(field: &'static str, ids: &[u64]) -> ApiResult<Vec<u64>> {
    if ids.is_empty() {
        return Err(ApiError::invalid(field, "at least one id is required"));
    }
    Ok(validate::id_list(field, ids)?)
}

/// The caller's newest notification id (0 when they have none).
async fn newest(ctx: &ConnCtx) -> ApiResult<u64> {
    let me = ctx.principal()?.user_id;
    let newest = ctx
        .state
        .store
        .notifications(NotificationQuery {
            user_id: me,
            unread_only: false,
            before_id: None,
            limit: 1,
        })
        .await?;
    Ok(newest.first().map_or(0, |n| n.id))
}

/// Applies a mark or clear, and tells every connection of the caller (this one too: the answer
/// and the event may arrive in either order, and both carry the same change).
async fn change(ctx: &ConnCtx, which: NotificationSet, cleared: bool) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let store = &ctx.state.store;
    if cleared {
        store.delete_notifications(me, which.clone()).await?;
    } else {
        store.mark_notifications_read(me, which.clone()).await?;
    }
    let (ids, up_to_id) = match which {
        NotificationSet::Ids(ids) => (ids, 0),
        NotificationSet::UpTo(id) => (Vec::new(), id),
    };
    let updated = pb::NotificationsUpdated {
        ids,
        up_to_id,
        cleared,
        unread_count: store.unread_notifications(me).await?,
    };
    let event = pb::Event {
        kind: Some(pb::event::Kind::NotificationsUpdated(updated.clone())),
    };
    ctx.state.delivery.notify(&[me], &event, None);
    Ok(Answer::NotificationsUpdated(updated))
}

/// Checks preferences against the bounds of protocol.md 15.2.
fn valid_prefs(prefs: pb::NotificationPrefs) -> ApiResult<pb::NotificationPrefs> {
    if let Some(dnd) = &prefs.do_not_disturb {
        for (field, minute) in [
            (
                "set_notification_prefs.prefs.do_not_disturb.start_minute",
                dnd.start_minute,
            ),
            (
                "set_notification_prefs.prefs.do_not_disturb.end_minute",
                dnd.end_minute,
            ),
        ] {
            if minute >= MINUTES_PER_DAY {
                return Err(ApiError::invalid(
                    field,
                    format!("minutes of the day are below {MINUTES_PER_DAY}"),
                ));
            }
        }
        // `unsigned_abs`: the offset is a sint32, and `i32::MIN` has no `abs`.
        if dnd.utc_offset_minutes.unsigned_abs() > MAX_UTC_OFFSET_MINUTES.unsigned_abs() {
            return Err(ApiError::invalid(
                "set_notification_prefs.prefs.do_not_disturb.utc_offset_minutes",
                format!("must be within ±{MAX_UTC_OFFSET_MINUTES}"),
            ));
        }
    }
    let digest = prefs.email_digest_minutes;
    if digest != 0 && !(MIN_DIGEST_MINUTES..=MAX_DIGEST_MINUTES).contains(&digest) {
        return Err(ApiError::invalid(
            "set_notification_prefs.prefs.email_digest_minutes",
            format!("0, or {MIN_DIGEST_MINUTES} to {MAX_DIGEST_MINUTES}"),
        ));
    }
    Ok(prefs)
}
