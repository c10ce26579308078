//! Accounts: [`UserStore`] on the `users` collection (unique index on `username`).

use async_trait::async_trait;
use chatproto::pb;
use futures_util::TryStreamExt;
use mongodb::bson::{Document, doc};
use mongodb::options::ReturnDocument;

use super::counters::Sequence;
use super::docs::{UserDoc, i};
use super::{MongoStore, error, find_all};
use crate::store::ConflictKind;
use crate::store::{NewUser, ProfilePatch, StoreError, StoreResult, UserRecord, UserStore};

/// A filter matching strings that start with `prefix` (byte-wise, as BSON strings compare), as a
/// range so the index serves it and no pattern syntax is involved. `None` for the empty prefix.
pub(super) fn prefix_range(prefix: &str) -> Option<Document> {
    if prefix.is_empty() {
        return None;
    }
    // No string that starts with `prefix` sorts after prefix + U+10FFFF, the highest code point.
    Some(doc! { "$gte": prefix, "$lt": format!("{prefix}\u{10FFFF}") })
}

impl MongoStore {
    /// Updates one live (not deleted) user; `NotFound("user")` when it matched nothing.
    pub(super) async fn update_live_user(&self, id: u64, update: Document) -> StoreResult<()> {
        let result = self
            .c
            .users
            .update_one(doc! { "_id": i(id), "deleted": false }, update)
            .await
            .map_err(error::map)?;
        if result.matched_count == 0 {
            return Err(StoreError::NotFound("user"));
        }
        Ok(())
    }

    /// Every user matching `filter`, ordered by id.
    pub(super) async fn users_by_id(&self, filter: Document) -> StoreResult<Vec<UserRecord>> {
        let docs: Vec<UserDoc> = find_all(&self.c.users, filter, Some(doc! { "_id": 1 })).await?;
        Ok(docs.into_iter().map(UserRecord::from).collect())
    }

    /// Users matching `filter`, ordered by username, strictly after `after_username`.
    async fn users_by_username(
        &self,
        mut filter: Document,
        prefix: &str,
        after_username: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut username = prefix_range(&prefix.to_lowercase()).unwrap_or_default();
        if let Some(after) = after_username {
            // Both bounds are strings, so the stricter lower bound is the greater one.
            let after = after.to_lowercase();
            let start = username
                .get_str("$gte")
                .map(str::to_string)
                .unwrap_or_default();
            username.remove("$gte");
            if start > after {
                username.insert("$gte", start);
            } else {
                username.insert("$gt", after);
            }
        }
        if !username.is_empty() {
            filter.insert("username", username);
        }
        let docs: Vec<UserDoc> = self
            .c
            .users
            .find(filter)
            .sort(doc! { "username": 1 })
            .limit(i64::from(limit))
            .await
            .map_err(error::map)?
            .try_collect()
            .await
            .map_err(error::map)?;
        Ok(docs.into_iter().map(UserRecord::from).collect())
    }
}

#[async_trait]
impl UserStore for MongoStore {
    async fn create_user(&self, new: NewUser) -> StoreResult<UserRecord> {
        self.deadline(async {
            let username = new.username.to_lowercase();
            // The unique index decides; this check only spares an id in the common case.
            if self
                .c
                .users
                .find_one(doc! { "username": &username })
                .await
                .map_err(error::map)?
                .is_some()
            {
                return Err(StoreError::Conflict(ConflictKind::UsernameTaken));
            }
            let mut user = UserDoc {
                id: 0,
                username,
                email: new.email,
                email_verified: false,
                password_hash: new.password_hash,
                display_name: String::new(),
                display_lower: String::new(),
                bio: String::new(),
                avatar_file_id: String::new(),
                status: pb::UserStatus::Online as i32,
                last_seen_at_ms: 0,
                role: new.role as i32,
                disabled: false,
                deleted: false,
                created_at_ms: new.now_ms,
            };
            loop {
                user.id = self.next_id(Sequence::Users).await?;
                match self.c.users.insert_one(&user).await {
                    Ok(_) => return Ok(user.into()),
                    Err(e) if error::is_duplicate(&e) => {
                        let taken = self
                            .c
                            .users
                            .find_one(doc! { "username": &user.username })
                            .await
                            .map_err(error::map)?;
                        if taken.is_some() {
                            return Err(StoreError::Conflict(ConflictKind::UsernameTaken));
                        }
                        // The id was handed out twice (see `counters`): take another.
                    }
                    Err(e) => return Err(error::map(e)),
                }
            }
        })
        .await
    }

    async fn user(&self, id: u64) -> StoreResult<Option<UserRecord>> {
        self.deadline(async {
            let found = self
                .c
                .users
                .find_one(doc! { "_id": i(id) })
                .await
                .map_err(error::map)?;
            Ok(found.map(UserRecord::from))
        })
        .await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        self.deadline(async {
            let found = self
                .c
                .users
                .find_one(doc! { "username": username.to_lowercase() })
                .await
                .map_err(error::map)?;
            Ok(found.map(UserRecord::from))
        })
        .await
    }

    async fn users(&self, ids: &[u64]) -> StoreResult<Vec<UserRecord>> {
        self.deadline(async {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let ids: Vec<i64> = ids.iter().map(|&id| i(id)).collect();
            self.users_by_id(doc! { "_id": { "$in": ids } }).await
        })
        .await
    }

    async fn update_profile(&self, id: u64, patch: ProfilePatch) -> StoreResult<UserRecord> {
        self.deadline(async {
            let mut set = Document::new();
            if let Some(name) = &patch.display_name {
                set.insert("display_name", name);
                set.insert("display_lower", name.to_lowercase());
            }
            if let Some(bio) = &patch.bio {
                set.insert("bio", bio);
            }
            if let Some(avatar) = &patch.avatar_file_id {
                set.insert("avatar_file_id", avatar);
            }
            if let Some(status) = patch.status {
                set.insert("status", status as i32);
            }
            let filter = doc! { "_id": i(id), "deleted": false };
            let updated = if set.is_empty() {
                self.c.users.find_one(filter).await
            } else {
                self.c
                    .users
                    .find_one_and_update(filter, doc! { "$set": set })
                    .return_document(ReturnDocument::After)
                    .await
            };
            updated
                .map_err(error::map)?
                .map(UserRecord::from)
                .ok_or(StoreError::NotFound("user"))
        })
        .await
    }

    async fn set_password_hash(
        &self,
        id: u64,
        hash: &str,
        replacing: Option<&str>,
    ) -> StoreResult<()> {
        let set = doc! { "$set": { "password_hash": hash } };
        let Some(replacing) = replacing else {
            return self.deadline(self.update_live_user(id, set)).await;
        };
        self.deadline(async {
            let filter = doc! { "_id": i(id), "deleted": false, "password_hash": replacing };
            let result = self
                .c
                .users
                .update_one(filter, set)
                .await
                .map_err(error::map)?;
            if result.matched_count == 1 {
                return Ok(());
            }
            match self.user(id).await? {
                Some(user) if !user.deleted => {
                    Err(StoreError::Conflict(ConflictKind::PasswordChanged))
                }
                _ => Err(StoreError::NotFound("user")),
            }
        })
        .await
    }

    async fn set_role(&self, id: u64, role: pb::Role, by: Option<u64>) -> StoreResult<()> {
        let change = self.update_live_user(id, doc! { "$set": { "role": role as i32 } });
        let removes = role != pb::Role::Admin;
        if removes || by.is_some() {
            self.deadline(self.guarded_admin_change(id, by, removes, change))
                .await
        } else {
            self.deadline(change).await
        }
    }

    async fn set_disabled(&self, id: u64, disabled: bool, by: Option<u64>) -> StoreResult<()> {
        let change = self.update_live_user(id, doc! { "$set": { "disabled": disabled } });
        if disabled || by.is_some() {
            self.deadline(self.guarded_admin_change(id, by, disabled, change))
                .await
        } else {
            self.deadline(change).await
        }
    }

    async fn delete_user(&self, id: u64, now_ms: i64, by: Option<u64>) -> StoreResult<()> {
        self.deadline(self.guarded_admin_change(id, by, true, async {
            let update = doc! {
                "$set": {
                    "email": "", "email_verified": false, "password_hash": "", "display_name": "", "display_lower": "",
                    "bio": "", "avatar_file_id": "", "status": pb::UserStatus::Offline as i32,
                    "disabled": true, "deleted": true,
                    "deleted_at_ms": now_ms,
                },
            };
            // A repeated deletion keeps the first time.
            let filter = doc! { "_id": i(id), "deleted": false };
            let result = self
                .c
                .users
                .update_one(filter, update)
                .await
                .map_err(error::map)?;
            if result.matched_count == 0
                && self
                    .c
                    .users
                    .find_one(doc! { "_id": i(id) })
                    .await
                    .map_err(error::map)?
                    .is_none()
            {
                return Err(StoreError::NotFound("user"));
            }
            Ok(())
        }))
        .await
    }

    async fn touch_last_seen(&self, id: u64, now_ms: i64) -> StoreResult<()> {
        self.deadline(self.update_live_user(id, doc! { "$max": { "last_seen_at_ms": now_ms } }))
            .await
    }

    async fn search_users(
        &self,
        prefix: &str,
        after_username: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>> {
        self.deadline(async {
            let mut filter = doc! { "disabled": false, "deleted": false };
            if let Some(range) = prefix_range(&prefix.to_lowercase()) {
                // Username or display name; the username range below only pages.
                filter.insert(
                    "$or",
                    vec![
                        doc! { "username": range.clone() },
                        doc! { "display_lower": range },
                    ],
                );
            }
            self.users_by_username(filter, "", after_username, limit)
                .await
        })
        .await
    }

    async fn list_users(
        &self,
        prefix: &str,
        after_username: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>> {
        self.deadline(self.users_by_username(Document::new(), prefix, after_username, limit))
            .await
    }

    async fn count_admins(&self) -> StoreResult<u64> {
        self.deadline(async {
            let filter =
                doc! { "role": pb::Role::Admin as i32, "disabled": false, "deleted": false };
            self.c
                .users
                .count_documents(filter)
                .await
                .map_err(error::map)
        })
        .await
    }
}
