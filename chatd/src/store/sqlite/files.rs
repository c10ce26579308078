//! Uploads and files: the SQL behind [`FileStore`](crate::store::FileStore).
//!
//! An upload is one `uploads` row whose `state` is 0 (open), 1 (done, `file_id` set) or 2
//! (failed, `failure` set). A file is one `files` row; thumbnails are rows whose `parent_id` is
//! their original. Who references a file is read from `messages.file_id` and the avatar columns
//! of `users` and `chats` (each indexed), so nothing has to be kept in step when a message is
//! deleted for everyone: its `file_id` is purged and the reference is gone.

use async_trait::async_trait;
use chatproto::pb;
use prost::Message as _;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::convert::{decode_blob, get_enum, get_u64, sql_u64};
use crate::store::{
    ConflictKind, FileRecord, FileStore, StoreError, StoreResult, UploadRecord, UploadState,
};

const UPLOAD_COLUMNS: &str =
    "id, user_id, size, sha256, name, kind, created_at_ms, state, file_id, failure";

fn upload_from_row(row: &Row<'_>) -> rusqlite::Result<UploadRecord> {
    let state: i64 = row.get(7)?;
    let state = match state {
        0 => UploadState::Open,
        1 => UploadState::Done {
            file_id: row.get::<_, Option<String>>(8)?.unwrap_or_default(),
        },
        _ => UploadState::Failed {
            reason: row.get::<_, Option<String>>(9)?.unwrap_or_default(),
        },
    };
    Ok(UploadRecord {
        id: row.get(0)?,
        user_id: get_u64(row, 1)?,
        size: get_u64(row, 2)?,
        sha256: row.get(3)?,
        name: row.get(4)?,
        kind: get_enum(row, 5)?,
        created_at_ms: row.get(6)?,
        state,
    })
}

const FILE_COLUMNS: &str = "owner_id, parent_id, public, info";

fn file_from_row(row: &Row<'_>) -> rusqlite::Result<FileRecord> {
    let info: Option<pb::FileInfo> = decode_blob(row, 3)?;
    Ok(FileRecord {
        owner_id: get_u64(row, 0)?,
        parent_id: row.get(1)?,
        public: row.get(2)?,
        info: info.unwrap_or_default(),
    })
}

pub(super) fn upload(c: &Connection, id: &str) -> StoreResult<Option<UploadRecord>> {
    let sql = format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row(params![id], upload_from_row)
        .optional()?)
}

pub(super) fn open_upload(c: &Connection, new: &UploadRecord) -> StoreResult<(UploadRecord, bool)> {
    let sql = format!(
        "SELECT {UPLOAD_COLUMNS} FROM uploads \
         WHERE user_id = ?1 AND sha256 = ?2 AND size = ?3 AND state = 0"
    );
    let existing = c
        .prepare_cached(&sql)?
        .query_row(
            params![sql_u64(new.user_id), new.sha256, sql_u64(new.size)],
            upload_from_row,
        )
        .optional()?;
    if let Some(mut found) = existing {
        c.prepare_cached("UPDATE uploads SET name = ?2, kind = ?3 WHERE id = ?1")?
            .execute(params![found.id, new.name, new.kind as i32])?;
        found.name.clone_from(&new.name);
        found.kind = new.kind;
        return Ok((found, false));
    }
    super::users::ensure_user(c, new.user_id)?;
    c.prepare_cached(
        "INSERT INTO uploads (id, user_id, size, sha256, name, kind, created_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        new.id,
        sql_u64(new.user_id),
        sql_u64(new.size),
        new.sha256,
        new.name,
        new.kind as i32,
        new.created_at_ms,
    ])?;
    Ok((
        UploadRecord {
            state: UploadState::Open,
            ..new.clone()
        },
        true,
    ))
}

pub(super) fn fail_upload(c: &Connection, id: &str, reason: &str) -> StoreResult<()> {
    match upload(c, id)?.map(|u| u.state) {
        None => Err(StoreError::NotFound("upload")),
        Some(UploadState::Open) => {
            c.prepare_cached("UPDATE uploads SET state = 2, failure = ?2 WHERE id = ?1")?
                .execute(params![id, reason])?;
            Ok(())
        }
        Some(_) => Err(StoreError::Conflict(ConflictKind::UploadNotOpen)),
    }
}

pub(super) fn complete_upload(
    c: &Connection,
    id: &str,
    file: &FileRecord,
    thumbnails: &[FileRecord],
) -> StoreResult<FileRecord> {
    match upload(c, id)?.map(|u| u.state) {
        None => return Err(StoreError::NotFound("upload")),
        Some(UploadState::Done { file_id }) => {
            return self::file(c, &file_id)?.ok_or(StoreError::NotFound("file"));
        }
        Some(UploadState::Failed { .. }) => {
            return Err(StoreError::Conflict(ConflictKind::UploadNotOpen));
        }
        Some(UploadState::Open) => {}
    }
    insert_file(c, file)?;
    for thumbnail in thumbnails {
        insert_file(c, thumbnail)?;
    }
    c.prepare_cached("UPDATE uploads SET state = 1, file_id = ?2 WHERE id = ?1")?
        .execute(params![id, file.id()])?;
    Ok(file.clone())
}

fn insert_file(c: &Connection, file: &FileRecord) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO files (id, owner_id, parent_id, sha256, size, created_at_ms, public, info) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        file.id(),
        sql_u64(file.owner_id),
        file.parent_id,
        file.content_key(),
        sql_u64(file.info.size),
        file.info.created_at_ms,
        file.public,
        file.info.encode_to_vec(),
    ])?;
    Ok(())
}

pub(super) fn delete_upload(c: &Connection, id: &str) -> StoreResult<()> {
    c.prepare_cached("DELETE FROM uploads WHERE id = ?1")?
        .execute(params![id])?;
    Ok(())
}

pub(super) fn stale_uploads(
    c: &Connection,
    before_ms: i64,
    limit: u32,
) -> StoreResult<Vec<UploadRecord>> {
    let sql = format!(
        "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE created_at_ms < ?1 \
         ORDER BY created_at_ms, id LIMIT ?2"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![before_ms, limit], upload_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn file(c: &Connection, id: &str) -> StoreResult<Option<FileRecord>> {
    let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE id = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row(params![id], file_from_row)
        .optional()?)
}

pub(super) fn set_file_public(c: &Connection, id: &str) -> StoreResult<()> {
    let changed = c
        .prepare_cached("UPDATE files SET public = 1 WHERE id = ?1")?
        .execute(params![id])?;
    if changed == 0 {
        return Err(StoreError::NotFound("file"));
    }
    Ok(())
}

pub(super) fn file_shares(
    c: &Connection,
    file_id: &str,
    user_id: u64,
) -> StoreResult<Vec<(u64, u64)>> {
    let mut stmt = c.prepare_cached(
        "SELECT m.chat_id, min(m.seq) FROM messages m \
         JOIN members mb ON mb.chat_id = m.chat_id AND mb.user_id = ?2 \
         WHERE m.file_id = ?1 GROUP BY m.chat_id ORDER BY m.chat_id",
    )?;
    let rows = stmt.query_map(params![file_id, sql_u64(user_id)], |row| {
        Ok((get_u64(row, 0)?, get_u64(row, 1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn user_file_bytes(c: &Connection, user_id: u64) -> StoreResult<u64> {
    let bytes: i64 = c
        .prepare_cached(
            "SELECT (SELECT coalesce(sum(size), 0) FROM files \
                     WHERE owner_id = ?1 AND parent_id IS NULL) \
                  + (SELECT coalesce(sum(size), 0) FROM uploads \
                     WHERE user_id = ?1 AND state = 0)",
        )?
        .query_row(params![sql_u64(user_id)], |row| row.get(0))?;
    Ok(u64::try_from(bytes).unwrap_or(0))
}

pub(super) fn unreferenced_files(
    c: &Connection,
    before_ms: i64,
    limit: u32,
) -> StoreResult<Vec<FileRecord>> {
    let sql = format!(
        "SELECT {FILE_COLUMNS} FROM files f \
         WHERE f.parent_id IS NULL AND f.created_at_ms < ?1 \
           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.file_id = f.id) \
           AND NOT EXISTS (SELECT 1 FROM users u WHERE u.avatar_file_id = f.id) \
           AND NOT EXISTS (SELECT 1 FROM chats ch WHERE ch.avatar_file_id = f.id) \
         ORDER BY f.created_at_ms, f.id LIMIT ?2"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![before_ms, limit], file_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn delete_file(c: &Connection, id: &str) -> StoreResult<Vec<String>> {
    let mut keys: Vec<String> = {
        let mut stmt =
            c.prepare_cached("SELECT sha256 FROM files WHERE id = ?1 OR parent_id = ?1")?;
        let rows = stmt.query_map(params![id], |row| row.get(0))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    c.prepare_cached("DELETE FROM files WHERE parent_id = ?1")?
        .execute(params![id])?;
    c.prepare_cached("DELETE FROM files WHERE id = ?1")?
        .execute(params![id])?;
    keys.sort();
    keys.dedup();
    let mut orphaned = Vec::new();
    for key in keys {
        let shared: bool = c
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM files WHERE sha256 = ?1)")?
            .query_row(params![key], |row| row.get(0))?;
        if !shared {
            orphaned.push(key);
        }
    }
    Ok(orphaned)
}

#[async_trait]
impl FileStore for SqliteStore {
    async fn open_upload(&self, new: UploadRecord) -> StoreResult<(UploadRecord, bool)> {
        self.write(move |c| open_upload(c, &new)).await
    }

    async fn upload(&self, id: &str) -> StoreResult<Option<UploadRecord>> {
        let id = id.to_owned();
        self.read(move |c| upload(c, &id)).await
    }

    async fn fail_upload(&self, id: &str, reason: &str) -> StoreResult<()> {
        let (id, reason) = (id.to_owned(), reason.to_owned());
        self.write(move |c| fail_upload(c, &id, &reason)).await
    }

    async fn complete_upload(
        &self,
        id: &str,
        file: FileRecord,
        thumbnails: Vec<FileRecord>,
    ) -> StoreResult<FileRecord> {
        let id = id.to_owned();
        self.write(move |c| complete_upload(c, &id, &file, &thumbnails))
            .await
    }

    async fn delete_upload(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |c| delete_upload(c, &id)).await
    }

    async fn stale_uploads(&self, before_ms: i64, limit: u32) -> StoreResult<Vec<UploadRecord>> {
        self.read(move |c| stale_uploads(c, before_ms, limit)).await
    }

    async fn file(&self, id: &str) -> StoreResult<Option<FileRecord>> {
        let id = id.to_owned();
        self.read(move |c| file(c, &id)).await
    }

    async fn set_file_public(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |c| set_file_public(c, &id)).await
    }

    async fn file_shares(&self, file_id: &str, user_id: u64) -> StoreResult<Vec<(u64, u64)>> {
        let file_id = file_id.to_owned();
        self.read(move |c| file_shares(c, &file_id, user_id)).await
    }

    async fn user_file_bytes(&self, user_id: u64) -> StoreResult<u64> {
        self.read(move |c| user_file_bytes(c, user_id)).await
    }

    async fn unreferenced_files(&self, before_ms: i64, limit: u32) -> StoreResult<Vec<FileRecord>> {
        self.read(move |c| unreferenced_files(c, before_ms, limit))
            .await
    }

    async fn delete_file(&self, id: &str) -> StoreResult<Vec<String>> {
        let id = id.to_owned();
        self.write(move |c| delete_file(c, &id)).await
    }
}
