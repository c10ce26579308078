//! The notification center: [`NotificationStore`]. Notifications take ids from the
//! `notifications` counter (increasing across users, so also per user); the unique `_id` insert
//! is the arbiter where the counter is not atomic (see `counters`). A document keeps the wire's
//! `Notification` as binary, with the user, id and read flag as fields (the binary's own id and
//! read flag are not used); preferences are the wire's `NotificationPrefs`, one document per
//! user.

use async_trait::async_trait;
use chatproto::pb;
use futures_util::TryStreamExt;
use mongodb::bson::{Binary, Document, doc};
use prost::Message as _;
use serde::{Deserialize, Serialize};

use super::counters::Sequence;
use super::docs::{encode, i, u};
use super::error::corrupt;
use super::{MongoStore, error};
use crate::store::{
    NotificationQuery, NotificationSet, NotificationStore, StoreError, StoreResult, UserStore,
};

/// `notifications`: one notification of one user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct NotificationDoc {
    #[serde(rename = "_id")]
    id: i64,
    user_id: i64,
    read: bool,
    body: Binary,
}

impl NotificationDoc {
    fn record(self) -> StoreResult<pb::Notification> {
        let mut n = pb::Notification::decode(self.body.bytes.as_slice())
            .map_err(|e| corrupt("notifications", e))?;
        n.id = u(self.id);
        n.read = self.read;
        Ok(n)
    }
}

/// `notification_prefs`: one user's preferences, `_id` the user id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PrefsDoc {
    #[serde(rename = "_id")]
    user_id: i64,
    prefs: Binary,
}

fn set_filter(user_id: u64, which: &NotificationSet) -> Document {
    match which {
        NotificationSet::Ids(ids) => {
            let ids: Vec<i64> = ids.iter().copied().map(i).collect();
            doc! { "user_id": i(user_id), "_id": { "$in": ids } }
        }
        NotificationSet::UpTo(id) => doc! { "user_id": i(user_id), "_id": { "$lte": i(*id) } },
    }
}

#[async_trait]
impl NotificationStore for MongoStore {
    async fn append_notification(
        &self,
        user_id: u64,
        mut n: pb::Notification,
        keep: u32,
    ) -> StoreResult<pb::Notification> {
        self.deadline(async {
            n.id = 0;
            n.read = false;
            let mut stored = NotificationDoc {
                id: 0,
                user_id: i(user_id),
                read: false,
                body: encode(&n),
            };
            loop {
                stored.id = self.next_id(Sequence::Notifications).await?;
                match self.c.notifications.insert_one(&stored).await {
                    Ok(_) => break,
                    // The id was handed out twice (see `counters`): take another.
                    Err(e) if error::is_duplicate(&e) => {}
                    Err(e) => return Err(error::map(e)),
                }
            }
            // Keep the newest `keep`: everything at or below the (keep+1)-th newest id goes.
            let oldest_kept = self
                .c
                .notifications
                .find(doc! { "user_id": i(user_id) })
                .sort(doc! { "_id": -1 })
                .skip(u64::from(keep))
                .limit(1)
                .await
                .map_err(error::map)?
                .try_next()
                .await
                .map_err(error::map)?;
            if let Some(cut) = oldest_kept {
                self.c
                    .notifications
                    .delete_many(doc! { "user_id": i(user_id), "_id": { "$lte": cut.id } })
                    .await
                    .map_err(error::map)?;
            }
            n.id = u(stored.id);
            Ok(n)
        })
        .await
    }

    async fn notifications(&self, query: NotificationQuery) -> StoreResult<Vec<pb::Notification>> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        self.deadline(async {
            let mut filter = doc! { "user_id": i(query.user_id) };
            if query.unread_only {
                filter.insert("read", false);
            }
            if let Some(before) = query.before_id {
                filter.insert("_id", doc! { "$lt": i(before) });
            }
            let docs: Vec<NotificationDoc> = self
                .c
                .notifications
                .find(filter)
                .sort(doc! { "_id": -1 })
                .limit(i64::from(query.limit))
                .await
                .map_err(error::map)?
                .try_collect()
                .await
                .map_err(error::map)?;
            docs.into_iter().map(NotificationDoc::record).collect()
        })
        .await
    }

    async fn mark_notifications_read(
        &self,
        user_id: u64,
        which: NotificationSet,
    ) -> StoreResult<u64> {
        self.deadline(async {
            let mut filter = set_filter(user_id, &which);
            filter.insert("read", false);
            let result = self
                .c
                .notifications
                .update_many(filter, doc! { "$set": { "read": true } })
                .await
                .map_err(error::map)?;
            Ok(result.modified_count)
        })
        .await
    }

    async fn delete_notifications(&self, user_id: u64, which: NotificationSet) -> StoreResult<u64> {
        self.deadline(async {
            let result = self
                .c
                .notifications
                .delete_many(set_filter(user_id, &which))
                .await
                .map_err(error::map)?;
            Ok(result.deleted_count)
        })
        .await
    }

    async fn unread_notifications(&self, user_id: u64) -> StoreResult<u64> {
        self.deadline(async {
            self.c
                .notifications
                .count_documents(doc! { "user_id": i(user_id), "read": false })
                .await
                .map_err(error::map)
        })
        .await
    }

    async fn notification_prefs(&self, user_id: u64) -> StoreResult<Option<pb::NotificationPrefs>> {
        self.deadline(async {
            let found = self
                .c
                .notification_prefs
                .find_one(doc! { "_id": i(user_id) })
                .await
                .map_err(error::map)?;
            found
                .map(|d| {
                    pb::NotificationPrefs::decode(d.prefs.bytes.as_slice())
                        .map_err(|e| corrupt("notification_prefs", e))
                })
                .transpose()
        })
        .await
    }

    async fn set_notification_prefs(
        &self,
        user_id: u64,
        prefs: pb::NotificationPrefs,
    ) -> StoreResult<()> {
        if self.user(user_id).await?.is_none_or(|u| u.deleted) {
            return Err(StoreError::NotFound("user"));
        }
        self.deadline(async {
            self.c
                .notification_prefs
                .replace_one(
                    doc! { "_id": i(user_id) },
                    PrefsDoc {
                        user_id: i(user_id),
                        prefs: encode(&prefs),
                    },
                )
                .upsert(true)
                .await
                .map_err(error::map)?;
            Ok(())
        })
        .await
    }
}
