//! Uploads and stored files.

use chatproto::pb;

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadState {
    /// Receiving bytes.
    Open,
    /// Finished: it made this file.
    Done {
        /// The file the upload made.
        file_id: String,
    },
    /// Refused (hash mismatch, content of the wrong type, ...); its bytes are discarded.
    Failed {
        /// What was wrong, for the client.
        reason: String,
    },
}

/// An upload as stored: the declaration of [`pb::BeginUpload`] and its state. Its bytes are in
/// the file blob store, under the upload's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    /// Server-made id.
    pub id: String,
    /// Who uploads.
    pub user_id: u64,
    /// Declared size in bytes.
    pub size: u64,
    /// Declared SHA-256 (32 bytes).
    pub sha256: Vec<u8>,
    /// Sanitized name.
    pub name: String,
    /// Declared kind.
    pub kind: pb::MessageKind,
    /// When it was first declared.
    pub created_at_ms: i64,
    /// Where it stands.
    pub state: UploadState,
}

/// A stored file: what readers see ([`pb::FileInfo`]) and what the server keeps about it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRecord {
    /// What readers see; `info.id` is the file's id.
    pub info: pb::FileInfo,
    /// The uploader (for a thumbnail: the original's uploader).
    pub owner_id: u64,
    /// For a thumbnail: the file it shows. Readable by whoever may read that file.
    pub parent_id: Option<String>,
    /// Used as an avatar: readable by every signed-in user.
    pub public: bool,
}

impl FileRecord {
    /// The file's id.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// The content address of its bytes: the SHA-256 in lowercase hex.
    pub fn content_key(&self) -> String {
        hex::encode(&self.info.sha256)
    }
}
