//! Files (capability `files`, chat/1.1; protocol.md section 13): where the bytes of uploads
//! and files live, what type they are, their thumbnails and their signed download URLs. This
//! module knows nothing of connections or requests; the file service built on it (requests,
//! upload streams, downloads, the HTTPS server, the collector) is [`crate::handlers::files`].
//!
//! # Layout
//! - [`blob`]: where the bytes live (filesystem or GridFS), behind one trait.
//! - [`detect`]: the type of a content from its bytes; [`thumbs`]: image decoding and
//!   thumbnails, off the async workers.
//! - [`urls`]: signed download URLs.
//! - [`Files`]: the above together with the settings and the uploads running on this node.

pub mod blob;
pub mod detect;
#[cfg(any(test, feature = "testing"))]
pub mod testdata;
pub mod thumbs;
pub mod urls;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use self::blob::BlobStore;
use self::thumbs::Thumbnailer;
use self::urls::UrlSigner;

/// Default largest file (`Limits.max_file_bytes`): 100 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;
/// Default per-user quota (`Limits.upload_quota_bytes`): 1 GiB.
pub const DEFAULT_UPLOAD_QUOTA_BYTES: u64 = 1024 * 1024 * 1024;
/// Upload streams per connection (`Limits.max_concurrent_uploads`): the QUIC credit for client
/// unidirectional streams.
pub const MAX_CONCURRENT_UPLOADS: u32 = 4;
/// How long a file's stream may go without progress before it is stopped (REQUEST_TIMEOUT): an
/// upload stream without a byte from the client, the bytes of a download (or a backup) that
/// the client does not take.
pub const TRANSFER_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The file settings of a server.
#[derive(Debug, Clone)]
pub struct FileSettings {
    /// Largest file an upload may declare.
    pub max_file_bytes: u64,
    /// Bytes one user may keep in files and open uploads.
    pub upload_quota_bytes: u64,
    /// How long an upload may stay unfinished, and a file unreferenced, before the collector
    /// removes it.
    pub gc_grace: Duration,
    /// How often the collector runs.
    pub gc_interval: Duration,
}

impl Default for FileSettings {
    fn default() -> Self {
        FileSettings {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            upload_quota_bytes: DEFAULT_UPLOAD_QUOTA_BYTES,
            gc_grace: Duration::from_secs(24 * 3600),
            gc_interval: Duration::from_secs(3600),
        }
    }
}

/// The file service of a server: the blob store and what runs beside it.
pub struct Files {
    /// Where the bytes are.
    pub blobs: Arc<dyn BlobStore>,
    /// Limits and collector timing.
    pub settings: FileSettings,
    /// Image decoding, off the async workers.
    pub thumbnailer: Thumbnailer,
    /// Signed HTTPS download URLs, when the HTTPS server is on.
    pub urls: Option<UrlSigner>,
    /// Scratch space (images being decoded).
    pub scratch: PathBuf,
    /// Uploads a stream or a finish is working on, on this node; the receiver side tells
    /// waiters when it is done.
    busy: Mutex<HashMap<String, watch::Receiver<()>>>,
    /// Per user: upload streams accepted on this node whose header is not read yet (see
    /// [`Files::stream_accepted`]).
    /// Upload streams whose header is not read yet, by user.
    unread_headers: Arc<crate::places::Places<u64>>,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files")
            .field("blobs", &self.blobs.backend())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// An accepted upload stream whose header is not read yet (see [`Files::stream_accepted`]).
pub type UnreadHeader = crate::places::Place<u64>;

/// Held while an upload is being worked on (see [`Files::claim`]); dropping it releases the
/// upload and wakes whoever waits for it.
#[derive(Debug)]
pub struct UploadClaim {
    files: Arc<Files>,
    id: String,
    _done: watch::Sender<()>,
}

impl Drop for UploadClaim {
    fn drop(&mut self) {
        self.files
            .busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl Files {
    /// A file service over `blobs`, with `scratch` (created if missing) for temporary files.
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        settings: FileSettings,
        urls: Option<UrlSigner>,
        scratch: PathBuf,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&scratch)?;
        Ok(Files {
            blobs,
            settings,
            // One image at a time: a decode may take up to MAX_DECODE_BYTES of memory.
            thumbnailer: Thumbnailer::new(1, 16),
            urls,
            scratch,
            busy: Mutex::new(HashMap::new()),
            unread_headers: Arc::default(),
        })
    }

    /// Notes an upload stream of `user_id` accepted by the connection, before its header is
    /// read; the stream's task drops the guard once it knows (and has claimed) its upload. So a
    /// `finish_upload` that arrives while the header still waits to be read waits for it
    /// ([`Files::headers_settled`]) instead of finding the upload incomplete. The connection
    /// accepts upload streams before request streams, and a client finishes only after its
    /// stream's bytes were acknowledged, so the stream is always noted first.
    pub fn stream_accepted(&self, user_id: u64) -> UnreadHeader {
        self.unread_headers.take(user_id)
    }

    /// Waits until no upload stream of `user_id` on this node has an unread header.
    pub async fn headers_settled(&self, user_id: u64) {
        self.unread_headers.none_held(&user_id).await;
    }

    /// Claims upload `id` for this task (a stream writing it, or a finish), unless another task
    /// of this node holds it.
    pub fn claim(self: &Arc<Self>, id: &str) -> Option<UploadClaim> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        if busy.contains_key(id) {
            return None;
        }
        let (tx, rx) = watch::channel(());
        busy.insert(id.to_owned(), rx);
        Some(UploadClaim {
            files: Arc::clone(self),
            id: id.to_owned(),
            _done: tx,
        })
    }

    /// Claims upload `id`, waiting while another task of this node holds it.
    pub async fn claim_wait(self: &Arc<Self>, id: &str) -> UploadClaim {
        loop {
            if let Some(claim) = self.claim(id) {
                return claim;
            }
            let waiter = self
                .busy
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(id)
                .cloned();
            if let Some(mut rx) = waiter {
                // Returns when the holder drops its claim (the sender).
                let _ = rx.changed().await;
            }
        }
    }
}

/// A new random id for an upload or a file: 128 bits, URL-safe base64 (22 characters).
pub fn new_id() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}
