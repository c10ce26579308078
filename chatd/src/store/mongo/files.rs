//! Uploads and files: [`FileStore`] on `uploads`, `upload_keys`, `upload_outcomes` and `files`.
//!
//! Like the rest of this backend it relies only on single-document writes and unique `_id`
//! inserts (FerretDB's conditional updates are not atomic, see the module docs of `mongo`):
//! - "The user's open upload of this content" is a document in `upload_keys` with
//!   `_id = "<user>:<sha256 hex>:<size>"`: the first insert wins, so concurrent declarations of
//!   one content open one upload.
//! - An upload's outcome (done with a file, or failed) is a document in `upload_outcomes` with
//!   `_id = <upload id>`, inserted once: the first completion or failure wins, on any node. An
//!   upload without an outcome is open. The upload document itself never changes state.
//! - A completion inserts its file documents before it claims the outcome; the loser of a race
//!   deletes the documents it inserted and answers the winner's file.
//!
//! Who references a file is read from `messages.file_id` and the avatars of `users` and `chats`
//! (each indexed). `unreferenced_files` checks the old files one by one with three indexed
//! lookups each (FerretDB has no `$lookup`): a collector pass costs three queries per file older
//! than the grace period, which is fine at hourly passes.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chatproto::pb;
use futures_util::TryStreamExt;
use mongodb::bson::{Binary, Document, doc};
use prost::Message as _;
use serde::{Deserialize, Serialize};

use super::docs::{i, u};
use super::error::corrupt;
use super::sealing::{Fields, Purpose};
use super::{MongoStore, error, find_all};
use crate::store::{
    ConflictKind, FileRecord, FileStore, StoreError, StoreResult, UploadRecord, UploadState,
};

/// `uploads`: a declaration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct UploadDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub user_id: i64,
    pub size: i64,
    pub sha256: Binary,
    pub name: String,
    pub kind: i32,
    pub created_at_ms: i64,
}

/// `upload_outcomes`: how an upload ended; exactly one of the two is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct OutcomeDoc {
    #[serde(rename = "_id")]
    pub upload_id: String,
    pub file_id: Option<String>,
    pub failure: Option<String>,
}

/// `files`: a stored file; `info` is the encoded `FileInfo`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct FileDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub owner_id: i64,
    pub parent_id: Option<String>,
    pub sha256: String,
    pub size: i64,
    pub created_at_ms: i64,
    pub public: bool,
    pub info: Binary,
}

impl FileDoc {
    /// The document of `file`: its `FileInfo` sealed by `fields`, its content key as
    /// `fields` looks it up.
    fn new(file: &FileRecord, fields: &Fields) -> Self {
        FileDoc {
            id: file.id().to_owned(),
            owner_id: i(file.owner_id),
            parent_id: file.parent_id.clone(),
            sha256: fields.lookup(&file.content_key()),
            size: i(file.info.size),
            created_at_ms: file.info.created_at_ms,
            public: file.public,
            info: fields.bytes(Purpose::File, 0, file.info.encode_to_vec()),
        }
    }

    fn record(&self, fields: &Fields) -> StoreResult<FileRecord> {
        let info = fields.open_bytes(Purpose::File, 0, &self.info)?;
        Ok(FileRecord {
            info: pb::FileInfo::decode(info.as_slice()).map_err(|e| corrupt("file", e))?,
            owner_id: u(self.owner_id),
            parent_id: self.parent_id.clone(),
            public: self.public,
        })
    }
}

fn upload_record(
    d: UploadDoc,
    outcome: Option<OutcomeDoc>,
    fields: &Fields,
) -> StoreResult<UploadRecord> {
    let state = match outcome {
        None => UploadState::Open,
        Some(OutcomeDoc {
            file_id: Some(file_id),
            ..
        }) => UploadState::Done { file_id },
        Some(o) => UploadState::Failed {
            reason: o.failure.unwrap_or_default(),
        },
    };
    Ok(UploadRecord {
        sha256: fields.open_bytes(Purpose::Upload, 0, &d.sha256)?,
        name: fields.open_text(Purpose::Upload, 0, &d.name)?,
        id: d.id,
        user_id: u(d.user_id),
        size: u(d.size),
        kind: pb::MessageKind::try_from(d.kind).unwrap_or_default(),
        created_at_ms: d.created_at_ms,
        state,
    })
}

/// The `upload_keys` id of the user's open upload of a content (its hash as `fields` looks it
/// up).
fn open_key(fields: &Fields, user_id: u64, sha256: &[u8], size: u64) -> String {
    format!("{user_id}:{}:{size}", fields.lookup(&hex::encode(sha256)))
}

impl MongoStore {
    async fn outcome(&self, upload_id: &str) -> StoreResult<Option<OutcomeDoc>> {
        self.c
            .upload_outcomes
            .find_one(doc! { "_id": upload_id })
            .await
            .map_err(error::map)
    }

    async fn upload_now(&self, id: &str) -> StoreResult<Option<UploadRecord>> {
        let Some(upload) = self
            .c
            .uploads
            .find_one(doc! { "_id": id })
            .await
            .map_err(error::map)?
        else {
            return Ok(None);
        };
        let outcome = self.outcome(id).await?;
        upload_record(upload, outcome, &self.fields).map(Some)
    }

    /// Records how an upload ended, unless it already has an outcome; returns the outcome in
    /// force and whether it is this one. `NotFound("upload")` for an unknown upload.
    async fn settle(&self, outcome: OutcomeDoc) -> StoreResult<(OutcomeDoc, bool)> {
        let Some(upload) = self
            .c
            .uploads
            .find_one(doc! { "_id": &outcome.upload_id })
            .await
            .map_err(error::map)?
        else {
            return Err(StoreError::NotFound("upload"));
        };
        let settled = match self.c.upload_outcomes.insert_one(&outcome).await {
            Ok(_) => (outcome, true),
            Err(e) if error::is_duplicate(&e) => (
                self.outcome(&outcome.upload_id)
                    .await?
                    .ok_or_else(|| StoreError::Internal("upload outcome vanished".into()))?,
                false,
            ),
            Err(e) => return Err(error::map(e)),
        };
        // The upload is no longer the open one of its content.
        let sha256 = self.fields.open_bytes(Purpose::Upload, 0, &upload.sha256)?;
        let key = open_key(&self.fields, u(upload.user_id), &sha256, u(upload.size));
        self.c
            .upload_keys
            .delete_one(doc! { "_id": key, "upload": &upload.id })
            .await
            .map_err(error::map)?;
        Ok(settled)
    }

    async fn files_matching(&self, filter: Document) -> StoreResult<Vec<FileDoc>> {
        find_all(&self.c.files, filter, None).await
    }

    async fn is_referenced(&self, file_id: &str) -> StoreResult<bool> {
        let by_message = self
            .c
            .messages
            .find_one(doc! { "file_id": file_id })
            .await
            .map_err(error::map)?
            .is_some();
        if by_message {
            return Ok(true);
        }
        let by_user = self
            .c
            .users
            .find_one(doc! { "avatar_file_id": file_id })
            .await
            .map_err(error::map)?
            .is_some();
        if by_user {
            return Ok(true);
        }
        Ok(self
            .c
            .chats
            .find_one(doc! { "avatar_file_id": file_id })
            .await
            .map_err(error::map)?
            .is_some())
    }
}

#[async_trait]
impl FileStore for MongoStore {
    async fn open_upload(&self, new: UploadRecord) -> StoreResult<(UploadRecord, bool)> {
        self.deadline(async {
            self.ensure_user(new.user_id).await?;
            let key = open_key(&self.fields, new.user_id, &new.sha256, new.size);
            loop {
                let existing = self
                    .c
                    .upload_keys
                    .find_one(doc! { "_id": &key })
                    .await
                    .map_err(error::map)?;
                if let Some(existing) = existing {
                    let upload_id = existing.get_str("upload").unwrap_or_default().to_owned();
                    match self.upload_now(&upload_id).await? {
                        Some(mut found) if found.state == UploadState::Open => {
                            self.c
                                .uploads
                                .update_one(
                                    doc! { "_id": &upload_id },
                                    doc! { "$set": {
                                        "name": self.fields.text(Purpose::Upload, 0, &new.name),
                                        "kind": new.kind as i32,
                                    } },
                                )
                                .await
                                .map_err(error::map)?;
                            found.name.clone_from(&new.name);
                            found.kind = new.kind;
                            return Ok((found, false));
                        }
                        // A key left behind by an upload that ended (or vanished): drop it.
                        _ => {
                            self.c
                                .upload_keys
                                .delete_one(doc! { "_id": &key, "upload": &upload_id })
                                .await
                                .map_err(error::map)?;
                            continue;
                        }
                    }
                }
                let upload = UploadDoc {
                    id: new.id.clone(),
                    user_id: i(new.user_id),
                    size: i(new.size),
                    sha256: self.fields.bytes(Purpose::Upload, 0, new.sha256.clone()),
                    name: self.fields.text(Purpose::Upload, 0, &new.name),
                    kind: new.kind as i32,
                    created_at_ms: new.created_at_ms,
                };
                match self.c.uploads.insert_one(&upload).await {
                    Ok(_) => {}
                    Err(e) if error::is_duplicate(&e) => {
                        return Err(StoreError::Conflict(ConflictKind::UploadIdTaken));
                    }
                    Err(e) => return Err(error::map(e)),
                }
                match self
                    .c
                    .upload_keys
                    .insert_one(doc! { "_id": &key, "upload": &new.id })
                    .await
                {
                    Ok(_) => {
                        return Ok((
                            UploadRecord {
                                state: UploadState::Open,
                                ..new
                            },
                            true,
                        ));
                    }
                    Err(e) if error::is_duplicate(&e) => {
                        // A concurrent declaration won: drop ours and join theirs.
                        self.c
                            .uploads
                            .delete_one(doc! { "_id": &new.id })
                            .await
                            .map_err(error::map)?;
                    }
                    Err(e) => return Err(error::map(e)),
                }
            }
        })
        .await
    }

    async fn upload(&self, id: &str) -> StoreResult<Option<UploadRecord>> {
        self.deadline(self.upload_now(id)).await
    }

    async fn fail_upload(&self, id: &str, reason: &str) -> StoreResult<()> {
        self.deadline(async {
            let (_, ours) = self
                .settle(OutcomeDoc {
                    upload_id: id.to_owned(),
                    file_id: None,
                    failure: Some(reason.to_owned()),
                })
                .await?;
            if ours {
                Ok(())
            } else {
                Err(StoreError::Conflict(ConflictKind::UploadNotOpen))
            }
        })
        .await
    }

    async fn complete_upload(
        &self,
        id: &str,
        file: FileRecord,
        thumbnails: Vec<FileRecord>,
    ) -> StoreResult<FileRecord> {
        self.deadline(async {
            match self.outcome(id).await? {
                Some(OutcomeDoc {
                    file_id: Some(done),
                    ..
                }) => {
                    return self
                        .c
                        .files
                        .find_one(doc! { "_id": done })
                        .await
                        .map_err(error::map)?
                        .ok_or(StoreError::NotFound("file"))?
                        .record(&self.fields);
                }
                Some(_) => {
                    return Err(StoreError::Conflict(ConflictKind::UploadNotOpen));
                }
                None => {}
            }
            let docs: Vec<FileDoc> = std::iter::once(&file)
                .chain(&thumbnails)
                .map(|f| FileDoc::new(f, &self.fields))
                .collect();
            for d in &docs {
                match self.c.files.insert_one(d).await {
                    Ok(_) => {}
                    Err(e) if error::is_duplicate(&e) => {}
                    Err(e) => return Err(error::map(e)),
                }
            }
            let (settled, ours) = self
                .settle(OutcomeDoc {
                    upload_id: id.to_owned(),
                    file_id: Some(file.id().to_owned()),
                    failure: None,
                })
                .await?;
            if ours {
                return Ok(file);
            }
            // Another completion or a failure won: ours must not linger.
            let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
            self.c
                .files
                .delete_many(doc! { "_id": { "$in": ids } })
                .await
                .map_err(error::map)?;
            match settled.file_id {
                Some(winner) => self
                    .c
                    .files
                    .find_one(doc! { "_id": winner })
                    .await
                    .map_err(error::map)?
                    .ok_or(StoreError::NotFound("file"))?
                    .record(&self.fields),
                None => Err(StoreError::Conflict(ConflictKind::UploadNotOpen)),
            }
        })
        .await
    }

    async fn delete_upload(&self, id: &str) -> StoreResult<()> {
        self.deadline(async {
            if let Some(upload) = self
                .c
                .uploads
                .find_one(doc! { "_id": id })
                .await
                .map_err(error::map)?
            {
                let sha256 = self.fields.open_bytes(Purpose::Upload, 0, &upload.sha256)?;
                let key = open_key(&self.fields, u(upload.user_id), &sha256, u(upload.size));
                self.c
                    .upload_keys
                    .delete_one(doc! { "_id": key, "upload": id })
                    .await
                    .map_err(error::map)?;
            }
            self.c
                .uploads
                .delete_one(doc! { "_id": id })
                .await
                .map_err(error::map)?;
            self.c
                .upload_outcomes
                .delete_one(doc! { "_id": id })
                .await
                .map_err(error::map)?;
            Ok(())
        })
        .await
    }

    async fn stale_uploads(&self, before_ms: i64, limit: u32) -> StoreResult<Vec<UploadRecord>> {
        self.deadline(async {
            let uploads: Vec<UploadDoc> = self
                .c
                .uploads
                .find(doc! { "created_at_ms": { "$lt": before_ms } })
                .sort(doc! { "created_at_ms": 1, "_id": 1 })
                .limit(i64::from(limit))
                .await
                .map_err(error::map)?
                .try_collect()
                .await
                .map_err(error::map)?;
            let mut out = Vec::with_capacity(uploads.len());
            for upload in uploads {
                let outcome = self.outcome(&upload.id).await?;
                out.push(upload_record(upload, outcome, &self.fields)?);
            }
            Ok(out)
        })
        .await
    }

    async fn file(&self, id: &str) -> StoreResult<Option<FileRecord>> {
        self.deadline(async {
            self.c
                .files
                .find_one(doc! { "_id": id })
                .await
                .map_err(error::map)?
                .map(|d| d.record(&self.fields))
                .transpose()
        })
        .await
    }

    async fn set_file_public(&self, id: &str) -> StoreResult<()> {
        self.deadline(async {
            let result = self
                .c
                .files
                .update_one(doc! { "_id": id }, doc! { "$set": { "public": true } })
                .await
                .map_err(error::map)?;
            if result.matched_count == 0 {
                return Err(StoreError::NotFound("file"));
            }
            Ok(())
        })
        .await
    }

    async fn file_shares(&self, file_id: &str, user_id: u64) -> StoreResult<Vec<(u64, u64)>> {
        self.deadline(async {
            let mut lowest: BTreeMap<i64, i64> = BTreeMap::new();
            let mut cursor = self
                .c
                .messages
                .find(doc! { "file_id": file_id })
                .await
                .map_err(error::map)?;
            while let Some(m) = cursor.try_next().await.map_err(error::map)? {
                let seq = lowest.entry(m.chat_id).or_insert(m.seq);
                *seq = (*seq).min(m.seq);
            }
            if lowest.is_empty() {
                return Ok(Vec::new());
            }
            let chats: Vec<i64> = lowest.keys().copied().collect();
            let members: Vec<i64> = self
                .c
                .members
                .find(doc! { "chat_id": { "$in": chats }, "user_id": i(user_id) })
                .await
                .map_err(error::map)?
                .map_ok(|m| m.chat_id)
                .try_collect()
                .await
                .map_err(error::map)?;
            Ok(lowest
                .into_iter()
                .filter(|(chat, _)| members.contains(chat))
                .map(|(chat, seq)| (u(chat), u(seq)))
                .collect())
        })
        .await
    }

    async fn user_file_bytes(&self, user_id: u64) -> StoreResult<u64> {
        self.deadline(async {
            let files = self
                .files_matching(doc! { "owner_id": i(user_id), "parent_id": null })
                .await?;
            let mut total: u64 = files.iter().map(|f| u(f.size)).sum();
            let uploads: Vec<UploadDoc> =
                find_all(&self.c.uploads, doc! { "user_id": i(user_id) }, None).await?;
            for upload in uploads {
                if self.outcome(&upload.id).await?.is_none() {
                    total += u(upload.size);
                }
            }
            Ok(total)
        })
        .await
    }

    async fn unreferenced_files(&self, before_ms: i64, limit: u32) -> StoreResult<Vec<FileRecord>> {
        self.deadline(async {
            let mut cursor = self
                .c
                .files
                .find(doc! { "parent_id": null, "created_at_ms": { "$lt": before_ms } })
                .sort(doc! { "created_at_ms": 1, "_id": 1 })
                .await
                .map_err(error::map)?;
            let mut out = Vec::new();
            while out.len() < limit as usize {
                let Some(file) = cursor.try_next().await.map_err(error::map)? else {
                    break;
                };
                if !self.is_referenced(&file.id).await? {
                    out.push(file.record(&self.fields)?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn delete_file(&self, id: &str) -> StoreResult<Vec<String>> {
        self.deadline(async {
            let filter = doc! { "$or": [ { "_id": id }, { "parent_id": id } ] };
            // Content keys (the blob store's names), from the files' own hashes.
            let mut keys: Vec<String> = self
                .files_matching(filter.clone())
                .await?
                .iter()
                .map(|f| Ok(f.record(&self.fields)?.content_key()))
                .collect::<StoreResult<_>>()?;
            // Thumbnails first: a crash in between leaves the original, which is found again.
            self.c
                .files
                .delete_many(doc! { "parent_id": id })
                .await
                .map_err(error::map)?;
            self.c
                .files
                .delete_one(doc! { "_id": id })
                .await
                .map_err(error::map)?;
            keys.sort();
            keys.dedup();
            let mut orphaned = Vec::new();
            for key in keys {
                let shared = self
                    .c
                    .files
                    // Stored before sealing was turned on, or since.
                    .find_one(doc! { "sha256": { "$in": [self.fields.lookup(&key), &key] } })
                    .await
                    .map_err(error::map)?
                    .is_some();
                if !shared {
                    orphaned.push(key);
                }
            }
            Ok(orphaned)
        })
        .await
    }
}
