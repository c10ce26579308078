//! What one connection of the HTTP servers may hold: how many there are at once, and how long
//! one may go without moving a byte.
//!
//! hyper bounds the wait for request headers, not a response the client stops reading: its
//! writes then wait for the socket forever, holding the task, its buffers and (for a file) an
//! open blob. [`Watched`] stamps every byte that moves either way; [`stalled`] completes once
//! none moved for [`STALL_TIMEOUT`], and the server drops the connection.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Most connections an HTTP server holds at once; an accepted connection beyond them is
/// closed at once.
pub const MAX_HTTP_CONNECTIONS: usize = 1024;

/// Longest a connection may move no byte either way while it is served (a response the client
/// does not read); as long as the QUIC path's transfer idle timeout.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// When a connection last moved a byte, in milliseconds since it was accepted.
#[derive(Debug, Clone)]
pub struct Progress {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Progress {
    /// Progress of a connection accepted now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn stamp(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// Completes once `progress` saw no byte for `timeout`.
pub async fn stalled(progress: &Progress, timeout: Duration) {
    loop {
        let due = progress.last() + timeout;
        if Instant::now() >= due {
            return;
        }
        tokio::time::sleep_until(due).await;
    }
}

/// An I/O stream that stamps its [`Progress`] whenever a byte moves.
#[derive(Debug)]
pub struct Watched<T> {
    inner: T,
    progress: Progress,
}

impl<T> Watched<T> {
    /// Watches `inner`.
    pub fn new(inner: T, progress: Progress) -> Self {
        Self { inner, progress }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.progress.stamp();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.progress.stamp();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.progress.stamp();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn bytes_moving_either_way_put_off_the_stall() {
        let (a, mut b) = tokio::io::duplex(64);
        let progress = Progress::new();
        let mut watched = Watched::new(a, progress.clone());
        let timeout = Duration::from_millis(400);
        tokio::time::sleep(timeout * 3 / 4).await;
        watched.write_all(b"x").await.expect("write");
        let mut one = [0u8; 1];
        b.read_exact(&mut one).await.expect("read");
        tokio::time::sleep(timeout * 3 / 4).await;
        b.write_all(b"y").await.expect("write");
        watched.read_exact(&mut one).await.expect("read");
        // Each byte put it off: it comes a whole timeout after the last one.
        let started = Instant::now();
        stalled(&progress, timeout).await;
        assert!(
            started.elapsed() >= timeout * 9 / 10,
            "{:?}",
            started.elapsed()
        );
        // A write that cannot go (the peer reads nothing) is no progress.
        watched.write_all(&[0u8; 64]).await.expect("fills the pipe");
        let blocked = tokio::time::timeout(timeout * 2, watched.write_all(b"z"));
        assert!(blocked.await.is_err(), "the pipe is full");
        let started = Instant::now();
        stalled(&progress, timeout).await;
        assert!(started.elapsed() < timeout / 2, "{:?}", started.elapsed());
    }
}
