//! Who may read a file (protocol.md 13.5): its uploader; members of a chat where a message
//! carries it (former members too, for messages up to their removal); every signed-in user once
//! it is an avatar. A thumbnail is readable by whoever may read its original. Everyone else gets
//! NOT_FOUND "file not found", the answer for a file that does not exist.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::FileRecord;

/// NOT_FOUND "file not found", the one answer for a missing file and an unreadable one.
pub fn file_not_found() -> ApiError {
    ApiError::not_found("file")
}

/// Whether `user_id` may read `file`.
pub async fn may_read(state: &AppState, user_id: u64, file: &FileRecord) -> ApiResult<bool> {
    let original;
    let root = match &file.parent_id {
        Some(parent) => match state.store.file(parent).await? {
            Some(found) => {
                original = found;
                &original
            }
            None => return Ok(false),
        },
        None => file,
    };
    if root.owner_id == user_id || root.public {
        return Ok(true);
    }
    for (chat_id, seq) in state.store.file_shares(root.id(), user_id).await? {
        let member = state.store.member(chat_id, user_id).await?;
        if member.is_some_and(|m| m.left_at_seq.is_none_or(|left| seq <= left)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The file `file_id` if `user_id` may read it; NOT_FOUND "file not found" otherwise.
pub async fn readable(state: &AppState, user_id: u64, file_id: &str) -> ApiResult<FileRecord> {
    if !crate::files::blob::is_safe_name(file_id) {
        return Err(file_not_found());
    }
    let file = state
        .store
        .file(file_id)
        .await?
        .ok_or_else(file_not_found)?;
    if may_read(state, user_id, &file).await? {
        Ok(file)
    } else {
        Err(file_not_found())
    }
}

/// For avatars (`update_profile`, `update_chat`): the file must be readable by the caller and
/// an original image. Changes nothing: [`publish_avatar`] makes it readable by everyone once
/// the write that makes it an avatar committed, so a refused request shares nothing.
pub async fn check_avatar(
    state: &AppState,
    user_id: u64,
    file_id: &str,
    field: &str,
) -> ApiResult<FileRecord> {
    let file = readable(state, user_id, file_id).await?;
    if file.parent_id.is_some()
        || crate::files::detect::class_of(&file.info.mime) != crate::files::detect::Class::Image
    {
        return Err(ApiError::invalid(
            field,
            "an avatar must be an uploaded image",
        ));
    }
    Ok(file)
}

/// Makes an avatar checked by [`check_avatar`] readable by every signed-in user (spec 13.6).
/// A failure is answered: the client's retry of its request publishes it again.
pub async fn publish_avatar(state: &AppState, avatar: Option<FileRecord>) -> ApiResult<()> {
    if let Some(file) = avatar.filter(|f| !f.public) {
        state.store.set_file_public(file.id()).await?;
    }
    Ok(())
}
