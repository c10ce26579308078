//! Messages written but not yet acknowledged by the server, kept in a file so that neither a lost
//! connection nor a restart of the client loses them or sends them twice.
//!
//! Each entry is the whole [`pb::SendMessage`] with its `client_msg_id`, fixed when the entry is
//! added. Sending it again after an unknown outcome is safe: the server answers a repeated
//! `client_msg_id` with the original message and creates nothing (protocol.md 7.5). An entry
//! leaves the outbox only once the server answered it (with the message, or with a refusal that
//! retrying cannot change).
//!
//! Entries are sent one at a time, oldest first: the protocol orders two sends only when the
//! second waits for the first one's answer (protocol.md 4.5).
//!
//! The file is a sequence of length-prefixed `SendMessage` frames, the same framing as the wire.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::BytesMut;

use super::{StoreError, read_optional, write_atomic};
use crate::client::{Client, ClientError, new_client_msg_id};
use crate::frame::{FrameDecoder, MAX_FRAME_BYTES, encode_to_vec};
use crate::pb;

/// The unacknowledged messages, oldest first; persisted when it has a path.
#[derive(Debug)]
pub struct Outbox {
    path: Option<PathBuf>,
    entries: VecDeque<pb::SendMessage>,
}

/// What [`Client::send_next`] did with the oldest entry.
#[derive(Debug)]
pub enum OutboxOutcome {
    /// The outbox is empty.
    Empty,
    /// The server accepted it (now or earlier: a repeat answers the original message); the entry
    /// is gone from the outbox.
    Sent {
        /// The entry as it was queued.
        request: pb::SendMessage,
        /// The message the server stored.
        message: pb::Message,
    },
    /// The server refused it for a reason retrying cannot fix (not a member any more, too long,
    /// blocked...); the entry is gone from the outbox.
    Rejected {
        /// The entry as it was queued.
        request: pb::SendMessage,
        /// Why.
        error: ClientError,
    },
}

impl Outbox {
    /// An outbox that lives only in memory (lost with the process).
    pub fn in_memory() -> Self {
        Self {
            path: None,
            entries: VecDeque::new(),
        }
    }

    /// Opens the outbox stored at `path`; a missing file is an empty outbox.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the file holds anything but whole `SendMessage` frames.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let mut entries = VecDeque::new();
        if let Some(bytes) = read_optional(&path)? {
            let decoder = FrameDecoder::new(MAX_FRAME_BYTES);
            let mut buf = BytesMut::from(&bytes[..]);
            loop {
                match decoder.decode::<pb::SendMessage>(&mut buf) {
                    Ok(Some(entry)) => entries.push_back(entry),
                    Ok(None) => break,
                    Err(e) => {
                        return Err(StoreError::corrupt(
                            &path,
                            format!("entry {}: {e}", entries.len() + 1),
                        ));
                    }
                }
            }
            decoder.finish(&buf).map_err(|e| {
                StoreError::corrupt(&path, format!("entry {}: {e}", entries.len() + 1))
            })?;
        }
        Ok(Self {
            path: Some(path),
            entries,
        })
    }

    /// The file, if persisted.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Queues a message, giving it a `client_msg_id` if it has none, and stores the outbox before
    /// returning, so the message survives a crash from then on. Returns the `client_msg_id`.
    ///
    /// # Errors
    /// When the file cannot be written; the message is then not queued.
    pub fn push(&mut self, mut request: pb::SendMessage) -> Result<String, StoreError> {
        if request.client_msg_id.is_empty() {
            request.client_msg_id = new_client_msg_id();
        }
        let id = request.client_msg_id.clone();
        self.entries.push_back(request);
        if let Err(e) = self.persist() {
            self.entries.pop_back();
            return Err(e);
        }
        Ok(id)
    }

    /// Removes the entry with `client_msg_id` and stores the outbox; returns it if it was there.
    ///
    /// # Errors
    /// When the file cannot be written; the entry then stays.
    pub fn remove(&mut self, client_msg_id: &str) -> Result<Option<pb::SendMessage>, StoreError> {
        let Some(index) = self
            .entries
            .iter()
            .position(|e| e.client_msg_id == client_msg_id)
        else {
            return Ok(None);
        };
        let entry = self.entries.remove(index);
        if let Err(e) = self.persist() {
            if let Some(entry) = entry {
                self.entries.insert(index, entry);
            }
            return Err(e);
        }
        Ok(entry)
    }

    /// The oldest entry.
    pub fn front(&self) -> Option<&pb::SendMessage> {
        self.entries.front()
    }

    /// Every entry, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &pb::SendMessage> {
        self.entries.iter()
    }

    /// How many messages wait.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn persist(&self) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut bytes = Vec::new();
        for entry in &self.entries {
            let frame = encode_to_vec(entry, MAX_FRAME_BYTES)
                .map_err(|e| StoreError::corrupt(path, format!("cannot encode an entry: {e}")))?;
            bytes.extend_from_slice(&frame);
        }
        write_atomic(path, &bytes, 0o600)
    }
}

/// Whether a failed send may succeed later unchanged: the connection, the server's load or the
/// authentication can come back; a refusal of the message itself cannot.
fn is_transient(error: &ClientError) -> bool {
    match error {
        ClientError::Remote(e) => {
            e.is_retryable()
                || matches!(
                    e.code,
                    pb::ErrorCode::Internal
                        | pb::ErrorCode::Unauthenticated
                        | pb::ErrorCode::Unspecified
                )
        }
        ClientError::Config(_) => false,
        _ => true,
    }
}

impl Client {
    /// Sends the oldest entry of `outbox` and removes it once the server answered it. Call it
    /// again until [`OutboxOutcome::Empty`]; after an error, call it again once the client is
    /// connected ([`ClientEvent::Connected`](crate::client::ClientEvent::Connected)).
    ///
    /// The lock is held only to read and to update the outbox, never while the request is under
    /// way, so the application keeps queueing (and persisting) messages meanwhile. Do not call
    /// it from two tasks at once: sends are ordered by waiting for each answer.
    ///
    /// # Errors
    /// A transient failure (connection lost, timeout, server unavailable, not authenticated,
    /// or the outbox file could not be written after the answer): the entry stays queued.
    pub async fn send_next(&self, outbox: &Mutex<Outbox>) -> Result<OutboxOutcome, ClientError> {
        let poisoned = |_| ClientError::Closed("outbox lock poisoned".into());
        let Some(request) = outbox.lock().map_err(poisoned)?.front().cloned() else {
            return Ok(OutboxOutcome::Empty);
        };
        let result = self.send_message(request.clone()).await;
        let remove = || -> Result<(), ClientError> {
            outbox
                .lock()
                .map_err(poisoned)?
                .remove(&request.client_msg_id)
                .map_err(|e| ClientError::Closed(format!("outbox: {e}")))?;
            Ok(())
        };
        match result {
            Ok(message) => {
                remove()?;
                Ok(OutboxOutcome::Sent { request, message })
            }
            Err(error) if is_transient(&error) => Err(error),
            Err(error) => {
                remove()?;
                Ok(OutboxOutcome::Rejected { request, error })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(chat_id: u64, text: &str) -> pb::SendMessage {
        pb::SendMessage {
            chat_id,
            kind: pb::MessageKind::Text as i32,
            text: text.into(),
            ..Default::default()
        }
    }

    #[test]
    fn entries_survive_a_reopen_in_order_with_their_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox");
        let mut outbox = Outbox::open(&path).unwrap();
        let a = outbox.push(text(1, "first")).unwrap();
        let b = outbox.push(text(2, "second")).unwrap();
        assert_ne!(a, b);
        let reopened = Outbox::open(&path).unwrap();
        let ids: Vec<_> = reopened.iter().map(|e| e.client_msg_id.clone()).collect();
        assert_eq!(ids, [a.clone(), b.clone()]);
        assert_eq!(reopened.front().unwrap().text, "first");

        let mut outbox = reopened;
        assert_eq!(outbox.remove(&a).unwrap().unwrap().text, "first");
        assert!(outbox.remove(&a).unwrap().is_none());
        let reopened = Outbox::open(&path).unwrap();
        assert_eq!(reopened.len(), 1);
        assert_eq!(reopened.front().unwrap().client_msg_id, b);
    }

    #[test]
    fn a_given_client_msg_id_is_kept() {
        let mut outbox = Outbox::in_memory();
        let mut entry = text(1, "x");
        entry.client_msg_id = "mine-1".into();
        assert_eq!(outbox.push(entry).unwrap(), "mine-1");
        assert!(outbox.path().is_none());
    }

    #[test]
    fn a_truncated_file_is_corrupt_not_silently_shortened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox");
        let mut outbox = Outbox::open(&path).unwrap();
        outbox.push(text(1, "hello")).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        let err = Outbox::open(&path).unwrap_err().to_string();
        assert!(err.contains("entry 1"), "{err}");
    }

    #[test]
    fn refusals_of_the_message_are_final_and_outages_are_not() {
        let remote = |code| {
            ClientError::Remote(crate::client::RemoteError {
                code,
                message: String::new(),
                field: String::new(),
                retry_after: None,
            })
        };
        assert!(is_transient(&remote(pb::ErrorCode::Unavailable)));
        assert!(is_transient(&remote(pb::ErrorCode::RateLimited)));
        assert!(is_transient(&remote(pb::ErrorCode::Unauthenticated)));
        assert!(is_transient(&ClientError::ConnectionLost("x".into())));
        assert!(!is_transient(&remote(pb::ErrorCode::PermissionDenied)));
        assert!(!is_transient(&remote(pb::ErrorCode::TooLarge)));
        assert!(!is_transient(&remote(pb::ErrorCode::NotFound)));
    }
}
