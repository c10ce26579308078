//! Error helpers: constructors and retry rules for the wire [`pb::Error`], the [`RemoteError`]
//! type SDK users see, and the QUIC application error codes of chat/1.
//!
//! # Layout
//! - [`pb::ErrorCode`]: [`is_retryable`](pb::ErrorCode::is_retryable) and a readable `Display`.
//! - [`pb::Error`]: one constructor per code (`pb::Error::invalid_argument(field, msg)`, ...).
//! - [`RemoteError`]: a `std::error::Error` wrapping the `pb::Error` a server answered with.
//! - [`CloseCode`] and [`StreamCode`]: the codes carried by QUIC CONNECTION_CLOSE and by
//!   RESET_STREAM / STOP_SENDING (`spec/protocol.md`, section "Errors").

use std::fmt;
use std::time::Duration;

use crate::pb;
use crate::pb::ErrorCode;

impl ErrorCode {
    /// Whether any request that failed with this code may be sent again unchanged.
    ///
    /// Only `UNAVAILABLE`, `RATE_LIMITED` and `TOO_EARLY` say "the server did nothing; try
    /// later" (honour `retry_after_ms`; `TOO_EARLY`: once the handshake completed). Independently of the code, reads and a `SendMessage` retried with the
    /// same `client_msg_id` are always safe to repeat, for instance after the connection dropped
    /// before the answer arrived: reads change nothing, and the server answers a repeated send
    /// with the original message instead of creating a second one.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::Unavailable | ErrorCode::RateLimited | ErrorCode::TooEarly
        )
    }

    /// The short lowercase name used in messages and logs, e.g. `"invalid argument"`.
    pub fn description(self) -> &'static str {
        match self {
            ErrorCode::Unspecified => "unspecified error",
            ErrorCode::InvalidArgument => "invalid argument",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::PermissionDenied => "permission denied",
            ErrorCode::NotFound => "not found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate limited",
            ErrorCode::TooLarge => "too large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal error",
            ErrorCode::FailedPrecondition => "failed precondition",
            ErrorCode::Unimplemented => "unimplemented",
            ErrorCode::TooEarly => "too early",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl pb::Error {
    /// An error with `code` and `message` and no field or retry hint.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code as i32,
            message: message.into(),
            field: String::new(),
            retry_after_ms: 0,
        }
    }

    /// `INVALID_ARGUMENT` about `field` (written `request_kind.field`, e.g. `register.username`).
    pub fn invalid_argument(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            ..Self::new(ErrorCode::InvalidArgument, message)
        }
    }

    /// `UNAUTHENTICATED`: missing, expired or revoked credentials.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    /// `PERMISSION_DENIED`: authenticated but not allowed.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PermissionDenied, message)
    }

    /// `NOT_FOUND`: no such object, or one the caller may not know exists.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// `CONFLICT`: the request conflicts with current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// `RATE_LIMITED`, retry no earlier than `retry_after`.
    pub fn rate_limited(retry_after: Duration, message: impl Into<String>) -> Self {
        Self {
            retry_after_ms: saturating_ms(retry_after),
            ..Self::new(ErrorCode::RateLimited, message)
        }
    }

    /// `TOO_LARGE` about `field`; an empty `field` means the frame itself.
    pub fn too_large(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            ..Self::new(ErrorCode::TooLarge, message)
        }
    }

    /// `UNAVAILABLE`, worth retrying after `retry_after` (zero: no hint, use backoff).
    pub fn unavailable(retry_after: Duration, message: impl Into<String>) -> Self {
        Self {
            retry_after_ms: saturating_ms(retry_after),
            ..Self::new(ErrorCode::Unavailable, message)
        }
    }

    /// `INTERNAL`: a bug or unexpected failure in the server.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// `FAILED_PRECONDITION`: valid, but not in this connection state.
    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::FailedPrecondition, message)
    }

    /// `UNIMPLEMENTED`: the server does not know this request kind.
    pub fn unimplemented(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unimplemented, message)
    }

    /// Whether the failed request may be sent again unchanged (see [`ErrorCode::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.code().is_retryable()
    }

    /// The server's retry hint, if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        (self.retry_after_ms > 0).then(|| Duration::from_millis(u64::from(self.retry_after_ms)))
    }
}

/// Renders as `code (field): message`, leaving out the parts that are empty. An unknown code
/// (from a newer server) shows its number.
impl fmt::Display for pb::Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match ErrorCode::try_from(self.code) {
            Ok(code) => write!(f, "{code}")?,
            Err(_) => write!(f, "error code {}", self.code)?,
        }
        if !self.field.is_empty() {
            write!(f, " ({})", self.field)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

fn saturating_ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// The error a server answered a request with, as a Rust error for SDK users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError(pub pb::Error);

impl RemoteError {
    /// The error code; `UNSPECIFIED` for a code this SDK does not know.
    pub fn code(&self) -> ErrorCode {
        self.0.code()
    }

    /// The offending field for `INVALID_ARGUMENT` and `TOO_LARGE`, if the server named one.
    pub fn field(&self) -> Option<&str> {
        (!self.0.field.is_empty()).then_some(self.0.field.as_str())
    }

    /// Whether the request may be sent again unchanged (see [`ErrorCode::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.0.is_retryable()
    }

    /// The server's retry hint, if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after()
    }

    /// The wire error.
    pub fn into_inner(self) -> pb::Error {
        self.0
    }
}

impl From<pb::Error> for RemoteError {
    fn from(error: pb::Error) -> Self {
        Self(error)
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "server error: {}", self.0)
    }
}

impl std::error::Error for RemoteError {}

/// Application error codes of a QUIC CONNECTION_CLOSE frame in chat/1.
///
/// A receiver that sees a code it does not know treats it like [`CloseCode::ProtocolViolation`]
/// for logging and reconnects with backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum CloseCode {
    /// 0x0: an orderly close with nothing to report (the client quits, the server closes an idle
    /// connection).
    NoError = 0x0,
    /// 0x1: the peer broke the protocol (a bad frame on the event stream, a stream it may not
    /// open). Reconnecting with the same behaviour will fail again.
    ProtocolViolation = 0x1,
    /// 0x2: the server is draining after a GoAway event; reconnect (to one of its addresses)
    /// after `reconnect_after_ms`.
    GoingAway = 0x2,
    /// 0x3: the session was revoked or the account disabled, after a SessionRevoked event. Do not
    /// reconnect with the same tokens.
    SessionRevoked = 0x3,
    /// 0x4: the client asked for a protocol major version the server does not speak.
    VersionMismatch = 0x4,
    /// 0x5: the Welcome carried a Redirect; connect to one of its addresses.
    Redirected = 0x5,
    /// 0x6: the server is at its connection limit; retry later with backoff.
    ServerBusy = 0x6,
    /// 0x7: the server dropped live events for this connection (it read its event stream too
    /// slowly). Reconnect at once and catch up from the cursors; the session stays valid.
    Resync = 0x7,
}

impl CloseCode {
    /// Every connection close code, in numeric order.
    pub const ALL: [CloseCode; 8] = [
        CloseCode::NoError,
        CloseCode::ProtocolViolation,
        CloseCode::GoingAway,
        CloseCode::SessionRevoked,
        CloseCode::VersionMismatch,
        CloseCode::Redirected,
        CloseCode::ServerBusy,
        CloseCode::Resync,
    ];

    /// The numeric code on the wire.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The code for a wire value, if chat/1 defines it.
    pub fn from_code(code: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|c| u64::from(c.code()) == code)
    }

    /// The name used in the specification, e.g. `"GOING_AWAY"`; also the close reason phrase.
    pub fn name(self) -> &'static str {
        match self {
            CloseCode::NoError => "NO_ERROR",
            CloseCode::ProtocolViolation => "PROTOCOL_VIOLATION",
            CloseCode::GoingAway => "GOING_AWAY",
            CloseCode::SessionRevoked => "SESSION_REVOKED",
            CloseCode::VersionMismatch => "VERSION_MISMATCH",
            CloseCode::Redirected => "REDIRECTED",
            CloseCode::ServerBusy => "SERVER_BUSY",
            CloseCode::Resync => "RESYNC",
        }
    }
}

#[cfg(feature = "net")]
impl From<CloseCode> for quinn::VarInt {
    fn from(code: CloseCode) -> Self {
        quinn::VarInt::from_u32(code.code())
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:x})", self.name(), self.code())
    }
}

/// Application error codes of QUIC RESET_STREAM and STOP_SENDING frames in chat/1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum StreamCode {
    /// 0x100: the stream carries something the receiver cannot accept (a stream kind the peer may
    /// not open, bytes that are not a frame).
    FrameError = 0x100,
    /// 0x101: the announced frame length exceeds the receiver's limit; the server answers
    /// `TOO_LARGE` first when it can.
    FrameTooLarge = 0x101,
    /// 0x102: the request stream stayed idle too long (10 s) before its frame was complete, an
    /// upload stream made no progress for the upload idle timeout, or the client took none of
    /// a download's bytes for the download idle timeout.
    RequestTimeout = 0x102,
    /// 0x103: an upload stream names an upload that is not the caller's, is finished or
    /// discarded, or starts at an offset other than the server's (capability `files`).
    UploadRejected = 0x103,
    /// 0x104: an upload stream carried more bytes than its upload declared; the upload is
    /// discarded.
    UploadTooLong = 0x104,
    /// 0x105: the server could not store or read a file's bytes; resume later from the offset
    /// the server reports.
    TransferFailed = 0x105,
}

impl StreamCode {
    /// Every stream error code, in numeric order.
    pub const ALL: [StreamCode; 6] = [
        StreamCode::FrameError,
        StreamCode::FrameTooLarge,
        StreamCode::RequestTimeout,
        StreamCode::UploadRejected,
        StreamCode::UploadTooLong,
        StreamCode::TransferFailed,
    ];

    /// The numeric code on the wire.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The code for a wire value, if chat/1 defines it.
    pub fn from_code(code: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|c| u64::from(c.code()) == code)
    }

    /// The name used in the specification, e.g. `"FRAME_TOO_LARGE"`.
    pub fn name(self) -> &'static str {
        match self {
            StreamCode::FrameError => "FRAME_ERROR",
            StreamCode::FrameTooLarge => "FRAME_TOO_LARGE",
            StreamCode::RequestTimeout => "REQUEST_TIMEOUT",
            StreamCode::UploadRejected => "UPLOAD_REJECTED",
            StreamCode::UploadTooLong => "UPLOAD_TOO_LONG",
            StreamCode::TransferFailed => "TRANSFER_FAILED",
        }
    }
}

#[cfg(feature = "net")]
impl From<StreamCode> for quinn::VarInt {
    fn from(code: StreamCode) -> Self {
        quinn::VarInt::from_u32(code.code())
    }
}

impl fmt::Display for StreamCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:x})", self.name(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailable_and_rate_limited_are_retryable() {
        let retryable: Vec<ErrorCode> = (0..=11)
            .filter_map(|n| ErrorCode::try_from(n).ok())
            .filter(|c| c.is_retryable())
            .collect();
        assert_eq!(
            retryable,
            vec![ErrorCode::RateLimited, ErrorCode::Unavailable]
        );
    }

    #[test]
    fn constructors_set_code_field_and_hint() {
        let e = pb::Error::invalid_argument("register.username", "too short");
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
        assert_eq!(e.field, "register.username");
        assert_eq!(
            e.to_string(),
            "invalid argument (register.username): too short"
        );

        let e = pb::Error::rate_limited(Duration::from_millis(1500), "slow down");
        assert_eq!(e.code(), ErrorCode::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
        assert!(e.is_retryable());

        let e = pb::Error::unavailable(Duration::from_secs(u64::MAX), "draining");
        assert_eq!(e.retry_after_ms, u32::MAX);
        assert_eq!(pb::Error::not_found("no such chat").retry_after(), None);
        assert!(!pb::Error::internal("boom").is_retryable());
    }

    #[test]
    fn display_of_unknown_code_shows_the_number() {
        let e = pb::Error {
            code: 99,
            message: "from the future".into(),
            field: String::new(),
            retry_after_ms: 0,
        };
        assert_eq!(e.to_string(), "error code 99: from the future");
        let remote = RemoteError::from(e);
        assert_eq!(remote.code(), ErrorCode::Unspecified);
        assert_eq!(remote.field(), None);
        assert_eq!(
            remote.to_string(),
            "server error: error code 99: from the future"
        );
    }

    #[test]
    fn quic_codes_match_the_specification() {
        let close: Vec<(u32, &str)> = CloseCode::ALL
            .iter()
            .map(|c| (c.code(), c.name()))
            .collect();
        assert_eq!(
            close,
            vec![
                (0x0, "NO_ERROR"),
                (0x1, "PROTOCOL_VIOLATION"),
                (0x2, "GOING_AWAY"),
                (0x3, "SESSION_REVOKED"),
                (0x4, "VERSION_MISMATCH"),
                (0x5, "REDIRECTED"),
                (0x6, "SERVER_BUSY"),
                (0x7, "RESYNC"),
            ]
        );
        let stream: Vec<(u32, &str)> = StreamCode::ALL
            .iter()
            .map(|c| (c.code(), c.name()))
            .collect();
        assert_eq!(
            stream,
            vec![
                (0x100, "FRAME_ERROR"),
                (0x101, "FRAME_TOO_LARGE"),
                (0x102, "REQUEST_TIMEOUT"),
                (0x103, "UPLOAD_REJECTED"),
                (0x104, "UPLOAD_TOO_LONG"),
                (0x105, "TRANSFER_FAILED"),
            ]
        );
        for c in CloseCode::ALL {
            assert_eq!(CloseCode::from_code(u64::from(c.code())), Some(c));
        }
        for c in StreamCode::ALL {
            assert_eq!(StreamCode::from_code(u64::from(c.code())), Some(c));
        }
        assert_eq!(CloseCode::from_code(8), None);
        assert_eq!(StreamCode::from_code(0x106), None);
        assert_eq!(
            StreamCode::FrameTooLarge.to_string(),
            "FRAME_TOO_LARGE (0x101)"
        );
    }
}
