//! Async frame I/O over quinn streams: the thin driver around the sans-IO `frame` codec,
//! shared by the client SDK and the server so the codec lives in one place.

use bytes::{Bytes, BytesMut};
use prost::Message;

use crate::frame::{self, FrameDecoder, FrameError};
use crate::pb;

/// Why reading a frame from a stream failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadFrameError {
    /// The bytes on the stream are not a valid frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The stream ended cleanly before any byte of a frame arrived.
    #[error("stream finished")]
    Finished,
    /// The peer reset the stream or the connection was lost.
    #[error(transparent)]
    Read(#[from] quinn::ReadError),
    /// No byte (nor the end of the stream) arrived for this long while a read waited (a reader
    /// made with [`FrameReader::with_idle_timeout`]).
    #[error("no progress for {0:?}")]
    Idle(std::time::Duration),
}

/// Reads frames of one message type from a receive stream, buffering partial input.
#[derive(Debug)]
pub struct FrameReader {
    recv: quinn::RecvStream,
    decoder: FrameDecoder,
    buf: BytesMut,
    /// How long a read may wait for its next bytes, if bounded.
    idle: Option<std::time::Duration>,
}

impl FrameReader {
    /// Wraps a receive stream; frames longer than `max_frame_bytes` are rejected.
    pub fn new(recv: quinn::RecvStream, max_frame_bytes: usize) -> Self {
        Self {
            recv,
            decoder: FrameDecoder::new(max_frame_bytes),
            buf: BytesMut::new(),
            idle: None,
        }
    }

    /// Fails a read with [`ReadFrameError::Idle`] when no byte arrives for `idle` (a peer that
    /// stalls is dropped; a slow one that keeps sending is not).
    pub fn with_idle_timeout(mut self, idle: std::time::Duration) -> Self {
        self.idle = Some(idle);
        self
    }

    /// Reads the next frame. Returns [`ReadFrameError::Finished`] when the stream ended exactly at a
    /// frame boundary, and a [`FrameError::Truncated`] when it ended inside one.
    pub async fn read<M: Message + Default>(&mut self) -> Result<M, ReadFrameError> {
        loop {
            if let Some(msg) = self.decoder.decode::<M>(&mut self.buf)? {
                return Ok(msg);
            }
            // Everything that has arrived, up to the decoder's bound: one read for a chunk of
            // several frames, and the buffer stays within a prefix and a frame.
            let readable = self.decoder.readable(&self.buf)?;
            match self.next_chunk(readable).await? {
                Some(chunk) => self.buf.extend_from_slice(&chunk.bytes),
                None => {
                    self.decoder.finish(&self.buf)?;
                    return Err(ReadFrameError::Finished);
                }
            }
        }
    }

    /// The next chunk of at most `max` bytes (`None` at the end of the stream), within the idle
    /// timeout when one is set.
    async fn next_chunk(&mut self, max: usize) -> Result<Option<quinn::Chunk>, ReadFrameError> {
        let read = self.recv.read_chunk(max, true);
        Ok(match self.idle {
            // quinn's reads are cancel-safe: a read that times out took nothing.
            Some(idle) => tokio::time::timeout(idle, read)
                .await
                .map_err(|_| ReadFrameError::Idle(idle))??,
            None => read.await?,
        })
    }

    /// Reads exactly one frame followed by the end of the stream (a request or response stream).
    pub async fn read_only<M: Message + Default>(&mut self) -> Result<M, ReadFrameError> {
        let msg = self.read::<M>().await?;
        if !self.buf.is_empty() {
            return Err(FrameError::TrailingBytes {
                extra: self.buf.len(),
            }
            .into());
        }
        match self.next_chunk(1).await? {
            None => Ok(msg),
            Some(chunk) => Err(FrameError::TrailingBytes {
                extra: chunk.bytes.len(),
            }
            .into()),
        }
    }

    /// Reads one frame, ready as soon as it is complete (a request, spec 4.1): the end of the
    /// stream is not waited for. What already arrived behind the frame is checked: more bytes
    /// are `TrailingBytes`; a FIN, or nothing yet, is fine.
    pub async fn read_complete<M: Message + Default>(&mut self) -> Result<M, ReadFrameError> {
        use futures_util::FutureExt as _;
        let msg = self.read::<M>().await?;
        if !self.buf.is_empty() {
            return Err(FrameError::TrailingBytes {
                extra: self.buf.len(),
            }
            .into());
        }
        // quinn's reads are cancel-safe: a read that is not ready takes nothing.
        match self.recv.read_chunk(1, true).now_or_never() {
            None | Some(Ok(None)) => Ok(msg),
            Some(Ok(Some(chunk))) => Err(FrameError::TrailingBytes {
                extra: chunk.bytes.len(),
            }
            .into()),
            Some(Err(e)) => Err(e.into()),
        }
    }

    /// The underlying stream, e.g. to stop it with an error code.
    pub fn stream_mut(&mut self) -> &mut quinn::RecvStream {
        &mut self.recv
    }

    /// The stream and the bytes read past the last frame: a stream whose frame is followed by
    /// raw bytes (an upload stream, a download answer) continues with these.
    pub fn into_parts(self) -> (quinn::RecvStream, Bytes) {
        (self.recv, self.buf.freeze())
    }
}

/// Why writing a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteFrameError {
    /// The message is larger than the frame limit.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The peer stopped the stream or the connection was lost.
    #[error(transparent)]
    Write(#[from] quinn::WriteError),
    /// The peer did not take all of it within this time; the stream was reset.
    #[error("the peer did not take it within {0:?}")]
    Stalled(std::time::Duration),
}

/// Encodes `msgs` as consecutive frames into one buffer, so they leave in as few packets as
/// possible (coalescing is what keeps fan-out cheap: one write for many events).
pub fn encode_frames<'a, M: Message + 'a>(
    msgs: impl IntoIterator<Item = &'a M>,
    max_frame_bytes: usize,
) -> Result<Bytes, FrameError> {
    let mut buf = BytesMut::new();
    for msg in msgs {
        frame::encode(msg, max_frame_bytes, &mut buf)?;
    }
    Ok(buf.freeze())
}

/// Writes one frame and finishes the stream (the only frame of a request or response stream).
pub async fn write_only<M: Message>(
    send: &mut quinn::SendStream,
    msg: &M,
    max_frame_bytes: usize,
) -> Result<(), WriteFrameError> {
    let bytes = encode_frames([msg], max_frame_bytes)?;
    send.write_chunk(bytes).await?;
    // Finishing can only fail if the stream is already closed, which the write above reports.
    let _ = send.finish();
    Ok(())
}

/// Encodes a datagram payload (no length prefix: the QUIC DATAGRAM frame delimits it).
pub fn encode_datagram(msg: &pb::Datagram) -> Bytes {
    Bytes::from(msg.encode_to_vec())
}

/// Largest datagram payload accepted: more than a QUIC datagram can carry on any path.
pub const MAX_DATAGRAM_BYTES: usize = 1500;

/// Decodes a datagram payload, bounded like every other input (see [`frame::decode_datagram`]).
pub fn decode_datagram(bytes: &[u8]) -> Result<pb::Datagram, FrameError> {
    frame::decode_datagram(bytes, MAX_DATAGRAM_BYTES)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    use super::*;
    use crate::frame::MAX_FRAME_BYTES;

    /// A client connection and the server's side of it, over loopback.
    async fn loopback() -> (quinn::Connection, quinn::Connection, [quinn::Endpoint; 2]) {
        let key_pair = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .expect("params")
            .self_signed(&key_pair)
            .expect("cert");
        let der = CertificateDer::from(cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        let mut tls = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("tls 1.3")
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], key)
            .expect("certificate");
        tls.alpn_protocols = vec![crate::ALPN.to_vec()];
        let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls).expect("quic tls");
        let any = "127.0.0.1:0".parse().expect("address");
        let (server, _) = crate::udp::endpoint(
            any,
            quinn::EndpointConfig::default(),
            Some(quinn::ServerConfig::with_crypto(Arc::new(quic))),
            1 << 20,
        )
        .expect("server endpoint");
        let client = crate::udp::client_endpoint(any).expect("client endpoint");
        let pin = crate::tls::Verification::Pin(crate::fingerprint::fingerprint_of_der(&der));
        let config = crate::tls::client_config(&pin).expect("client config");
        let connecting = client
            .connect_with(config, server.local_addr().expect("address"), "localhost")
            .expect("connect");
        let accepting = async { server.accept().await.expect("incoming").await };
        let (to_server, to_client) = tokio::join!(connecting, accepting);
        let to_client = to_client.expect("server side");
        (to_server.expect("client side"), to_client, [client, server])
    }

    fn request(id: u64) -> pb::Request {
        pb::Request {
            request_id: id,
            ..Default::default()
        }
    }

    /// Frames that arrived together are taken off the stream in one read: after the first
    /// frame, the other two are already in the reader's buffer.
    #[tokio::test]
    async fn one_read_takes_every_frame_that_arrived() {
        let (to_server, to_client, _endpoints) = loopback().await;
        let frames = [request(1), request(2), request(3)];
        let bytes = encode_frames(&frames, MAX_FRAME_BYTES).expect("encode");
        let first_len = encode_frames([&frames[0]], MAX_FRAME_BYTES)
            .expect("encode")
            .len();
        let mut send = to_server.open_uni().await.expect("open");
        send.write_chunk(bytes.clone()).await.expect("write");
        send.finish().expect("finish");

        let recv = to_client.accept_uni().await.expect("accept");
        let mut reader = FrameReader::new(recv, MAX_FRAME_BYTES);
        assert_eq!(
            reader.read::<pb::Request>().await.expect("first"),
            frames[0]
        );
        let (recv, rest) = reader.into_parts();
        assert_eq!(rest.len(), bytes.len() - first_len, "read ahead");

        // The frames read ahead decode as they would have from the stream.
        let mut reader = FrameReader::new(recv, MAX_FRAME_BYTES);
        reader.buf.extend_from_slice(&rest);
        assert_eq!(
            reader.read::<pb::Request>().await.expect("second"),
            frames[1]
        );
        assert_eq!(
            reader.read::<pb::Request>().await.expect("third"),
            frames[2]
        );
        assert!(matches!(
            reader.read::<pb::Request>().await,
            Err(ReadFrameError::Finished)
        ));
    }
}
