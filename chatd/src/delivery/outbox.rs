//! The queue between delivery and one connection's event stream.
//!
//! Delivery pushes [`Frame`]s (and nothing else: a frame has passed redaction for this
//! connection's user); the connection's writer drains whatever is queued into one coalesced
//! stream write, so a burst of events leaves in as few writes and packets as the stream allows.
//!
//! Why not a tokio channel: a push here is one uncontended lock and, only when the queue was
//! empty, one wake-up; an idle connection holds no buffer at all (a channel allocates a block
//! of slots up front, about 1.4 KB per connection). The queue is bounded: a connection that
//! falls [`CONNECTION_QUEUE`] frames or [`CONNECTION_QUEUE_BYTES`] bytes behind is too slow and
//! is closed by delivery; its client reconnects and catches up from the store. Both bounds
//! matter: frames are small in a chat, but a call signal may be 64 KiB, and a client that never
//! reads must not make the server hold thousands of those.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

use super::redact::Frame;

/// How many frames a connection may have queued before it counts as too slow.
pub const CONNECTION_QUEUE: usize = 4096;

/// How many bytes of frames a connection may have queued before it counts as too slow.
pub const CONNECTION_QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// Most frames taken into one write.
pub const WRITE_BATCH: usize = 256;

/// Most bytes taken into one write (past the first frame): what the writer holds while a write
/// waits for the client comes on top of the queue's bound.
pub const WRITE_BATCH_BYTES: usize = 1024 * 1024;

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Bytes>,
    /// The bytes of `frames`.
    bytes: usize,
    closed: bool,
}

/// Why a push did not queue the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The connection is [`CONNECTION_QUEUE`] frames or [`CONNECTION_QUEUE_BYTES`] bytes
    /// behind.
    Full,
    /// The writer is gone (logout or connection end).
    Closed,
}

/// One connection's queue of event frames.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: Mutex<Queue>,
    ready: Notify,
}

impl Outbox {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `frame` for the writer.
    pub(super) fn push(&self, frame: &Frame) -> Result<(), PushError> {
        let mut queue = self.lock();
        if queue.closed {
            return Err(PushError::Closed);
        }
        let bytes = frame.bytes().len();
        if queue.frames.len() >= CONNECTION_QUEUE
            || queue.bytes.saturating_add(bytes) > CONNECTION_QUEUE_BYTES
        {
            return Err(PushError::Full);
        }
        let was_empty = queue.frames.is_empty();
        queue.bytes += bytes;
        queue.frames.push_back(frame.bytes().clone());
        drop(queue);
        if was_empty {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Waits for frames and moves up to `max` of them into `batch`. False once the queue is
    /// closed and drained: the writer finishes the stream then.
    pub async fn next_batch(&self, batch: &mut Vec<Bytes>, max: usize) -> bool {
        loop {
            {
                let mut queue = self.lock();
                if !queue.frames.is_empty() {
                    let mut taken = 0;
                    let n = queue
                        .frames
                        .iter()
                        .take(max)
                        .take_while(|f| {
                            let first = taken == 0;
                            taken += f.len();
                            first || taken <= WRITE_BATCH_BYTES
                        })
                        .count();
                    let taken: usize = queue.frames.iter().take(n).map(Bytes::len).sum();
                    queue.bytes = queue.bytes.saturating_sub(taken);
                    batch.extend(queue.frames.drain(..n));
                    if queue.frames.is_empty() && queue.frames.capacity() > WRITE_BATCH {
                        // Give a burst's memory back rather than holding it for the
                        // connection's whole life.
                        queue.frames = VecDeque::new();
                    }
                    return true;
                }
                if queue.closed {
                    return false;
                }
            }
            self.ready.notified().await;
        }
    }

    /// Closes the queue and drops what it holds: the writer ends without writing it (a sign-in
    /// refused after its registration).
    pub fn discard(&self) {
        let mut queue = self.lock();
        queue.frames = VecDeque::new();
        queue.bytes = 0;
        queue.closed = true;
        drop(queue);
        self.ready.notify_one();
    }

    /// Closes the queue: nothing more is accepted, and the writer ends once it has written what
    /// is queued.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Frames waiting.
    #[cfg(any(test, feature = "testing"))]
    pub fn len(&self) -> usize {
        self.lock().frames.len()
    }

    /// True when nothing waits.
    #[cfg(any(test, feature = "testing"))]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::super::redact::{NoticeFrames, Viewer};
    use super::*;
    use chatproto::pb;

    fn frame() -> Frame {
        let notice = NoticeFrames::new(&pb::Event {
            kind: Some(pb::event::Kind::GoAway(pb::GoAway::default())),
        });
        notice
            .frame_for(&Viewer::default())
            .cloned()
            .expect("frame")
    }

    #[tokio::test]
    async fn batches_what_is_queued_and_ends_after_close() {
        let outbox = Outbox::new();
        for _ in 0..3 {
            outbox.push(&frame()).expect("push");
        }
        let mut batch = Vec::new();
        assert!(outbox.next_batch(&mut batch, 2).await);
        assert_eq!(batch.len(), 2);
        outbox.close();
        assert_eq!(outbox.push(&frame()), Err(PushError::Closed));
        assert!(
            outbox.next_batch(&mut batch, 10).await,
            "queued frames still go out"
        );
        assert_eq!(batch.len(), 3);
        assert!(!outbox.next_batch(&mut batch, 10).await);
    }

    #[tokio::test]
    async fn a_waiting_writer_wakes_on_push() {
        let outbox = std::sync::Arc::new(Outbox::new());
        let writer = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let mut batch = Vec::new();
                outbox.next_batch(&mut batch, 8).await;
                batch.len()
            })
        };
        tokio::task::yield_now().await;
        outbox.push(&frame()).expect("push");
        assert_eq!(writer.await.expect("writer"), 1);
    }

    #[test]
    fn a_full_queue_refuses() {
        let outbox = Outbox::new();
        let f = frame();
        for _ in 0..CONNECTION_QUEUE {
            outbox.push(&f).expect("push");
        }
        assert_eq!(outbox.push(&f), Err(PushError::Full));
    }

    /// Large frames fill the queue by their bytes long before their count does; what the writer
    /// takes makes room again.
    #[tokio::test]
    async fn a_queue_of_large_frames_is_full_by_its_bytes() {
        let notice = NoticeFrames::new(&pb::Event {
            kind: Some(pb::event::Kind::SessionRevoked(pb::SessionRevoked {
                reason: "x".repeat(64 * 1024),
            })),
        });
        let large = notice
            .frame_for(&Viewer::default())
            .cloned()
            .expect("frame");
        let fits = CONNECTION_QUEUE_BYTES / large.bytes().len();
        assert!(fits < CONNECTION_QUEUE);
        let outbox = Outbox::new();
        for _ in 0..fits {
            outbox.push(&large).expect("push");
        }
        assert_eq!(outbox.push(&large), Err(PushError::Full));
        let mut batch = Vec::new();
        assert!(outbox.next_batch(&mut batch, 1).await);
        outbox.push(&large).expect("room after the writer took one");
        // A write takes at most WRITE_BATCH_BYTES of them (at least one frame).
        batch.clear();
        assert!(outbox.next_batch(&mut batch, WRITE_BATCH).await);
        assert_eq!(batch.len(), WRITE_BATCH_BYTES / large.bytes().len());
    }
}
