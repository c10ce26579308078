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
use super::{MongoStore, error, find_all};
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

/// Users per batch of a broadcast: one insert, one lookup and one count per batch.
const BROADCAST_BATCH: u32 = 1000;

impl MongoStore {
    /// Deletes `user_id`'s notifications beyond the newest `keep`: everything at or below the
    /// (keep+1)-th newest id.
    async fn trim_notifications(&self, user_id: u64, keep: u32) -> StoreResult<()> {
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
        Ok(())
    }

    /// One batch of notifications, `(user, body)` each: a block of ids from the counter, one
    /// unordered insert, a check of which stand (an id the counter handed out twice, see
    /// `counters`, is taken again one by one), then the trim of the users now over `keep`. The
    /// ids, in `entries`' order.
    async fn append_batch(&self, entries: Vec<(i64, Binary)>, keep: u32) -> StoreResult<Vec<i64>> {
        let count = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        let first = self.next_ids(Sequence::Notifications, count).await?;
        let mut users: Vec<i64> = entries.iter().map(|(user_id, _)| *user_id).collect();
        users.sort_unstable();
        users.dedup();
        let docs: Vec<NotificationDoc> = entries
            .into_iter()
            .zip(first..)
            .map(|((user_id, body), id)| NotificationDoc {
                id,
                user_id,
                read: false,
                body,
            })
            .collect();
        match self.c.notifications.insert_many(&docs).ordered(false).await {
            Ok(_) => {}
            Err(e) if error::is_duplicate(&e) => {}
            Err(e) => return Err(error::map(e)),
        }
        let ids: Vec<i64> = docs.iter().map(|d| d.id).collect();
        let standing: Vec<NotificationDoc> =
            find_all(&self.c.notifications, doc! { "_id": { "$in": ids } }, None).await?;
        let mut result = Vec::with_capacity(docs.len());
        for mut d in docs {
            if !standing
                .iter()
                .any(|s| s.id == d.id && s.user_id == d.user_id)
            {
                loop {
                    d.id = self.next_id(Sequence::Notifications).await?;
                    match self.c.notifications.insert_one(&d).await {
                        Ok(_) => break,
                        Err(e) if error::is_duplicate(&e) => {}
                        Err(e) => return Err(error::map(e)),
                    }
                }
            }
            result.push(d.id);
        }
        let over: Vec<Document> = self
            .c
            .notifications
            .aggregate(vec![
                doc! { "$match": { "user_id": { "$in": users } } },
                doc! { "$group": { "_id": "$user_id", "n": { "$sum": 1 } } },
                doc! { "$match": { "n": { "$gt": i64::from(keep) } } },
            ])
            .await
            .map_err(error::map)?
            .try_collect()
            .await
            .map_err(error::map)?;
        for user in over {
            let user_id = user
                .get_i64("_id")
                .or_else(|_| user.get_i32("_id").map(i64::from));
            let user_id = user_id.map_err(|e| corrupt("notifications", e))?;
            self.trim_notifications(u(user_id), keep).await?;
        }
        Ok(result)
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
            self.trim_notifications(user_id, keep).await?;
            n.id = u(stored.id);
            Ok(n)
        })
        .await
    }

    async fn append_notifications(
        &self,
        batch: Vec<(u64, pb::Notification)>,
        keep: u32,
    ) -> StoreResult<Vec<pb::Notification>> {
        if let [(user_id, n)] = batch.as_slice() {
            // One: without the batch's lookups.
            return Ok(vec![
                self.append_notification(*user_id, n.clone(), keep).await?,
            ]);
        }
        let mut stored = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(BROADCAST_BATCH as usize) {
            let entries = chunk
                .iter()
                .map(|(user_id, n)| {
                    let n = pb::Notification {
                        id: 0,
                        read: false,
                        ..n.clone()
                    };
                    (i(*user_id), encode(&n))
                })
                .collect();
            let ids = self.deadline(self.append_batch(entries, keep)).await?;
            stored.extend(chunk.iter().zip(ids).map(|((_, n), id)| pb::Notification {
                id: u(id),
                read: false,
                ..n.clone()
            }));
        }
        Ok(stored)
    }

    async fn broadcast_notification(
        &self,
        mut n: pb::Notification,
        keep: u32,
    ) -> StoreResult<Vec<(u64, u64)>> {
        n.id = 0;
        n.read = false;
        let body = encode(&n);
        let mut users = self
            .c
            .users
            .clone_with_type::<Document>()
            .find(doc! { "deleted": false, "disabled": false })
            .projection(doc! { "_id": 1 })
            .sort(doc! { "_id": 1 })
            .batch_size(BROADCAST_BATCH)
            .await
            .map_err(error::map)?;
        let mut recorded = Vec::new();
        let mut batch = Vec::with_capacity(BROADCAST_BATCH as usize);
        loop {
            let next = users.try_next().await.map_err(error::map)?;
            if let Some(user) = &next {
                batch.push(user.get_i64("_id").map_err(|e| corrupt("users", e))?);
            }
            if batch.len() == BROADCAST_BATCH as usize || (next.is_none() && !batch.is_empty()) {
                let entries = batch.iter().map(|&user| (user, body.clone())).collect();
                let ids = self.deadline(self.append_batch(entries, keep)).await?;
                recorded.extend(batch.drain(..).map(u).zip(ids.into_iter().map(u)));
            }
            if next.is_none() {
                return Ok(recorded);
            }
        }
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

    async fn notification_prefs_of(
        &self,
        user_ids: &[u64],
    ) -> StoreResult<Vec<(u64, pb::NotificationPrefs)>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.deadline(async {
            let ids: Vec<i64> = user_ids.iter().map(|&id| i(id)).collect();
            let found: Vec<PrefsDoc> = find_all(
                &self.c.notification_prefs,
                doc! { "_id": { "$in": ids } },
                Some(doc! { "_id": 1 }),
            )
            .await?;
            found
                .into_iter()
                .map(|d| {
                    let prefs = pb::NotificationPrefs::decode(d.prefs.bytes.as_slice())
                        .map_err(|e| corrupt("notification_prefs", e))?;
                    Ok((u(d.user_id), prefs))
                })
                .collect()
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
